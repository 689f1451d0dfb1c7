"""The catalog's schema, checked with the standard library: the same errors, in the same order, as
validating the model of `jobs.core.catalog_model` with pydantic would raise (location, type and
message), so a catalog with a schema problem is refused (exit 2) without loading pydantic. A catalog
found valid here is then built by the model; should the model still refuse it, its own errors are
reported (tests/unit/test_catalog_check.py holds this module to pydantic's errors).

Each rule below mirrors one field of the model, in the model's order; the field validators are the
model's own (`jobs.core.catalog_text`, `jobs.core.catalog_origin`).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from jobs.core.catalog_origin import Origin, origin_problems
from jobs.core.catalog_text import (
    check_akv_name,
    check_akv_url,
    check_entry_name,
    check_k8s_name,
    check_keycloak_url,
    check_mount,
    check_prefix,
    parse_duration,
    path_segment,
    plain_text,
    to_str,
)

Loc = tuple[int | str, ...]
Error = dict[str, Any]  # {"loc": ..., "type": ..., "msg": ...}, as pydantic's `errors()` items
Check = Callable[[Any, Loc, list[Error]], Any]


class _Bad:
    """A value that failed its rule (its error is already recorded)."""


BAD: Final = _Bad()
# The Python types the YAML reader produces: anything else is left to pydantic.
_YAML_TYPES: Final = (str, int, float, bool, type(None), datetime.date, dict, list)
_TRUE: Final = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE: Final = frozenset({"0", "off", "f", "false", "n", "no"})
_ORIGINS: Final = tuple(o.value for o in Origin)


class Unsure(Exception):
    """An input this checker does not model: the caller asks pydantic instead."""


def _error(errors: list[Error], loc: Loc, kind: str, msg: str) -> _Bad:
    errors.append({"loc": loc, "type": kind, "msg": msg})
    return BAD


def _plural(n: int, unit: str = "character") -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _too_short(errors: list[Error], loc: Loc, n: int, value: str, generic: bool) -> _Bad:
    if generic:  # a length constraint after a before-validator: pydantic's generic wording
        msg = f"Value should have at least {_plural(n, 'item')} after validation, not {len(value)}"
        return _error(errors, loc, "too_short", msg)
    return _error(errors, loc, "string_too_short", f"String should have at least {_plural(n)}")


def _too_long(errors: list[Error], loc: Loc, n: int, value: str, generic: bool) -> _Bad:
    if generic:
        msg = f"Value should have at most {_plural(n, 'item')} after validation, not {len(value)}"
        return _error(errors, loc, "too_long", msg)
    return _error(errors, loc, "string_too_long", f"String should have at most {_plural(n)}")


def text(
    min_length: int | None = None,
    max_length: int | None = None,
    after: tuple[Callable[[str], Any], ...] = (),
    before: Callable[[Any], Any] | None = None,
) -> Check:
    """A str field: the type, then the length constraints, then the after-validators in order."""

    def check(value: Any, loc: Loc, errors: list[Error]) -> Any:
        if before is not None:
            value = before(value)
        if not isinstance(value, _YAML_TYPES):
            raise Unsure(loc)
        if not isinstance(value, str):
            return _error(errors, loc, "string_type", "Input should be a valid string")
        generic = before is not None
        if min_length is not None and len(value) < min_length:
            return _too_short(errors, loc, min_length, value, generic)
        if max_length is not None and len(value) > max_length:
            return _too_long(errors, loc, max_length, value, generic)
        for validator in after:
            try:
                value = validator(value)
            except ValueError as exc:
                return _error(errors, loc, "value_error", f"Value error, {exc}")
        return value

    return check


def boolean(value: Any, loc: Loc, errors: list[Error]) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, float) and value in (0.0, 1.0):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    if isinstance(value, str | int):
        return _error(
            errors, loc, "bool_parsing", "Input should be a valid boolean, unable to interpret input"
        )
    if not isinstance(value, _YAML_TYPES):
        raise Unsure(loc)
    return _error(errors, loc, "bool_type", "Input should be a valid boolean")


def origin(value: Any, loc: Loc, errors: list[Error]) -> Any:
    if isinstance(value, str) and value in _ORIGINS:
        return value
    if not isinstance(value, _YAML_TYPES):
        raise Unsure(loc)
    shown = ", ".join(f"'{v}'" for v in _ORIGINS[:-1]) + f" or '{_ORIGINS[-1]}'"
    return _error(errors, loc, "enum", f"Input should be {shown}")


def duration(value: Any, loc: Loc, errors: list[Error]) -> Any:
    """`Grace`: a before-validator that turns the text into seconds (its ValueError is pydantic's)."""
    if not isinstance(value, _YAML_TYPES):
        raise Unsure(loc)
    try:
        return parse_duration(value)
    except ValueError as exc:
        return _error(errors, loc, "value_error", f"Value error, {exc}")


def optional(inner: Check) -> Check:
    def check(value: Any, loc: Loc, errors: list[Error]) -> Any:
        return None if value is None else inner(value, loc, errors)

    return check


def items(inner: Check) -> Check:
    """A `tuple[X, ...]` field: a YAML list, each item checked."""

    def check(value: Any, loc: Loc, errors: list[Error]) -> Any:
        if not isinstance(value, list):
            if not isinstance(value, _YAML_TYPES):
                raise Unsure(loc)
            return _error(errors, loc, "tuple_type", "Input should be a valid tuple")
        found = [inner(item, (*loc, n), errors) for n, item in enumerate(value)]
        return BAD if any(v is BAD for v in found) else found

    return check


@dataclass(frozen=True)
class Field:
    key: str  # as written in the YAML (the model's alias)
    check: Check
    required: bool = False


def model(
    name: str, fields: tuple[Field, ...], after: Callable[[dict[str, Any]], list[str]] | None = None
) -> Check:
    """A model: each field in order, then the keys it does not know, then its after-validator."""
    known = {f.key for f in fields}

    def check(value: Any, loc: Loc, errors: list[Error]) -> Any:
        if not isinstance(value, Mapping):
            if not isinstance(value, _YAML_TYPES):
                raise Unsure(loc)
            return _error(
                errors, loc, "model_type", f"Input should be a valid dictionary or instance of {name}"
            )
        before = len(errors)
        found: dict[str, Any] = {}
        for field in fields:
            if field.key in value:
                found[field.key] = field.check(value[field.key], (*loc, field.key), errors)
            elif field.required:
                _error(errors, (*loc, field.key), "missing", "Field required")
        for key in value:
            if key not in known:
                _error(errors, (*loc, key), "extra_forbidden", "Extra inputs are not permitted")
        if len(errors) > before:
            return BAD
        problems = after(found) if after is not None else []
        if problems:
            return _error(errors, loc, "value_error", "Value error, " + "; ".join(problems))
        return found

    return check


def _entry_rules(found: dict[str, Any]) -> list[str]:
    """SecretEntry's after-validator, on the validated fields (as the model's dump would show them)."""
    dumped = {k: v for k, v in found.items() if v is not None}
    return origin_problems(dumped)


_REALM: Final = (plain_text, path_segment)
CONSUMER: Final = model(
    "Consumer",
    (
        Field("namespace", text(after=(check_k8s_name,)), required=True),
        Field("name", text(after=(check_k8s_name,)), required=True),
    ),
)
ROTATION: Final = model(
    "Rotation",
    (
        Field("runId", text(1, 128, (plain_text,), before=to_str), required=True),
        Field("grace", optional(duration)),
        Field("hardCut", boolean),
    ),
)
KEYCLOAK_SOURCE: Final = model(
    "KeycloakSource",
    (
        Field("realm", text(1, None, _REALM), required=True),
        Field("clientId", text(1, None, (plain_text,)), required=True),
        Field("rotate", optional(ROTATION)),
    ),
)
SECRET_ENTRY: Final = model(
    "SecretEntry",
    (
        Field("name", text(after=(check_entry_name,)), required=True),
        Field("origin", origin, required=True),
        Field("azureKeyVault", optional(text(after=(check_akv_name,)))),
        Field("required", boolean),
        Field("keycloak", optional(KEYCLOAK_SOURCE)),
        Field("fixture", optional(text(4, 25_000))),
        Field("consumers", items(CONSUMER)),
    ),
    after=_entry_rules,
)
CATALOG: Final = model(
    "Catalog",
    (
        Field("environment", text(1, None, (plain_text,)), required=True),
        Field("fixtures", model("Fixtures", (Field("enabled", boolean),))),
        Field(
            "vault",
            model(
                "VaultConfig",
                (
                    Field("kvMount", text(1, None, (check_mount,))),
                    Field("field", text(1, 256, (plain_text,))),
                ),
            ),
        ),
        Field(
            "azureKeyVault",
            optional(
                model(
                    "AzureKeyVaultConfig",
                    (
                        Field("url", text(1, None, (check_akv_url,)), required=True),
                        Field("prefix", text(after=(check_prefix,))),
                    ),
                )
            ),
        ),
        Field(
            "keycloak",
            optional(
                model(
                    "KeycloakConfig",
                    (
                        Field("url", text(1, None, (check_keycloak_url,)), required=True),
                        Field("authRealm", text(1, None, _REALM)),
                    ),
                )
            ),
        ),
        Field("secrets", items(SECRET_ENTRY), required=True),
    ),
)


def schema_errors(raw: Mapping[str, Any]) -> list[Error] | None:
    """pydantic's errors for `raw` as a Catalog ([] when it is valid), or None when `raw` holds
    something this checker does not model (then only pydantic can tell)."""
    errors: list[Error] = []
    try:
        CATALOG(raw, (), errors)
    except Unsure:
        return None
    return errors
