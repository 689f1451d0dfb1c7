"""A ready-to-run client-patcher world: Keycloak emulator + Kubernetes emulator + a real OpenBao mount.

Used by the client-patcher tests and meant for `make demo`. Nothing here needs pytest::

    from lab.openbao import start_openbao
    from lab.client_patcher_stack import ClientPatcherStack

    bao = start_openbao()
    with ClientPatcherStack.start(bao, bao.new_kv_mount(), Path(tmpdir)) as stack:
        first = stack.run("--log-format", "text")      # writes every entry, annotates consumers
        second = stack.run("--log-format", "text")     # unchanged, patches nothing
        print(first.stdout, second.stdout)
    bao.stop()

What `start` builds (see `DEFAULT_CLIENTS` and `DEFAULT_CONSUMERS`):

- Keycloak (`KeycloakEmulator`): realm `master` with the admin user `admin` (realm role `admin`) and the
  service-account client `client-patcher` holding view-clients/manage-clients on the managed realms'
  `<realm>-realm` clients; realms `ameide` and `partners` with the clients in `DEFAULT_CLIENTS`, plus
  near-match decoys (`platform-app-master-v2`, `Platform-App-Master`'s neighbour `platform-app`).
- Kubernetes (`KubeEmulator`, TLS): one ExternalSecret per consumer (refreshPolicy OnChange), the service
  account `secret-origin/client-patcher` allowed to get/patch exactly those ExternalSecrets and to get
  their target Secrets (`resourceNames`), to list ExternalSecrets in their namespaces, and a kubeconfig
  for it. The ESO reconciler simulation is on (`eso_reconciler=False` turns it off): a force-sync
  change copies the OpenBao value into the target Secret, so client-patcher's consumer verification
  converges (`stack.eso` sets its faults).
- Vault: a KV v2 mount and a token whose policy covers only the catalog's paths.
- A catalog file with one service-generated entry per `DEFAULT_CLIENTS` item.

`env()` returns the process environment for the console script (credentials only as env vars) and
`secret_values()` every secret the world holds, for "never printed" assertions.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import yaml

from emulators.keycloak import KeycloakEmulator
from emulators.kube import KubeEmulator
from emulators.kube.eso_reconciler import EsoReconciler, ValueSource
from jobs.patcher.decide import force_sync_value
from lab.openbao import OpenBao

BIN = Path(sys.executable).parent
CLIENT_PATCHER = BIN / "client-patcher"
ROOT = Path(__file__).resolve().parents[1]

KC_ADMIN = "admin"
KC_ADMIN_PASSWORD = "Adm1n-" + uuid.uuid4().hex[:12]
KC_SA_CLIENT = "client-patcher"
KC_SA_SECRET = "sa-" + uuid.uuid4().hex
KUBE_SA = ("secret-origin", "client-patcher")
ENV_PREFIXES = ("VAULT_", "BAO_", "KEYCLOAK_", "KUBECONFIG", "KUBERNETES_", "SECRET_CATALOG")


@dataclass(frozen=True)
class ClientSpec:
    """One catalog entry and the Keycloak client behind it."""

    name: str  # catalog entry / Vault key
    realm: str
    client_id: str
    consumers: tuple[tuple[str, str], ...] = ()
    public: bool = False
    bearer_only: bool = False
    authenticator: str = "client-secret"
    in_keycloak: bool = True  # False: the catalog names a client Keycloak does not have
    rotate_run_id: str | None = None
    rotate_grace: str | None = None  # keycloak.rotate.grace, e.g. "15m"
    hard_cut: bool = False  # keycloak.rotate.hardCut


DEFAULT_CLIENTS: tuple[ClientSpec, ...] = (
    ClientSpec(
        "platform-app-master-client-secret",
        "ameide",
        "platform-app-master",
        (("ameide-dev", "platform-app-master-client-sync"), ("ameide-dev", "www-ameide-platform-auth")),
    ),
    ClientSpec("www-client-secret", "ameide", "www", (("ameide-dev", "www-auth"),)),
    ClientSpec("partner-portal-client-secret", "partners", "partner-portal", (("partners", "portal-sync"),)),
    ClientSpec("partner-api-client-secret", "partners", "partner-api"),
)
# Decoys that a substring or case-insensitive lookup would return instead of the real client
# (docs/design.md#traps, trap 2).
DECOYS: Mapping[str, tuple[str, ...]] = {"ameide": ("platform-app-master-v2", "platform-app", "www-admin")}


def clean_env() -> dict[str, str]:
    """The current environment without any Vault/Keycloak/Kubernetes setting of the caller."""
    return {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}


def vault_policy(mount: str, names: Iterable[str], *, per_key: bool = True) -> str:
    """Least privilege for client-patcher: read/write data and metadata of exactly these keys, a metadata
    write limited to custom_metadata and metadata_cas (as `secret-origin policy` generates it).
    `per_key=False`: the same rights on every key of the mount (`<mount>/data/*`), for benchmarks:
    OpenBao evaluates a policy's paths on every request, which at thousands of exact paths costs the
    server more CPU than the request itself (docs/performance.md)."""
    only = '"custom_metadata" = []\n    "metadata_cas" = []'
    blocks = []
    for name in names if per_key else ["*"]:
        blocks.append(f'path "{mount}/data/{name}" {{ capabilities = ["create", "read", "update"] }}')
        blocks.append(
            f'path "{mount}/metadata/{name}" {{\n  capabilities = ["create", "read", "update"]\n'
            f"  allowed_parameters = {{\n    {only}\n  }}\n}}"
        )
    return "\n".join(blocks) + "\n"


def catalog_document(
    keycloak_url: str, mount: str, clients: Sequence[ClientSpec], auth_realm: str = "master"
) -> dict[str, Any]:
    secrets: list[dict[str, Any]] = []
    for spec in clients:
        source: dict[str, Any] = {"realm": spec.realm, "clientId": spec.client_id}
        if spec.rotate_run_id is not None:
            source["rotate"] = {"runId": spec.rotate_run_id}
            if spec.rotate_grace is not None:
                source["rotate"]["grace"] = spec.rotate_grace
            if spec.hard_cut:
                source["rotate"]["hardCut"] = True
        entry: dict[str, Any] = {"name": spec.name, "origin": "service-generated", "keycloak": source}
        if spec.consumers:
            entry["consumers"] = [{"namespace": ns, "name": name} for ns, name in spec.consumers]
        secrets.append(entry)
    return {
        "environment": "dev",
        "vault": {"kvMount": mount, "field": "value"},
        "keycloak": {"url": keycloak_url, "authRealm": auth_realm},
        "secrets": secrets,
    }


def seed_keycloak(keycloak: KeycloakEmulator, clients: Sequence[ClientSpec]) -> None:
    realms = sorted({spec.realm for spec in clients if spec.in_keycloak})
    for realm in realms:
        keycloak.add_realm(realm)
    keycloak.add_user("master", KC_ADMIN, KC_ADMIN_PASSWORD, realm_roles=["admin"])
    keycloak.add_client(
        "master",
        KC_SA_CLIENT,
        secret=KC_SA_SECRET,
        service_account=True,
        service_account_roles={
            f"{realm}-realm": ["query-clients", "view-clients", "manage-clients"] for realm in realms
        },
    )
    for spec in clients:
        if spec.in_keycloak:
            keycloak.add_client(
                spec.realm,
                spec.client_id,
                public=spec.public,
                bearer_only=spec.bearer_only,
                authenticator=spec.authenticator,
            )
    for realm, decoys in DECOYS.items():
        if realm in realms:
            for decoy in decoys:
                keycloak.add_client(realm, decoy)


def openbao_values(openbao: OpenBao) -> ValueSource:
    """The value source of the emulator's ESO reconciler: a KV v2 key ("<mount>/<key>") read from
    OpenBao with its root token, as ESO's SecretStore would (fields, or None when absent)."""

    def read(remote_key: str) -> Mapping[str, str] | None:
        mount, _, name = remote_key.strip("/").partition("/")
        try:
            body = openbao.client().secrets.kv.v2.read_secret_version(
                path=name.removeprefix("data/"), mount_point=mount, raise_on_deleted_version=False
            )
        except hvac.exceptions.InvalidPath:
            return None
        data = body["data"]["data"]
        return {str(k): str(v) for k, v in data.items()} if data else None

    return read


