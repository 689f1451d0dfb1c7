"""Keycloak (24-26) through httpx: an admin token, exact client lookup, and client-secret read/rotate.

One `httpx.Client` (one connection pool) per run. The token comes from
`/realms/{authRealm}/protocol/openid-connect/token`: client_credentials with the service-account client
when one is configured, else — or when that login is refused — the password grant with the public
`admin-cli` client. The token is renewed before `expires_in` elapses (the master realm's default is
60 s) and once on a 401; a password-grant session is renewed with its refresh token while it lasts.

Errors leave this module only as `jobs.core.errors` classes. Their text carries the method, the path,
the status and Keycloak's own error code/description (`invalid_client`, `Realm not found.`) — never a
request or response body, which could hold a secret. Every secret value is registered with the log
redaction filter the moment it is received.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import quote, unquote

import httpx

from jobs.core.errors import (
    ClientError,
    Conflict,
    NotFound,
    Permanent,
    PermissionDenied,
    Transient,
    Unauthorized,
    Unreachable,
)
from jobs.core.logs import redact, register_secret
from jobs.core.retry import RetryPolicy, parse_retry_after
from jobs.core.settings import KeycloakSettings

log = logging.getLogger(__name__)
SYSTEM: Final = "keycloak"
ADMIN_CLI: Final = "admin-cli"
CLIENT_SECRET_AUTH: Final = "client-secret"
# Renew this long before the token's expiry, but never more than this fraction of its lifespan.
_RENEW_MARGIN: Final = 10.0
_RENEW_FRACTION: Final = 0.2
_DETAIL_MAX: Final = 200
# Keycloak masks secrets in representations for callers without manage-clients (26.8+).
_SECRET_MASK: Final = "**********"

Grant = Literal["client_credentials", "password"]


@dataclass(frozen=True)
class KeycloakClientInfo:
    """The parts of a ClientRepresentation that decide whether it has a usable secret."""

    realm: str
    id: str  # the UUID used in /clients/{id}/... paths
    client_id: str
    public: bool
    bearer_only: bool
    authenticator: str
    enabled: bool
    # The secret as the clients search returned it; None when Keycloak left it out (public and
    # bearer-only clients) or masked it (an identity without manage-clients on Keycloak 26.8+).
    listed_secret: str | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.realm}/{self.client_id}"


@dataclass
class _Token:
    access: str = field(repr=False)
    grant: Grant
    renew_at: float
    refresh: str | None = field(default=None, repr=False)
    refresh_until: float | None = None


def _renew_after(lifespan: float) -> float:
    """Seconds after issue at which to renew: before expiry, with a margin that fits short lifespans."""
    return max(0.0, lifespan - min(_RENEW_MARGIN, lifespan * _RENEW_FRACTION))


def _oauth_detail(response: httpx.Response) -> str:
    """Keycloak's error code and description, from either error shape (trap 4). Never the raw body."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [
        str(body[key])
        for key in ("error", "errorMessage", "error_description")
        if isinstance(body.get(key), str) and body[key]
    ]
    return redact(": ".join(parts))[:_DETAIL_MAX]


_ROLES_NEEDED: Final = "the roles view-clients and manage-clients of the client 'realm-management'"


def _status_error(response: httpx.Response, what: str, needed: str = _ROLES_NEEDED) -> ClientError:
    """Map a non-2xx response to the taxonomy (401 is handled by the caller first). `needed` says what
    the identity lacks on a 403."""
    status = response.status_code
    detail = _oauth_detail(response)
    suffix = f" ({status}: {detail})" if detail else f" ({status})"
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return Transient(SYSTEM, f"{what}: server busy or failing{suffix}", retry_after)
    if status == 401:
        return Unauthorized(SYSTEM, f"{what}: unauthorized{suffix}")
    if status == 403:
        return PermissionDenied(
            SYSTEM,
            f"{what}: forbidden{suffix}; the Keycloak identity needs {needed} (Keycloak 26.8+ requires "
            "manage-clients to read a secret)",
        )
    if status == 404:
        return NotFound(SYSTEM, f"{what}: not found{suffix}")
    if status == 409:
        return Conflict(SYSTEM, f"{what}: conflict{suffix}")
    return Permanent(SYSTEM, f"{what}: rejected{suffix}")


def ssl_context(cacert: str | None) -> ssl.SSLContext:
    """The trust store for Keycloak: KEYCLOAK_CACERT if set, else the system's."""
    return ssl.create_default_context(cafile=cacert) if cacert else ssl.create_default_context()


