"""The servers an end-to-end test talks to, behind one small interface, from one of two providers.

- `local` (the default): starts the real OpenBao binary and the project's Keycloak, Kubernetes API and
  Entra ID + Key Vault emulators, seeded from the very files docker-compose.test.yml mounts
  (`compose/keycloak/ameide-realm.json`, `compose/kube-seed.yaml`).
- `compose`: connects to servers that are already running, e.g. `docker compose -f
  docker-compose.test.yml up`. Every address and credential is an environment variable whose default is
  what docker-compose.test.yml sets up (`COMPOSE_DEFAULTS`; documented in docs/testing-with-compose.md).

`open_stack()` picks the provider from `SECRET_ORIGIN_STACK` (unset or `local`: local). A test sees only
`Stack`: Vault (address, root token, `new_kv_mount()`, hvac), Keycloak (URL, the service-account client,
the admin; observed only through the Admin REST API with python-keycloak), Azure (the environment a
Workload Identity pod has; AKV seeded only through `SecretClient.set_secret`) and Kubernetes (kubeconfigs;
ExternalSecrets seeded and observed only through the official `kubernetes` client). So what passes on
`local` is meant to pass unchanged against real servers.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import hvac
import kubernetes.client
import kubernetes.config
import yaml
from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from azure.identity import WorkloadIdentityCredential
from azure.keyvault.secrets import SecretClient
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from keycloak import KeycloakAdmin

from emulators.azure import AzureEmulator
from emulators.keycloak import MASTER, KeycloakEmulator
from emulators.kube import DEFAULT_AUDIENCE, KubeEmulator, load_seed
from lab.client_patcher_stack import openbao_values
from lab.openbao import OpenBao, start_openbao

ROOT = Path(__file__).resolve().parents[1]
REALM_IMPORT = ROOT / "compose" / "keycloak" / "ameide-realm.json"
KUBE_SEED = ROOT / "compose" / "kube-seed.yaml"
CLIENT_PATCHER_SA = ("secret-origin", "client-patcher")
ESO = ("external-secrets.io", "v1", "externalsecrets")
# lowkey-vault does not serve the SDK's default 2026-04-01 (docs/design.md#azure-key-vault)
AKV_API_VERSION = "7.6"
KEYCLOAK_ADMIN = ("admin", "admin")  # KC_BOOTSTRAP_ADMIN_* in docker-compose.test.yml
# The caller's own settings must never leak into a job's environment.
FOREIGN_PREFIXES = ("VAULT_", "BAO_", "KEYCLOAK_", "AZURE_", "KUBECONFIG", "REQUESTS_CA_BUNDLE", "SECRET_")

COMPOSE_DEFAULTS: Mapping[str, str] = {
    "SECRET_ORIGIN_VAULT_ADDR": "http://127.0.0.1:8200",
    "SECRET_ORIGIN_VAULT_TOKEN": "root",
    "SECRET_ORIGIN_KEYCLOAK_URL": "http://127.0.0.1:8080",
    "SECRET_ORIGIN_KEYCLOAK_REALM": "ameide",
    "SECRET_ORIGIN_KEYCLOAK_CLIENT_ID": "secret-origin",
    "SECRET_ORIGIN_KEYCLOAK_CLIENT_SECRET": "",  # default: that client's `secret` in the realm import
    "SECRET_ORIGIN_KEYCLOAK_ADMIN_USERNAME": KEYCLOAK_ADMIN[0],
    "SECRET_ORIGIN_KEYCLOAK_ADMIN_PASSWORD": KEYCLOAK_ADMIN[1],
    "SECRET_ORIGIN_AKV_URL": "https://localhost:8443",
    "SECRET_ORIGIN_AKV_API_VERSION": AKV_API_VERSION,
    "SECRET_ORIGIN_LOWKEY_HTTP_URL": "http://localhost:8081",
    "SECRET_ORIGIN_ENTRA_URL": "https://127.0.0.1:9443",
    "SECRET_ORIGIN_ENTRA_DIR": ".stack/entra",
    "SECRET_ORIGIN_KUBE_URL": "https://127.0.0.1:6443",
    "SECRET_ORIGIN_KUBE_DIR": ".stack/kube",
}


class StackUnavailable(RuntimeError):
    """The compose stack is not reachable or its copied-out files are missing."""


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}


def realm_client_secret(client_id: str) -> str:
    realm = json.loads(REALM_IMPORT.read_text(encoding="utf-8"))
    return str(next(c["secret"] for c in realm["clients"] if c["clientId"] == client_id))


# -- the four systems -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Vault:
    addr: str
    root_token: str = field(repr=False)

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.addr, token=token or self.root_token)

    def new_kv_mount(self) -> str:
        """A fresh KV v2 mount, so runs against a long-lived server never see each other's keys."""
        mount = f"kv-{uuid.uuid4().hex[:8]}"
        self.client().sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
        return mount

    def token_for_mount(self, mount: str) -> str:
        """A token whose policy covers only `mount` (what the jobs and checks need there)."""
        hcl = f'path "{mount}/*" {{ capabilities = ["create", "read", "update", "list"] }}\n'
        root = self.client()
        root.sys.create_or_update_policy(name=f"e2e-{mount}", policy=hcl)
        created = root.auth.token.create(policies=[f"e2e-{mount}"], ttl="1h")
        return str(created["auth"]["client_token"])

    def state(self, mount: str, name: str) -> tuple[int, str | None, dict[str, str]]:
        """(current version, value of field `value`, custom_metadata); (0, None, {}) when absent."""
        try:
            body = self.client().secrets.kv.v2.read_secret_version(
                path=name, mount_point=mount, raise_on_deleted_version=False
            )
        except hvac.exceptions.InvalidPath:
            return 0, None, {}
        meta = body["data"]["metadata"]
        value = (body["data"]["data"] or {}).get("value")
        return int(meta["version"]), value, dict(meta.get("custom_metadata") or {})


