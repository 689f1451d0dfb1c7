"""The consumer ExternalSecrets of one run, read with one LIST per namespace instead of a GET each.

Each namespace is listed the first time one of its consumers is looked up, once per run, whichever
thread asks first (the others wait for that listing). A consumer the listing does not hold is "not
found", with the same error a GET answering 404 raises. A namespace whose listing is forbidden (a
Role that grants `get` by resourceNames only) falls back to one GET per consumer, said once per
namespace; any other listing failure does the same, so the per-consumer GET reports its own cause.
"""

from __future__ import annotations

import logging
import threading

from jobs.core.clients.kube import KubeClient
from jobs.core.errors import ClientError, PermissionDenied, failure_reason
from jobs.core.observed import ExternalSecretState

log = logging.getLogger(__name__)


class ExternalSecretIndex:
    """`get_external_secret(namespace, name)`: as listed at its namespace's first lookup."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube
        self._lock = threading.Lock()
        self._namespaces: dict[str, threading.Lock] = {}
        # namespace -> its ExternalSecrets by name; None: look each one up with a GET
        self._listed: dict[str, dict[str, ExternalSecretState] | None] = {}

    def get_external_secret(self, namespace: str, name: str) -> ExternalSecretState:
        listed = self._listing(namespace)
        if listed is None:
            return self._kube.get_external_secret(namespace, name)
        found = listed.get(name)
        if found is None:
            raise self._kube.missing_external_secret(namespace, name, self._kube.external_secret_version())
        return found

    def listed(self, namespace: str) -> bool:
        """Whether `namespace` was read with a LIST (its states may be older than a GET's)."""
        with self._lock:
            return self._listed.get(namespace) is not None

    def _listing(self, namespace: str) -> dict[str, ExternalSecretState] | None:
        with self._lock:
            if namespace in self._listed:
                return self._listed[namespace]
            lock = self._namespaces.setdefault(namespace, threading.Lock())
        with lock:
            with self._lock:
                if namespace in self._listed:
                    return self._listed[namespace]
            listed = self._list(namespace)
            with self._lock:
                self._listed[namespace] = listed
            return listed

    def _list(self, namespace: str) -> dict[str, ExternalSecretState] | None:
        try:
            return self._kube.list_external_secrets(namespace)
        except PermissionDenied as exc:
            log.warning(
                "cannot list ExternalSecrets in this namespace; reading each consumer with a GET "
                "(grant `list` on externalsecrets there to save the requests)",
                extra={"namespace": namespace, "reason": failure_reason(exc)},
            )
        except ClientError as exc:
            log.warning(
                "listing ExternalSecrets failed; reading each consumer with a GET",
                extra={"namespace": namespace, "reason": failure_reason(exc)},
            )
        return None
