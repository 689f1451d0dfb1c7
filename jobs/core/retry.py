"""The one retry policy (tenacity), bounded by the run's deadline and interruptible by SIGTERM.

Only `Transient` errors are retried; backoff is exponential with full jitter; a server's
`Retry-After` wins over the computed wait; no wait is started that would outlive the deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_random_exponential

from jobs.core.errors import ClientError, Transient, Unavailable, Unreachable

log = logging.getLogger(__name__)
T = TypeVar("T")


def parse_retry_after(raw: str | None, *, unit: float = 1.0) -> float | None:
    """A Retry-After header value in seconds, for `Transient.retry_after`: a number (of `unit` seconds;
    0.001 for the `*-ms` variants) or an HTTP date. None when absent or unreadable; never negative."""
    if not raw:
        return None
    try:
        return max(0.0, float(raw) * unit)
    except (TypeError, ValueError):
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class Deadline:
    """An overall run deadline on the monotonic clock; `None` seconds means no deadline."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - self._clock())

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def cap(self, timeout: float) -> float:
        """A per-request timeout that never outlives the deadline (at least 0.1 s)."""
        remaining = self.remaining()
        return timeout if remaining is None else max(0.1, min(timeout, remaining))


class Breaker:
    """A circuit breaker for one system: after `threshold` consecutive transport failures (refused,
    name resolution, TLS, timeout) the system is given up on for the rest of the run. Every later call
    fails at once with one shared `Unavailable` reason, logged once when the breaker opens."""

    def __init__(self, system: str, target: str, threshold: int = 3) -> None:
        self.system = system
        self.target = target  # e.g. "Vault at https://vault.example:8200"
        self.threshold = threshold
        self._failures = 0
        self._open: Unavailable | None = None
        self._lock = threading.Lock()

    @property
    def open_error(self) -> Unavailable | None:
        return self._open

    def check(self) -> None:
        """Raise the shared reason when the breaker is open (the call is not tried)."""
        if self._open is not None:
            raise self._open

    def record(self, exc: BaseException | None) -> None:
        """After one attempt: None or any answer from the server closes the count; a transport failure
        counts, and the `threshold`-th in a row opens the breaker."""
        with self._lock:
            if not isinstance(exc, Unreachable):
                if exc is None or isinstance(exc, ClientError):
                    self._failures = 0
                return
            self._failures += 1
            if self._failures < self.threshold or self._open is not None:
                return
            cause = exc.cause or "unreachable"
            self._open = Unavailable(self.system, f"{self.target} unavailable: {cause}; not tried")
        log.error(
            "giving up on a system for this run",
            extra={"target": self.target, "cause": cause, "consecutive_failures": self.threshold},
        )


@dataclass
class RetryPolicy:
    deadline: Deadline = field(default_factory=lambda: Deadline(None))
    interrupt: threading.Event = field(default_factory=threading.Event)
    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 30.0
    request_timeout: float | None = None  # `--request-timeout`: overrides each client's own default

    def timeout(self, default: float) -> float:
        """One request's timeout: the client's default (or `--request-timeout`), capped by the deadline."""
        return self.deadline.cap(self.request_timeout or default)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Transient) and exc.retry_after is not None:
            return max(0.0, exc.retry_after)
        return float(wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait)(state))

    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.attempts or self.interrupt.is_set():
            return True
        remaining = self.deadline.remaining()
        return remaining is not None and (state.upcoming_sleep or 0.0) >= remaining

    def _log(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retrying after a transient error",
            extra={
                "attempt": f"{state.attempt_number}/{self.attempts}",
                "wait_seconds": round(state.upcoming_sleep or 0.0, 2),
                "error": str(exc),
            },
        )

    def _sleep(self, seconds: float) -> None:
        self.interrupt.wait(seconds)  # SIGTERM cuts a backoff short

    def call(self, fn: Callable[[], T], breaker: Breaker | None = None) -> T:
        """`fn` with retries; with a `breaker`, nothing is sent once it is open, and the attempt that
        opens it ends the retries with the shared `Unavailable` reason."""
        if breaker is not None:
            fn = _guarded(fn, breaker)
        retrying = Retrying(
            retry=retry_if_exception(_worth_retrying),
            wait=self._wait,
            stop=self._stop,
            before_sleep=self._log,
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(fn)


def _worth_retrying(exc: BaseException) -> bool:
    return isinstance(exc, Transient) and not isinstance(exc, Unavailable)


def _guarded(fn: Callable[[], T], breaker: Breaker) -> Callable[[], T]:
    def attempt() -> T:
        breaker.check()
        try:
            result = fn()
        except Exception as exc:
            breaker.record(exc)
            breaker.check()
            raise
        breaker.record(None)
        return result

    return attempt
