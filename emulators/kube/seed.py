"""The seed document the standalone mode and docker-compose load, and the files it writes per account."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from emulators.kube.server import KubeEmulator


def load_seed(emulator: KubeEmulator, seed: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Apply a seed document; returns the seeded service accounts as (namespace, name).

    ```yaml
    namespaces: [apps]                       # optional; objects and accounts create theirs anyway
    serviceAccounts:
      - namespace: secret-origin
        name: client-patcher
        tokenReview: true                    # optional: system:auth-delegator
        tokenAudiences: [https://kubernetes.default.svc]   # optional, for the written token
        grants:
          - namespace: apps                  # omit or null: cluster-wide (ClusterRole)
            verbs: [get, list, patch]
            group: external-secrets.io       # "" for core
            resource: externalsecrets
            resourceNames: [app]             # optional
    objects:                                 # any served kind, as manifests
      - apiVersion: external-secrets.io/v1
        kind: ExternalSecret
        metadata: {name: app, namespace: apps}
        spec: {refreshInterval: 1h, refreshPolicy: OnChange}
    ```
    """
    unknown = set(seed) - {"namespaces", "serviceAccounts", "objects", "esoVersions"}
    if unknown:
        raise ValueError(f"seed: unknown top-level keys {sorted(unknown)}")
    for namespace in seed.get("namespaces") or []:
        emulator.add_namespace(str(namespace))
    accounts: list[tuple[str, str]] = []
    for index, account in enumerate(seed.get("serviceAccounts") or []):
        where = f"seed serviceAccounts[{index}]"
        try:
            namespace, name = str(account["namespace"]), str(account["name"])
        except (KeyError, TypeError):
            raise ValueError(f"{where}: needs namespace and name") from None
        emulator.add_service_account(namespace, name)
        if account.get("tokenReview"):
            emulator.allow_token_review(namespace, name)
        for grant_index, grant in enumerate(account.get("grants") or []):
            try:
                emulator.grant(
                    grant.get("namespace"),
                    namespace,
                    name,
                    verbs=list(grant["verbs"]),
                    group=str(grant.get("group", "")),
                    resource=str(grant["resource"]),
                    resource_names=grant.get("resourceNames"),
                )
            except (KeyError, TypeError, AttributeError):
                raise ValueError(f"{where}.grants[{grant_index}]: needs verbs and resource") from None
        accounts.append((namespace, name))
    for index, manifest in enumerate(seed.get("objects") or []):
        try:
            emulator.put_object(manifest)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"seed objects[{index}]: {exc}") from None
    return accounts


def write_account_files(
    emulator: KubeEmulator, out: Path, namespace: str, name: str, audiences: Iterable[str], lifetime: int
) -> Path:
    """`out/serviceaccounts/<ns>/<name>/` laid out like /var/run/secrets/kubernetes.io/serviceaccount."""
    directory = out / "serviceaccounts" / namespace / name
    directory.mkdir(parents=True, exist_ok=True)
    token = emulator.issue_token(namespace, name, audiences=audiences, lifetime=lifetime)
    (directory / "token").write_text(token)
    (directory / "token").chmod(0o600)
    (directory / "namespace").write_text(namespace)
    if emulator.ca_pem_path is not None:
        (directory / "ca.crt").write_bytes(emulator.ca_pem_path.read_bytes())
    emulator.kubeconfig(directory / "kubeconfig", token, namespace=namespace, user=f"{namespace}-{name}")
    return directory
