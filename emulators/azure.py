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

from __future__ import annotations

import argparse
import base64
import json
import math
import re
import secrets as _secrets
import shutil
import ssl
import sys
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import trustme
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.base import EmulatorServer, Request, Response

FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
JWT_BEARER_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KEY_VAULT_RESOURCE = "https://vault.azure.net"
DEFAULT_TENANT_ID = "6f1c2a4e-0b7d-4c3e-9a51-2d8e7f4b9c10"
DEFAULT_CLIENT_ID = "3b0d6e9a-8c4f-4f21-b7a3-5e2c1d9f0a64"
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_SUBJECT = "system:serviceaccount:secret-origin:vault-bootstrap"
# azure-keyvault-secrets 4.12.0 `_shared/client_base.py` ApiVersion; DEFAULT_VERSION is the first.
API_VERSIONS = (
    "2026-04-01",
    "2025-07-01",
    "7.6",
    "7.5",
    "7.4",
    "7.3",
    "7.2",
    "7.1",
    "7.0",
    "2016-10-01",
)
LATEST_API_VERSION = API_VERSIONS[0]
MAX_PAGE_SIZE = 25
RECOVERY_LEVEL = "Recoverable+Purgeable"  # soft delete on (the default since 2020), purge protection off
RECOVERABLE_DAYS = 90
SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9.-]+$")
TOKEN_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/token/?$")
FIC_DOCS = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
_JSON = "application/json; charset=utf-8"


@dataclass(frozen=True)
class FederatedCredential:
    """A federated identity credential on an app registration (Entra matches it case-sensitively)."""

    issuer: str
    subject: str
    audience: str = FEDERATED_AUDIENCE


@dataclass
class AppRegistration:
    tenant_id: str
    client_id: str
    object_id: str
    credentials: list[FederatedCredential] = field(default_factory=list)


@dataclass
class SecretVersion:
    version: str
    value: str
    enabled: bool
    nbf: int | None
    exp: int | None
    created: int
    updated: int
    content_type: str | None
    tags: dict[str, str] | None
    managed: bool


@dataclass(frozen=True)
class Exchange:
    """One request/response pair as the emulator saw it (for asserting retries and timing)."""

    method: str
    path: str
    status: int
    at: float  # time.monotonic() when the response was produced
    headers: dict[str, str]
    api_version: str | None


class _AadError(Exception):
    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.code = code
        self.description = description


