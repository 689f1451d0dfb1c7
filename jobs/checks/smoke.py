"""`secret-origin smoke`: live check that cluster-managed secrets are real (docs/design.md#checks).

Each entry is `ok`, `fail` or `skip`, judged by the same expected state `audit` reports
(`jobs.checks.expected`): a cluster-managed key Vault does not hold is `skip: not mirrored` (the
Kubernetes Secret is the authority; audit: COMPLIANT); one holding a fixture fails: marked as one in
custom_metadata, equal to any fixture the catalog declares, or matching a placeholder pattern (audit:
CONDITIONAL in dev, NON-COMPLIANT in production); any other state audit finds NON-COMPLIANT fails.
With `--consumers`, each consumer ExternalSecret's target Secret is compared with Vault by SHA-256
digest (in memory only): a consumer holding a placeholder is reported apart from one ESO has not
refreshed yet. Exit 1 lists the offenders.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from jobs.checks.expected import Known, Observed, Status, decide, observe
from jobs.checks.manifests import Location, parse_external_secret, resolve_key
from jobs.core import metadata as md
from jobs.core.catalog import Consumer, SecretEntry
from jobs.core.model import Action, EntryResult, RunReport, SummaryMode
from jobs.core.observed import KvRead


@dataclass(frozen=True)
class SmokeOptions:
    consumers: bool = False  # also compare each consumer's synced Secret with Vault
    placeholder_patterns: tuple[str, ...] = ()
    login: bool = False  # also log in to Keycloak as each service-generated client with the stored secret
    login_rate: float = 5.0  # token-endpoint requests per second at most


def digest(value: str | bytes) -> bytes:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).digest()


def writer(current: KvRead) -> str:
    meta = current.custom_metadata
    if md.is_ours(meta):
        return f"written by secret-origin, authority {meta.get(md.AUTHORITY, '?')}"
    other = meta.get(md.MANAGED_BY)
    return f"managed-by {other}" if other else "unknown writer (no managed-by)"


def decide_vault(entry: SecretEntry, current: KvRead, field_name: str, known: Known) -> str | None:
    """The offence of one cluster-managed key, or None when it holds a real value. Pure."""
    if not current.exists:
        return f"missing: {current.path} does not exist in Vault"
    if current.deleted:
        return f"missing: the current version v{current.version} of {current.path} is deleted"
    value = current.value(field_name)
    if value is None:
        return f"missing: {current.path} has no field {field_name!r}"
    if md.is_fixture_marked(current.custom_metadata):
        return f"placeholder: v{current.version} is marked as a fixture in custom_metadata"
    if entry.fixture is not None and value == entry.fixture:
        return f"placeholder: v{current.version} equals the entry's declared fixture"
    why = known.why_placeholder(value)
    return f"placeholder: v{current.version} {why}" if why else None


OK: Final = "ok"
FAIL: Final = "fail"
SKIP: Final = "skip"
_STATUS_OF: Final = {Action.UNCHANGED: OK, Action.FAILED: FAIL, Action.SKIPPED: SKIP}


def vault_verdict(entry: SecretEntry, current: KvRead, field_name: str, known: Known) -> tuple[str, str]:
    """(ok / fail / skip, reason) of a cluster-managed key, from the expected state audit uses. Pure."""
    seen, label = observe(current, field_name, entry, known)
    status, _, _, note = decide(entry.origin, seen, entry.required)
    if seen is Observed.ABSENT:
        missing = decide_vault(entry, current, field_name, known) or ""
        return SKIP, f"not mirrored ({missing.removeprefix('missing: ')}; audit: {status.value})"
    offence = decide_vault(entry, current, field_name, known)
    if offence or seen is Observed.FIXTURE:
        return FAIL, offence or f"placeholder: {label}"
    if status is Status.NON_COMPLIANT:
        return FAIL, f"{label}: {note}"
    return OK, f"v{current.version}, {writer(current)}"


def consumer_keys(obj: Mapping[str, object], mount: str, entry_name: str, field_name: str) -> list[str]:
    """The target Secret keys through which this ExternalSecret carries the entry's field."""
    es = parse_external_secret(obj, Location("cluster", 1))
    wanted = f"{mount}/{entry_name}"
    keys = []
    for read in es.reads:
        if resolve_key(mount, read.key) != wanted:
            continue
        if read.secret_key is None:
            keys.append(field_name)  # dataFrom.extract: every field becomes a key of its own name
        elif read.property == field_name:
            keys.append(read.secret_key)
    return keys


