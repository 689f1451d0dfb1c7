"""Errors as `metav1.Status` objects with the apiserver's message formats (k8s.io/apimachinery
`pkg/api/errors`, apiserver `responsewriters.forbiddenMessage`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from emulators.base import HttpProblem, Response
from emulators.kube.types import (
    CONFLICT_MODIFIED,
    NOT_FOUND_GENERIC,
    ResourceType,
)


class ApiError(HttpProblem):
    """Raised inside the emulator; rendered as a `metav1.Status` response."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers

    def status(self) -> dict[str, Any]:
        return status_object(self.code, self.reason, self.message, self.details)

    def response(self) -> Response:
        return Response.json(self.code, self.status(), headers=self.headers)


def status_object(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def status_details(rt_group: str, plural: str, name: str = "", **extra: Any) -> dict[str, Any]:
    """StatusDetails with Go's omitempty: empty name/group are left out."""
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if rt_group:
        details["group"] = rt_group
    if plural:
        details["kind"] = plural
    details.update(extra)
    return details


def err_not_found(group: str, plural: str, name: str) -> ApiError:
    gr = f"{plural}.{group}" if group else plural
    return ApiError(404, "NotFound", f'{gr} "{name}" not found', status_details(group, plural, name))


def err_not_served() -> ApiError:
    return ApiError(404, "NotFound", NOT_FOUND_GENERIC, {})


def err_already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{rt.group_resource} "{name}" already exists',
        status_details(rt.group, rt.plural, name),
    )


def err_conflict(rt: ResourceType, name: str, why: str = CONFLICT_MODIFIED) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}',
        status_details(rt.group, rt.plural, name),
    )


def err_bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def err_unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def err_method_not_supported(group: str, plural: str, action: str) -> ApiError:
    gr = f"{plural}.{group}" if group else plural
    return ApiError(
        405,
        "MethodNotAllowed",
        f'{action} is not supported on resources of kind "{gr}"',
        status_details(group, plural),
    )


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str  # FieldValueInvalid, FieldValueRequired, FieldValueTooLong, ...
    text: str  # the whole `field: Type: detail` line

    def cause(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.text.split(": ", 1)[1], "field": self.field}


def invalid_value(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, "FieldValueInvalid", f"{path}: Invalid value: {json.dumps(value)}: {detail}")


def err_invalid(rt: ResourceType, name: str, errors: list[FieldError]) -> ApiError:
    joined = errors[0].text if len(errors) == 1 else "[" + ", ".join(e.text for e in errors) + "]"
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.kind
    details["causes"] = [e.cause() for e in errors]
    return ApiError(422, "Invalid", f'{rt.group_kind} "{name}" is invalid: {joined}', details)


def forbidden_message(
    username: str, verb: str, group: str, resource: str, namespace: str, name: str, subresource: str = ""
) -> str:
    """The apiserver's text: `<gr> "<name>" is forbidden: User "<u>" cannot <verb> resource ...`."""
    full = f"{resource}/{subresource}" if subresource else resource
    if namespace:
        why = (
            f'User "{username}" cannot {verb} resource "{full}" in API group "{group}" '
            f'in the namespace "{namespace}"'
        )
    else:
        why = f'User "{username}" cannot {verb} resource "{full}" in API group "{group}" at the cluster scope'
    gr = f"{resource}.{group}" if group else resource
    return f'{gr} "{name}" is forbidden: {why}' if name else f"{gr} is forbidden: {why}"


FAULT_STATUS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "forbidden"),
    404: ("NotFound", NOT_FOUND_GENERIC),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Expired", "the resource version is too old"),
    413: ("RequestEntityTooLarge", "the request is too large"),
    415: ("UnsupportedMediaType", "the body of the request was in an unknown format"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, but may still be "
        "processing the request",
    ),
}
