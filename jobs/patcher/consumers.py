"""client-patcher's consumer I/O: merge-patch `force-sync` on the consumer ExternalSecrets that are
behind, then verify that they converged (docs/design.md#client-patcher).

Verification (on by default, `--no-verify-consumers` turns it off) covers the consumers patched in
this run, except those ESO ignores force-sync on (their warning says so already). All of an entry's
consumers are polled together until ESO reports a refresh after the annotation and each target
Secret holds the value just written (SHA-256 digests, never values; `jobs.patcher.converge`
decides). Half of `--consumer-timeout` is the first wait; a consumer still stale then is
re-annotated once with a value that never repeats, and waited for again. Every wait stays within
the run's `--deadline` and ends at SIGTERM. A consumer that does not converge fails its
entry (`ConsumerOutcome.failed`), named with the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from jobs.core.catalog import Consumer
from jobs.core.errors import ClientError, Permanent, PermissionDenied, failure_reason
from jobs.core.model import DRY_RUN
from jobs.core.observed import ExternalSecretState
from jobs.core.retry import RetryPolicy
from jobs.patcher.converge import (
    Baseline,
    Expected,
    SecretSeen,
    Verdict,
    judge,
    needs_secret,
    retry_value,
    secret_keys,
    value_digest,
)
from jobs.patcher.decide import ConsumerOutcome, decide_refresh

if TYPE_CHECKING:  # the Kubernetes client loads only when it is built
    from jobs.core.clients.kube import KubeClient
    from jobs.core.clients.kube_index import ExternalSecretIndex

log = logging.getLogger(__name__)
FIRST_PAUSE: Final = 0.2  # seconds between polls, growing to MAX_PAUSE
MAX_PAUSE: Final = 2.0
FORBIDDEN_HINT: Final = (
    "client-patcher needs get on it (chart: clientPatcher.rbac.targetSecrets), or run with "
    "--no-verify-consumers"
)


@dataclass(frozen=True)
class Verification:
    enabled: bool = True  # --no-verify-consumers turns it off
    timeout: float = 60.0  # --consumer-timeout: both waits of one entry together, in seconds


@dataclass
class Pending:
    """A consumer patched in this run, as last seen, and the force-sync value set on it."""

    consumer: Consumer
    value: str
    baseline: Baseline
    state: ExternalSecretState
    verdict: Verdict = field(default_factory=lambda: Verdict(False, "not checked yet"))


@dataclass(frozen=True)
class Consumers:
    """One entry's consumers: annotate those behind, then verify them."""

    kube: KubeClient | None
    retry: RetryPolicy
    dry_run: bool
    verification: Verification
    mount: str
    field_name: str
    clock: Callable[[], float] = time.time
    index: ExternalSecretIndex | None = None  # the run's LIST per namespace; else a GET per consumer

    def _kube(self) -> KubeClient:
        if self.kube is None:  # pragma: no cover - execute builds it when any entry has consumers
            raise Permanent("kubernetes", "no Kubernetes client")
        return self.kube

    def _annotate(self, consumer: Consumer, value: str) -> float:
        if self.dry_run:
            extra = {"consumer": str(consumer), "force_sync": value}
            log.info("%s consumer would be annotated", DRY_RUN, extra=extra)
        else:
            self._kube().annotate_force_sync(consumer.namespace, consumer.name, value)
            log.info("annotated consumer", extra={"consumer": str(consumer), "force_sync": value})
        return self.clock()

    def refresh(
        self, consumers: Sequence[Consumer], value: str, entry: str, expected: tuple[str, int] | None
    ) -> ConsumerOutcome:
        """GET every consumer, then merge-patch force-sync where it differs; then verify the patched
        ones against `expected` (the value written and its Vault version; None: not verified). One
        consumer failing does not stop the others; its failure fails the entry."""
        patched: list[Pending] = []
        unverified: list[Pending] = []
        current: list[str] = []
        warnings: list[str] = []
        failures: list[str] = []
        failed: list[str] = []
        for consumer in consumers:
            try:
                state = (self.index or self._kube()).get_external_secret(consumer.namespace, consumer.name)
                plan = decide_refresh(state, value)
                if plan.patch and self.index and self.index.listed(consumer.namespace):
                    # the listing may predate another run's patch: decide on (and wait from) a GET
                    state = self._kube().get_external_secret(consumer.namespace, consumer.name)
                    plan = decide_refresh(state, value)
                if plan.warning:
                    warnings.append(plan.warning)
                    log.warning(
                        "consumer warning", extra={"consumer": plan.consumer, "warning": plan.warning}
                    )
                if not plan.patch:
                    current.append(plan.consumer)
                    continue
                at = self._annotate(consumer, value)
                pending = Pending(consumer, value, Baseline.of(state, at), state)
                # a consumer ESO ignores force-sync on is not waited for: its warning says so already
                (unverified if plan.warning else patched).append(pending)
            except ClientError as exc:
                failures.append(f"consumer {consumer}: {failure_reason(exc)}")
                failed.append(str(consumer))
        names = tuple(str(p.consumer) for p in (*patched, *unverified))
        outcome = ConsumerOutcome(names, tuple(current), tuple(warnings), tuple(failures), tuple(failed))
        if self.dry_run or not self.verification.enabled or expected is None or not patched:
            return outcome
        return self.verify(outcome, patched, entry, expected)

    # -- verification -----------------------------------------------------------------------------
    def _expected(self, state: ExternalSecretState, entry: str, digest: str, version: int) -> Expected:
        keys, unknown = secret_keys(state, self.mount, entry, self.field_name)
        return Expected(digest, version, keys, unknown)

    def _check(self, pending: Pending, entry: str, digest: str, version: int) -> Verdict:
        consumer, kube = pending.consumer, self._kube()
        try:
            pending.state = kube.get_external_secret(consumer.namespace, consumer.name)
        except ClientError as exc:
            return Verdict(False, f"cannot read the ExternalSecret: {failure_reason(exc)}", final=True)
        expected = self._expected(pending.state, entry, digest, version)
        secret = None
        if needs_secret(pending.state, pending.baseline, expected):
            try:
                secret = SecretSeen(kube.secret_digests(consumer.namespace, pending.state.secret_name))
            except PermissionDenied as exc:
                secret = SecretSeen(error=f"{failure_reason(exc)}; {FORBIDDEN_HINT}")
            except ClientError as exc:
                secret = SecretSeen(error=failure_reason(exc))
        return judge(pending.state, pending.baseline, expected, secret)

    def wait(self, pending: Sequence[Pending], entry: str, expected: tuple[str, int], seconds: float) -> None:
        """Poll every pending consumer in one loop until each converged, or cannot, or time is up."""
        digest, version = value_digest(expected[0]), expected[1]
        end = time.monotonic() + seconds
        remaining = self.retry.deadline.remaining()
        if remaining is not None:
            end = min(end, time.monotonic() + remaining)
        todo, pause = list(pending), FIRST_PAUSE
        while todo:
            for item in todo:
                item.verdict = self._check(item, entry, digest, version)
                if item.verdict.converged:
                    log.info("consumer converged", extra={"consumer": str(item.consumer)})
            todo = [p for p in todo if not p.verdict.converged and not p.verdict.final]
            left = end - time.monotonic()
            if not todo or left <= 0 or self.retry.interrupt.is_set():
                return
            self.retry.interrupt.wait(min(pause, left))
            pause = min(pause * 1.5, MAX_PAUSE)

    def verify(
        self, outcome: ConsumerOutcome, patched: list[Pending], entry: str, expected: tuple[str, int]
    ) -> ConsumerOutcome:
        half = self.verification.timeout / 2
        self.wait(patched, entry, expected, half)
        stale = [p for p in patched if not p.verdict.converged and not p.verdict.final]
        again: list[str] = []
        if stale and not self.retry.interrupt.is_set():
            for item in stale:
                item.value = retry_value(item.value, self.clock())
                try:
                    at = self._annotate(item.consumer, item.value)
                except ClientError as exc:
                    item.verdict = Verdict(False, f"re-annotation failed: {failure_reason(exc)}", final=True)
                    continue
                item.baseline = Baseline.of(item.state, at)
                again.append(str(item.consumer))
            self.wait([p for p in stale if not p.verdict.final], entry, expected, half)
        return self._outcome(outcome, patched, again)

    def _outcome(self, outcome: ConsumerOutcome, patched: list[Pending], again: list[str]) -> ConsumerOutcome:
        verified, warnings = [], list(outcome.warnings)
        failures, failed = list(outcome.failures), list(outcome.failed)
        stopped = ""
        if self.retry.interrupt.is_set():
            stopped = " (stopped by SIGTERM)"
        elif self.retry.deadline.expired():
            stopped = " (run deadline reached)"
        for item in patched:
            name = str(item.consumer)
            if item.verdict.converged:
                verified.append(name)
                if item.verdict.reason:
                    warnings.append(f"consumer {name}: {item.verdict.reason}")
                continue
            tries = "after one re-annotation" if name in again else "after force-sync"
            failures.append(f"consumer {name} did not converge {tries}{stopped}: {item.verdict.reason}")
            failed.append(name)
            log.error("consumer did not converge", extra={"consumer": name, "reason": item.verdict.reason})
        return ConsumerOutcome(
            outcome.patched,
            outcome.current,
            tuple(warnings),
            tuple(failures),
            tuple(failed),
            verified=tuple(verified),
            reannotated=tuple(again),
        )
