"""Pure planning for one Vault key, and the thin apply that performs it.

`plan_sync` (authority value -> Vault) and `plan_fixture` (placeholder into an absent key) decide
from what was observed, with no I/O, so they are table-tested. `apply_plan` executes a plan with
check-and-set; `converge` wraps read -> plan -> apply and, on a CAS conflict, re-reads and re-plans
instead of retrying blindly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from jobs.core import metadata as md
from jobs.core.clients.vault import KvRead, VaultClient
from jobs.core.errors import Conflict
from jobs.core.model import DRY_RUN, Action, EntryResult

_REPLANS: Final = 3


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


@dataclass
class Applied:
    result: EntryResult
    new_version: int | None = None  # set only when a new version was written
    observed: KvRead | None = field(default=None, repr=False)


def apply_plan(vault: VaultClient, mount: str, plan: KvPlan, *, dry_run: bool) -> Applied:
    """Execute one plan: data first (CAS), then metadata, so a refused CAS never stamps our
    metadata on somebody else's value."""
    if dry_run or not plan.writes:
        version = plan.current_version + 1 if plan.write_data is not None else plan.current_version
        reason = (
            f"{DRY_RUN} would be {plan.action.value}: {plan.reason}"
            if dry_run and plan.writes
            else plan.reason
        )
        return Applied(EntryResult(plan.name, plan.action, reason, version or None, dry_run=dry_run))
    version = plan.current_version
    if plan.write_data is not None:
        version = vault.write(mount, plan.name, plan.write_data, cas=plan.cas)
    if plan.write_metadata is not None:
        vault.write_metadata(mount, plan.name, plan.write_metadata)
    return Applied(
        EntryResult(plan.name, plan.action, plan.reason, version or None),
        new_version=version if plan.write_data is not None else None,
    )


def converge(
    vault: VaultClient,
    mount: str,
    name: str,
    decide: Callable[[KvRead], KvPlan],
    *,
    dry_run: bool,
    first: KvRead | None = None,
) -> Applied:
    """Read -> plan -> apply; on a CAS conflict (another writer won) read again and re-plan.
    `first` is a read the caller already made (saves a round trip); later attempts always re-read."""
    for attempt in range(_REPLANS):
        current = first if attempt == 0 and first is not None else vault.read(mount, name)
        try:
            applied = apply_plan(vault, mount, decide(current), dry_run=dry_run)
        except Conflict:
            continue
        applied.observed = current
        return applied
    raise Conflict(
        "vault", f"write {mount}/data/{name}: lost the check-and-set race {_REPLANS} times in a row"
    )
