"""A simulation of External Secrets Operator's ExternalSecret reconciler, OFF by default
(`KubeEmulator.enable_eso_reconciler`).

When on, a changed `force-sync` annotation on an ExternalSecret makes it, after `delay` seconds, read
the value from the `ValueSource` the test stack provides (e.g. OpenBao through hvac) into the target
Secret (`spec.target.name`, default the ExternalSecret's name) and set `status` as ESO does
(pkg/controllers/externalsecret/externalsecret_controller.go, external-secrets/external-secrets;
docs/design.md#external-secrets-operator): `refreshTime` (whole seconds), `syncedResourceVersion`
"<generation>-<hash of annotations and labels>" and the `Ready` condition (SecretSynced). A failed read
sets Ready=False (SecretSyncedError) and leaves `refreshTime` and `syncedResourceVersion` as they were.

Only a force-sync change triggers it (no periodic refresh, nothing at creation). Fault knobs: `mode`
for every refresh, `fault(namespace, name, *modes)` for the next refreshes of one ExternalSecret:
`sync` (default); `never` (no refresh at all); `stale` (refresh, but the Secret keeps what it held, as
after a read from a lagging standby, or gets "stale-<key>" values when there was none); `error`
(Ready=False with `error_message`). `history(ns, name)` lists every force-sync value the
ExternalSecret was given, in order.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from emulators.kube.types import now_rfc3339

if TYPE_CHECKING:
    from emulators.kube.server import KubeEmulator

# A remote key as written in the ExternalSecret ("<mount>/<key>" or "<key>") -> the KV fields, or None
# when the key does not exist.
ValueSource = Callable[[str], Mapping[str, str] | None]
MODES = ("sync", "never", "stale", "error")
FORCE_SYNC = "force-sync"
MANAGED_LABEL = "reconcile.external-secrets.io/managed"


def synced_resource_version(obj: Mapping[str, Any]) -> str:
    """ESO's getResourceVersion: "<generation>-<hash of annotations and labels>" (the hash here is
    SHA-256 of their JSON, not ESO's ObjectHash: only its changes matter)."""
    meta = obj.get("metadata") or {}
    body = json.dumps([meta.get("annotations") or {}, meta.get("labels") or {}], sort_keys=True)
    return f"{meta.get('generation', 1)}-{hashlib.sha256(body.encode()).hexdigest()[:32]}"


class EsoReconciler:
    def __init__(self, kube: KubeEmulator, source: ValueSource, delay: float = 0.1) -> None:
        self.kube = kube
        self.source = source
        self.delay = delay
        self.mode = "sync"
        self.error_message = "could not get secret data from provider"
        self._faults: dict[tuple[str, str], list[str]] = {}
        self._history: dict[tuple[str, str], list[str]] = {}
        self._lock = threading.Lock()
        self.refreshes = 0  # successful or stale refreshes done

    def fault(self, namespace: str, name: str, *modes: str) -> None:
        """The next refreshes of this ExternalSecret, one mode each; then `mode` again."""
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise ValueError(f"unknown modes {unknown}; expected {MODES}")
        with self._lock:
            self._faults.setdefault((namespace, name), []).extend(modes)

    def history(self, namespace: str, name: str) -> list[str]:
        with self._lock:
            return list(self._history.get((namespace, name), []))

    def observe(self, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> None:
        """Called by the store on every committed ExternalSecret (under the store's lock)."""
        if old is None:
            return
        before = (old.get("metadata") or {}).get("annotations") or {}
        after = (new.get("metadata") or {}).get("annotations") or {}
        if after.get(FORCE_SYNC) is None or before.get(FORCE_SYNC) == after.get(FORCE_SYNC):
            return
        meta = new["metadata"]
        key = (str(meta["namespace"]), str(meta["name"]))
        with self._lock:
            self._history.setdefault(key, []).append(str(after[FORCE_SYNC]))
        timer = threading.Timer(self.delay, self._reconcile, key)
        timer.daemon = True
        timer.start()

    def _next_mode(self, key: tuple[str, str]) -> str:
        with self._lock:
            queued = self._faults.get(key)
            return queued.pop(0) if queued else self.mode

    def _reconcile(self, namespace: str, name: str) -> None:
        mode = self._next_mode((namespace, name))
        obj = self.kube.get_object("ExternalSecret", namespace, name)
        if obj is None or mode == "never":
            return
        status = dict(obj.get("status") or {})
        data = None if mode == "error" else self._values(obj.get("spec") or {})
        if data is None:
            status["conditions"] = [self._condition("False", "SecretSyncedError", self.error_message)]
            self.kube.set_status("ExternalSecret", namespace, name, status)
            return
        target = str(((obj.get("spec") or {}).get("target") or {}).get("name") or name)
        if mode == "stale":  # what it held, or a value that is not Vault's when it held nothing
            data = self.kube.secret_data(namespace, target) or {k: f"stale-{k}" for k in data}
        self.kube.add_secret(namespace, target, data, labels={MANAGED_LABEL: "true"})
        status["refreshTime"] = now_rfc3339(self.kube.clock())
        status["syncedResourceVersion"] = synced_resource_version(obj)
        status["conditions"] = [self._condition("True", "SecretSynced", "secret synced")]
        self.kube.set_status("ExternalSecret", namespace, name, status)
        with self._lock:
            self.refreshes += 1

    def _values(self, spec: Mapping[str, Any]) -> dict[str, str] | None:
        """The Secret's data as ESO builds it from spec.dataFrom[].extract and spec.data[]."""
        data: dict[str, str] = {}
        for item in spec.get("dataFrom") or []:
            key = (item.get("extract") or {}).get("key")
            fields = self.source(str(key)) if key else None
            if fields is None:
                return None
            data.update({str(k): str(v) for k, v in fields.items()})
        for item in spec.get("data") or []:
            ref = item.get("remoteRef") or {}
            fields = self.source(str(ref.get("key")))
            if fields is None:
                return None
            prop = ref.get("property")
            if prop is not None and prop not in fields:
                return None
            data[str(item["secretKey"])] = str(fields[prop]) if prop is not None else json.dumps(dict(fields))
        return data

    def _condition(self, status: str, reason: str, message: str) -> dict[str, str]:
        return {
            "type": "Ready",
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": now_rfc3339(self.kube.clock()),
        }
