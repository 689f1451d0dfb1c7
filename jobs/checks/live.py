"""The live checks' I/O: `secret-origin smoke` and `secret-origin audit` read Vault (and, for
`smoke --consumers`, the consumers' ExternalSecrets and Secrets); every verdict comes from the pure
rules in `jobs.checks.smoke` and `jobs.checks.audit`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from jobs.checks.audit import AuditOptions, assess, exit_code, render_json, render_markdown
from jobs.checks.expected import Known
from jobs.checks.login import FAIL as LOGIN_FAIL
from jobs.checks.login import consumer_login, login_cell, vault_login
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
    window_note,
)
from jobs.core.catalog import Catalog, SecretEntry
from jobs.core.errors import ClientError
from jobs.core.model import Action, CommandOutput, EntryResult, RunReport
from jobs.core.observed import KvRead, LoginVerdict
from jobs.core.preflight import check_vault, vault_or_fail_all
from jobs.core.runner import RunContext, process_entries
from jobs.core.session import open_vault
from jobs.core.settings import KubeSettings, VaultSettings, load_all_settings

if TYPE_CHECKING:  # vendor SDKs load only when a client is built (instant --help)
    from jobs.core.clients.keycloak_login import SecretLogin
    from jobs.core.clients.kube import KubeClient
    from jobs.core.clients.vault import VaultClient

LoginContext = RunContext[SmokeOptions] | RunContext[AuditOptions]


@dataclass(frozen=True)
class Smoke:
    catalog: Catalog
    vault: VaultClient
    kube: KubeClient | None
    known: Known
    login: SecretLogin | None = None  # smoke --login
    login_skip: str | None = None  # why --login cannot log in at all (no Keycloak URL)

    def consumer_problems(
        self, kube: KubeClient, entry: SecretEntry, current: KvRead, held: list[tuple[str, str, bytes]]
    ) -> list[str]:
        """Each consumer's synced Secret against the value in Vault (digests only); each synced value
        read is added to `held` as (consumer, target Secret, value) for --login."""
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
            held.extend((str(consumer), target, synced[k]) for k in keys if synced and k in synced)
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
        held: list[tuple[str, str, bytes]] = []
        if self.kube is not None and entry.consumers:
            problems.extend(self.consumer_problems(self.kube, entry, current, held))
        notes: list[str] = []
        if (self.login is not None or self.login_skip) and entry.keycloak is not None and skip is None:
            notes = self.login_checks(entry, current, held, problems)
        window = window_note(current, time.time())
        if window is not None:
            (problems if problems else notes).append(window)
        return vault_outcome(entry, current, self.kube is not None, problems, skip, notes=notes)

    def login_checks(
        self, entry: SecretEntry, current: KvRead, held: list[tuple[str, str, bytes]], problems: list[str]
    ) -> list[str]:
        """Log in as the entry's client with the value in Vault and each consumer's (each distinct
        value once); offences go to `problems`, the Vault login's ok/skip note is returned."""
        value = current.value(self.catalog.vault.field) if current.exists and not current.deleted else None
        if self.login is None or entry.keycloak is None or value is None:
            return [f"login skipped: {self.login_skip}"] if self.login_skip else []
        source, login = entry.keycloak, self.login
        seen: dict[bytes, LoginVerdict] = {}

        def verdict(secret: bytes) -> LoginVerdict:
            key = digest(secret)
            if key not in seen:
                text = secret.decode("utf-8", errors="replace")
                seen[key] = login.check_client_secret(source.realm, source.client_id, text)
            return seen[key]

        status, reason = vault_login(verdict(value.encode()))
        if status == LOGIN_FAIL:
            problems.append(reason)
        for consumer, target, synced in held:
            offence = consumer_login(consumer, target, verdict(synced))
            if offence:
                problems.append(offence)
        return [] if status == LOGIN_FAIL else [reason]


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
    login, login_skip = secret_login(ctx)
    try:
        refused = vault_or_fail_all(ctx, ctx.entries, vault)
        if refused is not None:
            return refused
        checker = Smoke(ctx.catalog, vault, kube, known, login, login_skip)
        report = process_entries(ctx, entries, checker.check_entry)
    finally:
        if kube is not None:
            kube.close()
        if login is not None:
            login.close()
    order = {e.name: n for n, e in enumerate(ctx.entries)}
    results = sorted(report.results + tuple(skipped), key=lambda r: order.get(r.name, len(order)))
    return replace(report, results=tuple(results))


def secret_login(
    ctx: RunContext[SmokeOptions] | RunContext[AuditOptions],
) -> tuple[SecretLogin | None, str | None]:
    """The token-endpoint login of `--login` (no admin credential), or why there is none."""
    if not ctx.options.login:
        return None, None
    if ctx.catalog.keycloak is None:
        return None, "the catalog has no keycloak.url"
    cacert = os.environ.get("KEYCLOAK_CACERT") or None
    from jobs.core.clients.keycloak_login import SecretLogin

    return SecretLogin(ctx.catalog.keycloak.url, rate=ctx.options.login_rate, cacert=cacert), None


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
    if ctx.options.login:
        rows = [replace(r, login=cell) for r, cell in zip(rows, login_column(ctx, observed), strict=True)]
    text = render_json(catalog, rows) if ctx.options.format == "json" else render_markdown(catalog, rows)
    return CommandOutput(text, exit_code(rows))


def login_column(ctx: RunContext[AuditOptions], observed: dict[str, KvRead | ClientError]) -> list[str]:
    """`audit --login`: per entry, whether Keycloak accepts the service-generated secret in Vault."""
    login, why_not = secret_login(ctx)
    cells = []
    try:
        for entry in ctx.entries:
            current = observed[entry.name]
            value = None
            if isinstance(current, KvRead) and current.exists and not current.deleted:
                value = current.value(ctx.catalog.vault.field)
            if entry.keycloak is None:
                cells.append("-")
            elif login is None or value is None:
                cells.append(f"skip: {why_not or 'no value in Vault'}")
            else:
                verdict = login.check_client_secret(entry.keycloak.realm, entry.keycloak.client_id, value)
                cells.append(login_cell(verdict))
    finally:
        if login is not None:
            login.close()
    return cells
