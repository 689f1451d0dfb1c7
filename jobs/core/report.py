"""The one end-of-run summary: a text table for people, one JSON object for machines."""

from __future__ import annotations

import json
from typing import Any

from jobs.core.logs import redact
from jobs.core.model import DRY_RUN, EntryResult, RunReport


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


def render(report: RunReport, fmt: str) -> str:
    return render_json(report) if fmt == "json" else render_text(report)
