"""A Keycloak 26 emulator: the OIDC token endpoint and the slice of the Admin REST API that reads and rotates
client secrets, served over real HTTP with real, expiring RS256 JWTs.

It is shared by the tests and `make demo`. It behaves like Keycloak 26 (Quarkus distribution, no `/auth`
prefix), derived from Keycloak's source and python-keycloak's source, not from what our jobs expect.

Covered
-------
Token endpoint ``POST /realms/{realm}/protocol/openid-connect/token`` (form-encoded):

- ``client_credentials`` with client_id/client_secret in the form or in HTTP Basic (RFC 6749 form-encoding of
  both halves). No refresh_token (``client_credentials.use_refresh_token`` defaults to false), no
  ``session_state``, ``refresh_expires_in: 0``. [kc ClientCredentialsGrantType, OIDCAdvancedConfigWrapper]
- ``password`` (e.g. the public ``admin-cli`` client) and ``refresh_token`` for the password-grant session.
  An ``id_token`` is added when ``scope`` contains ``openid`` (python-keycloak always sends ``scope=openid``).
- Errors, as Keycloak renders them (``{"error", "error_description"}``, Cache-Control: no-store):

  - unknown realm: 404 ``{"error":"Realm does not exist"}`` [RealmsResource.init]
  - no grant_type: 400 invalid_request "Missing form parameter: grant_type"; an unknown one: 400
    unsupported_grant_type "Unsupported grant_type"; a form parameter sent twice: 400 invalid_request
    "duplicated parameter" [TokenEndpoint]
  - no client_id, unknown or disabled client: 401 invalid_client "Invalid client or Invalid client
    credentials"
    [AuthenticationProcessor.handleClientAuthException]
  - confidential client with a missing or wrong secret: 401 **unauthorized_client** "Invalid client or Invalid
    client credentials" [ClientIdAndSecretAuthenticator.reportFailedAuth]
  - confidential client whose authenticator is not client-secret: 400 invalid_client "Parameter
    client_assertion_type is missing" (**UNCONFIRMED** wording)
  - bearer-only client: 400 invalid_client "Bearer-only not allowed" [TokenEndpoint.checkClient]
  - client_credentials on a public client: 401 unauthorized_client "Public client not allowed to retrieve
    service account"; service accounts disabled: 401 unauthorized_client "Client not enabled to retrieve
    service account" [ClientCredentialsGrantType]
  - password grant, direct access grants disabled: 400 unauthorized_client "Client not allowed for direct
    access grants" [ResourceOwnerPasswordCredentialsGrantType]; no username: 401 invalid_request "Missing
    parameter: username"; unknown user or wrong password: 400 invalid_grant "Invalid user credentials"
  - refresh_token: 400 invalid_grant with "Token is not active" (expired), "Invalid refresh token" (bad),
    "Session not active" (session gone) — the three strings python-keycloak's ``refresh_token()`` matches —
    or "Invalid refresh token. Token client and authorized client don't match"

  Note two places where the brief/CONTRACTS expectation differs from Keycloak's source: a *wrong secret* is
  ``unauthorized_client`` (not ``invalid_client``) and a client without service accounts is **401** (not 400).

- Lifespans: master realm access tokens live 60 s (``ApplianceBootstrap.createMasterRealm``), other realms
  300 s (``RepresentationToModel``); SSO idle 1800 s / max 36000 s bound the refresh token. The constructor
  knob ``token_lifespan`` (also a settable attribute) overrides every realm, for tests. Expiry is checked like
  Keycloak's ``TokenVerifier``: expired when ``int(now) > exp``. ``clock`` (default ``time.time``) can be
  replaced to move time without sleeping.

Admin API (``/admin/realms/{realm}/...``, Bearer token required):

- ``GET clients`` with ``clientId`` (exact; ``200 []`` when absent), ``search=true`` (case-insensitive
  substring, ordered by clientId), ``first``/``max`` (no default page size), ``viewableOnly``.
- ``GET clients/{uuid}``; ``POST clients`` (201 + Location; 409 ``{"errorMessage":"Client X already
  exists"}``).
- ``GET``/``POST clients/{uuid}/client-secret`` (``{"type":"secret","value":...}``; POST stores a fresh
  86-char alphanumeric secret (512 random bits, as Keycloak 26.7.3 makes them) and
  ``client.secret.creation.time`` with **no** public/bearer-only/JWT check, like
  ``KeycloakModelUtils.generateSecret``; the GET of a client that never had a secret omits ``value``).
- ``GET``/``DELETE clients/{uuid}/client-secret/rotated`` (404 ``{"error":"Client does not have a rotated
  secret"}``; DELETE is always 204).
- The per-client knob ``rotation_policy`` stands for a client policy with the (preview) ``secret-rotation``
  executor at its defaults: a regenerate of a confidential client keeps the previous secret as
  ``client.secret.rotated`` for 2 days (both authenticate), and sets a 29-day expiration. Without it a
  regenerate clears any rotated secret, so the old secret dies at once. [ClientSecretRotationExecutor]
- Errors [KeycloakErrorHandler maps a WebApplicationException to ``{"error": <message>}``]: missing, bad,
  foreign-signed, expired token, unknown issuer realm or ended session → 401 ``{"error":"HTTP 401
  Unauthorized"}`` without a ``WWW-Authenticate`` header [AdminRoot.authenticateRealmAdminRequest];
  unknown realm → 404 ``{"error":"Realm not found."}`` [RealmsAdminResource]; token of realm A on realm B
  (A not master) or a missing role → 403 ``{"error":"HTTP 403 Forbidden"}``; unknown client uuid → 404
  ``{"error":"Could not find client"}`` when the caller may list clients, else 403
  [ClientsResource.getClient].
- Injected faults (``fail_next``) answer with Keycloak's 5xx body ``{"error":"unknown_error",
  "error_description":"For more on this error consult the server log."}``; an injected 4xx uses the JAX-RS
  default message, e.g. ``{"error":"HTTP 429 Too Many Requests"}``. Responses are always JSON, whatever
  ``Accept`` says (real Keycloak sends an HTML error page to ``Accept: text/html``).
- Also ``GET /realms/{realm}/.well-known/openid-configuration`` and ``.../protocol/openid-connect/certs``.

Authorisation model (kept simple, and documented)
--------------------------------------------------
Roles are evaluated against the user's *current* role mappings (like Keycloak's ``AdminAuth``), not the token
claims, so a role change applies to the next call.

- A token of realm R administers realm R through its ``realm-management`` client roles (``realm-admin``
  implies all of them).
- A token of realm ``master`` administers realm T through the client roles of the master client
  ``T-realm`` (``master-realm`` for master itself), or everything when the user holds master's realm role
  ``admin``. A token of any other realm gets 403 on a foreign realm.
- FGAP v2 [kc ClientPermissionsV2]: list = query-clients or view; view = view-clients or manage-clients;
  configure = manage-clients. Without view rights (query-clients alone) a list is ``200 []``, whatever
  the query (measured on Keycloak 26.7.3).
- **Reading a secret needs manage-clients.** Keycloak PR #51733 (merged 2026-08, release 26.8.0, closes
  issue #49220 "Client GET endpoints return raw client secrets to view-clients role holders") made
  ``ClientResource.getClientSecret()`` and ``getClientRotatedSecret()`` require manage-clients (403 to
  view-only callers) and masks ``secret`` as ``**********`` in client representations for callers without
  manage-clients. Up to 26.7 view-clients was enough (CONTRACTS §1.7 describes that older behaviour). The
  knob ``secret_read_requires_manage=False`` emulates Keycloak ≤ 26.7.

Role specs in the Python API and the seed: a mapping ``{client_id: [role, ...]}``, or strings where
``"view-clients"`` means a role of the realm's admin client (``realm-management``; ``master-realm`` in master)
and ``"ameide-realm:view-clients"`` names the client explicitly.

Every realm is created with Keycloak's built-in clients (account, account-console, admin-cli, broker,
security-admin-console, and realm-management, or master-realm in master); master also gets a bearer-only
``<realm>-realm`` client per realm. They show up in listings and ``search=true`` results, as in Keycloak.

Sources
-------
Keycloak server code (keycloak/keycloak, 26.x): TokenEndpoint, ClientIdAndSecretAuthenticator,
AuthenticationProcessor, ClientCredentialsGrantType, ResourceOwnerPasswordCredentialsGrantType,
KeycloakErrorHandler, RealmsResource, RealmsAdminResource, ClientsResource, ClientResource,
KeycloakModelUtils.generateSecret, ClientSecretRotationExecutor(Factory), ApplianceBootstrap; issue #49220 and
PR #51733 (secret reads need manage-clients from 26.8.0); issue #49625 (client-auth error codes as of 2026);
python-keycloak 7.1 (KeycloakAdmin.get_client_id/get_client_secrets/generate_client_secrets,
KeycloakOpenIDConnection.refresh_token); /work/shared/CONTRACTS.md §1 for everything else.

Not covered
-----------
Authorization code, device, CIBA, token exchange, client-jwt/x509 authentication, introspection, logout,
userinfo, offline tokens, consent, required actions, brute-force detection, realm-level Admin API other than
clients, users/groups/roles endpoints, client scopes endpoints, fine-grained per-client permissions,
HTML error pages, CORS, the issuer check against a configured hostname (the issuer is taken from the request's
``Host`` header and only its realm is checked), DPoP/mTLS binding, ``q=`` attribute search (ignored).

Realm import (``import_realm(dict)`` / ``--import-realm FILE``, repeatable): a Keycloak
``RealmRepresentation`` JSON file, the format ``kc.sh start-dev --import-realm`` reads from
``data/import`` (e.g. ``compose/keycloak/ameide-realm.json``). The fields it honours are those of
``REALM_IMPORT_FIELDS``, ``CLIENT_IMPORT_FIELDS`` and ``USER_IMPORT_FIELDS``, with Keycloak's import
defaults (a non-public client (bearer-only included) without ``secret`` gets a generated one; a client with
``serviceAccountsEnabled`` gets its ``service-account-<clientId>`` user, whose role mappings come from the
user entry naming it in ``serviceAccountClientId``). Login-flow fields the emulator has no flows for
(``standardFlowEnabled``, ``redirectUris``, ...) are accepted and ignored; any other field is an error,
so a realm file the emulator would silently misread fails loudly instead. As in Keycloak, the bootstrap
admin comes from ``KC_BOOTSTRAP_ADMIN_USERNAME`` / ``KC_BOOTSTRAP_ADMIN_PASSWORD`` (a master user with
the realm role ``admin``) when the standalone emulator starts.

Seed format (JSON or YAML; ``load_seed(dict)`` / ``--seed FILE``), modelled on a small realm import::

    tokenLifespan: 30                # optional: overrides every realm's access token lifespan
    realms:
      - realm: master                # exists already (with admin-cli); entries are merged into it
        users:
          - username: admin
            password: admin          # or credentials: [{type: password, value: admin}]
            realmRoles: [admin]
      - realm: ameide
        accessTokenLifespan: 300     # optional
        clients:
          - clientId: client-patcher
            secret: s3cr3t           # optional; confidential clients get a generated one
            serviceAccountsEnabled: true
            serviceAccountRoles: [query-clients, view-clients, manage-clients]
          - clientId: platform-app-master
            id: 2b7c...              # optional fixed UUID
            publicClient: false
            bearerOnly: false
            clientAuthenticatorType: client-secret
            directAccessGrantsEnabled: false
            secretRotation: false    # the secret-rotation policy knob
        users:
          - username: ops
            password: ops
            clientRoles: {realm-management: [view-clients]}
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import string
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.base import EmulatorServer, Request, Response

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
SECRET_EXPIRATION = 2505600  # "expiration-period"

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
ROTATION_ATTRS = (
    ATTR_EXPIRATION_TIME,
    ATTR_ROTATED,
    ATTR_ROTATED_CREATION_TIME,
    ATTR_ROTATED_EXPIRATION_TIME,
)

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

_TOKEN_PATH = re.compile(r"^/realms/([^/]+)/protocol/openid-connect/token/?$")
_CERTS_PATH = re.compile(r"^/realms/([^/]+)/protocol/openid-connect/certs/?$")
_WELL_KNOWN_PATH = re.compile(r"^/realms/([^/]+)/\.well-known/openid-configuration/?$")
_ADMIN_PATH = re.compile(r"^/admin/realms/([^/]+)(/.*)?$")
_CLIENTS_PATH = re.compile(r"^/clients/?$")
_CLIENT_PATH = re.compile(r"^/clients/([^/]+)(/client-secret(/rotated)?)?/?$")


def generate_secret() -> str:
    """A random alphanumeric secret, as `SecretGenerator.randomString()` makes it (86 chars on 26.7)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(SECRET_LENGTH))


