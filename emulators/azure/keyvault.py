"""Key Vault's secrets data plane: list (paged), get, set and update, in the service's JSON shapes."""

from __future__ import annotations

import json
import time
from typing import Any

from emulators.azure.model import (
    JSON_UTF8,
    MAX_PAGE_SIZE,
    RECOVERABLE_DAYS,
    RECOVERY_LEVEL,
    SECRET_NAME,
    KvError,
    SecretVersion,
    b64url,
    json_body,
    unb64url,
    unix_time,
)
from emulators.base import Request, Response


class KeyVaultSecrets:
    """One handler per route row; `request.user` is the app id `KeyVaultAuth.admit` let in."""

    def list_secrets(self, request: Request) -> Response:
        self._authorize(request, request.user, "readMetadata/action")
        return self._list(request, self._secret_items(request))

    def list_versions(self, request: Request) -> Response:
        self._authorize(request, request.user, "readMetadata/action")
        return self._list(request, self._version_items(request, request.params.get("name", "")))

    def get_secret(self, request: Request) -> Response:
        self._authorize(request, request.user, "getSecret/action")
        return self._get(request, request.params.get("name", ""), request.params.get("version"))

    def set_secret_value(self, request: Request) -> Response:
        self._authorize(request, request.user, "setSecret/action")
        return self._put(request, request.params.get("name", ""))

    def update_secret(self, request: Request) -> Response:
        self._authorize(request, request.user, "write")
        return self._patch(request, request.params.get("name", ""), request.params.get("version"))

    def _lookup(self, name: str, version: str | None) -> SecretVersion:
        try:
            return self._find(name, version)
        except KeyError:
            shown = f"{name}/{version}" if version else name
            raise KvError(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {shown} was not found in this key vault. If you recently deleted "
                "this secret you may be able to recover it using the correct recovery command. For help "
                "resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
            ) from None

    @staticmethod
    def _attributes(v: SecretVersion) -> dict[str, Any]:
        attributes: dict[str, Any] = {"enabled": v.enabled}
        if v.nbf is not None:
            attributes["nbf"] = v.nbf
        if v.exp is not None:
            attributes["exp"] = v.exp
        attributes.update(
            created=v.created,
            updated=v.updated,
            recoverableDays=RECOVERABLE_DAYS,
            recoveryLevel=RECOVERY_LEVEL,
        )
        return attributes

    def _item(self, secret_id: str, v: SecretVersion) -> dict[str, Any]:
        item: dict[str, Any] = {"id": secret_id, "attributes": self._attributes(v)}
        if v.tags is not None:
            item["tags"] = v.tags
        if v.content_type is not None:
            item["contentType"] = v.content_type
        if v.managed:
            item["managed"] = True
        return item

    def _bundle(self, request: Request, name: str, v: SecretVersion, *, with_value: bool) -> dict[str, Any]:
        origin = self._origin(request)
        bundle = self._item(f"{origin}/secrets/{name}/{v.version}", v)
        if with_value:
            bundle = {"value": v.value, **bundle}
        if v.managed:
            bundle["kid"] = f"{origin}/keys/{name}/{v.version}"
        return bundle

    def _secret_items(self, request: Request) -> list[dict[str, Any]]:
        origin = self._origin(request)
        with self._lock:
            entries = sorted(self._secrets.values(), key=lambda e: e[0].lower())
            return [self._item(f"{origin}/secrets/{display}", history[-1]) for display, history in entries]

    def _version_items(self, request: Request, name: str) -> list[dict[str, Any]]:
        self._lookup(name, None)
        origin = self._origin(request)
        display = self._display_name(name)
        with self._lock:
            history = list(self._secrets[name.lower()][1])
        return [self._item(f"{origin}/secrets/{display}/{v.version}", v) for v in history]

    def _list(self, request: Request, items: list[dict[str, Any]]) -> Response:
        raw_max = request.q("maxresults")
        page_size = MAX_PAGE_SIZE
        if raw_max is not None:
            if not raw_max.isdigit() or not 1 <= int(raw_max) <= MAX_PAGE_SIZE:
                raise KvError(
                    400,
                    "BadParameter",
                    f"Invalid maxresults value '{raw_max}'. It must be between 1 and {MAX_PAGE_SIZE}.",
                )
            page_size = int(raw_max)
        offset = 0
        token = request.q("$skiptoken")
        if token:
            try:
                offset = int(json.loads(unb64url(token))["offset"])
            except (ValueError, KeyError, TypeError):
                raise KvError(400, "BadParameter", "The $skiptoken parameter is invalid.") from None
        page = items[offset : offset + page_size]
        next_link = None
        if offset + page_size < len(items):
            skip = b64url(json.dumps({"offset": offset + page_size}).encode())
            next_link = (
                f"{self._origin(request)}{request.path}?api-version={request.q('api-version')}"
                f"&$skiptoken={skip}&maxresults={page_size}"
            )
        return Response.json(
            200, {"value": page, "nextLink": next_link}, self._kv_headers(request), content_type=JSON_UTF8
        )

    def _get(self, request: Request, name: str, version: str | None) -> Response:
        found = self._lookup(name, version)
        if not found.enabled:
            raise KvError(
                403, "Forbidden", "Operation get is not allowed on a disabled secret.", inner="SecretDisabled"
            )
        body = self._bundle(request, self._display_name(name), found, with_value=True)
        return Response.json(200, body, self._kv_headers(request), content_type=JSON_UTF8)

    def _put(self, request: Request, name: str) -> Response:
        if not SECRET_NAME.match(name):
            raise KvError(
                400,
                "BadParameter",
                f"The request URI contains an invalid name: {name}. Secret names must be 1-127 characters "
                "long and contain only 0-9, a-z, A-Z, and -.",
            )
        payload = json_body(request)
        value = payload.get("value")
        if not isinstance(value, str):
            raise KvError(400, "BadParameter", "Property 'value' is required and must be a string.")
        attributes = payload.get("attributes") or {}
        version = self.set_secret(
            name,
            value,
            enabled=attributes.get("enabled", True) is not False,
            nbf=attributes.get("nbf"),
            exp=attributes.get("exp"),
            content_type=payload.get("contentType"),
            tags=payload.get("tags"),
        )
        found = self._find(name, version)
        body = self._bundle(request, self._display_name(name), found, with_value=True)
        return Response.json(200, body, self._kv_headers(request), content_type=JSON_UTF8)

    def _patch(self, request: Request, name: str, version: str | None) -> Response:
        found = self._lookup(name, version)
        payload = json_body(request)
        attributes = payload.get("attributes") or {}
        with self._lock:
            if "enabled" in attributes and attributes["enabled"] is not None:
                found.enabled = bool(attributes["enabled"])
            if "nbf" in attributes:
                found.nbf = unix_time(attributes["nbf"])
            if "exp" in attributes:
                found.exp = unix_time(attributes["exp"])
            if payload.get("contentType") is not None:
                found.content_type = payload["contentType"]
            if payload.get("tags") is not None:
                found.tags = dict(payload["tags"])
            found.updated = int(time.time())
        body = self._bundle(request, self._display_name(name), found, with_value=False)
        return Response.json(200, body, self._kv_headers(request), content_type=JSON_UTF8)
