"""vault-bootstrap: Azure Key Vault -> Vault KV v2 through Workload Identity, plus dev fixtures (SPEC §4).

Phases (all reads first, then one decide + apply per entry):
1. Vault login; list Azure Key Vault once (paged); report AKV secrets whose names map to cluster-managed
   entries (anti-pattern warning, value never fetched).
2. One Vault read per entry that can be written (value, version and custom_metadata in one request).
3. Fetch only the AKV values that are needed, concurrently: an entry is skipped when its recorded
   `akv-fingerprint` proves Vault still holds the AKV version it copied (`--verify` fetches everything).
4. `decide` (pure, table-tested) returns a plan per entry; `converge` applies it with check-and-set and
   re-plans when another writer wins the race — after GETting that entry's AKV value again, since the
   winner may be a concurrent run that copied a newer AKV version (never written over with ours).

Why a fingerprint and not the AKV version id: a Key Vault list item carries the current version's
attributes but no version id (CONTRACTS §2.3), so the current version is recognised by its `created`
time. Two versions created within the same second would share it, so the fingerprint is only recorded
when the vault's own clock (the list response's `Date`) is already past that second — then any later
version must have a later `created`. The fingerprint also names the Vault version it describes, so a
value changed in Vault behind our back (a new Vault version) is fetched and compared again.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from jobs.core import metadata as md
from jobs.core.catalog import Catalog, Origin, SecretEntry
from jobs.core.clients.azure_kv import (
    DEFAULT_CONCURRENCY,
    MAX_CONCURRENCY,
    AkvListing,
    AkvSecretInfo,
    AkvValue,
    AzureKeyVaultClient,
)
from jobs.core.clients.vault import KvRead, VaultClient
from jobs.core.errors import ClientError, ConfigError, NotFound
from jobs.core.model import DRY_RUN, Action, EntryResult, RunReport
from jobs.core.plan import KvPlan, apply_plan, converge, plan_fixture, plan_sync
from jobs.core.runner import (
    RunContext,
    add_common_arguments,
    fail_all,
    failure_reason,
    process_entries,
    run_main,
)
from jobs.core.settings import AzureSettings, VaultSettings, load_settings

log = logging.getLogger(__name__)
JOB: Final = "vault-bootstrap"
SOURCE: Final = "Azure Key Vault"
FIXTURE_STAMP: Final = md.stamp(origin="fixture", authority=md.AUTHORITY_FIXTURE, fixture="true")


# -- observations (what was seen) -------------------------------------------------------------------------
class AkvState(StrEnum):
    PRESENT = "present"  # listed, enabled, valid now
    MISSING = "missing"  # not listed, disabled, expired, not yet valid, certificate-backed
    UNKNOWN = "unknown"  # could not be observed: a failure, never "absent"
    REFUSED = "refused"  # the AKV name also maps to a cluster-managed entry: never read


@dataclass(frozen=True)
class AkvObservation:
    akv_name: str
    state: AkvState
    reason: str = ""  # why missing / unknown / refused
    info: AkvSecretInfo | None = None
    value: AkvValue | None = None  # set only when the value was fetched


@dataclass(frozen=True)
class Policy:
    field: str
    fixtures_active: bool
    fixtures_off_reason: str  # why fixtures are not written ("" when active)
    server_time: int | None = None  # the vault's clock at listing time (Unix seconds)


def policy_of(catalog: Catalog, server_time: int | None = None) -> Policy:
    if catalog.fixtures_active:
        off = ""
    elif catalog.is_production:
        off = "environment is production: fixtures are never written"
    else:
        off = "fixtures are disabled"
    return Policy(catalog.vault.field, catalog.fixtures_active, off, server_time)


# -- pure decisions -------------------------------------------------------------------------------------
def fingerprint(akv_name: str, created: int, vault_version: int) -> str:
    return f"{akv_name.lower()}/{created}/v{vault_version}"


def provably_unchanged(current: KvRead, field_name: str, obs: AkvObservation) -> bool:
    """Vault still holds exactly the AKV version we copied last time, so the value need not be fetched."""
    info = obs.info
    if info is None or info.created is None or not current.exists or current.deleted:
        return False
    meta = current.custom_metadata
    return (
        current.value(field_name) is not None
        and md.is_ours(meta)
        and meta.get(md.AUTHORITY) == md.AUTHORITY_AKV
        and not md.is_fixture_marked(meta)
        and meta.get(md.AKV_FINGERPRINT) == fingerprint(obs.akv_name, info.created, current.version)
    )


def observe_akv(
    akv_name: str, listing: AkvListing, now: float, cluster_managed_names: Mapping[str, str]
) -> AkvObservation:
    """Classify one AKV name from the listing alone (no value)."""
    owner = cluster_managed_names.get(akv_name.lower())
    if owner is not None:
        return AkvObservation(
            akv_name,
            AkvState.REFUSED,
            f"AKV secret {akv_name} also maps to cluster-managed entry {owner!r}; it is never read",
        )
    info = listing.get(akv_name)
    if info is None:
        return AkvObservation(akv_name, AkvState.MISSING, "not found")
    unusable = info.unusable_reason(now)
    if unusable:
        return AkvObservation(akv_name, AkvState.MISSING, unusable, info)
    return AkvObservation(akv_name, AkvState.PRESENT, info=info)


def needs_fetch(obs: AkvObservation, current: KvRead, field_name: str, *, verify: bool) -> bool:
    return obs.state is AkvState.PRESENT and (verify or not provably_unchanged(current, field_name, obs))


def with_fetched(obs: AkvObservation, outcome: AkvValue | ClientError | None) -> AkvObservation:
    """Fold a fetch result into the observation: a secret deleted or disabled since the listing is
    missing; any other error leaves it unobservable."""
    if outcome is None:
        return obs
    if isinstance(outcome, NotFound):
        return dataclasses.replace(obs, state=AkvState.MISSING, reason=f"gone since listing ({outcome})")
    if isinstance(outcome, ClientError):
        return dataclasses.replace(obs, state=AkvState.UNKNOWN, reason=str(outcome))
    return dataclasses.replace(obs, value=outcome)


def with_refetched(obs: AkvObservation, outcome: AkvValue | ClientError, now: float) -> AkvObservation:
    """Fold a second GET of the latest version (after a lost CAS race) into the observation. That version
    may be newer than the listed one, so its own attributes decide whether it may be used; the value
    read before is dropped either way."""
    obs = dataclasses.replace(obs, value=None)
    if isinstance(outcome, AkvValue) and outcome.info is not None:
        unusable = outcome.info.unusable_reason(now)
        if unusable:
            reason = f"{unusable} (its latest version, read again after a lost check-and-set race)"
            return dataclasses.replace(obs, state=AkvState.MISSING, reason=reason, info=outcome.info)
        obs = dataclasses.replace(obs, info=outcome.info)
    return with_fetched(obs, outcome)


def _no_write(name: str, action: Action, reason: str, current: KvRead | None = None) -> KvPlan:
    return KvPlan(name, action, reason, current_version=current.version if current else 0)


def _prefixed(plan: KvPlan, prefix: str) -> KvPlan:
    return dataclasses.replace(plan, reason=f"{prefix}; {plan.reason}")


def decide_fixture(entry: SecretEntry, current: KvRead | None, policy: Policy) -> KvPlan:
    """A placeholder for an absent key, only when fixtures are active and one is declared."""
    if entry.fixture is None:
        return _no_write(entry.name, Action.SKIPPED, "no fixture declared", current)
    if not policy.fixtures_active or current is None:
        return _no_write(
            entry.name, Action.SKIPPED, policy.fixtures_off_reason or "fixtures inactive", current
        )
    return plan_fixture(current, policy.field, entry.fixture, FIXTURE_STAMP)


def _akv_stamp(obs: AkvObservation, value: AkvValue, vault_version: int, policy: Policy) -> dict[str, str]:
    provable = (
        value.created is not None
        and policy.server_time is not None
        and policy.server_time >= value.created + 1
    )
    return md.stamp(
        origin=Origin.EXTERNAL.value,
        authority=md.AUTHORITY_AKV,
        fixture="false",
        akv_version=value.version or None,
        akv_fingerprint=fingerprint(obs.akv_name, value.created, vault_version)
        if provable and value.created is not None
        else None,
    )


def decide(entry: SecretEntry, current: KvRead | None, obs: AkvObservation | None, policy: Policy) -> KvPlan:
    """What to do with one entry, from what was observed. No I/O.

    `current` is None only when the entry needed no Vault read (a fixture that will not be written);
    `obs` is None for cluster-managed entries, which are never read from AKV."""
    if entry.origin.cluster_managed:
        return decide_fixture(entry, current, policy)
    if current is None or obs is None:
        return _no_write(entry.name, Action.FAILED, f"not observed (Vault read: {current is not None})")
    if obs.state is AkvState.UNKNOWN:
        return _no_write(entry.name, Action.FAILED, f"could not read {SOURCE}: {obs.reason}", current)
    if obs.state is AkvState.REFUSED:
        return _no_write(entry.name, Action.FAILED, obs.reason, current)
    if obs.state is AkvState.MISSING:
        missing = f"{obs.akv_name} is {obs.reason} in {SOURCE}"
        if entry.required:
            return _no_write(
                entry.name, Action.FAILED, f"required, but {missing} (a required secret never gets a fixture)"
            )
        if entry.fixture is not None and policy.fixtures_active:
            return _prefixed(decide_fixture(entry, current, policy), missing)
        if current.exists and not current.deleted:
            return _no_write(entry.name, Action.SKIPPED, f"{missing}; the value in Vault is kept", current)
        why = "no fixture declared" if entry.fixture is None else policy.fixtures_off_reason
        return _no_write(entry.name, Action.SKIPPED, f"{missing}; {why}", current)
    if obs.value is None:
        if provably_unchanged(current, policy.field, obs):
            return _no_write(
                entry.name, Action.UNCHANGED, f"{SOURCE} version unchanged since the last sync", current
            )
        return _no_write(entry.name, Action.FAILED, f"the {SOURCE} value was not fetched", current)
    value = obs.value
    equal = current.exists and not current.deleted and current.value(policy.field) == value.value
    ours = _akv_stamp(obs, value, current.version if equal else current.version + 1, policy)
    return plan_sync(current, policy.field, value.value, ours, SOURCE)


def anti_patterns(catalog: Catalog, listing: AkvListing) -> list[str]:
    """AKV secrets whose names map to cluster-managed entries (SPEC §4 vault-bootstrap 4)."""
    found = []
    for entry in catalog.secrets:
        if not entry.origin.cluster_managed:
            continue
        info = listing.get(catalog.akv_name(entry))
        if info is not None:
            found.append(
                f"anti-pattern: {SOURCE} holds secret {info.name!r}, which maps to cluster-managed entry "
                f"{entry.name!r} ({entry.origin.value}, authority {entry.origin.authority}); it is never "
                "read — remove it from Azure Key Vault"
            )
    return found


# -- the job --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=JOB, description=__doc__.split("\n", 1)[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--verify",
        action="store_true",
        help="fetch every AKV value and compare it in full, even when the recorded fingerprint proves "
        "Vault already holds it",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        choices=range(1, MAX_CONCURRENCY + 1),
        default=DEFAULT_CONCURRENCY,
        metavar=f"1..{MAX_CONCURRENCY}",
        help=f"parallel AKV value reads (default {DEFAULT_CONCURRENCY})",
    )
    return parser


def select(catalog: Catalog) -> tuple[SecretEntry, ...]:
    """External entries, and entries of any origin that declare a fixture."""
    return tuple(e for e in catalog.secrets if e.origin is Origin.EXTERNAL or e.fixture is not None)


@dataclass
class _Observed:
    vault: dict[str, KvRead | ClientError]
    akv: dict[str, AkvObservation]


def _open_akv(ctx: RunContext) -> AzureKeyVaultClient | None:
    """The Key Vault client, or None when this run needs none. Missing settings are a bad invocation
    when external entries are selected; otherwise only the anti-pattern check is lost (a warning)."""
    config = ctx.catalog.azure_key_vault
    if config is None:
        return None
    external = any(e.origin is Origin.EXTERNAL for e in ctx.entries)
    try:
        settings = load_settings(AzureSettings)
        return AzureKeyVaultClient(config.url, settings, ctx.retry, concurrency=ctx.args.concurrency)
    except ConfigError as exc:
        if external:
            raise
        ctx.warnings.append(f"anti-pattern check skipped: {exc}")
        return None


def _list_akv(ctx: RunContext, akv: AzureKeyVaultClient | None) -> AkvListing | ClientError | None:
    if akv is None:
        return None
    try:
        listing = akv.list_secrets()
    except ClientError as exc:
        log.error("cannot list Azure Key Vault", extra={"error": failure_reason(exc)})  # noqa: TRY400
        ctx.warnings.append(f"anti-pattern check not done: {failure_reason(exc)}")
        return exc
    for warning in anti_patterns(ctx.catalog, listing):
        log.warning(warning)
        ctx.warnings.append(warning)
    return listing


def _observe(
    ctx: RunContext,
    vault: VaultClient,
    akv: AzureKeyVaultClient | None,
    listing: AkvListing | ClientError | None,
    policy: Policy,
) -> _Observed:
    catalog = ctx.catalog
    now = (
        float(listing.server_time) if isinstance(listing, AkvListing) and listing.server_time else time.time()
    )
    cluster_managed = {
        catalog.akv_name(e).lower(): e.name for e in catalog.secrets if e.origin.cluster_managed
    }
    observed = _Observed({}, {})
    for entry in ctx.entries:
        if ctx.interrupt.is_set() or ctx.deadline.expired():
            break
        if entry.origin is Origin.EXTERNAL:
            akv_name = catalog.akv_name(entry)
            if isinstance(listing, AkvListing):
                observed.akv[entry.name] = observe_akv(akv_name, listing, now, cluster_managed)
            else:
                reason = str(listing) if listing is not None else "no Azure Key Vault client"
                observed.akv[entry.name] = AkvObservation(akv_name, AkvState.UNKNOWN, reason)
        elif not (entry.fixture is not None and policy.fixtures_active):
            continue  # nothing can be written: no Vault read
        try:
            observed.vault[entry.name] = vault.read(catalog.vault.kv_mount, entry.name)
        except ClientError as exc:
            observed.vault[entry.name] = exc
    failed_reads = [exc for exc in observed.vault.values() if isinstance(exc, ClientError)]
    if failed_reads:
        # Each entry reports its own failure; this line survives even when the deadline then stops
        # the entries from being processed, so the cause is never lost.
        first = failure_reason(failed_reads[0])
        ctx.warnings.append(f"Vault could not be read for {len(failed_reads)} entries; first: {first}")
    wanted = {
        name: obs.akv_name
        for name, obs in observed.akv.items()
        if isinstance(current := observed.vault.get(name), KvRead)
        and needs_fetch(obs, current, policy.field, verify=bool(ctx.args.verify))
    }
    if akv is not None and wanted:
        fetched = akv.fetch_values(wanted.values())
        for name, akv_name in wanted.items():
            observed.akv[name] = with_fetched(observed.akv[name], fetched.get(akv_name.lower()))
    log.info(
        "observed",
        extra={
            "entries": len(ctx.entries),
            "vault_reads": len(observed.vault),
            "akv_values_fetched": len(wanted),
        },
    )
    return observed


def _heal_fixture_marker(vault: VaultClient, mount: str, entry: SecretEntry, seeded_version: int) -> str:
    """Data is written before metadata, so a writer landing between our fixture write and our metadata
    write would have its real value stamped `fixture: true`. Check once; correct the marker if so."""
    now = vault.read(mount, entry.name)
    if now.version == seeded_version or not md.is_fixture_marked(now.custom_metadata):
        return ""
    ours = md.stamp(origin=entry.origin.value, authority=entry.origin.authority, fixture="false")
    vault.write_metadata(mount, entry.name, md.merged(now.custom_metadata, ours))
    return f"; a concurrent writer replaced it at once (v{now.version}), fixture marker removed"


def _refetch(akv: AzureKeyVaultClient | None, obs: AkvObservation | None) -> AkvObservation | None:
    """GET the latest AKV version again, for a re-plan. Only a value that was read from AKV is read
    again: no other observation leads to writing an AKV value."""
    if akv is None or obs is None or obs.state is not AkvState.PRESENT or obs.value is None:
        return obs
    try:
        outcome: AkvValue | ClientError = akv.get_value(obs.akv_name)
    except ClientError as exc:
        outcome = exc
    return with_refetched(obs, outcome, time.time())


def bootstrap(ctx: RunContext, vault: VaultClient, akv: AzureKeyVaultClient | None) -> RunReport:
    """The run, with the clients `execute` built (and closes)."""
    try:
        vault.login()
    except ClientError as exc:
        return fail_all(ctx, ctx.entries, exc)
    listing = _list_akv(ctx, akv)
    server_time = listing.server_time if isinstance(listing, AkvListing) else None
    policy = policy_of(ctx.catalog, server_time)
    observed = _observe(ctx, vault, akv, listing, policy)
    mount = ctx.catalog.vault.kv_mount

    def handle(entry: SecretEntry) -> EntryResult:
        obs = observed.akv.get(entry.name)
        current = observed.vault.get(entry.name)
        if isinstance(current, ClientError):
            raise current
        if current is None and (entry.origin is Origin.EXTERNAL or policy.fixtures_active):
            current = vault.read(mount, entry.name)  # not observed before an interruption
        first = decide(entry, current, obs, policy)
        if current is None or not first.writes:
            result = apply_plan(vault, mount, first, dry_run=ctx.dry_run).result
        else:
            plans = 0

            def decide_now(kv: KvRead) -> KvPlan:
                nonlocal obs, plans
                if plans:
                    # Another writer won the CAS race, perhaps a concurrent run that copied a newer AKV
                    # version: re-read the authority instead of writing our older value over it.
                    obs = _refetch(akv, obs)
                plans += 1
                return decide(entry, kv, obs, policy)

            applied = converge(vault, mount, entry.name, decide_now, dry_run=ctx.dry_run, first=current)
            result = applied.result
            if result.action is Action.SEEDED_FIXTURE and applied.new_version is not None:
                note = _heal_fixture_marker(vault, mount, entry, applied.new_version)
                result = dataclasses.replace(result, reason=result.reason + note) if note else result
        if ctx.dry_run and first.writes:
            log.info("%s %s would be %s: %s", DRY_RUN, entry.name, first.action.value, first.reason)
        elif result.action in (Action.WRITTEN, Action.SEEDED_FIXTURE):
            log.info(
                "%s %s",
                entry.name,
                result.action.value,
                extra={"entry": entry.name, "vault_version": result.vault_version},
            )
        return result

    return process_entries(ctx, ctx.entries, handle)


def execute(ctx: RunContext) -> RunReport:
    vault = VaultClient(load_settings(VaultSettings), ctx.retry)
    akv = _open_akv(ctx)
    try:
        return bootstrap(ctx, vault, akv)
    finally:
        if akv is not None:
            akv.close()


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(JOB, build_parser(), argv, execute, select)


if __name__ == "__main__":
    sys.exit(main())
