"""`secret-origin smoke`: live check that cluster-managed secrets are real (seed items 462-10, 462-19).

Every cluster-managed entry's Vault key must exist and must not hold a fixture: not marked as one in
custom_metadata, not equal to any fixture the catalog declares, not matching a placeholder pattern.
With `--consumers`, each consumer ExternalSecret's target Secret is compared with Vault by SHA-256
digest (in memory only): a consumer holding a placeholder is reported apart from one ESO has not
refreshed yet. Exit 1 lists the offenders.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from jobs.checks import rules
from jobs.checks.check import add_placeholder_argument
from jobs.checks.manifests import Location, parse_external_secret, resolve_key
from jobs.core import metadata as md
from jobs.core.catalog import Consumer, SecretEntry
from jobs.core.clients.kube import KubeClient
from jobs.core.clients.vault import KvRead, VaultClient
from jobs.core.model import Action, EntryResult, RunReport
from jobs.core.runner import RunContext, fail_all, process_entries
from jobs.core.settings import VaultSettings, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--consumers",
        action="store_true",
        help="also compare each consumer ExternalSecret's synced Secret with Vault (needs Kubernetes access)",
    )
    add_placeholder_argument(parser)


def digest(value: str | bytes) -> bytes:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).digest()


@dataclass(frozen=True)
class Known:
    """What counts as a placeholder: the catalog's fixtures and the placeholder patterns."""

    fixtures: tuple[rules.KnownFixture, ...]
    patterns: tuple[rules.Placeholder, ...]

    def why_placeholder(self, value: str) -> str | None:
        fixture = next((f for f in self.fixtures if f.value == value), None)
        if fixture is not None:
            return f"equals the fixture of entry `{fixture.entry}`"
        pattern = rules.first_placeholder(value, self.patterns)
        return f"matches placeholder pattern {pattern.label}" if pattern is not None else None


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


def selected(entries: Iterable[SecretEntry], consumers: bool) -> tuple[SecretEntry, ...]:
    """Cluster-managed entries, plus (with --consumers) external entries that have consumers."""
    return tuple(e for e in entries if e.origin.cluster_managed or (consumers and e.consumers))


def check_entry(
    ctx: RunContext,
    vault: VaultClient,
    kube: KubeClient | None,
    known: Known,
    entry: SecretEntry,
) -> EntryResult:
    catalog = ctx.catalog
    field_name = catalog.vault.field
    current = vault.read(catalog.vault.kv_mount, entry.name)
    problems = []
    if entry.origin.cluster_managed:
        offence = decide_vault(entry, current, field_name, known)
        if offence:
            problems.append(offence)
    value = current.value(field_name) if current.exists and not current.deleted else None
    if kube is not None and entry.consumers:
        if value is None:
            problems.append("consumers not compared: no value in Vault")
        else:
            reader = kube
            vault_digest = digest(value)
            for consumer in entry.consumers:
                obj = reader.get_external_secret_object(consumer.namespace, consumer.name)
                keys = consumer_keys(obj, catalog.vault.kv_mount, entry.name, field_name)
                target = parse_external_secret(obj, Location("cluster", 1)).target
                synced = reader.read_secret_data(consumer.namespace, target) if keys else None
                state = decide_consumer(
                    consumer,
                    target=target,
                    keys=keys,
                    synced=synced,
                    vault_digest=vault_digest,
                    vault_version=current.version,
                    known=known,
                )
                if state:
                    problems.append(state)
    if problems:
        return EntryResult(entry.name, Action.FAILED, "; ".join(problems), current.version or None)
    consumers = (
        f", {len(entry.consumers)} consumer(s) in sync" if kube is not None and entry.consumers else ""
    )
    origin = "" if entry.origin.cluster_managed else "external: "
    return EntryResult(
        entry.name,
        Action.UNCHANGED,
        f"ok: {origin}v{current.version}, {writer(current)}{consumers}",
        current.version,
    )


def execute(ctx: RunContext) -> RunReport:
    rules_patterns = rules.placeholders(ctx.args.placeholder_pattern)
    known = Known(rules.known_fixtures([ctx.catalog]), rules_patterns)
    entries = selected(ctx.entries, ctx.args.consumers)
    skipped = [
        EntryResult(e.name, Action.SKIPPED, "external: not cluster-managed (vault-bootstrap mirrors AKV)")
        for e in ctx.entries
        if e not in entries
    ]
    vault = VaultClient(load_settings(VaultSettings), ctx.retry)
    kube = KubeClient(retry=ctx.retry, field_manager="secret-origin") if ctx.args.consumers else None
    try:
        try:
            vault.login()
        except Exception as exc:  # noqa: BLE001 - a run-level failure fails every entry
            return fail_all(ctx, ctx.entries, exc)
        report = process_entries(ctx, entries, lambda e: check_entry(ctx, vault, kube, known, e))
    finally:
        if kube is not None:
            kube.close()
    order = {e.name: n for n, e in enumerate(ctx.entries)}
    results = sorted(report.results + tuple(skipped), key=lambda r: order.get(r.name, len(order)))
    return dataclasses.replace(report, results=tuple(results))
