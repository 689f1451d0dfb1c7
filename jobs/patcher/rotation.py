"""client-patcher's rotation: at most one regenerate per runId, whatever fails and however many runs
start together (docs/design.md#client-patcher).

Where things are recorded, and when:

1. Lock — Vault custom_metadata `rotation-intent` of the entry's key, written with `metadata_cas`
   (an atomic check-and-set on the metadata version, OpenBao >= 2.4): of two runs, one takes it, the
   other waits. A lock older than `LOCK_STALE_SECONDS` belonged to a run that died and may be taken.
2. Intent — under the lock, the Keycloak client attributes `secret-origin.rotation-intent` (the runId)
   and `…-intent-secret-time` (the secret's `client.secret.creation.time` now), before the regenerate.
3. Regenerate — Keycloak moves `client.secret.creation.time`.
4. Record — the Keycloak attribute `secret-origin.rotation-run-id`, then the lock is released. The
   Vault write that follows also stamps `rotation-run-id` in the key's metadata.

A run that stops between any two steps leaves a state the next run reads correctly: an intent whose
creation time has not moved means "not regenerated yet"; one whose time moved means "regenerated, just
record it and sync". The Keycloak record survives a Vault `metadata delete`.

With a grace window (`keycloak.rotate.grace`), the PUT of step 2 is also the probe of Keycloak's
`secret-rotation` client policy (jobs.patcher.window.decide_gate): a refused rotation raises before
step 3, and what Keycloak kept after the regenerate is read back (`Rotated.kept`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from jobs.core import metadata as md
from jobs.core.catalog import Consumer, SecretEntry
from jobs.core.errors import ClientError, Conflict, Permanent, failure_reason
from jobs.core.model import Action, EntryResult
from jobs.core.observed import ATTR_SECRET_EXPIRATION, KeycloakClientInfo, RotatedSecret
from jobs.core.retry import RetryPolicy
from jobs.patcher.decide import (
    ATTR_RUN_ID,
    RotationDecision,
    RotationRecord,
    decide_rotation,
    lock_is_live,
    lock_value,
)
from jobs.patcher.window import Gate, Kept, decide_close, decide_gate, decide_kept, preview_gate, when

if TYPE_CHECKING:  # vendor SDKs load only when a client is built (instant --help)
    from jobs.core.clients.keycloak import KeycloakClient
    from jobs.core.clients.vault import VaultClient

log = logging.getLogger(__name__)
# How long a run waits for a concurrent run's rotation of the same runId (bounded by --deadline).
WAIT_SECONDS: Final = 60.0
POLL_SECONDS: Final = 0.5


@dataclass(frozen=True)
class Rotated:
    """The outcome of `Rotation.run`: the secret to sync, and whether this run regenerated it."""

    secret: str
    regenerated: bool
    reason: str
    gate: Gate | None = None  # with a grace window: what the policy probe decided
    kept: Kept | None = None  # with a grace window: what Keycloak kept after the regenerate


@dataclass(frozen=True)
class Grace:
    """`keycloak.rotate.grace` (seconds) and `hardCut` of the entry being rotated."""

    seconds: int
    hard_cut: bool = False

    @classmethod
    def of(cls, entry: SecretEntry) -> Grace | None:
        rotate = entry.keycloak.rotate if entry.keycloak else None
        return None if rotate is None or rotate.grace is None else cls(rotate.grace, rotate.hard_cut)


@dataclass
class Rotation:
    keycloak: KeycloakClient
    vault: VaultClient
    mount: str
    retry: RetryPolicy
    clock: Callable[[], float] = time.time
    owner: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def record(self, client: KeycloakClientInfo) -> RotationRecord:
        return RotationRecord.of(self.keycloak.client_attributes(client))

    def mark_done(self, client: KeycloakClientInfo, run_id: str | None) -> None:
        if run_id is not None:
            self.keycloak.merge_client_attributes(client, {ATTR_RUN_ID: run_id})

    def run(
        self,
        name: str,
        client: KeycloakClientInfo,
        decision: RotationDecision,
        forced: bool,
        grace: Grace | None = None,
    ) -> Rotated:
        """Take the lock, decide again under it, and regenerate only if the runId is still not done.
        Without the lock (another run holds it), wait for that run's record, then sync."""
        run_id = decision.record_run_id
        waited_until = self.clock() + WAIT_SECONDS
        while True:
            token = self._acquire(name, run_id or "forced")
            if token is not None:
                try:
                    return self._rotate_locked(name, client, decision, forced, grace)
                finally:
                    self._release(name, token)
            record = self.record(client)
            if run_id is not None and record.run_id == run_id:
                why = f"runId {run_id!r} rotated by a concurrent run"
                return Rotated(self.keycloak.read_client_secret(client), False, why)
            if self.clock() >= waited_until or self.retry.deadline.expired() or self.retry.interrupt.is_set():
                raise Permanent(
                    "vault",
                    f"{self.mount}/{name}: another run holds the rotation lock ({md.ROTATION_INTENT}) "
                    f"and did not finish within {int(WAIT_SECONDS)} s; rerun (a lock older than "
                    "15 minutes is taken over)",
                )
            self.retry.interrupt.wait(POLL_SECONDS)

    def _rotate_locked(
        self,
        name: str,
        client: KeycloakClientInfo,
        decision: RotationDecision,
        forced: bool,
        grace: Grace | None,
    ) -> Rotated:
        record = self.record(client)
        run_id = decision.record_run_id
        again = decide_rotation(run_id, record, None, forced)
        if not again.rotate:
            if again.record_in_keycloak:
                self.mark_done(client, run_id)
            return Rotated(self.keycloak.read_client_secret(client), False, again.reason)
        intent = record.intent_attributes(run_id) if run_id is not None else {}
        if intent or grace is not None:  # a PUT also fires the secret-rotation policy: the probe
            self.keycloak.merge_client_attributes(client, intent)
        gate = self._gate(client, grace) if grace is not None else None
        if gate is not None and not gate.rotate:
            log.error(
                "rotation refused", extra={"entry": name, "client": client.label, "reason": gate.reason}
            )
            raise Permanent("keycloak", gate.reason)
        secret = self.keycloak.regenerate_client_secret(client)
        kept = None
        if grace is not None and gate is not None and gate.window:
            kept = decide_kept(
                grace.seconds, self.keycloak.rotated_secret_info(client), self.clock(), grace.hard_cut
            )
        window = kept is not None and kept.window
        log.warning(
            "rotated the client secret in Keycloak; "
            + (
                "the old secret stays valid (rotation window open)"
                if window
                else "the old secret no longer works"
            ),
            extra={"entry": name, "client": client.label, "why": decision.reason},
        )
        self.mark_done(client, run_id)
        return Rotated(secret, True, decision.reason, gate, kept)

    def preview(self, client: KeycloakClientInfo, record: RotationRecord, grace: Grace) -> Gate:
        """What a dry run can say about the gate without updating the client (`preview_gate`)."""
        periods = self.keycloak.rotated_expiration_periods(client.realm)
        applied = record.rotation_policy_applied
        return preview_gate(grace.seconds, grace.hard_cut, applied, periods, client.label)

    def _gate(self, client: KeycloakClientInfo, grace: Grace) -> Gate:
        """Right after the client's PUT: Keycloak set `client.secret.expiration.time` only if a
        secret-rotation policy applies to it (and removed it otherwise)."""
        applies = bool(self.keycloak.client_attributes(client).get(ATTR_SECRET_EXPIRATION))
        periods = self.keycloak.rotated_expiration_periods(client.realm)
        return decide_gate(grace.seconds, grace.hard_cut, applies, periods, client.label)

    # -- the rotation window (keycloak.rotate.grace) ----------------------------------------------------
    def settle_window(
        self,
        name: str,
        client: KeycloakClientInfo,
        consumers: Sequence[Consumer],
        result: EntryResult,
        rotated: Rotated | None,
        *,
        window: RotatedSecret | None,
        verified: bool,
    ) -> EntryResult:
        """After the write and the consumers: report what the regenerate kept, then close the
        window (DELETE the rotated secret) when `decide_close` says so. Also resumes a window a
        previous run left open (`window`, read before the write): never a second regenerate, only the
        consumers and the close."""
        notes = [w for w in (rotated.gate, rotated.kept) if w is not None and w.warning] if rotated else []
        warnings = tuple(str(w.warning) for w in notes)
        if rotated is not None and rotated.kept is not None and rotated.kept.problem:
            reason = f"{result.reason}; {rotated.kept.problem}"
            return replace(result, action=Action.FAILED, reason=reason, warnings=result.warnings + warnings)
        result = replace(result, warnings=result.warnings + warnings)
        info = window if rotated is None else self.keycloak.rotated_secret_info(client)
        if info is None or not info.live(self.clock()):
            self.record_window(name, None)
            return result
        close = decide_close(verified, consumers, result, info)
        extra = {"entry": name, "client": client.label, "expires": when(info.expires)}
        if close.close:
            try:
                self.keycloak.delete_rotated_secret(client)
            except ClientError as exc:
                why = f"could not close the rotation window ({failure_reason(exc)}); rerun to close it"
                return replace(result, action=Action.FAILED, reason=f"{result.reason}; {why}")
            log.info("rotation window closed", extra=extra)
        else:
            log.warning("rotation window left open", extra={**extra, "why": close.note})
        self.record_window(name, None if close.close else md.window_interval(info.since, info.expires))
        action = Action.FAILED if close.fail else result.action
        return replace(result, action=action, reason=f"{result.reason}; {close.note}")

    def record_window(self, name: str, interval: str | None) -> None:
        """Keep `rotation-window` in the key's custom_metadata equal to `interval` (None: absent), for
        smoke and audit. Informational: a failure is logged, never fails the entry."""
        try:
            current = self.vault.read_metadata(self.mount, name)
            held = current.custom_metadata.get(md.ROTATION_WINDOW) if current else None
            if current is None or held == interval:
                return
            body = {k: v for k, v in current.custom_metadata.items() if k != md.ROTATION_WINDOW}
            if interval is not None:
                body[md.ROTATION_WINDOW] = interval
            self.vault.write_metadata(self.mount, name, body, metadata_cas=current.metadata_version or 0)
        except ClientError as exc:
            log.warning(
                "could not record the rotation window in Vault's metadata",
                extra={"entry": name, "error": failure_reason(exc)},
            )

    # -- the lock in Vault's custom_metadata ---------------------------------------------------------
    def _acquire(self, name: str, run_id: str) -> str | None:
        """The lock's value when this run took it; None when another run holds it (or won the race)."""
        now = self.clock()
        current = self.vault.read_metadata(self.mount, name)
        held = current.custom_metadata.get(md.ROTATION_INTENT) if current else None
        if lock_is_live(held, now):
            log.info("another run holds the rotation lock; waiting", extra={"entry": name, "lock": held})
            return None
        token = lock_value(run_id, now, self.owner)
        body = {**(current.custom_metadata if current else {}), md.ROTATION_INTENT: token}
        cas = None if current is None else current.metadata_version
        if current is not None and cas is None:
            log.warning(
                "this Vault has no metadata check-and-set (OpenBao >= 2.4): the rotation lock is not atomic",
                extra={"entry": name},
            )
        try:
            self.vault.write_metadata(self.mount, name, body, metadata_cas=cas or 0)
        except Conflict:
            return None
        return token

    def _release(self, name: str, token: str) -> None:
        try:
            current = self.vault.read_metadata(self.mount, name)
            if current is None or current.custom_metadata.get(md.ROTATION_INTENT) != token:
                return
            body = {k: v for k, v in current.custom_metadata.items() if k != md.ROTATION_INTENT}
            self.vault.write_metadata(self.mount, name, body, metadata_cas=current.metadata_version or 0)
        except ClientError as exc:
            log.warning(
                "could not release the rotation lock; it is taken over once stale",
                extra={"entry": name, "error": failure_reason(exc)},
            )