def decide_consumer(
    consumer: Consumer,
    *,
    target: str,
    keys: Sequence[str],
    synced: Mapping[str, bytes] | None,
    vault_digest: bytes,
    vault_version: int,
    known: Known,
) -> str | None:
    """One consumer's state against Vault (digests only). Pure."""
    if not keys:
        return f"consumer {consumer} does not read this entry's Vault key"
    if synced is None:
        return f"ESO has not refreshed: consumer {consumer}'s Secret {target} does not exist yet"
    for key in keys:
        value = synced.get(key)
        if value is None:
            return f"ESO has not refreshed: consumer {consumer}'s Secret {target} has no key {key!r}"
        if hmac.compare_digest(digest(value), vault_digest):
            continue
        why = known.why_placeholder(value.decode("utf-8", errors="replace"))
        if why:
            return f"placeholder: consumer {consumer}'s Secret {target} key {key!r} {why}"
        return (
            f"ESO has not refreshed: consumer {consumer}'s Secret {target} key {key!r} differs from "
            f"Vault v{vault_version}"
        )
    return None


def window_note(current: KvRead, now: float | None = None) -> str | None:
    """A zero-downtime rotation in progress, as client-patcher recorded it (`rotation-window`). Pure."""
    text = current.custom_metadata.get(md.ROTATION_WINDOW)
    if not text:
        return None
    since, until, end = md.parse_window(text)
    if now is not None and end is not None and end <= now:
        return f"rotation window expired at {until}: Keycloak no longer accepts the previous secret"
    return (
        f"rotation in progress: the previous secret also logs in, since {since} until {until} "
        "(client-patcher closes the window once every consumer converged)"
    )


def selected(entries: Iterable[SecretEntry], consumers: bool) -> tuple[SecretEntry, ...]:
    """Cluster-managed entries, plus (with --consumers) external entries that have consumers."""
    return tuple(e for e in entries if e.origin.cluster_managed or (consumers and e.consumers))


def vault_outcome(
    entry: SecretEntry,
    current: KvRead,
    consumers_checked: bool,
    problems: Sequence[str],
    skip: str | None = None,
    *,
    notes: Sequence[str] = (),
) -> EntryResult:
    """The entry's result from its Vault verdict and the consumer problems found. Pure."""
    if problems:
        return EntryResult(entry.name, Action.FAILED, "; ".join(problems), current.version or None)
    if skip is not None:
        return EntryResult(entry.name, Action.SKIPPED, f"skip: {skip}", None)
    consumers = (
        f", {len(entry.consumers)} consumer(s) in sync" if consumers_checked and entry.consumers else ""
    )
    origin = "" if entry.origin.cluster_managed else "external: "
    extra = "".join(f", {note}" for note in notes)
    return EntryResult(
        entry.name,
        Action.UNCHANGED,
        f"ok: {origin}v{current.version}, {writer(current)}{consumers}{extra}",
        current.version,
    )


@dataclass(frozen=True)
class SmokeOutput:
    """smoke's summary in its own words: each entry `ok`, `fail` or `skip` (never the write jobs'
    `unchanged` / `written`), counts of each, and the exit code (1 when any failed or the run stopped)."""

    report: RunReport

    @property
    def exit_code(self) -> int:
        return int(self.report.exit_code)

    def entries(self) -> list[dict[str, Any]]:
        return [
            {"entry": r.name, "status": _STATUS_OF.get(r.action, FAIL), "reason": r.reason}
            | ({"version": r.vault_version} if r.vault_version else {})
            for r in self.report.results
        ]

    def render(self, log_format: str, mode: SummaryMode = SummaryMode.CHANGES) -> str:
        """Like every summary (docs/design.md#exit-codes): JSON lines, one `entry` record per entry
        that is not `ok` (`--summary full`: every entry), then the `summary` record; snake_case keys."""
        entries = self.entries()
        counts = {s: sum(e["status"] == s for e in entries) for s in (OK, FAIL, SKIP)}
        listed = [e for e in entries if mode is SummaryMode.FULL or e["status"] != OK]
        stopped = self.report.stopped_by.value if self.report.stopped_by else None
        if log_format == "json":
            job = self.report.job
            lines = [json.dumps({"record": "entry", "job": job} | e) for e in listed]
            summary = {"record": "summary", "summary": job, "interrupted": self.report.interrupted}
            summary |= {"stopped_by": stopped, "exit_code": self.exit_code, "counts": counts}
            lines.append(json.dumps(summary | {"warnings": list(self.report.warnings)}))
            return "\n".join(lines)
        width = max([len("ENTRY"), *(len(e["entry"]) for e in listed)])
        stop = f" (STOPPED: {stopped or 'sigterm'})" if self.report.interrupted else ""
        lines = [f"{self.report.job} summary{stop}"]
        lines += [f"{e['entry']:<{width}}  {e['status']:<4}  {e['reason']}" for e in listed]
        if len(listed) < len(entries):
            lines.append(f"({len(entries) - len(listed)} ok entries not listed; --summary full lists them)")
        lines += [f"warning: {w}" for w in self.report.warnings]
        lines.append(" ".join(f"{k}={v}" for k, v in counts.items()) + f" exit={self.exit_code}")
        return "\n".join(lines)
