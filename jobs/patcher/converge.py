"""client-patcher's pure convergence decisions: after force-sync, did ESO refresh the consumer, and
does its target Secret hold the value just written? Digests only, never values; no I/O
(docs/design.md#client-patcher, docs/design.md#external-secrets-operator). Table-tested in
tests/unit/test_converge_consumers.py."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from jobs.checks.manifests import resolve_key
from jobs.core.observed import EsoStatus, ExternalSecretState


def value_digest(value: str) -> str:
    """SHA-256 (hex) of a value, as the Kubernetes client digests a Secret's keys."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Baseline:
    """A consumer as it was when force-sync was set: a refresh after that changes its status."""

    synced_resource_version: str | None
    refresh_time: str | None
    annotated_at: float  # Unix seconds, taken after the PATCH was answered

    @classmethod
    def of(cls, state: ExternalSecretState, annotated_at: float) -> Baseline:
        status = state.status
        return cls(status.synced_resource_version, status.refresh_time, annotated_at)


def refreshed_since(status: EsoStatus, generation: int, baseline: Baseline) -> bool:
    """ESO refreshed the ExternalSecret after the annotation. ESO sets `syncedResourceVersion` to
    "<generation>-<hash of annotations and labels>" and `refreshTime` on each successful refresh
    (pkg/controllers/externalsecret/externalsecret_controller.go, external-secrets/external-secrets):
    a new force-sync value changes the hash, so a synced version of the current generation that
    differs from the one seen before the annotation is a refresh after it. Without that field, a
    refreshTime that moved and is not older than the annotation's second (ESO writes whole seconds)."""
    synced = status.synced_resource_version
    if synced:
        return synced != baseline.synced_resource_version and synced.startswith(f"{generation}-")
    now, before = _seconds(status.refresh_time), _seconds(baseline.refresh_time)
    if now is None or (before is not None and now <= before):
        return False
    return now >= int(baseline.annotated_at)


def secret_keys(
    state: ExternalSecretState, mount: str, entry: str, field: str
) -> tuple[tuple[str, ...], str | None]:
    """The target Secret keys that carry the entry's field, or () and why they cannot be known:
    `spec.data[]` whose remoteRef names the Vault key and the field (its `secretKey`), or a
    `dataFrom[].extract` of the key (every field becomes a key of its own name)."""
    wanted = f"{mount}/{entry}"
    if state.templated:
        return (), "spec.target.template renders the Secret, so its values are not Vault's"
    keys = [r.secret_key for r in state.data if resolve_key(mount, r.key) == wanted and r.property == field]
    renamed = False
    for extract in state.extracts:
        if resolve_key(mount, extract.key) == wanted:
            renamed |= extract.rewritten
            if not extract.rewritten:
                keys.append(field)
    if keys:
        return tuple(dict.fromkeys(keys)), None
    if renamed:
        return (), f"dataFrom extract of {wanted} uses rewrite, so the key holding {field!r} is unknown"
    if state.other_sources:
        return (), "its keys come from dataFrom find or sourceRef, not from a named Vault key"
    return (), f"it reads no property {field!r} of Vault key {wanted} (spec.data or dataFrom extract)"


class SecretSeen(NamedTuple):
    """One read of the target Secret: digests per key (None: no such Secret), or why it failed."""

    digests: Mapping[str, str] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Verdict:
    converged: bool
    reason: str  # why not; when converged, a note ("" or why the value was not compared)
    final: bool = False  # waiting cannot help (e.g. the Secret may not be read)


@dataclass(frozen=True)
class Expected:
    """What a converged consumer holds: `digest` under `keys` (none: only the refresh is checked)."""

    digest: str
    version: int
    keys: tuple[str, ...] = ()
    unknown_keys: str | None = None  # why `keys` is empty


def needs_secret(state: ExternalSecretState, baseline: Baseline, expected: Expected) -> bool:
    """The Secret is read only once ESO reports a refresh, and only when there is a key to compare."""
    return bool(expected.keys) and refreshed_since(state.status, state.generation, baseline)


def judge(
    state: ExternalSecretState, baseline: Baseline, expected: Expected, secret: SecretSeen | None
) -> Verdict:
    """Is this consumer converged to the value just written, and if not, why (never a value)."""
    status, where = state.status, f"Secret {state.namespace}/{state.secret_name}"
    if not refreshed_since(status, state.generation, baseline):
        if status.ready == "False":
            why = ": ".join(p for p in (status.ready_reason, status.ready_message) if p)
            return Verdict(False, f"ESO reports Ready=False ({why or 'no message'})")
        seen = status.synced_resource_version or "none"
        when = status.refresh_time or "never"
        force_sync = state.force_sync or "none"
        return Verdict(
            False,
            f"ESO never refreshed it after force-sync={force_sync} "
            f"(status.syncedResourceVersion {seen}, refreshTime {when})",
        )
    if not expected.keys:
        return Verdict(True, f"ESO refreshed it; value not compared: {expected.unknown_keys}")
    if secret is None or secret.error is not None:
        error = secret.error if secret is not None else "not read"
        return Verdict(False, f"ESO refreshed it but its {where} cannot be read: {error}", final=True)
    if secret.digests is None:
        return Verdict(False, f"ESO refreshed it but its {where} does not exist")
    for key in expected.keys:
        held = secret.digests.get(key)
        if held is None:
            return Verdict(False, f"ESO refreshed it but its {where} has no key {key!r}")
        if not hmac.compare_digest(held, expected.digest):
            return Verdict(
                False,
                f"ESO refreshed it but its {where} key {key!r} holds another value, "
                f"not Vault v{expected.version}",
            )
    return Verdict(True, "")


RETRY_MARK = "-r"


def retry_value(value: str, now: float) -> str:
    """The force-sync value of a re-annotation: the target value plus the Unix second of the retry
    (`v7-20261129125122-r1764420000`): it never repeats, derives nothing from the secret, and a later
    run still counts the consumer as at `value` (`decide_refresh`)."""
    return f"{value}{RETRY_MARK}{int(now)}"


def at_value(force_sync: str | None, value: str) -> bool:
    """The annotation names `value`, directly or as a re-annotation of it."""
    return force_sync is not None and (force_sync == value or force_sync.startswith(value + RETRY_MARK))
