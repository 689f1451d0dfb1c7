"""The setup API: realms, clients, users and roles, from Python, a seed or a realm import."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from emulators.keycloak.model import (
    ADMIN_CLI,
    ATTR_CREATION_TIME,
    ATTR_ROTATED,
    CLIENT_IGNORED_FIELDS,
    CLIENT_IMPORT_FIELDS,
    MASTER,
    MASTER_LIFESPAN,
    REALM_IMPORT_FIELDS,
    REALM_LIFESPAN,
    REALM_MANAGEMENT,
    ROTATED_EXPIRATION,
    SECRET_EXPIRATION,
    USER_IMPORT_FIELDS,
    Client,
    Realm,
    User,
    admin_client_of,
    check_rotation_config,
    generate_secret,
    import_password,
    jaxrs_error,
    parse_roles,
    reject_unknown,
    seed_password,
)


class RealmStore:
    """What tests and the standalone mode call to shape the Keycloak the jobs will meet."""

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
        rotated_expiration: int = ROTATED_EXPIRATION,
        secret_expiration: int = SECRET_EXPIRATION,
        enabled: bool = True,
        client_uuid: str | None = None,
        description: str | None = None,
    ) -> str:
        """Create a client; returns its UUID. A non-public client without `secret` gets a generated one.
        `rotation_policy` puts it under a secret-rotation policy (see `set_rotation_policy`)."""
        if rotation_policy:
            check_rotation_config(secret_expiration, rotated_expiration)
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
                rotated_expiration=rotated_expiration,
                secret_expiration=secret_expiration,
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
                user.client_roles = parse_roles(service_account_roles, admin_client_of(realm))
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
                client_roles=parse_roles(client_roles, admin_client_of(realm)),
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
            for client, roles in parse_roles(client_roles, admin_client_of(realm)).items():
                user.client_roles.setdefault(client, set()).update(roles)

    def revoke_roles(self, realm: str, username: str) -> None:
        """Remove every client role mapping of a user or service account."""
        with self._lock:
            self._any_user(realm, username).client_roles.clear()

    def client_secret(self, realm: str, client_id: str) -> str | None:
        with self._lock:
            return self._client(realm, client_id).secret

    def set_rotation_policy(
        self,
        realm: str,
        client_id: str,
        enabled: bool,
        rotated_expiration: int = ROTATED_EXPIRATION,
        secret_expiration: int = SECRET_EXPIRATION,
    ) -> None:
        """Put a client under (or out of) a `secret-rotation` client policy whose executor has this
        `rotated-expiration-period` and `expiration-period` (seconds). Like Keycloak, the client's
        attributes change only at its next PUT or regenerate. A configuration Keycloak refuses
        (expiration-period <= 0, or a rotated-expiration-period longer than it) raises ValueError.
        [ClientSecretRotationExecutor.Configuration.validateConfig]"""
        if enabled:
            check_rotation_config(secret_expiration, rotated_expiration)
        with self._lock:
            client = self._client(realm, client_id)
            client.rotation_policy = enabled
            client.rotated_expiration = rotated_expiration
            client.secret_expiration = secret_expiration

    def rotated_secret(self, realm: str, client_id: str) -> str | None:
        with self._lock:
            return self._client(realm, client_id).attributes.get(ATTR_ROTATED)

    def regenerations(self, realm: str, client_id: str) -> int:
        with self._lock:
            return self._client(realm, client_id).regenerations

    def client_attributes(self, realm: str, client_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self._client(realm, client_id).attributes)

    def set_client_attributes(self, realm: str, client_id: str, attributes: dict[str, str]) -> None:
        """Set client attributes directly (e.g. what a run killed between two steps left behind)."""
        with self._lock:
            self._client(realm, client_id).attributes.update(attributes)

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
        """Load realms, clients and users from a seed mapping (format in the package docstring)."""
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
                    seed_password(entry),
                    realm_roles=entry.get("realmRoles") or (),
                    client_roles=entry.get("clientRoles") or (),
                    enabled=bool(entry.get("enabled", True)),
                )

    def import_realm(self, rep: Mapping[str, Any], source: str = "realm import") -> None:
        """Load one Keycloak RealmRepresentation (see the package docstring); raises ValueError naming
        `source` and the entry for anything the emulator cannot honour."""
        reject_unknown(rep, REALM_IMPORT_FIELDS, source)
        name = rep.get("realm")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{source}: 'realm' (the realm name) is required")
        if rep.get("enabled", True) is not True:
            raise ValueError(f"{source}: disabled realms are not emulated")
        self.add_realm(name, rep.get("accessTokenLifespan"))
        for index, client in enumerate(rep.get("clients") or []):
            where = f"{source}: clients[{index}] ({client.get('clientId')})"
            reject_unknown(client, CLIENT_IMPORT_FIELDS | CLIENT_IGNORED_FIELDS, where)
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
            reject_unknown(user, USER_IMPORT_FIELDS, where)
            owner = user.get("serviceAccountClientId")
            if owner is not None:
                self._import_service_account_user(name, str(owner), user, where)
                continue
            self.add_user(
                name,
                user["username"],
                import_password(user),
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
            for owner, roles in parse_roles(entry.get("clientRoles") or {}, admin_client_of(realm)).items():
                user.client_roles.setdefault(owner, set()).update(roles)

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
            raise jaxrs_error(404, "Realm does not exist")
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
