"""Discovery and the other non-resource paths: /version, health, /api, /apis, the issuer documents."""

from __future__ import annotations

from typing import Any

from emulators.base import Request, Response
from emulators.kube.errors import (
    err_not_served,
)
from emulators.kube.types import (
    ESO_GROUP,
    PUBLIC_PATHS,
    REVIEW_RESOURCES,
    kube_version_key,
)


class Discovery:
    """One handler per non-resource route row (GET and HEAD)."""

    @staticmethod
    def _non_resource_allowed(path: str) -> bool:
        """The paths system:discovery and system:public-info-viewer open to every authenticated user."""
        return (
            path in PUBLIC_PATHS
            or path in ("/api", "/apis", "/.well-known/openid-configuration", "/openid/v1/jwks")
            or path.startswith(("/api/", "/apis/"))
        )

    def _group_versions(self) -> dict[str, list[str]]:
        """Served API groups (excluding core) → versions, preferred first."""
        groups: dict[str, list[str]] = {
            "authentication.k8s.io": ["v1"],
            "authorization.k8s.io": ["v1"],
            "events.k8s.io": ["v1"],
        }
        eso: set[str] = set()
        for rt in self._types:
            if rt.group == ESO_GROUP:
                eso.update(rt.versions)
        groups[ESO_GROUP] = sorted(eso, key=kube_version_key)
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

    def version(self, request: Request) -> Response:
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

    def health(self, request: Request) -> Response:
        return Response(200, b"ok", {"Content-Type": "text/plain; charset=utf-8"})

    def openid_configuration(self, request: Request) -> Response:
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

    def key_set(self, request: Request) -> Response:
        return Response.json(200, self.jwks(), content_type="application/jwk-set+json")

    def api_versions(self, request: Request) -> Response:
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

    def core_resources(self, request: Request) -> Response:
        return Response.json(200, self._resource_list("", "v1"))

    def api_groups(self, request: Request) -> Response:
        groups = self._group_versions()
        return Response.json(
            200,
            {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._api_group(name, versions) for name, versions in groups.items()],
            },
        )

    def api_group(self, request: Request) -> Response:
        name = request.params["group"]
        groups = self._group_versions()
        if name not in groups:
            raise err_not_served()
        return Response.json(
            200, {"kind": "APIGroup", "apiVersion": "v1", **self._api_group(name, groups[name])}
        )

    def group_resources(self, request: Request) -> Response:
        group, version = request.params["group"], request.params["version"]
        if version not in self._group_versions().get(group, []):
            raise err_not_served()
        return Response.json(200, self._resource_list(group, version))
