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
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from jobs.core import metadata as md
from jobs.core.errors import ClientError, Conflict, Permanent, failure_reason
from jobs.core.observed import KeycloakClientInfo
from jobs.core.retry import RetryPolicy
from jobs.patcher.decide import (
    ATTR_RUN_ID,
    RotationDecision,
    RotationRecord,
    decide_rotation,
    lock_is_live,
    lock_value,
)

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

    def run(self, name: str, client: KeycloakClientInfo, decision: RotationDecision, forced: bool) -> Rotated:
        """Take the lock, decide again under it, and regenerate only if the runId is still not done.
        Without the lock (another run holds it), wait for that run's record, then sync."""
        run_id = decision.record_run_id
        waited_until = self.clock() + WAIT_SECONDS
        while True:
            token = self._acquire(name, run_id or "forced")
            if token is not None:
                try:
                    return self._rotate_locked(name, client, decision, forced)
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
        self, name: str, client: KeycloakClientInfo, decision: RotationDecision, forced: bool
    ) -> Rotated:
        record = self.record(client)
        run_id = decision.record_run_id
        again = decide_rotation(run_id, record, None, forced)
        if not again.rotate:
            if again.record_in_keycloak:
                self.mark_done(client, run_id)
            return Rotated(self.keycloak.read_client_secret(client), False, again.reason)
        if run_id is not None:
            self.keycloak.merge_client_attributes(client, record.intent_attributes(run_id))
        secret = self.keycloak.regenerate_client_secret(client)
        log.warning(
            "rotated the client secret in Keycloak; the old secret no longer works",
            extra={"entry": name, "client": client.label, "why": decision.reason},
        )
        self.mark_done(client, run_id)
        return Rotated(secret, True, decision.reason)

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
