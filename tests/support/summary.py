"""Reading a job's JSON summary: JSON lines on stdout, one `entry` record per listed entry, then the
`summary` record (always last) with the counts and the exit code."""

from __future__ import annotations

import json
from typing import Any


def read_summary(stdout: str) -> dict[str, Any]:
    """The final `summary` record, with the `entry` records before it gathered under "entries"."""
    records = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    if not records or records[-1].get("record") != "summary":
        raise ValueError(f"stdout does not end with a summary record: {stdout[-500:]!r}")
    summary = dict(records[-1])
    summary["entries"] = [r for r in records[:-1] if r.get("record") == "entry"]
    return summary
