"""The catalog's problems: `Problem` (a line, a location, a message), `CatalogError` carrying every
problem of one file at once, the translation of pydantic's errors into the file's lines and the user's
key names, and the rules spanning entries, computed from the raw YAML so they are reported even when an
individual entry is also invalid. Nothing that could be a secret or forge a `file:line:` line is shown."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from jobs.core import safe_yaml
from jobs.core.catalog_origin import Origin, origin_problems
from jobs.core.safe_yaml import LineDict, LineList

if TYPE_CHECKING:  # pydantic loads with the catalog model, only when a catalog is validated
    from pydantic import ValidationError

# At most this many problems are printed; the rest are counted (a broken 75 KB file once printed 100 MB).
MAX_PRINTED_PROBLEMS: Final = safe_yaml.MAX_SHOWN_PROBLEMS


@dataclass(frozen=True)
class Problem:
    location: str  # e.g. "secrets[2] (ghcr-token).keycloak.clientId"
    message: str
    line: int = 1

    def render(self, path: str) -> str:
        return f"{path}:{self.line}: {self.location}: {self.message}"


class CatalogError(Exception):
    """Every problem of one catalog. The message prints at most MAX_PRINTED_PROBLEMS of them, then a
    count; `problems` keeps them all."""

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        lines = ["  " + p.render(path) for p in problems[:MAX_PRINTED_PROBLEMS]]
        if len(problems) > MAX_PRINTED_PROBLEMS:
            lines.append(f"  … and {len(problems) - MAX_PRINTED_PROBLEMS} more")
        super().__init__(f"invalid catalog {path} ({len(problems)} problem(s)):\n" + "\n".join(lines))


# Names shown in labels even when invalid: plain words, so a typo is easy to find. Anything else
# (control characters that could forge a `file:line:` line, or base64-like text that may be a secret
# pasted into the wrong field) is left out of the label.
_SHOWN_NAME: Final = re.compile(r"[0-9A-Za-z _.-]{1,127}")


def _shown_name(name: Any) -> str | None:
    """An entry's name as it may appear in a label: never one that could forge or garble a line."""
    return name if isinstance(name, str) and _SHOWN_NAME.fullmatch(name) else None


def _entry_label(raw_secrets: Any, index: int) -> str:
    name = None
    if isinstance(raw_secrets, list) and index < len(raw_secrets) and isinstance(raw_secrets[index], dict):
        name = _shown_name(raw_secrets[index].get("name"))
    return f"secrets[{index}] ({name})" if name is not None else f"secrets[{index}]"


_CAMEL: Final = {"kv_mount": "kvMount", "azure_key_vault": "azureKeyVault", "auth_realm": "authRealm"}


def _location(loc: tuple[int | str, ...], raw: Mapping[str, Any]) -> str:
    parts: list[str] = []
    items = list(loc)
    if len(items) >= 2 and items[0] == "secrets" and isinstance(items[1], int):
        parts.append(_entry_label(raw.get("secrets"), items[1]))
        items = items[2:]
    for item in items:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            key = _CAMEL.get(str(item), str(item))
            parts.append(key if safe_yaml.shown_key(key).startswith("`") else "(key not shown)")
    return ".".join(parts) or "(top level)"


def _walk(raw: Any, loc: tuple[int | str, ...]) -> tuple[int, Any]:
    """The line of the deepest key or item of `loc` present in the raw data, and the value there."""
    line = raw.line if isinstance(raw, LineDict) else 1
    node = raw
    for part in loc:
        if isinstance(node, LineDict) and isinstance(part, str):
            key = _CAMEL.get(part, part)
            if key not in node:
                break
            line, node = node.line_of(key), node[key]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line, node = node.line_of(part), node[part]
        else:
            break
    else:
        return line, node
    return line, None


def _unquoted_hint(value: Any) -> str | None:
    """When a text field got a date, a boolean or a number, YAML resolved an unquoted value."""
    if isinstance(value, datetime.date):
        kind = "a date"
    elif isinstance(value, bool):
        kind = "true/false"
    elif isinstance(value, float):
        kind = "a number"
    else:
        return None
    return f"must be text, but YAML reads this unquoted value as {kind}: put it in quotes"


def _entry_line(raw: Mapping[str, Any], index: int) -> int:
    return _walk(raw, ("secrets", index))[0]


def cross_entry_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """Rules spanning entries; computed from the raw data so they are reported even when an
    individual entry is also invalid."""
    problems: list[Problem] = []
    secrets = raw.get("secrets")
    if not isinstance(secrets, list) or not secrets:
        if "secrets" in raw:
            problems.append(
                Problem("secrets", "must be a non-empty list of entries", _walk(raw, ("secrets",))[0])
            )
        return problems
    first_seen: dict[str, int] = {}
    for index, item in enumerate(secrets):
        if not isinstance(item, dict):
            continue
        line = _entry_line(raw, index)
        name = item.get("name")
        if isinstance(name, str):
            if name in first_seen:
                problems.append(
                    Problem(
                        _entry_label(secrets, index) + ".name",
                        f"duplicate name (also secrets[{first_seen[name]}]): two entries would own one "
                        "Vault path",
                        _walk(raw, ("secrets", index, "name"))[0],
                    )
                )
            else:
                first_seen[name] = index
        entry_rules = origin_problems(item)
        if entry_rules:
            problems.append(Problem(_entry_label(secrets, index), "; ".join(entry_rules), line))
        origin = item.get("origin")
        if origin == Origin.SERVICE_GENERATED.value and not isinstance(raw.get("keycloak"), dict):
            problems.append(
                Problem(
                    _entry_label(secrets, index), "service-generated entry but no top-level `keycloak`", line
                )
            )
        if origin == Origin.EXTERNAL.value and not isinstance(raw.get("azureKeyVault"), dict):
            problems.append(
                Problem(_entry_label(secrets, index), "external entry but no top-level `azureKeyVault`", line)
            )
    return problems


def entry_lines(raw: Mapping[str, Any]) -> tuple[int, ...]:
    """1-based line of each item of the top-level `secrets` list, for linter-style messages."""
    secrets = raw.get("secrets")
    return tuple(secrets.lines) if isinstance(secrets, LineList) else ()


def fixtures_line(raw: Mapping[str, Any]) -> int:
    """The line of `fixtures.enabled` (else of `fixtures`, else 1)."""
    return _walk(raw, ("fixtures", "enabled"))[0] if "fixtures" in raw else 1


def validation_problems(
    exc: ValidationError | Iterable[Mapping[str, Any]], raw: Mapping[str, Any]
) -> list[Problem]:
    """pydantic's errors (or `jobs.core.catalog_check`'s, which are the same) as problems: the line of
    the offending key, the user's key names, no input."""
    errors = exc if isinstance(exc, Iterable) else exc.errors(include_url=False, include_input=False)
    problems: list[Problem] = []
    for error in errors:
        loc = tuple(error["loc"])
        line, value = _walk(raw, loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (typo?)"
        elif error["type"] == "string_type":
            message = _unquoted_hint(value) or message
        problems.append(Problem(_location(loc, raw), message, line))
    return problems