def seed_kube(kube: KubeEmulator, mount: str, clients: Sequence[ClientSpec]) -> None:
    namespace, name = KUBE_SA
    kube.add_service_account(namespace, name)
    by_namespace: dict[str, list[str]] = {}
    for spec in clients:
        for consumer_ns, consumer in spec.consumers:
            kube.add_external_secret(
                consumer_ns, consumer, remote_key=f"{mount}/{spec.name}", refresh_policy="OnChange"
            )
            by_namespace.setdefault(consumer_ns, []).append(consumer)
    for consumer_ns, names in by_namespace.items():
        kube.grant(
            consumer_ns,
            namespace,
            name,
            verbs=["get", "patch"],
            group="external-secrets.io",
            resource="externalsecrets",
            resource_names=names,
        )
        kube.grant(  # LIST cannot be limited by resourceNames (the chart's Role grants it the same way)
            consumer_ns,
            namespace,
            name,
            verbs=["list"],
            group="external-secrets.io",
            resource="externalsecrets",
        )
        # consumer verification reads each target Secret (named like its ExternalSecret here)
        kube.grant(
            consumer_ns, namespace, name, verbs=["get"], group="", resource="secrets", resource_names=names
        )
        # as the chart grants it (clientPatcher.events.enabled): Events on those ExternalSecrets
        kube.grant(consumer_ns, namespace, name, verbs=["create"], group="events.k8s.io", resource="events")


