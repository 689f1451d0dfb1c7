"""The Kubernetes API server emulator: its state, its route table and its Status errors.

Each concern is one mixin in its own module (the handlers the table names live there); this class holds
the state they share (`__init__`), the route table, and what answers before and around it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.base import EmulatorServer, Request, Response, Route
from emulators.kube.discovery import Discovery
from emulators.kube.errors import (
    FAULT_STATUS,
    ApiError,
    err_not_served,
    err_unauthorized,
    status_object,
)
from emulators.kube.eso_reconciler import EsoReconciler, ValueSource
from emulators.kube.rbac import (
    Identity,
    RbacRules,
    Rule,
)
from emulators.kube.resources import Resources
from emulators.kube.reviews import Reviews
from emulators.kube.store import ObjectStore
from emulators.kube.tokens import (
    ServiceAccountTokens,
)
from emulators.kube.types import (
    ADMIN_USERNAME,
    CONFIGMAPS,
    DEFAULT_AUDIENCE,
    ESO_KNOWN_VERSIONS,
    NAMESPACES,
    PUBLIC_PATHS,
    PUSHSECRETS,
    SECRETS,
    SERVICEACCOUNTS,
    ResourceType,
    external_secrets_type,
)

_ANY = "GET HEAD POST PUT PATCH DELETE"


class KubeEmulator(
    ObjectStore, ServiceAccountTokens, RbacRules, Discovery, Reviews, Resources, EmulatorServer
):
    """The Kubernetes API server slice; see the package docstring."""

    name = "kube"
    poll_interval = 0.05

    trailing_slash = True
    routes = (
        Route("GET HEAD", "/version", Discovery.version),
        Route("GET HEAD", "/healthz", Discovery.health),
        Route("GET HEAD", "/livez", Discovery.health),
        Route("GET HEAD", "/readyz", Discovery.health),
        Route("GET HEAD", "/.well-known/openid-configuration", Discovery.openid_configuration),
        Route("GET HEAD", "/openid/v1/jwks", Discovery.key_set),
        Route("GET HEAD", "/api", Discovery.api_versions),
        Route("GET HEAD", "/api/v1", Discovery.core_resources),
        Route("GET HEAD", "/apis", Discovery.api_groups),
        Route("GET HEAD", "/apis/{group}", Discovery.api_group),
        Route("GET HEAD", "/apis/{group}/{version}", Discovery.group_resources),
        *(
            Route(_ANY, prefix + rest, Resources.resource)
            for prefix in ("/api/{version}", "/apis/{group}/{version}")
            for rest in (
                "/namespaces/{namespace}/{resource}/{name}/{subresource}",
                "/namespaces/{namespace}/{resource}/{name}",
                "/namespaces/{namespace}/{resource}",
                "/{resource}/{name}/{subresource}",
                "/{resource}/{name}",
                "/{resource}",
            )
        ),
    )

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
        self.eso_reconciler: EsoReconciler | None = None  # off unless enable_eso_reconciler
        for namespace in ("default", "kube-system", "kube-public"):
            self.add_namespace(namespace)

    def enable_eso_reconciler(self, source: ValueSource, delay: float = 0.1) -> EsoReconciler:
        """Turn on the ESO reconciler simulation (emulators.kube.eso_reconciler)."""
        self.eso_reconciler = EsoReconciler(self, source, delay)
        return self.eso_reconciler

    def error_body(self, status: int, request: Request) -> Response:
        reason, message = FAULT_STATUS.get(
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
        """Authentication comes before the table: 401 for a bad token, and without one only the public
        paths, and only with `anonymous_auth`."""
        try:
            request.user = self._authenticate(request)
            if request.user is None:
                path = request.path.rstrip("/") or "/"
                if not (self.anonymous_auth and path in PUBLIC_PATHS):
                    raise err_unauthorized()
            return self.route(request)
        except ApiError as error:
            return error.response()

    def not_found(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if (len(parts) >= 3 and parts[0] == "api") or (len(parts) >= 4 and parts[0] == "apis"):
            raise err_not_served()  # a resource path deeper than {resource}/{name}/{subresource}
        if request.method not in ("GET", "HEAD"):
            raise ApiError(405, "MethodNotAllowed", FAULT_STATUS[405][1], {})
        user: Identity = request.user
        if not user.admin and not self._non_resource_allowed(request.path.rstrip("/") or "/"):
            message = f'forbidden: User "{user.username}" cannot get path "{request.path}"'
            raise ApiError(403, "Forbidden", message, {})
        raise err_not_served()

    def method_not_allowed(self, request: Request, allowed: list[str]) -> Response:
        raise ApiError(405, "MethodNotAllowed", FAULT_STATUS[405][1], {})
