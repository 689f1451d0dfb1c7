"""TokenReview, SelfSubjectReview and SelfSubjectAccessReview: create-only, never stored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulators.base import Request, Response
from emulators.kube.errors import (
    err_bad_request,
    err_method_not_supported,
    err_not_served,
)
from emulators.kube.rbac import Identity
from emulators.kube.tokens import AuthnError
from emulators.kube.types import (
    REVIEW_RESOURCES,
    RequestInfo,
)
from emulators.kube.validation import (
    dict_field,
    json_body,
)


class Reviews:
    """What Vault's Kubernetes auth (TokenReview) and `kubectl auth can-i` / `whoami` call."""

    def _review(self, request: Request, info: RequestInfo, user: Identity) -> Response:
        kind, version = REVIEW_RESOURCES[(info.group, info.resource)]
        if info.version != version or info.namespace or info.name:
            raise err_not_served()
        if info.verb != "create":
            raise err_method_not_supported(info.group, info.resource, info.verb)
        body = json_body(request)
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
        spec = dict_field(body, "spec")
        if kind == "TokenReview":
            status = self._token_review_status(spec)
        elif kind == "SelfSubjectReview":
            status = {"userInfo": user.user_info()}
        else:
            status = self._access_review_status(spec, user)
        meta = dict_field(body, "metadata")
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
