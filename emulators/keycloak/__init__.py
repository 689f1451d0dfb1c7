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

  Note two places where a common expectation differs from Keycloak's source: a *wrong secret* is
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
- The per-client knobs ``rotation_policy`` / ``rotated_expiration`` / ``secret_expiration``
  (``set_rotation_policy``) stand for a client policy with the (preview) ``secret-rotation`` executor
  and its ``rotated-expiration-period`` (default 2 days) and ``expiration-period`` (default 29 days);
  like Keycloak's ``validateConfig``, an expiration-period <= 0 or shorter than the rotated one raises
  ValueError. A regenerate of a confidential client keeps the previous secret as
  ``client.secret.rotated`` (its ``…rotated.creation.time`` = the regenerate) for ``rotated_expiration``
  seconds (both authenticate; 0 keeps nothing), and sets ``client.secret.expiration.time`` = now +
  ``secret_expiration`` (epoch seconds). Once that time has passed (expiration < now), **neither** the
  current nor the rotated secret logs in: 401 unauthorized_client "Invalid client or Invalid client
  credentials" [ClientIdAndSecretAuthenticator, OIDCClientSecretConfigWrapper.isClientSecretExpired].
  A client PUT under the policy sets a missing expiration; when the secret has expired it rotates it
  like a regenerate (new secret and creation time, new expiration, the expired secret kept as the
  rotated one, which then logs in again until its own expiration); a secret that has not expired is
  left alone. Without the policy a PUT removes the expiration and any rotated secret, and a regenerate
  clears any rotated secret, so the old secret dies at once. ``GET client-policies/policies|profiles``
  need view-realm (403 to manage-clients alone) and show one policy standing for the knobs (each
  period the shortest of the realm's clients). [ClientSecretRotationExecutor
  .executeOnClientCreateOrUpdate/rotateSecret; ClientResource; checked by
  tests/contract/test_rotation_contract.py and tests/contract/test_expiry_contract.py]
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
  manage-clients. Up to 26.7 view-clients was enough (docs/design.md#keycloak describes both). The
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
KeycloakOpenIDConnection.refresh_token); docs/design.md#keycloak for what the jobs rely on.

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
            secret: s3cr3t           # optional; non-public clients get a generated one
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

from emulators.keycloak.model import MASTER, generate_secret
from emulators.keycloak.server import KeycloakEmulator

__all__ = ["MASTER", "KeycloakEmulator", "generate_secret"]
