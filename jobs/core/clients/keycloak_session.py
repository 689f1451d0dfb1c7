"""Keycloak (24-26) admin session through httpx: the token, the transport and the Admin API call.

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

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Self
from urllib.parse import quote

import httpx

from jobs.core import traffic
from jobs.core.clients.keycloak_errors import SYSTEM, oauth_detail, roles_needed, status_error
from jobs.core.errors import (
    NotFound,
    Permanent,
    Unauthorized,
    is_transient_status,
    unreachable,
)
from jobs.core.logs import register_secret
from jobs.core.retry import Breaker, RetryPolicy
from jobs.core.settings import KeycloakSettings

log = logging.getLogger(__name__)
ADMIN_CLI: Final = "admin-cli"
# Renew this long before the token's expiry, but never more than this fraction of its lifespan.
_RENEW_MARGIN: Final = 10.0
_RENEW_FRACTION: Final = 0.2

Grant = Literal["client_credentials", "password"]
FALLBACK_WARNING: Final = (
    "Keycloak service-account login (KEYCLOAK_CLIENT_ID) refused; fell back to the admin password grant "
    "as KEYCLOAK_ALLOW_PASSWORD_FALLBACK allows: fix the service account"
)
NO_FALLBACK: Final = (
    "not falling back to KEYCLOAK_ADMIN_USERNAME/PASSWORD: a broken service account must not go unnoticed "
    "(set KEYCLOAK_ALLOW_PASSWORD_FALLBACK=true to allow it)"
)


def _after_system(exc: Exception) -> str:
    return str(exc).removeprefix(f"{SYSTEM}: ")


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


def ssl_context(cacert: str | None) -> ssl.SSLContext:
    """The trust store for Keycloak: KEYCLOAK_CACERT if set, else the system's."""
    return ssl.create_default_context(cafile=cacert) if cacert else ssl.create_default_context()


class KeycloakSession:
    """An authenticated Admin API session; `KeycloakClient` adds the operations client-patcher needs."""

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
        self.target = f"Keycloak at {self._base}"
        self._breaker = Breaker(SYSTEM, self.target)
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
        # client_credentials is preferred; after it is refused once (and the fallback is allowed), the run
        # stays on the password grant, and says so in `warnings` for the run's summary.
        self._service_account_refused = False
        self.warnings: list[str] = []

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
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
        content: bytes | None = None,
    ) -> httpx.Response:
        """One HTTP exchange; connection problems become Unreachable. No status handling here."""
        try:
            response = traffic.counted(
                SYSTEM,
                lambda: self._http.request(
                    method,
                    path,
                    data=data,
                    content=content,
                    params=params,
                    headers=headers,
                    timeout=self._retry.timeout(self._timeout),
                ),
            )
        except httpx.TransportError as exc:
            raise unreachable(SYSTEM, what, self.target, exc) from None
        except httpx.HTTPError as exc:  # e.g. a body that cannot be decoded
            raise Permanent(SYSTEM, f"{what}: {type(exc).__name__}") from None
        return response

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
            if is_transient_status(response.status_code):
                raise status_error(response, what)
            return response

        response = self._retry.call(attempt, self._breaker)
        if response.status_code == 404:
            raise NotFound(
                SYSTEM, f"{what}: auth realm {self._auth_realm!r} does not exist ({oauth_detail(response)})"
            )
        if response.status_code != 200:
            detail = oauth_detail(response) or "no error detail"
            raise Unauthorized(SYSTEM, f"{label} login refused ({response.status_code} {detail})")
        try:
            body = response.json()
            access = str(body["access_token"])
            token_type = str(body.get("token_type", "Bearer"))
            lifespan = float(body.get("expires_in") or 60)
        except (ValueError, KeyError, TypeError):
            raise Permanent(SYSTEM, f"{what}: the token response is not Keycloak's JSON") from None
        register_secret(access)
        if token_type.lower() != "bearer":  # Keycloak may answer "bearer" (docs/design.md#keycloak)
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
                if not self._settings.allow_password_fallback:
                    raise Unauthorized(SYSTEM, f"{_after_system(exc)}; {NO_FALLBACK}") from None
                self._service_account_refused = True
                self.warnings.append(FALLBACK_WARNING + f" ({_after_system(exc)})")
                extra = {"grant": "password", "client": ADMIN_CLI, "reason": str(exc)}
                log.warning(FALLBACK_WARNING, extra=extra)
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
        body: Any = None,
    ) -> Any:
        """One Admin API call: retry transient errors; on a 401 renew the token and retry once.
        `body` (JSON) is sent as the request's content; `json_body` only sets its Content-Type."""
        what = f"{method} {path}"
        content = None if body is None else json.dumps(body).encode()
        json_body = json_body or content is not None

        def attempt(token: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"}
            if json_body:
                headers["Content-Type"] = "application/json"
            response = self._send(method, path, what=what, params=params, headers=headers, content=content)
            if is_transient_status(response.status_code):
                raise status_error(response, what)
            return response

        token = self._access_token()
        response = self._retry.call(lambda: attempt(token), self._breaker)
        if response.status_code == 401:
            log.info("Keycloak answered 401; renewing the token once", extra={"path": path})
            token = self._access_token(stale=token)
            response = self._retry.call(lambda: attempt(token), self._breaker)
        if response.status_code >= 300:
            raise status_error(response, what, roles_needed(self._auth_realm, path))
        try:
            return response.json() if response.content else None
        except ValueError:
            raise Permanent(SYSTEM, f"{what}: the response is not JSON") from None