class StackRuns:
    """What both client-patcher worlds (emulated Keycloak here, the real one in
    lab/real_client_patcher.py) share: running the console script and reading Vault and the
    ExternalSecrets. The worlds are dataclasses with these attributes and an `env()`."""

    openbao: OpenBao
    mount: str
    kube: KubeEmulator
    catalog_path: Path
    kubeconfig: Path
    vault_token: str
    run_timeout: float = 60

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def base_env(self) -> dict[str, str]:
        """A pod's environment without any Keycloak credential: Vault, the kubeconfig, the catalog."""
        env = clean_env()
        env.update(
            {
                "VAULT_ADDR": self.openbao.addr,
                "VAULT_TOKEN": self.vault_token,
                "KUBECONFIG": str(self.kubeconfig),
                "SECRET_CATALOG": str(self.catalog_path),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def command(self, *args: str) -> list[str]:
        return [str(CLIENT_PATCHER), "--catalog", str(self.catalog_path), *args]

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real console script; JSON logs unless `--log-format` is among `args`."""
        if "--log-format" not in args:
            args = ("--log-format", "json", *args)
        return subprocess.run(
            self.command(*args),
            env=dict(env) if env is not None else self.env(),
            capture_output=True,
            text=True,
            timeout=timeout or self.run_timeout,
            check=False,
        )

    def vault(self) -> hvac.Client:
        return self.openbao.client()

    def vault_state(self, name: str) -> tuple[int, str | None, dict[str, str]]:
        """(current version, value, custom_metadata); (0, None, {}) when absent."""
        try:
            body = self.vault().secrets.kv.v2.read_secret_version(
                path=name, mount_point=self.mount, raise_on_deleted_version=False
            )
        except hvac.exceptions.InvalidPath:
            return 0, None, {}
        meta = body["data"]["metadata"]
        value = (body["data"]["data"] or {}).get("value")
        return int(meta["version"]), value, dict(meta.get("custom_metadata") or {})

    def force_sync_of(self, name: str) -> str:
        """The force-sync value that names the version Vault holds now for `name`."""
        body = self.vault().secrets.kv.v2.read_secret_version(
            path=name, mount_point=self.mount, raise_on_deleted_version=False
        )
        meta = body["data"]["metadata"]
        return force_sync_value(int(meta["version"]), str(meta["created_time"]))

    def consumer(self, namespace: str, name: str) -> tuple[str, dict[str, str]]:
        """(resourceVersion, annotations) of an ExternalSecret."""
        obj = self.kube.get_object("ExternalSecret", namespace, name)
        if obj is None:
            raise LookupError(f"no ExternalSecret {namespace}/{name}")
        return str(obj["metadata"]["resourceVersion"]), dict(obj["metadata"].get("annotations") or {})


@dataclass
class ClientPatcherStack(StackRuns):
    openbao: OpenBao
    mount: str
    workdir: Path
    keycloak: KeycloakEmulator
    kube: KubeEmulator
    clients: tuple[ClientSpec, ...]
    catalog_path: Path
    kubeconfig: Path
    kube_token: str
    vault_token: str
    extra_secrets: list[str] = field(default_factory=list)

    # -- lifecycle ----------------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        openbao: OpenBao,
        mount: str,
        workdir: Path,
        clients: Sequence[ClientSpec] = DEFAULT_CLIENTS,
        *,
        token_lifespan: int | None = None,
        eso_versions: Sequence[str] = ("v1",),
        per_key_policy: bool = True,
        eso_reconciler: bool = True,
    ) -> ClientPatcherStack:
        """Start both emulators, seed them, and write the catalog and kubeconfig under `workdir`."""
        workdir.mkdir(parents=True, exist_ok=True)
        clients = tuple(clients)
        keycloak = KeycloakEmulator(token_lifespan=token_lifespan)
        keycloak.start()
        kube = KubeEmulator(eso_versions=eso_versions, tls=True)
        if eso_reconciler:
            kube.enable_eso_reconciler(openbao_values(openbao))
        kube.start()
        try:
            seed_keycloak(keycloak, clients)
            seed_kube(kube, mount, clients)
            token = kube.issue_token(*KUBE_SA, lifetime=3600)
            kubeconfig = kube.kubeconfig(workdir / "kubeconfig", token, namespace=KUBE_SA[0])
            policy = f"client-patcher-{mount}"
            names = [c.name for c in clients]
            openbao.write_policy(policy, vault_policy(mount, names, per_key=per_key_policy))
            vault_token = openbao.token_with_policies(policy)
            catalog_path = workdir / "catalog.yaml"
            stack = cls(
                openbao, mount, workdir, keycloak, kube, clients, catalog_path, kubeconfig, token, vault_token
            )
            stack.write_catalog(clients)
        except BaseException:
            keycloak.stop()
            kube.stop()
            raise
        return stack

    def stop(self) -> None:
        self.keycloak.stop()
        self.kube.stop()

    def __enter__(self) -> ClientPatcherStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_catalog(self, clients: Sequence[ClientSpec] | None = None) -> Path:
        """(Re)write the catalog, e.g. with a new rotate runId."""
        if clients is not None:
            self.clients = tuple(clients)
        document = catalog_document(self.keycloak.url, self.mount, self.clients)
        self.catalog_path.write_text(yaml.safe_dump(document, sort_keys=False))
        return self.catalog_path

    # -- running ------------------------------------------------------------------------------------
    def env(self, *, service_account: bool = True, admin: bool = True, **overrides: str) -> dict[str, str]:
        env = self.base_env()
        if service_account:
            env.update({"KEYCLOAK_CLIENT_ID": KC_SA_CLIENT, "KEYCLOAK_CLIENT_SECRET": KC_SA_SECRET})
        if admin:
            env.update({"KEYCLOAK_ADMIN_USERNAME": KC_ADMIN, "KEYCLOAK_ADMIN_PASSWORD": KC_ADMIN_PASSWORD})
        env.update(overrides)
        return {k: v for k, v in env.items() if v != ""}

    # -- observing ----------------------------------------------------------------------------------
    @property
    def eso(self) -> EsoReconciler:
        """The ESO reconciler simulation (fault knobs, force-sync history)."""
        if self.kube.eso_reconciler is None:
            raise LookupError("the stack was started with eso_reconciler=False")
        return self.kube.eso_reconciler

    def keycloak_secret(self, spec: ClientSpec) -> str | None:
        return self.keycloak.client_secret(spec.realm, spec.client_id)

    def secret_values(self) -> list[str]:
        """Every credential and secret value in this world (current Keycloak secrets included)."""
        values = [KC_ADMIN_PASSWORD, KC_SA_SECRET, self.vault_token, self.kube_token, *self.extra_secrets]
        for spec in self.clients:
            if spec.in_keycloak:
                secret = self.keycloak_secret(spec)
                if secret:
                    values.append(secret)
        return values


def assert_no_secret_in(text: str, values: Iterable[str]) -> None:
    for value in values:
        assert value not in text, "a secret value was printed"
        # A tail is unique even for JWTs, whose headers (the head) are shared by every token.
        assert value[-12:] not in text, "part of a secret value was printed"
