"""The custom_metadata every writer records with a value, read by smoke and audit
(docs/design.md#metadata-keys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

MANAGED_BY: Final = "managed-by"
MANAGED_BY_US: Final = "secret-origin"
ORIGIN: Final = "origin"
AUTHORITY: Final = "authority"
FIXTURE: Final = "fixture"
AKV_VERSION: Final = "akv-version"
# vault-bootstrap's proof that Vault still holds what it copied: "<akv name>/<AKV created>/v<Vault version>"
# (an AKV list item has no version id, so the current version is recognised by its creation time).
AKV_FINGERPRINT: Final = "akv-fingerprint"
KEYCLOAK_REALM: Final = "keycloak-realm"
KEYCLOAK_CLIENT_ID: Final = "keycloak-client-id"
ROTATION_RUN_ID: Final = "rotation-run-id"
# client-patcher's rotation lock: "<runId>@<unix seconds>#<owner>", written with metadata_cas by the one
# run allowed to regenerate, removed by it when done. Deliberately not in OUR_KEYS: every other metadata
# write keeps whatever value Vault holds now (docs/design.md#client-patcher).
ROTATION_INTENT: Final = "rotation-intent"

OUR_KEYS: Final = frozenset(
    {
        MANAGED_BY,
        ORIGIN,
        AUTHORITY,
        FIXTURE,
        AKV_VERSION,
        AKV_FINGERPRINT,
        KEYCLOAK_REALM,
        KEYCLOAK_CLIENT_ID,
        ROTATION_RUN_ID,
    }
)

AUTHORITY_AKV: Final = "azure-key-vault"
AUTHORITY_KEYCLOAK: Final = "keycloak"
AUTHORITY_FIXTURE: Final = "fixture"


def stamp(**ours: str | None) -> dict[str, str]:
    """Our metadata for one write: `managed-by` plus the given keys (None drops a key).
    Keyword names use underscores (`akv_version`); Vault keys use dashes."""
    result = {MANAGED_BY: MANAGED_BY_US}
    for key, value in ours.items():
        if value is not None:
            result[key.replace("_", "-")] = value
    unknown = set(result) - OUR_KEYS
    if unknown:
        raise ValueError(f"not a secret-origin metadata key: {sorted(unknown)}")
    return result


def merged(existing: Mapping[str, str], ours: Mapping[str, str]) -> dict[str, str]:
    """Keep keys other tools wrote; replace all of ours (stale ones, e.g. an old akv-version, go)."""
    kept = {k: v for k, v in existing.items() if k not in OUR_KEYS}
    return {**kept, **ours}


def is_ours(custom_metadata: Mapping[str, str]) -> bool:
    return custom_metadata.get(MANAGED_BY) == MANAGED_BY_US


def is_fixture_marked(custom_metadata: Mapping[str, str]) -> bool:
    return custom_metadata.get(FIXTURE) == "true"
