"""vault-bootstrap's I/O: observe everything first, then one converge per entry.

1. Vault login; list Azure Key Vault once (paged); warn about AKV secrets whose names map to
   cluster-managed entries (the value is never fetched).
2. One Vault read per entry that can be written (value, version and custom_metadata in one request),
   while the listing's pages arrive (the reads need nothing from it).
3. Fetch only the AKV values that are needed, concurrently: an entry is skipped when its recorded
   `akv-fingerprint` proves Vault still holds the AKV version it copied (`--verify` fetches everything).
4. Per entry, `jobs.core.apply.converge` decides (`jobs.bootstrap.decide`, pure) and applies with
   check-and-set; after a lost race it observes both sides again — Vault, and that entry's AKV value,
   since the winner may be a concurrent run that copied a newer AKV version (never written over with
   ours).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Final

from jobs.bootstrap.decide import (
    AkvObservation,
    AkvState,
    Policy,
    Seen,
    anti_patterns,
    decide_seen,
    needs_fetch,
    observe_akv,
    policy_of,
    with_fetched,
    with_refetched,
)
from jobs.bootstrap.proof import record_proof
from jobs.core import metadata as md
from jobs.core.apply import Converged, KvTarget, converge
from jobs.core.catalog import Origin, SecretEntry
from jobs.core.errors import ClientError, ConfigError, failure_reason
from jobs.core.flags import DEFAULT_CONCURRENCY
from jobs.core.model import DRY_RUN, Action, EntryResult, RunReport
from jobs.core.observed import AkvListing, AkvValue, KvRead
from jobs.core.pool import map_bounded
from jobs.core.preflight import plain_http_warnings, vault_or_fail_all
from jobs.core.runner import RunContext, process_entries
from jobs.core.session import open_vault
from jobs.core.settings import AzureSettings, VaultSettings, load_all_settings, load_settings

if TYPE_CHECKING:  # vendor SDKs load only when a client is built (instant --help)
    from jobs.core.clients.azure_kv import AzureKeyVaultClient
    from jobs.core.clients.vault import VaultClient

log = logging.getLogger(__name__)
JOB: Final = "vault-bootstrap"


@dataclass(frozen=True)
class Options:
    verify: bool = False  # fetch every AKV value, even when the fingerprint proves it unchanged
    concurrency: int = DEFAULT_CONCURRENCY  # parallel Vault entries and AKV value reads


Context = RunContext[Options]
Listing = AkvListing | ClientError | None


@dataclass(frozen=True)
class Observed:
    vault: Mapping[str, KvRead | ClientError]
    akv: Mapping[str, AkvObservation]
    warnings: tuple[str, ...] = ()


def load_run_settings(ctx: Context) -> tuple[VaultSettings, AzureSettings | None, tuple[str, ...]]:
    """Every setting the run needs, read at once so one run reports every missing one. Key Vault's are
    required when external entries are selected; otherwise missing ones only lose the anti-pattern
    check (a warning)."""
    if ctx.catalog.azure_key_vault is None:
        return load_settings(VaultSettings), None, ()
    if any(e.origin is Origin.EXTERNAL for e in ctx.entries):
        vault, azure = load_all_settings(VaultSettings, AzureSettings)
        return vault, azure, ()
    vault = load_settings(VaultSettings)
    try:
        return vault, load_settings(AzureSettings), ()
    except ConfigError as exc:
        return vault, None, (f"anti-pattern check skipped: {exc}",)


def open_akv(ctx: Context, settings: AzureSettings | None) -> AzureKeyVaultClient | None:
    """The Key Vault client, or None when this run needs none."""
    config = ctx.catalog.azure_key_vault
    if config is None or settings is None:
        return None
    from jobs.core.clients.azure_kv import AzureKeyVaultClient

    return AzureKeyVaultClient(config.url, settings, ctx.retry, concurrency=ctx.options.concurrency)


def list_akv(ctx: Context, akv: AzureKeyVaultClient | None) -> tuple[Listing, tuple[str, ...]]:
    if akv is None:
        return None, ()
    try:
        listing = akv.list_secrets()
    except ClientError as exc:
        log.error("cannot list Azure Key Vault", extra={"error": failure_reason(exc)})  # noqa: TRY400
        return exc, (f"anti-pattern check not done: {failure_reason(exc)}",)
    found = anti_patterns(ctx.catalog, listing)
    for warning in found:
        log.warning("anti-pattern in Azure Key Vault", extra={"warning": warning})
    return listing, tuple(found)


def _classify(ctx: Context, listing: Listing) -> dict[str, AkvObservation]:
    """Each external entry's AKV name, classified from the listing alone."""
    catalog = ctx.catalog
    now = (
        float(listing.server_time) if isinstance(listing, AkvListing) and listing.server_time else time.time()
    )
    cluster_managed = {
        catalog.akv_name(e).lower(): e.name for e in catalog.secrets if e.origin.cluster_managed
    }
    found = {}
    for entry in ctx.entries:
        if entry.origin is not Origin.EXTERNAL:
            continue
        akv_name = catalog.akv_name(entry)
        if isinstance(listing, AkvListing):
            found[entry.name] = observe_akv(akv_name, listing, now, cluster_managed)
        else:
            reason = str(listing) if listing is not None else "no Azure Key Vault client"
            found[entry.name] = AkvObservation(akv_name, AkvState.UNKNOWN, reason)
    return found


