"""What the apiserver checks on a written object: names, labels, annotations, data keys, body shape."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from emulators.base import Request
from emulators.kube.errors import (
    FieldError,
    err_bad_request,
    invalid_value,
)
from emulators.kube.types import (
    ANNOTATIONS_MAX_BYTES,
    CONFIG_KEY,
    CONFIG_KEY_MSG,
    CONFIGMAPS,
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    LABEL_MSG,
    LABEL_VALUE_MSG,
    NAMESPACES,
    QUALIFIED_NAME_MSG,
    QUALIFIED_NAME_PART,
    SECRETS,
    SUBDOMAIN_MSG,
    ResourceType,
    b64,
)


def json_body(request: Request) -> Any:
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise err_bad_request(f"error decoding request body: {exc}") from None


def object_body(request: Request, rt: ResourceType) -> dict[str, Any]:
    body = json_body(request)
    if not isinstance(body, dict):
        raise err_bad_request(f"json: cannot unmarshal {type(body).__name__} into Go value of type {rt.kind}")
    return body


def dict_field(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Everything generation tracks: all but metadata, status, apiVersion and kind."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def fold_string_data(obj: dict[str, Any]) -> None:
    """Secret `stringData` is write-only: merged into base64 `data` and dropped."""
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {}) or {}
        for key, value in string_data.items():
            data[key] = b64(str(value))
        obj["data"] = data
    if obj.get("type") in (None, ""):
        obj["type"] = "Opaque"


def _string_map_error(path: str, value: Any) -> None:
    """Type errors are decode failures (400), as Go's json decoder reports them."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise err_bad_request(
            f"json: cannot unmarshal {json_type_name(value)} into Go struct field {path} "
            "of type map[string]string"
        )
    for item in value.values():
        if not isinstance(item, str):
            raise err_bad_request(
                f"json: cannot unmarshal {json_type_name(item)} into Go struct field {path} of type string"
            )


def json_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def qualified_name_errors(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    problems = []
    if "/" in key and (not prefix or not DNS1123_SUBDOMAIN.match(prefix) or len(prefix) > 253):
        problems.append(f"prefix part {SUBDOMAIN_MSG}")
    if not name or len(name) > 63 or not QUALIFIED_NAME_PART.match(name):
        problems.append(
            QUALIFIED_NAME_MSG if name and len(name) <= 63 else "name part must be no more than 63 characters"
        )
    return problems


def validate_object(
    obj: Mapping[str, Any], rt: ResourceType, name: str, *, creating: bool
) -> list[FieldError]:
    """Field errors (a 422 Invalid with every cause); a malformed body raises the 400 at once."""
    meta = obj.get("metadata") or {}
    _string_map_error("ObjectMeta.metadata.labels", meta.get("labels"))
    _string_map_error("ObjectMeta.metadata.annotations", meta.get("annotations"))
    errors = _metadata_errors(meta, rt, name, creating=creating)
    if rt in (CONFIGMAPS, SECRETS):
        errors.extend(_data_errors(obj.get("data"), rt))
    return errors


def _metadata_errors(
    meta: Mapping[str, Any], rt: ResourceType, name: str, *, creating: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    if creating:
        if not name:
            errors.append(
                FieldError(
                    "metadata.name",
                    "FieldValueRequired",
                    "metadata.name: Required value: name or generateName is required",
                )
            )
        elif rt is NAMESPACES and (len(name) > 63 or not DNS1123_LABEL.match(name)):
            errors.append(invalid_value("metadata.name", name, LABEL_MSG))
        elif rt is not NAMESPACES and (len(name) > 253 or not DNS1123_SUBDOMAIN.match(name)):
            errors.append(invalid_value("metadata.name", name, SUBDOMAIN_MSG))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        errors.extend(invalid_value("metadata.annotations", key, p) for p in qualified_name_errors(key))
    size = sum(len(k) + len(v) for k, v in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        errors.append(
            FieldError(
                "metadata.annotations",
                "FieldValueTooLong",
                f"metadata.annotations: Too long: must have at most {ANNOTATIONS_MAX_BYTES} bytes",
            )
        )
    for key, value in (meta.get("labels") or {}).items():
        errors.extend(invalid_value("metadata.labels", key, p) for p in qualified_name_errors(key))
        if value and (len(value) > 63 or not QUALIFIED_NAME_PART.match(value)):
            errors.append(
                invalid_value(
                    "metadata.labels",
                    value,
                    LABEL_VALUE_MSG,
                )
            )
    return errors


def _data_errors(data: Any, rt: ResourceType) -> list[FieldError]:
    errors: list[FieldError] = []
    if data is not None and not isinstance(data, dict):
        raise err_bad_request(
            f"json: cannot unmarshal {json_type_name(data)} into Go struct field {rt.kind}.data "
            "of type map[string]string"
        )
    for key, value in (data or {}).items():
        if len(key) > 253 or not CONFIG_KEY.match(key):
            errors.append(
                invalid_value(
                    f"data[{key}]",
                    key,
                    CONFIG_KEY_MSG,
                )
            )
        if not isinstance(value, str):
            raise err_bad_request(
                f"json: cannot unmarshal {json_type_name(value)} into Go struct field {rt.kind}.data "
                "of type string"
            )
        if rt is SECRETS:
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                raise err_bad_request(f"illegal base64 data in {rt.kind}.data[{key}]") from None
    return errors
