"""The Admin REST API slice: list, read and create clients; read, regenerate and drop their secrets."""

from __future__ import annotations

from typing import Any

from emulators.base import Reply, Request, Response
from emulators.keycloak.model import (
    ALL_ADMIN_ROLES,
    ATTR_CREATION_TIME,
    ATTR_EXPIRATION_TIME,
    ATTR_ROTATED,
    ATTR_ROTATED_CREATION_TIME,
    ATTR_ROTATED_EXPIRATION_TIME,
    DEFAULT_SCOPES,
    MANAGE_CLIENTS,
    MASTER,
    OPTIONAL_SCOPES,
    REALM_MANAGEMENT,
    ROTATION_ATTRS,
    SECRET_MASK,
    Client,
    Realm,
    User,
    can_list,
    can_view,
    generate_secret,
    int_param,
    jaxrs_error,
    oauth_error,
    realm_of_issuer,
    require_role,
    without_none,
)


class AdminApi:
    """`/admin/realms/{realm}/clients…`: every handler authenticates the bearer token, then finds the
    realm, the caller's roles in it (and the client) before anything else, as Keycloak's resource locators
    do."""

    def admin_scope(self, request: Request) -> tuple[Realm, frozenset[str]]:
        token_realm, user = self._authenticate_admin(request)
        realm = self._realms.get(request.params["realm"])
        if realm is None:
            raise jaxrs_error(404, "Realm not found.")
        return realm, self._admin_roles(token_realm, user, realm)

    def admin_client(self, request: Request) -> tuple[Client, frozenset[str]]:
        realm, roles = self.admin_scope(request)
        client = realm.clients.get(request.params["id"])
        if client is None:
            raise jaxrs_error(404, "Could not find client") if can_list(roles) else jaxrs_error(403)
        return client, roles

    def list_clients(self, request: Request) -> Response:
        with self._lock:
            return self._list_clients(request, *self.admin_scope(request))

    def create_client(self, request: Request) -> Response:
        with self._lock:
            return self._create_client(request, *self.admin_scope(request))

    def get_client(self, request: Request) -> Response:
        with self._lock:
            client, roles = self.admin_client(request)
            require_role(can_view(roles))
            return Response.json(200, self._representation(client, roles))

    def update_client(self, request: Request) -> Response:
        """PUT a ClientRepresentation: like Keycloak's RepresentationToModel.updateClient, only the
        attributes it carries are set (an absent attribute is kept); a carried `secret` replaces it."""
        with self._lock:
            client, roles = self.admin_client(request)
            require_role(MANAGE_CLIENTS in roles)
            rep = request.json()
            if not isinstance(rep, dict):
                raise jaxrs_error(400, "unable to read the client representation")
            attributes = rep.get("attributes")
            if isinstance(attributes, dict):
                for key, value in attributes.items():
                    client.attributes[str(key)] = str(value)
            if isinstance(rep.get("secret"), str):
                client.secret = rep["secret"]
            self._policy_on_update(client)
            client.updates += 1
            return Response(204)

    def _policy_on_update(self, client: Client) -> None:
        """Keycloak's UPDATED event (after the representation's attributes are applied): the
        secret-rotation executor sets a missing expiration time to now + expiration-period; when the
        secret has EXPIRED (expiration < now, as `isClientSecretExpired`) it does a "typical rotation":
        the expired secret becomes the rotated one (for rotated-expiration-period seconds; 0 keeps
        nothing), a new secret is generated with its creation time and a new expiration. A secret
        that has not expired is left alone. Without a policy that applies, ClientResource removes the
        rotation info (expiration, rotated secret). [ClientSecretRotationExecutor
        .executeOnClientCreateOrUpdate/rotateSecret, OIDCClientSecretConfigWrapper.isClientSecretExpired
        /removeClientSecretRotationInfo; checked by tests/contract/test_expiry_contract.py]"""
        if not self._under_policy(client):
            for key in ROTATION_ATTRS:
                client.attributes.pop(key, None)
            return
        now = self._now()
        expires = int(client.attributes.get(ATTR_EXPIRATION_TIME, "0") or 0)
        if expires <= 0:
            client.attributes[ATTR_EXPIRATION_TIME] = str(now + client.secret_expiration)
        elif expires < now:
            self._regenerate(client)

    @staticmethod
    def _under_policy(client: Client) -> bool:
        return client.rotation_policy and not client.public and not client.bearer_only

    def get_secret(self, request: Request) -> Response:
        with self._lock:
            client, roles = self.admin_client(request)
            require_role(self._can_read_secret(roles))
            return Response.json(200, without_none({"type": "secret", "value": client.secret}))

    def regenerate_secret(self, request: Request) -> Response:
        with self._lock:
            client, roles = self.admin_client(request)
            require_role(MANAGE_CLIENTS in roles)
            self._regenerate(client)
            client.regenerations += 1  # calls of the endpoint, not the executor's rotations on a PUT
            return Response.json(200, {"type": "secret", "value": client.secret})

    def get_rotated_secret(self, request: Request) -> Response:
        with self._lock:
            client, roles = self.admin_client(request)
            require_role(self._can_read_secret(roles))
            rotated = client.attributes.get(ATTR_ROTATED)
            if rotated is None:
                raise jaxrs_error(404, "Client does not have a rotated secret")
            return Response.json(200, {"type": "secret", "value": rotated})

    def delete_rotated_secret(self, request: Request) -> Response:
        with self._lock:
            client, roles = self.admin_client(request)
            require_role(MANAGE_CLIENTS in roles)
            for key in (ATTR_ROTATED, ATTR_ROTATED_CREATION_TIME, ATTR_ROTATED_EXPIRATION_TIME):
                client.attributes.pop(key, None)
            return Response(204)

    # The realm's client policies (view-realm, which manage-clients does not include): one policy and
    # profile standing for the per-client `rotation_policy` knobs, each period the shortest of them.
    def client_policies(self, request: Request) -> Response:
        with self._lock:
            realm, roles = self.admin_scope(request)
            require_role("view-realm" in roles)
            ruled = any(c.rotation_policy for c in realm.clients.values())
            policy = {"name": "secret-rotation", "enabled": True, "profiles": ["secret-rotation"]}
            return Response.json(200, {"policies": [policy] if ruled else []})

    def client_profiles(self, request: Request) -> Response:
        with self._lock:
            realm, roles = self.admin_scope(request)
            require_role("view-realm" in roles)
            ruled = [c for c in realm.clients.values() if c.rotation_policy]
            if not ruled:
                return Response.json(200, {"profiles": []})
            config = {
                "rotated-expiration-period": min(c.rotated_expiration for c in ruled),
                "expiration-period": min(c.secret_expiration for c in ruled),
            }
            executor = {"executor": "secret-rotation", "configuration": config}
            return Response.json(200, {"profiles": [{"name": "secret-rotation", "executors": [executor]}]})

    def _authenticate_admin(self, request: Request) -> tuple[Realm, User]:
        token = request.bearer
        claims = self._decode(token) if token else None
        if claims is None or claims.get("typ") != "Bearer":
            raise jaxrs_error(401)
        realm = self._realms.get(realm_of_issuer(claims) or "")
        if realm is None or self._now() > int(claims.get("exp", 0)):
            raise jaxrs_error(401)
        client = realm.client_by_client_id(str(claims.get("azp")))
        user = realm.users.get(str(claims.get("sub")))
        if client is None or not client.enabled or user is None or not user.enabled:
            raise jaxrs_error(401)
        if user.service_account_client is None and self._live_session(realm, claims.get("sid")) is None:
            raise jaxrs_error(401)
        return realm, user

    def _admin_roles(self, token_realm: Realm, user: User, target: Realm) -> frozenset[str]:
        if token_realm.name == MASTER:
            if "admin" in user.realm_roles:
                return ALL_ADMIN_ROLES
            roles = user.client_roles.get(f"{target.name}-realm", set())
        elif token_realm.name == target.name:
            roles = user.client_roles.get(REALM_MANAGEMENT, set())
        else:
            raise jaxrs_error(403)
        return ALL_ADMIN_ROLES if "realm-admin" in roles else frozenset(roles)

    def _list_clients(self, request: Request, realm: Realm, roles: frozenset[str]) -> Response:
        require_role(can_list(roles))
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
        first = int_param(request.q("first"), 0)
        maximum = int_param(request.q("max"), -1)
        clients = clients[max(first, 0) :]
        if maximum >= 0:
            clients = clients[:maximum]
        if can_view(roles):
            return Response.json(200, [self._representation(c, roles) for c in clients])
        return Response.json(200, [])  # query-clients alone sees no client (Keycloak 26.7.3: `200 []`)

    def _create_client(self, request: Request, realm: Realm, roles: frozenset[str]) -> Response:
        require_role(MANAGE_CLIENTS in roles)
        try:
            body = request.json()
        except ValueError:
            raise oauth_error(400, "invalid_request", "Cannot parse the JSON") from None
        if not isinstance(body, dict) or not body.get("clientId"):
            raise Reply(Response.json(400, {"errorMessage": "Client id is required"}))
        client_id = str(body["clientId"])
        if realm.client_by_client_id(client_id) is not None:
            raise Reply(Response.json(409, {"errorMessage": f"Client {client_id} already exists"}))
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

    def _regenerate(self, client: Client) -> None:
        """A new secret (the regenerate endpoint, or the executor's rotation of an expired secret on a
        PUT); under the policy the previous one is kept as the rotated secret for
        rotated-expiration-period seconds and the new one expires after expiration-period."""
        now = self._now()
        previous = client.secret
        policy = self._under_policy(client)
        if policy and previous is not None and client.rotated_expiration > 0:
            client.attributes[ATTR_ROTATED] = previous
            client.attributes[ATTR_ROTATED_CREATION_TIME] = str(now)  # when it became the rotated one
            client.attributes[ATTR_ROTATED_EXPIRATION_TIME] = str(now + client.rotated_expiration)
            client.attributes[ATTR_EXPIRATION_TIME] = str(now + client.secret_expiration)
        elif policy:  # rotated-expiration-period 0: the executor keeps nothing
            for key in (ATTR_ROTATED, ATTR_ROTATED_CREATION_TIME, ATTR_ROTATED_EXPIRATION_TIME):
                client.attributes.pop(key, None)
            client.attributes[ATTR_EXPIRATION_TIME] = str(now + client.secret_expiration)
        else:
            for key in ROTATION_ATTRS:
                client.attributes.pop(key, None)
        client.secret = generate_secret()
        client.attributes[ATTR_CREATION_TIME] = str(now)

    def _can_read_secret(self, roles: frozenset[str]) -> bool:
        return MANAGE_CLIENTS in roles if self.secret_read_requires_manage else can_view(roles)

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
        return without_none(rep)