@dataclass(frozen=True)
class Keycloak:
    url: str
    realm: str  # where the managed clients and the service-account client live
    client_id: str  # the service-account client the jobs log in with
    client_secret: str = field(repr=False)
    admin_username: str = KEYCLOAK_ADMIN[0]
    admin_password: str = field(default=KEYCLOAK_ADMIN[1], repr=False)

    def admin(self) -> KeycloakAdmin:
        """The master-realm admin through the real Admin REST API (setup and observation only)."""
        return KeycloakAdmin(
            server_url=f"{self.url}/",
            username=self.admin_username,
            password=self.admin_password,
            realm_name=self.realm,
            user_realm_name=MASTER,
        )

    def secret_of(self, client_id: str) -> str:
        admin = self.admin()
        found = admin.get_client_id(client_id)
        if found is None:
            raise LookupError(f"no client {client_id!r} in realm {self.realm!r}")
        return str(admin.get_client_secrets(found)["value"])


class _HomeTenant:
    """Asks for tokens in the credential's own tenant, whatever the Key Vault challenge names (lowkey-vault
    names the first path segment, docs/design.md#azure-key-vault). Only for seeding from the test process;
    the jobs get
    `AZURE_IDENTITY_DISABLE_MULTITENANTAUTH` instead."""

    def __init__(self, inner: WorkloadIdentityCredential) -> None:
        self.inner = inner

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        kwargs.pop("tenant_id", None)
        return self.inner.get_token(*scopes, **kwargs)

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        kept = {k: v for k, v in (options or {}).items() if k != "tenant_id"}
        return self.inner.get_token_info(*scopes, options=kept)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Azure:
    vault_url: str  # without a trailing slash
    env: Mapping[str, str] = field(repr=False)  # what a Workload Identity pod has, plus the emulator knobs

    def set_secrets(self, values: Mapping[str, str]) -> None:
        """Seed Key Vault through the official SDK only (works on lowkey-vault and the emulator alike),
        then wait for the next second: vault-bootstrap fingerprints only versions created before the
        second it lists in (see lab/vault_bootstrap_stack.py `settle`)."""
        env = self.env
        credential = WorkloadIdentityCredential(
            tenant_id=env["AZURE_TENANT_ID"],
            client_id=env["AZURE_CLIENT_ID"],
            token_file_path=env["AZURE_FEDERATED_TOKEN_FILE"],
            authority=env["AZURE_AUTHORITY_HOST"],
            connection_verify=env["REQUESTS_CA_BUNDLE"],
        )
        client = SecretClient(
            self.vault_url,
            _HomeTenant(credential),
            api_version=env["AZURE_KEYVAULT_API_VERSION"],
            verify_challenge_resource=False,
            connection_verify=env["REQUESTS_CA_BUNDLE"],
        )
        with credential, client:
            for name, value in values.items():
                client.set_secret(name, value)
        time.sleep(1.02 - time.time() % 1)


