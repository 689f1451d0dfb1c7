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
from jobs.core.observed import (
    ATTR_SECRET_EXPIRATION,
    CLIENT_SECRET_AUTH,
    ExternalSecretState,
    KeycloakClientInfo,
    KvRead,
)
from jobs.core.plan import KvPlan, plan_sync
from jobs.patcher.converge import at_value, retry_value

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


# The rotation record on the Keycloak client, which survives a Vault `metadata delete`
# (docs/design.md#client-patcher). Keycloak itself sets the creation time on every regenerate.
ATTR_RUN_ID: Final = "secret-origin.rotation-run-id"
ATTR_INTENT: Final = "secret-origin.rotation-intent"
ATTR_INTENT_SECRET_TIME: Final = "secret-origin.rotation-intent-secret-time"
KEYCLOAK_SECRET_TIME: Final = "client.secret.creation.time"
NO_SECRET_TIME: Final = "none"


@dataclass(frozen=True)
class RotationRecord:
    """What the client's attributes say: the runId rotated, the runId a run was about to rotate for
    and the secret's creation time at that moment, and the secret's creation time now; and whether a
    secret-rotation client policy applied at the client's last update (Keycloak then sets
    `client.secret.expiration.time`)."""

    run_id: str | None = None
    intent: str | None = None
    intent_secret_time: str | None = None
    secret_time: str | None = None
    rotation_policy_applied: bool = False

    @classmethod
    def of(cls, attributes: Mapping[str, str]) -> RotationRecord:
        return cls(
            attributes.get(ATTR_RUN_ID) or None,
            attributes.get(ATTR_INTENT) or None,
            attributes.get(ATTR_INTENT_SECRET_TIME) or None,
            attributes.get(KEYCLOAK_SECRET_TIME) or None,
            bool(attributes.get(ATTR_SECRET_EXPIRATION)),
        )

    def intent_attributes(self, run_id: str) -> dict[str, str]:
        """Recorded before the regenerate: the runId, and the creation time the regenerate will change."""
        return {ATTR_INTENT: run_id, ATTR_INTENT_SECRET_TIME: self.secret_time or NO_SECRET_TIME}

    def regenerated_for(self, run_id: str) -> bool:
        """An intent for `run_id` followed by a regenerate (the creation time moved since)."""
        return self.intent == run_id and (self.secret_time or NO_SECRET_TIME) != self.intent_secret_time


def wanted_run_id(entry: SecretEntry) -> str | None:
    """The runId the catalog asks this entry to be rotated for (None: no rotation asked)."""
    rotate = entry.keycloak.rotate if entry.keycloak else None
    return rotate.run_id if rotate else None


@dataclass(frozen=True)
class RotationDecision:
    rotate: bool
    record_run_id: str | None  # the rotation-run-id to record with the next write (None: none)
    reason: str
    record_in_keycloak: bool = False  # rotated earlier, but the Keycloak record is missing: add it


def decide_rotation(
    wanted_run_id: str | None, record: RotationRecord, vault_run_id: str | None, forced: bool
) -> RotationDecision:
    """Rotate once per new runId (docs/design.md#client-patcher), or when forced with --rotate NAME.
    A runId is done when the Keycloak record names it, when Vault's metadata names it (runs before
    the Keycloak record existed), or when an intent for it was followed by a regenerate (a run that
    stopped between the regenerate and its record)."""
    record_id = wanted_run_id if wanted_run_id is not None else (record.run_id or vault_run_id)
    if forced:
        return RotationDecision(True, record_id, "forced with --rotate")
    if wanted_run_id is None:
        return RotationDecision(False, record_id, "no rotation requested")
    if record.run_id == wanted_run_id:
        return RotationDecision(False, record_id, f"runId {wanted_run_id!r} already rotated")
    if vault_run_id == wanted_run_id:
        why = f"runId {wanted_run_id!r} already rotated (recorded in Vault)"
        return RotationDecision(False, record_id, why, record_in_keycloak=True)
    if record.regenerated_for(wanted_run_id):
        why = f"runId {wanted_run_id!r} already rotated by a run that stopped before recording it"
        return RotationDecision(False, record_id, why, record_in_keycloak=True)
    previous = f"recorded runId {record.run_id!r}" if record.run_id else "no recorded runId"
    return RotationDecision(True, record_id, f"new runId {wanted_run_id!r} ({previous})")


# The rotation lock in Vault's custom_metadata: "<runId>@<unix seconds>#<owner>". A lock older than
# this was left by a run that died (SIGKILL); the Keycloak record then tells what it had done.
LOCK_STALE_SECONDS: Final = 900


