"""The object store: what tests and the seed put in, read back and change without going through HTTP."""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from emulators.kube.types import (
    ESO_GROUP,
    ESO_KNOWN_VERSIONS,
    SECRETS,
    ResourceType,
    b64,
    now_rfc3339,
)
from emulators.kube.validation import (
    fold_string_data,
    spec_of,
)


class ObjectStore:
    """Objects keyed by (group, plural, namespace, name); one cluster-global resourceVersion counter."""

    def add_namespace(self, name: str) -> dict[str, Any]:
        with self._lock:
            existing = self._objects.get(("", "namespaces", "", name))
            if existing is not None:
                return copy.deepcopy(existing)
            return self.put_object(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }
            )

    def add_service_account(self, namespace: str, name: str) -> str:
        """Create the ServiceAccount (and its namespace) if missing; returns its uid."""
        with self._lock:
            existing = self._objects.get(("", "serviceaccounts", namespace, name))
            if existing is None:
                existing = self.put_object(
                    {
                        "apiVersion": "v1",
                        "kind": "ServiceAccount",
                        "metadata": {"name": name, "namespace": namespace},
                    }
                )
            return str(existing["metadata"]["uid"])

    def delete_service_account(self, namespace: str, name: str) -> bool:
        """Delete the ServiceAccount: its tokens stop authenticating (bound-token semantics)."""
        return self.delete_object("ServiceAccount", namespace, name)

    def _type_for_kind(self, kind: str) -> ResourceType:
        wanted = kind.lower()
        for rt in self._all_types:
            if wanted in (rt.kind.lower(), rt.plural, rt.singular, *rt.short_names):
                return rt
        raise KeyError(f"unknown kind {kind!r}")

    def put_object(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace an object as a controller or `kubectl apply` would leave it: server fields
        (uid, creationTimestamp, resourceVersion, generation) are set; status is kept as given. Namespaces
        are created on demand. Returns the stored object."""
        rt = self._type_for_kind(str(manifest.get("kind", "")))
        api_version = str(manifest.get("apiVersion", ""))
        group, _, version = api_version.rpartition("/")
        if group != rt.group or version not in (*ESO_KNOWN_VERSIONS, "v1"):
            raise ValueError(f"apiVersion {api_version!r} does not fit kind {rt.kind}")
        obj = copy.deepcopy(dict(manifest))
        meta = obj.setdefault("metadata", {})
        namespace = str(meta.get("namespace") or ("default" if rt.namespaced else ""))
        if rt.namespaced:
            meta["namespace"] = namespace
            if ("", "namespaces", "", namespace) not in self._objects:
                self.add_namespace(namespace)
        else:
            meta.pop("namespace", None)
        name = str(meta["name"])
        with self._lock:
            key = (rt.group, rt.plural, namespace, name)
            old = self._objects.get(key)
            if old is None:
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = now_rfc3339(self.clock())
                if rt.custom:
                    meta["generation"] = 1
            else:
                meta["uid"] = old["metadata"]["uid"]
                meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
                if rt.custom:
                    meta["generation"] = old["metadata"].get("generation", 1) + (
                        1 if spec_of(old) != spec_of(obj) else 0
                    )
            if rt is SECRETS:
                fold_string_data(obj)
            self._commit(rt, key, obj)
            return copy.deepcopy(obj)

    def get_object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        rt = self._type_for_kind(kind)
        with self._lock:
            obj = self._objects.get((rt.group, rt.plural, namespace if rt.namespaced else "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        rt = self._type_for_kind(kind)
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (group, plural, ns, _), obj in sorted(self._objects.items())
                if (group, plural) == (rt.group, rt.plural) and (namespace is None or ns == namespace)
            ]

    def delete_object(self, kind: str, namespace: str, name: str) -> bool:
        rt = self._type_for_kind(kind)
        with self._lock:
            removed = self._objects.pop((rt.group, rt.plural, namespace if rt.namespaced else "", name), None)
            if removed is not None:
                self._rv += 1
            return removed is not None

    def set_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """Replace `status` as a controller would through the status subresource (bumps resourceVersion)."""
        rt = self._type_for_kind(kind)
        with self._lock:
            key = (rt.group, rt.plural, namespace, name)
            obj = self._objects.get(key)
            if obj is None:
                raise LookupError(f"{rt.kind} {namespace}/{name} does not exist")
            updated = copy.deepcopy(obj)
            updated["status"] = copy.deepcopy(dict(status))
            self._commit(rt, key, updated)
            return copy.deepcopy(updated)

    def annotations(self, kind: str, namespace: str, name: str) -> dict[str, str]:
        obj = self.get_object(kind, namespace, name)
        if obj is None:
            raise LookupError(f"{kind} {namespace}/{name} does not exist")
        return dict(obj["metadata"].get("annotations") or {})

    def add_external_secret(
        self,
        namespace: str,
        name: str,
        *,
        remote_key: str,
        refresh_interval: str = "1h",
        refresh_policy: str | None = None,
        target: str | None = None,
        store: str = "vault-backend",
        store_kind: str = "ClusterSecretStore",
        annotations: Mapping[str, str] | None = None,
        version: str = "v1",
    ) -> dict[str, Any]:
        """An ExternalSecret that extracts the whole Vault KV entry `remote_key` into Secret `target`."""
        spec: dict[str, Any] = {"refreshInterval": refresh_interval}
        if refresh_policy is not None:
            spec["refreshPolicy"] = refresh_policy
        spec["secretStoreRef"] = {"name": store, "kind": store_kind}
        spec["target"] = {"name": target or name, "creationPolicy": "Owner", "deletionPolicy": "Retain"}
        spec["dataFrom"] = [{"extract": {"key": remote_key}}]
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if annotations:
            metadata["annotations"] = dict(annotations)
        return self.put_object(
            {
                "apiVersion": f"{ESO_GROUP}/{version}",
                "kind": "ExternalSecret",
                "metadata": metadata,
                "spec": spec,
            }
        )

    def add_push_secret(
        self,
        namespace: str,
        name: str,
        *,
        secret_name: str,
        remote_key: str,
        store: str = "vault-backend",
        store_kind: str = "ClusterSecretStore",
        update_policy: str = "Replace",
    ) -> dict[str, Any]:
        return self.put_object(
            {
                "apiVersion": f"{ESO_GROUP}/v1alpha1",
                "kind": "PushSecret",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "refreshInterval": "1h",
                    "updatePolicy": update_policy,
                    "deletionPolicy": "None",
                    "secretStoreRefs": [{"name": store, "kind": store_kind}],
                    "selector": {"secret": {"name": secret_name}},
                    "data": [{"match": {"remoteRef": {"remoteKey": remote_key}}}],
                },
            }
        )

    def add_config_map(
        self, namespace: str, name: str, data: Mapping[str, str], *, labels: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = dict(labels)
        return self.put_object(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": dict(data)}
        )

    def add_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str | bytes],
        *,
        secret_type: str = "Opaque",
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A Secret with `data` base64-encoded from the given plain values."""
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = dict(labels)
        if annotations:
            metadata["annotations"] = dict(annotations)
        return self.put_object(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": metadata,
                "type": secret_type,
                "data": {k: b64(v) for k, v in data.items()},
            }
        )

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """The decoded `data` of a Secret, or None when it does not exist."""
        obj = self.get_object("Secret", namespace, name)
        if obj is None:
            return None
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def _commit(self, rt: ResourceType, key: tuple[str, str, str, str], obj: dict[str, Any]) -> None:
        reconciler = getattr(self, "eso_reconciler", None)
        if reconciler is not None and rt.group == ESO_GROUP and rt.plural == "externalsecrets":
            reconciler.observe(self._objects.get(key), obj)
        self._rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
        if "apiVersion" not in obj:
            obj["apiVersion"] = rt.api_version(rt.versions[0])
        obj["kind"] = rt.kind
        self._objects[key] = obj

    def kubeconfig(
        self, path: str | Path, token: str, *, namespace: str = "default", user: str = "user"
    ) -> Path:
        """Write a kubeconfig for `token` that `kubernetes.config.load_kube_config` and kubectl accept."""
        cluster: dict[str, Any] = {"server": self.url}
        if self.ca_pem_path is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem_path.read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {"name": "emulator", "context": {"cluster": "emulator", "user": user, "namespace": namespace}}
            ],
            "current-context": "emulator",
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        target.chmod(0o600)
        return target