def _read_vault(ctx: Context, vault: VaultClient, policy: Policy) -> dict[str, KvRead | ClientError]:
    """One Vault read per entry that can be written, `--concurrency` at a time (until SIGTERM or the
    deadline: an entry not read here is read when it is handled, if it still starts)."""
    writable = [
        entry
        for entry in ctx.entries
        if entry.origin is Origin.EXTERNAL or (entry.fixture is not None and policy.fixtures_active)
    ]

    def read(entry: SecretEntry) -> KvRead | ClientError | None:
        if ctx.stop_reason() is not None:
            return None
        try:
            return vault.read(ctx.catalog.vault.kv_mount, entry.name)
        except ClientError as exc:
            return exc

    found = map_bounded(writable, read, ctx.options.concurrency)
    return {entry.name: got for entry, got in zip(writable, found, strict=True) if got is not None}


def observe(
    ctx: Context,
    akv: AzureKeyVaultClient | None,
    listing: Listing,
    policy: Policy,
    reads: Mapping[str, KvRead | ClientError],
) -> Observed:
    akv_seen = _classify(ctx, listing)
    failed_reads = [exc for exc in reads.values() if isinstance(exc, ClientError)]
    # Each entry reports its own failure; this line survives even when the deadline then stops the
    # entries from being processed, so the cause is never lost.
    warnings: tuple[str, ...] = ()
    if failed_reads:
        first = failure_reason(failed_reads[0])
        warnings = (f"Vault could not be read for {len(failed_reads)} entries; first: {first}",)
    wanted = {
        name: obs.akv_name
        for name, obs in akv_seen.items()
        if isinstance(current := reads.get(name), KvRead)
        and needs_fetch(obs, current, policy.field, verify=ctx.options.verify)
    }
    if akv is not None and wanted:
        fetched = akv.fetch_values(wanted.values())
        for name, akv_name in wanted.items():
            akv_seen[name] = with_fetched(akv_seen[name], fetched.get(akv_name.lower()))
    log.info(
        "observed",
        extra={"entries": len(ctx.entries), "vault_reads": len(reads), "akv_values_fetched": len(wanted)},
    )
    return Observed(reads, akv_seen, warnings)


def heal_fixture_marker(vault: VaultClient, mount: str, entry: SecretEntry, seeded_version: int) -> str:
    """Data is written before metadata, so a writer landing between our fixture write and our metadata
    write would have its real value stamped `fixture: true`. Check once; correct the marker if so."""
    now = vault.read(mount, entry.name)
    if now.version == seeded_version or not md.is_fixture_marked(now.custom_metadata):
        return ""
    ours = md.stamp(origin=entry.origin.value, authority=entry.origin.authority, fixture="false")
    vault.write_metadata(mount, entry.name, md.merged(now.custom_metadata, ours))
    return f"; a concurrent writer replaced it at once (v{now.version}), fixture marker removed"


def refetch(akv: AzureKeyVaultClient | None, obs: AkvObservation | None) -> AkvObservation | None:
    """GET the latest AKV version again, for a re-plan. Only a value that was read from AKV is read
    again: no other observation leads to writing an AKV value."""
    if akv is None or obs is None or obs.state is not AkvState.PRESENT or obs.value is None:
        return obs
    try:
        outcome: AkvValue | ClientError = akv.get_value(obs.akv_name)
    except ClientError as exc:
        outcome = exc
    return with_refetched(obs, outcome, time.time())


