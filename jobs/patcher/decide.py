"""client-patcher's pure decisions: whether a client secret may be used, rotation, the Vault plan, the
force-sync target and consumer patches, the metadata written and the entry's final reason. No I/O;
table-tested in tests/unit/test_client_patcher_plan.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple

from jobs.core import metadata as md
from jobs.core.catalog import Catalog, Origin, SecretEntry
from jobs.core.eso import why_force_sync_ignored
from jobs.core.model import Action, ConsumerResult, EntryResult
from jobs.core.observed import CLIENT_SECRET_AUTH, ExternalSecretState, KeycloakClientInfo, KvRead
from jobs.core.plan import KvPlan, plan_sync

ORIGIN: Final = Origin.SERVICE_GENERATED.value


def select(catalog: Catalog) -> tuple[SecretEntry, ...]:
    return tuple(e for e in catalog.secrets if e.origin is Origin.SERVICE_GENERATED)


def usable_secret_problem(client: KeycloakClientInfo) -> str | None:
    """Why a client has no secret client-patcher may use, or None. Decided before reading: Keycloak
    returns stale secrets of public and bearer-only clients (docs/design.md#traps, trap 3)."""
    if client.public:
        return f"client {client.label} is a public client: it has no client secret"
    if client.bearer_only:
        return f"client {client.label} is bearer-only: it has no usable client secret"
    if client.authenticator != CLIENT_SECRET_AUTH:
        return (
            f"client {client.label} uses {client.authenticator!r} authentication, not "
            f"{CLIENT_SECRET_AUTH!r}: its stored secret is not what it authenticates with"
        )
    return None


@dataclass(frozen=True)
class RotationDecision:
    rotate: bool
    record_run_id: str | None  # the rotation-run-id to record with the next write (None: none)
    reason: str


def decide_rotation(wanted_run_id: str | None, recorded_run_id: str | None, forced: bool) -> RotationDecision:
    """Rotate once per new runId (docs/design.md#client-patcher), or when forced with --rotate NAME."""
    record = wanted_run_id if wanted_run_id is not None else recorded_run_id
    if forced:
        return RotationDecision(True, record, "forced with --rotate")
    if wanted_run_id is None:
        return RotationDecision(False, record, "no rotation requested")
    if recorded_run_id == wanted_run_id:
        return RotationDecision(False, record, f"runId {wanted_run_id!r} already rotated")
    previous = f"recorded runId {recorded_run_id!r}" if recorded_run_id else "no recorded runId"
    return RotationDecision(True, record, f"new runId {wanted_run_id!r} ({previous})")


def metadata_for(entry: SecretEntry, record_run_id: str | None) -> dict[str, str]:
    source = entry.keycloak
    return md.stamp(
        origin=ORIGIN,
        authority=md.AUTHORITY_KEYCLOAK,
        fixture="false",
        keycloak_realm=source.realm if source else None,
        keycloak_client_id=source.client_id if source else None,
        rotation_run_id=record_run_id,
    )


@dataclass(frozen=True)
class Seen:
    """Both sides of one entry: what Vault holds and the secret Keycloak holds."""

    current: KvRead
    secret: str


def decide_sync(field_name: str, ours: Mapping[str, str], source: str, seen: Seen) -> KvPlan:
    return plan_sync(seen.current, field_name, seen.secret, ours, source)


# -- consumers ------------------------------------------------------------------------------------------
def force_sync_value(vault_version: int) -> str:
    """Deterministic and secret-free: the Vault version that holds the new value ("v7")."""
    return f"v{vault_version}"


class ForceSyncTarget(NamedTuple):
    version: int | None  # the Vault version consumers must be told about; None: patch nothing
    catch_up: bool  # True: the value was unchanged, only a patch a previous run missed is made


def decide_force_sync_target(
    action: Action, vault_version: int | None, observed: Mapping[str, str] | None
) -> ForceSyncTarget:
    """A written value (or, in a dry run, a value that would be written) means: refresh to its version.
    An unchanged value that client-patcher itself wrote earlier (our metadata, authority keycloak) also
    names its version, so a consumer a previous run failed to patch is caught up; once the annotation
    matches, nothing is patched. Any other unchanged value patches nothing."""
    if vault_version is None:
        return ForceSyncTarget(None, False)
    if action is Action.WRITTEN:
        return ForceSyncTarget(vault_version, False)
    if (
        action is Action.UNCHANGED
        and observed is not None
        and md.is_ours(observed)
        and observed.get(md.AUTHORITY) == md.AUTHORITY_KEYCLOAK
    ):
        return ForceSyncTarget(vault_version, True)
    return ForceSyncTarget(None, False)


def consumer_warning(state: ExternalSecretState) -> str | None:
    """Why ESO will ignore force-sync on this ExternalSecret, if it will."""
    why = why_force_sync_ignored(state.refresh_policy, state.refresh_interval)
    if why is None:
        return None
    where = f"consumer {state.namespace}/{state.name}"
    if why.startswith("refreshPolicy"):
        return f"{where}: {why}, force-sync will be ignored (ESO never refreshes it)"
    return (
        f"{where}: {why}, force-sync will be ignored "
        "(use refreshPolicy OnChange or a non-zero refreshInterval)"
    )


@dataclass(frozen=True)
class ConsumerPlan:
    consumer: str  # namespace/name
    patch: bool
    value: str
    warning: str | None = None


def decide_refresh(state: ExternalSecretState, target_version: int) -> ConsumerPlan:
    """Patch only when the annotation is not already the target value (reruns patch nothing)."""
    value = force_sync_value(target_version)
    return ConsumerPlan(
        f"{state.namespace}/{state.name}", state.force_sync != value, value, consumer_warning(state)
    )


@dataclass(frozen=True)
class ConsumerOutcome:
    patched: tuple[str, ...] = ()
    current: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()  # namespace/name of each consumer in `failures`


# (catch-up, dry run) -> how the patched consumers are reported
_PATCHED: Final = {
    (False, False): "annotated",
    (False, True): "would annotate",
    (True, False): "caught up",
    (True, True): "would catch up",
}


def with_refresh(result: EntryResult, target: ForceSyncTarget, outcome: ConsumerOutcome) -> EntryResult:
    """The entry's result once its consumers were refreshed to the target version: a failed consumer
    fails the entry. Without a target nothing was refreshed and the result stands."""
    version = target.version
    if version is None:
        return result
    value = force_sync_value(version)
    parts = [result.reason]
    if outcome.patched:
        verb = _PATCHED[(target.catch_up, result.dry_run)]
        parts.append(f"{verb} force-sync={value} on {', '.join(outcome.patched)}")
    elif outcome.current and not target.catch_up:
        parts.append(f"consumers already at force-sync={value}")
    action = result.action
    if outcome.failures:
        parts.append("consumer refresh failed: " + "; ".join(outcome.failures))
        action = Action.FAILED
    consumers = consumer_results(value, outcome, dry_run=result.dry_run)
    return EntryResult(
        result.name, action, "; ".join(parts), version, outcome.warnings, result.dry_run, consumers
    )


def consumer_results(value: str, outcome: ConsumerOutcome, *, dry_run: bool) -> tuple[ConsumerResult, ...]:
    """The consumers as structured data for the summary, in the order they were refreshed."""
    found = [
        *((c, "would_patch" if dry_run else "patched") for c in outcome.patched),
        *((c, "current") for c in outcome.current),
        *((c, "failed") for c in outcome.failed),
    ]
    results = []
    for consumer, how in found:
        namespace, _, name = consumer.partition("/")
        results.append(ConsumerResult(namespace, name, value, how))
    return tuple(results)
