"""Frozen result objects: what happened to each entry, and the run report that derives the exit code."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Final

# The fixed prefix of every dry-run line and reason, so a plan is easy to grep for.
DRY_RUN: Final = "DRY-RUN:"


class Action(StrEnum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"
    SEEDED_FIXTURE = "seeded-fixture"
    SKIPPED = "skipped"
    FAILED = "failed"


class ExitCode(IntEnum):
    CONVERGED = 0
    ENTRY_FAILED = 1
    BAD_INVOCATION = 2


@dataclass(frozen=True)
class EntryResult:
    """The outcome of one catalog entry. `reason` and `warnings` never hold a secret value."""

    name: str
    action: Action
    reason: str = ""
    vault_version: int | None = None
    warnings: tuple[str, ...] = ()
    dry_run: bool = False

    @property
    def failed(self) -> bool:
        return self.action is Action.FAILED


@dataclass(frozen=True)
class RunReport:
    job: str
    results: tuple[EntryResult, ...]
    interrupted: bool = False
    dry_run: bool = False
    warnings: tuple[str, ...] = field(default=())

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(r.action.value for r in self.results)
        return {action.value: counted.get(action.value, 0) for action in Action}

    @property
    def exit_code(self) -> ExitCode:
        if self.interrupted or any(r.failed for r in self.results):
            return ExitCode.ENTRY_FAILED
        return ExitCode.CONVERGED


@dataclass(frozen=True)
class CommandOutput:
    """What a command that is not a per-entry job (e.g. `secret-origin check`) prints, and its exit code.
    `text` never holds a secret value; the runner still passes it through the redaction filter."""

    text: str
    exit_code: int
