"""An entry's origin and what it forbids or requires (docs/design.md#origins-and-authorities).
Standard library only: `origin_problems` works on raw YAML data, so the loader reports these rules
even when the same entry has other errors, and without the catalog model."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from jobs.core import metadata as md
from jobs.core.catalog_text import K8S_NAME


class Origin(StrEnum):
    EXTERNAL = "external"
    SERVICE_GENERATED = "service-generated"
    HELM_GENERATED = "helm-generated"
    OPERATOR_RECONCILED = "operator-reconciled"

    @property
    def cluster_managed(self) -> bool:
        return self is not Origin.EXTERNAL

    @property
    def authority(self) -> str:
        return _AUTHORITY[self]


_AUTHORITY: Final = {
    Origin.EXTERNAL: md.AUTHORITY_AKV,
    Origin.SERVICE_GENERATED: md.AUTHORITY_KEYCLOAK,
    Origin.HELM_GENERATED: "helm",
    Origin.OPERATOR_RECONCILED: "operator",
}


def origin_problems(item: Mapping[str, Any]) -> list[str]:
    """What an entry's origin forbids or requires. Works on raw YAML data, so these problems are
    reported even when the same entry has other errors."""
    problems: list[str] = []
    origin = item.get("origin")
    if origin not in {o.value for o in Origin}:
        return problems
    if origin == Origin.SERVICE_GENERATED.value and item.get("keycloak") is None:
        problems.append("a service-generated entry needs a `keycloak` source (realm, clientId)")
    if origin != Origin.SERVICE_GENERATED.value and item.get("keycloak") is not None:
        problems.append(f"`keycloak` is only valid on service-generated entries, not {origin}")
    if origin != Origin.EXTERNAL.value and item.get("azureKeyVault") is not None:
        problems.append(
            "`azureKeyVault` is only valid on external entries: a cluster-managed secret must never "
            "come from Azure Key Vault"
        )
    if origin != Origin.EXTERNAL.value and item.get("required"):
        problems.append("`required` applies to external entries (it means: must exist in Azure Key Vault)")
    consumers = item.get("consumers")
    if isinstance(consumers, list):
        seen: set[tuple[Any, Any]] = set()
        for consumer in consumers:
            if isinstance(consumer, dict):
                key = (consumer.get("namespace"), consumer.get("name"))
                if key in seen:
                    shown = all(isinstance(part, str) and K8S_NAME.fullmatch(part) for part in key)
                    problems.append(
                        f"consumer {key[0]}/{key[1]} is listed twice"
                        if shown
                        else "a consumer is listed twice"
                    )
                seen.add(key)
    return problems
