"""SARIF 2.1.0 for `secret-origin check`, so CI systems can annotate pull requests.

Shape per the OASIS SARIF 2.1.0 schema (tests validate against the official schema): one run whose
`tool.driver.rules` lists every rule (id, name, short/full description, help = the fix, default level)
and whose `results` point at `ruleId`/`ruleIndex` with a physical location (`uri` + `region.startLine`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from jobs.checks.rules import RULES, Finding

SCHEMA_URI: Final = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
TOOL_NAME: Final = "secret-origin"


def artifact_uri(file: str, base: Path) -> str:
    """A relative URI (POSIX separators) when the file is under `base`, else an absolute file URI."""
    path = Path(file)
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_uri()


def _rule_descriptor(index: int) -> dict[str, Any]:
    rule = RULES[index]
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": f"{rule.summary} Fix: {rule.fix}"},
        "help": {"text": rule.fix},
        "defaultConfiguration": {"level": rule.level.value},
    }


def to_sarif(findings: Sequence[Finding], base: Path, version: str = "0.1.0") -> dict[str, Any]:
    index_of = {rule.id: n for n, rule in enumerate(RULES)}
    results = [
        {
            "ruleId": f.rule.id,
            "ruleIndex": index_of[f.rule.id],
            "level": f.level.value,
            "message": {"text": f"{f.message}. Fix: {f.rule.fix}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": artifact_uri(f.file, base)},
                        "region": {"startLine": max(f.line, 1)},
                    }
                }
            ],
        }
        for f in findings
    ]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": version,
                        "rules": [_rule_descriptor(n) for n in range(len(RULES))],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render_sarif(findings: Sequence[Finding], base: Path) -> str:
    return json.dumps(to_sarif(findings, base), indent=2)
