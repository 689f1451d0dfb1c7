"""client-patcher's I/O: per entry, read Keycloak and Vault, converge, then refresh the consumers.

Per entry: find the Keycloak client (exact clientId) and refuse one without a usable secret; read
Vault once; rotate when the catalog's runId is new or `--rotate` names the entry; then
`jobs.core.apply.converge` writes the secret only when Vault differs — after a lost CAS race it reads
both sides again, Vault and Keycloak, since the winner may be a concurrent run that rotated the secret.
When Vault changed (or a consumer missed an earlier patch), each consumer ExternalSecret gets
`force-sync: v<N>` (docs/design.md#client-patcher).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Final

from jobs.core import metadata as md
from jobs.core.apply import Converged, KvTarget, converge
from jobs.core.catalog import Consumer, SecretEntry
from jobs.core.clients.keycloak import KeycloakClient
from jobs.core.clients.kube import KubeClient, load_configuration
from jobs.core.clients.vault import VaultClient
from jobs.core.errors import ClientError, ConfigError, Permanent, failure_reason
from jobs.core.model import DRY_RUN, Action, EntryResult, RunReport
from jobs.core.observed import KeycloakClientInfo, KvRead
from jobs.core.preflight import plain_http_warnings, vault_or_fail_all
from jobs.core.runner import RunContext, process_entries
from jobs.core.session import login_or_fail_all, open_vault
from jobs.core.settings import KeycloakSettings, KubeSettings, VaultSettings, load_all_settings
from jobs.patcher.decide import (
    ConsumerOutcome,
    ConsumerPlan,
    ForceSyncTarget,
    RotationDecision,
    Seen,
    decide_force_sync_target,
    decide_refresh,
    decide_rotation,
    decide_sync,
    metadata_for,
    usable_secret_problem,
    with_refresh,
)

JOB: Final = "client-patcher"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    rotate: tuple[str, ...] = ()  # entries whose client secret is regenerated now (--rotate NAME)


Context = RunContext[Options]


@dataclass(frozen=True)
class Patcher:
    """The clients of one run and where plans are applied. Built once in `execute`."""

    keycloak: KeycloakClient
    target: KvTarget
    kube: KubeClient | None
    field: str
    forced: frozenset[str] = frozenset()

    @property
    def vault(self) -> VaultClient:
        return self.target.vault

    # -- consumers ------------------------------------------------------------------------------------
    def _refresh_one(self, consumer: Consumer, version: int) -> ConsumerPlan:
        if self.kube is None:  # pragma: no cover - execute builds it when any entry has consumers
            raise Permanent("kubernetes", "no Kubernetes client")
        return decide_refresh(self.kube.get_external_secret(consumer.namespace, consumer.name), version)

    def _annotate(self, consumer: Consumer, plan: ConsumerPlan) -> None:
        if self.target.dry_run:
            log.info(f"{DRY_RUN} would annotate {plan.consumer} force-sync={plan.value}")
        elif self.kube is not None:
            self.kube.annotate_force_sync(consumer.namespace, consumer.name, plan.value)
            log.info("annotated consumer", extra={"consumer": plan.consumer, "force_sync": plan.value})

    def refresh_consumers(self, consumers: Sequence[Consumer], version: int) -> ConsumerOutcome:
        """GET every consumer, then merge-patch force-sync where it differs. One consumer failing
        does not stop the others; its failure fails the entry."""
        patched: list[str] = []
        current: list[str] = []
        warnings: list[str] = []
        failures: list[str] = []
        for consumer in consumers:
            try:
                plan = self._refresh_one(consumer, version)
                if plan.warning:
                    warnings.append(plan.warning)
                    log.warning(plan.warning)
                if plan.patch:
                    self._annotate(consumer, plan)
                (patched if plan.patch else current).append(plan.consumer)
            except ClientError as exc:
                failures.append(f"consumer {consumer}: {failure_reason(exc)}")
        return ConsumerOutcome(tuple(patched), tuple(current), tuple(warnings), tuple(failures))

    # -- one entry ------------------------------------------------------------------------------------
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
        before = self.vault.read(self.target.mount, entry.name)
        rotation = decide_rotation(
            source.rotate.run_id if source.rotate else None,
            before.custom_metadata.get(md.ROTATION_RUN_ID),
            entry.name in self.forced,
        )
        if rotation.rotate and self.target.dry_run:
            return self._dry_run_rotation(entry, client, before, rotation)
        if rotation.rotate:
            secret = self.keycloak.regenerate_client_secret(client)
            log.warning(
                "rotated the client secret in Keycloak; the old secret no longer works",
                extra={"entry": entry.name, "client": client.label, "why": rotation.reason},
            )
        else:
            secret = self.keycloak.client_secret(client)
        return self._write(entry, client, Seen(before, secret), rotation)

    def observe_again(self, client: KeycloakClientInfo, seen: Seen) -> Seen:
        """After a lost CAS race: Vault again, and Keycloak again — the winner may be a concurrent run
        that rotated the secret (a manual `kubectl create job --from=cronjob` escapes
        concurrencyPolicy), so the value we hold may be dead."""
        current = self.vault.read(self.target.mount, seen.current.name)
        return Seen(current, self.keycloak.read_client_secret(client))

    def _write(
        self, entry: SecretEntry, client: KeycloakClientInfo, first: Seen, rotation: RotationDecision
    ) -> EntryResult:
        decide = partial(
            decide_sync, self.field, metadata_for(entry, rotation.record_run_id), f"keycloak {client.label}"
        )
        try:
            done = converge(first, partial(self.observe_again, client), decide, self.target)
        except ClientError as exc:
            if not rotation.rotate:
                raise
            reason = (
                f"ROTATED in Keycloak ({rotation.reason}) but NOT written to Vault "
                f"{self.target.mount}/{entry.name}: the old secret no longer works and consumers still "
                f"hold it; fix Vault and rerun (the rerun rotates again and writes): {failure_reason(exc)}"
            )
            log.critical(reason, extra={"entry": entry.name})
            return EntryResult(entry.name, Action.FAILED, reason)
        return self._finish(entry, done, rotation.reason if rotation.rotate else None)

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
        result = EntryResult(entry.name, Action.WRITTEN, reason, version, dry_run=True)
        target = ForceSyncTarget(version, catch_up=False)
        return with_refresh(result, target, self.refresh_consumers(entry.consumers, version))

    def _finish(self, entry: SecretEntry, done: Converged[Seen], rotated_because: str | None) -> EntryResult:
        result = done.applied.result
        if rotated_because:
            result = replace(result, reason=f"rotated ({rotated_because}); {result.reason}")
        if self.target.dry_run and result.action is Action.WRITTEN:
            log.info(result.reason, extra={"entry": entry.name})
        target = decide_force_sync_target(
            result.action, result.vault_version, done.seen.current.custom_metadata
        )
        if target.version is None or not entry.consumers:
            return result
        return with_refresh(result, target, self.refresh_consumers(entry.consumers, target.version))


def forced_rotations(ctx: Context) -> frozenset[str]:
    """`--rotate` names, each one a selected service-generated entry (else a bad invocation)."""
    wanted = set(ctx.options.rotate)
    unknown = sorted(wanted - {e.name for e in ctx.entries})
    if unknown:
        raise ConfigError(
            f"--rotate names not among the selected service-generated entries of {ctx.catalog.path}: "
            + ", ".join(unknown)
        )
    return frozenset(wanted)


def execute(ctx: Context) -> RunReport:
    forced = forced_rotations(ctx)
    entries = ctx.entries
    if not entries:
        return ctx.report([])
    config = ctx.catalog.keycloak
    if config is None:  # pragma: no cover - the catalog requires it with service-generated entries
        raise ConfigError(f"{ctx.catalog.path}: no top-level `keycloak`")
    needs_kube = any(entry.consumers for entry in entries)
    if needs_kube:
        vault_settings, keycloak_settings, _ = load_all_settings(
            VaultSettings, KeycloakSettings, KubeSettings
        )
    else:
        vault_settings, keycloak_settings = load_all_settings(VaultSettings, KeycloakSettings)
    warnings = plain_http_warnings(Vault=vault_settings.addr, Keycloak=config.url)
    vault = open_vault(ctx.retry, vault_settings)
    kube = KubeClient(load_configuration(), ctx.retry) if needs_kube else None
    keycloak = KeycloakClient(config.url, config.auth_realm, keycloak_settings, ctx.retry)
    try:
        refused = vault_or_fail_all(ctx, entries, vault, warnings) or login_or_fail_all(
            ctx, entries, keycloak, warnings=warnings
        )
        if refused is not None:
            return refused
        target = KvTarget(vault, ctx.catalog.vault.kv_mount, ctx.dry_run)
        patcher = Patcher(keycloak, target, kube, ctx.catalog.vault.field, forced)
        report = process_entries(ctx, entries, patcher.handle, warnings)
        return replace(report, warnings=(*report.warnings, *keycloak.warnings))
    finally:
        keycloak.close()
        if kube is not None:
            kube.close()
