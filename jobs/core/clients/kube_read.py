"""Read-only Kubernetes access for `secret-origin smoke --consumers`: the whole ExternalSecret object and
the data of its target Secret.

Builds on `KubeClient` (configuration, API-version discovery, retry and error translation) and adds
the two reads smoke needs. Every Secret value read is registered with the log redaction filter before
anything could print it; only digests are compared by the caller.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import kubernetes.client

from jobs.core.clients.kube import ES_PLURAL, ESO_GROUP, SYSTEM, KubeClient
from jobs.core.errors import NotFound, Permanent
from jobs.core.logs import register_secret


class KubeReader(KubeClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._core = kubernetes.client.CoreV1Api(self._api)

    def get_external_secret_object(self, namespace: str, name: str) -> Mapping[str, Any]:
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

    def read_secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """The decoded `data` of a Secret; None when the Secret does not exist."""
        path = f"/api/v1/namespaces/{namespace}/secrets/{name}"
        try:
            secret = self._call(
                f"GET {path}",
                lambda t: self._core.read_namespaced_secret(name, namespace, _request_timeout=t),
            )
        except NotFound:
            return None
        result: dict[str, bytes] = {}
        for key, encoded in (secret.data or {}).items():
            try:
                raw = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise Permanent(SYSTEM, f"GET {path}: key {key!r} is not base64") from None
            register_secret(raw.decode("utf-8", errors="replace"))
            result[str(key)] = raw
        return result
