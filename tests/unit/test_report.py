from __future__ import annotations

import json

from jobs.core.model import Action, EntryResult, ExitCode, RunReport, render_json, render_text


def report(*results: EntryResult, interrupted: bool = False) -> RunReport:
    return RunReport(job="client-patcher", results=results, interrupted=interrupted)


def test_exit_code_is_derived_from_the_results() -> None:
    assert (
        report(EntryResult("a", Action.WRITTEN), EntryResult("b", Action.SKIPPED)).exit_code
        is ExitCode.CONVERGED
    )
    assert report(EntryResult("a", Action.WRITTEN), EntryResult("b", Action.FAILED, "x")).exit_code == 1
    assert report(EntryResult("a", Action.UNCHANGED), interrupted=True).exit_code == 1


def test_json_summary_is_one_object_with_counts() -> None:
    payload = json.loads(
        render_json(
            report(EntryResult("a", Action.WRITTEN, vault_version=3), EntryResult("b", Action.FAILED, "boom"))
        )
    )
    assert payload["counts"] == {"written": 1, "unchanged": 0, "seeded-fixture": 0, "skipped": 0, "failed": 1}
    assert payload["exitCode"] == 1
    assert payload["entries"][0] == {"name": "a", "action": "written", "reason": "", "vaultVersion": 3}


def test_text_summary_lists_every_entry_and_the_counts() -> None:
    text = render_text(report(EntryResult("a", Action.UNCHANGED, warnings=("force-sync will be ignored",))))
    assert text.splitlines()[2].split() == ["a", "unchanged", "-"]
    assert "warning: force-sync will be ignored" in text
    assert text.splitlines()[-1] == "written=0 unchanged=1 seeded-fixture=0 skipped=0 failed=0 exit=0"
