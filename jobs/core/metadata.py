"""The custom_metadata every writer records with a value, read by smoke and audit
(docs/design.md#metadata-keys)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
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
# client-patcher's open zero-downtime rotation window, "<since>/<until>" (ISO 8601 UTC interval): Keycloak
# still accepts the previous secret until then. Written while the window stays open, removed once the job
# closes it; like ROTATION_INTENT not in OUR_KEYS. smoke and audit show it (docs/design.md#metadata-keys).
ROTATION_WINDOW: Final = "rotation-window"

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


def window_interval(since: int | None, until: int | None) -> str:
    """ROTATION_WINDOW's value; an unknown end is written as `?`."""
    return f"{_iso(since)}/{_iso(until)}"


def parse_window(text: str) -> tuple[str, str, float | None]:
    """(since, until, until as Unix seconds or None) of a ROTATION_WINDOW value."""
    since, _, until = text.partition("/")
    try:
        end = datetime.fromisoformat(until).timestamp() if until and until != "?" else None
    except ValueError:
        end = None
    return since or "?", until or "?", end


def _iso(seconds: int | None) -> str:
    return "?" if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
