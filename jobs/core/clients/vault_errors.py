"""Vault's answers as our error taxonomy: its sealed 503 (its own error body) against a transient one, a
dead token's 403, a check-and-set 400 against a mount that requires `metadata_cas`, plain http to an
https listener (docs/design.md#vault-kv-v2); a failure to reach it names the address and the cause."""

from __future__ import annotations

from typing import Final

import hvac
import hvac.exceptions
import requests

from jobs.core.errors import (
    ClientError,
    Conflict,
    Permanent,
    Sealed,
    Transient,
    Unauthorized,
    from_status,
    unreachable,
)
from jobs.core.logs import redact

SYSTEM: Final = "vault"


def _first_error(exc: hvac.exceptions.VaultError) -> str:
    errors = getattr(exc, "errors", None) or []
    # Redact before reshaping: a multi-line value (a PEM key) only matches in its original form.
    text = "; ".join(redact(str(e)).strip().replace("\n\t* ", " ").replace("\n", " ") for e in errors)
    return text.strip() or "no detail"


# hvac raises one exception class per HTTP status (hvac.utils.raise_for_error).
_STATUS_OF: Final[dict[type[hvac.exceptions.VaultError], int]] = {
    hvac.exceptions.InvalidRequest: 400,
    hvac.exceptions.Unauthorized: 401,
    hvac.exceptions.Forbidden: 403,
    hvac.exceptions.InvalidPath: 404,
    hvac.exceptions.UnsupportedOperation: 405,
    hvac.exceptions.PreconditionFailed: 412,
    hvac.exceptions.RateLimitExceeded: 429,
    hvac.exceptions.InternalServerError: 500,
    hvac.exceptions.VaultNotInitialized: 501,
    hvac.exceptions.BadGateway: 502,
    hvac.exceptions.VaultDown: 503,
}


class MetadataCasRequired(Permanent):
    """The mount requires `metadata_cas` on metadata writes (OpenBao >= 2.4 `metadata_cas_required`)."""


def translate(
    exc: Exception, operation: str, path: str, target: str = "Vault", retry_after: float | None = None
) -> ClientError:
    """Vault's quirks first (its sealed 503, a dead token's 403, a CAS 400, http to https), then the
    status table. A 503 without Vault's own "Vault is sealed" is an ingress or standby mid-restart:
    transient. `target` names the address in an unreachable error ("Vault at https://...")."""
    what = f"{operation} {path}"
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return unreachable(SYSTEM, what, target, exc)
    if not isinstance(exc, hvac.exceptions.VaultError):
        return Permanent(SYSTEM, f"{what}: {type(exc).__name__}")
    status = _STATUS_OF.get(type(exc))
    detail = _first_error(exc)
    if status == 503 and "sealed" in detail.lower():
        return Sealed(SYSTEM, f"{what}: Vault is sealed (503); unseal it and rerun")
    if status == 503:
        return Transient(SYSTEM, f"{what}: unavailable (503: {detail})", retry_after)
    if status == 403 and ("invalid token" in detail or "token expired" in detail):
        return Unauthorized(SYSTEM, f"{what}: token invalid or expired (403)")
    if status == 400 and "http request to an https server" in detail.lower():
        return unreachable(SYSTEM, what, target, exc)
    if status == 400 and "metadata check-and-set parameter required" in detail:
        return MetadataCasRequired(SYSTEM, f"{what}: the mount requires metadata_cas ({detail})")
    if status == 400 and "check-and-set" in detail:
        return Conflict(SYSTEM, f"{what}: check-and-set refused ({detail})")
    if status is None:
        return Permanent(SYSTEM, f"{what}: unexpected response ({type(exc).__name__}: {detail})")
    return from_status(SYSTEM, status, what, "" if status in (401, 403, 404) else detail)
