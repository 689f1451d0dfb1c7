"""Kubernetes objects as the API returns them -> `jobs.core.observed` data, and a Secret's `data` ->
SHA-256 digests per key, so no value leaves the Kubernetes client (docs/design.md#client-patcher)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

from jobs.core.errors import Permanent
from jobs.core.observed import DataRef, EsoStatus, ExternalSecretState, ExtractRef


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def eso_status(status: Mapping[str, Any]) -> EsoStatus:
    ready = next((_map(c) for c in _list(status.get("conditions")) if _map(c).get("type") == "Ready"), None)
    return EsoStatus(
        refresh_time=_text(status.get("refreshTime")) or None,
        synced_resource_version=_text(status.get("syncedResourceVersion")) or None,
        ready=None if ready is None else str(ready.get("status") or "Unknown"),
        ready_reason=str((ready or {}).get("reason") or ""),
        ready_message=str((ready or {}).get("message") or ""),
    )


def _data_refs(spec: Mapping[str, Any]) -> tuple[DataRef, ...]:
    refs = []
    for item in _list(spec.get("data")):
        remote = _map(_map(item).get("remoteRef"))
        secret_key, key = _map(item).get("secretKey"), remote.get("key")
        if secret_key and key:
            refs.append(DataRef(str(secret_key), str(key), _text(remote.get("property")) or None))
    return tuple(refs)


def _extracts(spec: Mapping[str, Any]) -> tuple[tuple[ExtractRef, ...], bool]:
    extracts, other = [], False
    for item in _list(spec.get("dataFrom")):
        extract = _map(_map(item).get("extract"))
        if extract.get("key"):
            extracts.append(ExtractRef(str(extract["key"]), bool(_map(item).get("rewrite"))))
        else:
            other = True  # find, sourceRef (generators): keys not known from the spec
    return tuple(extracts), other


def external_secret_state(
    obj: Mapping[str, Any], namespace: str, name: str, api_version: str
) -> ExternalSecretState:
    meta, spec = _map(obj.get("metadata")), _map(obj.get("spec"))
    target = _map(spec.get("target"))
    extracts, other = _extracts(spec)
    return ExternalSecretState(
        namespace=namespace,
        name=name,
        api_version=str(obj.get("apiVersion") or api_version),
        resource_version=str(meta.get("resourceVersion") or ""),
        refresh_interval=_text(spec.get("refreshInterval")),
        refresh_policy=_text(spec.get("refreshPolicy")),
        annotations={str(k): str(v) for k, v in _map(meta.get("annotations")).items()},
        generation=int(meta.get("generation") or 0),
        target_name=_text(target.get("name")) or None,
        templated=bool(target.get("template")),
        data=_data_refs(spec),
        extracts=extracts,
        other_sources=other,
        status=eso_status(_map(obj.get("status"))),
    )


def decoded(data: Mapping[str, Any] | None, what: str) -> dict[str, bytes]:
    """A Secret's base64 `data`, decoded; Permanent when a value is not base64."""
    result: dict[str, bytes] = {}
    for key, encoded in (data or {}).items():
        try:
            result[str(key)] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise Permanent("kubernetes", f"{what}: key {key!r} is not base64") from None
    return result


def digests(values: Mapping[str, bytes]) -> dict[str, str]:
    """SHA-256 (hex) per key: what client-patcher compares, never the values."""
    return {key: hashlib.sha256(raw).hexdigest() for key, raw in values.items()}
