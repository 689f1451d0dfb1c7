"""Label and field selectors, as `kubectl get -l` / `--field-selector` send them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from emulators.kube.errors import (
    err_bad_request,
)


def split_selector(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def label_selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    for term in split_selector(selector):
        set_match = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", term)
        if set_match:
            key, operator, raw = set_match.groups()
            values = {v.strip() for v in raw.split(",") if v.strip()}
            present = key in labels and labels[key] in values
            if (operator == "in") != present:
                return False
        elif "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def parse_field_selector(selector: str, allowed: Iterable[str]) -> list[tuple[str, bool, str]]:
    """`metadata.name=x,metadata.namespace!=y` → [(field, equal, value)]."""
    terms = []
    allowed = tuple(allowed)
    for term in split_selector(selector):
        if "!=" in term:
            name, value = term.split("!=", 1)
            equal = False
        elif "=" in term:
            name, value = term.replace("==", "=").split("=", 1)
            equal = True
        else:
            raise err_bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        name = name.strip()
        if name not in allowed:
            known = ", ".join(f'"{a}"' for a in allowed)
            raise err_bad_request(f'"{name}" is not a known field selector: only {known}')
        terms.append((name, equal, value.strip()))
    return terms


def field_value(obj: Mapping[str, Any], dotted: str) -> str:
    node: Any = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)