class _KvError(Exception):
    def __init__(
        self, status: int, code: str, message: str, inner: str | None = None, challenge: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner
        self.challenge = challenge
        self.retry_after: str | None = None


def _unix(value: int | float | datetime | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)


def _iso7(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AzureEmulator(EmulatorServer):
    """Entra ID workload-identity token endpoint + Key Vault secrets data plane on one HTTPS port.

    Registers one app by default (`client_id`, trusting `issuer` + `subject`); pass `client_id=None`
    to start with no app and call `register_app` yourself.
    """

    name = "azure-emulator"
    poll_interval = 0.05  # stop() in tests costs ~50 ms instead of ~500 ms

    def __init__(
        self,
        *,
        tenant_id: str = DEFAULT_TENANT_ID,
        client_id: str | None = DEFAULT_CLIENT_ID,
        issuer: str = DEFAULT_ISSUER,
        subject: str = DEFAULT_SUBJECT,
        host: str = "127.0.0.1",
        port: int = 0,
        cert_dir: str | Path | None = None,
        cert_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1"),
        resource: str | None = None,
        token_lifetime: int = 3600,
        throttle_limit: int | None = None,
        throttle_window: float = 10.0,
        legacy_fic_errors: bool = False,
    ) -> None:
        self._ca = trustme.CA()
        self._leaf = self._ca.issue_cert(*cert_hosts)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._leaf.configure_cert(context)
        super().__init__(host=host, port=port, ssl_context=context)
        # mkdtemp, not TemporaryDirectory: its finalizer warns (an error under pytest) if stop() never runs.
        self._tmp: str | None = None
        if cert_dir is None:
            self._tmp = cert_dir = tempfile.mkdtemp(prefix="azure-emulator-")
        self.cert_dir = Path(cert_dir)
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        self.ca_pem_path = str(self.cert_dir / "azure-emulator-ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_pem_path)

        self.tenant_id = tenant_id
        self.client_id = client_id
        self.issuer = issuer
        self.subject = subject
        self.cert_hosts = cert_hosts
        self.resource = resource
        self.token_lifetime = token_lifetime
        self.throttle_limit = throttle_limit
        self.throttle_window = throttle_window
        self.legacy_fic_errors = legacy_fic_errors

        # The cluster's service-account issuer key (one key serves every registered issuer) and Entra's.
        self._oidc_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._oidc_kid = _b64url(_secrets.token_bytes(16))
        self._entra_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._entra_kid = _b64url(_secrets.token_bytes(16))

        self._apps: dict[tuple[str, str], AppRegistration] = {}
        self._tenants: set[str] = {tenant_id}
        self._secrets: dict[str, tuple[str, list[SecretVersion]]] = {}
        self._denied: set[str] = set()
        self._hits: deque[float] = deque()
        self.exchanges: list[Exchange] = []
        if client_id is not None:
            self.register_app(tenant_id, client_id, issuer, subject)

    # -- lifecycle / addresses ---------------------------------------------------------------------
    @property
    def vault_url(self) -> str:
        return self.url

    @property
    def authority(self) -> str:
        """`AZURE_AUTHORITY_HOST` / `authority=`: the emulator plays login.microsoftonline.com."""
        return self.url

    def stop(self) -> None:
        super().stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def sdk_env(self, token_file: str | Path) -> dict[str, str]:
        """The environment a workload-identity pod would have (webhook-injected + the CA bundle)."""
        if self.client_id is None:
            raise ValueError("no default app registered; pass client_id= to AzureEmulator")
        return {
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
            "AZURE_AUTHORITY_HOST": self.url + "/",
            "REQUESTS_CA_BUNDLE": self.ca_pem_path,
        }

    # -- Entra setup ---------------------------------------------------------------------------------
    def register_app(
        self,
        tenant_id: str,
        client_id: str,
        issuer: str,
        subject: str,
        *,
        audience: str = FEDERATED_AUDIENCE,
    ) -> AppRegistration:
        """Register an app (or add a federated credential to an existing one) in a tenant."""
        with self._lock:
            self._tenants.add(tenant_id)
            app = self._apps.get((tenant_id, client_id))
            if app is None:
                app = AppRegistration(tenant_id, client_id, str(uuid.uuid4()))
                self._apps[(tenant_id, client_id)] = app
            credential = FederatedCredential(issuer, subject, audience)
            if credential not in app.credentials:
                app.credentials.append(credential)
            return app

    def mint_federated_token(
        self,
        subject: str | None = None,
        *,
        issuer: str | None = None,
        audience: str = FEDERATED_AUDIENCE,
        lifetime: int = 3600,
    ) -> str:
        """A projected service-account token signed by the emulator's cluster OIDC issuer key.

        A negative `lifetime` gives a token that expired that many seconds ago.
        """
        subject = subject or self.subject
        now = int(time.time())
        exp = now + lifetime
        iat = min(now, exp - 3600)
        namespace, _, account = subject.removeprefix("system:serviceaccount:").partition(":")
        claims = {
            "aud": [audience],
            "exp": exp,
            "iat": iat,
            "nbf": iat,
            "iss": issuer or self.issuer,
            "sub": subject,
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": account, "uid": str(uuid.uuid4())},
            },
        }
        return jwt.encode(claims, self._oidc_key, algorithm="RS256", headers={"kid": self._oidc_kid})

    def write_federated_token_file(
        self,
        path: str | Path,
        subject: str | None = None,
        *,
        issuer: str | None = None,
        audience: str = FEDERATED_AUDIENCE,
        lifetime: int = 3600,
    ) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            self.mint_federated_token(subject, issuer=issuer, audience=audience, lifetime=lifetime),
            encoding="utf-8",
        )
        return target

    def deny_access(self, client_id: str) -> None:
        """Remove the app's data-plane role: its Key Vault calls get 403 ForbiddenByRbac."""
        with self._lock:
            self._denied.add(client_id)

    def allow_access(self, client_id: str) -> None:
        with self._lock:
            self._denied.discard(client_id)

    # -- Key Vault setup -----------------------------------------------------------------------------
    def set_secret(
        self,
        name: str,
        value: str,
        *,
        enabled: bool = True,
        nbf: int | float | datetime | None = None,
        exp: int | float | datetime | None = None,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
        managed: bool = False,
    ) -> str:
        """Add a new version (32 hex chars, returned) and make it the latest."""
        if not SECRET_NAME.match(name):
            raise ValueError(f"invalid Key Vault secret name {name!r}: 1-127 of [0-9a-zA-Z-]")
        now = int(time.time())
        version = SecretVersion(
            version=uuid.uuid4().hex,
            value=value,
            enabled=enabled,
            nbf=_unix(nbf),
            exp=_unix(exp),
            created=now,
            updated=now,
            content_type=content_type,
            tags=dict(tags) if tags is not None else None,
            managed=managed,
        )
        with self._lock:
            display, history = self._secrets.get(name.lower(), (name, []))
            history.append(version)
            self._secrets[name.lower()] = (display, history)
        return version.version

    def disable_secret(self, name: str, version: str | None = None) -> None:
        self._set_enabled(name, version, enabled=False)

    def enable_secret(self, name: str, version: str | None = None) -> None:
        self._set_enabled(name, version, enabled=True)

    def delete_secret(self, name: str) -> None:
        """Delete every version (and purge: deleted-secret endpoints are not emulated)."""
        with self._lock:
            if self._secrets.pop(name.lower(), None) is None:
                raise KeyError(name)

    def get_value(self, name: str, version: str | None = None) -> str:
        return self._find(name, version).value

    def versions(self, name: str) -> list[str]:
        """Version ids, oldest first (the last one is what `GET /secrets/{name}/` returns)."""
        with self._lock:
            entry = self._secrets.get(name.lower())
            if entry is None:
                raise KeyError(name)
            return [v.version for v in entry[1]]

    def secret_names(self) -> list[str]:
        with self._lock:
            return sorted((display for display, _ in self._secrets.values()), key=str.lower)

    def load_seed(self, path: str | Path) -> int:
        """Load a seed file (JSON, or YAML by suffix); returns the number of versions written.

        Format: {"secrets": [{"name": "n", "value": "v" | "values": ["v1", "v2"], "enabled": bool,
        "contentType": str, "tags": {...}, "nbf": int, "exp": int, "managed": bool}, ...],
        "apps": [{"tenantId": ..., "clientId": ..., "issuer": ..., "subject": ...}]}.
        `secrets` may also be a mapping name -> value (or name -> the object above without name).
        """
        text = Path(path).read_text(encoding="utf-8")
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
        entries = data.get("secrets", [])
        if isinstance(entries, dict):
            entries = [
                {"name": key, **(item if isinstance(item, dict) else {"value": item})}
                for key, item in entries.items()
            ]
        written = 0
        for entry in entries:
            values = entry.get("values", [entry.get("value")] if "value" in entry else [])
            if not values:
                raise ValueError(f"{path}: secret {entry.get('name')!r} has neither value nor values")
            for value in values:
                self.set_secret(
                    entry["name"],
                    str(value),
                    enabled=bool(entry.get("enabled", True)),
                    nbf=entry.get("nbf"),
                    exp=entry.get("exp"),
                    content_type=entry.get("contentType"),
                    tags=entry.get("tags"),
                    managed=bool(entry.get("managed", False)),
                )
                written += 1
        for app in data.get("apps", []):
            self.register_app(
                app.get("tenantId", self.tenant_id),
                app["clientId"],
                app.get("issuer", self.issuer),
                app["subject"],
                audience=app.get("audience", FEDERATED_AUDIENCE),
            )
        return written

    # -- observation -----------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        with self._lock:
            self.exchanges.append(
                Exchange(
                    request.method,
                    request.path,
                    response.status,
                    time.monotonic(),
                    dict(response.headers or {}),
                    request.q("api-version"),
                )
            )
        return response

    def token_requests(self) -> int:
        """How many token-endpoint requests arrived (successful or not)."""
        return self.count(lambda method, path: bool(TOKEN_PATH.match(path)))

    def statuses(self, path_prefix: str = "/secrets") -> list[int]:
        with self._lock:
            return [e.status for e in self.exchanges if e.path.startswith(path_prefix)]

    # -- dispatch ---------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        match = TOKEN_PATH.match(request.path)
        if match:
            return self._token_endpoint(request, match.group(1))
        if request.path == "/secrets" or request.path.startswith("/secrets/"):
            return self._key_vault(request)
        return self._kv_error_response(
            request, _KvError(404, "NotFound", f"The requested path {request.path} was not found.")
        )

    def error_body(self, status: int, request: Request) -> Response:
        if TOKEN_PATH.match(request.path):
            error = "temporarily_unavailable" if status in (429, 503) else "server_error"
            return self._aad_response(
                _AadError(status, error, 90033, "A transient error has occurred. Please try again.")
            )
        codes = {
            400: "BadParameter",
            401: "Unauthorized",
            403: "Forbidden",
            404: "NotFound",
            409: "Conflict",
            429: "Throttled",
            500: "InternalServerError",
            502: "BadGateway",
            503: "ServiceUnavailable",
            504: "GatewayTimeout",
        }
        message = {
            429: "Request was not processed because too many requests were received. "
            "Reason: VaultRequestTypeLimitReached",
        }.get(status, f"Injected fault (HTTP {status}).")
        return self._kv_error_response(
            request, _KvError(status, codes.get(status, "Error"), message, challenge=status == 401)
        )

    # -- Entra token endpoint ------------------------------------------------------------------------------
    def _aad_response(self, err: _AadError) -> Response:
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": err.error,
            "error_description": f"AADSTS{err.code}: {err.description} Trace ID: {trace_id} "
            f"Correlation ID: {correlation_id} Timestamp: {stamp}",
            "error_codes": [err.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{self.url}/error?code={err.code}",
        }
        return Response.json(err.status, body, self._aad_headers(trace_id), content_type=_JSON)

    @staticmethod
    def _aad_headers(trace_id: str) -> dict[str, str]:
        return {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache", "x-ms-request-id": trace_id}

    def _token_endpoint(self, request: Request, tenant: str) -> Response:
        try:
            return self._issue_token(request, tenant)
        except _AadError as err:
            return self._aad_response(err)

    def _issue_token(self, request: Request, tenant: str) -> Response:
        if request.method != "POST":
            raise _AadError(
                400,
                "invalid_request",
                900561,
                f"The endpoint only accepts POST requests. Received a {request.method} request.",
            )
        with self._lock:
            known_tenant = tenant in self._tenants
        if not TENANT_PATTERN.match(tenant) or not known_tenant:
            raise _AadError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud. Check with your subscription administrator, this may "
                "happen if there are no active subscriptions for the tenant.",
            )
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items() if v}
        grant_type = _required(form, "grant_type")
        if grant_type != "client_credentials":
            raise _AadError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        client_id = _required(form, "client_id")
        with self._lock:
            app = self._apps.get((tenant, client_id))
        if app is None:
            raise _AadError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This "
                "can happen if the application has not been installed by the administrator of the tenant or "
                "consented to by any user in the tenant. You may have sent your authentication request to "
                "the wrong tenant.",
            )
        scope = _required(form, "scope")
        resource = self._resource_for_scope(scope, tenant)
        assertion = form.get("client_assertion")
        if not assertion or form.get("client_assertion_type") != JWT_BEARER_ASSERTION_TYPE:
            raise _AadError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        self._validate_assertion(app, assertion)
        return self._token_response(app, resource, form.get("claims"))

    def _resource_for_scope(self, scope: str, tenant: str) -> str:
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise _AadError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                "scope value with /.default suffixed to the resource identifier (application ID URI).",
            )
        resource = scopes[0].removesuffix("/.default")
        if resource.rstrip("/") not in self._accepted_resources():
            raise _AadError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named {tenant}. This "
                "can happen if the application has not been installed by the administrator of the tenant or "
                "consented to by any user in the tenant. You might have sent your authentication request to "
                "the wrong tenant.",
            )
        return resource.rstrip("/")

    def _accepted_resources(self) -> set[str]:
        accepted = {KEY_VAULT_RESOURCE}
        if self.resource:
            accepted.add(self.resource.rstrip("/"))
        for host in self.cert_hosts:
            shown = f"[{host}]" if ":" in host else host
            accepted.add(f"https://{shown}:{self.port}")
        return accepted

    def _validate_assertion(self, app: AppRegistration, assertion: str) -> None:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _AadError(400, "invalid_request", 50027, "JWT token is invalid or malformed.") from None
        iss, sub = str(claims.get("iss", "")), str(claims.get("sub", ""))
        raw_aud = claims.get("aud", [])
        audiences = [raw_aud] if isinstance(raw_aud, str) else [str(a) for a in raw_aud]
        by_issuer = [c for c in app.credentials if c.issuer == iss]
        if not by_issuer:
            self._no_fic_match(700211, f"issuer '{iss}'", iss, sub, audiences)
        if header.get("kid") != self._oidc_kid:
            raise _AadError(
                401,
                "invalid_client",
                7000272,
                f"The certificate with identifier {header.get('kid')} used to sign the federated credential "
                f"could not be found in the metadata of identity provider {iss}. Please validate that your "
                "Identity Provider's metadata exposes the key used to sign the incoming token.",
            )
        try:
            jwt.decode(
                assertion,
                self._oidc_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise _AadError(
                401,
                "invalid_client",
                50013,
                "Assertion failed signature validation. [Reason - The provided signature value did not match "
                "the expected signature value.]",
            ) from None
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat", 0))
        if not isinstance(exp, int | float) or now >= exp or now < float(nbf or 0):
            raise _AadError(
                401,
                "invalid_client",
                700024,
                f"Client assertion is not within its valid time range. Current time: {_iso7(now)}, assertion "
                f"valid from {_iso7(float(nbf or 0))}, expiry time of assertion {_iso7(float(exp or 0))}. "
                "Review the documentation at "
                "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
            )
        by_audience = [c for c in by_issuer if c.audience in audiences]
        if not by_audience:
            self._no_fic_match(700212, f"audience '{', '.join(audiences)}'", iss, sub, audiences)
        if not any(c.subject == sub for c in by_audience):
            self._no_fic_match(700213, f"subject '{sub}'", iss, sub, audiences)

    def _no_fic_match(self, code: int, what: str, iss: str, sub: str, audiences: list[str]) -> None:
        if self.legacy_fic_errors:
            raise _AadError(
                400,
                "invalid_request",
                70021,
                f"No matching federated identity record found for presented assertion. Assertion Issuer: "
                f"'{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{', '.join(audiences)}'. "
                f"{FIC_DOCS}",
            )
        raise _AadError(
            401,
            "invalid_client",
            code,
            f"No matching federated identity record found for presented assertion {what}. Check your "
            f"federated identity credential Subject, Audience and Issuer against the presented assertion. "
            f"{FIC_DOCS}",
        )

    def _token_response(self, app: AppRegistration, resource: str, claims_param: str | None) -> Response:
        now = int(time.time())
        lifetime = int(self.token_lifetime)
        claims: dict[str, Any] = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{app.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "appid": app.client_id,
            "appidacr": "2",
            "idp": f"https://sts.windows.net/{app.tenant_id}/",
            "oid": app.object_id,
            "sub": app.object_id,
            "tid": app.tenant_id,
            "uti": _b64url(_secrets.token_bytes(16)),
            "ver": "1.0",
        }
        if claims_param and "CP1" in claims_param:
            claims["xms_cc"] = ["CP1"]
        token = jwt.encode(
            claims, self._entra_key, algorithm="RS256", headers={"kid": self._entra_kid, "typ": "JWT"}
        )
        body = {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }
        return Response.json(200, body, self._aad_headers(str(uuid.uuid4())), content_type=_JSON)

    # -- Key Vault ----------------------------------------------------------------------------------------
    def _kv_error_response(self, request: Request, err: _KvError) -> Response:
        error: dict[str, Any] = {"code": err.code, "message": err.message}
        if err.inner:
            error["innererror"] = {"code": err.inner}
        headers = self._kv_headers(request)
        if err.challenge:
            headers["WWW-Authenticate"] = (
                f'Bearer authorization="{self.authority}/{self.tenant_id}", '
                f'resource="{self._challenge_resource(request)}"'
            )
        if err.retry_after is not None:
            headers["Retry-After"] = err.retry_after
        return Response.json(err.status, {"error": error}, headers, content_type=_JSON)

    def _kv_headers(self, request: Request) -> dict[str, str]:
        headers = {
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Expires": "-1",
            "x-ms-keyvault-region": "emulator",
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-keyvault-service-version": "1.9.0.0",
        }
        client_request_id = request.headers.get("x-ms-client-request-id")
        if client_request_id:
            headers["x-ms-client-request-id"] = client_request_id
        return headers

    def _origin(self, request: Request) -> str:
        host = request.headers.get("host") or f"{self.host}:{self.port}"
        return f"https://{host}"

    def _challenge_resource(self, request: Request) -> str:
        return self.resource or self._origin(request)

    def _throttle(self) -> _KvError | None:
        limit = self.throttle_limit
        if limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            while self._hits and self._hits[0] <= now - self.throttle_window:
                self._hits.popleft()
            if len(self._hits) >= limit:  # throttled calls do not count (service-limits doc)
                wait = self._hits[0] + self.throttle_window - now
                err = _KvError(
                    429,
                    "Throttled",
                    "Request was not processed because too many requests were received. "
                    "Reason: VaultRequestTypeLimitReached",
                )
                err.retry_after = str(max(1, math.ceil(wait)))
                return err
            self._hits.append(now)
        return None

    def reset_throttle(self) -> None:
        with self._lock:
            self._hits.clear()

    def _key_vault(self, request: Request) -> Response:
        throttled = self._throttle()
        if throttled is not None:
            return self._kv_error_response(request, throttled)
        try:
            app_id = self._authenticate(request)
            api_version = request.q("api-version")
            if not api_version:
                raise _KvError(400, "BadParameter", "The 'api-version' query parameter is missing.")
            if api_version not in API_VERSIONS:
                raise _KvError(
                    400,
                    "BadParameter",
                    f"The specified version ({api_version}) is not recognized. Consider using the latest "
                    f"supported version ({LATEST_API_VERSION}).",
                )
            return self._route(request, app_id)
        except _KvError as err:
            return self._kv_error_response(request, err)

    def _authenticate(self, request: Request) -> str:
        token = request.bearer
        if not token:
            raise _KvError(
                401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", challenge=True
            )
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _KvError(
                401,
                "Unauthorized",
                "[BearerReadAccessTokenFailed] Error validating token: 'S2S12005'.",
                challenge=True,
            ) from None
        if header.get("kid") != self._entra_kid:
            raise _KvError(
                401,
                "Unauthorized",
                "AKV10046: Unable to resolve the key used for signature validation.",
                challenge=True,
            )
        try:
            claims = jwt.decode(
                token,
                self._entra_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise _KvError(
                401,
                "Unauthorized",
                "AKV10046: Unable to resolve the key used for signature validation.",
                challenge=True,
            ) from None
        if time.time() >= float(claims.get("exp", 0)):
            raise _KvError(
                401, "Unauthorized", "[TokenExpired] Error validating token: 'S2S12086'.", challenge=True
            )
        accepted = self._accepted_resources() | {self._challenge_resource(request).rstrip("/")}
        aud = str(claims.get("aud", ""))
        if aud.rstrip("/") not in accepted:
            raise _KvError(
                401,
                "Unauthorized",
                f"AKV10022: Invalid audience. Expected {self._challenge_resource(request)}, found: {aud}.",
                challenge=True,
            )
        if claims.get("tid") != self.tenant_id:
            raise _KvError(
                401,
                "Unauthorized",
                f"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{self.tenant_id}/, "
                f"https://login.microsoftonline.com/{self.tenant_id}/v2.0, found {claims.get('iss')}.",
                challenge=True,
            )
        return str(claims.get("appid", ""))

    def _route(self, request: Request, app_id: str) -> Response:
        parts = request.path.split("/")[2:]  # "", "secrets", ...
        method = request.method
        if not parts:  # /secrets
            if method == "GET":
                self._authorize(request, app_id, "readMetadata/action")
                return self._list(request, self._secret_items(request))
        elif len(parts) == 1 or (len(parts) == 2 and parts[1] == ""):  # /secrets/{name}[/]
            if method == "PUT" and len(parts) == 1:
                self._authorize(request, app_id, "setSecret/action")
                return self._put(request, parts[0])
            if method == "GET":
                self._authorize(request, app_id, "getSecret/action")
                return self._get(request, parts[0], None)
            if method == "PATCH":
                self._authorize(request, app_id, "write")
                return self._patch(request, parts[0], None)
        elif len(parts) == 2 and parts[1] == "versions":
            if method == "GET":
                self._authorize(request, app_id, "readMetadata/action")
                return self._list(request, self._version_items(request, parts[0]))
        elif len(parts) == 2:
            if method == "GET":
                self._authorize(request, app_id, "getSecret/action")
                return self._get(request, parts[0], parts[1])
            if method == "PATCH":
                self._authorize(request, app_id, "write")
                return self._patch(request, parts[0], parts[1])
        else:
            raise _KvError(404, "NotFound", f"The requested path {request.path} was not found.")
        raise _KvError(
            405, "MethodNotAllowed", f"The requested method {method} is not allowed on {request.path}."
        )

    def _authorize(self, request: Request, app_id: str, action: str) -> None:
        with self._lock:
            denied = app_id in self._denied
        if denied:
            vault = urlsplit(self._origin(request)).netloc
            raise _KvError(
                403,
                "Forbidden",
                "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny "
                "assignments or role definitions were changed recently, please observe propagation time.\r\n"
                f"Caller: appid={app_id};iss=https://sts.windows.net/{self.tenant_id}/\r\n"
                f"Action: 'Microsoft.KeyVault/vaults/secrets/{action}'\r\n"
                f"Resource: '{vault}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\n"
                "DecisionReason: null \r\n",
                inner="ForbiddenByRbac",
            )

    def _find(self, name: str, version: str | None) -> SecretVersion:
        with self._lock:
            entry = self._secrets.get(name.lower())
            if entry is None:
                raise KeyError(name)
            history = entry[1]
            if not version:
                return history[-1]
            for candidate in history:
                if candidate.version == version.lower():
                    return candidate
        raise KeyError(f"{name}/{version}")

    def _set_enabled(self, name: str, version: str | None, *, enabled: bool) -> None:
        with self._lock:
            found = self._find(name, version)
            found.enabled = enabled
            found.updated = int(time.time())

    def _display_name(self, name: str) -> str:
        with self._lock:
            return self._secrets[name.lower()][0]

    def _lookup(self, name: str, version: str | None) -> SecretVersion:
        try:
            return self._find(name, version)
        except KeyError:
            shown = f"{name}/{version}" if version else name
            raise _KvError(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {shown} was not found in this key vault. If you recently deleted "
                "this secret you may be able to recover it using the correct recovery command. For help "
                "resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
            ) from None

    @staticmethod
    def _attributes(v: SecretVersion) -> dict[str, Any]:
        attributes: dict[str, Any] = {"enabled": v.enabled}
        if v.nbf is not None:
            attributes["nbf"] = v.nbf
        if v.exp is not None:
            attributes["exp"] = v.exp
        attributes.update(
            created=v.created,
            updated=v.updated,
            recoverableDays=RECOVERABLE_DAYS,
            recoveryLevel=RECOVERY_LEVEL,
        )
        return attributes

    def _item(self, secret_id: str, v: SecretVersion) -> dict[str, Any]:
        item: dict[str, Any] = {"id": secret_id, "attributes": self._attributes(v)}
        if v.tags is not None:
            item["tags"] = v.tags
        if v.content_type is not None:
            item["contentType"] = v.content_type
        if v.managed:
            item["managed"] = True
        return item

    def _bundle(self, request: Request, name: str, v: SecretVersion, *, with_value: bool) -> dict[str, Any]:
        origin = self._origin(request)
        bundle = self._item(f"{origin}/secrets/{name}/{v.version}", v)
        if with_value:
            bundle = {"value": v.value, **bundle}
        if v.managed:
            bundle["kid"] = f"{origin}/keys/{name}/{v.version}"
        return bundle

    def _secret_items(self, request: Request) -> list[dict[str, Any]]:
        origin = self._origin(request)
        with self._lock:
            entries = sorted(self._secrets.values(), key=lambda e: e[0].lower())
            return [self._item(f"{origin}/secrets/{display}", history[-1]) for display, history in entries]

    def _version_items(self, request: Request, name: str) -> list[dict[str, Any]]:
        self._lookup(name, None)
        origin = self._origin(request)
        display = self._display_name(name)
        with self._lock:
            history = list(self._secrets[name.lower()][1])
        return [self._item(f"{origin}/secrets/{display}/{v.version}", v) for v in history]

    def _list(self, request: Request, items: list[dict[str, Any]]) -> Response:
        raw_max = request.q("maxresults")
        page_size = MAX_PAGE_SIZE
        if raw_max is not None:
            if not raw_max.isdigit() or not 1 <= int(raw_max) <= MAX_PAGE_SIZE:
                raise _KvError(
                    400,
                    "BadParameter",
                    f"Invalid maxresults value '{raw_max}'. It must be between 1 and {MAX_PAGE_SIZE}.",
                )
            page_size = int(raw_max)
        offset = 0
        token = request.q("$skiptoken")
        if token:
            try:
                offset = int(json.loads(_unb64url(token))["offset"])
            except (ValueError, KeyError, TypeError):
                raise _KvError(400, "BadParameter", "The $skiptoken parameter is invalid.") from None
        page = items[offset : offset + page_size]
        next_link = None
        if offset + page_size < len(items):
            skip = _b64url(json.dumps({"offset": offset + page_size}).encode())
            next_link = (
                f"{self._origin(request)}{request.path}?api-version={request.q('api-version')}"
                f"&$skiptoken={skip}&maxresults={page_size}"
            )
        return Response.json(
            200, {"value": page, "nextLink": next_link}, self._kv_headers(request), content_type=_JSON
        )

    def _get(self, request: Request, name: str, version: str | None) -> Response:
        found = self._lookup(name, version)
        if not found.enabled:
            raise _KvError(
                403, "Forbidden", "Operation get is not allowed on a disabled secret.", inner="SecretDisabled"
            )
        body = self._bundle(request, self._display_name(name), found, with_value=True)
        return Response.json(200, body, self._kv_headers(request), content_type=_JSON)

    def _put(self, request: Request, name: str) -> Response:
        if not SECRET_NAME.match(name):
            raise _KvError(
                400,
                "BadParameter",
                f"The request URI contains an invalid name: {name}. Secret names must be 1-127 characters "
                "long and contain only 0-9, a-z, A-Z, and -.",
            )
        payload = _json_body(request)
        value = payload.get("value")
        if not isinstance(value, str):
            raise _KvError(400, "BadParameter", "Property 'value' is required and must be a string.")
        attributes = payload.get("attributes") or {}
        version = self.set_secret(
            name,
            value,
            enabled=attributes.get("enabled", True) is not False,
            nbf=attributes.get("nbf"),
            exp=attributes.get("exp"),
            content_type=payload.get("contentType"),
            tags=payload.get("tags"),
        )
        found = self._find(name, version)
        body = self._bundle(request, self._display_name(name), found, with_value=True)
        return Response.json(200, body, self._kv_headers(request), content_type=_JSON)

    def _patch(self, request: Request, name: str, version: str | None) -> Response:
        found = self._lookup(name, version)
        payload = _json_body(request)
        attributes = payload.get("attributes") or {}
        with self._lock:
            if "enabled" in attributes and attributes["enabled"] is not None:
                found.enabled = bool(attributes["enabled"])
            if "nbf" in attributes:
                found.nbf = _unix(attributes["nbf"])
            if "exp" in attributes:
                found.exp = _unix(attributes["exp"])
            if payload.get("contentType") is not None:
                found.content_type = payload["contentType"]
            if payload.get("tags") is not None:
                found.tags = dict(payload["tags"])
            found.updated = int(time.time())
        body = self._bundle(request, self._display_name(name), found, with_value=False)
        return Response.json(200, body, self._kv_headers(request), content_type=_JSON)


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise _AadError(
            400,
            "invalid_request",
            900144,
            f"The request body must contain the following parameter: '{name}'.",
        )
    return value


def _json_body(request: Request) -> dict[str, Any]:
    try:
        payload = request.json()
    except ValueError:
        raise _KvError(400, "BadParameter", "The request body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise _KvError(400, "BadParameter", "The request body must be a JSON object.")
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.azure",
        description="Entra ID workload-identity token endpoint + Azure Key Vault secrets emulator (HTTPS).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--seed", type=Path, help="JSON/YAML seed file (see AzureEmulator.load_seed)")
    parser.add_argument("--cert-dir", type=Path, required=True, help="where the CA PEM and token file go")
    parser.add_argument("--tenant-id", default=DEFAULT_TENANT_ID)
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--issuer", default=DEFAULT_ISSUER)
    parser.add_argument("--subject", default=DEFAULT_SUBJECT)
    parser.add_argument("--resource", default=None, help="resource advertised in the challenge")
    parser.add_argument(
        "--cert-host",
        action="append",
        default=[],
        help="extra DNS name/IP for the serving certificate (e.g. a compose service name); repeatable",
    )
    parser.add_argument("--token-lifetime", type=int, default=3600)
    args = parser.parse_args(argv)

    emulator = AzureEmulator(
        tenant_id=args.tenant_id,
        client_id=args.client_id,
        issuer=args.issuer,
        subject=args.subject,
        host=args.host,
        port=args.port,
        cert_dir=args.cert_dir,
        resource=args.resource,
        token_lifetime=args.token_lifetime,
        cert_hosts=("127.0.0.1", "localhost", "::1", *args.cert_host),
    )
    if args.seed:
        emulator.load_seed(args.seed)
    emulator.start()
    token_file = emulator.write_federated_token_file(args.cert_dir / "azure-identity-token", lifetime=86400)
    env = emulator.sdk_env(token_file)
    (args.cert_dir / "azure.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    print(
        json.dumps(
            {"url": emulator.url, "vault_url": emulator.vault_url, "ca_pem_path": emulator.ca_pem_path, **env}
        )
    )
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
