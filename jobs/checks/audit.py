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
from enum import StrEnum
from typing import Final

from jobs.checks.smoke import Known
from jobs.core import metadata as md
from jobs.core.catalog import Catalog, Origin, SecretEntry
from jobs.core.errors import ClientError, failure_reason
from jobs.core.model import ExitCode
from jobs.core.observed import KvRead
from jobs.core.plan import holds_fixture

FORMATS: Final = ("markdown", "json")


@dataclass(frozen=True)
class AuditOptions:
    format: str = "markdown"
    placeholder_patterns: tuple[str, ...] = ()


class Status(StrEnum):
    COMPLIANT = "COMPLIANT"
    NON_COMPLIANT = "NON-COMPLIANT"
    CONDITIONAL = "CONDITIONAL"
    UNKNOWN = "UNKNOWN"  # Vault could not be read: never reported as compliant


class Observed(StrEnum):
    ABSENT = "absent"
    FIXTURE = "fixture"
    KEYCLOAK = "keycloak"
    AKV = "azure-key-vault"
    MIRROR = "pushsecret-mirror"
    UNKNOWN_WRITER = "unknown-writer"
    UNREADABLE = "unreadable"


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


def observe(current: KvRead, field_name: str, entry: SecretEntry, known: Known) -> tuple[Observed, str]:
    """What Vault says about who wrote this key: (kind, human-readable current authority). Pure."""
    if not current.exists or current.deleted or current.value(field_name) is None:
        return Observed.ABSENT, "absent from Vault"
    meta = current.custom_metadata
    value = current.value(field_name) or ""
    if holds_fixture(current, field_name, entry.fixture) or known.why_placeholder(value):
        by = "vault-bootstrap" if md.is_ours(meta) else "unknown writer"
        return Observed.FIXTURE, f"Vault fixture ({by})"
    if md.is_ours(meta):
        authority = meta.get(md.AUTHORITY)
        if authority == md.AUTHORITY_KEYCLOAK:
            client = meta.get(md.KEYCLOAK_CLIENT_ID)
            return Observed.KEYCLOAK, "Keycloak-generated" + (f" ({client})" if client else "")
        if authority == md.AUTHORITY_AKV:
            version = meta.get(md.AKV_VERSION)
            return Observed.AKV, "Azure KV" + (f" ({version[:8]})" if version else "")
        return Observed.UNKNOWN_WRITER, f"secret-origin with authority {authority or '?'}"
    other = meta.get(md.MANAGED_BY)
    if other == "external-secrets":
        return Observed.MIRROR, "K8s Secret (PushSecret mirror)"
    return Observed.UNKNOWN_WRITER, "unknown writer" + (f" (managed-by {other})" if other else "")


