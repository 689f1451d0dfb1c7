"""Vault / OpenBao KV v2 through hvac, with our error taxonomy.

One read (`GET data`) gives value, version and custom_metadata together; a write is a
check-and-set data write followed by a custom_metadata write (data first, so a refused CAS never
stamps our metadata on somebody else's value). Every value read or written is registered with the
log redaction filter before anything could print it. Each request's timeout is capped by the run's
`--deadline` when it is sent (`DeadlineSession`), so a hanging Vault cannot hold the run past it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import hvac
import hvac.exceptions
import requests

from jobs.core import metadata as md
from jobs.core.clients.vault_auth import VaultAuth
from jobs.core.clients.vault_errors import SYSTEM, translate
from jobs.core.clients.vault_session import DeadlineSession
from jobs.core.errors import Conflict, PermissionDenied, Unauthorized, WriteInDoubt
from jobs.core.logs import register_secrets
from jobs.core.observed import KvMetadata, KvRead, VaultMount
from jobs.core.retry import Breaker, RetryPolicy
from jobs.core.settings import VaultSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
_METADATA_ATTEMPTS: Final = 3  # metadata read-then-write rounds before a concurrent writer wins


class VaultClient:
    """KV v2 operations the jobs need. Build once in the entrypoint and pass down."""

    def __init__(
        self,
        settings: VaultSettings,
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        connections: int = 10,
    ) -> None:
        """`connections`: the HTTP connections kept for reuse, at least the threads that share this
        client (requests' sessions are shared across threads; a too small pool reconnects)."""
        self._settings = settings
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._clock = clock
        self.target = f"Vault at {settings.addr}"
        self._breaker = Breaker(SYSTEM, self.target)
        verify: bool | str = str(settings.cacert) if settings.cacert else True
        session = DeadlineSession(lambda: self._retry.timeout(self._timeout), verify, connections)
        self._session = session
        self._client = hvac.Client(
            url=settings.addr,
            verify=verify,
            timeout=timeout,
            namespace=settings.namespace or None,
            session=session,
        )
        self._auth = VaultAuth(self._client, settings, self._retry, self._breaker, clock)

    # -- authentication --------------------------------------------------------------------------
    def login(self) -> None:
        """Token auth needs no call; Kubernetes auth logs in with the service-account JWT."""
        self._auth.login()

    def _call(self, operation: str, path: str, fn: Callable[[], T]) -> T:
        """Run one Vault request: retry transient errors; re-login once if the token expired."""

        def attempt() -> T:
            try:
                return fn()
            except (hvac.exceptions.VaultError, requests.RequestException) as exc:
                raise translate(exc, operation, path, self.target, self._session.retry_after) from None

        self._auth.ensure_token()
        try:
            return self._retry.call(attempt, self._breaker)
        except PermissionDenied:
            if self._auth.token_is_valid():
                raise
            if self._settings.uses_token:
                raise Unauthorized(
                    SYSTEM, f"{operation} {path}: VAULT_TOKEN is invalid, revoked or expired"
                ) from None
        except Unauthorized:
            if self._settings.uses_token:
                raise
        log.info("Vault token expired mid-run; logging in again")
        self.login()
        return self._retry.call(attempt, self._breaker)

    # -- pre-flight ------------------------------------------------------------------------------
    def check_token(self) -> None:
        """Prove the credential works (`lookup-self`, after a Kubernetes-auth login if none yet): a dead
        token is one Unauthorized, reported once for the run."""

        def lookup() -> None:
            self._client.auth.token.lookup_self()

        self._call("token lookup-self", "auth/token/lookup-self", lookup)

    def mount(self, mount: str) -> VaultMount | None:
        """What `mount` is (`GET sys/internal/ui/mounts/<mount>`, readable by a token with access to a
        path in it), or None when Vault says 403/404: no such mount, or none of it is usable by us."""

        def get() -> dict[str, Any] | None:
            try:
                body: dict[str, Any] = self._client.adapter.get(f"/v1/sys/internal/ui/mounts/{mount}")
                return body
            except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidPath):
                return None

        body = self._call("read", f"sys/internal/ui/mounts/{mount}", get)
        if body is None:
            return None
        data = body.get("data") or {}
        options = data.get("options") or {}
        return VaultMount(
            path=str(data.get("path") or "").strip("/"),
            type=str(data.get("type") or ""),
            version=str(options.get("version") or "1") if isinstance(options, dict) else "1",
        )

    # -- KV v2 -----------------------------------------------------------------------------------
    def read(self, mount: str, name: str) -> KvRead:
        """Value, version and custom_metadata in one request."""

        def fetch() -> dict[str, Any] | None:
            try:
                response: dict[str, Any] = self._client.secrets.kv.v2.read_secret_version(
                    path=name, mount_point=mount, raise_on_deleted_version=False
                )
                return response
            except hvac.exceptions.InvalidPath as exc:
                body = exc.json if isinstance(getattr(exc, "json", None), dict) else None
                if body and isinstance(body.get("data"), dict):
                    return dict(body)  # soft-deleted or destroyed: the key exists, its data does not
                return None

        body = self._call("read", f"{mount}/data/{name}", fetch)
        if body is None:
            return KvRead(mount=mount, name=name, exists=False, version=0)
        data = body.get("data") or {}
        meta = data.get("metadata") or {}
        values = {str(k): str(v) for k, v in (data.get("data") or {}).items()}
        register_secrets(values.values())
        deleted = bool(meta.get("destroyed")) or bool(meta.get("deletion_time"))
        return KvRead(
            mount=mount,
            name=name,
            exists=True,
            version=int(meta.get("version") or 0),
            data=values,
            custom_metadata=dict(meta.get("custom_metadata") or {}),
            deleted=deleted and not values,
            created_time=str(meta.get("created_time") or "") or None,
        )

    def write(self, mount: str, name: str, data: Mapping[str, str], *, cas: int) -> int:
        """Check-and-set write: cas=0 creates only; cas=N updates only if version N is current.
        Returns the new version; raises Conflict when another writer got there first."""
        register_secrets(data.values())
        attempts: list[None] = []

        def post() -> int:
            attempts.append(None)
            response = self._client.secrets.kv.v2.create_or_update_secret(
                path=name, secret=dict(data), cas=cas, mount_point=mount
            )
            return int(response["data"]["version"])

        try:
            return self._call("write", f"{mount}/data/{name}", post)
        except Conflict as exc:
            if len(attempts) > 1:  # an earlier attempt's answer was lost: it may be what moved the version
                raise WriteInDoubt(
                    SYSTEM, f"write {mount}/data/{name}: check-and-set refused on a retry after a lost answer"
                ) from exc
            raise
        except PermissionDenied:
            # Vault checks `create` for a new key and `update` for an existing one. A create-only
            # policy (fixture seeding) that meets a key another writer created meanwhile is denied,
            # not refused by CAS: report that as the conflict it is, so the caller re-plans.
            if cas == 0 and self._exists_now(mount, name):
                raise Conflict(
                    SYSTEM, f"write {mount}/data/{name}: created by another writer meanwhile (cas=0)"
                ) from None
            raise

    def _exists_now(self, mount: str, name: str) -> bool:
        try:
            return self.read(mount, name).exists
        except PermissionDenied:
            return False  # cannot tell: the original denial stands

    def read_metadata(self, mount: str, name: str) -> KvMetadata | None:
        """GET metadata: the key's creation time, its metadata version (for `metadata_cas`) and
        custom_metadata; None when the key has no metadata at all."""

        def fetch() -> dict[str, Any] | None:
            try:
                response: dict[str, Any] = self._client.adapter.get(f"/v1/{mount}/metadata/{name}")
                return response
            except hvac.exceptions.InvalidPath:
                return None

        body = self._call("read-metadata", f"{mount}/metadata/{name}", fetch)
        if body is None:
            return None
        data = body.get("data") or {}
        cas_version = data.get("current_metadata_version")
        return KvMetadata(
            created_time=str(data.get("created_time") or ""),
            current_version=int(data.get("current_version") or 0),
            metadata_version=None if cas_version is None else int(cas_version),
            custom_metadata=dict(data.get("custom_metadata") or {}),
        )

    def write_metadata(
        self, mount: str, name: str, custom_metadata: Mapping[str, str], *, metadata_cas: int | None = None
    ) -> None:
        """Replace custom_metadata. Only custom_metadata and `metadata_cas` are sent, so max_versions,
        cas_required and delete_version_after stay as configured (hvac's update_metadata would reset
        the latter). With `metadata_cas` the body is written as given, as a check-and-set on the
        metadata version (OpenBao >= 2.4): a mismatch raises Conflict. Without it, the metadata is read
        first and written with its version, keeping the rotation lock (`rotation-intent`) exactly as
        Vault holds it now; an identity that may not read metadata writes without check-and-set."""
        path = f"{mount}/metadata/{name}"
        if metadata_cas is not None:
            self._post_metadata(path, custom_metadata, metadata_cas)
            return
        for attempt in range(_METADATA_ATTEMPTS):
            try:
                current = self.read_metadata(mount, name)
            except PermissionDenied:
                self._post_metadata(path, custom_metadata, None)
                return
            body = {k: v for k, v in custom_metadata.items() if k != md.ROTATION_INTENT}
            lock = current.custom_metadata.get(md.ROTATION_INTENT) if current else None
            if lock is not None:
                body[md.ROTATION_INTENT] = lock
            try:
                self._post_metadata(path, body, 0 if current is None else current.metadata_version)
                return
            except Conflict:  # another writer changed the metadata between our read and write
                if attempt == _METADATA_ATTEMPTS - 1:
                    raise

    def _post_metadata(self, path: str, custom_metadata: Mapping[str, str], metadata_cas: int | None) -> None:
        body: dict[str, Any] = {"custom_metadata": dict(custom_metadata)}
        if metadata_cas is not None:
            body["metadata_cas"] = metadata_cas

        def post() -> None:
            self._client.adapter.post(f"/v1/{path}", json=body)

        self._call("write-metadata", path, post)
