"""The live checks' I/O: `secret-origin smoke` and `secret-origin audit` read Vault (and, for
`smoke --consumers`, the consumers' ExternalSecrets and Secrets); every verdict comes from the pure
rules in `jobs.checks.smoke` and `jobs.checks.audit`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from jobs.checks.audit import AuditOptions, assess, exit_code, render_json, render_markdown
from jobs.checks.expected import Known
from jobs.checks.manifests import Location, parse_external_secret
from jobs.checks.smoke import (
    FAIL,
    SKIP,
    SmokeOptions,
    SmokeOutput,
    consumer_keys,
    decide_consumer,
    digest,
    selected,
    vault_outcome,
    vault_verdict,
)
from jobs.core.catalog import Catalog, SecretEntry
from jobs.core.errors import ClientError
from jobs.core.model import Action, CommandOutput, EntryResult, RunReport
from jobs.core.observed import KvRead
from jobs.core.preflight import check_vault, vault_or_fail_all
from jobs.core.runner import RunContext, process_entries
from jobs.core.session import open_vault
from jobs.core.settings import KubeSettings, VaultSettings, load_all_settings

if TYPE_CHECKING:  # vendor SDKs load only when a client is built (instant --help)
    from jobs.core.clients.kube import KubeClient
    from jobs.core.clients.vault import VaultClient


@dataclass(frozen=True)
class Smoke:
    catalog: Catalog
    vault: VaultClient
    kube: KubeClient | None
    known: Known

    def consumer_problems(self, kube: KubeClient, entry: SecretEntry, current: KvRead) -> list[str]:
        """Each consumer's synced Secret against the value in Vault (digests only)."""
        mount, field_name = self.catalog.vault.kv_mount, self.catalog.vault.field
        value = current.value(field_name) if current.exists and not current.deleted else None
        if value is None:
            return ["consumers not compared: no value in Vault"]
        problems = []
        for consumer in entry.consumers:
            obj = kube.get_external_secret_object(consumer.namespace, consumer.name)
            keys = consumer_keys(obj, mount, entry.name, field_name)
            target = parse_external_secret(obj, Location("cluster", 1)).target
            synced = kube.read_secret_data(consumer.namespace, target) if keys else None
            state = decide_consumer(
                consumer,
                target=target,
                keys=keys,
                synced=synced,
                vault_digest=digest(value),
                vault_version=current.version,
                known=self.known,
            )
            if state:
                problems.append(state)
        return problems

    def check_entry(self, entry: SecretEntry) -> EntryResult:
        current = self.vault.read(self.catalog.vault.kv_mount, entry.name)
        problems, skip = [], None
        if entry.origin.cluster_managed:
            verdict, reason = vault_verdict(entry, current, self.catalog.vault.field, self.known)
            if verdict == FAIL:
                problems.append(reason)
            skip = reason if verdict == SKIP else None
        if self.kube is not None and entry.consumers:
            problems.extend(self.consumer_problems(self.kube, entry, current))
        return vault_outcome(entry, current, self.kube is not None, problems, skip)


def smoke(ctx: RunContext[SmokeOptions]) -> SmokeOutput:
    return SmokeOutput(_smoke(ctx))


def _smoke(ctx: RunContext[SmokeOptions]) -> RunReport:
    known = Known.of(ctx.catalog, ctx.options.placeholder_patterns)
    entries = selected(ctx.entries, ctx.options.consumers)
    skipped = [
        EntryResult(
            e.name, Action.SKIPPED, "skip: external, not cluster-managed (vault-bootstrap mirrors AKV)"
        )
        for e in ctx.entries
        if e not in entries
    ]
    if ctx.options.consumers:
        vault_settings, _ = load_all_settings(VaultSettings, KubeSettings)
    else:
        (vault_settings,) = load_all_settings(VaultSettings)
    vault = open_vault(ctx.retry, vault_settings)
    from jobs.core.clients.kube import KubeClient

    kube = KubeClient(retry=ctx.retry, field_manager="secret-origin") if ctx.options.consumers else None
    try:
        refused = vault_or_fail_all(ctx, ctx.entries, vault)
        if refused is not None:
            return refused
        report = process_entries(ctx, entries, Smoke(ctx.catalog, vault, kube, known).check_entry)
    finally:
        if kube is not None:
            kube.close()
    order = {e.name: n for n, e in enumerate(ctx.entries)}
    results = sorted(report.results + tuple(skipped), key=lambda r: order.get(r.name, len(order)))
    return replace(report, results=tuple(results))


def audit(ctx: RunContext[AuditOptions]) -> CommandOutput:
    catalog = ctx.catalog
    known = Known.of(catalog, ctx.options.placeholder_patterns)
    vault = open_vault(ctx.retry)
    refused: ClientError | None = None
    try:
        check_vault(vault, catalog.vault.kv_mount)
    except ClientError as exc:
        refused = exc
    observed: dict[str, KvRead | ClientError] = {}
    for entry in ctx.entries:
        if refused is not None:
            observed[entry.name] = refused
            continue
        try:
            observed[entry.name] = vault.read(catalog.vault.kv_mount, entry.name)
        except ClientError as exc:
            observed[entry.name] = exc
    rows = [assess(catalog, e, observed[e.name], known) for e in ctx.entries]
    text = render_json(catalog, rows) if ctx.options.format == "json" else render_markdown(catalog, rows)
    return CommandOutput(text, exit_code(rows))
