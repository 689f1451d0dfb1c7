"""vault-bootstrap's proof that Vault holds the Key Vault version it copied, recorded in the same run.

The `akv-fingerprint` (see `jobs.bootstrap.decide`) may only be recorded once a Key Vault response's
`Date` is past the second the version was created. When a run copies a version created in the very
second it listed and fetched it, the fingerprint is held back at the write; without more, the next
fault-free run would have to fetch the value again and write the key's metadata just to record it. So
right after such a write this module asks Key Vault for the latest version again, for a bounded moment,
until a response's `Date` allows the proof, and records it then: the next fault-free run writes nothing
(docs/design.md#vault-bootstrap).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Final

from jobs.bootstrap.decide import AkvObservation, fingerprint, provable
from jobs.core import metadata as md
from jobs.core.errors import ClientError
from jobs.core.observed import AkvValue
from jobs.core.plan import KvPlan

if TYPE_CHECKING:  # vendor SDKs load only when a client is built (instant --help)
    from jobs.core.clients.azure_kv import AzureKeyVaultClient
    from jobs.core.clients.vault import VaultClient

log = logging.getLogger(__name__)
WAIT: Final = 2.5  # seconds at most: Key Vault's clock moves on within one
POLL: Final = 0.25


def _held_back(plan: KvPlan, obs: AkvObservation | None) -> AkvValue | None:
    meta = plan.write_metadata
    if obs is None or obs.value is None or obs.value.created is None or meta is None:
        return None
    if meta.get(md.AUTHORITY) != md.AUTHORITY_AKV or md.AKV_FINGERPRINT in meta:
        return None
    return obs.value


def _latest_when_provable(akv: AzureKeyVaultClient, value: AkvValue, interrupt: threading.Event) -> bool:
    """True once Key Vault, still serving `value`'s version as the latest, dates a response past its
    `created` second; False when a newer version appeared, on an error, or after WAIT."""
    until = time.monotonic() + WAIT
    while True:
        latest = akv.get_value(value.name)
        if latest.version != value.version:
            return False  # a newer version: the next run copies it
        if provable(latest):
            return True
        if time.monotonic() >= until or interrupt.wait(POLL):
            return False


def record_proof(
    vault: VaultClient,
    akv: AzureKeyVaultClient | None,
    mount: str,
    plan: KvPlan,
    obs: AkvObservation | None,
    *,
    interrupt: threading.Event,
) -> str:
    """After `plan` was applied: record the fingerprint it had to hold back. A note for the entry's
    reason, "" when there was nothing to record or it could not be (the next run then records it)."""
    value = _held_back(plan, obs)
    if akv is None or value is None or value.created is None or obs is None:
        return ""
    try:
        if not _latest_when_provable(akv, value, interrupt):
            return ""
        current = vault.read(mount, plan.name)
        meta = dict(current.custom_metadata)
        if meta.get(md.AKV_VERSION) != value.version or md.AKV_FINGERPRINT in meta:
            return ""  # Vault moved on meanwhile
        meta[md.AKV_FINGERPRINT] = fingerprint(obs.akv_name, value.created, current.version)
        vault.write_metadata(mount, plan.name, meta)
    except ClientError as exc:
        log.warning("fingerprint not recorded; the next run records it", extra={"reason": str(exc)})
        return ""
    return " (fingerprint recorded once the Key Vault clock passed the version's second)"
