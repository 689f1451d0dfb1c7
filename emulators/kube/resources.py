"""The resource verbs: get, list, create, update, patch and delete on every served type."""

from __future__ import annotations

import copy
import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from emulators.base import Request, Response
from emulators.kube.errors import (
    ApiError,
    FieldError,
    err_already_exists,
    err_bad_request,
    err_conflict,
    err_invalid,
    err_method_not_supported,
    err_not_found,
    err_not_served,
    forbidden_message,
    status_details,
)
from emulators.kube.events import event_errors
from emulators.kube.json_patch import (
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from emulators.kube.rbac import Identity
from emulators.kube.selectors import (
    field_value,
    label_selector_matches,
    parse_field_selector,
    split_selector,
)
from emulators.kube.types import (
    APPLY_PATCH,
    EVENTS,
    JSON_PATCH,
    MERGE_PATCH,
    REVIEW_RESOURCES,
    SECRETS,
    STRATEGIC_PATCH,
    RequestInfo,
    ResourceType,
    now_rfc3339,
)
from emulators.kube.validation import (
    dict_field,
    fold_string_data,
    json_body,
    json_type_name,
    object_body,
    spec_of,
    validate_object,
)


class Resources:
    """`/api/v1/…` and `/apis/{group}/{version}/…`: request info, RBAC, then the verb."""

    def resource(self, request: Request) -> Response:
        """Every resource row: request info from the path, RBAC, then the review or the verb."""
        info = self._request_info(request)
        user: Identity = request.user
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
            raise ApiError(403, "Forbidden", message, status_details(info.group, info.resource, info.name))
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
    def _request_info(request: Request) -> RequestInfo:
        params = request.params
        name = params.get("name", "")
        watch = (request.q("watch") or "").lower() in ("true", "1")
        verb = {
            "GET": "get" if name else ("watch" if watch else "list"),
            "HEAD": "get" if name else "list",
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection",
        }.get(request.method, request.method.lower())
        field_name = ""
        if verb in ("list", "watch") and request.q("fieldSelector"):
            for term in split_selector(request.q("fieldSelector") or ""):
                match = re.fullmatch(r"metadata\.name\s*==?\s*(\S+)", term)
                if match:
                    field_name = match.group(1)
        return RequestInfo(
            verb,
            params.get("group", ""),
            params["version"],
            params.get("namespace", ""),
            params["resource"],
            name,
            params.get("subresource", ""),
            field_name,
        )

    def _served_type(self, group: str, version: str, plural: str) -> ResourceType | None:
        for rt in self._types:
            if rt.group == group and rt.plural == plural and version in rt.versions:
                return rt
        return None

    def _resource(self, request: Request, info: RequestInfo, rt: ResourceType) -> Response:
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

    def _key(self, rt: ResourceType, info: RequestInfo, name: str | None = None) -> tuple[str, str, str, str]:
        return (rt.group, rt.plural, info.namespace if rt.namespaced else "", name or info.name)

    def _existing(self, rt: ResourceType, info: RequestInfo) -> dict[str, Any]:
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

    def _list(self, request: Request, info: RequestInfo, rt: ResourceType) -> Response:
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
                if any((field_value(obj, f) == v) != equal for f, equal, v in field_terms):
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

    def _create(self, request: Request, info: RequestInfo, rt: ResourceType) -> Response:
        body = object_body(request, rt)
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
            fold_string_data(body)
        errors = validate_object(body, rt, name, creating=True)
        if rt is EVENTS:
            errors.extend(event_errors(body))
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
            meta["creationTimestamp"] = now_rfc3339(self.clock())
            if rt.custom:
                meta["generation"] = 1
            stored = self._render(body, rt, rt.versions[0])
            if not dry_run:
                self._commit(rt, key, stored)
            return Response.json(201, self._render(stored, rt, info.version))

    def _update(self, request: Request, info: RequestInfo, rt: ResourceType) -> Response:
        body = object_body(request, rt)
        self._check_type(body, rt, info.version)
        meta = dict_field(body, "metadata")
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

    def _patch(self, request: Request, info: RequestInfo, rt: ResourceType) -> Response:
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
        patch_doc = json_body(request)
        with self._lock:
            current = self._existing(rt, info)
            original = self._render(current, rt, info.version)
            try:
                if content_type == JSON_PATCH:
                    patched = json_patch(original, patch_doc)
                elif content_type == MERGE_PATCH:
                    if not isinstance(patch_doc, dict):
                        raise PatchError(
                            f"json: cannot unmarshal {json_type_name(patch_doc)} into Go value of type "
                            "map[string]interface {}",
                            decode=True,
                        )
                    patched = merge_patch(original, patch_doc)
                else:
                    if not isinstance(patch_doc, dict):
                        raise PatchError(
                            f"json: cannot unmarshal {json_type_name(patch_doc)} into Go value of type "
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
        info: RequestInfo,
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
                fold_string_data(new)
            errors = validate_object(new, rt, info.name, creating=False)
            if errors:
                raise err_invalid(rt, info.name, errors)
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        stored = self._render(new, rt, rt.versions[0])
        before = self._render(current, rt, rt.versions[0])
        if stored == before:  # a no-op write does not bump resourceVersion
            return Response.json(200, self._render(current, rt, info.version))
        if rt.custom and spec_of(stored) != spec_of(before):
            stored["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        if request.q("dryRun") != "All":
            self._commit(rt, self._key(rt, info), stored)
        return Response.json(200, self._render(stored, rt, info.version))

    def _delete(self, request: Request, info: RequestInfo, rt: ResourceType) -> Response:
        with self._lock:
            current = self._existing(rt, info)
            if request.q("dryRun") != "All":
                del self._objects[self._key(rt, info)]
                self._rv += 1
        # UNCONFIRMED for custom resources (some storages return the deleted object instead)
        details = status_details(rt.group, rt.plural, info.name, uid=current["metadata"]["uid"])
        return Response.json(
            200,
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details},
        )
