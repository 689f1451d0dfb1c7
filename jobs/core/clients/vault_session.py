"""The requests session hvac sends every Vault request through: each attempt's timeout capped by the
run's `--deadline`, a connection pool sized for the threads sharing it, and the last answer's
Retry-After per thread (hvac's errors do not carry headers)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from jobs.core.retry import parse_retry_after


class DeadlineSession(requests.Session):
    """The session hvac sends every request through (hvac's public `session=` option). hvac passes one
    fixed timeout per client; `send` replaces it with this attempt's timeout, capped by the deadline."""

    def __init__(self, timeout: Callable[[], float], verify: bool | str, connections: int) -> None:
        """`connections`: the HTTP connections kept for reuse, at least the threads that share the
        session (requests' sessions are shared across threads; a too small pool reconnects)."""
        super().__init__()
        self._timeout = timeout
        self._local = threading.local()
        self._settings: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._settings_lock = threading.Lock()
        self.verify = verify  # hvac prefers a given session's `verify` (default True) over its own
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(10, connections))
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        """requests reads the proxy and CA-bundle variables on every request (a scan of the whole
        environment each time); every request goes to one Vault, so read them once per host."""
        if proxies:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url.decode() if isinstance(url, bytes) else url or "")
        key = (parts.scheme, parts.netloc, stream, verify, cert)
        with self._settings_lock:
            if key not in self._settings:
                read = super().merge_environment_settings(url, proxies, stream, verify, cert)
                self._settings[key] = dict(read)
            cached = self._settings[key]
        return {**cached, "proxies": dict(cached["proxies"])}

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = self._timeout()
        self._local.retry_after = None
        response = super().send(request, **kwargs)
        self._local.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return response

    @property
    def retry_after(self) -> float | None:
        """The last answer's Retry-After on this thread (hvac's errors do not carry headers)."""
        value: float | None = getattr(self._local, "retry_after", None)
        return value