# -- model --------------------------------------------------------------------------------------------
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
    enabled: bool = True
    description: str | None = None
    name: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    service_account_user: str | None = None  # User.id
    regenerations: int = 0
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


class _Problem(Exception):
    """Raised inside a handler: becomes the response it carries."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _oauth_error(status: int, error: str, description: str) -> _Problem:
    return _Problem(
        Response.json(status, {"error": error, "error_description": description}, headers=dict(TOKEN_HEADERS))
    )


def _jaxrs_error(status: int, message: str | None = None) -> _Problem:
    """A WebApplicationException as KeycloakErrorHandler renders it: `{"error": <message>}`."""
    text = message or f"HTTP {status} {HTTPStatus(status).phrase}"
    # KeycloakErrorHandler builds a fresh response: no WWW-Authenticate challenge (Keycloak 26.7.3).
    return _Problem(Response.json(status, {"error": text}))


# -- the emulator -------------------------------------------------------------------------------------
class KeycloakEmulator(EmulatorServer):
    """Keycloak 26 token endpoint + client-secret Admin API. See the module docstring for the contract."""

    name = "keycloak-emulator"
    poll_interval = 0.05  # quick stop() for tests

    def __init__(
        self,
        token_lifespan: int | None = None,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        secret_read_requires_manage: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port)
        self.latency = latency
        self.token_lifespan = token_lifespan
        self.secret_read_requires_manage = secret_read_requires_manage
        self.clock = clock
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = uuid.uuid4().hex
        self._realms: dict[str, Realm] = {}
        self._sessions: dict[str, Session] = {}
        self.add_realm(MASTER)

    # -- setup API ----------------------------------------------------------------------------------
    def add_realm(self, name: str, access_token_lifespan: int | None = None) -> None:
        """Create a realm (with Keycloak's built-in clients), or update the lifespan of an existing one."""
        with self._lock:
            existing = self._realms.get(name)
            if existing is not None:
                if access_token_lifespan is not None:
                    existing.access_token_lifespan = access_token_lifespan
                return
            default = MASTER_LIFESPAN if name == MASTER else REALM_LIFESPAN
            realm = Realm(name, access_token_lifespan or default)
            self._realms[name] = realm
            for builtin in ("account", "account-console", "security-admin-console"):
                self._put_client(realm, Client(str(uuid.uuid4()), builtin, public=True, builtin=True))
            self._put_client(
                realm,
                Client(str(uuid.uuid4()), ADMIN_CLI, public=True, direct_access_grants=True, builtin=True),
            )
            self._put_client(realm, Client(str(uuid.uuid4()), "broker", bearer_only=True, builtin=True))
            admin_client = f"{MASTER}-realm" if name == MASTER else REALM_MANAGEMENT
            self._put_client(realm, self._realm_client(admin_client))
            if name != MASTER:
                master = self._realms[MASTER]
                self._put_client(master, self._realm_client(f"{name}-realm"))

    def add_client(
        self,
        realm: str,
        client_id: str,
        *,
        secret: str | None = None,
        public: bool = False,
        bearer_only: bool = False,
        authenticator: str = "client-secret",
        service_account: bool = False,
        service_account_roles: Iterable[str] | Mapping[str, Iterable[str]] = (),
        service_account_realm_roles: Iterable[str] = (),
        direct_access_grants: bool = False,
        rotation_policy: bool = False,
        enabled: bool = True,
        client_uuid: str | None = None,
        description: str | None = None,
    ) -> str:
        """Create a client; returns its UUID. A non-public client without `secret` gets a generated one."""
        with self._lock:
            target = self._realm(realm)
            if target.client_by_client_id(client_id) is not None:
                raise ValueError(f"client {client_id!r} already exists in realm {realm!r}")
            # Keycloak 26.7.3 generates a secret for every non-public client, bearer-only ones included.
            client = Client(
                client_uuid or str(uuid.uuid4()),
                client_id,
                secret=secret if secret is not None else (None if public else generate_secret()),
                public=public,
                bearer_only=bearer_only,
                authenticator=authenticator,
                service_account=service_account,
                direct_access_grants=direct_access_grants,
                rotation_policy=rotation_policy,
                enabled=enabled,
                description=description,
            )
            if client.secret is not None:
                client.attributes[ATTR_CREATION_TIME] = str(self._now())
            self._put_client(target, client)
            if service_account:
                user = User(str(uuid.uuid4()), f"service-account-{client_id}".lower(), None)
                user.service_account_client = client.id
                user.realm_roles = {f"default-roles-{realm}", *service_account_realm_roles}
                user.client_roles = _parse_roles(service_account_roles, _admin_client_of(realm))
                target.users[user.id] = user
                client.service_account_user = user.id
            return client.id

    def add_user(
        self,
        realm: str,
        username: str,
        password: str | None,
        *,
        realm_roles: Iterable[str] = (),
        client_roles: Iterable[str] | Mapping[str, Iterable[str]] = (),
        enabled: bool = True,
    ) -> str:
        """Create a user with a password (None: no credential, cannot log in) and role mappings;
        returns the user id."""
        with self._lock:
            target = self._realm(realm)
            if target.user_by_name(username) is not None:
                raise ValueError(f"user {username!r} already exists in realm {realm!r}")
            user = User(
                str(uuid.uuid4()),
                username.lower(),
                password,
                realm_roles={f"default-roles-{realm}", *realm_roles},
                client_roles=_parse_roles(client_roles, _admin_client_of(realm)),
                enabled=enabled,
            )
            target.users[user.id] = user
            return user.id

    def grant_roles(
        self, realm: str, username: str, client_roles: Iterable[str] | Mapping[str, Iterable[str]]
    ) -> None:
        """Add client roles to a user, or to a service account given as `service-account-<clientId>`."""
        with self._lock:
            user = self._any_user(realm, username)
            for client, roles in _parse_roles(client_roles, _admin_client_of(realm)).items():
                user.client_roles.setdefault(client, set()).update(roles)

    def revoke_roles(self, realm: str, username: str) -> None:
        """Remove every client role mapping of a user or service account."""
        with self._lock:
            self._any_user(realm, username).client_roles.clear()

    def client_secret(self, realm: str, client_id: str) -> str | None:
        with self._lock:
            return self._client(realm, client_id).secret

    def rotated_secret(self, realm: str, client_id: str) -> str | None:
        with self._lock:
            return self._client(realm, client_id).attributes.get(ATTR_ROTATED)

    def regenerations(self, realm: str, client_id: str) -> int:
        with self._lock:
            return self._client(realm, client_id).regenerations

    def set_secret(self, realm: str, client_id: str, value: str) -> None:
        """Simulate an out-of-band change (an admin pasting a secret in the console)."""
        with self._lock:
            client = self._client(realm, client_id)
            client.secret = value
            client.attributes[ATTR_CREATION_TIME] = str(self._now())

    def client_uuid(self, realm: str, client_id: str) -> str:
        with self._lock:
            return self._client(realm, client_id).id

    def set_client(self, realm: str, client_id: str, **changes: Any) -> None:
        """Flip client fields (`public`, `bearer_only`, `authenticator`, `enabled`, ...) after creation."""
        with self._lock:
            client = self._client(realm, client_id)
            for key, value in changes.items():
                if not hasattr(client, key):
                    raise AttributeError(key)
                setattr(client, key, value)

    def end_sessions(self) -> None:
        """Log every user out: password-grant tokens then get 401, a refresh gets "Session not active"."""
        with self._lock:
            self._sessions.clear()

    def load_seed(self, seed: Mapping[str, Any]) -> None:
        """Load realms, clients and users from a seed mapping (format in the module docstring)."""
        if seed.get("tokenLifespan") is not None:
            self.token_lifespan = int(seed["tokenLifespan"])
        for realm_entry in seed.get("realms") or []:
            name = realm_entry["realm"]
            self.add_realm(name, realm_entry.get("accessTokenLifespan"))
            for entry in realm_entry.get("clients") or []:
                self.add_client(
                    name,
                    entry["clientId"],
                    secret=entry.get("secret"),
                    public=bool(entry.get("publicClient", False)),
                    bearer_only=bool(entry.get("bearerOnly", False)),
                    authenticator=entry.get("clientAuthenticatorType", "client-secret"),
                    service_account=bool(entry.get("serviceAccountsEnabled", False)),
                    service_account_roles=entry.get("serviceAccountRoles") or (),
                    service_account_realm_roles=entry.get("serviceAccountRealmRoles") or (),
                    direct_access_grants=bool(entry.get("directAccessGrantsEnabled", False)),
                    rotation_policy=bool(entry.get("secretRotation", False)),
                    enabled=bool(entry.get("enabled", True)),
                    client_uuid=entry.get("id"),
                    description=entry.get("description"),
                )
            for entry in realm_entry.get("users") or []:
                self.add_user(
                    name,
                    entry["username"],
                    _seed_password(entry),
                    realm_roles=entry.get("realmRoles") or (),
                    client_roles=entry.get("clientRoles") or (),
                    enabled=bool(entry.get("enabled", True)),
                )

    def import_realm(self, rep: Mapping[str, Any], source: str = "realm import") -> None:
        """Load one Keycloak RealmRepresentation (see the module docstring); raises ValueError naming
        `source` and the entry for anything the emulator cannot honour."""
        _reject_unknown(rep, REALM_IMPORT_FIELDS, source)
        name = rep.get("realm")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{source}: 'realm' (the realm name) is required")
        if rep.get("enabled", True) is not True:
            raise ValueError(f"{source}: disabled realms are not emulated")
        self.add_realm(name, rep.get("accessTokenLifespan"))
        for index, client in enumerate(rep.get("clients") or []):
            where = f"{source}: clients[{index}] ({client.get('clientId')})"
            _reject_unknown(client, CLIENT_IMPORT_FIELDS | CLIENT_IGNORED_FIELDS, where)
            if client.get("protocol", "openid-connect") != "openid-connect":
                raise ValueError(f"{where}: only openid-connect clients are emulated")
            new_id = self.add_client(
                name,
                client["clientId"],
                secret=client.get("secret"),
                public=bool(client.get("publicClient", False)),
                bearer_only=bool(client.get("bearerOnly", False)),
                authenticator=client.get("clientAuthenticatorType") or "client-secret",
                service_account=bool(client.get("serviceAccountsEnabled", False)),
                direct_access_grants=bool(client.get("directAccessGrantsEnabled", False)),
                enabled=bool(client.get("enabled", True)),
                client_uuid=client.get("id"),
                description=client.get("description"),
            )
            with self._lock:
                self._realm(name).clients[new_id].name = client.get("name")
        for index, user in enumerate(rep.get("users") or []):
            where = f"{source}: users[{index}] ({user.get('username')})"
            _reject_unknown(user, USER_IMPORT_FIELDS, where)
            owner = user.get("serviceAccountClientId")
            if owner is not None:
                self._import_service_account_user(name, str(owner), user, where)
                continue
            self.add_user(
                name,
                user["username"],
                _import_password(user),
                realm_roles=user.get("realmRoles") or (),
                client_roles=user.get("clientRoles") or {},
                enabled=bool(user.get("enabled", True)),
            )

    def _import_service_account_user(
        self, realm: str, client_id: str, entry: Mapping[str, Any], where: str
    ) -> None:
        """Role mappings of a client's service-account user, as a realm export writes them."""
        with self._lock:
            client = self._realm(realm).client_by_client_id(client_id)
            if client is None or client.service_account_user is None:
                raise ValueError(
                    f"{where}: client {client_id!r} has no service account (serviceAccountsEnabled)"
                )
            user = self._realm(realm).users[client.service_account_user]
            if entry.get("username", user.username).lower() != user.username:
                raise ValueError(f"{where}: a service-account user is named {user.username!r}")
            user.realm_roles.update(str(r) for r in entry.get("realmRoles") or ())
            for owner, roles in _parse_roles(entry.get("clientRoles") or {}, _admin_client_of(realm)).items():
                user.client_roles.setdefault(owner, set()).update(roles)

    # -- base hooks ---------------------------------------------------------------------------------
    def error_body(self, status: int, request: Request) -> Response:
        if status >= 500:
            payload = {
                "error": "unknown_error",
                "error_description": "For more on this error consult the server log.",
            }
            return Response.json(status, payload)
        return _jaxrs_error(status).response

    def handle(self, request: Request) -> Response:
        try:
            return self._route(request)
        except _Problem as problem:
            return problem.response

    # -- routing ------------------------------------------------------------------------------------
    def _route(self, request: Request) -> Response:
        path = request.path
        if match := _TOKEN_PATH.match(path):
            self._require_method(request, "POST")
            return self._token(request, match.group(1))
        if match := _CERTS_PATH.match(path):
            self._require_method(request, "GET")
            self._realm_or_404(match.group(1))
            return Response.json(200, {"keys": [self._jwk()]})
        if match := _WELL_KNOWN_PATH.match(path):
            self._require_method(request, "GET")
            return Response.json(200, self._discovery(request, match.group(1)))
        if match := _ADMIN_PATH.match(path):
            return self._admin(request, match.group(1), match.group(2) or "")
        raise _jaxrs_error(404)

    @staticmethod
    def _require_method(request: Request, *allowed: str) -> None:
        if request.method not in allowed:
            raise _jaxrs_error(405)

    # -- token endpoint -----------------------------------------------------------------------------
    def _token(self, request: Request, realm_name: str) -> Response:
        realm = self._realm_or_404(realm_name)
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        grant_type = _first(form, "grant_type")
        if grant_type is None:
            raise _oauth_error(400, "invalid_request", "Missing form parameter: grant_type")
        if grant_type not in ("client_credentials", "password", "refresh_token"):
            raise _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
        with self._lock:
            client = self._authenticate_client(request, realm, form)
            if any(len(values) != 1 for values in form.values()):
                raise _oauth_error(400, "invalid_request", "duplicated parameter")
            if client.bearer_only:
                raise _oauth_error(400, "invalid_client", "Bearer-only not allowed")
            if grant_type == "client_credentials":
                return self._client_credentials(request, realm, client, form)
            if grant_type == "password":
                return self._password(request, realm, client, form)
            return self._refresh(request, realm, client, form)

    def _authenticate_client(self, request: Request, realm: Realm, form: dict[str, list[str]]) -> Client:
        client_id = secret = None
        authorization = request.headers.get("authorization")
        if authorization is not None:
            basic = _parse_basic(authorization)
            if basic is not None:
                client_id, secret = basic
            elif "client_id" not in form:
                challenge = {"WWW-Authenticate": f'Basic realm="{realm.name}"'}
                raise _Problem(Response(401, b"", challenge))
        client_id = _first(form, "client_id", client_id)
        secret = _first(form, "client_secret", secret)
        if client_id is None:  # Keycloak 26.7.3 answers like for an unknown client
            raise _oauth_error(401, "invalid_client", "Invalid client or Invalid client credentials")
        client = realm.client_by_client_id(client_id)
        if client is None or not client.enabled:
            raise _oauth_error(401, "invalid_client", "Invalid client or Invalid client credentials")
        if client.public:
            return client
        if client.authenticator != "client-secret":
            raise _oauth_error(400, "invalid_client", "Parameter client_assertion_type is missing")
        if secret is None or not self._secret_matches(client, secret):
            raise _oauth_error(401, "unauthorized_client", "Invalid client or Invalid client credentials")
        return client

    def _secret_matches(self, client: Client, presented: str) -> bool:
        now = self._now()
        expires = int(client.attributes.get(ATTR_EXPIRATION_TIME, "0") or 0)
        if expires and now > expires:
            return False
        if client.secret is not None and _same(presented, client.secret):
            return True
        rotated = client.attributes.get(ATTR_ROTATED)
        rotated_expires = int(client.attributes.get(ATTR_ROTATED_EXPIRATION_TIME, "0") or 0)
        return rotated is not None and now <= rotated_expires and _same(presented, rotated)

    def _client_credentials(
        self, request: Request, realm: Realm, client: Client, form: dict[str, list[str]]
    ) -> Response:
        if client.public:
            raise _oauth_error(
                401, "unauthorized_client", "Public client not allowed to retrieve service account"
            )
        if not client.service_account or client.service_account_user is None:
            raise _oauth_error(401, "unauthorized_client", "Client not enabled to retrieve service account")
        user = realm.users[client.service_account_user]
        scope = _scope(form)
        body = self._token_body(request, realm, client, user, scope, session=None)
        return Response.json(200, body, headers=dict(TOKEN_HEADERS))

    def _password(
        self, request: Request, realm: Realm, client: Client, form: dict[str, list[str]]
    ) -> Response:
        if not client.direct_access_grants:
            raise _oauth_error(400, "unauthorized_client", "Client not allowed for direct access grants")
        username = _first(form, "username")
        if not username:
            raise _oauth_error(401, "invalid_request", "Missing parameter: username")
        user = realm.user_by_name(username)
        password = _first(form, "password") or ""
        if user is None or user.password is None or not _same(password, user.password):
            raise _oauth_error(400, "invalid_grant", "Invalid user credentials")  # 400 on 26.7.3
        if not user.enabled:
            raise _oauth_error(400, "invalid_grant", "Account disabled")
        now = self._now()
        session = Session(str(uuid.uuid4()), realm.name, user.id, client.client_id, now, now)
        self._sessions[session.id] = session
        body = self._token_body(request, realm, client, user, _scope(form), session=session)
        return Response.json(200, body, headers=dict(TOKEN_HEADERS))

    def _refresh(
        self, request: Request, realm: Realm, client: Client, form: dict[str, list[str]]
    ) -> Response:
        raw = _first(form, "refresh_token")
        if not raw:
            raise _oauth_error(400, "invalid_request", "Missing parameter: refresh_token")
        claims = self._decode(raw)
        if claims is None or claims.get("typ") != "Refresh" or _realm_of_issuer(claims) != realm.name:
            raise _oauth_error(400, "invalid_grant", "Invalid refresh token")
        if self._now() > int(claims.get("exp", 0)):
            raise _oauth_error(400, "invalid_grant", "Token is not active")
        if claims.get("azp") != client.client_id:
            raise _oauth_error(
                400, "invalid_grant", "Invalid refresh token. Token client and authorized client don't match"
            )
        session = self._live_session(realm, claims.get("sid"))
        user = realm.users.get(session.user_id) if session else None
        if session is None or user is None or not user.enabled:
            raise _oauth_error(400, "invalid_grant", "Session not active")
        session.last_refresh = self._now()
        scope = str(claims.get("scope") or "profile email")
        body = self._token_body(request, realm, client, user, scope, session=session)
        return Response.json(200, body, headers=dict(TOKEN_HEADERS))

    def _live_session(self, realm: Realm, sid: Any) -> Session | None:
        session = self._sessions.get(str(sid)) if sid else None
        if session is None or session.realm != realm.name:
            return None
        now = self._now()
        if now > session.last_refresh + realm.sso_idle or now > session.started + realm.sso_max:
            self._sessions.pop(session.id, None)
            return None
        return session

    def _token_body(
        self,
        request: Request,
        realm: Realm,
        client: Client,
        user: User,
        scope: str,
        *,
        session: Session | None,
    ) -> dict[str, Any]:
        now = self._now()
        lifespan = self.token_lifespan if self.token_lifespan is not None else realm.access_token_lifespan
        issuer = self._issuer(request, realm.name)
        resource_access = {c: {"roles": sorted(r)} for c, r in sorted(user.client_roles.items()) if r}
        access: dict[str, Any] = {
            "exp": now + lifespan,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": issuer,
            "sub": user.id,
            "typ": "Bearer",
            "azp": client.client_id,
            "acr": "1",
            "allowed-origins": [],
            "realm_access": {"roles": sorted(user.realm_roles)},
            "resource_access": resource_access,
            "scope": scope,
            "email_verified": False,
            "preferred_username": user.username,
        }
        audience = [c for c in resource_access if c != client.client_id]
        if audience:
            access["aud"] = audience if len(audience) > 1 else audience[0]
        if session is not None:
            access["sid"] = session.id
        else:
            access.update(
                {
                    "client_id": client.client_id,
                    "clientHost": "127.0.0.1",
                    "clientAddress": "127.0.0.1",
                }
            )
        body: dict[str, Any] = {
            "access_token": self._sign(access),
            "expires_in": lifespan,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": scope,
        }
        if session is not None:
            refresh_lifespan = min(realm.sso_idle, session.started + realm.sso_max - now)
            refresh = {
                "exp": now + refresh_lifespan,
                "iat": now,
                "jti": str(uuid.uuid4()),
                "iss": issuer,
                "aud": issuer,
                "sub": user.id,
                "typ": "Refresh",
                "azp": client.client_id,
                "sid": session.id,
                "scope": scope,
            }
            body["refresh_token"] = self._sign(refresh)
            body["refresh_expires_in"] = refresh_lifespan
            body["session_state"] = session.id
        if "openid" in scope.split():
            id_token = {
                "exp": now + lifespan,
                "iat": now,
                "jti": str(uuid.uuid4()),
                "iss": issuer,
                "aud": client.client_id,
                "sub": user.id,
                "typ": "ID",
                "azp": client.client_id,
                "acr": "1",
                "email_verified": False,
                "preferred_username": user.username,
            }
            if session is not None:
                id_token["sid"] = session.id
            body["id_token"] = self._sign(id_token)
        return body

    # -- admin API ----------------------------------------------------------------------------------
    def _admin(self, request: Request, realm_name: str, rest: str) -> Response:
        with self._lock:
            token_realm, user = self._authenticate_admin(request)
            realm = self._realms.get(realm_name)
            if realm is None:
                raise _jaxrs_error(404, "Realm not found.")
            roles = self._admin_roles(token_realm, user, realm)
            if _CLIENTS_PATH.match(rest):
                self._require_method(request, "GET", "POST")
                if request.method == "GET":
                    return self._list_clients(request, realm, roles)
                return self._create_client(request, realm, roles)
            if match := _CLIENT_PATH.match(rest):
                client = realm.clients.get(match.group(1))
                if client is None:
                    raise (
                        _jaxrs_error(404, "Could not find client") if _can_list(roles) else _jaxrs_error(403)
                    )
                if match.group(3):
                    return self._rotated_secret(request, client, roles)
                if match.group(2):
                    return self._client_secret_endpoint(request, client, roles)
                self._require_method(request, "GET")
                _require(_can_view(roles))
                return Response.json(200, self._representation(client, roles))
            raise _jaxrs_error(404)

    def _authenticate_admin(self, request: Request) -> tuple[Realm, User]:
        token = request.bearer
        claims = self._decode(token) if token else None
        if claims is None or claims.get("typ") != "Bearer":
            raise _jaxrs_error(401)
        realm = self._realms.get(_realm_of_issuer(claims) or "")
        if realm is None or self._now() > int(claims.get("exp", 0)):
            raise _jaxrs_error(401)
        client = realm.client_by_client_id(str(claims.get("azp")))
        user = realm.users.get(str(claims.get("sub")))
        if client is None or not client.enabled or user is None or not user.enabled:
            raise _jaxrs_error(401)
        if user.service_account_client is None and self._live_session(realm, claims.get("sid")) is None:
            raise _jaxrs_error(401)
        return realm, user

    def _admin_roles(self, token_realm: Realm, user: User, target: Realm) -> frozenset[str]:
        if token_realm.name == MASTER:
            if "admin" in user.realm_roles:
                return ALL_ADMIN_ROLES
            roles = user.client_roles.get(f"{target.name}-realm", set())
        elif token_realm.name == target.name:
            roles = user.client_roles.get(REALM_MANAGEMENT, set())
        else:
            raise _jaxrs_error(403)
        return ALL_ADMIN_ROLES if "realm-admin" in roles else frozenset(roles)

    def _list_clients(self, request: Request, realm: Realm, roles: frozenset[str]) -> Response:
        _require(_can_list(roles))
        client_id = request.q("clientId")
        search = (request.q("search") or "false").lower() == "true"
        if client_id and not search:
            found = realm.client_by_client_id(client_id)
            clients = [found] if found else []
        else:
            needle = (client_id or "").lower()
            clients = sorted(
                (c for c in realm.clients.values() if needle in c.client_id.lower()),
                key=lambda c: c.client_id,
            )
        first = _int_param(request.q("first"), 0)
        maximum = _int_param(request.q("max"), -1)
        clients = clients[max(first, 0) :]
        if maximum >= 0:
            clients = clients[:maximum]
        if _can_view(roles):
            return Response.json(200, [self._representation(c, roles) for c in clients])
        return Response.json(200, [])  # query-clients alone sees no client (Keycloak 26.7.3: `200 []`)

    def _create_client(self, request: Request, realm: Realm, roles: frozenset[str]) -> Response:
        _require(MANAGE_CLIENTS in roles)
        try:
            body = request.json()
        except ValueError:
            raise _oauth_error(400, "invalid_request", "Cannot parse the JSON") from None
        if not isinstance(body, dict) or not body.get("clientId"):
            raise _Problem(Response.json(400, {"errorMessage": "Client id is required"}))
        client_id = str(body["clientId"])
        if realm.client_by_client_id(client_id) is not None:
            raise _Problem(Response.json(409, {"errorMessage": f"Client {client_id} already exists"}))
        new_id = self.add_client(
            realm.name,
            client_id,
            secret=body.get("secret"),
            public=bool(body.get("publicClient", False)),
            bearer_only=bool(body.get("bearerOnly", False)),
            authenticator=body.get("clientAuthenticatorType") or "client-secret",
            service_account=bool(body.get("serviceAccountsEnabled", False)),
            direct_access_grants=bool(body.get("directAccessGrantsEnabled", False)),
            enabled=bool(body.get("enabled", True)),
            client_uuid=body.get("id"),
            description=body.get("description"),
        )
        location = f"{self._base_url(request)}/admin/realms/{realm.name}/clients/{new_id}"
        return Response(201, b"", {"Location": location})

    def _client_secret_endpoint(self, request: Request, client: Client, roles: frozenset[str]) -> Response:
        self._require_method(request, "GET", "POST")
        if request.method == "GET":
            _require(self._can_read_secret(roles))
            return Response.json(200, _without_none({"type": "secret", "value": client.secret}))
        _require(MANAGE_CLIENTS in roles)
        self._regenerate(client)
        return Response.json(200, {"type": "secret", "value": client.secret})

    def _rotated_secret(self, request: Request, client: Client, roles: frozenset[str]) -> Response:
        self._require_method(request, "GET", "DELETE")
        if request.method == "DELETE":
            _require(MANAGE_CLIENTS in roles)
            for key in (ATTR_ROTATED, ATTR_ROTATED_CREATION_TIME, ATTR_ROTATED_EXPIRATION_TIME):
                client.attributes.pop(key, None)
            return Response(204)
        _require(self._can_read_secret(roles))
        rotated = client.attributes.get(ATTR_ROTATED)
        if rotated is None:
            raise _jaxrs_error(404, "Client does not have a rotated secret")
        return Response.json(200, {"type": "secret", "value": rotated})

    def _regenerate(self, client: Client) -> None:
        now = self._now()
        previous = client.secret
        if client.rotation_policy and not client.public and not client.bearer_only and previous is not None:
            client.attributes[ATTR_ROTATED] = previous
            client.attributes[ATTR_ROTATED_CREATION_TIME] = client.attributes.get(
                ATTR_CREATION_TIME, str(now)
            )
            client.attributes[ATTR_ROTATED_EXPIRATION_TIME] = str(now + ROTATED_EXPIRATION)
            client.attributes[ATTR_EXPIRATION_TIME] = str(now + SECRET_EXPIRATION)
        else:
            for key in ROTATION_ATTRS:
                client.attributes.pop(key, None)
        client.secret = generate_secret()
        client.attributes[ATTR_CREATION_TIME] = str(now)
        client.regenerations += 1

    def _can_read_secret(self, roles: frozenset[str]) -> bool:
        return MANAGE_CLIENTS in roles if self.secret_read_requires_manage else _can_view(roles)

    def _representation(self, client: Client, roles: frozenset[str]) -> dict[str, Any]:
        manage = MANAGE_CLIENTS in roles
        secret = None if client.public or client.bearer_only else client.secret
        if secret is not None and self.secret_read_requires_manage and not manage:
            secret = SECRET_MASK
        attributes = dict(client.attributes)
        attributes.setdefault("realm_client", "true" if client.attributes.get("realm_client") else "false")
        rep = {
            "id": client.id,
            "clientId": client.client_id,
            "name": client.name,
            "description": client.description,
            "surrogateAuthRequired": False,
            "enabled": client.enabled,
            "alwaysDisplayInConsole": False,
            "clientAuthenticatorType": client.authenticator,
            "secret": secret,  # Keycloak's mapper is NON_NULL: absent, not null, for public/bearer-only
            "redirectUris": [],
            "webOrigins": [],
            "notBefore": 0,
            "bearerOnly": client.bearer_only,
            "consentRequired": False,
            "standardFlowEnabled": not client.bearer_only,
            "implicitFlowEnabled": False,
            "directAccessGrantsEnabled": client.direct_access_grants,
            "serviceAccountsEnabled": client.service_account,
            "publicClient": client.public,
            "frontchannelLogout": True,
            "protocol": "openid-connect",
            "attributes": attributes,
            "authenticationFlowBindingOverrides": {},
            "fullScopeAllowed": not client.builtin,
            "nodeReRegistrationTimeout": -1,
            "defaultClientScopes": list(DEFAULT_SCOPES),
            "optionalClientScopes": list(OPTIONAL_SCOPES),
            "access": {"view": True, "configure": manage, "manage": manage},
        }
        return _without_none(rep)

    # -- helpers ------------------------------------------------------------------------------------
    def _now(self) -> int:
        return int(self.clock())

    def _realm(self, name: str) -> Realm:
        try:
            return self._realms[name]
        except KeyError:
            raise KeyError(f"no realm {name!r}") from None

    def _realm_or_404(self, name: str) -> Realm:
        realm = self._realms.get(name)
        if realm is None:
            raise _jaxrs_error(404, "Realm does not exist")
        return realm

    def _client(self, realm: str, client_id: str) -> Client:
        client = self._realm(realm).client_by_client_id(client_id)
        if client is None:
            raise KeyError(f"no client {client_id!r} in realm {realm!r}")
        return client

    def _any_user(self, realm: str, username: str) -> User:
        wanted = username.lower()
        user = next((u for u in self._realm(realm).users.values() if u.username == wanted), None)
        if user is None:
            raise KeyError(f"no user {username!r} in realm {realm!r}")
        return user

    @staticmethod
    def _put_client(realm: Realm, client: Client) -> None:
        realm.clients[client.id] = client

    @staticmethod
    def _realm_client(client_id: str) -> Client:
        client = Client(str(uuid.uuid4()), client_id, bearer_only=True, builtin=True)
        client.attributes["realm_client"] = "true"
        return client

    def _base_url(self, request: Request) -> str:
        host = request.headers.get("host")
        if not host:
            return self.url
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{host}"

    def _issuer(self, request: Request, realm: str) -> str:
        return f"{self._base_url(request)}/realms/{realm}"

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid, "typ": "JWT"})

    def _decode(self, token: str) -> dict[str, Any] | None:
        """Signature-checked claims, or None. Expiry is checked by the caller, the way Keycloak does."""
        try:
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return None
        return claims if isinstance(claims, dict) else None

    def _jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self._kid, "use": "sig", "alg": "RS256"})
        return jwk

    def _discovery(self, request: Request, realm_name: str) -> dict[str, Any]:
        self._realm_or_404(realm_name)
        issuer = self._issuer(request, realm_name)
        oidc = f"{issuer}/protocol/openid-connect"
        return {
            "issuer": issuer,
            "token_endpoint": f"{oidc}/token",
            "jwks_uri": f"{oidc}/certs",
            "grant_types_supported": ["client_credentials", "password", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }


# -- pure helpers -------------------------------------------------------------------------------------
def _admin_client_of(realm: str) -> str:
    return f"{MASTER}-realm" if realm == MASTER else REALM_MANAGEMENT


def _parse_roles(
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


def _seed_password(entry: Mapping[str, Any]) -> str:
    if entry.get("password") is not None:
        return str(entry["password"])
    for credential in entry.get("credentials") or []:
        if credential.get("type", "password") == "password" and credential.get("value") is not None:
            return str(credential["value"])
    raise ValueError(f"seed user {entry.get('username')!r} has no password")


def _import_password(entry: Mapping[str, Any]) -> str | None:
    """The password credential of an imported user, or None (a user without one cannot log in)."""
    for credential in entry.get("credentials") or []:
        if credential.get("type", "password") == "password" and credential.get("value") is not None:
            return str(credential["value"])
    return None


def _reject_unknown(entry: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ValueError(f"{where}: fields the emulator does not honour: {', '.join(unknown)}")


def _same(presented: str, stored: str) -> bool:
    return secrets.compare_digest(presented.encode(), stored.encode())


def _can_list(roles: frozenset[str]) -> bool:
    return QUERY_CLIENTS in roles or _can_view(roles)


def _can_view(roles: frozenset[str]) -> bool:
    return VIEW_CLIENTS in roles or MANAGE_CLIENTS in roles


def _require(allowed: bool) -> None:
    if not allowed:
        raise _jaxrs_error(403)


def _first(form: Mapping[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = form.get(name)
    return values[0] if values else default


def _scope(form: Mapping[str, list[str]]) -> str:
    requested = (_first(form, "scope") or "").split()
    scopes = ["openid"] if "openid" in requested else []
    scopes += ["profile", "email"]
    scopes += [s for s in requested if s not in scopes and s in OPTIONAL_SCOPES]
    return " ".join(scopes)


def _parse_basic(header: str) -> tuple[str, str] | None:
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


def _realm_of_issuer(claims: Mapping[str, Any]) -> str | None:
    issuer = str(claims.get("iss") or "")
    head, sep, realm = issuer.rpartition("/realms/")
    return realm if sep and head and "/" not in realm else None


def _int_param(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw not in (None, "") else default
    except ValueError:
        raise _jaxrs_error(404) from None  # JAX-RS answers 404 when a query param cannot be converted


def _without_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


def _load_seed_file(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the seed must be a mapping with a 'realms' list")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.keycloak", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--seed", type=Path, help="JSON or YAML seed (realms -> clients -> users)")
    parser.add_argument(
        "--import-realm",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a Keycloak RealmRepresentation JSON file, as `kc.sh --import-realm` reads it; repeatable",
    )
    parser.add_argument(
        "--token-lifespan", type=int, default=None, help="override every realm's lifespan (s)"
    )
    args = parser.parse_args(argv)
    emulator = KeycloakEmulator(token_lifespan=args.token_lifespan, host=args.host, port=args.port)
    admin_username = os.environ.get("KC_BOOTSTRAP_ADMIN_USERNAME")
    admin_password = os.environ.get("KC_BOOTSTRAP_ADMIN_PASSWORD")
    if admin_username and admin_password:  # Keycloak 26's temporary bootstrap admin
        emulator.add_user(MASTER, admin_username, admin_password, realm_roles=["admin"])
    loads: list[tuple[Path, Callable[[Path], None]]] = [
        (path, lambda p: emulator.import_realm(json.loads(p.read_text(encoding="utf-8")), str(p)))
        for path in args.import_realm
    ]
    if args.seed is not None:
        loads.insert(0, (args.seed, lambda p: emulator.load_seed(_load_seed_file(p))))
    for source, load in loads:
        try:
            load(source)
        except (OSError, ValueError, KeyError) as exc:
            print(f"keycloak emulator: cannot load {source}: {exc}", file=sys.stderr)
            return 2
    emulator.start()
    print(f"keycloak emulator listening on {emulator.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