@dataclass(frozen=True)
class Kubernetes:
    admin_kubeconfig: Path
    client_patcher_kubeconfig: Path  # the least-privilege grant of compose/kube-seed.yaml

    def _api(self) -> kubernetes.client.ApiClient:
        api = kubernetes.config.new_client_from_config(config_file=str(self.admin_kubeconfig))  # type: ignore[no-untyped-call]
        return cast(kubernetes.client.ApiClient, api)

    def put_external_secret(self, namespace: str, name: str, remote_key: str) -> None:
        """(Re)create the ExternalSecret, so a test starts from one without annotations."""
        group, version, plural = ESO
        body = {
            "apiVersion": f"{group}/{version}",
            "kind": "ExternalSecret",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "refreshInterval": "1h",
                "refreshPolicy": "OnChange",
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault-backend"},
                "target": {"name": name, "creationPolicy": "Owner"},
                "dataFrom": [{"extract": {"key": remote_key}}],
            },
        }
        with self._api() as api:
            objects = kubernetes.client.CustomObjectsApi(api)
            try:
                objects.delete_namespaced_custom_object(group, version, namespace, plural, name)
            except kubernetes.client.ApiException as exc:
                if exc.status != 404:
                    raise
            objects.create_namespaced_custom_object(group, version, namespace, plural, body)

    def external_secret(self, namespace: str, name: str) -> tuple[str, dict[str, str]]:
        """(resourceVersion, annotations)."""
        group, version, plural = ESO
        with self._api() as api:
            obj = kubernetes.client.CustomObjectsApi(api).get_namespaced_custom_object(
                group, version, namespace, plural, name
            )
        meta = cast(dict[str, Any], obj)["metadata"]
        return str(meta["resourceVersion"]), dict(meta.get("annotations") or {})