@dataclass(frozen=True)
class Bootstrap:
    """One run's clients and observations; `handle` converges one entry."""

    vault: VaultClient
    akv: AzureKeyVaultClient | None
    policy: Policy
    observed: Observed
    target: KvTarget
    interrupt: threading.Event

    def seen(self, entry: SecretEntry) -> Seen:
        current = self.observed.vault.get(entry.name)
        if isinstance(current, ClientError):
            raise current
        if current is None and (entry.origin is Origin.EXTERNAL or self.policy.fixtures_active):
            current = self.vault.read(self.target.mount, entry.name)  # not observed before an interruption
        return Seen(current, self.observed.akv.get(entry.name))

    def observe_again(self, entry: SecretEntry, seen: Seen) -> Seen:
        """After a lost CAS race: Vault again, and the AKV value again (the winner may be a concurrent
        run that copied a newer AKV version)."""
        return Seen(self.vault.read(self.target.mount, entry.name), refetch(self.akv, seen.akv))

    def handle(self, entry: SecretEntry) -> EntryResult:
        done = converge(
            self.seen(entry),
            partial(self.observe_again, entry),
            partial(decide_seen, entry, self.policy),
            self.target,
        )
        result = self.healed(entry, done)
        if not self.target.dry_run and not result.failed:
            mount, interrupt = self.target.mount, self.interrupt
            note = record_proof(self.vault, self.akv, mount, done.plan, done.seen.akv, interrupt=interrupt)
            result = replace(result, reason=result.reason + note) if note else result
        if self.target.dry_run and done.plan.writes:
            extra: dict[str, object] = {
                "entry": entry.name,
                "action": done.plan.action.value,
                "reason": done.plan.reason,
            }
            log.info("%s entry would be written", DRY_RUN, extra=extra)
        elif result.action in (Action.WRITTEN, Action.SEEDED_FIXTURE):
            extra = {
                "entry": entry.name,
                "action": result.action.value,
                "vault_version": result.vault_version,
            }
            log.info("entry written", extra=extra)
        return result

    def healed(self, entry: SecretEntry, done: Converged[Seen]) -> EntryResult:
        result, seeded = done.applied.result, done.applied.new_version
        if result.action is not Action.SEEDED_FIXTURE or seeded is None:
            return result
        note = heal_fixture_marker(self.vault, self.target.mount, entry, seeded)
        return replace(result, reason=result.reason + note) if note else result


def bootstrap(ctx: Context, vault: VaultClient, akv: AzureKeyVaultClient | None) -> RunReport:
    """The run, with the clients `execute` built (and closes)."""
    refused = vault_or_fail_all(ctx, ctx.entries, vault)
    if refused is not None:
        return refused
    # The Key Vault listing (serial pages) and the Vault reads (which need nothing from it) overlap.
    with ThreadPoolExecutor(max_workers=1) as lister:
        listed = lister.submit(list_akv, ctx, akv)
        reads = _read_vault(ctx, vault, policy_of(ctx.catalog))
        listing, listed_warnings = listed.result()
    policy = policy_of(ctx.catalog, listing.server_time if isinstance(listing, AkvListing) else None)
    observed = observe(ctx, akv, listing, policy, reads)
    target = KvTarget(vault, ctx.catalog.vault.kv_mount, ctx.dry_run)
    run = Bootstrap(vault, akv, policy, observed, target, ctx.interrupt)
    return process_entries(
        ctx,
        ctx.entries,
        run.handle,
        warnings=listed_warnings + observed.warnings,
        concurrency=ctx.options.concurrency,
    )


def execute(ctx: Context) -> RunReport:
    vault_settings, azure_settings, warnings = load_run_settings(ctx)
    warnings += plain_http_warnings(Vault=vault_settings.addr)
    vault = open_vault(ctx.retry, vault_settings, connections=ctx.options.concurrency)
    akv = open_akv(ctx, azure_settings)
    try:
        report = bootstrap(ctx, vault, akv)
    finally:
        if akv is not None:
            akv.close()
    return replace(report, warnings=warnings + report.warnings)
