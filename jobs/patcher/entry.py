"""client-patcher, one entry: read Keycloak and Vault, converge, then refresh the consumers.

Find the Keycloak client (exact clientId) and refuse one without a usable secret; read Vault once;
rotate when the catalog's runId is new or `--rotate` names the entry; then `jobs.core.apply.converge`
writes the secret only when Vault differs — after a lost CAS race it reads both sides again, Vault and
Keycloak, since the winner may be a concurrent run that rotated the secret. When Vault changed (or a
consumer missed an earlier patch), each consumer ExternalSecret gets `force-sync: v<N>-<created>`, and
the patched ones are verified (`jobs.patcher.consumers`); with a grace window the rotated secret is
closed once they all converged (`jobs.patcher.window`, docs/design.md#client-patcher).
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from functools import partial
from typing import TYPE_CHECKING, Final

from jobs.core import metadata as md
from jobs.core.apply import Converged, KvTarget, converge
from jobs.core.catalog import SecretEntry
from jobs.core.errors import ClientError, failure_reason
from jobs.core.model import DRY_RUN, Action, EntryResult
from jobs.core.observed import KeycloakClientInfo, KvRead, RotatedSecret
from jobs.core.retry import RetryPolicy
from jobs.patcher.consumers import Consumers, Verification
from jobs.patcher.decide import (
    ForceSyncTarget,
    RotationDecision,
    RotationRecord,
    Seen,
    decide_force_sync_target,
    decide_rotation,
    decide_sync,
    metadata_for,
    usable_secret_problem,
    wanted_run_id,
    with_refresh,
)
from jobs.patcher.rotation import Grace, Rotation
from jobs.patcher.verify import verify_written
from jobs.patcher.window import expired, with_expiry

if TYPE_CHECKING:  # vendor SDKs load only when a client is built (instant --help)
    from jobs.core.clients.keycloak import KeycloakClient
    from jobs.core.clients.keycloak_index import ClientLookup
    from jobs.core.clients.keycloak_login import SecretLogin
    from jobs.core.clients.kube import KubeClient
    from jobs.core.clients.kube_events import ConsumerEvents
    from jobs.core.clients.kube_index import ExternalSecretIndex
    from jobs.core.clients.vault import VaultClient

SERVE_CHECKS: Final = 5  # read-after-write attempts before consumers are annotated
SERVE_PAUSE: Final = 0.2  # seconds, growing linearly between those attempts
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Patcher:
    """The clients of one run and where plans are applied. Built once in `execute`."""

    keycloak: KeycloakClient
    target: KvTarget
    kube: KubeClient | None
    field: str
    forced: frozenset[str] = frozenset()
    retry: RetryPolicy = dataclass_field(default_factory=RetryPolicy)
    login: SecretLogin | None = None  # --verify-login
    verification: Verification = dataclass_field(default_factory=Verification)
    events: ConsumerEvents | None = None  # Events on the consumer ExternalSecrets
    lookups: ClientLookup | None = None  # a run's Keycloak lookups (realm listings); else one by one
    consumers: ExternalSecretIndex | None = None  # a run's ExternalSecrets (one LIST per namespace)

    @property
    def rotation(self) -> Rotation:
        return Rotation(self.keycloak, self.vault, self.target.mount, self.retry)

    @property
    def vault(self) -> VaultClient:
        return self.target.vault

    @property
    def consumer_refresh(self) -> Consumers:
        return Consumers(
            self.kube,
            self.retry,
            self.target.dry_run,
            self.verification,
            self.target.mount,
            self.field,
            index=self.consumers,
        )

    # -- one entry ------------------------------------------------------------------------------------
    def handle(self, entry: SecretEntry) -> EntryResult:
        """One entry; a failure decided here (not raised) is logged like a raised one. Entries that
        name the same Keycloak client run one after the other. The consumers get their Events from
        the result (docs/design.md#metrics-and-events)."""
        source, lookups = entry.keycloak, self.lookups
        held: AbstractContextManager[None] = nullcontext()
        if lookups is not None and source is not None:
            held = lookups.hold(source.realm, source.client_id)
        with held:
            try:
                result = self.sync(entry)
            except ClientError as exc:
                self._tell_consumers(entry, EntryResult(entry.name, Action.FAILED, failure_reason(exc)))
                raise
        self._tell_consumers(entry, result)
        if result.failed:
            log.error("entry failed", extra={"entry": entry.name, "error": result.reason})
        return result

    def _tell_consumers(self, entry: SecretEntry, result: EntryResult) -> None:
        if self.events is not None:
            self.events.after_entry(result, entry.consumers)

    def sync(self, entry: SecretEntry) -> EntryResult:
        source = entry.keycloak
        if source is None:  # pragma: no cover - the catalog guarantees it for service-generated entries
            return EntryResult(entry.name, Action.FAILED, "no keycloak source")
        client = (self.lookups or self.keycloak).find_client(source.realm, source.client_id)
        problem = usable_secret_problem(client)
        if problem is not None:
            return EntryResult(entry.name, Action.FAILED, problem)
        before = self.vault.read(self.target.mount, entry.name)
        wanted, forced = wanted_run_id(entry), entry.name in self.forced
        record = self.rotation.record(client) if wanted or forced else RotationRecord()
        rotation = decide_rotation(wanted, record, before.custom_metadata.get(md.ROTATION_RUN_ID), forced)
        if rotation.rotate and self.target.dry_run:
            return self._dry_run_rotation(entry, client, before, rotation, record)
        result = self._sync(entry, client, before, rotation)
        if rotation.rotate:  # the regenerate gave the new secret a new expiration
            return result
        return with_expiry(result, client.secret_expires, self.rotation.clock(), client.label)

    def _sync(
        self, entry: SecretEntry, client: KeycloakClientInfo, before: KvRead, rotation: RotationDecision
    ) -> EntryResult:
        wanted, forced = wanted_run_id(entry), entry.name in self.forced
        rotated_because, rotated, grace = None, None, Grace.of(entry)
        window = self._open_window(client, grace, rotation.rotate)
        if rotation.rotate:
            rotated = self.rotation.run(entry.name, client, rotation, forced, grace)
            secret, rotated_because = rotated.secret, rotated.reason if rotated.regenerated else None
            if not rotated.regenerated:  # waited for, or found done by, a concurrent run: Vault again
                before = self.vault.read(self.target.mount, entry.name)
        else:
            # Not on an expired secret: Keycloak would regenerate it at the PUT, a rotation no runId asked for
            expired_now = expired(client.secret_expires, self.rotation.clock())
            if rotation.record_in_keycloak and not self.target.dry_run and not expired_now:
                self.rotation.mark_done(client, rotation.record_run_id)
            secret = self.current_secret(client, fresh=bool(wanted) or forced, vault=before.value(self.field))
        seen = Seen(before, secret)
        result = self._write(entry, client, seen, rotation, rotated_because, resume=window is not None)
        if grace is None or self.target.dry_run:
            return result
        settle = partial(self.rotation.settle_window, entry.name, client, entry.consumers)
        return settle(result, rotated, window=window, verified=self.verification.enabled)

    def _open_window(
        self, client: KeycloakClientInfo, grace: Grace | None, rotates: bool
    ) -> RotatedSecret | None:
        """A live rotated secret a previous run left (entries with a grace window only): this run
        resumes it — no regenerate, the consumers refreshed and checked again, then the close."""
        if grace is None or rotates or self.target.dry_run:
            return None
        found = self.keycloak.rotated_secret_info(client)
        return found if found is not None and found.live(self.rotation.clock()) else None

    def current_secret(self, client: KeycloakClientInfo, *, fresh: bool, vault: str | None = None) -> str:
        """Keycloak's secret now. After reading the rotation record, read it again (`fresh`): the
        secret the clients search listed predates the record, and a concurrent run may have rotated
        it in between — its record says "done" while the listed secret is already dead. A secret
        from the run's realm listing that differs from Vault's (`vault`) is read again too before it
        is written: the listing may predate a rotation by a concurrent run."""
        listed = client.listed_secret
        stale = client.from_listing and listed is not None and listed != vault
        if fresh or stale:
            return self.keycloak.read_client_secret(client)
        return self.keycloak.client_secret(client)

    def observe_again(self, client: KeycloakClientInfo, seen: Seen) -> Seen:
        """After a lost CAS race: Vault again, and Keycloak again — the winner may be a concurrent run
        that rotated the secret (a manual `kubectl create job --from=cronjob` escapes
        concurrencyPolicy), so the value we hold may be dead."""
        current = self.vault.read(self.target.mount, seen.current.name)
        return Seen(current, self.keycloak.read_client_secret(client))

    def _write(
        self,
        entry: SecretEntry,
        client: KeycloakClientInfo,
        first: Seen,
        rotation: RotationDecision,
        rotated_because: str | None,
        *,
        resume: bool = False,
    ) -> EntryResult:
        decide = partial(
            decide_sync, self.field, metadata_for(entry, rotation.record_run_id), f"keycloak {client.label}"
        )
        try:
            done = converge(first, partial(self.observe_again, client), decide, self.target)
        except ClientError as exc:
            if rotated_because is None:
                raise
            reason = (
                f"ROTATED in Keycloak ({rotated_because}; recorded on the client) but the write to Vault "
                f"{self.target.mount}/{entry.name} failed or its outcome is unknown: consumers still hold "
                f"the old secret, which no longer works; fix Vault and rerun: a rerun for the same "
                f"runId does not rotate again, it writes the new secret: {failure_reason(exc)}"
            )
            log.critical("rotated but not written to Vault", extra={"entry": entry.name, "reason": reason})
            return EntryResult(entry.name, Action.FAILED, reason)
        return self._finish(entry, done, rotated_because, resume=resume)

    def _dry_run_rotation(
        self,
        entry: SecretEntry,
        client: KeycloakClientInfo,
        before: KvRead,
        rotation: RotationDecision,
        record: RotationRecord,
    ) -> EntryResult:
        self.keycloak.client_secret(client)  # prove it is readable, even though it would be replaced
        grace = Grace.of(entry)
        gate = self.rotation.preview(client, record, grace) if grace is not None else None
        if gate is not None and not gate.rotate:
            return EntryResult(entry.name, Action.FAILED, f"{DRY_RUN} {gate.reason}", dry_run=True)
        version = before.version + 1
        how = f"; {gate.reason}" if gate is not None else ""
        reason = (
            f"{DRY_RUN} would rotate the client secret of {client.label} ({rotation.reason}; "
            f"POST client-secret{how}) and write it as v{version}"
        )
        log.info("%s entry would be rotated", DRY_RUN, extra={"entry": entry.name, "reason": reason})
        warnings = (gate.warning,) if gate is not None and gate.warning else ()
        result = EntryResult(entry.name, Action.WRITTEN, reason, version, warnings, dry_run=True)
        target = ForceSyncTarget(version, catch_up=False)
        outcome = self.consumer_refresh.refresh(entry.consumers, target.value or "", entry.name, None)
        return with_refresh(result, target, outcome)

    def _finish(
        self, entry: SecretEntry, done: Converged[Seen], rotated_because: str | None, *, resume: bool
    ) -> EntryResult:
        result = done.applied.result
        if rotated_because:
            result = replace(result, reason=f"rotated ({rotated_because}); {result.reason}")
            log.info(
                "wrote the new secret to Vault", extra={"entry": entry.name, "version": result.vault_version}
            )
        if self.target.dry_run and result.action is Action.WRITTEN:
            log.info(
                "%s entry would be written", DRY_RUN, extra={"entry": entry.name, "reason": result.reason}
            )
        dry_written = self.target.dry_run and result.action is Action.WRITTEN
        written = done.applied.new_version is not None or dry_written
        if self.login is not None and entry.keycloak and done.applied.new_version is not None:
            source = entry.keycloak
            checked = verify_written(self.login, source.realm, source.client_id, done.seen.secret, result)
            if checked is not result:  # Keycloak rejects what was written: no consumer is told about it
                return checked
        if result.vault_version is None or not entry.consumers:
            return result
        served: KvRead | None = None if dry_written else done.seen.current
        if written and not self.target.dry_run:
            served = self.served(entry.name, result.vault_version)
            if served.version < result.vault_version:
                why = f"Vault does not serve v{result.vault_version} yet (it answers v{served.version})"
                reason = f"{result.reason}; consumers not annotated: {why}"
                return replace(result, action=Action.FAILED, reason=reason)
        version = served.version if served is not None else result.vault_version
        created = served.created_time if served is not None else None
        target = decide_force_sync_target(result.action, version, written, created)
        if resume and target.version is not None:  # every consumer annotated (and checked) again
            target = target._replace(again_at=self.rotation.clock())
        if target.version is None or target.value is None:
            return result
        value = served.value(self.field) if served is not None else None
        expected = (value, target.version) if value is not None else None
        outcome = self.consumer_refresh.refresh(entry.consumers, target.value, entry.name, expected)
        return with_refresh(result, target, outcome)

    def served(self, name: str, version: int) -> KvRead:
        """Read-after-write: what Vault serves at the address consumers read (bounded: a standby may
        lag the active node). The last read is returned, whatever version it holds."""
        current = self.vault.read(self.target.mount, name)
        for attempt in range(SERVE_CHECKS):
            if current.version >= version:
                break
            self.retry.interrupt.wait(SERVE_PAUSE * (attempt + 1))
            current = self.vault.read(self.target.mount, name)
        return current
