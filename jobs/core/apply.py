"""The one place a `KvPlan` meets Vault, and the one re-plan loop.

`apply_plan` executes a plan with check-and-set: data first, then metadata, so a refused CAS never
stamps our metadata on somebody else's value. `converge` is the loop every job shares: decide from
what was observed, apply, and when another writer wins the CAS race observe *both sides* again (Vault
and the authority) and decide again — a bounded number of times, never a blind retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from jobs.core.errors import Conflict
from jobs.core.model import DRY_RUN, EntryResult
from jobs.core.plan import KvPlan

if TYPE_CHECKING:  # the vendor SDK loads only when a client is built
    from jobs.core.clients.vault import VaultClient

REPLANS: Final = 3
S = TypeVar("S")


@dataclass(frozen=True)
class Applied:
    result: EntryResult
    new_version: int | None = None  # set only when a new version was written


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
        version = vault.write(mount, plan.name, plan.write_data, cas=plan.cas)
    if plan.write_metadata is not None:
        vault.write_metadata(mount, plan.name, plan.write_metadata)
    return Applied(
        EntryResult(plan.name, plan.action, plan.reason, version or None),
        new_version=version if plan.write_data is not None else None,
    )


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