# (origin group, observed) -> (status, severity in dev, severity in production, note)
_Decision = tuple[Status, str, str, str]
_NC, _COND, _OK = Status.NON_COMPLIANT, Status.CONDITIONAL, Status.COMPLIANT
_UNREADABLE: Final[_Decision] = (Status.UNKNOWN, "HIGH", "HIGH", "Vault could not be read")
_EXTERNAL_ABSENT: Final = {
    True: (_NC, "HIGH", "HIGH", "required, but not in Vault"),
    False: (_COND, "LOW", "MEDIUM", "not provisioned in Azure KV yet"),
}
_EXTERNAL: Final[dict[Observed, _Decision]] = {
    Observed.AKV: (_OK, "-", "-", "Azure KV → vault-bootstrap → Vault"),
    Observed.FIXTURE: (_COND, "LOW", "HIGH", "dev fixture; the Azure KV value replaces it"),
    Observed.KEYCLOAK: (_NC, "HIGH", "HIGH", "written from Keycloak; Azure KV is the authority"),
    Observed.MIRROR: (_NC, "MEDIUM", "HIGH", "a PushSecret writes an external secret's path"),
    Observed.UNKNOWN_WRITER: (_COND, "MEDIUM", "MEDIUM", "not written by vault-bootstrap"),
}
_SERVICE_GENERATED: Final[dict[Observed, _Decision]] = {
    Observed.KEYCLOAK: (_OK, "-", "-", "Keycloak → client-patcher → Vault"),
    Observed.ABSENT: (_NC, "HIGH", "HIGH", "client-patcher has not written it; consumers cannot start"),
    Observed.FIXTURE: (_NC, "MEDIUM", "CRITICAL", "fixture instead of the Keycloak secret (anti-pattern 3)"),
    Observed.AKV: (_NC, "HIGH", "HIGH", "fetched from Azure KV (anti-pattern 1)"),
    Observed.MIRROR: (_NC, "MEDIUM", "HIGH", "a PushSecret writes a client-patcher path"),
    Observed.UNKNOWN_WRITER: (
        _NC,
        "MEDIUM",
        "HIGH",
        "not written by client-patcher; Keycloak is the authority",
    ),
}
_CLUSTER_MANAGED: Final[dict[Observed, _Decision]] = {
    Observed.ABSENT: (_OK, "-", "-", "not in Vault; the K8s Secret is the authority"),
    Observed.MIRROR: (_OK, "-", "-", "mirrored by a PushSecret (Replace)"),
    Observed.FIXTURE: (_COND, "LOW", "HIGH", "dev fixture; production uses the Helm-generated value"),
    Observed.AKV: (_NC, "HIGH", "HIGH", "fetched from Azure KV (anti-pattern 1)"),
    Observed.KEYCLOAK: (_NC, "HIGH", "HIGH", "written from Keycloak; the K8s Secret is the authority"),
    Observed.UNKNOWN_WRITER: (
        _COND,
        "MEDIUM",
        "MEDIUM",
        "unknown writer: Vault must not drive it (anti-pattern 2); mirror with a PushSecret",
    ),
}


def _decide(origin: Origin, seen: Observed, required: bool) -> _Decision:
    if seen is Observed.UNREADABLE:
        return _UNREADABLE
    if origin is Origin.EXTERNAL:
        return _EXTERNAL_ABSENT[required] if seen is Observed.ABSENT else _EXTERNAL[seen]
    if origin is Origin.SERVICE_GENERATED:
        return _SERVICE_GENERATED[seen]
    return _CLUSTER_MANAGED[seen]


def assess(catalog: Catalog, entry: SecretEntry, current: KvRead | ClientError, known: Known) -> Row:
    """One row of the compliance matrix. Pure."""
    if isinstance(current, ClientError):
        seen, label = Observed.UNREADABLE, f"unobservable: {failure_reason(current)}"
    else:
        seen, label = observe(current, catalog.vault.field, entry, known)
    status, dev, production, note = _decide(entry.origin, seen, entry.required)
    severity = production if catalog.is_production else dev
    if status is Status.CONDITIONAL and catalog.is_production and seen is Observed.FIXTURE:
        status, note = Status.NON_COMPLIANT, "fixture in production (anti-pattern 3)"
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
    lines += ["", "### Compliance Matrix", ""]
    lines.append("| Secret | Location | Current Authority | Expected Authority | Status | Severity | Note |")
    lines.append("|--------|----------|-------------------|--------------------|--------|----------|------|")
    for r in rows:
        lines.append(
            f"| `{r.secret}` | `{r.location}` | {_cell(r.current)} | {_cell(r.expected)} | "
            f"{_STATUS_ICON[r.status]} {r.status.value} | {r.severity} | {_cell(r.note)} |"
        )
    return "\n".join(lines)


def render_json(catalog: Catalog, rows: Sequence[Row]) -> str:
    payload = {
        "catalog": catalog.path,
        "environment": catalog.environment,
        "rows": [{**asdict(r), "status": r.status.value} for r in rows],
        "summary": [asdict(s) for s in summarize(rows)],
        "exit_code": exit_code(rows),
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)