def lock_value(run_id: str, now: float, owner: str) -> str:
    return f"{run_id}@{int(now)}#{owner}"


def lock_is_live(value: str | None, now: float) -> bool:
    """A lock another run holds and may still be using."""
    if not value:
        return False
    try:
        taken = int(value.rsplit("@", 1)[1].split("#", 1)[0])
    except (IndexError, ValueError):
        return False  # unreadable: treated as stale, never as a reason to wait forever
    return now - taken < LOCK_STALE_SECONDS


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
def force_sync_value(vault_version: int, created_time: str | None = None) -> str:
    """Deterministic and secret-free: the Vault version and when it was written ("v7-20261129125122…"),
    so a key deleted and recreated (versions restart at 1) never repeats a value."""
    stamp = "".join(ch for ch in created_time or "" if ch.isdigit())
    return f"v{vault_version}-{stamp}" if stamp else f"v{vault_version}"


class ForceSyncTarget(NamedTuple):
    version: int | None  # the Vault version consumers must be told about; None: patch nothing
    catch_up: bool  # True: the value was not written by this run, only consumers behind are patched
    created_time: str | None = None  # when that version was written
    again_at: float | None = None  # an open rotation window resumed: every consumer is annotated again

    @property
    def value(self) -> str | None:
        if self.version is None:
            return None
        value = force_sync_value(self.version, self.created_time)
        return value if self.again_at is None else retry_value(value, self.again_at)


def decide_force_sync_target(
    action: Action, vault_version: int | None, written: bool, created_time: str | None = None
) -> ForceSyncTarget:
    """Every run names the version Vault holds for the authority's value: a written value (or one a
    dry run would write) is new; an unchanged one, or one whose metadata could not be recorded, still
    names its version so any consumer behind it is caught up, whatever the metadata says. A
    consumer already at that value is not patched again."""
    if vault_version is None or action is Action.SKIPPED:
        return ForceSyncTarget(None, False)
    if action is Action.FAILED and not written:
        return ForceSyncTarget(None, False)
    return ForceSyncTarget(vault_version, not written, created_time)


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


def decide_refresh(state: ExternalSecretState, value: str) -> ConsumerPlan:
    """Patch only when the annotation is not already the target value, or a re-annotation of it
    (reruns patch nothing)."""
    return ConsumerPlan(
        f"{state.namespace}/{state.name}",
        not at_value(state.force_sync, value),
        value,
        consumer_warning(state),
    )


@dataclass(frozen=True)
class ConsumerOutcome:
    patched: tuple[str, ...] = ()
    current: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()  # namespace/name of each consumer in `failures` (not converged)
    verified: tuple[str, ...] = ()  # patched and converged: ESO refreshed, the Secret holds the value
    reannotated: tuple[str, ...] = ()  # stale after the first wait, annotated once more


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
    version, value = target.version, target.value
    if version is None or value is None:
        return result
    parts = [result.reason]
    if outcome.patched:
        verb = _PATCHED[(target.catch_up, result.dry_run)]
        parts.append(f"{verb} force-sync={value} on {', '.join(outcome.patched)}")
    elif outcome.current and not target.catch_up:
        parts.append(f"consumers already at force-sync={value}")
    if outcome.reannotated:
        parts.append(f"re-annotated {', '.join(outcome.reannotated)}")
    if outcome.verified:
        parts.append(f"converged: {', '.join(outcome.verified)}")
    action = result.action
    if outcome.failures:
        parts.append("consumer refresh failed: " + "; ".join(outcome.failures))
        action = Action.FAILED
    consumers = consumer_results(value, outcome, dry_run=result.dry_run)
    warnings = (*result.warnings, *outcome.warnings)
    return EntryResult(result.name, action, "; ".join(parts), version, warnings, result.dry_run, consumers)


def consumer_results(value: str, outcome: ConsumerOutcome, *, dry_run: bool) -> tuple[ConsumerResult, ...]:
    """The consumers as structured data for the summary, in the order they were refreshed."""
    found = [
        *((c, "would_patch" if dry_run else "patched") for c in outcome.patched if c not in outcome.failed),
        *((c, "current") for c in outcome.current),
        *((c, "failed") for c in outcome.failed),
    ]
    results = []
    for consumer, how in found:
        namespace, _, name = consumer.partition("/")
        results.append(ConsumerResult(namespace, name, value, how))
    return tuple(results)
