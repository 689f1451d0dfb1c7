"""Bounded concurrency for the per-entry phases, and the periodic progress record.

`map_bounded` runs a function over items on at most `concurrency` threads and returns the results in
the items' order, so a summary reads the same whatever the concurrency. The function itself decides
whether an item still starts (SIGTERM, deadline): queued items then return at once, in-flight ones
finish. `Progress` logs done/total/failed and the rate every 10 s or every 10 % of the entries,
whichever comes first, so a long run is never silent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
PROGRESS_SECONDS: Final = 10.0
PROGRESS_FRACTION: Final = 0.1


def map_bounded(items: Sequence[T], fn: Callable[[T], R], concurrency: int) -> list[R]:
    """`[fn(item) for item in items]` on at most `concurrency` threads, results in the items' order."""
    if concurrency <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(pool.map(fn, items))


class Progress:
    """Counts finished entries; logs a `progress` record every 10 s or 10 % (thread-safe)."""

    def __init__(
        self,
        job: str,
        total: int,
        clock: Callable[[], float] = time.monotonic,
        every_seconds: float = PROGRESS_SECONDS,
    ) -> None:
        self._job = job
        self._total = total
        self._clock = clock
        self._every = every_seconds
        self._step = max(1, int(total * PROGRESS_FRACTION))
        self._lock = threading.Lock()
        self._started = self._last = clock()
        self.done = 0
        self.failed = 0

    def tick(self, failed: bool) -> None:
        with self._lock:
            self.done += 1
            self.failed += int(failed)
            now = self._clock()
            if self.done % self._step and self.done != self._total and now - self._last < self._every:
                return
            self._last = now
            elapsed = now - self._started
            fields = {
                "job": self._job,
                "done": self.done,
                "total": self._total,
                "failed": self.failed,
                "rate_per_second": round(self.done / elapsed, 1) if elapsed > 0 else None,
            }
        log.info("progress", extra=fields)
