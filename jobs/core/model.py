"""Frozen result objects: what happened to each entry, the run report that derives the exit code, and
the one end-of-run summary (a text table for people, one JSON object for machines)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Final, Protocol

from jobs.core.logs import redact

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


class Outcome(Protocol):
    """What a command's `execute` returns: the one summary it prints, and the exit code."""

    @property
    def exit_code(self) -> int: ...

    def render(self, log_format: str) -> str: ...


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

    def render(self, log_format: str) -> str:
        return render_json(self) if log_format == "json" else render_text(self)


@dataclass(frozen=True)
class CommandOutput:
    """What a command that is not a per-entry job (e.g. `secret-origin check`) prints, and its exit code.
    `text` never holds a secret value; the runner still passes it through the redaction filter."""

    text: str
    exit_code: int

    def render(self, log_format: str) -> str:
        return self.text


def _entry_json(result: EntryResult) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": result.name,
        "action": result.action.value,
        "reason": redact(result.reason),
    }
    if result.vault_version is not None:
        payload["vaultVersion"] = result.vault_version
    if result.warnings:
        payload["warnings"] = [redact(w) for w in result.warnings]
    return payload


def render_json(report: RunReport) -> str:
    payload = {
        "summary": report.job,
        "dryRun": report.dry_run,
        "interrupted": report.interrupted,
        "exitCode": int(report.exit_code),
        "counts": report.counts,
        "entries": [_entry_json(r) for r in report.results],
        "warnings": [redact(w) for w in report.warnings],
    }
    return redact(json.dumps(payload, sort_keys=False))


def render_text(report: RunReport) -> str:
    header = f"{report.job} summary"
    if report.dry_run:
        header += f" ({DRY_RUN} nothing was written)"
    if report.interrupted:
        header += " (INTERRUPTED: remaining entries were not started)"
    width = max([len("ENTRY"), *(len(r.name) for r in report.results)])
    lines = [header, f"{'ENTRY':<{width}}  {'ACTION':<14}  {'VERSION':<7}  REASON"]
    for r in report.results:
        version = f"v{r.vault_version}" if r.vault_version else "-"
        lines.append(f"{r.name:<{width}}  {r.action.value:<14}  {version:<7}  {r.reason}".rstrip())
        lines.extend(f"{'':<{width}}  {'':<14}  {'':<7}  warning: {w}" for w in r.warnings)
    lines.extend(f"warning: {w}" for w in report.warnings)
    counts = " ".join(f"{k}={v}" for k, v in report.counts.items())
    lines.append(f"{counts} exit={int(report.exit_code)}")
    return redact("\n".join(lines))
