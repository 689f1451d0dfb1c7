"""Kubernetes through the official client: read and annotate ESO ExternalSecrets.

Configuration is the in-cluster service account when running in a pod, else `KUBECONFIG` (or
`~/.kube/config`). The ExternalSecret API version is discovered once per client: `external-secrets.io/v1`
(ESO >= 0.17 serves nothing older), falling back to `v1beta1` only when the cluster does not serve v1
(docs/design.md#traps, trap 10). `annotate_force_sync` sends a JSON merge patch on
`metadata.annotations` — the custom-object default content type, which leaves every other annotation
alone.

`ApiException` and urllib3 errors leave this module only as `jobs.core.errors` classes, carrying the
object's namespace/name and the API server's `reason` and `message` (a Status never holds a secret).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import kubernetes.client
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from jobs.core import traffic
from jobs.core.clients.kube_config import load_configuration, use_client_cert_context
from jobs.core.clients.kube_objects import decoded, digests, external_secret_state
from jobs.core.errors import (
    ClientError,
    NotFound,
    Permanent,
    from_status,
    unreachable,
)
from jobs.core.eso import ESO_GROUP
from jobs.core.logs import register_secret
from jobs.core.observed import FORCE_SYNC, ExternalSecretState
from jobs.core.retry import Breaker, RetryPolicy, parse_retry_after

__all__ = ["ES_PLURAL", "SYSTEM", "KubeClient", "load_configuration"]
log = logging.getLogger(__name__)
SYSTEM: Final = "kubernetes"
ES_PLURAL: Final = "externalsecrets"
PREFERRED_VERSIONS: Final = ("v1", "v1beta1")
LIST_PAGE: Final = 500  # ExternalSecrets per LIST page (one request for any usual namespace)
T = TypeVar("T")


def _status_body(exc: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(exc: ApiException) -> float | None:
    headers = exc.headers or {}
    return parse_retry_after(headers.get("Retry-After") if hasattr(headers, "get") else None)


def _translate(exc: Exception, what: str, target: str = "the Kubernetes API") -> ClientError:
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        body = _status_body(exc)
        reason = str(body.get("reason") or exc.reason or "")
        message = str(body.get("message") or "")
        details = body.get("details") if isinstance(body.get("details"), dict) else {}
        if status == 404 and not (details or {}).get("name"):
            # The version or the CRD is not served (docs/design.md#traps, trap 10).
            label = f"{status} {reason}".strip() + (f": {message}" if message else "")
            return NotFound(SYSTEM, f"{what}: API not served ({label})")
        return from_status(SYSTEM, status, what, message, reason=reason, retry_after=_retry_after(exc))
    if isinstance(exc, urllib3.exceptions.HTTPError):
        return unreachable(SYSTEM, what, target, exc)
    return Permanent(SYSTEM, f"{what}: {type(exc).__name__}")


class KubeClient:
    """ExternalSecret read/annotate and Secret reads. Build once in the entrypoint; `close()` at the end."""

    def __init__(
        self,
        configuration: kubernetes.client.Configuration | None = None,
        retry: RetryPolicy | None = None,
        *,
        timeout: float = 10.0,
        field_manager: str = "client-patcher",
        connections: int = 0,
    ) -> None:
        """`connections`: HTTP connections kept for reuse, at least the threads sharing this client."""
        configuration = configuration or load_configuration()
        if connections > (configuration.connection_pool_maxsize or 0):
            configuration.connection_pool_maxsize = connections
        self.target = f"the Kubernetes API at {configuration.host}"
        self._breaker = Breaker(SYSTEM, self.target)
        self._api = kubernetes.client.ApiClient(configuration)
        use_client_cert_context(self._api, configuration)
        self._custom = kubernetes.client.CustomObjectsApi(self._api)
        self._apis = kubernetes.client.ApisApi(self._api)
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._field_manager = field_manager
        self._version: str | None = None
        self._discovery = threading.Lock()

    def _core(self) -> kubernetes.client.CoreV1Api:
        """Built when first needed: its module alone costs a few hundred ms of CPU to import."""
        return kubernetes.client.CoreV1Api(self._api)

    @property
    def api_client(self) -> kubernetes.client.ApiClient:
        return self._api  # the one connection pool, shared with kube_events

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, fn: Callable[[float], T]) -> T:
        def attempt() -> T:
            try:
                result = fn(self._retry.timeout(self._timeout))
            except (ApiException, urllib3.exceptions.HTTPError) as exc:
                traffic.record(SYSTEM, getattr(exc, "status", None))  # urllib3: no answer
                raise _translate(exc, what, self.target) from None
            traffic.record(SYSTEM, 200)
            return result

        return self._retry.call(attempt, self._breaker)

    # -- discovery ---------------------------------------------------------------------------------
    def external_secret_version(self) -> str:
        """The ExternalSecret version to use, discovered once (whichever thread asks first; the
        others wait for its answer): v1, else v1beta1 (never older)."""
        if self._version is not None:
            return self._version
        with self._discovery:
            if self._version is None:
                self._version = self._discover()
            return self._version

    def _discover(self) -> str:
        groups = self._call("GET /apis", lambda t: self._apis.get_api_versions(_request_timeout=t))
        served: list[str] = []
        for group in groups.groups or []:
            if group.name == ESO_GROUP:
                served = [v.version for v in group.versions or []]
        for version in PREFERRED_VERSIONS:
            if version in served:
                if version != PREFERRED_VERSIONS[0]:
                    log.warning(
                        "the cluster does not serve external-secrets.io/v1; using an older version",
                        extra={"version": version, "served": served},
                    )
                return version
        raise NotFound(
            SYSTEM,
            f"GET /apis: {ESO_GROUP} serves {served or 'no versions'}; need v1 (or v1beta1): "
            "is External Secrets Operator installed?",
        )

    def _path(self, version: str, namespace: str, name: str) -> str:
        return f"/apis/{ESO_GROUP}/{version}/namespaces/{namespace}/{ES_PLURAL}/{name}"

    # -- ExternalSecrets ---------------------------------------------------------------------------
    def get_external_secret_object(self, namespace: str, name: str) -> Mapping[str, Any]:
        """The whole ExternalSecret as the API returns it."""
        version = self.external_secret_version()
        path = self._path(version, namespace, name)
        obj = self._call(
            f"GET {path}",
            lambda t: self._custom.get_namespaced_custom_object(
                ESO_GROUP, version, namespace, ES_PLURAL, name, _request_timeout=t
            ),
        )
        if not isinstance(obj, dict):
            raise Permanent(SYSTEM, f"GET {path}: the response is not an object")
        return obj

    def get_external_secret(self, namespace: str, name: str) -> ExternalSecretState:
        obj = self.get_external_secret_object(namespace, name)
        return external_secret_state(obj, namespace, name, f"{ESO_GROUP}/{self.external_secret_version()}")

    def list_external_secrets(self, namespace: str) -> dict[str, ExternalSecretState]:
        """Every ExternalSecret of `namespace` by name: one LIST (more only past `LIST_PAGE` objects)."""
        version = self.external_secret_version()
        path = f"/apis/{ESO_GROUP}/{version}/namespaces/{namespace}/{ES_PLURAL}"
        found: dict[str, ExternalSecretState] = {}
        token: str | None = None
        while True:
            page = self._list_page(path, version, namespace, token)
            for obj in page.get("items") or []:
                name = str(((obj.get("metadata") if isinstance(obj, dict) else None) or {}).get("name") or "")
                if name:
                    found[name] = external_secret_state(obj, namespace, name, f"{ESO_GROUP}/{version}")
            token = str((page.get("metadata") or {}).get("continue") or "") or None
            if token is None:
                return found

    def _list_page(self, path: str, version: str, namespace: str, token: str | None) -> dict[str, Any]:
        extra: dict[str, Any] = {"_continue": token} if token else {}
        page = self._call(
            f"LIST {path}",
            lambda t: self._custom.list_namespaced_custom_object(
                ESO_GROUP, version, namespace, ES_PLURAL, limit=LIST_PAGE, _request_timeout=t, **extra
            ),
        )
        if not isinstance(page, dict):
            raise Permanent(SYSTEM, f"LIST {path}: the response is not a list object")
        return page

    @staticmethod
    def missing_external_secret(namespace: str, name: str, version: str) -> NotFound:
        """What a GET of an ExternalSecret that does not exist raises (for a name a LIST did not hold)."""
        path = f"/apis/{ESO_GROUP}/{version}/namespaces/{namespace}/{ES_PLURAL}/{name}"
        error = from_status(
            SYSTEM, 404, f"GET {path}", f'{ES_PLURAL}.{ESO_GROUP} "{name}" not found', reason="NotFound"
        )
        return error if isinstance(error, NotFound) else NotFound(SYSTEM, str(error))

    def _secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        path = f"/api/v1/namespaces/{namespace}/secrets/{name}"
        try:
            secret = self._call(
                f"GET {path}",
                lambda t: self._core().read_namespaced_secret(name, namespace, _request_timeout=t),
            )
        except NotFound:
            return None
        return decoded(secret.data, f"GET {path}")

    def read_secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """The decoded `data` of a Secret (for `smoke --consumers`); None when it does not exist.
        Every value is registered with the redaction filter before anything could print it."""
        result = self._secret_data(namespace, name)
        for raw in (result or {}).values():
            register_secret(raw.decode("utf-8", errors="replace"))
        return result

    def secret_digests(self, namespace: str, name: str) -> dict[str, str] | None:
        """SHA-256 per key of a Secret's `data` (client-patcher's convergence check); None when it does
        not exist. No value leaves this method."""
        result = self._secret_data(namespace, name)
        return None if result is None else digests(result)

    def annotate_force_sync(self, namespace: str, name: str, value: str) -> str:
        """Merge-patch `metadata.annotations.force-sync`; returns the new resourceVersion."""
        version = self.external_secret_version()
        path = self._path(version, namespace, name)
        body = {"metadata": {"annotations": {FORCE_SYNC: value}}}
        obj = self._call(
            f"PATCH {path}",
            lambda t: self._custom.patch_namespaced_custom_object(
                ESO_GROUP,
                version,
                namespace,
                ES_PLURAL,
                name,
                body,
                field_manager=self._field_manager,
                _request_timeout=t,
            ),
        )
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        return str((meta or {}).get("resourceVersion") or "")
