"""YAML documents with line numbers, so every finding can say `file:line`.

Values files and rendered manifests are read under the catalog's limits (jobs.core.safe_yaml): regular
files only, at most 4 MiB, UTF-8, no explicit tags, bounded nesting and alias expansion, no duplicate
keys. A refusal is a ConfigError naming the file and line; it never quotes the file's text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from jobs.core import safe_yaml
from jobs.core.errors import ConfigError
from jobs.core.safe_yaml import LineDict, YamlInputError

__all__ = ["YAML_SUFFIXES", "LineDict", "Scalar", "iter_scalars", "load_documents", "read_text", "yaml_files"]

YAML_SUFFIXES: Final = (".yaml", ".yml")


def _config_error(path: str, exc: YamlInputError) -> ConfigError:
    problems = exc.problems[: safe_yaml.MAX_SHOWN_PROBLEMS]
    lines = [f"{path}:{p.line}: {p.message}" for p in problems]
    if len(exc.problems) > len(problems):
        lines.append(f"… and {len(exc.problems) - len(problems)} more")
    return ConfigError("\n".join(lines))


def read_text(path: Path) -> str:
    try:
        return safe_yaml.read_text(path)
    except YamlInputError as exc:
        raise _config_error(str(path), exc) from None


def load_documents(text: str, path: str) -> list[Any]:
    """Every document of a multi-document YAML stream (empty documents dropped)."""
    try:
        return [doc for doc in safe_yaml.load_all(text) if doc is not None]
    except YamlInputError as exc:
        raise _config_error(path, exc) from None


@dataclass(frozen=True)
class Scalar:
    """One scalar value of a YAML file: where it is and under which key path. The value itself is kept
    only in memory for comparison and never rendered."""

    line: int
    key_path: str
    value: str


def iter_scalars(text: str, path: str) -> Iterator[Scalar]:
    """Every scalar *value* (not key) of every document, with its line and dotted key path."""
    try:
        documents = safe_yaml.compose_all(text)
    except YamlInputError as exc:
        raise _config_error(path, exc) from None
    for document in documents:
        yield from _walk(document, "")


def _walk(node: yaml.Node, prefix: str) -> Iterator[Scalar]:
    if isinstance(node, yaml.ScalarNode):
        yield Scalar(node.start_mark.line + 1, prefix or "(document)", str(node.value))
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            yield from _walk(value, f"{prefix}.{name}" if prefix else name)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, f"{prefix}[{index}]")


def yaml_files(directory: Path) -> list[Path]:
    """The YAML files under `directory`, recursively, in a stable order."""
    if directory.is_file():
        return [directory]
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such directory")
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)
