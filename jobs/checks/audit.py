"""`secret-origin audit`: the seed's compliance matrix, from what Vault holds now.

Per entry: the Vault location, the current authority as recorded in custom_metadata by our jobs
("unknown writer" when a value lacks `managed-by`), the authority its origin expects, a status
(COMPLIANT / NON-COMPLIANT / CONDITIONAL) and a severity; then a summary by category. `assess` is pure
and table-tested; the I/O is one Vault read per entry. Exit 1 when any entry is NON-COMPLIANT or could
not be observed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Final

from jobs.checks.expected import Known, Observed, Status, decide, observe
from jobs.checks.smoke import window_note
from jobs.core.catalog import Catalog, Origin, SecretEntry
from jobs.core.errors import ClientError, failure_reason
from jobs.core.model import ExitCode
from jobs.core.observed import KvRead

__all__ = ["Known", "Observed", "Status", "assess", "observe"]


@dataclass(frozen=True)
class AuditOptions:
    format: str = "markdown"
    placeholder_patterns: tuple[str, ...] = ()
    login: bool = False  # add a Login column: does Keycloak accept the secret in Vault
    login_rate: float = 5.0  # token-endpoint requests per second at most


EXPECTED: Final = {
    Origin.EXTERNAL: "Azure KV",
    Origin.SERVICE_GENERATED: "Keycloak-generated",
    Origin.HELM_GENERATED: "K8s Secret (Helm)",
    Origin.OPERATOR_RECONCILED: "K8s Secret (Helm), operator reconciles",
}
CATEGORY: Final = {
    Origin.EXTERNAL: "External secrets (Azure KV)",
    Origin.SERVICE_GENERATED: "Service-generated (Keycloak client secrets)",
    Origin.HELM_GENERATED: "Helm-generated (bootstrap/admin)",
    Origin.OPERATOR_RECONCILED: "Operator-reconciled (database credentials)",
}
_STATUS_ICON: Final = {
    Status.COMPLIANT: "✅",
    Status.NON_COMPLIANT: "❌",
    Status.CONDITIONAL: "⚠️",
    Status.UNKNOWN: "❓",
}


@dataclass(frozen=True)
class Row:
    secret: str
    category: str
    location: str
    current: str
    expected: str
    status: Status
    severity: str  # "-" when compliant
    note: str
    login: str | None = None  # with --login: "ok: …", "fail: …", "skip: …" or "-" (not applicable)


def assess(catalog: Catalog, entry: SecretEntry, current: KvRead | ClientError, known: Known) -> Row:
    """One row of the compliance matrix. Pure."""
    if isinstance(current, ClientError):
        seen, label = Observed.UNREADABLE, f"unobservable: {failure_reason(current)}"
    else:
        seen, label = observe(current, catalog.vault.field, entry, known)
    status, dev, production, note = decide(entry.origin, seen, entry.required)
    severity = production if catalog.is_production else dev
    if status is Status.CONDITIONAL and catalog.is_production and seen is Observed.FIXTURE:
        status, note = Status.NON_COMPLIANT, "fixture in production (anti-pattern 3)"
    window = window_note(current) if isinstance(current, KvRead) else None
    if window is not None:
        note = f"{note}; {window}" if note and note != "-" else window
    return Row(
        secret=entry.name,
        category=CATEGORY[entry.origin],
        location=catalog.vault_path(entry),
        current=label,
        expected=EXPECTED[entry.origin],
        status=status,
        severity=severity if status is not Status.COMPLIANT else "-",
        note=note,
    )


@dataclass(frozen=True)
class Summary:
    category: str
    compliant: int
    non_compliant: int
    conditional: int
    unknown: int
    total: int


def summarize(rows: Sequence[Row]) -> list[Summary]:
    order = list(CATEGORY.values())
    result = []
    for category in order:
        group = [r for r in rows if r.category == category]
        if group:
            count = {s: sum(r.status is s for r in group) for s in Status}
            result.append(
                Summary(
                    category,
                    count[Status.COMPLIANT],
                    count[Status.NON_COMPLIANT],
                    count[Status.CONDITIONAL],
                    count[Status.UNKNOWN],
                    len(group),
                )
            )
    return result


def exit_code(rows: Sequence[Row]) -> int:
    bad = any(r.status in (Status.NON_COMPLIANT, Status.UNKNOWN) for r in rows)
    bad = bad or any((r.login or "").startswith("fail") for r in rows)
    return int(ExitCode.ENTRY_FAILED if bad else ExitCode.CONVERGED)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(catalog: Catalog, rows: Sequence[Row]) -> str:
    lines = [f"## Compliance audit: `{catalog.path}` (environment {catalog.environment})", ""]
    lines += ["### Summary", ""]
    lines.append("| Category | Compliant | Non-Compliant | Conditional | Notes |")
    lines.append("|----------|-----------|---------------|-------------|-------|")
    for s in summarize(rows):
        notes = ", ".join(
            f"`{r.secret}`" for r in rows if r.category == s.category and r.status is not Status.COMPLIANT
        )
        unknown = f" ({s.unknown} unobservable)" if s.unknown else ""
        lines.append(
            f"| {s.category} | {s.compliant}/{s.total} | {s.non_compliant} | {s.conditional}{unknown} | "
            f"{notes or '-'} |"
        )
    login = any(r.login is not None for r in rows)
    lines += ["", "### Compliance Matrix", ""]
    head = "| Secret | Location | Current Authority | Expected Authority | Status | Severity | Note |"
    rule = "|--------|----------|-------------------|--------------------|--------|----------|------|"
    lines += [head + (" Login |" if login else ""), rule + ("-------|" if login else "")]
    for r in rows:
        lines.append(
            f"| `{r.secret}` | `{r.location}` | {_cell(r.current)} | {_cell(r.expected)} | "
            f"{_STATUS_ICON[r.status]} {r.status.value} | {r.severity} | {_cell(r.note)} |"
            + (f" {_cell(r.login or '-')} |" if login else "")
        )
    return "\n".join(lines)


def render_json(catalog: Catalog, rows: Sequence[Row]) -> str:
    payload = {
        "catalog": catalog.path,
        "environment": catalog.environment,
        "rows": [
            {k: v for k, v in asdict(r).items() if k != "login" or v is not None} | {"status": r.status.value}
            for r in rows
        ],
        "summary": [asdict(s) for s in summarize(rows)],
        "exit_code": exit_code(rows),
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)
