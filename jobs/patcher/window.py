"""Zero-downtime rotation, the pure decisions (docs/design.md#client-patcher).

With `keycloak.rotate.grace`, a regenerate must leave the previous secret valid as Keycloak's
*rotated secret* (the `secret-rotation` client policy) until every consumer holds the new one:

1. `decide_gate` — before any regenerate: rotate with a window, rotate with an accepted hard cut, or
   refuse (nothing is regenerated) when Keycloak would not keep the old secret.
2. `decide_kept` — right after the regenerate: did Keycloak keep the old secret, and for how long.
3. `decide_close` — once the consumers were refreshed: invalidate the rotated secret only when
   verification was on and every consumer converged; otherwise leave it to Keycloak's expiry.

Under the same policy the *current* secret expires too: `with_expiry` fails an entry whose secret
Keycloak no longer accepts and warns a week ahead (entries that did not rotate in this run).

No I/O here: jobs.patcher.run observes Keycloak and acts on what these return.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from jobs.core.catalog import Consumer
from jobs.core.model import Action, EntryResult
from jobs.core.observed import RotatedSecret

POLICY_HINT: Final = (
    "it needs the preview feature client-secret-rotation (--features=client-secret-rotation) and a "
    "realm client policy whose profile has the secret-rotation executor with a rotated-expiration-period "
    "at least the grace (docs/design.md#keycloak)"
)
CONVERGED: Final = frozenset({"patched", "current", "verified"})  # ConsumerResult.outcome, refreshed
EXPIRY_NOTICE: Final = 7 * 86400  # warn this long before Keycloak stops accepting the current secret


def duration(seconds: int | float) -> str:
    """900 -> "15m", 5400 -> "1h30m", 90 -> "1m30s": the catalog's own notation."""
    left = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"


