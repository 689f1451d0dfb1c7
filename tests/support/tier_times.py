"""Wall time per test tier (tests/<tier>/…), printed at the end of every pytest run, so `make test`
always says where its minutes go. Setup, call and teardown all count (a session fixture such as the
real Keycloak is charged to the tier of the first test that needs it)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import PurePosixPath

import pytest

_SECONDS: dict[str, float] = defaultdict(float)


def tier_of(nodeid: str) -> str:
    parts = PurePosixPath(nodeid.split("::", 1)[0]).parts
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else "top-level"


def record(report: pytest.TestReport) -> None:
    _SECONDS[tier_of(report.nodeid)] += report.duration


def write_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SECONDS:
        cells = ", ".join(f"{tier} {seconds:.0f} s" for tier, seconds in sorted(_SECONDS.items()))
        terminalreporter.write_line(f"time per tier: {cells}")
