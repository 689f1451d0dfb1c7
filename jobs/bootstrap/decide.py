"""vault-bootstrap's pure decisions: what to do with one entry, from what was observed. No I/O;
table-tested in tests/unit/test_vault_bootstrap_decide.py.

Why a fingerprint and not the AKV version id: a Key Vault list item carries the current version's
attributes but no version id (docs/design.md#azure-key-vault), so the current version is recognised by
its `created` time. Two versions created within the same second would share it, so the fingerprint is
only recorded when the vault's own clock (the list response's `Date`) is already past that second —
then any later version must have a later `created`. The fingerprint also names the Vault version it
describes, so a value changed in Vault behind our back (a new Vault version) is fetched and compared
again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from jobs.core import metadata as md
from jobs.core.catalog import Catalog, Origin, SecretEntry
from jobs.core.errors import ClientError, NotFound
from jobs.core.model import Action
from jobs.core.observed import AkvListing, AkvSecretInfo, AkvValue, KvRead
from jobs.core.plan import KvPlan, plan_fixture, plan_sync

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


def provable(value: AkvValue, listed_at: int | None = None) -> bool:
    """Whether a response's `Date` (the listing's or the GET's that returned this version) shows the
    vault's clock already past the second the version was created: then any later version has a later
    `created`, and the fingerprint may be recorded."""
    times = [t for t in (listed_at, value.server_time) if t is not None]
    return value.created is not None and bool(times) and max(times) >= value.created + 1


def _akv_stamp(obs: AkvObservation, value: AkvValue, vault_version: int, policy: Policy) -> dict[str, str]:
    return md.stamp(
        origin=Origin.EXTERNAL.value,
        authority=md.AUTHORITY_AKV,
        fixture="false",
        akv_version=value.version or None,
        akv_fingerprint=fingerprint(obs.akv_name, value.created, vault_version)
        if provable(value, policy.server_time) and value.created is not None
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


@dataclass(frozen=True)
class Seen:
    """Both sides of one entry: what Vault holds (None when no read was needed) and what Key Vault
    holds (None for cluster-managed entries, which are never read from it)."""

    current: KvRead | None
    akv: AkvObservation | None


def decide_seen(entry: SecretEntry, policy: Policy, seen: Seen) -> KvPlan:
    return decide(entry, seen.current, seen.akv, policy)


def anti_patterns(catalog: Catalog, listing: AkvListing) -> list[str]:
    """AKV secrets whose names map to cluster-managed entries (docs/design.md#vault-bootstrap)."""
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


def select(catalog: Catalog) -> tuple[SecretEntry, ...]:
    """External entries, and entries of any origin that declare a fixture."""
    return tuple(e for e in catalog.secrets if e.origin is Origin.EXTERNAL or e.fixture is not None)
