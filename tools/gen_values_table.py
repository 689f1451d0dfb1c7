"""The chart README's values table, generated from charts/secret-origin/values.schema.json: one row per
schema property that has a `description`, with its default from values.yaml. The schema is the one
source of the descriptions; tests/shipping/test_docs.py keeps the README's table equal to this output.

    python -m tools.gen_values_table           # print the table
    python -m tools.gen_values_table --write   # rewrite it in charts/secret-origin/README.md
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[1] / "charts" / "secret-origin"
BEGIN, END = "<!-- values-table:begin -->", "<!-- values-table:end -->"
_MISSING = object()


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A property's own keys over the definition its `$ref` names (the description stays its own)."""
    while "$ref" in node:
        target = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def rows(schema: dict[str, Any], values: dict[str, Any]) -> Iterator[tuple[str, Any, str]]:
    """(dotted key, default or _MISSING, description) in schema order. Recurses into a property's own
    properties only where values.yaml gives it a non-empty mapping (so the catalog, whose keys are
    documented in docs/catalog-reference.md, stays one row). _MISSING: no default in values.yaml, or a
    mapping whose keys have rows of their own."""

    def walk(node: dict[str, Any], default: Any, prefix: str) -> Iterator[tuple[str, Any, str]]:
        for key, declared in node.get("properties", {}).items():
            child = _resolve(declared, schema)
            value = default.get(key, _MISSING) if isinstance(default, dict) else _MISSING
            path = f"{prefix}{key}"
            below = list(walk(child, value, f"{path}.")) if isinstance(value, dict) and value else []
            if "description" in child:
                # A mapping whose keys have rows of their own shows its defaults there.
                yield path, _MISSING if below else value, " ".join(child["description"].split())
            yield from below

    yield from walk(schema, values, "")


def table(schema: dict[str, Any], values: dict[str, Any]) -> str:
    lines = ["| key | default | description |", "|---|---|---|"]
    for key, default, description in rows(schema, values):
        shown = "" if default is _MISSING else json.dumps(default, separators=(", ", ": "))
        cell = f"`{shown}`".replace("|", "\\|") if shown else "—"
        text = description.replace("|", "\\|")
        lines.append(f"| `{key}` | {cell} | {text} |")
    return "\n".join(lines)


def load(chart: Path = CHART) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = json.loads((chart / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
    return schema, values


def current_table(chart: Path = CHART) -> str:
    return table(*load(chart))


def with_table(readme: str, generated: str) -> str:
    start = readme.index(BEGIN) + len(BEGIN)
    end = readme.index(END)
    return f"{readme[:start]}\n{generated}\n{readme[end:]}"


def main(argv: list[str]) -> int:
    generated = current_table()
    if argv == ["--write"]:
        readme = CHART / "README.md"
        readme.write_text(with_table(readme.read_text(encoding="utf-8"), generated), encoding="utf-8")
        return 0
    if argv:
        sys.stderr.write("usage: python -m tools.gen_values_table [--write]\n")
        return 2
    sys.stdout.write(generated + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
