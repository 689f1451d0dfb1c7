"""The catalog: the classification matrix as code (docs/design.md#the-catalog).

`load_catalog(path)` parses and validates one YAML file and raises `CatalogError` carrying every
problem at once, each naming the file, the line of the offending key, the entry (index and name) and
the field. Unknown keys are errors, so a typo can never be silently ignored. The file is read by
`jobs.core.safe_yaml` (regular files, size, UTF-8, tags, nesting, aliases, duplicate keys); names and
free text refuse control characters, and nothing from the file that could be a secret or forge a
`file:line:` line is printed. Nothing here performs network I/O.

`load_catalog(path, key)` reads the catalog out of a Helm values file instead (one copy in a GitOps
repository): `key` is a dotted path to a mapping (the chart's inline catalog) or to a YAML string (a
`key: |` block, as `--set-file` would pass). Line numbers stay the values file's: a mapping's are its
own, a literal block's are offset by the block's start; a quoted or folded string's cannot be mapped,
so its problems name the key's line.

The model lives in `jobs.core.catalog_model` (its text rules in `jobs.core.catalog_text`, the origin
rules in `jobs.core.catalog_origin`), the problems and the rules spanning entries in
`jobs.core.catalog_problems`; all are re-exported here, so callers import only this module. The model
(pydantic) loads when a catalog is validated, not when this module is imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from jobs.core import safe_yaml
from jobs.core.catalog_check import schema_errors
from jobs.core.catalog_origin import Origin, origin_problems
from jobs.core.catalog_problems import (
    MAX_PRINTED_PROBLEMS,
    CatalogError,
    Problem,
    cross_entry_problems,
    entry_lines,
    fixtures_line,
    validation_problems,
)
from jobs.core.catalog_text import NAME_PATTERN, PRODUCTION, has_control_characters, is_valid_name
from jobs.core.safe_yaml import LineDict, YamlInputError, yaml_error_line, yaml_problem

if TYPE_CHECKING:
    from jobs.core.catalog_model import (
        AzureKeyVaultConfig,
        Catalog,
        Consumer,
        Fixtures,
        KeycloakConfig,
        KeycloakSource,
        Rotation,
        SecretEntry,
        VaultConfig,
    )

__all__ = [
    "MAX_PRINTED_PROBLEMS",
    "NAME_PATTERN",
    "PRODUCTION",
    "AzureKeyVaultConfig",
    "Catalog",
    "CatalogError",
    "Consumer",
    "Fixtures",
    "KeycloakConfig",
    "KeycloakSource",
    "Origin",
    "Problem",
    "Rotation",
    "SecretEntry",
    "VaultConfig",
    "has_control_characters",
    "is_valid_name",
    "load_catalog",
    "origin_problems",
    "parse_catalog",
    "yaml_error_line",
    "yaml_problem",
]

# The model's classes, re-exported from jobs.core.catalog_model when first used: importing this module
# (and reading a file the YAML reader refuses) does not load pydantic (instant exit 2).
_MODEL: Final = frozenset(
    {
        "AzureKeyVaultConfig",
        "Catalog",
        "Consumer",
        "Fixtures",
        "KeycloakConfig",
        "KeycloakSource",
        "Rotation",
        "SecretEntry",
        "VaultConfig",
    }
)


def __getattr__(name: str) -> Any:
    if name in _MODEL:
        from jobs.core import catalog_model

        return getattr(catalog_model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# One key of a `--catalog-key` path: a plain Helm values key (no dots, quotes or spaces).
_KEY_PART: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class _Where:
    """Where a catalog sits in its file: the whole file, or under `key` of a Helm values file."""

    key: str = ""
    offset: int = 0  # added to the catalog's own lines (a literal block string starts further down)
    fixed_line: int | None = None  # every problem on this line (a string whose lines cannot be mapped)

    def line(self, line: int) -> int:
        return self.fixed_line if self.fixed_line is not None else line + self.offset

    def problem(self, problem: Problem) -> Problem:
        location = problem.location
        if self.key:
            sep = " " if location.startswith("(") else "."
            location = f"{self.key}{sep}{location}"
        return Problem(location, problem.message, self.line(problem.line))


def _refused(path: str, where: _Where, problems: list[Problem], *, ordered: bool = True) -> CatalogError:
    moved = [where.problem(p) for p in problems]
    if ordered:
        moved = sorted(set(moved), key=lambda p: (p.line, p.location, p.message))
    return CatalogError(path, moved)


def _model_errors(raw: Any) -> list[dict[str, Any]]:
    from pydantic import ValidationError

    from jobs.core.catalog_model import Catalog

    try:
        Catalog.model_validate(raw)
    except ValidationError as exc:
        return [dict(e) for e in exc.errors(include_url=False, include_input=False)]
    return []


def _validate(raw: Any, path: str, where: _Where) -> Catalog:
    if not isinstance(raw, dict):
        top = Problem("(top level)", "must be a mapping with environment, secrets, ...")
        raise _refused(path, where, [top])
    # The schema is checked without pydantic first, so a refused catalog exits 2 at once; only a
    # catalog found valid loads the model (which reports its own errors should it still refuse).
    errors = schema_errors(raw)
    if errors is None:  # something the checker does not model: the model tells
        errors = _model_errors(raw)
    problems = validation_problems(errors, raw) + cross_entry_problems(raw)
    if problems:
        raise _refused(path, where, problems)
    from pydantic import ValidationError

    from jobs.core.catalog_model import Catalog

    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        raise _refused(path, where, validation_problems(exc, raw)) from None
    catalog._path = path
    catalog._lines = tuple(where.line(n) for n in entry_lines(raw))
    catalog._fixtures_line = where.line(fixtures_line(raw))
    return catalog


def _parse(text: str, path: str, where: _Where) -> Catalog:
    try:
        raw = safe_yaml.load(text)
    except YamlInputError as exc:
        problems = [Problem("(yaml)", p.message, p.line) for p in exc.problems]
        raise _refused(path, where, problems, ordered=False) from None
    return _validate(raw, path, where)


def parse_catalog(text: str, path: str = "<catalog>") -> Catalog:
    return _parse(text, path, _Where())


def _string_where(text: str, parts: list[str], key: str, key_line: int) -> _Where:
    """Where the lines of the string under `parts` are in the file: a literal block (`key: |`) keeps
    every line, so its lines are offset by its start; any other string's lines cannot be mapped."""
    node: Any = safe_yaml.compose_all(text)[0]
    for part in parts:
        pairs = getattr(node, "value", None)
        found = [v for k, v in pairs if getattr(k, "value", None) == part] if isinstance(pairs, list) else []
        if not found:  # reached through a merge key (`<<`): name the key's line
            return _Where(key, fixed_line=key_line)
        node = found[0]
    if getattr(node, "style", None) == "|":
        return _Where(key, offset=node.start_mark.line + 1)
    return _Where(key, fixed_line=node.start_mark.line + 1)


