"""`make demo` stays true: the demo boots the stack, runs both jobs twice and checks its own claims."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_runs_both_jobs_end_to_end_and_the_second_runs_change_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "emulators.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "demo OK" in out
    assert out.count("client-patcher summary") == 2
    assert out.count("vault-bootstrap summary") == 2
    assert "written=0 unchanged=4 seeded_fixture=0 skipped=0 failed=0 exit=0" in out
    assert "holds a real value; a fixture never overwrites it" in out
    assert "| `platform-app-master-client-secret` |" in out
    for value in ("platform_client_secret", "C1tr0n3lla!", "ghp_demo0000", "sk-ant-demo"):
        assert value not in out + done.stderr
