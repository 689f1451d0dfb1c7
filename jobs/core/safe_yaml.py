"""Hardened YAML reading, shared by the catalog and the checks (docs/design.md#the-catalog, #checks).

The files read here come from people and pipelines, so nothing in them may knock the process over:

- only regular files are opened (a FIFO, a device or a directory is refused before any read), and at
  most `MAX_BYTES` are read;
- bytes that are not UTF-8 are named by their offset, never shown;
- explicit tags (`!!int`, `!!python/...`, `!custom`) are refused: the data is plain YAML values only;
- nesting deeper than `MAX_DEPTH`, recursive aliases, and more than `MAX_NODES` values once aliases
  are expanded (an "alias bomb") are refused while composing, before anything walks the tree;
- mapping keys are plain scalars, kept as their text, and a key repeated in one mapping is an error
  that names both lines (YAML says keys are unique; PyYAML would silently keep the last one).

Every message says where (a line) and what, and never quotes the input: a value may be a secret.
"""

from __future__ import annotations

import re
from typing import Any, Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

# Reading the file (regular files only, size, UTF-8) lives in jobs.core.safe_read; re-exported here.
from jobs.core.safe_read import (
    MAX_BYTES,
    YamlInputError,
    YamlProblem,
    decode,
    read_bytes,
    read_text,
    too_large,
)

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_SHOWN_PROBLEMS",
    "LineDict",
    "LineList",
    "YamlInputError",
    "YamlProblem",
    "compose_all",
    "decode",
    "load",
    "load_all",
    "read_bytes",
    "read_text",
    "shown_key",
    "yaml_error_line",
    "yaml_problem",
]

MAX_DEPTH: Final = 100
MAX_NODES: Final = 250_000
MAX_SHOWN_PROBLEMS: Final = 50

_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_QUOTED: Final = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# Keys shown in messages: identifiers as people type them. Base64-like text (`+`, `=`) or anything with
# control characters, spaces or quotes is not shown: it may be a value pasted where a key belongs.
_SHOWN_KEY: Final = re.compile(r"[A-Za-z0-9_.$@/<>-]{1,64}")


class LineDict(dict[str, Any]):
    """A YAML mapping that remembers the 1-based line it starts on and the line of each key."""

    line: int = 1
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A YAML sequence that remembers the 1-based line it starts on and the line of each item."""

    line: int = 1
    lines: list[int]

    def line_of(self, index: int) -> int:
        return self.lines[index] if 0 <= index < len(self.lines) else self.line


def shown_key(key: str) -> str:
    """A mapping key as it may appear in a message: short, plain keys as themselves; anything else
    (control characters, spaces, long text that might be a value pasted in the wrong place) is not
    shown."""
    return f"`{key}`" if _SHOWN_KEY.fullmatch(key) else "(a key not shown: unusual characters or length)"


def yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's complaint without the text it quotes: for `*x` or `!x` it names the token it found,
    which may be a secret from a values file or a fixture. A tab keeps its hint."""
    if isinstance(exc, yaml.reader.ReaderError):
        return f"character U+{exc.character:04X} is not allowed in YAML text (a control character)"
    problem = str(getattr(exc, "problem", None) or "parse error")
    if "'\\t'" in problem:
        return "found a tab character that cannot start any token (YAML indents with spaces, never tabs)"
    return _QUOTED.sub("'...'", problem)


def yaml_error_line(exc: yaml.YAMLError, text: str = "") -> int:
    """The 1-based line the parser stopped at (1 when it does not say)."""
    if isinstance(exc, yaml.reader.ReaderError):
        return text.count("\n", 0, exc.position) + 1
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else 1


class _Refused(yaml.YAMLError):
    """Raised from inside the loader; carries a message that quotes nothing."""

    def __init__(self, node_or_mark: Any, message: str) -> None:
        mark = getattr(node_or_mark, "start_mark", node_or_mark)
        super().__init__(message)
        self.line = mark.line + 1 if mark is not None else 1
        self.message = message


_KINDS: Final = {
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:bool": "true/false",
}


