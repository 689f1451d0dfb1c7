from __future__ import annotations

import json
import re

from jobs.core.model import (
    Action,
    EntryResult,
    ExitCode,
    RunReport,
    StopReason,
    SummaryMode,
    render_json,
    render_text,
)
from tests.support.summary import read_summary

MAX_LINE = 16 * 1024
SNAKE = re.compile(r"[a-z][a-z0-9_]*")


def report(*results: EntryResult, interrupted: bool = False) -> RunReport:
    return RunReport(job="client-patcher", results=results, interrupted=interrupted)


def keys_of(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


def test_exit_code_is_derived_from_the_results() -> None:
    assert (
        report(EntryResult("a", Action.WRITTEN), EntryResult("b", Action.SKIPPED)).exit_code
        is ExitCode.CONVERGED
    )
    assert report(EntryResult("a", Action.WRITTEN), EntryResult("b", Action.FAILED, "x")).exit_code == 1
    assert report(EntryResult("a", Action.UNCHANGED), interrupted=True).exit_code == 1


def test_json_summary_is_one_record_per_listed_entry_then_the_counts() -> None:
    text = render_json(
        report(
            EntryResult("a", Action.WRITTEN, vault_version=3),
            EntryResult("b", Action.FAILED, "boom"),
            EntryResult("c", Action.UNCHANGED),
        )
    )
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["record"] for r in records] == ["entry", "entry", "summary"]
    assert records[0] == {
        "record": "entry",
        "job": "client-patcher",
        "entry": "a",
        "action": "written",
        "reason": "",
        "vault_version": 3,
    }
    summary = records[-1]
    assert summary["counts"] == {"written": 1, "unchanged": 1, "seeded_fixture": 0, "skipped": 0, "failed": 1}
    assert summary["exit_code"] == 1


def test_json_summary_at_5000_entries_has_no_line_over_16_kib() -> None:
    results = [EntryResult(f"entry-{n:05d}", Action.UNCHANGED, "Vault holds the value") for n in range(4990)]
    results += [
        EntryResult(f"bad-{n}", Action.FAILED, "read vault/data/x: cannot connect") for n in range(10)
    ]
    for mode in SummaryMode:
        text = render_json(report(*results), mode)
        assert max(len(line.encode()) for line in text.splitlines()) <= MAX_LINE
    changes = read_summary(render_json(report(*results)))
    assert len(changes["entries"]) == 10  # unchanged entries are counted, not listed
    assert changes["counts"]["unchanged"] == 4990
    assert len(read_summary(render_json(report(*results), SummaryMode.FULL))["entries"]) == 5000


def test_every_summary_key_is_snake_case() -> None:
    text = render_json(
        report(EntryResult("a", Action.SEEDED_FIXTURE, vault_version=1, warnings=("w",))), SummaryMode.FULL
    )
    keys = {k for line in text.splitlines() for k in keys_of(json.loads(line))}
    assert all(SNAKE.fullmatch(k) for k in keys), sorted(keys)


def test_text_summary_counts_quiet_unchanged_entries_unless_asked_for_all() -> None:
    text = render_text(
        report(
            EntryResult("a", Action.UNCHANGED),
            EntryResult("b", Action.WRITTEN, vault_version=2),
            EntryResult("c", Action.UNCHANGED, warnings=("the client secret expires in 2d",)),
        )
    )
    assert text.splitlines()[2].split() == ["b", "written", "v2"]
    assert text.splitlines()[3].split() == ["c", "unchanged", "-"]  # a warning is worth a line
    assert "warning: the client secret expires in 2d" in text
    assert "(1 unchanged entries not listed; --summary full lists them)" in text
    assert text.splitlines()[-1] == "written=1 unchanged=2 seeded_fixture=0 skipped=0 failed=0 exit=0"
    full = render_text(
        report(EntryResult("a", Action.UNCHANGED, warnings=("force-sync ignored",))), SummaryMode.FULL
    )
    assert full.splitlines()[2].split() == ["a", "unchanged", "-"]
    assert "warning: force-sync ignored" in full


def test_a_deadline_stop_a_sigterm_and_a_sealed_vault_read_differently() -> None:
    stopped = [RunReport("vault-bootstrap", (), interrupted=True, stopped_by=reason) for reason in StopReason]
    texts = [render_text(r).splitlines()[0] for r in stopped]
    assert "SIGTERM" in texts[0] and "DEADLINE" in texts[1] and "SEALED" in texts[2]
    read = [read_summary(render_json(r))["stopped_by"] for r in stopped]
    assert read == ["sigterm", "deadline", "sealed"]
