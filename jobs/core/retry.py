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

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_random_exponential

from jobs.core.errors import Transient

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


@dataclass
class RetryPolicy:
    deadline: Deadline = field(default_factory=lambda: Deadline(None))
    interrupt: threading.Event = field(default_factory=threading.Event)
    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 30.0

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

    def call(self, fn: Callable[[], T]) -> T:
        retrying = Retrying(
            retry=retry_if_exception_type(Transient),
            wait=self._wait,
            stop=self._stop,
            before_sleep=self._log,
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(fn)
