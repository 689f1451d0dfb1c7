"""A client-patcher world on the real Keycloak: the session's provisioned Keycloak (lab/real_tier.py),
a real OpenBao mount, and the project's Kubernetes emulator with the consumers' ExternalSecrets.

The same shape as lab/client_patcher_stack.py (whose catalog, policy and Kubernetes seeding
it reuses), with Keycloak observed and changed only through its Admin REST API.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import hvac
import yaml

from emulators.kube import KubeEmulator
from jobs.patcher.decide import force_sync_value
from lab.client_patcher_stack import (
    CLIENT_PATCHER,
    DEFAULT_CLIENTS,
    KUBE_SA,
    ClientSpec,
    catalog_document,
    clean_env,
    openbao_values,
    seed_kube,
    vault_policy,
)
from lab.openbao import OpenBao
from lab.real_tier import ADMIN_PASSWORD, ADMIN_USERNAME, RealServer

MASTER_SA = ("master", "client-patcher")  # the three client roles on every `<realm>-realm` client


@dataclass
class RealClientPatcherStack:
    server: RealServer
    openbao: OpenBao
    mount: str
    workdir: Path
    kube: KubeEmulator
    clients: tuple[ClientSpec, ...]
    catalog_path: Path
    kubeconfig: Path
    kube_token: str = field(repr=False)
    vault_token: str = field(repr=False)
    service_account: tuple[str, str] = MASTER_SA  # (its realm = the catalog's authRealm, clientId)
    extra_secrets: list[str] = field(default_factory=list, repr=False)

    @classmethod
    def start(
        cls,
        server: RealServer,
        openbao: OpenBao,
        mount: str,
        workdir: Path,
        clients: Sequence[ClientSpec] = DEFAULT_CLIENTS,
        service_account: tuple[str, str] = MASTER_SA,
    ) -> RealClientPatcherStack:
        workdir.mkdir(parents=True, exist_ok=True)
        clients = tuple(clients)
        kube = KubeEmulator(tls=True)
        kube.enable_eso_reconciler(openbao_values(openbao))  # consumer verification converges
        kube.start()
        try:
            seed_kube(kube, mount, clients)
            token = kube.issue_token(*KUBE_SA, lifetime=3600)
            kubeconfig = kube.kubeconfig(workdir / "kubeconfig", token, namespace=KUBE_SA[0])
            policy = f"client-patcher-{mount}"
            openbao.write_policy(policy, vault_policy(mount, [c.name for c in clients]))
            vault_token = openbao.token_with_policies(policy)
        except BaseException:
            kube.stop()
            raise
        stack = cls(
            server,
            openbao,
            mount,
            workdir,
            kube,
            clients,
            workdir / "catalog.yaml",
            kubeconfig,
            token,
            vault_token,
            service_account,
        )
        stack.write_catalog()
        return stack

    def stop(self) -> None:
        self.kube.stop()

    def __enter__(self) -> RealClientPatcherStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_catalog(self, clients: Sequence[ClientSpec] | None = None) -> Path:
        if clients is not None:
            self.clients = tuple(clients)
        document = catalog_document(self.server.url, self.mount, self.clients, self.service_account[0])
        self.catalog_path.write_text(yaml.safe_dump(document, sort_keys=False))
        return self.catalog_path

    # -- running ------------------------------------------------------------------------------------
    def env(self, *, service_account: bool = True, admin: bool = True, **overrides: str) -> dict[str, str]:
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
        if service_account:
            realm, client_id = self.service_account
            env["KEYCLOAK_CLIENT_ID"] = client_id
            env["KEYCLOAK_CLIENT_SECRET"] = self.server.secret_of(realm, client_id)
        if admin:
            env.update({"KEYCLOAK_ADMIN_USERNAME": ADMIN_USERNAME, "KEYCLOAK_ADMIN_PASSWORD": ADMIN_PASSWORD})
        env.update(overrides)
        return {k: v for k, v in env.items() if v != ""}

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the real console script; JSON logs unless `--log-format` is among `args`."""
        if "--log-format" not in args:
            args = ("--log-format", "json", *args)
        return subprocess.run(
            [str(CLIENT_PATCHER), "--catalog", str(self.catalog_path), *args],
            env=dict(env) if env is not None else self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # -- observing ----------------------------------------------------------------------------------
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

    def keycloak_secret(self, spec: ClientSpec) -> str | None:
        return self.server.api.client_secret(spec.realm, spec.client_id)

    def consumer(self, namespace: str, name: str) -> tuple[str, dict[str, str]]:
        obj = self.kube.get_object("ExternalSecret", namespace, name)
        if obj is None:
            raise LookupError(f"no ExternalSecret {namespace}/{name}")
        return str(obj["metadata"]["resourceVersion"]), dict(obj["metadata"].get("annotations") or {})

    def secret_values(self) -> list[str]:
        """Every credential and secret value in this world, for "never printed" checks."""
        values = [ADMIN_PASSWORD, self.vault_token, self.kube_token, *self.extra_secrets]
        values += [c.secret for c in self.server.world.clients if c.secret]
        for spec in self.clients:
            if spec.in_keycloak:
                secret = self.keycloak_secret(spec)
                if secret:
                    values.append(secret)
        return values
