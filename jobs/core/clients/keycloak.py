"""Keycloak (24-26) client operations: exact client lookup, and client-secret read/rotate.

The session (token, transport, one Admin API call with retries) is `jobs.core.clients.keycloak_session`.
Errors leave as `jobs.core.errors` classes, never carrying a request or response body; every secret
value is registered with the log redaction filter the moment it is received.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from jobs.core.clients.keycloak_errors import SYSTEM, roles_needed
from jobs.core.clients.keycloak_session import KeycloakSession
from jobs.core.errors import NotFound, Permanent, PermissionDenied
from jobs.core.logs import register_secret
from jobs.core.observed import (
    ATTR_ROTATED,
    ATTR_SECRET_EXPIRATION,
    CLIENT_SECRET_AUTH,
    KeycloakClientInfo,
    RotatedSecret,
    unix_seconds,
)

# Keycloak masks secrets in representations for callers without manage-clients (26.8+).
_SECRET_MASK: Final = "**********"
# ClientSecretRotationExecutorFactory.DEFAULT_SECRET_ROTATED_EXPIRATION_PERIOD (2 days)
DEFAULT_ROTATED_PERIOD: Final = 172800


class KeycloakClient(KeycloakSession):
    """Admin operations client-patcher needs. Build once in the entrypoint; `close()` at the end."""

    # -- clients -----------------------------------------------------------------------------------
    def find_client(self, realm: str, client_id: str) -> KeycloakClientInfo:
        """The client whose clientId is exactly `client_id`, compared here, not only by the server
        (docs/design.md#traps, trap 2). Raises NotFound for a missing realm or client."""
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
                f"it needs {roles_needed(self._auth_realm, path)}",
            )
        if not exact:
            others = sorted(str(r.get("clientId")) for r in found if isinstance(r, dict))
            near = f"; Keycloak returned only near matches {others}, ignored" if others else ""
            raise NotFound(SYSTEM, f"client {client_id!r} not found in realm {realm!r}{near}")
        if len(exact) > 1:
            raise Permanent(SYSTEM, f"client {client_id!r} is not unique in realm {realm!r}")
        rep = exact[0]
        if not is_full_representation(rep):
            raise PermissionDenied(
                SYSTEM,
                f"client {realm}/{client_id}: Keycloak returned only a brief representation; the identity "
                "needs view-clients (or manage-clients) to see the client's type",
            )
        return client_info(realm, rep)

    def list_clients(self, realm: str, first: int, maximum: int) -> list[Any]:
        """One page of the realm's clients (`GET …/clients?first=&max=`), as Keycloak returned it.
        The caller registers the secret of each representation it keeps (`client_info` does)."""
        path = f"/admin/realms/{quote(realm, safe='')}/clients"
        page = self._admin("GET", path, params={"first": str(first), "max": str(maximum)})
        if not isinstance(page, list):
            raise Permanent(SYSTEM, f"GET {path}: expected a JSON list of clients")
        return page

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
        else GET .../client-secret. Gate with `usable_secret_problem` first (docs/design.md#traps, trap 3)."""
        if client.listed_secret is not None:
            return client.listed_secret
        return self.read_client_secret(client)

    def read_client_secret(self, client: KeycloakClientInfo) -> str:
        """GET .../client-secret. Gate with `usable_secret_problem` first: Keycloak returns stale
        secrets of public or bearer-only clients (docs/design.md#traps, trap 3)."""
        path = self._secret_path(client)
        return self._secret_value(self._admin("GET", path), client, f"GET {path}")

    def _client_path(self, client: KeycloakClientInfo) -> str:
        return f"/admin/realms/{quote(client.realm, safe='')}/clients/{quote(client.id, safe='')}"

    def client_attributes(self, client: KeycloakClientInfo) -> dict[str, str]:
        """GET the client's representation and return its attributes (Keycloak keeps
        `client.secret.creation.time` there, set by every regenerate)."""
        rep = self._client_rep(client)
        attributes = rep.get("attributes")
        return {str(k): str(v) for k, v in attributes.items()} if isinstance(attributes, dict) else {}

    def _client_rep(self, client: KeycloakClientInfo) -> dict[str, Any]:
        path = self._client_path(client)
        rep = self._admin("GET", path)
        if not isinstance(rep, dict):
            raise Permanent(SYSTEM, f"GET {path}: expected a client representation")
        if _listed_secret(rep) is not None:
            register_secret(rep["secret"])
        attributes = rep.get("attributes")
        rotated = attributes.get(ATTR_ROTATED) if isinstance(attributes, dict) else None
        if isinstance(rotated, str) and rotated:
            register_secret(rotated)  # the previous secret, still valid during a rotation window
        return rep

    def merge_client_attributes(self, client: KeycloakClientInfo, ours: Mapping[str, str]) -> None:
        """PUT the client's representation back with `ours` merged into its attributes: every other
        attribute is sent unchanged, and the secret is left out so the PUT can never set it. Keycloak
        updates only the fields a PUT carries (last writer wins: this is a record, never a lock)."""
        rep = self._client_rep(client)
        attributes = rep.get("attributes")
        merged = {**(attributes if isinstance(attributes, dict) else {}), **ours}
        body = {k: v for k, v in rep.items() if k not in ("secret", "access")}
        body["attributes"] = merged
        self._admin("PUT", self._client_path(client), body=body)

    def regenerate_client_secret(self, client: KeycloakClientInfo) -> str:
        """POST .../client-secret: Keycloak stores a new secret and, without the secret-rotation
        policy, the old one stops working at once."""
        path = self._secret_path(client)
        return self._secret_value(self._admin("POST", path, json_body=True), client, f"POST {path}")

    # -- zero-downtime rotation (docs/design.md#keycloak) -----------------------------------------------
    def rotated_secret_info(self, client: KeycloakClientInfo) -> RotatedSecret | None:
        """The client's rotated secret (since, expiry), or None. Read from the client's attributes:
        `GET .../client-secret/rotated` answers the value only, these give its times too."""
        return RotatedSecret.of(self.client_attributes(client))

    def delete_rotated_secret(self, client: KeycloakClientInfo) -> None:
        """`DELETE .../client-secret/rotated`: the previous secret stops working at once (Keycloak
        answers 204, also when there is none)."""
        self._admin("DELETE", f"{self._secret_path(client)}/rotated")

    def rotated_expiration_periods(self, realm: str) -> tuple[int, ...] | None:
        """`rotated-expiration-period` (seconds) of each `secret-rotation` executor in the realm's
        enabled client policies: () when none names the executor; None when this identity may not
        read them (they need view-realm)."""
        base = f"/admin/realms/{quote(realm, safe='')}/client-policies"
        try:
            policies = self._admin("GET", f"{base}/policies")
            profiles = self._admin("GET", f"{base}/profiles")
        except (PermissionDenied, NotFound):
            return None
        return _rotation_periods(policies, profiles)


def _rotation_periods(policies: Any, profiles: Any) -> tuple[int, ...]:
    used = {
        str(name)
        for policy in _items(policies, "policies")
        if policy.get("enabled", True)
        for name in policy.get("profiles") or ()
    }
    periods = []
    for profile in _items(profiles, "profiles"):
        if profile.get("name") not in used:
            continue
        for executor in profile.get("executors") or ():
            if isinstance(executor, dict) and executor.get("executor") == "secret-rotation":
                config = executor.get("configuration") or {}
                period = config.get("rotated-expiration-period", DEFAULT_ROTATED_PERIOD)
                periods.append(int(period) if str(period).lstrip("-").isdigit() else 0)
    return tuple(periods)


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    found = body.get(key) if isinstance(body, dict) else None
    return [item for item in found or () if isinstance(item, dict)]


def _listed_secret(rep: Mapping[str, Any]) -> str | None:
    """The secret in a ClientRepresentation, unless absent, empty or masked."""
    secret = rep.get("secret")
    return secret if isinstance(secret, str) and secret and secret != _SECRET_MASK else None


def is_full_representation(rep: Mapping[str, Any]) -> bool:
    """Whether Keycloak returned the client's type (a brief representation has neither field)."""
    return "publicClient" in rep and "id" in rep


def client_info(realm: str, rep: Mapping[str, Any], *, from_listing: bool = False) -> KeycloakClientInfo:
    """The parts of a full ClientRepresentation that decide whether it has a usable secret; the secret
    it carries is registered with the log redaction filter."""
    secret = _listed_secret(rep)
    if secret is not None:
        register_secret(secret)
    return KeycloakClientInfo(
        realm=realm,
        id=str(rep["id"]),
        client_id=str(rep["clientId"]),
        public=bool(rep.get("publicClient")),
        bearer_only=bool(rep.get("bearerOnly")),
        authenticator=str(rep.get("clientAuthenticatorType") or CLIENT_SECRET_AUTH),
        enabled=bool(rep.get("enabled", True)),
        listed_secret=secret,
        from_listing=from_listing,
        # 0 is "no expiration" to Keycloak too (OIDCClientSecretConfigWrapper.hasClientSecretExpirationTime)
        secret_expires=unix_seconds(_attribute(rep, ATTR_SECRET_EXPIRATION)) or None,
    )


def _attribute(rep: Mapping[str, Any], name: str) -> str | None:
    attributes = rep.get("attributes")
    value = attributes.get(name) if isinstance(attributes, dict) else None
    return str(value) if value is not None else None
