"""events.k8s.io/v1 Event: what the API server checks when one is created.

The rules of `ValidateEventCreate` for the events.k8s.io/v1 API (kubernetes/kubernetes
`pkg/apis/core/validation/events.go`, run on the internal core.Event, so field paths use its names:
`regarding` is `involvedObject`, `note` is `message`): eventTime required; reportingController
required and a qualified name; reportingInstance, action and reason required, each at most 128
characters; note at most 1024; type Normal or Warning; the deprecated* fields unset; a series has
count >= 2 and lastObservedTime; the namespace is a DNS subdomain and, when `regarding` has none, the
Event lives in `default` or `kube-system`. `eventTime` is a metav1.MicroTime: the decoder accepts only
RFC 3339 with exactly six fraction digits (apimachinery `pkg/apis/meta/v1/micro_time.go`,
`RFC3339Micro`); anything else is a 400 before validation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from emulators.kube.errors import FieldError, err_bad_request, invalid_value
from emulators.kube.types import DNS1123_SUBDOMAIN, SUBDOMAIN_MSG
from emulators.kube.validation import qualified_name_errors

RFC3339_MICRO: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$")
LENGTH_LIMITS: Final = (("reportingInstance", "reportingInstance", 128), ("action", "action", 128))
REASON_LIMIT: Final = 128
NOTE_LIMIT: Final = 1024


def _required(path: str) -> FieldError:
    return FieldError(path, "FieldValueRequired", f"{path}: Required value")


def _invalid_empty(path: str, detail: str) -> FieldError:
    return FieldError(path, "FieldValueInvalid", f'{path}: Invalid value: "": {detail}')


def _micro_time(obj: Mapping[str, Any], key: str) -> str:
    """A MicroTime field as sent: "" when absent or null; a 400 when the decoder would refuse it."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or not RFC3339_MICRO.match(value):
        raise err_bad_request(
            f'Event in version "v1" cannot be handled as a Event: parsing time {value!r} as '
            '"2006-01-02T15:04:05.000000Z07:00": cannot parse'
        )
    return value


def _text_errors(obj: Mapping[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    controller = str(obj.get("reportingController") or "")
    if not controller:
        errors.append(_required("reportingController"))
    errors.extend(
        invalid_value("reportingController", controller, p) for p in qualified_name_errors(controller)
    )
    for path, key, limit in (*LENGTH_LIMITS, ("reason", "reason", REASON_LIMIT)):
        value = str(obj.get(key) or "")
        if not value:
            errors.append(_required(path))
        elif len(value) > limit:
            errors.append(_invalid_empty(path, f"can have at most {limit} characters"))
    if len(str(obj.get("note") or "")) > NOTE_LIMIT:
        errors.append(_invalid_empty("message", f"can have at most {NOTE_LIMIT} characters"))
    return errors


def event_errors(obj: Mapping[str, Any]) -> list[FieldError]:
    """Field errors of an events.k8s.io/v1 Event being created (a 422 Invalid with every cause)."""
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    regarding = obj.get("regarding") if isinstance(obj.get("regarding"), dict) else {}
    event_time = _micro_time(obj, "eventTime")
    errors: list[FieldError] = []
    if not event_time:
        if str(regarding.get("namespace") or "") != namespace:
            errors.append(
                invalid_value(
                    "involvedObject.namespace",
                    regarding.get("namespace") or "",
                    "does not match event.namespace",
                )
            )
    else:
        if not regarding.get("namespace") and namespace not in ("default", "kube-system"):
            errors.append(invalid_value("involvedObject.namespace", "", "does not match event.namespace"))
        errors.extend(_text_errors(obj))
    if namespace and (len(namespace) > 253 or not DNS1123_SUBDOMAIN.match(namespace)):
        errors.append(invalid_value("namespace", namespace, SUBDOMAIN_MSG))
    errors.extend(_series_errors(obj))
    if not event_time:
        errors.append(_required("eventTime"))
    if obj.get("type") not in ("Normal", "Warning"):
        errors.append(_invalid_empty("type", f"has invalid value: {obj.get('type') or ''}"))
    for deprecated, path in (
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
        ("deprecatedSource", "source"),
    ):
        if obj.get(deprecated):
            errors.append(_invalid_empty(path, "needs to be unset"))
    return errors


def _series_errors(obj: Mapping[str, Any]) -> list[FieldError]:
    series = obj.get("series")
    if not isinstance(series, dict):
        return []
    errors = []
    if int(series.get("count") or 0) < 2:
        errors.append(_invalid_empty("series.count", "should be at least 2"))
    if not _micro_time(series, "lastObservedTime"):
        errors.append(_required("series.lastObservedTime"))
    return errors
