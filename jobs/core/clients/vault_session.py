"""The requests session hvac sends every Vault request through: each attempt's timeout capped by the
run's `--deadline`, a connection pool sized for the threads sharing it, the last answer's
Retry-After per thread (hvac's errors do not carry headers), and every attempt counted for the metrics."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from jobs.core import traffic
from jobs.core.retry import parse_retry_after

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
        self.verify = verify  # hvac prefers a given session's `verify` (default True) over its own
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(10, connections))
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = self._timeout()
        self._local.retry_after = None
        try:
            response = super().send(request, **kwargs)
        except Exception:
            traffic.record(SYSTEM, None)
            raise
        traffic.record(SYSTEM, response.status_code)
        self._local.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return response

    @property
    def retry_after(self) -> float | None:
        """The last answer's Retry-After on this thread (hvac's errors do not carry headers)."""
        value: float | None = getattr(self._local, "retry_after", None)
        return value
