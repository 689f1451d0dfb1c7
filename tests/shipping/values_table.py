"""The chart README's values table, generated from the `# --` comments in values.yaml (helm-docs
style). `python -m tests.shipping.values_table` prints it; test_docs.py checks the README holds it."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "secret-origin"
BEGIN, END = "<!-- values-table:begin -->", "<!-- values-table:end -->"


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[part]
    return data


def rows(values_text: str) -> list[tuple[str, str, str]]:
    """(key, default, description) for every value that carries a `# --` comment."""
    data = yaml.safe_load(values_text)
    out: list[tuple[str, str, str]] = []
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in values_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped[4:].strip()]
            continue
        if stripped.startswith("#") and comment:
            comment.append(stripped[1:].strip())
            continue
        match = re.match(r"^(\s*)([A-Za-z][\w-]*):", line)
        if not match:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = ".".join([*(k for _, k in stack), match.group(2)])
        stack.append((indent, match.group(2)))
        if comment:
            default = json.dumps(_lookup(data, key), separators=(", ", ": "))
            out.append((key, default, " ".join(comment)))
            comment = []
    return out


def table(values_text: str) -> str:
    lines = ["| key | default | description |", "|---|---|---|"]
    for key, default, description in rows(values_text):
        cell = default.replace("|", "\\|")
        text = description.replace("|", "\\|")
        lines.append(f"| `{key}` | `{cell}` | {text} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(table((CHART / "values.yaml").read_text(encoding="utf-8")) + "\n")
