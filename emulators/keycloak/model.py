"""Keycloak's data model as the emulator keeps it, its constants, and its two error shapes."""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_plus

from emulators.base import Reply, Response

MASTER = "master"


ADMIN_CLI = "admin-cli"


REALM_MANAGEMENT = "realm-management"


MASTER_LIFESPAN = 60  # ApplianceBootstrap.createMasterRealm


REALM_LIFESPAN = 300  # RepresentationToModel default


SSO_IDLE = 1800


SSO_MAX = 36000


SECRET_LENGTH = 86  # Keycloak 26.7: 512 random bits as alphanumerics (measured on 26.7.3)


SECRET_MASK = "**********"  # ComponentRepresentation.SECRET_VALUE


ROTATED_EXPIRATION = 172800  # secret-rotation executor default "rotated-expiration-period"


SECRET_EXPIRATION = 2505600  # secret-rotation executor default "expiration-period" (29 days)


QUERY_CLIENTS = "query-clients"


VIEW_CLIENTS = "view-clients"


MANAGE_CLIENTS = "manage-clients"


ALL_ADMIN_ROLES = frozenset(
    {
        QUERY_CLIENTS,
        VIEW_CLIENTS,
        MANAGE_CLIENTS,
        "query-users",
        "view-users",
        "manage-users",
        "query-groups",
        "query-realms",
        "view-realm",
        "manage-realm",
        "view-events",
        "manage-events",
        "view-identity-providers",
        "manage-identity-providers",
        "view-authorization",
        "manage-authorization",
        "create-client",
        "impersonation",
        "realm-admin",
    }
)


ATTR_CREATION_TIME = "client.secret.creation.time"


ATTR_EXPIRATION_TIME = "client.secret.expiration.time"


ATTR_ROTATED = "client.secret.rotated"


ATTR_ROTATED_CREATION_TIME = "client.secret.rotated.creation.time"


ATTR_ROTATED_EXPIRATION_TIME = "client.secret.rotated.expiration.time"


ATTR_REMAINING_EXPIRATION_TIME = "client.secret.remaining.expiration.time"


ROTATION_ATTRS = (
    ATTR_EXPIRATION_TIME,
    ATTR_REMAINING_EXPIRATION_TIME,
    ATTR_ROTATED,
    ATTR_ROTATED_CREATION_TIME,
    ATTR_ROTATED_EXPIRATION_TIME,
)


def check_rotation_config(expiration_period: int, rotated_expiration_period: int) -> None:
    """Keycloak refuses a secret-rotation executor whose expiration-period is not positive or shorter
    than its rotated-expiration-period. [ClientSecretRotationExecutor.Configuration.validateConfig]"""
    if expiration_period <= 0:
        raise ValueError("the secret-rotation expiration-period must be > 0")
    if rotated_expiration_period > expiration_period:
        raise ValueError("the rotated-expiration-period must not exceed the expiration-period")


# RealmRepresentation / ClientRepresentation / UserRepresentation fields `import_realm` understands.
REALM_IMPORT_FIELDS = frozenset({"realm", "enabled", "accessTokenLifespan", "clients", "users"})


CLIENT_IMPORT_FIELDS = frozenset(
    {
        "clientId",
        "id",
        "name",
        "description",
        "enabled",
        "publicClient",
        "bearerOnly",
        "clientAuthenticatorType",
        "secret",
        "serviceAccountsEnabled",
        "directAccessGrantsEnabled",
        "protocol",
    }
)


# Browser-flow settings: accepted, not emulated (the emulator serves no authorization-code flow).
CLIENT_IGNORED_FIELDS = frozenset(
    {
        "standardFlowEnabled",
        "implicitFlowEnabled",
        "redirectUris",
        "webOrigins",
        "rootUrl",
        "baseUrl",
        "adminUrl",
    }
)


USER_IMPORT_FIELDS = frozenset(
    {
        "username",
        "enabled",
        "credentials",
        "realmRoles",
        "clientRoles",
        "serviceAccountClientId",
        "email",
        "firstName",
        "lastName",
        "emailVerified",
    }
)


DEFAULT_SCOPES = ["web-origins", "acr", "roles", "profile", "basic", "email"]


OPTIONAL_SCOPES = ["address", "phone", "offline_access", "organization", "microprofile-jwt"]