class KeycloakClient:
    """Admin operations client-patcher needs. Build once in the entrypoint; `close()` at the end."""

    def __init__(
        self,
        base_url: str,
        auth_realm: str,
        settings: KeycloakSettings,
        retry: RetryPolicy | None = None,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._auth_realm = auth_realm
        self._settings = settings
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._clock = clock
        self._token: _Token | None = None
        self._lock = threading.Lock()
        for credential in (settings.client_secret, settings.admin_password):
            if credential is not None:
                register_secret(credential.get_secret_value())
        verify: ssl.SSLContext | bool = ssl_context(str(settings.cacert) if settings.cacert else None)
        self._http = httpx.Client(
            base_url=self._base,
            verify=verify,
            timeout=timeout,
            headers={"Accept": "application/json"},
            transport=transport,
            follow_redirects=False,
        )
        # client_credentials is preferred; after it is refused once, the run stays on the password grant.
        self._service_account_refused = False

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KeycloakClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def grant(self) -> Grant | None:
        return self._token.grant if self._token else None

    # -- transport ---------------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One HTTP exchange; connection problems become Unreachable. No status handling here."""
        try:
            return self._http.request(
                method,
                path,
                data=data,
                params=params,
                headers=headers,
                timeout=self._retry.deadline.cap(self._timeout),
            )
        except httpx.TimeoutException:
            raise Unreachable(SYSTEM, f"{what}: timed out") from None
        except httpx.TransportError as exc:
            raise Unreachable(SYSTEM, f"{what}: cannot connect ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:  # e.g. a body that cannot be decoded
            raise Permanent(SYSTEM, f"{what}: {type(exc).__name__}") from None

    # -- authentication ----------------------------------------------------------------------------
    def login(self) -> None:
        """Obtain a token now (the run calls this first, so a refused login fails the run once)."""
        with self._lock:
            self._token = self._new_token()

    def _token_path(self) -> str:
        return f"/realms/{quote(self._auth_realm, safe='')}/protocol/openid-connect/token"

    def _request_token(self, form: dict[str, str], grant: Grant, label: str) -> _Token:
        path = self._token_path()
        what = f"POST {path} ({label})"

        def attempt() -> httpx.Response:
            response = self._send("POST", path, what=what, data=form)
            if response.status_code == 429 or response.status_code >= 500:
                raise _status_error(response, what)
            return response

        response = self._retry.call(attempt)
        if response.status_code == 404:
            raise NotFound(
                SYSTEM, f"{what}: auth realm {self._auth_realm!r} does not exist ({_oauth_detail(response)})"
            )
        if response.status_code != 200:
            detail = _oauth_detail(response) or "no error detail"
            raise Unauthorized(SYSTEM, f"{label} login refused ({response.status_code} {detail})")
        try:
            body = response.json()
            access = str(body["access_token"])
            token_type = str(body.get("token_type", "Bearer"))
            lifespan = float(body.get("expires_in") or 60)
        except (ValueError, KeyError, TypeError):
            raise Permanent(SYSTEM, f"{what}: the token response is not Keycloak's JSON") from None
        register_secret(access)
        if token_type.lower() != "bearer":  # Keycloak may answer "bearer" (trap: compare case-insensitively)
            raise Permanent(SYSTEM, f"{what}: unexpected token_type {token_type!r}")
        now = self._clock()
        refresh = body.get("refresh_token")
        refresh_lifespan = float(body.get("refresh_expires_in") or 0)
        if isinstance(refresh, str):
            register_secret(refresh)
        return _Token(
            access=access,
            grant=grant,
            renew_at=now + _renew_after(lifespan),
            refresh=refresh if isinstance(refresh, str) and refresh_lifespan > 0 else None,
            refresh_until=now + _renew_after(refresh_lifespan) if refresh_lifespan > 0 else None,
        )

    def _client_credentials(self) -> _Token:
        client_id = self._settings.client_id or ""
        secret = self._settings.client_secret.get_secret_value() if self._settings.client_secret else ""
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        return self._request_token(form, "client_credentials", f"service account {client_id!r}")

    def _password(self) -> _Token:
        username = self._settings.admin_username or ""
        password = self._settings.admin_password.get_secret_value() if self._settings.admin_password else ""
        form = {"grant_type": "password", "client_id": ADMIN_CLI, "username": username, "password": password}
        return self._request_token(form, "password", f"admin {username!r} via {ADMIN_CLI}")

    def _new_token(self) -> _Token:
        has_service_account = bool(self._settings.client_id and self._settings.client_secret)
        has_admin = bool(self._settings.admin_username and self._settings.admin_password)
        if has_service_account and not self._service_account_refused:
            try:
                token = self._client_credentials()
            except Unauthorized as exc:
                if not has_admin:
                    raise
                self._service_account_refused = True
                log.warning(
                    "Keycloak service-account login refused; falling back to the admin password grant",
                    extra={"grant": "password", "client": ADMIN_CLI, "reason": str(exc)},
                )
            else:
                log.info(
                    "logged in to Keycloak",
                    extra={"grant": "client_credentials", "why": "KEYCLOAK_CLIENT_ID is configured"},
                )
                return token
        why = (
            "the service-account login was refused"
            if self._service_account_refused
            else "no service account configured (KEYCLOAK_CLIENT_ID unset)"
        )
        token = self._password()
        log.info("logged in to Keycloak", extra={"grant": "password", "client": ADMIN_CLI, "why": why})
        return token

    def _renewed(self, token: _Token) -> _Token:
        """A fresh token: the refresh grant while the password session lasts, else a new login."""
        if token.refresh and token.refresh_until is not None and self._clock() < token.refresh_until:
            form = {"grant_type": "refresh_token", "client_id": ADMIN_CLI, "refresh_token": token.refresh}
            try:
                return self._request_token(form, "password", "refresh of the admin session")
            except Unauthorized as exc:
                log.info("Keycloak refresh token refused; logging in again", extra={"reason": str(exc)})
        return self._new_token()

    def _access_token(self, stale: str | None = None) -> str:
        """The current token, renewed when due or when `stale` (the token a 401 refused) is current."""
        with self._lock:
            token = self._token
            if token is None:
                token = self._new_token()
            elif stale is not None and token.access == stale:
                token = self._renewed(token)
            elif self._clock() >= token.renew_at:
                log.debug("Keycloak token due for renewal")
                token = self._renewed(token)
            self._token = token
            return token.access

    # -- admin requests ----------------------------------------------------------------------------
    def _admin(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: bool = False,
    ) -> Any:
        """One Admin API call: retry transient errors; on a 401 renew the token and retry once."""
        what = f"{method} {path}"

        def attempt(token: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"}
            if json_body:
                headers["Content-Type"] = "application/json"
            response = self._send(method, path, what=what, params=params, headers=headers)
            if response.status_code == 429 or response.status_code >= 500:
                raise _status_error(response, what)
            return response

        token = self._access_token()
        response = self._retry.call(lambda: attempt(token))
        if response.status_code == 401:
            log.info("Keycloak answered 401; renewing the token once", extra={"path": path})
            token = self._access_token(stale=token)
            response = self._retry.call(lambda: attempt(token))
        if response.status_code >= 300:
            raise _status_error(response, what, self._roles_needed(path))
        try:
            return response.json() if response.content else None
        except ValueError:
            raise Permanent(SYSTEM, f"{what}: the response is not JSON") from None

    def _roles_needed(self, path: str) -> str:
        """What an identity needs to administer `path`'s realm: the roles of the master client
        `<realm>-realm` for a master-realm identity, of `realm-management` for one of the realm itself;
        an identity of another realm cannot (Keycloak answers 403 whatever its roles)."""
        parts = path.split("/")  # "", "admin", "realms", "<realm>", ...
        target = unquote(parts[3]) if len(parts) > 3 else self._auth_realm
        if self._auth_realm == "master":
            return f"the roles view-clients and manage-clients of the master client '{target}-realm'"
        if target == self._auth_realm:
            return _ROLES_NEEDED
        return (
            f"to be of realm 'master' or {target!r}: an identity of realm {self._auth_realm!r} cannot "
            f"administer realm {target!r}"
        )

    # -- clients -----------------------------------------------------------------------------------
    def find_client(self, realm: str, client_id: str) -> KeycloakClientInfo:
        """The client whose clientId is exactly `client_id` (trap 2: compared here, not only by the
        server). Raises NotFound for a missing realm or client."""
        path = f"/admin/realms/{quote(realm, safe='')}/clients"
        try:
            found = self._admin("GET", path, params={"clientId": client_id})
        except NotFound as exc:
            detail = str(exc).removeprefix(f"{SYSTEM}: ")
            raise NotFound(SYSTEM, f"realm {realm!r} not found ({detail})") from None
        if not isinstance(found, list):
            raise Permanent(SYSTEM, f"GET {path}: expected a JSON list of clients")
        for rep in found:
            if isinstance(rep, dict) and _listed_secret(rep) is not None:
                register_secret(rep["secret"])
        exact = [r for r in found if isinstance(r, dict) and r.get("clientId") == client_id]
        if not found and not self._sees_any_client(path):
            raise PermissionDenied(
                SYSTEM,
                f"client {realm}/{client_id}: Keycloak lists no client at all to this identity (200 []): "
                f"it needs {self._roles_needed(path)}",
            )
        if not exact:
            others = sorted(str(r.get("clientId")) for r in found if isinstance(r, dict))
            near = f"; Keycloak returned only near matches {others}, ignored" if others else ""
            raise NotFound(SYSTEM, f"client {client_id!r} not found in realm {realm!r}{near}")
        if len(exact) > 1:
            raise Permanent(SYSTEM, f"client {client_id!r} is not unique in realm {realm!r}")
        rep = exact[0]
        if "publicClient" not in rep or "id" not in rep:
            raise PermissionDenied(
                SYSTEM,
                f"client {realm}/{client_id}: Keycloak returned only a brief representation; the identity "
                "needs view-clients (or manage-clients) to see the client's type",
            )
        return KeycloakClientInfo(
            realm=realm,
            id=str(rep["id"]),
            client_id=client_id,
            public=bool(rep.get("publicClient")),
            bearer_only=bool(rep.get("bearerOnly")),
            authenticator=str(rep.get("clientAuthenticatorType") or CLIENT_SECRET_AUTH),
            enabled=bool(rep.get("enabled", True)),
            listed_secret=_listed_secret(rep),
        )

    def _sees_any_client(self, path: str) -> bool:
        """Every realm has built-in clients (account, admin-cli, ...): an identity with view rights
        always sees one; Keycloak 26 answers `200 []` to an identity with query-clients alone."""
        listed = self._admin("GET", path, params={"first": "0", "max": "1"})
        return isinstance(listed, list) and bool(listed)

    def _secret_path(self, client: KeycloakClientInfo) -> str:
        return (
            f"/admin/realms/{quote(client.realm, safe='')}/clients/{quote(client.id, safe='')}/client-secret"
        )

    def _secret_value(self, body: Any, client: KeycloakClientInfo, what: str) -> str:
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise Permanent(SYSTEM, f"{what}: client {client.label} has no secret stored")
        register_secret(value)
        return value

    def client_secret(self, client: KeycloakClientInfo) -> str:
        """The client's current secret with at most one request: the value the clients search
        already returned (Keycloak puts it in the representation for an identity allowed to read it),
        else GET .../client-secret. Gate with `usable_secret_problem` first (trap 3)."""
        if client.listed_secret is not None:
            return client.listed_secret
        return self.read_client_secret(client)

    def read_client_secret(self, client: KeycloakClientInfo) -> str:
        """GET .../client-secret. Gate with `usable_secret_problem` first: Keycloak returns stale
        secrets of public or bearer-only clients (trap 3)."""
        path = self._secret_path(client)
        return self._secret_value(self._admin("GET", path), client, f"GET {path}")

    def regenerate_client_secret(self, client: KeycloakClientInfo) -> str:
        """POST .../client-secret: Keycloak stores a new secret and, without the secret-rotation
        policy, the old one stops working at once."""
        path = self._secret_path(client)
        return self._secret_value(self._admin("POST", path, json_body=True), client, f"POST {path}")


def _listed_secret(rep: Mapping[str, Any]) -> str | None:
    """The secret in a ClientRepresentation, unless absent, empty or masked."""
    secret = rep.get("secret")
    return secret if isinstance(secret, str) and secret and secret != _SECRET_MASK else None


def usable_secret_problem(client: KeycloakClientInfo) -> str | None:
    """Why a client has no secret client-patcher may use, or None (trap 3: decide before reading)."""
    if client.public:
        return f"client {client.label} is a public client: it has no client secret"
    if client.bearer_only:
        return f"client {client.label} is bearer-only: it has no usable client secret"
    if client.authenticator != CLIENT_SECRET_AUTH:
        return (
            f"client {client.label} uses {client.authenticator!r} authentication, not "
            f"{CLIENT_SECRET_AUTH!r}: its stored secret is not what it authenticates with"
        )
    return None
