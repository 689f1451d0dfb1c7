"""Microsoft Entra ID (workload-identity token endpoint) + Azure Key Vault secrets data-plane emulator.

One HTTPS server (certificate from a throw-away `trustme` CA) plays three parties at once:

- **the cluster's OIDC issuer** — it holds the service-account signing key, mints projected
  service-account tokens (`mint_federated_token`, `write_federated_token_file`) with
  `aud=api://AzureADTokenExchange` and `sub=system:serviceaccount:<ns>:<sa>`;
- **Microsoft Entra ID** — `POST /{tenant}/oauth2/v2.0/token` for the client-assertion flow exactly as
  azure-identity's `WorkloadIdentityCredential` sends it (one form POST: `client_assertion`,
  `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`, `client_id`,
  `grant_type=client_credentials`, `scope=<resource>/.default`, `claims={"access_token":{"xms_cc":...}}`),
  validating the assertion against registered federated identity credentials (issuer, subject,
  audience; case-sensitive), its signature against the issuer key and its lifetime; errors are the
  AADSTS JSON body (`error`, `error_description` "AADSTSnnn: ... Trace ID: ... Correlation ID: ...
  Timestamp: ...", `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`);
- **an Azure Key Vault** (secrets only) whose base URL is the emulator URL (`vault_url`), with the
  challenge protocol (401 + `WWW-Authenticate: Bearer authorization="<authority>/<tenant>",
  resource="<resource>"`), access-token validation (signature, `exp`, `aud`, tenant), list/get/set/update,
  paging with absolute `nextLink` + `$skiptoken`, api-version validation, throttling and RBAC denial.

Sources (docs/design.md#azure-key-vault and #workload-identity summarise what the jobs rely on):
- azure-identity 1.27.0 `_internal/aad_client_base.py` (`_get_jwt_assertion_request`, `_process_response`,
  `_raise_for_error`), `_credentials/workload_identity.py`, `_internal/utils.py` (`normalize_authority`,
  `get_refresh_status`);
- azure-keyvault-secrets 4.12.0 `_shared/challenge_auth_policy.py`, `_shared/http_challenge.py`,
  `_shared/client_base.py` (`ApiVersion`), `_generated/_operations/_operations.py` (routes, paging),
  `_generated/models/_models.py` (JSON field names);
- azure-core 1.41.0 `pipeline/policies/_retry.py` (429 + Retry-After handling);
- observed service bodies: AADSTS70021 (Azure/azure-workload-identity#616, 400 invalid_request),
  AADSTS700211/700213 (azure-workload-identity#1200, Azure/login#517), AADSTS700024
  (AzureAD/microsoft-authentication-library-for-dotnet#4951), AADSTS700016, AADSTS90002 (400
  invalid_tenant), AADSTS7000272 (azure-workload-identity#1232), invalid_client as 401
  (microsoft/Agents#202); Key Vault AKV10000 (azure-sdk-for-python#24557), SecretDisabled
  (azure-sdk-for-js#24756), SecretNotFound text (azure-sdk-for-js#25489), `[TokenExpired] Error
  validating token: 'S2S12086'.` (azure-sdk-for-python#27266), AKV10022 (MicrosoftDocs/azure-docs#109562),
  AKV10046 (Azure-Samples/azuresandbox#362), `Throttled` / VaultRequestTypeLimitReached
  (vcsjones/AzureSignTool#219), BadParameter "The specified version (X) is not recognized"
  (azure-sdk-for-python#28595).

Best-effort (shape right, exact wording or status UNCONFIRMED): AADSTS700212 (audience), AADSTS50013
(bad signature with a known key id), AADSTS50027 (malformed assertion), AADSTS900144 (missing
parameter), AADSTS70003 (grant type), AADSTS7000218 (missing assertion), AADSTS1002012 / 500011
(scope/resource), AADSTS900561 (GET on the token endpoint), AADSTS90033 (injected token-endpoint
faults); Key Vault AKV10032 wording, the malformed-token message, the RBAC 403 text, the
missing-api-version and bad-maxresults messages, the invalid-name message, 405 for unsupported
methods, and the 401 challenge's `authorization` host (the real service names login.windows.net; the
SDK only reads the tenant from it, so the emulator names itself). Modern Entra reports FIC mismatches
as 7002xx/invalid_client/401; `legacy_fic_errors=True` gives the older AADSTS70021/invalid_request/400.

Not covered: keys, certificates, deleted-secret (soft-delete) endpoints, backup/restore, HTTP DELETE,
CAE claims challenges / token revocation, PoP tokens, Entra discovery/instance metadata (MSAL-based
credentials such as ClientSecretCredential will not work against it), client secrets and certificate
assertions, multiple vaults per host, name case-insensitivity subtleties, Key Vault's clock-skew
tolerance (tokens are rejected exactly at `exp` here), and enforcement of a secret's own `nbf`/`exp`
(docs/design.md#azure-key-vault: whether the service blocks GET on them is UNCONFIRMED, so GET
serves them).

How a client must be configured (the SDK cannot be pointed at 127.0.0.1 any other way):
- env as the workload-identity webhook injects it: `sdk_env(token_file)` gives `AZURE_CLIENT_ID`,
  `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_AUTHORITY_HOST=<emulator url>/` and
  `REQUESTS_CA_BUNDLE=<ca_pem_path>` (or pass `authority=` / `connection_verify=` explicitly);
- `SecretClient(vault_url, credential, verify_challenge_resource=False)`: the SDK requires the vault host
  to end with "." + the challenge resource host, impossible on an IP or `localhost`;
- api-version: any of 7.0 to 7.6, 2016-10-01, 2025-07-01, 2026-04-01 (the 4.12 default) is accepted.
"""

from emulators.azure.model import (
    DEFAULT_CLIENT_ID,
    DEFAULT_ISSUER,
    DEFAULT_SUBJECT,
    DEFAULT_TENANT_ID,
    FEDERATED_AUDIENCE,
    JWT_BEARER_ASSERTION_TYPE,
    KEY_VAULT_RESOURCE,
)
from emulators.azure.server import AzureEmulator

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_ISSUER",
    "DEFAULT_SUBJECT",
    "DEFAULT_TENANT_ID",
    "FEDERATED_AUDIENCE",
    "JWT_BEARER_ASSERTION_TYPE",
    "KEY_VAULT_RESOURCE",
    "AzureEmulator",
]
