"""A Kubernetes API server emulator for the slice secret-origin uses.

It serves, over HTTP or HTTPS (trustme CA, `ca_pem_path`), with bearer-token authentication and a small
RBAC model:

- discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}`, `/apis/{group}/{version}`
  (APIVersions, APIGroupList, APIGroup, APIResourceList), plus the service-account issuer documents
  `/.well-known/openid-configuration` and `/openid/v1/jwks`;
- `external-secrets.io` ExternalSecret in the versions given by `eso_versions` (default `("v1",)`; an
  unserved version answers 404 "the server could not find the requested resource" with no
  `details.name`, as an apiserver does for a CRD version marked unserved) and PushSecret `v1alpha1`, both
  with the `status` subresource, as the ESO CRDs declare it [docs/design.md#external-secrets-operator];
- core `v1` ConfigMaps, Secrets (base64 `data`, `stringData` folded into `data`), ServiceAccounts and
  Namespaces;
- verbs get, list (label and field selectors), create, update (PUT, optimistic concurrency), patch and
  delete. PATCH takes `application/merge-patch+json` (RFC 7386), `application/json-patch+json` (RFC 6902:
  add, remove, replace, move, copy, test; `~0`/`~1` escapes) and, for built-in kinds only,
  `application/strategic-merge-patch+json`; a custom resource answers strategic merge with 415
  UnsupportedMediaType [docs/design.md#kubernetes-api; docs/design.md#traps, trap 15];
- every write bumps `metadata.resourceVersion` from one cluster-global counter and a write that changes
  nothing does not; custom resources get `metadata.generation`, bumped only when something outside
  `metadata`/`status` changes; the main resource ignores `status`, `/status` ignores everything else
  (Kubernetes docs "Extend the Kubernetes API with CustomResourceDefinitions", status subresource);
- `authentication.k8s.io/v1` TokenReview and SelfSubjectReview, `authorization.k8s.io/v1`
  SelfSubjectAccessReview (`kubectl auth can-i`);
- errors as real `metav1.Status` objects (kind Status, apiVersion v1, status Failure, message, reason,
  details{name, group, kind}, code) with the apiserver's message formats (k8s.io/apimachinery
  `pkg/api/errors`, apiserver `responsewriters.forbiddenMessage`) [docs/design.md#kubernetes-api];
  injected faults (`fail_next`) also answer with a Status, and 429 carries `Retry-After` and
  `details.retryAfterSeconds`.

Tokens are real projected-style service-account JWTs (RS256, `iss`, `sub`, `aud`, `exp`/`iat`/`nbf`,
`jti` and the `kubernetes.io` claim with namespace, serviceaccount{name,uid}, pod and node), so Vault's
Kubernetes auth can parse them locally and then call TokenReview here. TokenReview follows what the Vault
plugin needs [docs/design.md#vault-kv-v2, #kubernetes-api; docs/design.md#traps, trap 14]: a body
without apiVersion/kind is accepted; the 201 response carries a `status` *object*; `status.audiences` is
the intersection of the requested audiences (default: the apiserver's) and the token's; a failed
review omits `authenticated` (Go `omitempty` on a false bool) and sets `error`.
A token stops working when it expires or its service account is deleted
or re-created with another uid, as bound tokens do.

RBAC: `grant()` is one Role (namespace given) or ClusterRole (namespace None) rule bound to one service
account. `resourceNames` restrict get/update/patch/delete to those names; such a rule never grants
create, and grants list/watch only with a matching `fieldSelector=metadata.name=X`, as documented in
https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-resources. Discovery paths
are open to every authenticated user (system:discovery); anonymous requests get 401 (as with
`--anonymous-auth=false`) unless `anonymous_auth=True`, which allows /version and health paths only.

Not covered: watch and chunked list (limit/continue), server-side apply, protobuf/CBOR/YAML bodies,
managedFields, finalizers and deletion timestamps, owner-reference garbage collection, admission, CRD
OpenAPI schema validation or defaulting, conversion between ESO versions (objects are stored once and
relabelled), aggregated discovery (v2), TokenRequest (`serviceaccounts/{name}/token`), groups as RBAC
subjects, and the other ESO kinds (SecretStore, ClusterSecretStore, ClusterExternalSecret). Exact wording
of a few messages is marked UNCONFIRMED where it is used.

Standalone: `python -m emulators.kube --port 6443 --seed seed.yaml --out DIR [--tls]` writes an admin
kubeconfig and, per seeded service account, an in-cluster style directory (token, namespace, ca.crt)
plus a kubeconfig; the seed format is described in `load_seed`.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import re
import secrets
import shutil
import signal
import ssl
import sys
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.base import EmulatorServer, Request, Response

ESO_GROUP = "external-secrets.io"
ESO_KNOWN_VERSIONS = ("v1", "v1beta1", "v1alpha1")
DEFAULT_AUDIENCE = "https://kubernetes.default.svc"
ADMIN_USERNAME = "kubernetes-admin"
SA_PREFIX = "system:serviceaccount:"
POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
NODE_UID_KEY = "authentication.kubernetes.io/node-uid"
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

NOT_FOUND_GENERIC = "the server could not find the requested resource"
CONFLICT_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUALIFIED_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
    "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
ANNOTATIONS_MAX_BYTES = 256 * 1024
PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")
# system:basic-user lets every authenticated user ask about itself.
SELF_REVIEWS = {
    ("authentication.k8s.io", "selfsubjectreviews", "create"),
    ("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
}


# -- resource types ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResourceType:
    group: str
    versions: tuple[str, ...]  # served versions; the first one is the preferred/storage version
    plural: str
    singular: str
    kind: str
    namespaced: bool = True
    custom: bool = False  # a CRD: no strategic merge, generation tracked, update needs resourceVersion
    status_subresource: bool = False
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update")

    @property
    def group_resource(self) -> str:
        """`plural.group` as the apiserver prints a GroupResource (`configmaps` for the core group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version


CONFIGMAPS = ResourceType("", ("v1",), "configmaps", "configmap", "ConfigMap", short_names=("cm",))
SECRETS = ResourceType("", ("v1",), "secrets", "secret", "Secret")
SERVICEACCOUNTS = ResourceType(
    "", ("v1",), "serviceaccounts", "serviceaccount", "ServiceAccount", short_names=("sa",)
)
NAMESPACES = ResourceType(
    "",
    ("v1",),
    "namespaces",
    "namespace",
    "Namespace",
    namespaced=False,
    short_names=("ns",),
    verbs=("create", "delete", "get", "list", "patch", "update"),
)
PUSHSECRETS = ResourceType(
    ESO_GROUP,
    ("v1alpha1",),
    "pushsecrets",
    "pushsecret",
    "PushSecret",
    custom=True,
    status_subresource=True,
    short_names=("ps",),
    categories=("external-secrets", "external-secrets-pushsecrets"),
)


def external_secrets_type(versions: Iterable[str]) -> ResourceType:
    return ResourceType(
        ESO_GROUP,
        tuple(versions),
        "externalsecrets",
        "externalsecret",
        "ExternalSecret",
        custom=True,
        status_subresource=True,
        short_names=("es",),
        categories=("external-secrets",),
    )


# Review APIs: create-only, never stored.
REVIEW_RESOURCES: dict[tuple[str, str], tuple[str, str]] = {
    ("authentication.k8s.io", "tokenreviews"): ("TokenReview", "v1"),
    ("authentication.k8s.io", "selfsubjectreviews"): ("SelfSubjectReview", "v1"),
    ("authorization.k8s.io", "selfsubjectaccessreviews"): ("SelfSubjectAccessReview", "v1"),
}


def _kube_version_key(version: str) -> tuple[int, int, int]:
    """Kubernetes version priority: GA > beta > alpha, higher numbers first (sort ascending)."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0))


# -- Status errors ---------------------------------------------------------------------------------------
class ApiError(Exception):
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


def _details(rt_group: str, plural: str, name: str = "", **extra: Any) -> dict[str, Any]:
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
    return ApiError(404, "NotFound", f'{gr} "{name}" not found', _details(group, plural, name))


def err_not_served() -> ApiError:
    return ApiError(404, "NotFound", NOT_FOUND_GENERIC, {})


def err_already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{rt.group_resource} "{name}" already exists',
        _details(rt.group, rt.plural, name),
    )


def err_conflict(rt: ResourceType, name: str, why: str = CONFLICT_MODIFIED) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}',
        _details(rt.group, rt.plural, name),
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
        _details(group, plural),
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


_FAULT_STATUS: dict[int, tuple[str, str]] = {
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


# -- patches ---------------------------------------------------------------------------------------------
class PatchError(Exception):
    """A patch that cannot be applied (422) or decoded (400)."""

    def __init__(self, message: str, *, decode: bool = False) -> None:
        super().__init__(message)
        self.decode = decode


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: objects merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer_tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"JSON pointer must start with '/': {pointer!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _list_index(container: list[Any], token: str, *, for_add: bool) -> int:
    if token == "-" and for_add:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    limit = len(container) if for_add else len(container) - 1
    if index > limit:
        raise PatchError(f"array index {index} out of bounds")
    return index


def _resolve_parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_list_index(node, token, for_add=False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}: missing value")
    return node


def _get_at(doc: Any, path: str) -> Any:
    tokens = _pointer_tokens(path)
    if not tokens:
        return doc
    parent = _resolve_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"doc is missing key: {path!r}: missing value")
        return parent[last]
    if isinstance(parent, list):
        return parent[_list_index(parent, last, for_add=False)]
    raise PatchError(f"doc is missing path: {path!r}: missing value")


def _remove_at(doc: Any, path: str) -> Any:
    tokens = _pointer_tokens(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _resolve_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"Unable to remove nonexistent key: {last}: missing value")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_list_index(parent, last, for_add=False))
    raise PatchError(f"doc is missing path: {path!r}: missing value")


def _add_at(doc: Any, path: str, value: Any, *, replace: bool = False) -> Any:
    tokens = _pointer_tokens(path)
    if not tokens:
        return copy.deepcopy(value)
    parent = _resolve_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"replace operation does not apply: doc is missing key: {path}: missing value")
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        if replace:
            parent[_list_index(parent, last, for_add=False)] = copy.deepcopy(value)
        else:
            parent.insert(_list_index(parent, last, for_add=True), copy.deepcopy(value))
    else:
        raise PatchError(f"doc is missing path: {path!r}: missing value")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON Patch on a copy of `target`."""
    if not isinstance(operations, list):
        kind = type(operations).__name__
        raise PatchError(f"json: cannot unmarshal {kind} into Go value of type jsonpatch.Patch", decode=True)
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise PatchError("Unexpected kind: missing op", decode=True)
        name = op["op"]
        path = op.get("path")
        if not isinstance(path, str):
            raise PatchError(f"operation {name!r} is missing path", decode=True)
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {name!r} is missing value", decode=True)
        if name == "add":
            doc = _add_at(doc, path, op["value"])
        elif name == "remove":
            _remove_at(doc, path)
        elif name == "replace":
            doc = _add_at(doc, path, op["value"], replace=True)
        elif name == "test":
            if _get_at(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        elif name in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f"operation {name!r} is missing from", decode=True)
            value = _remove_at(doc, source) if name == "move" else copy.deepcopy(_get_at(doc, source))
            doc = _add_at(doc, path, value)
        else:
            raise PatchError(f"Unexpected kind: {name}", decode=True)
    return doc


_SMP_DELETE = object()
# Lists in the built-in kinds served here whose Go tags declare `patchStrategy:"merge"`.
_SMP_MERGE_KEYS: dict[tuple[str, ...], str | None] = {
    ("metadata", "finalizers"): None,  # primitive list: union
    ("metadata", "ownerReferences"): "uid",
    ("secrets",): "name",  # ServiceAccount.secrets
}


def strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """Strategic merge for the built-in kinds served here (maps merge, `$patch` directives, the known
    merge-keyed lists; every other list is replaced)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return _SMP_DELETE
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key == "$patch" or key.startswith("$setElementOrder/") or key == "$retainKeys":
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            list_key = key.split("/", 1)[1]
            if isinstance(result.get(list_key), list) and isinstance(value, list):
                result[list_key] = [item for item in result[list_key] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        sub_path = (*path, key)
        current = result.get(key)
        if sub_path in _SMP_MERGE_KEYS and isinstance(value, list) and isinstance(current, list):
            result[key] = _merge_list(current, value, _SMP_MERGE_KEYS[sub_path])
            continue
        merged = strategic_merge_patch(current, value, sub_path)
        if merged is _SMP_DELETE:
            result.pop(key, None)
        else:
            result[key] = merged
    return result


def _merge_list(current: list[Any], patch: list[Any], merge_key: str | None) -> list[Any]:
    result = copy.deepcopy(current)
    for item in patch:
        if merge_key is None:
            if item not in result:
                result.append(copy.deepcopy(item))
            continue
        if not isinstance(item, dict):
            continue
        key_value = item.get(merge_key)
        index = next(
            (i for i, old in enumerate(result) if isinstance(old, dict) and old.get(merge_key) == key_value),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(copy.deepcopy(item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


# -- selectors -------------------------------------------------------------------------------------------
def _split_selector(selector: str) -> list[str]:
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
    for term in _split_selector(selector):
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
    for term in _split_selector(selector):
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


def _field_value(obj: Mapping[str, Any], dotted: str) -> str:
    node: Any = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


# -- identities and RBAC --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, list[str]] = field(default_factory=dict)
    audiences: tuple[str, ...] = ()
    admin: bool = False

    def user_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"username": self.username}
        if self.uid:
            info["uid"] = self.uid
        info["groups"] = list(self.groups)
        if self.extra:
            info["extra"] = {k: list(v) for k, v in self.extra.items()}
        return info


@dataclass(frozen=True)
class Rule:
    namespace: str | None  # None: a ClusterRole bound with a ClusterRoleBinding
    subject: str  # username, e.g. system:serviceaccount:ns:sa
    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str]

    def allows(self, username: str, verb: str, group: str, resource: str, namespace: str, name: str) -> bool:
        if self.subject != username:
            return False
        if self.namespace is not None and self.namespace != namespace:
            return False
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        if "*" not in self.groups and group not in self.groups:
            return False
        if "*" not in self.resources and resource not in self.resources:
            return False
        if self.resource_names:
            # resourceNames cannot restrict create/deletecollection, and list/watch only through a
            # metadata.name field selector (passed in as `name` by the caller).
            if verb in ("create", "deletecollection") or not name:
                return False
            return name in self.resource_names
        return True


class AuthnError(Exception):
    """A token that does not authenticate; the message is what TokenReview puts in `status.error`."""


def _sa_username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def _now_rfc3339(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


# -- the emulator ---------------------------------------------------------------------------------------
@dataclass
class _RequestInfo:
    verb: str
    group: str
    version: str
    namespace: str
    resource: str
    name: str
    subresource: str
    field_name: str  # metadata.name from a fieldSelector, for list/watch resourceNames checks


class KubeEmulator(EmulatorServer):
    """The Kubernetes API server slice; see the module docstring."""

    name = "kube"
    poll_interval = 0.05

    def __init__(
        self,
        eso_versions: Iterable[str] = ("v1",),
        tls: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        issuer: str = DEFAULT_AUDIENCE,
        api_audiences: Iterable[str] = (DEFAULT_AUDIENCE,),
        anonymous_auth: bool = False,
        kube_version: str = "v1.33.1",
        clock: Callable[[], float] = time.time,
    ) -> None:
        versions = tuple(eso_versions)
        unknown = [v for v in versions if v not in ESO_KNOWN_VERSIONS]
        if unknown or not versions:
            raise ValueError(f"eso_versions must be a non-empty subset of {ESO_KNOWN_VERSIONS}: {versions}")
        self._workdir = Path(tempfile.mkdtemp(prefix="kube-emulator-"))
        weakref.finalize(self, shutil.rmtree, str(self._workdir), True)
        self.ca_pem_path: Path | None = None
        ssl_context = self._make_tls(host) if tls else None
        super().__init__(host=host, port=port, ssl_context=ssl_context)
        self.eso_versions = versions
        self.issuer = issuer
        self.api_audiences = tuple(api_audiences)
        self.anonymous_auth = anonymous_auth
        self.kube_version = kube_version
        self.clock = clock
        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = hashlib.sha256(self.public_key_pem.encode()).hexdigest()[:43]
        self.admin_token = "admin-" + secrets.token_urlsafe(24)
        self._static_tokens: dict[str, Identity] = {
            self.admin_token: Identity(
                ADMIN_USERNAME, groups=("kubeadm:cluster-admins", "system:authenticated"), admin=True
            )
        }
        self._rules: list[Rule] = []
        self._objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._rv = 1000
        es = external_secrets_type(versions)
        self._types: list[ResourceType] = [CONFIGMAPS, SECRETS, SERVICEACCOUNTS, NAMESPACES, es, PUSHSECRETS]
        # Helpers may store ESO objects in any known version, served or not.
        self._all_types = [*self._types, external_secrets_type(ESO_KNOWN_VERSIONS)]
        for namespace in ("default", "kube-system", "kube-public"):
            self.add_namespace(namespace)

    # -- TLS ----------------------------------------------------------------------------------------
    def _make_tls(self, host: str) -> ssl.SSLContext:
        import trustme

        ca = trustme.CA()
        names = {"127.0.0.1", "localhost", "::1", "kubernetes.default.svc", host}
        cert = ca.issue_cert(*sorted(names))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.ca_pem_path = self._workdir / "ca.crt"
        ca.cert_pem.write_to_path(str(self.ca_pem_path))
        return context

    # -- keys and tokens ----------------------------------------------------------------------------
    @property
    def public_key_pem(self) -> str:
        return (
            self._signing_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._signing_key.public_key()))
        jwk.update({"use": "sig", "kid": self.key_id, "alg": "RS256"})
        return {"keys": [jwk]}

    def add_namespace(self, name: str) -> dict[str, Any]:
        with self._lock:
            existing = self._objects.get(("", "namespaces", "", name))
            if existing is not None:
                return copy.deepcopy(existing)
            return self.put_object(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }
            )

    def add_service_account(self, namespace: str, name: str) -> str:
        """Create the ServiceAccount (and its namespace) if missing; returns its uid."""
        with self._lock:
            existing = self._objects.get(("", "serviceaccounts", namespace, name))
            if existing is None:
                existing = self.put_object(
                    {
                        "apiVersion": "v1",
                        "kind": "ServiceAccount",
                        "metadata": {"name": name, "namespace": namespace},
                    }
                )
            return str(existing["metadata"]["uid"])

    def delete_service_account(self, namespace: str, name: str) -> bool:
        """Delete the ServiceAccount: its tokens stop authenticating (bound-token semantics)."""
        return self.delete_object("ServiceAccount", namespace, name)

    def issue_token(
        self,
        namespace: str,
        name: str,
        *,
        audiences: Iterable[str] = (DEFAULT_AUDIENCE,),
        lifetime: int = 3600,
        issued_at: float | None = None,
        pod_name: str | None = None,
    ) -> str:
        """A projected service-account token (RS256 JWT) bound to a pod, as the kubelet mounts it."""
        with self._lock:
            sa = self._objects.get(("", "serviceaccounts", namespace, name))
            if sa is None:
                raise LookupError(
                    f"service account {namespace}/{name} does not exist; add_service_account first"
                )
            sa_uid = sa["metadata"]["uid"]
        iat = int(issued_at if issued_at is not None else self.clock())
        pod = pod_name or f"{name}-{secrets.token_hex(3)}-{secrets.token_hex(3)[:5]}"
        claims = {
            "aud": list(audiences),
            "exp": iat + int(lifetime),
            "iat": iat,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": namespace,
                "node": {
                    "name": "emulator-node",
                    "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, "emulator-node")),
                },
                "pod": {"name": pod, "uid": str(uuid.uuid4())},
                "serviceaccount": {"name": name, "uid": sa_uid},
                "warnafter": iat + min(int(lifetime), 3607),
            },
            "nbf": iat,
            "sub": _sa_username(namespace, name),
        }
        return jwt.encode(claims, self._signing_key, algorithm="RS256", headers={"kid": self.key_id})

    def _verify_token(self, token: str, audiences: tuple[str, ...]) -> Identity:
        """Authenticate a bearer token against `audiences`; raise AuthnError with the reason."""
        static = self._static_tokens.get(token)
        if static is not None:
            return Identity(
                static.username,
                static.uid,
                static.groups,
                static.extra,
                audiences=tuple(a for a in audiences if a in self.api_audiences),
                admin=static.admin,
            )
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self._signing_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise AuthnError(
                "[invalid bearer token, square/go-jose: error in cryptographic primitive]"
            ) from exc
        if header.get("kid") != self.key_id or claims.get("iss") != self.issuer:
            raise AuthnError("[invalid bearer token, token lookup failed]")
        now = self.clock()
        if now >= float(claims.get("exp", 0)):
            raise AuthnError("[invalid bearer token, service account token has expired]")
        if now + 60 < float(claims.get("nbf", 0)):  # apiserver allows 60 s of clock skew
            raise AuthnError("[invalid bearer token, service account token is not valid yet]")
        token_auds = claims.get("aud")
        token_auds = [token_auds] if isinstance(token_auds, str) else list(token_auds or [])
        matched = tuple(a for a in audiences if a in token_auds)
        if not matched:
            raise AuthnError(
                f"[invalid bearer token, token audiences {json.dumps(token_auds)} is invalid for the "
                f"target audiences {json.dumps(list(audiences))}]"
            )
        k8s = claims.get("kubernetes.io") or {}
        namespace = str(k8s.get("namespace", ""))
        sa_claim = k8s.get("serviceaccount") or {}
        with self._lock:
            sa = self._objects.get(("", "serviceaccounts", namespace, str(sa_claim.get("name", ""))))
        if sa is None or sa["metadata"]["uid"] != sa_claim.get("uid"):
            raise AuthnError(
                f"[invalid bearer token, service account {namespace}/{sa_claim.get('name')} has been deleted]"
            )
        extra: dict[str, list[str]] = {}
        pod = k8s.get("pod") or {}
        node = k8s.get("node") or {}
        if claims.get("jti"):
            extra[CREDENTIAL_ID_KEY] = [f"JTI={claims['jti']}"]
        if node:
            extra[NODE_NAME_KEY] = [str(node.get("name"))]
            extra[NODE_UID_KEY] = [str(node.get("uid"))]
        if pod:
            extra[POD_NAME_KEY] = [str(pod.get("name"))]
            extra[POD_UID_KEY] = [str(pod.get("uid"))]
        return Identity(
            username=_sa_username(namespace, str(sa_claim.get("name"))),
            uid=str(sa_claim.get("uid")),
            groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
            extra=extra,
            audiences=matched,
        )

    # -- RBAC ---------------------------------------------------------------------------------------
    def grant(
        self,
        namespace: str | None,
        sa_namespace: str,
        sa_name: str,
        *,
        verbs: Iterable[str],
        group: str,
        resource: str,
        resource_names: Iterable[str] | None = None,
    ) -> None:
        """One Role rule (namespace given) or ClusterRole rule (None) bound to the service account.
        `resource` may name a subresource (`externalsecrets/status`) or be `*`; `group` `""` is core."""
        rule = Rule(
            namespace=namespace,
            subject=_sa_username(sa_namespace, sa_name),
            verbs=frozenset(verbs),
            groups=frozenset([group]),
            resources=frozenset([resource]),
            resource_names=frozenset(resource_names or ()),
        )
        with self._lock:
            self._rules.append(rule)

    def allow_token_review(self, sa_namespace: str, sa_name: str) -> None:
        """The `system:auth-delegator` ClusterRoleBinding: create tokenreviews (and subjectaccessreviews)."""
        self.grant(
            None,
            sa_namespace,
            sa_name,
            verbs=["create"],
            group="authentication.k8s.io",
            resource="tokenreviews",
        )
        self.grant(
            None,
            sa_namespace,
            sa_name,
            verbs=["create"],
            group="authorization.k8s.io",
            resource="subjectaccessreviews",
        )

    def revoke_all(self, sa_namespace: str, sa_name: str) -> None:
        subject = _sa_username(sa_namespace, sa_name)
        with self._lock:
            self._rules = [r for r in self._rules if r.subject != subject]

    def is_allowed(
        self, user: Identity, verb: str, group: str, resource: str, namespace: str, name: str
    ) -> bool:
        if user.admin or (group, resource, verb) in SELF_REVIEWS:
            return True
        with self._lock:
            return any(r.allows(user.username, verb, group, resource, namespace, name) for r in self._rules)

    # -- object state helpers (bypass HTTP, RBAC and served versions) -------------------------------
    def _type_for_kind(self, kind: str) -> ResourceType:
        wanted = kind.lower()
        for rt in self._all_types:
            if wanted in (rt.kind.lower(), rt.plural, rt.singular, *rt.short_names):
                return rt
        raise KeyError(f"unknown kind {kind!r}")

    def put_object(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace an object as a controller or `kubectl apply` would leave it: server fields
        (uid, creationTimestamp, resourceVersion, generation) are set; status is kept as given. Namespaces
        are created on demand. Returns the stored object."""
        rt = self._type_for_kind(str(manifest.get("kind", "")))
        api_version = str(manifest.get("apiVersion", ""))
        group, _, version = api_version.rpartition("/")
        if group != rt.group or version not in (*ESO_KNOWN_VERSIONS, "v1"):
            raise ValueError(f"apiVersion {api_version!r} does not fit kind {rt.kind}")
        obj = copy.deepcopy(dict(manifest))
        meta = obj.setdefault("metadata", {})
        namespace = str(meta.get("namespace") or ("default" if rt.namespaced else ""))
        if rt.namespaced:
            meta["namespace"] = namespace
            if ("", "namespaces", "", namespace) not in self._objects:
                self.add_namespace(namespace)
        else:
            meta.pop("namespace", None)
        name = str(meta["name"])
        with self._lock:
            key = (rt.group, rt.plural, namespace, name)
            old = self._objects.get(key)
            if old is None:
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = _now_rfc3339(self.clock())
                if rt.custom:
                    meta["generation"] = 1
            else:
                meta["uid"] = old["metadata"]["uid"]
                meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
                if rt.custom:
                    meta["generation"] = old["metadata"].get("generation", 1) + (
                        1 if _spec_of(old) != _spec_of(obj) else 0
                    )
            if rt is SECRETS:
                _fold_string_data(obj)
            self._commit(rt, key, obj)
            return copy.deepcopy(obj)

    def get_object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        rt = self._type_for_kind(kind)
        with self._lock:
            obj = self._objects.get((rt.group, rt.plural, namespace if rt.namespaced else "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        rt = self._type_for_kind(kind)
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (group, plural, ns, _), obj in sorted(self._objects.items())
                if (group, plural) == (rt.group, rt.plural) and (namespace is None or ns == namespace)
            ]

    def delete_object(self, kind: str, namespace: str, name: str) -> bool:
        rt = self._type_for_kind(kind)
        with self._lock:
            removed = self._objects.pop((rt.group, rt.plural, namespace if rt.namespaced else "", name), None)
            if removed is not None:
                self._rv += 1
            return removed is not None

    def set_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """Replace `status` as a controller would through the status subresource (bumps resourceVersion)."""
        rt = self._type_for_kind(kind)
        with self._lock:
            key = (rt.group, rt.plural, namespace, name)
            obj = self._objects.get(key)
            if obj is None:
                raise LookupError(f"{rt.kind} {namespace}/{name} does not exist")
            updated = copy.deepcopy(obj)
            updated["status"] = copy.deepcopy(dict(status))
            self._commit(rt, key, updated)
            return copy.deepcopy(updated)

    def annotations(self, kind: str, namespace: str, name: str) -> dict[str, str]:
        obj = self.get_object(kind, namespace, name)
        if obj is None:
            raise LookupError(f"{kind} {namespace}/{name} does not exist")
        return dict(obj["metadata"].get("annotations") or {})

    def add_external_secret(
        self,
        namespace: str,
        name: str,
        *,
        remote_key: str,
        refresh_interval: str = "1h",
        refresh_policy: str | None = None,
        target: str | None = None,
        store: str = "vault-backend",
        store_kind: str = "ClusterSecretStore",
        annotations: Mapping[str, str] | None = None,
        version: str = "v1",
    ) -> dict[str, Any]:
        """An ExternalSecret that extracts the whole Vault KV entry `remote_key` into Secret `target`."""
        spec: dict[str, Any] = {"refreshInterval": refresh_interval}
        if refresh_policy is not None:
            spec["refreshPolicy"] = refresh_policy
        spec["secretStoreRef"] = {"name": store, "kind": store_kind}
        spec["target"] = {"name": target or name, "creationPolicy": "Owner", "deletionPolicy": "Retain"}
        spec["dataFrom"] = [{"extract": {"key": remote_key}}]
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if annotations:
            metadata["annotations"] = dict(annotations)
        return self.put_object(
            {
                "apiVersion": f"{ESO_GROUP}/{version}",
                "kind": "ExternalSecret",
                "metadata": metadata,
                "spec": spec,
            }
        )

    def add_push_secret(
        self,
        namespace: str,
        name: str,
        *,
        secret_name: str,
        remote_key: str,
        store: str = "vault-backend",
        store_kind: str = "ClusterSecretStore",
        update_policy: str = "Replace",
    ) -> dict[str, Any]:
        return self.put_object(
            {
                "apiVersion": f"{ESO_GROUP}/v1alpha1",
                "kind": "PushSecret",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "refreshInterval": "1h",
                    "updatePolicy": update_policy,
                    "deletionPolicy": "None",
                    "secretStoreRefs": [{"name": store, "kind": store_kind}],
                    "selector": {"secret": {"name": secret_name}},
                    "data": [{"match": {"remoteRef": {"remoteKey": remote_key}}}],
                },
            }
        )

    def add_config_map(
        self, namespace: str, name: str, data: Mapping[str, str], *, labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = dict(labels)
        return self.put_object(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": dict(data)}
        )

    def add_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str | bytes],
        *,
        secret_type: str = "Opaque",
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A Secret with `data` base64-encoded from the given plain values."""
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = dict(labels)
        if annotations:
            metadata["annotations"] = dict(annotations)
        return self.put_object(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": metadata,
                "type": secret_type,
                "data": {k: _b64(v) for k, v in data.items()},
            }
        )

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """The decoded `data` of a Secret, or None when it does not exist."""
        obj = self.get_object("Secret", namespace, name)
        if obj is None:
            return None
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def _commit(self, rt: ResourceType, key: tuple[str, str, str, str], obj: dict[str, Any]) -> None:
        self._rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
        if "apiVersion" not in obj:
            obj["apiVersion"] = rt.api_version(rt.versions[0])
        obj["kind"] = rt.kind
        self._objects[key] = obj

    # -- kubeconfig ---------------------------------------------------------------------------------
    def kubeconfig(
        self, path: str | Path, token: str, *, namespace: str = "default", user: str = "user"
    ) -> Path:
        """Write a kubeconfig for `token` that `kubernetes.config.load_kube_config` and kubectl accept."""
        cluster: dict[str, Any] = {"server": self.url}
        if self.ca_pem_path is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem_path.read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {"name": "emulator", "context": {"cluster": "emulator", "user": user, "namespace": namespace}}
            ],
            "current-context": "emulator",
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        target.chmod(0o600)
        return target

    # -- HTTP ---------------------------------------------------------------------------------------
    def error_body(self, status: int, request: Request) -> Response:
        reason, message = _FAULT_STATUS.get(
            status, ("", f"the server responded with the status code {status}")
        )
        details = {"retryAfterSeconds": 1} if status == 429 else None
        headers = {"Retry-After": "1"} if status == 429 else None
        return Response.json(status, status_object(status, reason, message, details), headers=headers)

    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        retry_after = (response.headers or {}).get("Retry-After")
        if retry_after and response.status >= 400 and response.body.startswith(b'{"kind": "Status"'):
            # keep the body's retryAfterSeconds in step with an injected Retry-After header
            body = json.loads(response.body)
            body.setdefault("details", {})["retryAfterSeconds"] = max(1, round(float(retry_after)))
            body["code"] = body.pop("code")
            response.body = json.dumps(body).encode()
        return response

    def handle(self, request: Request) -> Response:
        try:
            return self._handle(request)
        except ApiError as error:
            return error.response()

    def _authenticate(self, request: Request) -> Identity | None:
        token = request.bearer
        if token is None:
            if "authorization" in request.headers:
                raise err_unauthorized()
            return None
        try:
            return self._verify_token(token, self.api_audiences)
        except AuthnError:
            raise err_unauthorized() from None

    def _handle(self, request: Request) -> Response:
        user = self._authenticate(request)
        path = request.path.rstrip("/") or "/"
        if user is None:
            if self.anonymous_auth and path in PUBLIC_PATHS:
                return self._non_resource(path)
            raise err_unauthorized()
        parts = [p for p in path.split("/") if p]
        is_resource = (len(parts) >= 3 and parts[0] == "api") or (len(parts) >= 4 and parts[0] == "apis")
        if not is_resource:
            if request.method not in ("GET", "HEAD"):
                raise ApiError(405, "MethodNotAllowed", _FAULT_STATUS[405][1], {})
            if not user.admin and not self._non_resource_allowed(path):
                message = f'forbidden: User "{user.username}" cannot get path "{request.path}"'
                raise ApiError(403, "Forbidden", message, {})
            return self._non_resource(path)
        info = self._request_info(request, parts)
        check_name = info.name or info.field_name
        resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
        if not self.is_allowed(user, info.verb, info.group, resource, info.namespace, check_name):
            message = forbidden_message(
                user.username,
                info.verb,
                info.group,
                info.resource,
                info.namespace,
                info.name,
                info.subresource,
            )
            raise ApiError(403, "Forbidden", message, _details(info.group, info.resource, info.name))
        if (info.group, info.resource) in REVIEW_RESOURCES:
            return self._review(request, info, user)
        rt = self._served_type(info.group, info.version, info.resource)
        if rt is None or (info.subresource and not (info.subresource == "status" and rt.status_subresource)):
            raise err_not_served()
        if info.namespace and not rt.namespaced:
            raise err_not_served()
        if rt.namespaced and not info.namespace and info.verb != "list":
            raise err_not_served()  # e.g. GET /api/v1/configmaps/x
        return self._resource(request, info, rt)

    @staticmethod
    def _non_resource_allowed(path: str) -> bool:
        return (
            path in PUBLIC_PATHS
            or path in ("/api", "/apis", "/.well-known/openid-configuration", "/openid/v1/jwks")
            or path.startswith(("/api/", "/apis/"))
        )

    def _request_info(self, request: Request, parts: list[str]) -> _RequestInfo:
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        else:
            group, version, rest = parts[1], parts[2], parts[3:]
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise err_not_served()
        resource = rest[0]
        name = rest[1] if len(rest) > 1 else ""
        subresource = rest[2] if len(rest) > 2 else ""
        method = request.method
        watch = (request.q("watch") or "").lower() in ("true", "1")
        verb = {
            "GET": "get" if name else ("watch" if watch else "list"),
            "HEAD": "get" if name else "list",
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection",
        }.get(method, method.lower())
        field_name = ""
        if verb in ("list", "watch") and request.q("fieldSelector"):
            for term in _split_selector(request.q("fieldSelector") or ""):
                match = re.fullmatch(r"metadata\.name\s*==?\s*(\S+)", term)
                if match:
                    field_name = match.group(1)
        return _RequestInfo(verb, group, version, namespace, resource, name, subresource, field_name)

    def _served_type(self, group: str, version: str, plural: str) -> ResourceType | None:
        for rt in self._types:
            if rt.group == group and rt.plural == plural and version in rt.versions:
                return rt
        return None

    # -- discovery ----------------------------------------------------------------------------------
    def _group_versions(self) -> dict[str, list[str]]:
        """Served API groups (excluding core) → versions, preferred first."""
        groups: dict[str, list[str]] = {
            "authentication.k8s.io": ["v1"],
            "authorization.k8s.io": ["v1"],
        }
        eso: set[str] = set()
        for rt in self._types:
            if rt.group == ESO_GROUP:
                eso.update(rt.versions)
        groups[ESO_GROUP] = sorted(eso, key=_kube_version_key)
        return groups

    def _api_group(self, name: str, versions: list[str]) -> dict[str, Any]:
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": entries, "preferredVersion": entries[0]}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for rt in self._types:
            if rt.group != group or version not in rt.versions:
                continue
            entry: dict[str, Any] = {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": list(rt.verbs),
            }
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            if rt.categories:
                entry["categories"] = list(rt.categories)
            resources.append(entry)
            if rt.status_subresource:
                resources.append(
                    {
                        "name": f"{rt.plural}/status",
                        "singularName": "",
                        "namespaced": rt.namespaced,
                        "kind": rt.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        for (review_group, plural), (kind, review_version) in REVIEW_RESOURCES.items():
            if review_group == group and review_version == version:
                resources.append(
                    {
                        "name": plural,
                        "singularName": kind.lower(),
                        "namespaced": False,
                        "kind": kind,
                        "verbs": ["create"],
                    }
                )
        group_version = f"{group}/{version}" if group else version
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }

    def _non_resource(self, path: str) -> Response:
        if path == "/version":
            major, minor = self.kube_version.lstrip("v").split(".")[:2]
            return Response.json(
                200,
                {
                    "major": major,
                    "minor": minor,
                    "gitVersion": self.kube_version,
                    "gitCommit": "0000000000000000000000000000000000000000",
                    "gitTreeState": "clean",
                    "buildDate": "2025-01-01T00:00:00Z",
                    "goVersion": "go1.24.0",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                },
            )
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(200, b"ok", {"Content-Type": "text/plain; charset=utf-8"})
        if path == "/.well-known/openid-configuration":
            return Response.json(
                200,
                {
                    "issuer": self.issuer,
                    "jwks_uri": f"{self.url}/openid/v1/jwks",
                    "response_types_supported": ["id_token"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                },
            )
        if path == "/openid/v1/jwks":
            return Response.json(200, self.jwks(), content_type="application/jwk-set+json")
        if path == "/api":
            return Response.json(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}
                    ],
                },
            )
        if path == "/api/v1":
            return Response.json(200, self._resource_list("", "v1"))
        groups = self._group_versions()
        if path == "/apis":
            return Response.json(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [self._api_group(name, versions) for name, versions in groups.items()],
                },
            )
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
            return Response.json(
                200, {"kind": "APIGroup", "apiVersion": "v1", **self._api_group(parts[1], groups[parts[1]])}
            )
        if len(parts) == 3 and parts[0] == "apis" and parts[2] in groups.get(parts[1], []):
            return Response.json(200, self._resource_list(parts[1], parts[2]))
        raise err_not_served()

    # -- reviews ------------------------------------------------------------------------------------
    def _review(self, request: Request, info: _RequestInfo, user: Identity) -> Response:
        kind, version = REVIEW_RESOURCES[(info.group, info.resource)]
        if info.version != version or info.namespace or info.name:
            raise err_not_served()
        if info.verb != "create":
            raise err_method_not_supported(info.group, info.resource, info.verb)
        body = _json_body(request)
        if not isinstance(body, dict):
            raise err_bad_request(
                f"json: cannot unmarshal {type(body).__name__} into Go value of type {kind}"
            )
        expected = f"{info.group}/{version}"
        if body.get("apiVersion") not in (None, "", expected) or body.get("kind") not in (None, "", kind):
            raise err_bad_request(
                f"the API version in the data ({body.get('apiVersion')}) does not match the expected "
                f"API version ({expected})"
            )
        spec = _dict_field(body, "spec")
        if kind == "TokenReview":
            status = self._token_review_status(spec)
        elif kind == "SelfSubjectReview":
            status = {"userInfo": user.user_info()}
        else:
            status = self._access_review_status(spec, user)
        meta = _dict_field(body, "metadata")
        meta = {k: v for k, v in meta.items() if v is not None}
        meta["creationTimestamp"] = None
        response = {"kind": kind, "apiVersion": expected, "metadata": meta, "spec": spec, "status": status}
        return Response.json(201, response)

    def _token_review_status(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        token = spec.get("token")
        if not isinstance(token, str) or not token:
            # UNCONFIRMED wording (kube registry/authentication/tokenreview)
            raise err_bad_request("token is required for TokenReviewSpec in *authentication.TokenReview")
        requested = spec.get("audiences") or []
        audiences = tuple(str(a) for a in requested) if requested else self.api_audiences
        try:
            identity = self._verify_token(token, audiences)
        except AuthnError as failure:
            return {"user": {}, "error": str(failure)}
        return {"authenticated": True, "user": identity.user_info(), "audiences": list(identity.audiences)}

    def _access_review_status(self, spec: Mapping[str, Any], user: Identity) -> dict[str, Any]:
        attrs = spec.get("resourceAttributes")
        if isinstance(attrs, dict):
            resource = str(attrs.get("resource", ""))
            if attrs.get("subresource"):
                resource = f"{resource}/{attrs['subresource']}"
            allowed = self.is_allowed(
                user,
                str(attrs.get("verb", "")),
                str(attrs.get("group", "")),
                resource,
                str(attrs.get("namespace", "")),
                str(attrs.get("name", "")),
            )
        else:
            non_resource = spec.get("nonResourceAttributes") or {}
            allowed = user.admin or self._non_resource_allowed(str(non_resource.get("path", "")))
        status: dict[str, Any] = {"allowed": allowed}
        if allowed:
            status["reason"] = (
                "RBAC: allowed by ClusterRoleBinding" if user.admin else "RBAC: allowed by RoleBinding"
            )
        return status

    # -- resources ----------------------------------------------------------------------------------
    def _resource(self, request: Request, info: _RequestInfo, rt: ResourceType) -> Response:
        verb = info.verb
        if verb in ("list", "watch") or (verb == "create" and not info.name):
            if verb == "watch":
                raise err_method_not_supported(rt.group, rt.plural, "watch")
            if verb == "list":
                return self._list(request, info, rt)
            if info.subresource:
                raise err_not_served()
            return self._create(request, info, rt)
        if not info.name:
            raise err_method_not_supported(rt.group, rt.plural, verb)
        if verb == "get":
            return Response.json(200, self._render(self._existing(rt, info), rt, info.version))
        if verb == "update":
            return self._update(request, info, rt)
        if verb == "patch":
            return self._patch(request, info, rt)
        if verb == "delete" and not info.subresource:
            return self._delete(request, info, rt)
        raise err_method_not_supported(rt.group, rt.plural, verb)

    def _key(
        self, rt: ResourceType, info: _RequestInfo, name: str | None = None
    ) -> tuple[str, str, str, str]:
        return (rt.group, rt.plural, info.namespace if rt.namespaced else "", name or info.name)

    def _existing(self, rt: ResourceType, info: _RequestInfo) -> dict[str, Any]:
        with self._lock:
            obj = self._objects.get(self._key(rt, info))
            if obj is None:
                raise err_not_found(rt.group, rt.plural, info.name)
            return copy.deepcopy(obj)

    @staticmethod
    def _render(
        obj: Mapping[str, Any], rt: ResourceType, version: str, *, with_type: bool = True
    ) -> dict[str, Any]:
        body = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("apiVersion", "kind")}
        if not with_type:
            return body
        return {"apiVersion": rt.api_version(version), "kind": rt.kind, **body}

    def _list(self, request: Request, info: _RequestInfo, rt: ResourceType) -> Response:
        label_selector = request.q("labelSelector") or ""
        allowed_fields = ["metadata.name", "metadata.namespace"] + (["type"] if rt is SECRETS else [])
        field_terms = parse_field_selector(request.q("fieldSelector") or "", allowed_fields)
        with self._lock:
            items = []
            for (group, plural, namespace, _), obj in sorted(self._objects.items()):
                if (group, plural) != (rt.group, rt.plural):
                    continue
                if info.namespace and namespace != info.namespace:
                    continue
                if label_selector and not label_selector_matches(
                    label_selector, obj["metadata"].get("labels") or {}
                ):
                    continue
                if any((_field_value(obj, f) == v) != equal for f, equal, v in field_terms):
                    continue
                # core lists carry no per-item apiVersion/kind; custom resource lists do
                items.append(self._render(obj, rt, info.version, with_type=rt.custom))
            rv = str(self._rv)
        return Response.json(
            200,
            {
                "apiVersion": rt.api_version(info.version),
                "kind": f"{rt.kind}List",
                "metadata": {"resourceVersion": rv},
                "items": items,
            },
        )

    def _check_type(self, body: Mapping[str, Any], rt: ResourceType, version: str) -> None:
        expected = rt.api_version(version)
        if body.get("apiVersion") not in (None, "", expected):
            raise err_bad_request(
                f"the API version in the data ({body.get('apiVersion')}) does not match the expected "
                f"API version ({expected})"
            )
        if body.get("kind") not in (None, "", rt.kind):
            raise err_bad_request(
                f"the kind in the data ({body.get('kind')}) does not match the expected kind ({rt.kind})"
            )

    def _create(self, request: Request, info: _RequestInfo, rt: ResourceType) -> Response:
        body = _object_body(request, rt)
        self._check_type(body, rt, info.version)
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise err_bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", info.namespace):
                raise err_bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = info.namespace
        name = str(meta.get("name") or "")
        if not name and meta.get("generateName"):
            name = f"{meta['generateName']}{secrets.token_hex(3)[:5]}"
            meta["name"] = name
        for server_field in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "managedFields",
        ):
            meta.pop(server_field, None)
        if rt.status_subresource:
            body.pop("status", None)
        if rt is SECRETS:
            _fold_string_data(body)
        errors = _validate(body, rt, name, creating=True)
        if errors:
            raise err_invalid(rt, name, errors)
        dry_run = request.q("dryRun") == "All"
        with self._lock:
            if rt.namespaced and ("", "namespaces", "", info.namespace) not in self._objects:
                raise err_not_found("", "namespaces", info.namespace)
            key = self._key(rt, info, name)
            if key in self._objects:
                raise err_already_exists(rt, name)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now_rfc3339(self.clock())
            if rt.custom:
                meta["generation"] = 1
            stored = self._render(body, rt, rt.versions[0])
            if not dry_run:
                self._commit(rt, key, stored)
            return Response.json(201, self._render(stored, rt, info.version))

    def _update(self, request: Request, info: _RequestInfo, rt: ResourceType) -> Response:
        body = _object_body(request, rt)
        self._check_type(body, rt, info.version)
        meta = _dict_field(body, "metadata")
        if meta.get("name") not in (None, "", info.name):
            raise err_bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                f"({info.name})"
            )
        if rt.namespaced and meta.get("namespace") not in (None, "", info.namespace):
            raise err_bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        with self._lock:
            current = self._existing(rt, info)
            sent_rv = meta.get("resourceVersion")
            if not sent_rv and rt.custom:
                # CRs do not allow unconditional update
                raise err_invalid(
                    rt,
                    info.name,
                    [
                        FieldError(
                            "metadata.resourceVersion",
                            "FieldValueInvalid",
                            "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                        )
                    ],
                )
            if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                raise err_conflict(rt, info.name)
            return self._store_update(request, info, rt, current, body)

    def _patch(self, request: Request, info: _RequestInfo, rt: ResourceType) -> Response:
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        accepted = (
            [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
            if rt.custom
            else [JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH]
        )
        if content_type not in accepted or content_type == APPLY_PATCH:
            if content_type == APPLY_PATCH:
                message = "server-side apply (application/apply-patch+yaml) is not emulated"
            else:
                message = (
                    "the body of the request was in an unknown format - accepted media types include: "
                    + ", ".join(accepted)
                )
            raise ApiError(415, "UnsupportedMediaType", message)
        patch_doc = _json_body(request)
        with self._lock:
            current = self._existing(rt, info)
            original = self._render(current, rt, info.version)
            try:
                if content_type == JSON_PATCH:
                    patched = json_patch(original, patch_doc)
                elif content_type == MERGE_PATCH:
                    if not isinstance(patch_doc, dict):
                        raise PatchError(
                            f"json: cannot unmarshal {_json_type(patch_doc)} into Go value of type "
                            "map[string]interface {}",
                            decode=True,
                        )
                    patched = merge_patch(original, patch_doc)
                else:
                    if not isinstance(patch_doc, dict):
                        raise PatchError(
                            f"json: cannot unmarshal {_json_type(patch_doc)} into Go value of type "
                            "map[string]interface {}",
                            decode=True,
                        )
                    patched = strategic_merge_patch(original, patch_doc)
            except PatchError as failure:
                if failure.decode:
                    raise err_bad_request(str(failure)) from None
                # UNCONFIRMED: apiserver wraps json-patch application errors as a 422 generic response
                raise ApiError(422, "Invalid", str(failure)) from None
            if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
                raise err_bad_request("Object 'metadata' is missing or not an object")
            sent_rv = patched["metadata"].get("resourceVersion")
            if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                raise err_conflict(rt, info.name)
            self._check_type(patched, rt, info.version)
            return self._store_update(request, info, rt, current, patched)

    def _store_update(
        self,
        request: Request,
        info: _RequestInfo,
        rt: ResourceType,
        current: dict[str, Any],
        body: dict[str, Any],
    ) -> Response:
        """Shared tail of PUT and PATCH (lock held): immutable fields, status split, validation, commit."""
        old_meta = current["metadata"]
        if info.subresource == "status":
            new = copy.deepcopy(current)
            if "status" in body:
                new["status"] = copy.deepcopy(body["status"])
            else:
                new.pop("status", None)
        else:
            new = copy.deepcopy(body)
            if rt.status_subresource:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
            meta = new.setdefault("metadata", {})
            if not isinstance(meta, dict):
                raise err_bad_request("metadata must be an object")
            for kept in ("name", "namespace", "uid", "creationTimestamp", "generation"):
                if kept in old_meta:
                    meta[kept] = old_meta[kept]
                else:
                    meta.pop(kept, None)
            meta.pop("managedFields", None)
            if rt is SECRETS:
                _fold_string_data(new)
            errors = _validate(new, rt, info.name, creating=False)
            if errors:
                raise err_invalid(rt, info.name, errors)
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        stored = self._render(new, rt, rt.versions[0])
        before = self._render(current, rt, rt.versions[0])
        if stored == before:  # a no-op write does not bump resourceVersion
            return Response.json(200, self._render(current, rt, info.version))
        if rt.custom and _spec_of(stored) != _spec_of(before):
            stored["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        if request.q("dryRun") != "All":
            self._commit(rt, self._key(rt, info), stored)
        return Response.json(200, self._render(stored, rt, info.version))

    def _delete(self, request: Request, info: _RequestInfo, rt: ResourceType) -> Response:
        with self._lock:
            current = self._existing(rt, info)
            if request.q("dryRun") != "All":
                del self._objects[self._key(rt, info)]
                self._rv += 1
        # UNCONFIRMED for custom resources (some storages return the deleted object instead)
        details = _details(rt.group, rt.plural, info.name, uid=current["metadata"]["uid"])
        return Response.json(
            200,
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details},
        )


# -- body parsing and validation -----------------------------------------------------------------------
def _json_body(request: Request) -> Any:
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise err_bad_request(f"error decoding request body: {exc}") from None


def _object_body(request: Request, rt: ResourceType) -> dict[str, Any]:
    body = _json_body(request)
    if not isinstance(body, dict):
        raise err_bad_request(f"json: cannot unmarshal {type(body).__name__} into Go value of type {rt.kind}")
    return body


def _dict_field(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Everything generation tracks: all but metadata, status, apiVersion and kind."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _fold_string_data(obj: dict[str, Any]) -> None:
    """Secret `stringData` is write-only: merged into base64 `data` and dropped."""
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {}) or {}
        for key, value in string_data.items():
            data[key] = _b64(str(value))
        obj["data"] = data
    if obj.get("type") in (None, ""):
        obj["type"] = "Opaque"


def _string_map_error(path: str, value: Any) -> None:
    """Type errors are decode failures (400), as Go's json decoder reports them."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise err_bad_request(
            f"json: cannot unmarshal {_json_type(value)} into Go struct field {path} "
            "of type map[string]string"
        )
    for item in value.values():
        if not isinstance(item, str):
            raise err_bad_request(
                f"json: cannot unmarshal {_json_type(item)} into Go struct field {path} of type string"
            )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _qualified_name_errors(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    problems = []
    if "/" in key and (not prefix or not DNS1123_SUBDOMAIN.match(prefix) or len(prefix) > 253):
        problems.append(f"prefix part {SUBDOMAIN_MSG}")
    if not name or len(name) > 63 or not QUALIFIED_NAME_PART.match(name):
        problems.append(
            QUALIFIED_NAME_MSG if name and len(name) <= 63 else "name part must be no more than 63 characters"
        )
    return problems


def _validate(obj: Mapping[str, Any], rt: ResourceType, name: str, *, creating: bool) -> list[FieldError]:
    meta = obj.get("metadata") or {}
    _string_map_error("ObjectMeta.metadata.labels", meta.get("labels"))
    _string_map_error("ObjectMeta.metadata.annotations", meta.get("annotations"))
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
        errors.extend(invalid_value("metadata.annotations", key, p) for p in _qualified_name_errors(key))
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
        errors.extend(invalid_value("metadata.labels", key, p) for p in _qualified_name_errors(key))
        if value and (len(value) > 63 or not QUALIFIED_NAME_PART.match(value)):
            errors.append(
                invalid_value(
                    "metadata.labels",
                    value,
                    LABEL_VALUE_MSG,
                )
            )
    if rt in (CONFIGMAPS, SECRETS):
        data = obj.get("data")
        if data is not None and not isinstance(data, dict):
            raise err_bad_request(
                f"json: cannot unmarshal {_json_type(data)} into Go struct field {rt.kind}.data "
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
                    f"json: cannot unmarshal {_json_type(value)} into Go struct field {rt.kind}.data "
                    "of type string"
                )
            if rt is SECRETS:
                try:
                    base64.b64decode(value, validate=True)
                except ValueError:
                    raise err_bad_request(f"illegal base64 data in {rt.kind}.data[{key}]") from None
    return errors


# -- standalone mode -------------------------------------------------------------------------------------
def load_seed(emulator: KubeEmulator, seed: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Apply a seed document; returns the seeded service accounts as (namespace, name).

    ```yaml
    namespaces: [apps]                       # optional; objects and accounts create theirs anyway
    serviceAccounts:
      - namespace: secret-origin
        name: client-patcher
        tokenReview: true                    # optional: system:auth-delegator
        tokenAudiences: [https://kubernetes.default.svc]   # optional, for the written token
        grants:
          - namespace: apps                  # omit or null: cluster-wide (ClusterRole)
            verbs: [get, list, patch]
            group: external-secrets.io       # "" for core
            resource: externalsecrets
            resourceNames: [app]             # optional
    objects:                                 # any served kind, as manifests
      - apiVersion: external-secrets.io/v1
        kind: ExternalSecret
        metadata: {name: app, namespace: apps}
        spec: {refreshInterval: 1h, refreshPolicy: OnChange}
    ```
    """
    unknown = set(seed) - {"namespaces", "serviceAccounts", "objects", "esoVersions"}
    if unknown:
        raise ValueError(f"seed: unknown top-level keys {sorted(unknown)}")
    for namespace in seed.get("namespaces") or []:
        emulator.add_namespace(str(namespace))
    accounts: list[tuple[str, str]] = []
    for index, account in enumerate(seed.get("serviceAccounts") or []):
        where = f"seed serviceAccounts[{index}]"
        try:
            namespace, name = str(account["namespace"]), str(account["name"])
        except (KeyError, TypeError):
            raise ValueError(f"{where}: needs namespace and name") from None
        emulator.add_service_account(namespace, name)
        if account.get("tokenReview"):
            emulator.allow_token_review(namespace, name)
        for grant_index, grant in enumerate(account.get("grants") or []):
            try:
                emulator.grant(
                    grant.get("namespace"),
                    namespace,
                    name,
                    verbs=list(grant["verbs"]),
                    group=str(grant.get("group", "")),
                    resource=str(grant["resource"]),
                    resource_names=grant.get("resourceNames"),
                )
            except (KeyError, TypeError, AttributeError):
                raise ValueError(f"{where}.grants[{grant_index}]: needs verbs and resource") from None
        accounts.append((namespace, name))
    for index, manifest in enumerate(seed.get("objects") or []):
        try:
            emulator.put_object(manifest)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"seed objects[{index}]: {exc}") from None
    return accounts


def _write_account_files(
    emulator: KubeEmulator, out: Path, namespace: str, name: str, audiences: Iterable[str], lifetime: int
) -> Path:
    """`out/serviceaccounts/<ns>/<name>/` laid out like /var/run/secrets/kubernetes.io/serviceaccount."""
    directory = out / "serviceaccounts" / namespace / name
    directory.mkdir(parents=True, exist_ok=True)
    token = emulator.issue_token(namespace, name, audiences=audiences, lifetime=lifetime)
    (directory / "token").write_text(token)
    (directory / "token").chmod(0o600)
    (directory / "namespace").write_text(namespace)
    if emulator.ca_pem_path is not None:
        (directory / "ca.crt").write_bytes(emulator.ca_pem_path.read_bytes())
    emulator.kubeconfig(directory / "kubeconfig", token, namespace=namespace, user=f"{namespace}-{name}")
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.kube", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=Path, help="YAML seed file (see emulators.kube.load_seed)")
    parser.add_argument(
        "--out", type=Path, default=Path(".kube-emulator"), help="where kubeconfigs and tokens go"
    )
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--eso-versions", help="comma-separated, e.g. v1 or v1beta1 (default: seed or v1)")
    parser.add_argument("--token-lifetime", type=int, default=86400)
    args = parser.parse_args(argv)
    seed: dict[str, Any] = {}
    if args.seed:
        loaded = yaml.safe_load(args.seed.read_text())
        if loaded is not None and not isinstance(loaded, dict):
            parser.error(f"{args.seed}: the seed must be a mapping")
        seed = loaded or {}
    versions = args.eso_versions.split(",") if args.eso_versions else seed.get("esoVersions") or ["v1"]
    emulator = KubeEmulator(eso_versions=versions, tls=args.tls, host=args.host, port=args.port)
    try:
        accounts = load_seed(emulator, seed)
    except ValueError as exc:
        print(f"{args.seed}: {exc}", file=sys.stderr)
        return 2
    emulator.start()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    admin = emulator.kubeconfig(out / "kubeconfig", emulator.admin_token, user="admin")
    audiences_by_account = {
        (str(a["namespace"]), str(a["name"])): a.get("tokenAudiences") or [DEFAULT_AUDIENCE]
        for a in seed.get("serviceAccounts") or []
    }
    written = {
        f"{ns}/{name}": str(
            _write_account_files(
                emulator, out, ns, name, audiences_by_account[(ns, name)], args.token_lifetime
            )
        )
        for ns, name in accounts
    }
    summary = {
        "url": emulator.url,
        "kubeconfig": str(admin),
        "ca": str(emulator.ca_pem_path) if emulator.ca_pem_path else None,
        "serviceAccounts": written,
    }
    print(json.dumps(summary), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
