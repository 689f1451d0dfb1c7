"""The OIDC side: the token endpoint's grants, the signed tokens, the JWKS and discovery documents."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import parse_qs

import jwt

from emulators.base import Reply, Request, Response
from emulators.keycloak.model import (
    ATTR_EXPIRATION_TIME,
    ATTR_ROTATED,
    ATTR_ROTATED_EXPIRATION_TIME,
    TOKEN_HEADERS,
    Client,
    Realm,
    Session,
    User,
    first_value,
    oauth_error,
    parse_basic,
    realm_of_issuer,
    same_secret,
    scope_of,
)


class TokenEndpoint:
    """`POST /realms/{realm}/protocol/openid-connect/token`, `…/certs` and the discovery document."""

    def token(self, request: Request) -> Response:
        return self._token(request, request.params["realm"])

    def certs(self, request: Request) -> Response:
        self._realm_or_404(request.params["realm"])
        return Response.json(200, {"keys": [self._jwk()]})

    def well_known(self, request: Request) -> Response:
        return Response.json(200, self._discovery(request, request.params["realm"]))

    def _token(self, request: Request, realm_name: str) -> Response:
        realm = self._realm_or_404(realm_name)
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        grant_type = first_value(form, "grant_type")
        if grant_type is None:
            raise oauth_error(400, "invalid_request", "Missing form parameter: grant_type")
        if grant_type not in ("client_credentials", "password", "refresh_token"):
            raise oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
        with self._lock:
            client = self._authenticate_client(request, realm, form)
            if any(len(values) != 1 for values in form.values()):
                raise oauth_error(400, "invalid_request", "duplicated parameter")
            if client.bearer_only:
                raise oauth_error(400, "invalid_client", "Bearer-only not allowed")
            if grant_type == "client_credentials":
                return self._client_credentials(request, realm, client, form)
            if grant_type == "password":
                return self._password(request, realm, client, form)
            return self._refresh(request, realm, client, form)

    def _authenticate_client(self, request: Request, realm: Realm, form: dict[str, list[str]]) -> Client:
        client_id = secret = None
        authorization = request.headers.get("authorization")
        if authorization is not None:
            basic = parse_basic(authorization)
            if basic is not None:
                client_id, secret = basic
            elif "client_id" not in form:
                challenge = {"WWW-Authenticate": f'Basic realm="{realm.name}"'}
                raise Reply(Response(401, b"", challenge))
        client_id = first_value(form, "client_id", client_id)
        secret = first_value(form, "client_secret", secret)
        if client_id is None:  # Keycloak 26.7.3 answers like for an unknown client
            raise oauth_error(401, "invalid_client", "Invalid client or Invalid client credentials")
        client = realm.client_by_client_id(client_id)
        if client is None or not client.enabled:
            raise oauth_error(401, "invalid_client", "Invalid client or Invalid client credentials")
        if client.public:
            return client
        if client.authenticator != "client-secret":
            raise oauth_error(400, "invalid_client", "Parameter client_assertion_type is missing")
        if secret is None or not self._secret_matches(client, secret):
            raise oauth_error(401, "unauthorized_client", "Invalid client or Invalid client credentials")
        return client

    def _secret_matches(self, client: Client, presented: str) -> bool:
        """The current secret, or the rotated one until its expiration time; but once the current
        secret has EXPIRED (an expiration time > 0 and < now, seconds) neither logs in. Keycloak
        compares first and then refuses an expired client with the same 401, so the order does not
        show. [ClientIdAndSecretAuthenticator.authenticateClient, OIDCClientSecretConfigWrapper
        .isClientSecretExpired/validateRotatedSecret]"""
        now = self._now()
        expires = int(client.attributes.get(ATTR_EXPIRATION_TIME, "0") or 0)
        if 0 < expires < now:
            return False
        if client.secret is not None and same_secret(presented, client.secret):
            return True
        rotated = client.attributes.get(ATTR_ROTATED)
        rotated_expires = int(client.attributes.get(ATTR_ROTATED_EXPIRATION_TIME, "0") or 0)
        return rotated is not None and now <= rotated_expires and same_secret(presented, rotated)

    def _client_credentials(
        self, request: Request, realm: Realm, client: Client, form: dict[str, list[str]]
    ) -> Response:
        if client.public:
            raise oauth_error(
                401, "unauthorized_client", "Public client not allowed to retrieve service account"
            )
        if not client.service_account or client.service_account_user is None:
            raise oauth_error(401, "unauthorized_client", "Client not enabled to retrieve service account")
        user = realm.users[client.service_account_user]
        scope = scope_of(form)
        body = self._token_body(request, realm, client, user, scope, session=None)
        return Response.json(200, body, headers=dict(TOKEN_HEADERS))

    def _password(
        self, request: Request, realm: Realm, client: Client, form: dict[str, list[str]]
    ) -> Response:
        if not client.direct_access_grants:
            raise oauth_error(400, "unauthorized_client", "Client not allowed for direct access grants")
        username = first_value(form, "username")
        if not username:
            raise oauth_error(401, "invalid_request", "Missing parameter: username")
        user = realm.user_by_name(username)
        password = first_value(form, "password") or ""
        if user is None or user.password is None or not same_secret(password, user.password):
            raise oauth_error(400, "invalid_grant", "Invalid user credentials")  # 400 on 26.7.3
        if not user.enabled:
            raise oauth_error(400, "invalid_grant", "Account disabled")
        now = self._now()
        session = Session(str(uuid.uuid4()), realm.name, user.id, client.client_id, now, now)
        self._sessions[session.id] = session
        body = self._token_body(request, realm, client, user, scope_of(form), session=session)
        return Response.json(200, body, headers=dict(TOKEN_HEADERS))

    def _refresh(
        self, request: Request, realm: Realm, client: Client, form: dict[str, list[str]]
    ) -> Response:
        raw = first_value(form, "refresh_token")
        if not raw:
            raise oauth_error(400, "invalid_request", "Missing parameter: refresh_token")
        claims = self._decode(raw)
        if claims is None or claims.get("typ") != "Refresh" or realm_of_issuer(claims) != realm.name:
            raise oauth_error(400, "invalid_grant", "Invalid refresh token")
        if self._now() > int(claims.get("exp", 0)):
            raise oauth_error(400, "invalid_grant", "Token is not active")
        if claims.get("azp") != client.client_id:
            raise oauth_error(
                400, "invalid_grant", "Invalid refresh token. Token client and authorized client don't match"
            )
        session = self._live_session(realm, claims.get("sid"))
        user = realm.users.get(session.user_id) if session else None
        if session is None or user is None or not user.enabled:
            raise oauth_error(400, "invalid_grant", "Session not active")
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
        """The token response: an access token, a refresh token with a session, an ID token for `openid`."""
        now = self._now()
        lifespan = self.token_lifespan if self.token_lifespan is not None else realm.access_token_lifespan
        issuer = self._issuer(request, realm.name)
        access = self._access_claims(issuer, client, user, scope, session, now, lifespan)
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
                **self._base_claims(issuer, user, client, now, now + refresh_lifespan),
                "aud": issuer,
                "typ": "Refresh",
                "sid": session.id,
                "scope": scope,
            }
            body["refresh_token"] = self._sign(refresh)
            body["refresh_expires_in"] = refresh_lifespan
            body["session_state"] = session.id
        if "openid" in scope.split():
            id_token = {
                **self._base_claims(issuer, user, client, now, now + lifespan),
                "aud": client.client_id,
                "typ": "ID",
                "acr": "1",
                "email_verified": False,
                "preferred_username": user.username,
            }
            if session is not None:
                id_token["sid"] = session.id
            body["id_token"] = self._sign(id_token)
        return body

    @staticmethod
    def _base_claims(issuer: str, user: User, client: Client, now: int, expires: int) -> dict[str, Any]:
        return {
            "exp": expires,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": issuer,
            "sub": user.id,
            "azp": client.client_id,
        }

    def _access_claims(
        self,
        issuer: str,
        client: Client,
        user: User,
        scope: str,
        session: Session | None,
        now: int,
        lifespan: int,
    ) -> dict[str, Any]:
        """Roles in `realm_access`/`resource_access`, `aud` = the other clients whose roles it carries;
        a service-account token (no session) names the client and its address instead of a `sid`."""
        resource_access = {c: {"roles": sorted(r)} for c, r in sorted(user.client_roles.items()) if r}
        access: dict[str, Any] = {
            **self._base_claims(issuer, user, client, now, now + lifespan),
            "typ": "Bearer",
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
                {"client_id": client.client_id, "clientHost": "127.0.0.1", "clientAddress": "127.0.0.1"}
            )
        return access

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
