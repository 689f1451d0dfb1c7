"""Vault's Kubernetes auth wired to the Kubernetes API emulator (TLS, as OpenBao requires a CA)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from emulators.kube import KubeEmulator
from lab.openbao import OpenBao


@dataclass(frozen=True)
class KubeAuth:
    mount: str
    role: str
    token_path: Path

    def env(self) -> dict[str, str]:
        """The variables a pod would have (no VAULT_TOKEN: the job logs in itself)."""
        return {
            "VAULT_AUTH_ROLE": self.role,
            "VAULT_AUTH_MOUNT": self.mount,
            "VAULT_K8S_TOKEN_PATH": str(self.token_path),
        }


def configure_kubernetes_auth(
    openbao: OpenBao,
    kube: KubeEmulator,
    *,
    namespace: str,
    service_account: str,
    policy_hcl: str,
    token_dir: Path,
    ttl: str = "10m",
) -> KubeAuth:
    """Enable auth/kubernetes on a fresh mount against `kube`, bind a role to one service account
    with the given policy, and write that account's projected token where a pod would read it."""
    mount = f"k8s-{uuid.uuid4().hex[:8]}"
    role = f"role-{uuid.uuid4().hex[:6]}"
    if kube.ca_pem_path is None:
        raise ValueError("start the KubeEmulator with tls=True: OpenBao needs kubernetes_ca_cert")
    kube.add_service_account(namespace, service_account)
    kube.allow_token_review(
        namespace, service_account
    )  # no reviewer JWT: Vault reviews with the client's own
    root = openbao.client()
    root.sys.enable_auth_method("kubernetes", path=mount)
    root.auth.kubernetes.configure(
        kube.url,
        kubernetes_ca_cert=kube.ca_pem_path.read_text(),
        mount_point=mount,
        disable_local_ca_jwt=True,
    )
    openbao.write_policy(f"{mount}-policy", policy_hcl)
    root.auth.kubernetes.create_role(
        role, [service_account], [namespace], policies=[f"{mount}-policy"], ttl=ttl, mount_point=mount
    )
    token_dir.mkdir(parents=True, exist_ok=True)
    token_path = token_dir / "token"
    token_path.write_text(kube.issue_token(namespace, service_account))
    return KubeAuth(mount=mount, role=role, token_path=token_path)