def _from_values(text: str, path: str, key: str) -> Catalog:
    """The catalog under the dotted `key` of a Helm values file (a mapping or a YAML string)."""
    parts = key.split(".")
    if not all(_KEY_PART.fullmatch(part) for part in parts):
        message = "must be a dotted path of plain keys, such as `catalog` or `secretOrigin.catalog`"
        raise CatalogError(path, [Problem("(--catalog-key)", message)])
    document = _parse_document(text, path)
    node, line = document, 1
    for depth, part in enumerate(parts):
        parent = ".".join(parts[:depth]) or "the top level"
        if not isinstance(node, LineDict):
            raise CatalogError(path, [_where_key(key, f"`{parent}` is not a mapping", line)])
        if part not in node:
            raise CatalogError(path, [_where_key(key, f"no `{part}` key under {parent}", node.line)])
        line, node = node.line_of(part), node[part]
    if isinstance(node, LineDict):
        return _validate(node, path, _Where(key))
    if isinstance(node, str):
        return _parse(node, path, _string_where(text, parts, key, line))
    message = "must hold the catalog: a mapping, or a YAML string (`catalog: |`, as with `--set-file`)"
    raise CatalogError(path, [_where_key(key, message, line)])


def _where_key(key: str, message: str, line: int) -> Problem:
    return Problem(f"(--catalog-key {key})", message, line)


def _parse_document(text: str, path: str) -> Any:
    try:
        return safe_yaml.load(text)
    except YamlInputError as exc:
        raise CatalogError(path, [Problem("(yaml)", p.message, p.line) for p in exc.problems]) from None


def load_catalog(path: str | Path, key: str | None = None) -> Catalog:
    """Read (a regular file of at most safe_yaml.MAX_BYTES, UTF-8) and parse one catalog file, or the
    catalog under the dotted `key` of a Helm values file."""
    path = Path(path)
    try:
        text = safe_yaml.read_text(path)
    except YamlInputError as exc:
        raise CatalogError(str(path), [Problem("(file)", p.message, p.line) for p in exc.problems]) from None
    if key:
        return _from_values(text, str(path), key)
    return parse_catalog(text, str(path))
