"""The Entra ID + Key Vault emulator: its state, its route table and its error shapes.

Each concern is one mixin in its own module (the handlers the table names live there); this class holds
the state they share (`__init__`), the route table, and what answers before and around it.
"""

from __future__ import annotations

import secrets as _secrets
import shutil
import ssl
import tempfile
import time
from collections import deque
from pathlib import Path

import trustme
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.azure.entra import EntraTokenEndpoint
from emulators.azure.keyvault import KeyVaultSecrets
from emulators.azure.keyvault_auth import KeyVaultAuth
from emulators.azure.model import (
    DEFAULT_CLIENT_ID,
    DEFAULT_ISSUER,
    DEFAULT_SUBJECT,
    DEFAULT_TENANT_ID,
    TOKEN_PATH,
    AadError,
    AppRegistration,
    Exchange,
    KvError,
    SecretVersion,
    b64url,
)
from emulators.azure.store import VaultStore
from emulators.base import EmulatorServer, Request, Response, Route

_SECRET = "/secrets/{name}"


class AzureEmulator(VaultStore, EntraTokenEndpoint, KeyVaultAuth, KeyVaultSecrets, EmulatorServer):
    """Entra ID workload-identity token endpoint + Key Vault secrets data plane on one HTTPS port.

    Registers one app by default (`client_id`, trusting `issuer` + `subject`); pass `client_id=None`
    to start with no app and call `register_app` yourself.
    """

    name = "azure-emulator"
    poll_interval = 0.05  # stop() in tests costs ~50 ms instead of ~500 ms

    routes = (
        Route("GET POST PUT PATCH DELETE HEAD", "/{tenant}/oauth2/v2.0/token", EntraTokenEndpoint.token),
        Route("GET POST PUT PATCH DELETE HEAD", "/{tenant}/oauth2/v2.0/token/", EntraTokenEndpoint.token),
        Route("GET", "/secrets", KeyVaultSecrets.list_secrets),
        Route("PUT", "/secrets/", KeyVaultSecrets.set_secret_value),  # the empty name: 400 / 404 as named
        Route("GET", "/secrets/", KeyVaultSecrets.get_secret),
        Route("PATCH", "/secrets/", KeyVaultSecrets.update_secret),
        Route("PUT", _SECRET, KeyVaultSecrets.set_secret_value),
        Route("GET", _SECRET, KeyVaultSecrets.get_secret),
        Route("PATCH", _SECRET, KeyVaultSecrets.update_secret),
        Route("GET", f"{_SECRET}/", KeyVaultSecrets.get_secret),
        Route("PATCH", f"{_SECRET}/", KeyVaultSecrets.update_secret),
        Route("GET", f"{_SECRET}/versions", KeyVaultSecrets.list_versions),
        Route("GET", f"{_SECRET}/{{version}}", KeyVaultSecrets.get_secret),
        Route("PATCH", f"{_SECRET}/{{version}}", KeyVaultSecrets.update_secret),
    )

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
        self._oidc_kid = b64url(_secrets.token_bytes(16))
        self._entra_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._entra_kid = b64url(_secrets.token_bytes(16))

        self._apps: dict[tuple[str, str], AppRegistration] = {}
        self._tenants: set[str] = {tenant_id}
        self._secrets: dict[str, tuple[str, list[SecretVersion]]] = {}
        self._denied: set[str] = set()
        self._hits: deque[float] = deque()
        self.exchanges: list[Exchange] = []
        if client_id is not None:
            self.register_app(tenant_id, client_id, issuer, subject)

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

    def handle(self, request: Request) -> Response:
        try:
            is_vault = request.path == "/secrets" or request.path.startswith("/secrets/")
            if is_vault and not TOKEN_PATH.match(request.path):
                request.user = self.admit(request)
            return self.route(request)
        except KvError as err:
            return self._kv_error_response(request, err)

    def not_found(self, request: Request) -> Response:
        raise KvError(404, "NotFound", f"The requested path {request.path} was not found.")

    def method_not_allowed(self, request: Request, allowed: list[str]) -> Response:
        raise KvError(
            405,
            "MethodNotAllowed",
            f"The requested method {request.method} is not allowed on {request.path}.",
        )

    def error_body(self, status: int, request: Request) -> Response:
        if TOKEN_PATH.match(request.path):
            error = "temporarily_unavailable" if status in (429, 503) else "server_error"
            return self._aad_response(
                AadError(status, error, 90033, "A transient error has occurred. Please try again.")
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
            request, KvError(status, codes.get(status, "Error"), message, challenge=status == 401)
        )
