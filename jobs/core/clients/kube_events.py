"""Kubernetes Events (events.k8s.io/v1) on the consumer ExternalSecrets client-patcher tells about a
new secret version (docs/design.md#metrics-and-events): `Normal ForceSynced` when one was force-synced,
`Warning ConsumerFailed` when refreshing it failed, `Warning EntryFailed` when its entry failed before
its consumers could be told. `kubectl describe externalsecret` then says why ESO refreshed, or why not.

A note names the entry, the force-sync value and the Vault version, or the failure reason — never a
secret. Events are best effort: one attempt each; a refused or failed create is one warning for the
run's summary and never fails an entry; after 401, 403, 404 or no answer at all no further Event is
tried (a server error, 5xx or 429, does not stop the next one). The fields the
API server requires of an events.k8s.io/v1 Event are set (eventTime as MicroTime, reportingController,
reportingInstance, action, reason, regarding; note at most 1 KiB; kubernetes/kubernetes
pkg/apis/core/validation/events.go)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import kubernetes.client
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from jobs.core import traffic
from jobs.core.catalog import Consumer
from jobs.core.clients.kube import SYSTEM, KubeClient
from jobs.core.errors import ClientError, transport_cause
from jobs.core.eso import ESO_GROUP
from jobs.core.logs import redact
from jobs.core.model import EntryResult

log = logging.getLogger(__name__)
EVENTS_GROUP: Final = "events.k8s.io"
CONTROLLER: Final = "secret-origin/client-patcher"
FORCE_SYNCED: Final = "ForceSynced"
CONSUMER_FAILED: Final = "ConsumerFailed"
ENTRY_FAILED: Final = "EntryFailed"
NOTE_LIMIT: Final = 1024  # bytes the API server accepts in `note`
INSTANCE_LIMIT: Final = 128
NAME_LIMIT: Final = 253
_GIVE_UP: Final = (401, 403, 404)  # not allowed, or the API is not served: the next one fails too


def micro_time(now: float) -> str:
    """metav1.MicroTime as the API server parses it (RFC 3339, exactly six fraction digits, UTC)."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clip(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[: limit - 3].decode("utf-8", "ignore") + "..."


def event_name(regarding: str, now: float) -> str:
    """`<name>.<hex nanoseconds>`, as client-go names Events; clipped to a valid object name."""
    suffix = f".{int(now * 1e9):x}"
    return regarding[: NAME_LIMIT - len(suffix)].rstrip(".-") + suffix


class Notice(NamedTuple):
    """What one Event says: its type (Normal, Warning), reason, action and note."""

    type: str
    reason: str
    action: str
    note: str


def open_events(kube: KubeClient | None, mount: str, *, enabled: bool) -> ConsumerEvents | None:
    """Events on the consumers, unless turned off (or no entry has consumers, so no Kubernetes client)."""
    return ConsumerEvents(kube, mount) if kube is not None and enabled else None


class ConsumerEvents:
    """Events on consumer ExternalSecrets; `warnings` holds the one warning of a run whose Events failed."""

    def __init__(
        self,
        kube: KubeClient,
        mount: str,
        *,
        instance: str | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 5.0,
    ) -> None:
        self._kube = kube
        # Not EventsV1Api: kubernetes 37 validates its body into a model whose datetime is sent with
        # isoformat(), which drops a zero fraction, and the API server refuses that MicroTime.
        self._api = kubernetes.client.CustomObjectsApi(kube.api_client)
        self._mount = mount
        self._instance = _clip(instance or os.environ.get("HOSTNAME") or socket.gethostname(), INSTANCE_LIMIT)
        self._clock = clock
        self._timeout = timeout
        self._lock = threading.Lock()
        self._given_up = False
        self._accepted = False
        self._until_accepted = threading.Lock()
        self.warnings: list[str] = []

    def after_entry(self, result: EntryResult, consumers: Sequence[Consumer]) -> None:
        """The Events an entry's result calls for (none for a dry run)."""
        if result.dry_run:
            return
        for consumer in result.consumers:
            if consumer.outcome == "patched":
                note = (
                    f"entry {result.name}: force-sync={consumer.force_sync} "
                    f"(Vault {self._mount}/{result.name} v{result.vault_version}); ESO refreshes now"
                )
                self.create(
                    consumer.namespace, consumer.name, Notice("Normal", FORCE_SYNCED, "ForceSync", note)
                )
            elif consumer.outcome == "failed":
                note = f"entry {result.name}: {result.reason}"
                notice = Notice("Warning", CONSUMER_FAILED, "ForceSync", note)
                self.create(consumer.namespace, consumer.name, notice)
        if result.failed and not result.consumers:
            self.entry_failed(result.name, result.reason, consumers)

    def entry_failed(self, entry: str, reason: str, consumers: Sequence[Consumer]) -> None:
        """The entry failed before its consumers were told: each of them may serve a stale secret."""
        note = f"entry {entry} failed; this consumer was not refreshed: {reason}"
        for consumer in consumers:
            self.create(consumer.namespace, consumer.name, Notice("Warning", ENTRY_FAILED, "Sync", note))

    def _regarding(self, namespace: str, name: str) -> dict[str, str]:
        try:
            version = self._kube.external_secret_version()
        except ClientError:
            version = "v1"
        return {
            "apiVersion": f"{ESO_GROUP}/{version}",
            "kind": "ExternalSecret",
            "namespace": namespace,
            "name": name,
        }

    def body(self, namespace: str, name: str, notice: Notice) -> dict[str, Any]:
        now = self._clock()
        return {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": event_name(name, now), "namespace": namespace},
            "eventTime": micro_time(now),
            "reportingController": CONTROLLER,
            "reportingInstance": self._instance,
            "action": notice.action,
            "reason": notice.reason,
            "regarding": self._regarding(namespace, name),
            "note": _clip(redact(notice.note), NOTE_LIMIT),
            "type": notice.type,
        }

    def create(self, namespace: str, name: str, notice: Notice) -> None:
        """One attempt; a failure is a warning (the first one only), never an exception."""
        if self._given_up:
            return
        if self._accepted:
            self._attempt(namespace, name, notice)
            return
        # Until the API server has accepted one Event, creates from concurrent entries go one at a
        # time: when the service account may not create Events, one refusal stops all the others.
        with self._until_accepted:
            if not self._given_up:
                self._attempt(namespace, name, notice)

    def _attempt(self, namespace: str, name: str, notice: Notice) -> None:
        body = self.body(namespace, name, notice)
        status: int | None = None
        try:
            self._api.create_namespaced_custom_object(
                EVENTS_GROUP, "v1", namespace, "events", body, _request_timeout=self._timeout
            )
            traffic.record(SYSTEM, 201)
            self._accepted = True
            return
        except ApiException as exc:
            status = int(exc.status or 0)
            problem = f"{status} {exc.reason or ''}".strip()
        except urllib3.exceptions.HTTPError as exc:
            problem = transport_cause(exc)
        traffic.record(SYSTEM, status)
        self._failed(namespace, problem, give_up=status is None or status in _GIVE_UP)

    def _failed(self, namespace: str, problem: str, *, give_up: bool) -> None:
        with self._lock:
            first = not self.warnings
            if first:
                self.warnings.append(
                    f"Kubernetes Events not recorded (first failure in namespace {namespace}: {problem}); "
                    "client-patcher needs `create` on events.events.k8s.io in each consumer namespace"
                )
            self._given_up = self._given_up or give_up
        if first:
            log.warning("event not recorded", extra={"namespace": namespace, "error": problem})
