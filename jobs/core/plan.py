"""Pure planning for one Vault key: what to write, decided from what was observed.

`plan_sync` (authority value -> Vault) and `plan_fixture` (placeholder into an absent key) do no I/O
and are table-tested. `jobs.core.apply` is the one place a `KvPlan` meets Vault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from jobs.core import metadata as md
from jobs.core.model import Action
from jobs.core.observed import KvRead


@dataclass(frozen=True)
class KvPlan:
    name: str
    action: Action
    reason: str
    write_data: Mapping[str, str] | None = field(default=None, repr=False)  # the new version; None = no write
    cas: int = 0
    write_metadata: Mapping[str, str] | None = None  # the whole custom_metadata; None = leave it
    current_version: int = 0

    @property
    def writes(self) -> bool:
        return self.write_data is not None or self.write_metadata is not None


def _metadata_update(current: KvRead, ours: Mapping[str, str]) -> dict[str, str] | None:
    wanted = md.merged(current.custom_metadata, ours)
    return None if wanted == dict(current.custom_metadata) else wanted


def plan_sync(current: KvRead, field_name: str, desired: str, ours: Mapping[str, str], source: str) -> KvPlan:
    """The authority holds `desired`: write it only when Vault differs (other fields are kept)."""
    name = current.name
    if current.exists and not current.deleted and current.value(field_name) == desired:
        metadata = _metadata_update(current, ours)
        reason = f"equal to {source}" + ("; metadata updated" if metadata is not None else "")
        return KvPlan(name, Action.UNCHANGED, reason, None, current.version, metadata, current.version)
    data = {**current.data, field_name: desired}
    if not current.exists:
        reason = f"created from {source}"
    elif current.deleted:
        reason = f"current version v{current.version} was deleted; restored from {source}"
    elif current.value(field_name) is None:
        reason = f"field {field_name!r} was missing; written from {source}"
    else:
        reason = f"differed from {source}"
    return KvPlan(
        name,
        Action.WRITTEN,
        reason,
        data,
        current.version,
        md.merged(current.custom_metadata, ours),
        current.version,
    )


def holds_fixture(current: KvRead, field_name: str, fixture: str | None) -> bool:
    """A key holds a fixture if our metadata says so or its value equals the declared fixture."""
    if md.is_fixture_marked(current.custom_metadata):
        return True
    return fixture is not None and current.value(field_name) == fixture


def plan_fixture(current: KvRead, field_name: str, fixture: str, ours: Mapping[str, str]) -> KvPlan:
    """Seed only an absent key (cas=0); never touch a key holding anything else."""
    name = current.name
    if not current.exists:
        return KvPlan(
            name, Action.SEEDED_FIXTURE, "absent key seeded with its fixture", {field_name: fixture}, 0, ours
        )
    if current.deleted:
        return KvPlan(name, Action.SKIPPED, "key exists with a deleted current version; fixture not written")
    if holds_fixture(current, field_name, fixture):
        return KvPlan(name, Action.UNCHANGED, "already holds its fixture", current_version=current.version)
    return KvPlan(
        name,
        Action.SKIPPED,
        "holds a real value; a fixture never overwrites it",
        current_version=current.version,
    )