@dataclass(frozen=True)
class Stack:
    provider: str
    workdir: Path
    vault: Vault
    keycloak: Keycloak
    azure: Azure
    kube: Kubernetes

    def job_env(self, catalog: Path, vault_token: str) -> dict[str, str]:
        """A pod's environment for any of the three console scripts (credentials only as env vars)."""
        env = clean_env()
        env.update(self.azure.env)
        env.update(
            {
                "VAULT_ADDR": self.vault.addr,
                "VAULT_TOKEN": vault_token,
                "KEYCLOAK_CLIENT_ID": self.keycloak.client_id,
                "KEYCLOAK_CLIENT_SECRET": self.keycloak.client_secret,
                "KUBECONFIG": str(self.kube.client_patcher_kubeconfig),
                "SECRET_CATALOG": str(catalog),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def credentials(self) -> list[str]:
        """The stack's own credentials, for "never printed" checks."""
        token_file = Path(self.azure.env["AZURE_FEDERATED_TOKEN_FILE"])
        return [self.vault.root_token, self.keycloak.client_secret, token_file.read_text().strip()]


# -- providers --------------------------------------------------------------------------------------------
@contextmanager
def open_stack(
    workdir: Path, environ: Mapping[str, str] | None = None, openbao: OpenBao | None = None
) -> Iterator[Stack]:
    """The provider named by SECRET_ORIGIN_STACK (`local` when unset)."""
    environ = os.environ if environ is None else environ
    provider = environ.get("SECRET_ORIGIN_STACK") or "local"
    if provider == "local":
        with local_stack(workdir, openbao) as stack:
            yield stack
    elif provider == "compose":
        yield compose_stack(workdir, environ)
    else:
        raise ValueError(f"SECRET_ORIGIN_STACK={provider!r}: expected 'local' or 'compose'")


@contextmanager
def local_stack(workdir: Path, openbao: OpenBao | None = None) -> Iterator[Stack]:
    """Real OpenBao + the three emulators in this process, seeded from the compose files."""
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as cleanup:
        if openbao is None:
            openbao = start_openbao(workdir / "openbao")
            cleanup.callback(openbao.stop)
        keycloak = KeycloakEmulator()
        keycloak.add_user(MASTER, *KEYCLOAK_ADMIN, realm_roles=["admin"])  # the bootstrap admin
        keycloak.import_realm(json.loads(REALM_IMPORT.read_text(encoding="utf-8")), str(REALM_IMPORT))
        keycloak.start()
        cleanup.callback(keycloak.stop)
        kube = KubeEmulator(tls=True)
        kube.enable_eso_reconciler(openbao_values(openbao))  # client-patcher's consumers converge
        seed = yaml.safe_load(KUBE_SEED.read_text(encoding="utf-8"))
        load_seed(kube, seed)
        kube.start()
        cleanup.callback(kube.stop)
        azure = AzureEmulator(cert_dir=workdir / "entra")
        azure.start()
        cleanup.callback(azure.stop)
        token_file = azure.write_federated_token_file(workdir / "entra" / "azure-identity-token")
        # The token the standalone emulator would write for client-patcher: the seed's audiences.
        (audiences,) = [
            a.get("tokenAudiences") or [DEFAULT_AUDIENCE]
            for a in seed["serviceAccounts"]
            if (a["namespace"], a["name"]) == CLIENT_PATCHER_SA
        ]
        patcher_token = kube.issue_token(*CLIENT_PATCHER_SA, audiences=audiences, lifetime=7200)
        realm = json.loads(REALM_IMPORT.read_text(encoding="utf-8"))["realm"]
        yield Stack(
            provider="local",
            workdir=workdir,
            vault=Vault(openbao.addr, openbao.root_token),
            keycloak=Keycloak(keycloak.url, realm, "secret-origin", realm_client_secret("secret-origin")),
            azure=Azure(azure.vault_url, azure_pod_env(azure.sdk_env(token_file))),
            kube=Kubernetes(
                kube.kubeconfig(workdir / "kube" / "admin.kubeconfig", kube.admin_token, user="admin"),
                kube.kubeconfig(
                    workdir / "kube" / "client-patcher.kubeconfig",
                    patcher_token,
                    namespace=CLIENT_PATCHER_SA[0],
                ),
            ),
        )


def azure_pod_env(webhook_env: Mapping[str, str], *, api_version: str = AKV_API_VERSION) -> dict[str, str]:
    """The webhook's variables plus the two documented emulator knobs (docs/design.md#workload-identity,
    #azure-key-vault)."""
    return {
        **webhook_env,
        "AZURE_KEYVAULT_API_VERSION": api_version,
        "AZURE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE": "false",
    }


def compose_stack(workdir: Path, environ: Mapping[str, str]) -> Stack:
    """Connect to running servers; every address and credential from SECRET_ORIGIN_* (`COMPOSE_DEFAULTS`)."""
    workdir.mkdir(parents=True, exist_ok=True)

    def setting(name: str) -> str:
        return environ.get(name) or COMPOSE_DEFAULTS[name]

    def directory(name: str) -> Path:
        path = Path(setting(name))
        path = path if path.is_absolute() else ROOT / path
        if not path.is_dir():
            raise StackUnavailable(f"{name}={path}: no such directory (see docs/testing-with-compose.md)")
        return path

    vault = Vault(setting("SECRET_ORIGIN_VAULT_ADDR"), setting("SECRET_ORIGIN_VAULT_TOKEN"))
    keycloak = Keycloak(
        url=setting("SECRET_ORIGIN_KEYCLOAK_URL").rstrip("/"),
        realm=setting("SECRET_ORIGIN_KEYCLOAK_REALM"),
        client_id=setting("SECRET_ORIGIN_KEYCLOAK_CLIENT_ID"),
        client_secret=environ.get("SECRET_ORIGIN_KEYCLOAK_CLIENT_SECRET")
        or realm_client_secret(setting("SECRET_ORIGIN_KEYCLOAK_CLIENT_ID")),
        admin_username=setting("SECRET_ORIGIN_KEYCLOAK_ADMIN_USERNAME"),
        admin_password=setting("SECRET_ORIGIN_KEYCLOAK_ADMIN_PASSWORD"),
    )
    _require_up(f"{vault.addr}/v1/sys/health", "SECRET_ORIGIN_VAULT_ADDR")
    _require_up(
        f"{keycloak.url}/realms/{keycloak.realm}/.well-known/openid-configuration",
        "SECRET_ORIGIN_KEYCLOAK_URL",
    )

    # Entra ID emulator: its CA, the federated token and the app ids it wrote to /out/entra.
    entra = directory("SECRET_ORIGIN_ENTRA_DIR")
    ids = dict(line.split("=", 1) for line in (entra / "azure.env").read_text().splitlines() if "=" in line)
    # Key Vault (lowkey-vault): its certificate, fetched the way lowkey documents it, plus Entra's CA.
    bundle = workdir / "ca-bundle.pem"
    bundle.write_bytes(
        (entra / "azure-emulator-ca.pem").read_bytes()
        + lowkey_certificate_pem(setting("SECRET_ORIGIN_LOWKEY_HTTP_URL"))
    )
    webhook_env = {
        "AZURE_CLIENT_ID": ids["AZURE_CLIENT_ID"],
        "AZURE_TENANT_ID": ids["AZURE_TENANT_ID"],
        "AZURE_FEDERATED_TOKEN_FILE": str(entra / "azure-identity-token"),
        "AZURE_AUTHORITY_HOST": setting("SECRET_ORIGIN_ENTRA_URL").rstrip("/") + "/",
        "REQUESTS_CA_BUNDLE": str(bundle),
    }
    azure_env = azure_pod_env(webhook_env, api_version=setting("SECRET_ORIGIN_AKV_API_VERSION"))
    # lowkey-vault's challenge names a tenant that is the request's first path segment
    # (docs/design.md#azure-key-vault);
    # azure-identity then asks for the credential's own tenant instead of refusing (utils.resolve_tenant).
    azure_env["AZURE_IDENTITY_DISABLE_MULTITENANTAUTH"] = "true"

    # Kubernetes emulator: kubeconfigs written inside the container name https://kube:6443.
    kube_dir = directory("SECRET_ORIGIN_KUBE_DIR")
    kube_url = setting("SECRET_ORIGIN_KUBE_URL")
    namespace, name = CLIENT_PATCHER_SA
    kube = Kubernetes(
        _repoint(kube_dir / "kubeconfig", kube_url, workdir / "kube" / "admin.kubeconfig"),
        _repoint(
            kube_dir / "serviceaccounts" / namespace / name / "kubeconfig",
            kube_url,
            workdir / "kube" / "client-patcher.kubeconfig",
        ),
    )
    return Stack(
        "compose",
        workdir,
        vault,
        keycloak,
        Azure(setting("SECRET_ORIGIN_AKV_URL").rstrip("/"), azure_env),
        kube,
    )


def lowkey_certificate_pem(http_url: str) -> bytes:
    """lowkey-vault's TLS certificate as PEM: `GET /metadata/default-cert/lowkey-vault.p12` and its
    password from `GET /metadata/default-cert/password` on the HTTP port (docs/design.md#azure-key-vault),
    decoded with cryptography."""
    base = http_url.rstrip("/")
    try:
        password = httpx.get(f"{base}/metadata/default-cert/password", timeout=10).raise_for_status().text
        store = httpx.get(f"{base}/metadata/default-cert/lowkey-vault.p12", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        raise StackUnavailable(f"SECRET_ORIGIN_LOWKEY_HTTP_URL={base}: {exc}") from None
    _, certificate, chain = pkcs12.load_key_and_certificates(store.content, password.encode())
    certificates = [c for c in [certificate, *chain] if c is not None]
    if not certificates:
        raise StackUnavailable(f"{base}/metadata/default-cert/lowkey-vault.p12 holds no certificate")
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


def _require_up(url: str, variable: str) -> None:
    try:
        httpx.get(url, timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        raise StackUnavailable(
            f"{variable}: {url} is not answering ({type(exc).__name__}); is the compose stack up?"
        ) from None


def _repoint(kubeconfig: Path, server: str, target: Path) -> Path:
    """A copy of `kubeconfig` whose clusters point at `server` (the address seen from this host)."""
    if not kubeconfig.is_file():
        raise StackUnavailable(f"{kubeconfig}: missing (copy /out/kube out of the kube container)")
    config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    for cluster in config.get("clusters") or []:
        cluster["cluster"]["server"] = server
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    target.chmod(0o600)
    return target
