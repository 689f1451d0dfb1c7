from __future__ import annotations

import threading
import time

import pytest

from jobs.core.errors import Permanent, Transient
from jobs.core.retry import Deadline, RetryPolicy


class Flaky:
    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_transient_errors_are_retried_until_success() -> None:
    flaky = Flaky(2, Transient("kc", "503"))
    assert RetryPolicy(initial_wait=0.01).call(flaky) == "ok"
    assert flaky.calls == 3


def test_permanent_errors_are_not_retried() -> None:
    flaky = Flaky(1, Permanent("kc", "400"))
    with pytest.raises(Permanent):
        RetryPolicy(initial_wait=0.01).call(flaky)
    assert flaky.calls == 1


def test_attempts_are_bounded() -> None:
    flaky = Flaky(10, Transient("kc", "503"))
    with pytest.raises(Transient):
        RetryPolicy(attempts=3, initial_wait=0.01).call(flaky)
    assert flaky.calls == 3


def test_retry_after_is_honoured() -> None:
    flaky = Flaky(1, Transient("akv", "429", retry_after=0.4))
    started = time.monotonic()
    RetryPolicy(initial_wait=0.01).call(flaky)
    assert time.monotonic() - started >= 0.4


def test_no_wait_outlives_the_deadline() -> None:
    flaky = Flaky(5, Transient("akv", "429", retry_after=30))
    started = time.monotonic()
    with pytest.raises(Transient):
        RetryPolicy(deadline=Deadline(1.0)).call(flaky)
    assert time.monotonic() - started < 1.0
    assert flaky.calls == 1


def test_sigterm_cuts_a_backoff_short() -> None:
    interrupt = threading.Event()
    flaky = Flaky(5, Transient("akv", "503", retry_after=20))
    threading.Timer(0.2, interrupt.set).start()
    started = time.monotonic()
    with pytest.raises(Transient):
        RetryPolicy(interrupt=interrupt).call(flaky)
    assert time.monotonic() - started < 5
    assert flaky.calls <= 2


def test_deadline_cap_and_expiry_use_the_injected_clock() -> None:
    now = [100.0]
    deadline = Deadline(10, clock=lambda: now[0])
    assert deadline.cap(30) == 10
    now[0] = 109.0
    assert deadline.cap(30) == pytest.approx(1.0)
    assert not deadline.expired()
    now[0] = 111.0
    assert deadline.expired()
    assert Deadline(None).remaining() is None


def test_parse_retry_after_reads_seconds_milliseconds_and_http_dates() -> None:
    from email.utils import formatdate

    from jobs.core.retry import parse_retry_after

    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("1500", unit=0.001) == 1.5
    assert parse_retry_after("-3") == 0.0
    in_ten = parse_retry_after(formatdate(time.time() + 10, usegmt=True))
    assert in_ten is not None and 8 <= in_ten <= 10
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
