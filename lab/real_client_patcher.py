"""A client-patcher world on the real Keycloak: the session's provisioned Keycloak (lab/real_tier.py),
a real OpenBao mount, and the project's Kubernetes emulator with the consumers' ExternalSecrets.

The same shape as lab/client_patcher_stack.py (whose catalog, policy and Kubernetes seeding
it reuses), with Keycloak observed and changed only through its Admin REST API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from emulators.kube import KubeEmulator
from lab.client_patcher_stack import (
    DEFAULT_CLIENTS,
    KUBE_SA,
    ClientSpec,
    StackRuns,
    catalog_document,
    openbao_values,
    seed_kube,
    vault_policy,
)
from lab.openbao import OpenBao
from lab.real_tier import ADMIN_PASSWORD, ADMIN_USERNAME, RealServer

MASTER_SA = ("master", "client-patcher")  # the three client roles on every `<realm>-realm` client


@dataclass
class RealClientPatcherStack(StackRuns):
    run_timeout = 120.0  # a real Keycloak answers slower than the emulator

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
        env = self.base_env()
        if service_account:
            realm, client_id = self.service_account
            env["KEYCLOAK_CLIENT_ID"] = client_id
            env["KEYCLOAK_CLIENT_SECRET"] = self.server.secret_of(realm, client_id)
        if admin:
            env.update({"KEYCLOAK_ADMIN_USERNAME": ADMIN_USERNAME, "KEYCLOAK_ADMIN_PASSWORD": ADMIN_PASSWORD})
        env.update(overrides)
        return {k: v for k, v in env.items() if v != ""}

    # -- observing ----------------------------------------------------------------------------------
    def keycloak_secret(self, spec: ClientSpec) -> str | None:
        return self.server.api.client_secret(spec.realm, spec.client_id)

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
