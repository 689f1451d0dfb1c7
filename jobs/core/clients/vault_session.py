"""The requests session hvac sends every Vault request through: each attempt's timeout capped by the
run's `--deadline`, a connection pool sized for the threads sharing it, the last answer's
Retry-After per thread (hvac's errors do not carry headers), and every attempt counted for the
metrics. What requests looks up on every request although it cannot change during a run is looked up
once per Vault address: the environment's proxy settings (requests walks the whole environment twice
per request: a sixth of the CPU a Vault read costs), `~/.netrc` (three file lookups per request, an
eighth) and whether the CA path is a directory (a twelfth)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies, get_netrc_auth

from jobs.core import traffic
from jobs.core.retry import parse_retry_after

if TYPE_CHECKING:
    from requests.adapters import _HostParams, _PoolKwargs

_merge: Callable[[Any, Any], Any] = merge_setting  # untyped in requests' stubs
SYSTEM = "vault"  # jobs.core.clients.vault_errors.SYSTEM, without importing hvac here


class _NoNetrc(AuthBase):
    """Leaves a request as it is: set as its auth, it tells requests that ~/.netrc was looked up."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


_NO_NETRC = _NoNetrc()


class _PoolKeyAdapter(HTTPAdapter):
    """requests' adapter, with the TLS settings of a connection pool (which ask the filesystem whether
    the CA path is a directory) worked out once per address, CA path and client certificate."""

    def __init__(self, connections: int) -> None:
        super().__init__(pool_connections=1, pool_maxsize=connections)
        self._pool_keys: dict[tuple[str, str, Any, Any], tuple[_HostParams, _PoolKwargs]] = {}

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[_HostParams, _PoolKwargs]:
        parts = urlsplit(str(request.url))
        key = (parts.scheme, parts.netloc, verify, cert)
        found = self._pool_keys.get(key)
        if found is None:
            found = self._pool_keys[key] = super().build_connection_pool_key_attributes(request, verify, cert)
        host, pool = found
        return host.copy(), pool.copy()


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
        self._netrc: dict[str, AuthBase | tuple[str, str]] = {}
        self.verify = verify  # hvac prefers a given session's `verify` (default True) over its own
        adapter = _PoolKeyAdapter(max(10, connections))
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """requests' own, with ~/.netrc looked up once per Vault address (Vault authenticates with
        X-Vault-Token; a netrc entry would only add a basic Authorization header, kept as it was)."""
        if self.trust_env and not request.auth and not self.auth:
            netloc = urlsplit(str(request.url)).netloc
            auth = self._netrc.get(netloc)
            if auth is None:
                auth = self._netrc[netloc] = get_netrc_auth(request.url) or _NO_NETRC
            request.auth = auth
        return super().prepare_request(request)

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
