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

import contextlib
import json
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import kubernetes.client
import kubernetes.config
import urllib3.exceptions
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from jobs.core.clients.kube_objects import decoded, digests, external_secret_state
from jobs.core.errors import (
    ClientError,
    ConfigError,
    NotFound,
    Permanent,
    from_status,
    unreachable,
)
from jobs.core.eso import ESO_GROUP
from jobs.core.logs import register_secret
from jobs.core.observed import FORCE_SYNC, ExternalSecretState
from jobs.core.retry import Breaker, RetryPolicy, parse_retry_after
from jobs.core.settings import KubeSettings, load_settings

log = logging.getLogger(__name__)
SYSTEM: Final = "kubernetes"
ES_PLURAL: Final = "externalsecrets"
PREFERRED_VERSIONS: Final = ("v1", "v1beta1")
_CLIENT_CERT_CONTEXT: Final = "_secret_origin_client_cert_context"
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


def load_configuration() -> kubernetes.client.Configuration:
    """In-cluster service account if present, else KUBECONFIG; ConfigError when neither works."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        log.debug("Kubernetes: in-cluster service account")
    except ConfigException as in_cluster:
        load_settings(KubeSettings)  # names a KUBECONFIG file that does not exist (the library skips it)
        try:
            # KUBECONFIG is read here, not at import time as the library's default does.
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=os.environ.get("KUBECONFIG") or None, client_configuration=configuration
            )
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            # Never the parser's text: it quotes the token it choked on, which may be the credential.
            raise ConfigError(f"KUBECONFIG is not valid YAML{where} ({type(exc).__name__})") from None
        except (ConfigException, OSError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"no Kubernetes configuration: not in a pod ({in_cluster}) and no usable KUBECONFIG "
                f"({type(exc).__name__}: {exc})"
            ) from None
    configuration.retries = 0  # our RetryPolicy retries; urllib3's own loop would hide attempts
    for credential in (configuration.api_key or {}).values():
        register_secret(str(credential).removeprefix("Bearer ").strip())
    _keys_into_memory(configuration)
    return configuration


def _library_temp_files() -> dict[str, str]:
    files: dict[str, str] = kubernetes.config.kube_config._temp_files
    return files


def _keys_into_memory(configuration: kubernetes.client.Configuration) -> None:
    """The kubernetes client writes kubeconfig `*-data` (client key, certificate, CA) to files in TMPDIR
    and deletes them only at a clean exit: load them into an SSL context now, then delete them, so no
    key material stays on disk after any exit, SIGKILL included. Files the kubeconfig names are kept."""
    written = set(_library_temp_files().values())
    try:
        if configuration.ssl_ca_cert in written:
            configuration.ca_cert_data = Path(configuration.ssl_ca_cert).read_text(encoding="utf-8")
            configuration.ssl_ca_cert = None
        if configuration.cert_file and configuration.key_file:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if not (configuration.ssl_ca_cert or configuration.ca_cert_data):
                context.load_default_certs()
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
            setattr(configuration, _CLIENT_CERT_CONTEXT, context)
            configuration.cert_file = configuration.key_file = None
    except (OSError, ssl.SSLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"KUBECONFIG client certificate or CA: {type(exc).__name__}") from None
    finally:
        for name in written:
            with contextlib.suppress(OSError):
                os.remove(name)
        _library_temp_files().clear()


def _use_client_cert_context(api: kubernetes.client.ApiClient, configuration: Any) -> None:
    context = getattr(configuration, _CLIENT_CERT_CONTEXT, None)
    if context is not None:
        api.rest_client.pool_manager.connection_pool_kw.update(ssl_context=context)


class KubeClient:
    """ExternalSecret read/annotate and Secret reads. Build once in the entrypoint; `close()` at the end."""

    def __init__(
        self,
        configuration: kubernetes.client.Configuration | None = None,
        retry: RetryPolicy | None = None,
        *,
        timeout: float = 10.0,
        field_manager: str = "client-patcher",
    ) -> None:
        configuration = configuration or load_configuration()
        self.target = f"the Kubernetes API at {configuration.host}"
        self._breaker = Breaker(SYSTEM, self.target)
        self._api = kubernetes.client.ApiClient(configuration)
        _use_client_cert_context(self._api, configuration)
        self._custom = kubernetes.client.CustomObjectsApi(self._api)
        self._core = kubernetes.client.CoreV1Api(self._api)
        self._apis = kubernetes.client.ApisApi(self._api)
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._field_manager = field_manager
        self._version: str | None = None

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, what: str, fn: Callable[[float], T]) -> T:
        def attempt() -> T:
            try:
                return fn(self._retry.timeout(self._timeout))
            except (ApiException, urllib3.exceptions.HTTPError) as exc:
                raise _translate(exc, what, self.target) from None

        return self._retry.call(attempt, self._breaker)

    # -- discovery ---------------------------------------------------------------------------------
    def external_secret_version(self) -> str:
        """The ExternalSecret version to use, discovered once: v1, else v1beta1 (never older)."""
        if self._version is not None:
            return self._version
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
                self._version = version
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

    def _secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        path = f"/api/v1/namespaces/{namespace}/secrets/{name}"
        try:
            secret = self._call(
                f"GET {path}",
                lambda t: self._core.read_namespaced_secret(name, namespace, _request_timeout=t),
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
