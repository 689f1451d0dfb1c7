"""The External Secrets Operator objects of rendered manifests, and the Vault paths they touch.

Path resolution follows ESO's Vault provider (docs/design.md#external-secrets-operator): the store's
`path` is the KV mount, `remoteRef.key` (ExternalSecret) or `remoteRef.remoteKey` (PushSecret) the
key below it; a key that already starts with `<mount>/` or `<mount>/data/` is de-duplicated. A store
that is not in the manifests is assumed to be the catalog's KV v2 mount; a store that is there but not
a Vault store is not a Vault path at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from jobs.checks.yamlsrc import LineDict, load_documents, read_text, yaml_files
from jobs.core.eso import ESO_GROUP

STORE_KINDS: Final = ("SecretStore", "ClusterSecretStore")
DEFAULT_STORE_KIND: Final = "SecretStore"  # secretStoreRef.kind default


@dataclass(frozen=True)
class Location:
    file: str
    line: int


@dataclass(frozen=True)
class Store:
    kind: str
    name: str
    namespace: str | None
    mount: str | None  # None: not a Vault store
    kv_version: str = "v2"


@dataclass(frozen=True)
class StoreRef:
    name: str
    kind: str = DEFAULT_STORE_KIND


@dataclass(frozen=True)
class RemoteRead:
    """One Vault key an ExternalSecret reads. `secret_key` is the target Secret key for a `data` item;
    None for `dataFrom.extract` (every field of the KV entry becomes a Secret key)."""

    key: str
    store: StoreRef
    line: int
    secret_key: str | None = None
    property: str | None = None


@dataclass(frozen=True)
class ExternalSecret:
    namespace: str | None
    name: str
    where: Location
    store: StoreRef
    reads: tuple[RemoteRead, ...]
    target: str
    refresh_interval: str | None = None
    refresh_policy: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace or '(release namespace)'}/{self.name}"


@dataclass(frozen=True)
class PushSecret:
    namespace: str | None
    name: str
    where: Location
    stores: tuple[StoreRef, ...]
    remote_keys: tuple[tuple[str, int], ...]  # (remoteKey, line)
    update_policy: str

    @property
    def ref(self) -> str:
        return f"{self.namespace or '(release namespace)'}/{self.name}"


@dataclass
class Manifests:
    external_secrets: list[ExternalSecret] = field(default_factory=list)
    push_secrets: list[PushSecret] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)

    def find_external_secret(self, namespace: str, name: str) -> ExternalSecret | None:
        for es in self.external_secrets:
            if es.name == name and es.namespace in (namespace, None):
                return es
        return None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _line(value: Any, default: int) -> int:
    return value.line if isinstance(value, LineDict) else default


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _store_ref(value: Any, default: StoreRef | None = None) -> StoreRef | None:
    ref = _map(value)
    name = _str(ref.get("name"))
    if name is None:
        return default
    return StoreRef(name, _str(ref.get("kind")) or DEFAULT_STORE_KIND)


def parse_external_secret(obj: Mapping[str, Any], where: Location) -> ExternalSecret:
    meta = _map(obj.get("metadata"))
    spec = _map(obj.get("spec"))
    name = _str(meta.get("name")) or "(unnamed)"
    store = _store_ref(spec.get("secretStoreRef")) or StoreRef("(none)")
    reads: list[RemoteRead] = []
    for item in _list(spec.get("data")):
        item_map = _map(item)
        remote = _map(item_map.get("remoteRef"))
        key = _str(remote.get("key"))
        if key is None:
            continue
        item_store = _store_ref(_map(item_map.get("sourceRef")).get("storeRef"), store) or store
        reads.append(
            RemoteRead(
                key,
                item_store,
                _line(item, where.line),
                secret_key=_str(item_map.get("secretKey")),
                property=_str(remote.get("property")),
            )
        )
    for item in _list(spec.get("dataFrom")):
        item_map = _map(item)
        source = _map(item_map.get("sourceRef"))
        if source.get("generatorRef") is not None:
            continue
        key = _str(_map(item_map.get("extract")).get("key"))
        if key is None:
            continue  # `find` selects keys by name or tag at run time: not resolvable offline
        item_store = _store_ref(source.get("storeRef"), store) or store
        reads.append(RemoteRead(key, item_store, _line(item, where.line)))
    target = _str(_map(spec.get("target")).get("name")) or name
    interval = spec.get("refreshInterval")
    return ExternalSecret(
        namespace=_str(meta.get("namespace")),
        name=name,
        where=where,
        store=store,
        reads=tuple(reads),
        target=target,
        refresh_interval=str(interval) if interval is not None else None,
        refresh_policy=_str(spec.get("refreshPolicy")),
    )


def parse_push_secret(obj: Mapping[str, Any], where: Location) -> PushSecret:
    meta = _map(obj.get("metadata"))
    spec = _map(obj.get("spec"))
    stores = tuple(
        ref for ref in (_store_ref(item) for item in _list(spec.get("secretStoreRefs"))) if ref is not None
    )
    keys: list[tuple[str, int]] = []
    for item in _list(spec.get("data")):
        remote = _map(_map(_map(item).get("match")).get("remoteRef"))
        key = _str(remote.get("remoteKey"))
        if key is not None:
            keys.append((key, _line(item, where.line)))
    return PushSecret(
        namespace=_str(meta.get("namespace")),
        name=_str(meta.get("name")) or "(unnamed)",
        where=where,
        stores=stores,
        remote_keys=tuple(keys),
        update_policy=_str(spec.get("updatePolicy"))
        or "Replace",  # the CRD default (docs/design.md#external-secrets-operator)
    )


def parse_store(obj: Mapping[str, Any]) -> Store:
    meta = _map(obj.get("metadata"))
    provider = _map(_map(obj.get("spec")).get("provider"))
    vault = provider.get("vault")
    mount = None
    version = "v2"
    if isinstance(vault, Mapping):
        mount = (_str(vault.get("path")) or "secret").strip("/")
        version = _str(vault.get("version")) or "v2"
    return Store(
        kind=str(obj.get("kind")),
        name=_str(meta.get("name")) or "(unnamed)",
        namespace=_str(meta.get("namespace")),
        mount=mount,
        kv_version=version,
    )


def _is_eso(obj: Mapping[str, Any], kind: str | tuple[str, ...]) -> bool:
    api = obj.get("apiVersion")
    kinds = (kind,) if isinstance(kind, str) else kind
    return isinstance(api, str) and api.startswith(ESO_GROUP + "/") and obj.get("kind") in kinds


def collect(documents: Iterable[tuple[str, Any]]) -> Manifests:
    """Sort (file, document) pairs into ESO objects; everything else is ignored."""
    result = Manifests()
    for file, doc in documents:
        if not isinstance(doc, Mapping):
            continue
        docs = _list(doc.get("items")) if doc.get("kind") == "List" else [doc]
        for obj in docs:
            if not isinstance(obj, Mapping):
                continue
            where = Location(file, _line(obj, 1))
            if _is_eso(obj, "ExternalSecret"):
                result.external_secrets.append(parse_external_secret(obj, where))
            elif _is_eso(obj, "PushSecret"):
                result.push_secrets.append(parse_push_secret(obj, where))
            elif _is_eso(obj, STORE_KINDS):
                result.stores.append(parse_store(obj))
    return result


def load_manifests(directories: Iterable[Path]) -> Manifests:
    pairs: list[tuple[str, Any]] = []
    for directory in directories:
        for path in yaml_files(directory):
            pairs.extend((str(path), doc) for doc in load_documents(read_text(path), str(path)))
    return collect(pairs)


def find_store(stores: Iterable[Store], ref: StoreRef, namespace: str | None) -> Store | None:
    for store in stores:
        if store.kind != ref.kind or store.name != ref.name:
            continue
        if ref.kind == "ClusterSecretStore" or None in (store.namespace, namespace):
            return store
        if store.namespace == namespace:
            return store
    return None


def resolve_key(mount: str, key: str, kv_version: str = "v2") -> str:
    """`<mount>/<key>` as ESO's Vault provider builds it, with the `<mount>/` and `<mount>/data/`
    prefixes of `key` de-duplicated."""
    key = key.strip("/")
    if kv_version == "v2" and key.startswith(f"{mount}/data/"):
        key = key[len(mount) + len("/data/") :]
    elif key.startswith(f"{mount}/"):
        key = key[len(mount) + 1 :]
    return f"{mount}/{key}"


def vault_path(
    stores: Iterable[Store], ref: StoreRef, namespace: str | None, key: str, default_mount: str
) -> str | None:
    """The Vault path a remote key resolves to, or None when the store is known and not Vault."""
    store = find_store(stores, ref, namespace)
    if store is None:
        return resolve_key(default_mount, key)
    if store.mount is None:
        return None
    return resolve_key(store.mount, key, store.kv_version)
