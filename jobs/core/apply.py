"""The one place a `KvPlan` meets Vault, and the one re-plan loop.

`apply_plan` executes a plan with check-and-set: data first, then metadata, so a refused CAS never
stamps our metadata on somebody else's value. A data write whose outcome is unknown (timeout, dropped
connection, 5xx, a CAS mismatch on a retry of a write that had landed) is resolved by reading the key
back: when our value is there, it was written. A metadata write that fails after the data landed is
reported as what it is — the value is written, its metadata is not — never as a lost race.

`converge` is the loop every job shares: decide from
what was observed, apply, and when another writer wins the CAS race observe *both sides* again (Vault
and the authority) and decide again — a bounded number of times, never a blind retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from jobs.core.errors import ClientError, Conflict, Transient, failure_reason
from jobs.core.model import DRY_RUN, Action, EntryResult
from jobs.core.plan import KvPlan

if TYPE_CHECKING:  # the vendor SDK loads only when a client is built
    from jobs.core.clients.vault import VaultClient

log = logging.getLogger(__name__)

REPLANS: Final = 3
S = TypeVar("S")


@dataclass(frozen=True)
class Applied:
    result: EntryResult
    new_version: int | None = None  # set only when a new version was written
    metadata_error: str | None = None  # the value is in Vault, but its metadata write failed


@dataclass(frozen=True)
class KvTarget:
    """Where plans are applied: one Vault mount, for real or as a dry run."""

    vault: VaultClient
    mount: str
    dry_run: bool

    def apply(self, plan: KvPlan) -> Applied:
        return apply_plan(self.vault, self.mount, plan, dry_run=self.dry_run)


def apply_plan(vault: VaultClient, mount: str, plan: KvPlan, *, dry_run: bool) -> Applied:
    """Execute one plan (a plan that writes nothing, or a dry run, touches nothing)."""
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
        version = _write_data(vault, mount, plan, plan.write_data)
    new_version = version if plan.write_data is not None else None
    if plan.write_metadata is not None:
        try:
            vault.write_metadata(mount, plan.name, plan.write_metadata)
        except ClientError as exc:
            error = failure_reason(exc)
            held = f"Vault holds the value as v{version}" if version else "Vault holds the value"
            reason = f"{plan.reason}; {held} but its metadata was not recorded: {error}"
            result = EntryResult(plan.name, Action.FAILED, reason, version or None)
            return Applied(result, new_version, metadata_error=error)
    return Applied(EntryResult(plan.name, plan.action, plan.reason, version or None), new_version)


def _write_data(vault: VaultClient, mount: str, plan: KvPlan, data: Mapping[str, str]) -> int:
    """The check-and-set write; when its outcome is unknown, the key is read back to decide."""
    try:
        return vault.write(mount, plan.name, data, cas=plan.cas)
    except (Transient, Conflict) as exc:
        landed = landed_version(vault, mount, plan.name, data, plan.cas)
        if landed is None:
            raise
        log.warning(
            "the write's answer was lost, but reading the key back shows our value: it was written",
            extra={"entry": plan.name, "version": landed, "error": failure_reason(exc)},
        )
        return landed


def landed_version(
    vault: VaultClient, mount: str, name: str, data: Mapping[str, str], cas: int
) -> int | None:
    """The version holding exactly `data`, newer than `cas`, if Vault holds it now; else None."""
    try:
        current = vault.read(mount, name)
    except ClientError:
        return None
    holds = all(current.data.get(k) == v for k, v in data.items())
    if current.exists and not current.deleted and current.version > cas and holds:
        return current.version
    return None


@dataclass(frozen=True)
class Converged(Generic[S]):
    seen: S  # the observation the applied plan was decided from
    plan: KvPlan
    applied: Applied


def converge(
    first: S,
    observe_again: Callable[[S], S],
    decide: Callable[[S], KvPlan],
    target: KvTarget,
) -> Converged[S]:
    """Decide from `first` and apply; after a lost CAS race, `observe_again` (both sides: Vault and the
    authority) and decide again, at most `REPLANS` times. `decide` is pure."""
    seen = first
    for attempt in range(REPLANS):
        if attempt:
            seen = observe_again(seen)
        plan = decide(seen)
        try:
            return Converged(seen, plan, target.apply(plan))
        except Conflict:
            continue
    raise Conflict(
        "vault",
        f"write {target.mount}/data/{plan.name}: lost the check-and-set race {REPLANS} times in a row",
    )
