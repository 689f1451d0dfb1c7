"""client-patcher: Keycloak-generated client secrets -> Vault KV v2 -> ESO force-sync (SPEC §4)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from jobs.core import metadata as md
from jobs.core.catalog import Catalog, Consumer, Origin, SecretEntry
from jobs.core.clients.keycloak import KeycloakClient, KeycloakClientInfo, usable_secret_problem
from jobs.core.clients.kube import ExternalSecretState, KubeClient, load_configuration
from jobs.core.clients.vault import KvRead, VaultClient
from jobs.core.errors import ClientError, ConfigError
from jobs.core.eso import is_zero_duration
from jobs.core.model import DRY_RUN, Action, EntryResult, RunReport
from jobs.core.plan import Applied, KvPlan, converge, plan_sync
from jobs.core.runner import (
    RunContext,
    add_common_arguments,
    fail_all,
    failure_reason,
    process_entries,
    run_main,
)
from jobs.core.settings import KeycloakSettings, VaultSettings, load_settings

JOB: Final = "client-patcher"
ORIGIN: Final = Origin.SERVICE_GENERATED.value
log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=JOB, description=__doc__)
    add_common_arguments(parser)
    parser.add_argument(
        "--rotate",
        action="append",
        default=[],
        metavar="NAME",
        help="regenerate this entry's client secret in Keycloak now (repeatable); "
        "the catalog's keycloak.rotate.runId rotates once per new runId without this flag",
    )
    return parser


def select(catalog: Catalog) -> tuple[SecretEntry, ...]:
    return tuple(e for e in catalog.secrets if e.origin is Origin.SERVICE_GENERATED)


# -- pure decisions (no I/O; table-tested in tests/unit/test_client_patcher_plan.py) ---------------------
@dataclass(frozen=True)
class RotationDecision:
    rotate: bool
    record_run_id: str | None  # the rotation-run-id to record with the next write (None: none)
    reason: str


def decide_rotation(wanted_run_id: str | None, recorded_run_id: str | None, forced: bool) -> RotationDecision:
    """Rotate once per new runId (SPEC §4 step 5), or when forced with --rotate NAME."""
    record = wanted_run_id if wanted_run_id is not None else recorded_run_id
    if forced:
        return RotationDecision(True, record, "forced with --rotate")
    if wanted_run_id is None:
        return RotationDecision(False, record, "no rotation requested")
    if recorded_run_id == wanted_run_id:
        return RotationDecision(False, record, f"runId {wanted_run_id!r} already rotated")
    previous = f"recorded runId {recorded_run_id!r}" if recorded_run_id else "no recorded runId"
    return RotationDecision(True, record, f"new runId {wanted_run_id!r} ({previous})")


def force_sync_value(vault_version: int) -> str:
    """Deterministic and secret-free: the Vault version that holds the new value ("v7")."""
    return f"v{vault_version}"


def decide_force_sync_target(
    action: Action, vault_version: int | None, observed: Mapping[str, str] | None
) -> tuple[int | None, bool]:
    """Which Vault version the consumers must be told about, and whether that is a catch-up.

    A written value (or, in a dry run, a value that would be written) means: refresh to its version.
    An unchanged value that client-patcher itself wrote earlier (our metadata, authority keycloak) also
    names its version, so a consumer a previous run failed to patch is caught up; once the annotation
    matches, nothing is patched. Any other unchanged value patches nothing."""
    if vault_version is None:
        return None, False
    if action is Action.WRITTEN:
        return vault_version, False
    if (
        action is Action.UNCHANGED
        and observed is not None
        and md.is_ours(observed)
        and observed.get(md.AUTHORITY) == md.AUTHORITY_KEYCLOAK
    ):
        return vault_version, True
    return None, False


def consumer_warning(state: ExternalSecretState) -> str | None:
    """Why ESO will ignore force-sync on this ExternalSecret (trap 9), if it will."""
    policy = state.refresh_policy or "Periodic"
    where = f"consumer {state.namespace}/{state.name}"
    if policy == "CreatedOnce":
        return f"{where}: refreshPolicy CreatedOnce, force-sync will be ignored (ESO never refreshes it)"
    if policy == "Periodic" and is_zero_duration(state.refresh_interval):
        return (
            f"{where}: refreshInterval {state.refresh_interval!r} with the Periodic policy, force-sync will "
            "be ignored (use refreshPolicy OnChange or a non-zero refreshInterval)"
        )
    return None


@dataclass(frozen=True)
class ConsumerPlan:
    consumer: str  # namespace/name
    patch: bool
    value: str
    warning: str | None = None


def decide_consumer(state: ExternalSecretState, target_version: int) -> ConsumerPlan:
    """Patch only when the annotation is not already the target value (reruns patch nothing)."""
    value = force_sync_value(target_version)
    return ConsumerPlan(
        f"{state.namespace}/{state.name}", state.force_sync != value, value, consumer_warning(state)
    )


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


# -- apply ----------------------------------------------------------------------------------------------
@dataclass
class ConsumerOutcome:
    patched: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass
class Patcher:
    """The clients of one run and what applies a decision. Built once in `execute`."""

    ctx: RunContext
    keycloak: KeycloakClient
    vault: VaultClient
    kube: KubeClient | None
    forced: frozenset[str]

    @property
    def dry_run(self) -> bool:
        return self.ctx.dry_run

    def refresh_consumers(self, consumers: Sequence[Consumer], target_version: int) -> ConsumerOutcome:
        """GET every consumer, then merge-patch force-sync where it differs. One consumer failing
        does not stop the others; its failure fails the entry."""
        outcome = ConsumerOutcome()
        kube = self.kube
        for consumer in consumers:
            if kube is None:  # pragma: no cover - execute builds it when any entry has consumers
                outcome.failures.append(f"consumer {consumer}: no Kubernetes client")
                continue
            try:
                plan = decide_consumer(
                    kube.get_external_secret(consumer.namespace, consumer.name), target_version
                )
                if plan.warning:
                    outcome.warnings.append(plan.warning)
                    log.warning(plan.warning)
                if not plan.patch:
                    outcome.current.append(plan.consumer)
                    continue
                if self.dry_run:
                    log.info(f"{DRY_RUN} would annotate {plan.consumer} force-sync={plan.value}")
                else:
                    kube.annotate_force_sync(consumer.namespace, consumer.name, plan.value)
                    log.info(
                        "annotated consumer", extra={"consumer": plan.consumer, "force_sync": plan.value}
                    )
                outcome.patched.append(plan.consumer)
            except ClientError as exc:
                outcome.failures.append(f"consumer {consumer}: {failure_reason(exc)}")
        return outcome

    def handle(self, entry: SecretEntry) -> EntryResult:
        """One entry; a failure decided here (not raised) is logged like a raised one."""
        result = self.sync(entry)
        if result.failed:
            log.error("entry failed", extra={"entry": entry.name, "error": result.reason})
        return result

    def sync(self, entry: SecretEntry) -> EntryResult:
        source = entry.keycloak
        if source is None:  # pragma: no cover - the catalog guarantees it for service-generated entries
            return EntryResult(entry.name, Action.FAILED, "no keycloak source")
        client = self.keycloak.find_client(source.realm, source.client_id)
        problem = usable_secret_problem(client)
        if problem is not None:
            return EntryResult(entry.name, Action.FAILED, problem)
        mount = self.ctx.catalog.vault.kv_mount
        before = self.vault.read(mount, entry.name)
        rotation = decide_rotation(
            source.rotate.run_id if source.rotate else None,
            before.custom_metadata.get(md.ROTATION_RUN_ID),
            entry.name in self.forced,
        )
        if rotation.rotate and self.dry_run:
            return self._dry_run_rotation(entry, client, before, rotation)
        rotated = False
        if rotation.rotate:
            secret = self.keycloak.regenerate_client_secret(client)
            rotated = True
            log.warning(
                "rotated the client secret in Keycloak; the old secret no longer works",
                extra={"entry": entry.name, "client": client.label, "why": rotation.reason},
            )
        else:
            secret = self.keycloak.client_secret(client)
        ours = metadata_for(entry, rotation.record_run_id)
        label = f"keycloak {client.label}"
        replans = 0

        def decide(current: KvRead) -> KvPlan:
            nonlocal secret, replans
            if replans:
                # Another writer won the CAS race, perhaps a concurrent run that rotated the secret
                # (a manual `kubectl create job --from=cronjob` escapes concurrencyPolicy): the value
                # we hold may be dead, so re-read the authority instead of writing it blindly.
                secret = self.keycloak.read_client_secret(client)
            replans += 1
            return plan_sync(current, self.ctx.catalog.vault.field, secret, ours, label)

        try:
            applied = converge(
                self.vault,
                mount,
                entry.name,
                decide,
                dry_run=self.dry_run,
                first=before,  # already read for the rotation decision: one Vault read per entry
            )
        except ClientError as exc:
            if not rotated:
                raise
            reason = (
                f"ROTATED in Keycloak ({rotation.reason}) but NOT written to Vault "
                f"{mount}/{entry.name}: the old secret no longer works and consumers still hold it; "
                f"fix Vault and rerun (the rerun rotates again and writes): {failure_reason(exc)}"
            )
            log.critical(reason, extra={"entry": entry.name})
            return EntryResult(entry.name, Action.FAILED, reason)
        return self._finish(entry, applied, rotation.reason if rotated else None)

    def _dry_run_rotation(
        self, entry: SecretEntry, client: KeycloakClientInfo, before: KvRead, rotation: RotationDecision
    ) -> EntryResult:
        self.keycloak.client_secret(client)  # prove it is readable, even though it would be replaced
        version = before.version + 1
        reason = (
            f"{DRY_RUN} would rotate the client secret of {client.label} ({rotation.reason}; "
            f"POST client-secret) and write it as v{version}"
        )
        log.info(reason, extra={"entry": entry.name})
        outcome = self.refresh_consumers(entry.consumers, version)
        return self._result(
            entry,
            action=Action.WRITTEN,
            reason=reason,
            version=version,
            outcome=outcome,
            catch_up=False,
            dry_run=True,
        )

    def _finish(self, entry: SecretEntry, applied: Applied, rotated_because: str | None) -> EntryResult:
        result = applied.result
        reason = f"rotated ({rotated_because}); {result.reason}" if rotated_because else result.reason
        if self.dry_run and result.action is Action.WRITTEN:
            log.info(reason, extra={"entry": entry.name})
        observed = applied.observed.custom_metadata if applied.observed else None
        target, catch_up = decide_force_sync_target(result.action, result.vault_version, observed)
        if target is None or not entry.consumers:
            return EntryResult(
                entry.name, result.action, reason, result.vault_version, dry_run=result.dry_run
            )
        outcome = self.refresh_consumers(entry.consumers, target)
        return self._result(
            entry,
            action=result.action,
            reason=reason,
            version=target,
            outcome=outcome,
            catch_up=catch_up,
            dry_run=result.dry_run,
        )

    @staticmethod
    def _result(
        entry: SecretEntry,
        *,
        action: Action,
        reason: str,
        version: int,
        outcome: ConsumerOutcome,
        catch_up: bool,
        dry_run: bool,
    ) -> EntryResult:
        value = force_sync_value(version)
        verb = "would annotate" if dry_run else "annotated"
        parts = [reason]
        if outcome.patched:
            what = ("would catch up" if dry_run else "caught up") if catch_up else verb
            parts.append(f"{what} force-sync={value} on {', '.join(outcome.patched)}")
        elif outcome.current and not catch_up:
            parts.append(f"consumers already at force-sync={value}")
        if outcome.failures:
            parts.append("consumer refresh failed: " + "; ".join(outcome.failures))
            action = Action.FAILED
        return EntryResult(entry.name, action, "; ".join(parts), version, tuple(outcome.warnings), dry_run)


def _forced_rotations(ctx: RunContext) -> frozenset[str]:
    wanted = set(ctx.args.rotate)
    selected = {e.name for e in ctx.entries}
    unknown = sorted(wanted - selected)
    if unknown:
        raise ConfigError(
            f"--rotate names not among the selected service-generated entries of {ctx.catalog.path}: "
            + ", ".join(unknown)
        )
    return frozenset(wanted)


def execute(ctx: RunContext) -> RunReport:
    forced = _forced_rotations(ctx)
    entries = ctx.entries
    if not entries:
        return ctx.report([])
    keycloak_config = ctx.catalog.keycloak
    if keycloak_config is None:  # pragma: no cover - the catalog requires it with service-generated entries
        raise ConfigError(f"{ctx.catalog.path}: no top-level `keycloak`")
    keycloak_settings = load_settings(KeycloakSettings)
    vault_settings = load_settings(VaultSettings)
    kube = KubeClient(load_configuration(), ctx.retry) if any(entry.consumers for entry in entries) else None
    keycloak = KeycloakClient(keycloak_config.url, keycloak_config.auth_realm, keycloak_settings, ctx.retry)
    vault = VaultClient(vault_settings, ctx.retry)
    try:
        try:
            keycloak.login()
            vault.login()
        except ClientError as exc:
            return fail_all(ctx, entries, exc)
        patcher = Patcher(ctx, keycloak, vault, kube, forced)
        return process_entries(ctx, entries, patcher.handle)
    finally:
        keycloak.close()
        if kube is not None:
            kube.close()


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(JOB, build_parser(), argv, execute, select)


if __name__ == "__main__":
    sys.exit(main())