TOKEN_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def generate_secret() -> str:
    """A random alphanumeric secret, as `SecretGenerator.randomString()` makes it (86 chars on 26.7)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(SECRET_LENGTH))


@dataclass
class Client:
    id: str
    client_id: str
    secret: str | None = None
    public: bool = False
    bearer_only: bool = False
    authenticator: str = "client-secret"
    service_account: bool = False
    direct_access_grants: bool = False
    rotation_policy: bool = False
    rotated_expiration: int = ROTATED_EXPIRATION  # the policy's rotated-expiration-period; 0 keeps nothing
    secret_expiration: int = SECRET_EXPIRATION  # the policy's expiration-period (seconds)
    enabled: bool = True
    description: str | None = None
    name: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    service_account_user: str | None = None  # User.id
    regenerations: int = 0  # calls of the regenerate endpoint (a rotation on a PUT does not count)
    updates: int = 0  # PUTs of the client representation
    builtin: bool = False


@dataclass
class User:
    id: str
    username: str
    password: str | None
    realm_roles: set[str] = field(default_factory=set)
    client_roles: dict[str, set[str]] = field(default_factory=dict)
    enabled: bool = True
    service_account_client: str | None = None  # Client.id


@dataclass
class Session:
    id: str
    realm: str
    user_id: str
    client_id: str  # clientId
    started: int
    last_refresh: int


@dataclass
class Realm:
    name: str
    access_token_lifespan: int
    sso_idle: int = SSO_IDLE
    sso_max: int = SSO_MAX
    clients: dict[str, Client] = field(default_factory=dict)  # by uuid
    users: dict[str, User] = field(default_factory=dict)  # by id

    def client_by_client_id(self, client_id: str) -> Client | None:
        return next((c for c in self.clients.values() if c.client_id == client_id), None)

    def user_by_name(self, username: str) -> User | None:
        wanted = username.lower()  # Keycloak stores usernames lower-cased
        return next(
            (u for u in self.users.values() if u.username == wanted and u.service_account_client is None),
            None,
        )


def oauth_error(status: int, error: str, description: str) -> Reply:
    return Reply(
        Response.json(status, {"error": error, "error_description": description}, headers=dict(TOKEN_HEADERS))
    )


def jaxrs_error(status: int, message: str | None = None) -> Reply:
    """A WebApplicationException as KeycloakErrorHandler renders it: `{"error": <message>}`."""
    text = message or f"HTTP {status} {HTTPStatus(status).phrase}"
    # KeycloakErrorHandler builds a fresh response: no WWW-Authenticate challenge (Keycloak 26.7.3).
    return Reply(Response.json(status, {"error": text}))


def admin_client_of(realm: str) -> str:
    return f"{MASTER}-realm" if realm == MASTER else REALM_MANAGEMENT


def parse_roles(
    spec: Iterable[str] | Mapping[str, Iterable[str]], default_client: str
) -> dict[str, set[str]]:
    roles: dict[str, set[str]] = {}
    if isinstance(spec, Mapping):
        for client, names in spec.items():
            roles.setdefault(str(client), set()).update(str(n) for n in names)
        return roles
    if isinstance(spec, str):
        spec = [spec]
    for item in spec:
        client, sep, role = str(item).rpartition(":")
        roles.setdefault(client if sep else default_client, set()).add(role)
    return roles


def seed_password(entry: Mapping[str, Any]) -> str:
    if entry.get("password") is not None:
        return str(entry["password"])
    for credential in entry.get("credentials") or []:
        if credential.get("type", "password") == "password" and credential.get("value") is not None:
            return str(credential["value"])
    raise ValueError(f"seed user {entry.get('username')!r} has no password")


def import_password(entry: Mapping[str, Any]) -> str | None:
    """The password credential of an imported user, or None (a user without one cannot log in)."""
    for credential in entry.get("credentials") or []:
        if credential.get("type", "password") == "password" and credential.get("value") is not None:
            return str(credential["value"])
    return None


def reject_unknown(entry: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ValueError(f"{where}: fields the emulator does not honour: {', '.join(unknown)}")


def same_secret(presented: str, stored: str) -> bool:
    return secrets.compare_digest(presented.encode(), stored.encode())


def can_list(roles: frozenset[str]) -> bool:
    return QUERY_CLIENTS in roles or can_view(roles)


def can_view(roles: frozenset[str]) -> bool:
    return VIEW_CLIENTS in roles or MANAGE_CLIENTS in roles


def require_role(allowed: bool) -> None:
    if not allowed:
        raise jaxrs_error(403)


def first_value(form: Mapping[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = form.get(name)
    return values[0] if values else default


def scope_of(form: Mapping[str, list[str]]) -> str:
    requested = (first_value(form, "scope") or "").split()
    scopes = ["openid"] if "openid" in requested else []
    scopes += ["profile", "email"]
    scopes += [s for s in requested if s not in scopes and s in OPTIONAL_SCOPES]
    return " ".join(scopes)


def parse_basic(header: str) -> tuple[str, str] | None:
    """`BasicAuthHelper.RFC6749.parseHeader`: both halves are form-url-encoded before base64."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(user), unquote_plus(password)


def realm_of_issuer(claims: Mapping[str, Any]) -> str | None:
    issuer = str(claims.get("iss") or "")
    head, sep, realm = issuer.rpartition("/realms/")
    return realm if sep and head and "/" not in realm else None


def int_param(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw not in (None, "") else default
    except ValueError:
        raise jaxrs_error(404) from None  # JAX-RS answers 404 when a query param cannot be converted


def without_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}
