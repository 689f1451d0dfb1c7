"""The requests a run sent, by system and status class: counted at the one place each client sends
(every attempt, retries included; a request that got no answer counts as `error`), read once at the end
for the run's metrics (docs/design.md#metrics-and-events). Standard library only; thread-safe."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Final, Protocol, TypeVar


class Answer(Protocol):
    @property
    def status_code(self) -> int: ...


A = TypeVar("A", bound=Answer)

ERROR: Final = "error"  # no HTTP answer: refused, timed out, TLS, name resolution
_lock = threading.Lock()
_counts: Counter[tuple[str, str]] = Counter()


def status_class(status: int | None) -> str:
    """`2xx`, `4xx`, `5xx`, ... for an HTTP status; `error` when there was no answer."""
    if status is None or not 100 <= status <= 599:
        return ERROR
    return f"{status // 100}xx"


def record(system: str, status: int | None) -> None:
    """One request sent to `system` and its HTTP status (None: no answer)."""
    key = (system, status_class(status))
    with _lock:
        _counts[key] += 1


def counted(system: str, send: Callable[[], A]) -> A:
    """`send()` once, recorded with its status, or as `error` when it raised (then re-raised)."""
    try:
        answer = send()
    except Exception:
        record(system, None)
        raise
    record(system, answer.status_code)
    return answer


def snapshot() -> dict[tuple[str, str], int]:
    """(system, status class) -> requests so far."""
    with _lock:
        return dict(_counts)


def reset() -> None:
    """For test processes, which run many jobs in one interpreter (a job counts for its whole life)."""
    with _lock:
        _counts.clear()
