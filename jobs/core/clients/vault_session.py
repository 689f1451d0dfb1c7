"""The requests session hvac sends every Vault request through: each attempt's timeout capped by the
run's `--deadline`, a connection pool sized for the threads sharing it, the last answer's
Retry-After per thread (hvac's errors do not carry headers), the environment's proxy settings
read once per Vault address instead of once per request (requests walks the whole environment twice
for every request: a sixth of the CPU a Vault read costs), and every attempt counted for the metrics."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies

from jobs.core import traffic
from jobs.core.retry import parse_retry_after

_merge: Callable[[Any, Any], Any] = merge_setting  # untyped in requests' stubs
SYSTEM = "vault"  # jobs.core.clients.vault_errors.SYSTEM, without importing hvac here


class DeadlineSession(requests.Session):
    """The session hvac sends every request through (hvac's public `session=` option). hvac passes one
    fixed timeout per client; `send` replaces it with this attempt's timeout, capped by the deadline."""

    def __init__(self, timeout: Callable[[], float], verify: bool | str, connections: int) -> None:
        """`connections`: the HTTP connections kept for reuse, at least the threads that share the
        session (requests' sessions are shared across threads; a too small pool reconnects)."""
        super().__init__()
        self._timeout = timeout
        self._local = threading.local()
        self._env_proxies: dict[tuple[str, str, str | None], dict[str, str]] = {}
        self.verify = verify  # hvac prefers a given session's `verify` (default True) over its own
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(10, connections))
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        """requests' own merge, with the environment's proxies looked up once per scheme, host and
        `no_proxy` (the environment does not change during a run)."""
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        parts = urlsplit(str(url))
        key = (parts.scheme, parts.netloc, no_proxy)
        env_proxies = self._env_proxies.get(key)
        if env_proxies is None:
            env_proxies = self._env_proxies[key] = dict(get_environ_proxies(str(url), no_proxy=no_proxy))
        if proxies is not None:
            for name, value in env_proxies.items():
                proxies.setdefault(name, value)
        if verify is True or verify is None:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
        return {
            "proxies": _merge(proxies, self.proxies),
            "stream": _merge(stream, self.stream),
            "verify": _merge(verify, self.verify),
            "cert": _merge(cert, self.cert),
        }

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = self._timeout()
        self._local.retry_after = None
        send = super().send
        response = traffic.counted(SYSTEM, lambda: send(request, **kwargs))
        self._local.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return response

    @property
    def retry_after(self) -> float | None:
        """The last answer's Retry-After on this thread (hvac's errors do not carry headers)."""
        value: float | None = getattr(self._local, "retry_after", None)
        return value
