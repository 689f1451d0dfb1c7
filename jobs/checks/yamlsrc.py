"""YAML documents with line numbers, so every finding can say `file:line`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from jobs.core.catalog import yaml_error_line, yaml_problem
from jobs.core.errors import ConfigError

YAML_SUFFIXES: Final = (".yaml", ".yml")


class LineDict(dict[str, Any]):
    """A YAML mapping that remembers the 1-based line it starts on and the line of each key."""

    line: int = 1
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[str(key)] = loader.construct_object(value_node, deep=True)
        result.key_lines[str(key)] = key_node.start_mark.line + 1
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_problem(path: str, exc: yaml.YAMLError) -> ConfigError:
    return ConfigError(f"{path}:{yaml_error_line(exc)}: not valid YAML: {yaml_problem(exc)}")


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{path}: cannot read: {reason}") from None


def load_documents(text: str, path: str) -> list[Any]:
    """Every document of a multi-document YAML stream (empty documents dropped)."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_LineLoader) if doc is not None]
    except yaml.YAMLError as exc:
        raise _yaml_problem(path, exc) from None


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
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise _yaml_problem(path, exc) from None
    for document in documents:
        if document is not None:
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
