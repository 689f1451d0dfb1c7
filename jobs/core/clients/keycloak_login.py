"""Log in to a realm's token endpoint AS a catalog client, with a stored secret, to learn whether
Keycloak accepts it (`secret-origin smoke --login`, docs/design.md#checks).

No admin credential: the client's own secret is the only credential sent. The answer is read for its
status, `error` and `error_description` only (docs/design.md#keycloak); any token in it is discarded
unread. The secret is registered for redaction before it is sent. Requests are spaced to at most
`rate` per second, so a large catalog cannot flood Keycloak (client-authentication failures do not
count toward Keycloak's brute-force lockout, which tracks users; docs/design.md#keycloak).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final
from urllib.parse import quote

import httpx

from jobs.core import traffic
from jobs.core.clients.keycloak_errors import SYSTEM
from jobs.core.clients.keycloak_session import ssl_context
from jobs.core.logs import redact, register_secret
from jobs.core.observed import LoginVerdict

DEFAULT_RATE: Final = 5.0  # logins per second


class SecretLogin:
    """One connection pool to one Keycloak; `close()` at the end."""

    def __init__(
        self,
        base_url: str,
        *,
        rate: float = DEFAULT_RATE,
        cacert: str | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            verify=ssl_context(cacert),
            timeout=timeout,
            headers={"Accept": "application/json"},
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def _pace(self) -> None:
        """Wait for this request's slot; entries on several threads share the one rate."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            self._sleep(start - now)

    def check_client_secret(self, realm: str, client_id: str, secret: str) -> LoginVerdict:
        """client_credentials as `client_id` with `secret` (client_secret_post). Never raises for an
        answer; a connection problem is `LoginVerdict(None, "unreachable: ...")`."""
        register_secret(secret)
        path = f"/realms/{quote(realm, safe='')}/protocol/openid-connect/token"
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        self._pace()
        try:
            response = traffic.counted(SYSTEM, lambda: self._http.post(path, data=form))
        except httpx.TimeoutException:
            return LoginVerdict(None, "unreachable: timed out")
        except httpx.HTTPError as exc:
            return LoginVerdict(None, f"unreachable: cannot connect ({type(exc).__name__})")
        if response.status_code == 200:
            return LoginVerdict(200)  # the token is dropped with the response, never read
        return _verdict(response)


def _verdict(response: httpx.Response) -> LoginVerdict:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return LoginVerdict(response.status_code)
    error = body.get("error")
    description = body.get("error_description")
    return LoginVerdict(response.status_code, _text(error), _text(description))


def _text(value: object) -> str:
    return redact(value)[:200] if isinstance(value, str) else ""
