"""The one re-plan loop: after a lost check-and-set race both sides are observed again and the pure
decision is made again, a bounded number of times."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from jobs.core.apply import REPLANS, Applied, KvTarget, converge
from jobs.core.errors import Conflict
from jobs.core.model import Action, EntryResult
from jobs.core.plan import KvPlan


@dataclass
class RacingTarget:
    """Loses the first `losses` check-and-set races, then accepts; remembers what it accepted."""

    losses: int
    mount: str = "secret"
    written: list[str] = field(default_factory=list)

    def apply(self, plan: KvPlan) -> Applied:
        if self.losses:
            self.losses -= 1
            raise Conflict("vault", "check-and-set refused")
        self.written.append(dict(plan.write_data or {})["value"])
        return Applied(EntryResult(plan.name, plan.action, plan.reason, plan.cas + 1), plan.cas + 1)


def decide(seen: tuple[int, str]) -> KvPlan:
    version, value = seen
    return KvPlan("k", Action.WRITTEN, "differed", {"value": value}, cas=version)


def observe_again(seen: tuple[int, str]) -> tuple[int, str]:
    version, _ = seen
    return version + 1, f"authority-read-{version + 1}"


def as_target(target: RacingTarget) -> KvTarget:
    return target  # type: ignore[return-value]  # duck-typed stand-in for the Vault target


@pytest.mark.parametrize("losses", [0, 1, REPLANS - 1])
def test_a_lost_race_writes_what_both_sides_hold_when_observed_again(losses: int) -> None:
    target = RacingTarget(losses)
    done = converge((1, "authority-read-1"), observe_again, decide, as_target(target))
    assert target.written == [f"authority-read-{1 + losses}"]
    assert done.seen == (1 + losses, f"authority-read-{1 + losses}")
    assert done.applied.new_version == 2 + losses


def test_losing_every_race_gives_up_with_a_conflict_and_writes_nothing() -> None:
    target = RacingTarget(REPLANS)
    with pytest.raises(Conflict, match=f"lost the check-and-set race {REPLANS} times"):
        converge((1, "authority-read-1"), observe_again, decide, as_target(target))
    assert target.written == []