class _Loader(yaml.SafeLoader):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._nodes = 0
        self._aliased = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values it expands to; absent while composing
        self.duplicates: list[YamlProblem] = []

    def compose_document(self) -> Node | None:
        self._sizes = {}
        return super().compose_document()

    def _count(self, amount: int, mark: Any, aliased: bool) -> None:
        self._nodes += amount
        if aliased:
            self._aliased += amount
        if self._nodes > MAX_NODES:
            how = " once aliases are expanded (an alias bomb?)" if self._aliased else ""
            raise _Refused(mark, f"more than {MAX_NODES} values{how}: refused")

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:
                    raise _Refused(event.start_mark, "an alias refers to a node that contains it (recursive)")
                self._count(size, event.start_mark, aliased=True)
            return super().compose_node(parent, index)
        if getattr(event, "tag", None) is not None:
            raise _Refused(
                event.start_mark,
                "explicit YAML tags (`!!int`, `!!python/...`, `!name`) are not allowed: "
                "write a plain value, quoted if it must stay text",
            )
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(event.start_mark, f"nested deeper than {MAX_DEPTH} levels: refused")
        before = self._nodes
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._count(1, event.start_mark, aliased=False)
        self._sizes[id(node)] = self._nodes - before
        return node

    def compose_mapping_node(self, anchor: dict[Any, Node]) -> MappingNode:
        node = super().compose_mapping_node(anchor)
        first: dict[str, int] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode):
                raise _Refused(key, "a mapping key must be a plain value, not a list or a mapping")
            if key.tag == _MERGE_TAG:
                continue
            line = key.start_mark.line + 1
            if key.value in first:
                self.duplicates.append(
                    YamlProblem(
                        line, f"duplicate key {shown_key(key.value)} (first at line {first[key.value]})"
                    )
                )
            else:
                first[key.value] = line
        return node

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, TypeError):
            kind = _KINDS.get(node.tag, "a special value")
            raise _Refused(
                node, f"YAML reads this unquoted value as {kind} but cannot convert it: put it in quotes"
            ) from None


def _construct_mapping(loader: _Loader, node: MappingNode) -> LineDict:
    loader.flatten_mapping(node)  # `<<` merge keys; explicit keys after them win
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)

# libyaml's scanner and parser, in PyYAML's wheels; absent when PyYAML was built without it.
_CParser: Final[Any] = getattr(getattr(yaml, "_yaml", None), "CParser", None)


class _FastLoader(_Loader):
    """The same loader with libyaml turning the text into events (about 4x faster on a large catalog):
    composing and constructing stay in Python, under the same rules."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._events = _CParser(text)

    def check_event(self, *choices: Any) -> bool:
        return bool(self._events.check_event(*choices))

    def peek_event(self) -> Any:
        return self._events.peek_event()

    def get_event(self) -> Any:
        return self._events.get_event()


def _input_error(exc: yaml.YAMLError, text: str) -> YamlInputError:
    if isinstance(exc, _Refused):
        return YamlInputError([YamlProblem(exc.line, exc.message)])
    return YamlInputError([YamlProblem(yaml_error_line(exc, text), f"not valid YAML: {yaml_problem(exc)}")])


def _documents(text: str, construct: bool) -> list[Any]:
    if len(text) > MAX_BYTES:  # text that did not come through read_text (a ConfigMap value, a test)
        raise too_large(len(text.encode("utf-8", "surrogatepass")))
    if _CParser is not None:
        try:
            return _parse(_FastLoader, text, construct)
        except YamlInputError:
            pass  # the pure parser decides what is wrong, in the words and lines it always used
    return _parse(_Loader, text, construct)


def _parse(kind: type[_Loader], text: str, construct: bool) -> list[Any]:
    documents: list[Any] = []
    loader: _Loader | None = None
    try:
        loader = kind(text)  # the reader refuses control characters right here
        while loader.check_node():
            node = loader.get_node()
            if loader.duplicates:
                raise YamlInputError(loader.duplicates)
            documents.append(loader.construct_document(node) if construct else node)
    except yaml.YAMLError as exc:
        raise _input_error(exc, text) from None
    except RecursionError:
        raise YamlInputError([YamlProblem(1, "nested too deeply: refused")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return documents


def load(text: str) -> Any:
    """The single document of `text` (None when empty): mappings are LineDicts, sequences LineLists."""
    documents = _documents(text, construct=True)
    if len(documents) > 1:
        raise YamlInputError([YamlProblem(1, "expected one YAML document, found several (`---`)")])
    return documents[0] if documents else None


def load_all(text: str) -> list[Any]:
    """Every document of a multi-document stream, constructed (empty documents included as None)."""
    return _documents(text, construct=True)


def compose_all(text: str) -> list[Node]:
    """Every document as a node tree (for walking scalars with their lines), under the same limits."""
    return [node for node in _documents(text, construct=False) if node is not None]
