"""The per-entry loop: bounded concurrency with results in catalog order, SIGTERM and the deadline
(in-flight entries finish, the rest are reported as not started, each stop named for what it is),
and the periodic progress record."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from jobs.core.catalog import SecretEntry, load_catalog
from jobs.core.model import Action, EntryResult, RunReport, StopReason
from jobs.core.pool import Progress
from jobs.core.retry import Deadline, RetryPolicy
from jobs.core.runner import RunContext, process_entries

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def context(deadline: Deadline | None = None) -> RunContext[None]:
    catalog = load_catalog(EXAMPLE)
    interrupt = threading.Event()
    deadline = deadline or Deadline(None)
    return RunContext(
        job="vault-bootstrap",
        options=None,
        catalog=catalog,
        entries=catalog.secrets,
        log_format="json",
        dry_run=False,
        deadline=deadline,
        interrupt=interrupt,
        retry=RetryPolicy(deadline=deadline, interrupt=interrupt),
    )


def test_entries_run_at_most_concurrency_at_once_and_report_in_catalog_order() -> None:
    ctx = context()
    assert len(ctx.entries) >= 5
    lock = threading.Lock()
    running, peak = 0, 0
    first_three = threading.Barrier(3, timeout=5)  # proves three entries really run at once

    def handle(entry: SecretEntry) -> EntryResult:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        if entry in ctx.entries[:3]:
            first_three.wait()
        # the first entries take longest: they finish last, yet are reported first
        time.sleep(0.2 if entry is ctx.entries[0] else 0.05)
        with lock:
            running -= 1
        return EntryResult(entry.name, Action.UNCHANGED)

    report = process_entries(ctx, ctx.entries, handle, concurrency=3)
    assert peak == 3
    assert [r.name for r in report.results] == [e.name for e in ctx.entries]
    assert not report.interrupted


def test_sigterm_lets_in_flight_entries_finish_and_starts_no_other() -> None:
    ctx = context()
    started: list[str] = []
    both_started = threading.Barrier(2, timeout=5)

    def handle(entry: SecretEntry) -> EntryResult:
        started.append(entry.name)
        both_started.wait()  # two entries in flight when SIGTERM arrives
        ctx.interrupt.set()
        time.sleep(0.05)
        return EntryResult(entry.name, Action.WRITTEN, vault_version=1)

    report = process_entries(ctx, ctx.entries, handle, concurrency=2)
    actions = [r.action for r in report.results]
    assert actions[:2] == [Action.WRITTEN, Action.WRITTEN]  # in flight: finished
    assert set(actions[2:]) == {Action.SKIPPED}
    assert {r.reason for r in report.results[2:]} == {"not started: interrupted by SIGTERM"}
    assert len(started) == 2
    assert report.stopped_by is StopReason.SIGTERM and report.exit_code == 1


def test_a_deadline_stop_is_reported_as_the_deadline_not_as_sigterm() -> None:
    clock = Clock()
    ctx = context(Deadline(10, clock=clock))

    def handle(entry: SecretEntry) -> EntryResult:
        clock.now = 11  # the first entry uses up the run's time
        return EntryResult(entry.name, Action.UNCHANGED)

    report = process_entries(ctx, ctx.entries, handle, concurrency=1)
    assert report.results[0].action is Action.UNCHANGED
    assert {r.reason for r in report.results[1:]} == {"not started: run deadline reached"}
    assert report.stopped_by is StopReason.DEADLINE


def test_an_entry_that_raises_fails_alone_under_concurrency() -> None:
    ctx = context()

    def handle(entry: SecretEntry) -> EntryResult:
        if entry is ctx.entries[1]:
            raise RuntimeError("boom")
        return EntryResult(entry.name, Action.UNCHANGED)

    report = process_entries(ctx, ctx.entries, handle, concurrency=4)
    assert [r.action for r in report.results].count(Action.FAILED) == 1
    assert report.results[1].action is Action.FAILED


def progress_records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int, int]]:
    return [
        (r.__dict__["done"], r.__dict__["total"], r.__dict__["failed"])
        for r in caplog.records
        if r.getMessage() == "progress"
    ]


def test_progress_is_logged_every_ten_percent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    progress = Progress("vault-bootstrap", 100, clock=Clock())
    for n in range(100):
        progress.tick(failed=n < 3)
    assert [d for d, _, _ in progress_records(caplog)] == list(range(10, 101, 10))
    assert progress_records(caplog)[-1] == (100, 100, 3)


def test_progress_is_logged_every_ten_seconds_on_a_slow_run(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    progress = Progress("client-patcher", 1000, clock=clock)
    progress.tick(failed=False)
    clock.now = 10.5
    progress.tick(failed=False)
    records = [r for r in caplog.records if r.getMessage() == "progress"]
    assert [(r.__dict__["done"], r.__dict__["rate_per_second"]) for r in records] == [(2, 0.2)]


def test_a_crash_outside_the_entry_loop_under_json_is_json_on_both_streams(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from jobs.core.flags import JobParser, add_common_arguments
    from jobs.core.runner import run_main

    parser = JobParser(prog="vault-bootstrap")
    add_common_arguments(parser)

    def crash(ctx: RunContext[None]) -> RunReport:
        raise RuntimeError("boom")

    code = run_main("vault-bootstrap", parser, ["--catalog", str(EXAMPLE), "--log-format", "json"], crash)
    out, err = capsys.readouterr()
    assert code == 1
    assert [json.loads(line)["message"] for line in err.splitlines()][-1] == "run failed"
    assert json.loads(out.splitlines()[-1])["exit_code"] == 1


def test_a_usage_error_under_json_is_json_on_both_streams(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from jobs import vault_bootstrap

    with pytest.raises(SystemExit) as exited:
        vault_bootstrap.main(["--catalog", str(EXAMPLE), "--log-format", "json", "--concurrency", "x"])
    out, err = capsys.readouterr()
    assert exited.value.code == 2
    record = json.loads(err)
    assert "--concurrency" in record["error"] and record["level"] == "error"
    assert json.loads(out)["exit_code"] == 2
