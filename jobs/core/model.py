"""Frozen result objects: what happened to each entry, the run report that derives the exit code, and
the one end-of-run summary: a text table for people; for machines, JSON lines (docs/design.md#exit-codes).

Every key is snake_case, in the summary, the counts and the logs alike. No output line may pass
16 KiB (container runtimes split longer lines and log shippers then receive broken JSON), so the JSON
summary is one record per entry that was not `unchanged` or carries a warning, then one final record
with the counts and the exit code; `--summary full` lists every entry, and the text table prints quiet
unchanged entries as a count unless asked the same way."""

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
    SEEDED_FIXTURE = "seeded_fixture"
    SKIPPED = "skipped"
    FAILED = "failed"


class StopReason(StrEnum):
    """Why a run stopped starting entries: two different things for on-call."""

    SIGTERM = "sigterm"
    DEADLINE = "deadline"
    SEALED = "sealed"  # Vault answered that it is sealed: it will not unseal itself during this run


NOT_STARTED: Final = {
    StopReason.SIGTERM: "not started: interrupted by SIGTERM",
    StopReason.DEADLINE: "not started: run deadline reached",
    StopReason.SEALED: "not started: Vault is sealed",
}
_STOPPED_TEXT: Final = {
    StopReason.SIGTERM: "INTERRUPTED by SIGTERM: remaining entries were not started",
    StopReason.DEADLINE: "DEADLINE REACHED: remaining entries were not started",
    StopReason.SEALED: "VAULT SEALED: remaining entries were not started",
}


class SummaryMode(StrEnum):
    CHANGES = "changes"  # entries that were not unchanged, then the counts
    FULL = "full"  # every entry


class ExitCode(IntEnum):
    CONVERGED = 0
    ENTRY_FAILED = 1
    BAD_INVOCATION = 2


@dataclass(frozen=True)
class ConsumerResult:
    """One consumer ExternalSecret of an entry: the force-sync value it was refreshed to, and how."""

    namespace: str
    name: str
    force_sync: str
    outcome: str  # patched, would_patch, current, failed


@dataclass(frozen=True)
class EntryResult:
    """The outcome of one catalog entry. `reason` and `warnings` never hold a secret value."""

    name: str
    action: Action
    reason: str = ""
    vault_version: int | None = None
    warnings: tuple[str, ...] = ()
    dry_run: bool = False
    consumers: tuple[ConsumerResult, ...] = ()
    # Unix seconds when the authority stops accepting the secret (a Keycloak client secret under a
    # secret-rotation policy); None: no expiry known. Exported as a metric, never in the summary.
    secret_expires: int | None = field(default=None, compare=False)

    @property
    def failed(self) -> bool:
        return self.action is Action.FAILED


class Outcome(Protocol):
    """What a command's `execute` returns: the one summary it prints, and the exit code."""

    @property
    def exit_code(self) -> int: ...

    def render(self, log_format: str, mode: SummaryMode = SummaryMode.CHANGES) -> str: ...


@dataclass(frozen=True)
class RunReport:
    job: str
    results: tuple[EntryResult, ...]
    interrupted: bool = False
    dry_run: bool = False
    warnings: tuple[str, ...] = field(default=())
    stopped_by: StopReason | None = None  # set when `interrupted`; None for a report built by hand

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(r.action.value for r in self.results)
        return {action.value: counted.get(action.value, 0) for action in Action}

    @property
    def secret_expiry(self) -> dict[str, int]:
        """Entry -> when its secret expires, for the entries whose secret has an expiry."""
        return {r.name: r.secret_expires for r in self.results if r.secret_expires is not None}

    @property
    def exit_code(self) -> ExitCode:
        if self.interrupted or any(r.failed for r in self.results):
            return ExitCode.ENTRY_FAILED
        return ExitCode.CONVERGED

    def render(self, log_format: str, mode: SummaryMode = SummaryMode.CHANGES) -> str:
        return render_json(self, mode) if log_format == "json" else render_text(self, mode)


@dataclass(frozen=True)
class CommandOutput:
    """What a command that is not a per-entry job (e.g. `secret-origin check`) prints, and its exit code.
    `text` never holds a secret value; the runner still passes it through the redaction filter."""

    text: str
    exit_code: int

    def render(self, log_format: str, mode: SummaryMode = SummaryMode.CHANGES) -> str:
        return self.text


def _listed(report: RunReport, mode: SummaryMode) -> tuple[EntryResult, ...]:
    if mode is SummaryMode.FULL:
        return report.results
    return tuple(r for r in report.results if r.action is not Action.UNCHANGED or r.warnings)


def _stop_text(report: RunReport) -> str | None:
    if not report.interrupted:
        return None
    return (report.stopped_by or StopReason.SIGTERM).value


def _entry_json(job: str, result: EntryResult) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "record": "entry",
        "job": job,
        "entry": result.name,
        "action": result.action.value,
        "reason": redact(result.reason),
    }
    if result.vault_version is not None:
        payload["vault_version"] = result.vault_version
    if result.warnings:
        payload["warnings"] = [redact(w) for w in result.warnings]
    if result.consumers:
        payload["consumers"] = [
            {"namespace": c.namespace, "name": c.name, "force_sync": c.force_sync, "outcome": c.outcome}
            for c in result.consumers
        ]
    return payload


def render_json(report: RunReport, mode: SummaryMode = SummaryMode.CHANGES) -> str:
    """JSON lines: one `entry` record per listed entry, then the `summary` record (always last)."""
    lines = [json.dumps(_entry_json(report.job, r)) for r in _listed(report, mode)]
    summary = {
        "record": "summary",
        "summary": report.job,
        "dry_run": report.dry_run,
        "interrupted": report.interrupted,
        "stopped_by": _stop_text(report),
        "exit_code": int(report.exit_code),
        "counts": report.counts,
        "warnings": [redact(w) for w in report.warnings],
    }
    lines.append(json.dumps(summary))
    return redact("\n".join(lines))


def render_text(report: RunReport, mode: SummaryMode = SummaryMode.CHANGES) -> str:
    header = f"{report.job} summary"
    if report.dry_run:
        header += f" ({DRY_RUN} nothing was written)"
    if report.interrupted:
        header += f" ({_STOPPED_TEXT[report.stopped_by or StopReason.SIGTERM]})"
    listed = _listed(report, mode)
    width = max([len("ENTRY"), *(len(r.name) for r in listed)])
    lines = [header, f"{'ENTRY':<{width}}  {'ACTION':<14}  {'VERSION':<7}  REASON"]
    for r in listed:
        version = f"v{r.vault_version}" if r.vault_version else "-"
        lines.append(f"{r.name:<{width}}  {r.action.value:<14}  {version:<7}  {r.reason}".rstrip())
        lines.extend(f"{'':<{width}}  {'':<14}  {'':<7}  warning: {w}" for w in r.warnings)
    hidden = len(report.results) - len(listed)
    if hidden:
        lines.append(f"({hidden} unchanged entries not listed; --summary full lists them)")
    lines.extend(f"warning: {w}" for w in report.warnings)
    counts = " ".join(f"{k}={v}" for k, v in report.counts.items())
    lines.append(f"{counts} exit={int(report.exit_code)}")
    return redact("\n".join(lines))
