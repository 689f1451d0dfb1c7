"""The error taxonomy at the client boundary.

Every client in `jobs.core.clients` maps its library's exceptions to these classes, chaining the
cause, so no library exception type escapes the clients and callers decide on meaning, not on
library details. Messages carry the system, the operation and the path — never a response body or a
payload, because either may hold a secret.
"""

from __future__ import annotations

from typing import Final

from jobs.core.logs import redact


class ClientError(Exception):
    """Base class: something a remote system said or failed to say."""

    def __init__(self, system: str, message: str) -> None:
        super().__init__(f"{system}: {message}")
        self.system = system


class Transient(ClientError):
    """Worth retrying: connection errors, timeouts, 429 and 5xx."""

    def __init__(self, system: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(system, message)
        self.retry_after = retry_after


class Unreachable(Transient):
    """No answer at all: connection refused, DNS failure, TLS handshake, timeout. `cause` says which
    in a few words ("connection refused")."""

    def __init__(self, system: str, message: str, cause: str = "") -> None:
        super().__init__(system, message)
        self.cause = cause


class Unavailable(Unreachable):
    """The system was given up on for this run (the circuit breaker opened after consecutive transport
    failures): not tried, not retried; every entry that needs it fails with this one shared reason."""


class Sealed(ClientError):
    """Vault answered 503: sealed or not yet active. Not retried: it will not unseal itself."""


class Unauthorized(ClientError):
    """The credential was refused or has expired (401, or Vault's 403 'invalid token')."""


class PermissionDenied(ClientError):
    """Authenticated, but not allowed to do this (403)."""


class NotFound(ClientError):
    """The object does not exist (and the caller asked for it by name)."""


class Conflict(ClientError):
    """A check-and-set or resourceVersion precondition failed (409, Vault CAS mismatch)."""


class Permanent(ClientError):
    """A request the server will never accept as sent (400, 422, unexpected shapes)."""


class ConfigError(Exception):
    """Bad invocation, catalog or settings: exit 2 before any server is contacted."""


# -- the one HTTP status table ---------------------------------------------------------------------
# Each client handles its vendor's quirks first (Vault's sealed 503 and CAS 400, Key Vault's
# SecretDisabled 403, Kubernetes' "API not served" 404) and then maps every other status here.
_BY_STATUS: Final[dict[int, tuple[type[ClientError], str]]] = {
    401: (Unauthorized, "unauthorized"),
    403: (PermissionDenied, "permission denied"),
    404: (NotFound, "not found"),
    409: (Conflict, "conflict"),
}


def is_transient_status(status: int) -> bool:
    """Worth retrying: request timeout, throttled, or a server-side failure."""
    return status in (408, 429) or status >= 500


def from_status(
    system: str,
    status: int,
    what: str,
    detail: str = "",
    *,
    reason: str = "",
    retry_after: float | None = None,
    hint: str = "",
) -> ClientError:
    """The error for an HTTP status. `reason` is the service's short code ("Forbidden"), `detail` its
    message — never a body that could hold a secret; `hint` is appended, e.g. which role is missing."""
    label = f"{status} {reason}".strip() + (f": {detail}" if detail else "")
    if is_transient_status(status):
        return Transient(system, f"{what}: server busy or failing ({label}){hint}", retry_after)
    kind, words = _BY_STATUS.get(status, (Permanent, "rejected"))
    return kind(system, f"{what}: {words} ({label}){hint}")


_CAUSES: Final = (
    # (words found in the exception chain, lower-cased) -> the cause as a message names it
    (
        ("wrong version number", "wrong_version_number", "http request to an https server"),
        "TLS handshake failed (is the scheme right? http:// vs https://)",
    ),
    (
        ("certificate verify failed", "certificate_verify_failed", "self-signed", "self signed"),
        "TLS handshake failed: certificate not trusted (set the CA bundle)",
    ),
    (("sslerror", "ssl:", "tls", "handshake"), "TLS handshake failed"),
    (
        (
            "name or service not known",
            "nodename nor servname",
            "temporary failure in name resolution",
            "nameresolutionerror",
            "getaddrinfo failed",
            "no address associated",
        ),
        "name resolution failed",
    ),
    (("connection refused", "errno 111", "newconnectionerror"), "connection refused"),
    (("timed out", "timeout"), "timed out"),
    (
        ("connection reset", "remotedisconnected", "connection aborted", "broken pipe"),
        "connection dropped by the server",
    ),
)


def _chain_text(exc: BaseException) -> str:
    parts: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(parts) < 20:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        parts.append(f"{type(current).__name__} {current}")
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                todo.append(linked)
    return " ".join(parts).lower()


def transport_cause(exc: BaseException) -> str:
    """Why a request got no answer, in a few words (refused, name resolution, TLS, timed out), read
    from the library's exception chain; never the library's own text, which may be long."""
    text = _chain_text(exc)
    for needles, cause in _CAUSES:
        if any(needle in text for needle in needles):
            return cause
    return f"cannot connect ({type(exc).__name__})"


def unreachable(system: str, what: str, target: str, exc: BaseException) -> Unreachable:
    """The error for a request that got no answer: names the target and the cause."""
    cause = transport_cause(exc)
    return Unreachable(system, f"{what}: {target} unreachable: {cause}", cause)


def failure_reason(exc: BaseException) -> str:
    """The one-line, redacted reason an entry or run failed."""
    if isinstance(exc, ClientError):
        return redact(str(exc))
    return redact(f"unexpected {type(exc).__name__}: {exc}")