def when(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass(frozen=True)
class Gate:
    rotate: bool  # False: refuse, nothing is regenerated
    window: bool  # True: Keycloak is expected to keep the old secret
    reason: str
    warning: str | None = None


def decide_gate(grace: int, hard_cut: bool, applies: bool, periods: Sequence[int] | None, label: str) -> Gate:
    """Whether to regenerate an entry that asks for a grace window. `applies`: a secret-rotation
    client policy applies to the client now; `periods`: the rotated-expiration-period of each such
    policy in the realm, None when this identity cannot read the realm's policies."""
    asked = f"grace {duration(grace)}"
    if not applies:
        why = (
            f"no secret-rotation client policy applies to {label}: "
            "a regenerate would end the old secret at once"
        )
    elif periods is not None and periods and max(periods) <= 0:
        why = f"the realm's secret-rotation policy of {label} has rotated-expiration-period 0 (keeps nothing)"
    else:
        warning = None
        if periods is None:
            warning = (
                f"cannot read the client policies of {label} (needs view-realm): the kept window is "
                "checked right after the regenerate"
            )
        elif periods and min(periods) < grace:
            warning = (
                f"the realm's secret-rotation policy keeps the old secret {duration(min(periods))}, "
                f"less than the catalog's {asked}"
            )
        return Gate(True, True, f"{asked}: Keycloak keeps the old secret", warning)
    if hard_cut:
        accepted = f"{asked} not possible, hard cut accepted (hardCut: true): {why}"
        return Gate(True, False, accepted, accepted)
    return Gate(False, False, f"rotation refused ({asked}): {why}; {POLICY_HINT}; or set hardCut: true")


def preview_gate(
    grace: int, hard_cut: bool, applied: bool, periods: Sequence[int] | None, label: str
) -> Gate:
    """`decide_gate` for a dry run, which may not update the client: the update is what makes
    Keycloak apply a secret-rotation policy, so the client's attributes only say whether one applied
    at its last update. A refusal is certain only when the realm has no such policy (or keeps
    nothing); otherwise the run decides after its update, and the preview says so."""
    gate = decide_gate(grace, hard_cut, applied, periods, label)
    if gate.rotate or applied or (periods is not None and (not periods or max(periods) <= 0)):
        return gate
    known = (
        "the realm has a secret-rotation policy"
        if periods
        else "this identity cannot read the realm's client policies (needs view-realm)"
    )
    return Gate(
        True,
        True,
        f"grace {duration(grace)}: only if a secret-rotation policy applies to {label}",
        f"none applied to {label} at its last update ({known}): the run checks again after updating "
        "the client and refuses to rotate if none applies",
    )


@dataclass(frozen=True)
class Kept:
    window: bool  # the old secret is still accepted
    problem: str | None  # a hard cut nobody accepted: fails the entry once the new secret is out
    warning: str | None = None


def decide_kept(grace: int, rotated: RotatedSecret | None, now: float, hard_cut: bool) -> Kept:
    """After the regenerate: what Keycloak actually kept."""
    if rotated is None or not rotated.live(now):
        why = "Keycloak kept no rotated secret after the regenerate: the old secret stopped working at once"
        return Kept(False, None if hard_cut else f"HARD CUT: {why} (rotated-expiration-period 0?)", why)
    left = (rotated.expires - now) if rotated.expires is not None else None
    if left is not None and left < grace:
        return Kept(
            True, None, f"Keycloak keeps the old secret only {duration(left)} (grace {duration(grace)})"
        )
    return Kept(True, None)


@dataclass(frozen=True)
class Close:
    close: bool  # DELETE the rotated secret now
    note: str  # appended to the entry's reason
    fail: bool = False  # the entry fails (a consumer or a write did not get there)


def decide_close(
    verified: bool, consumers: Sequence[Consumer], result: EntryResult, rotated: RotatedSecret
) -> Close:
    """Close the window only when verification was on, the entry did not fail and every consumer
    was refreshed with none failed; otherwise the old secret stays valid until Keycloak's expiry."""
    until = f"the old secret stays valid until {when(rotated.expires)}"
    status = {f"{c.namespace}/{c.name}": c.outcome for c in result.consumers}
    behind = [str(c) for c in consumers if status.get(str(c)) not in CONVERGED]
    if result.failed or behind:
        named = f" (not converged: {', '.join(behind)})" if behind else ""
        return Close(False, f"rotation window left open{named}: {until}; a rerun resumes", fail=True)
    if not verified:
        return Close(False, f"consumer verification is off: window not closed, {until} (Keycloak's expiry)")
    deaf = [str(c) for c in consumers if any(_ignores(w, c) for w in result.warnings)]
    if deaf:
        return Close(False, f"rotation window left open ({', '.join(deaf)} ignores force-sync): {until}")
    return Close(True, "rotation window closed: every consumer converged, the old secret no longer works")


def _ignores(warning: str, consumer: Consumer) -> bool:
    """A consumer warning (jobs.patcher.decide.consumer_warning) saying ESO will not refresh it."""
    return warning.startswith(f"consumer {consumer}:") and "force-sync will be ignored" in warning


def expired(expires: int | None, now: float) -> bool:
    """Keycloak's reading (OIDCClientSecretConfigWrapper.isClientSecretExpired): past, to the second.
    Any update of such a client makes the secret-rotation policy regenerate its secret."""
    return expires is not None and expires < int(now)


def with_expiry(result: EntryResult, expires: int | None, now: float, label: str) -> EntryResult:
    """The entry's result, failed when the client's current secret has expired (Keycloak refuses it
    at every login, the rotated one included: ClientIdAndSecretAuthenticator), with a warning when
    it expires within EXPIRY_NOTICE. Vault still holds what Keycloak holds; rotating is the fix."""
    if expires is None:
        return result
    result = replace(result, secret_expires=expires)
    rotate = "rotate it: bump keycloak.rotate.runId (docs/rotation-runbook.md)"
    if expired(expires, now):
        problem = (
            f"the client secret of {label} expired at {when(expires)} (the secret-rotation client "
            f"policy's expiration-period): Keycloak refuses it at every login; {rotate}"
        )
        return replace(result, action=Action.FAILED, reason=f"{result.reason}; {problem}")
    if expires - now > EXPIRY_NOTICE:
        return result
    warning = (
        f"the client secret of {label} expires at {when(expires)} (in {duration(expires - now)}); "
        f"Keycloak then refuses it: {rotate} before, or lengthen the policy's expiration-period"
    )
    return replace(result, warnings=(*result.warnings, warning))
