"""Azure Key Vault / Entra ID errors mapped to `jobs.core.errors`: the SDK's quirks first (a disabled
secret's 403, Entra's AADSTS codes, a challenge naming another tenant), then the one status table.
Messages carry the operation, the secret name, the status and the service's error code — never a
response body or a value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)

from jobs.core.errors import (
    ClientError,
    NotFound,
    Permanent,
    Transient,
    Unauthorized,
    Unreachable,
    from_status,
    is_transient_status,
    unreachable,
)
from jobs.core.logs import redact
from jobs.core.retry import parse_retry_after

SYSTEM: Final = "azure-key-vault"
_AADSTS: Final = re.compile(r"AADSTS\d+: [^.]*\.")
_AKV_CODE: Final = re.compile(r"AKV\d+|\[[A-Za-z]+\]")


def _retry_after(exc: HttpResponseError) -> float | None:
    response = exc.response
    if response is None:
        return None
    headers: Mapping[str, str] = getattr(response, "headers", None) or {}
    for name, unit in (("Retry-After", 1.0), ("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001)):
        seconds = parse_retry_after(headers.get(name), unit=unit)
        if seconds is not None:
            return seconds
    return None


def _status(exc: HttpResponseError) -> int:
    return int(getattr(exc.response, "status_code", None) or exc.status_code or 0)


def _service_code(exc: HttpResponseError) -> str:
    error = exc.error
    if error is None:
        return ""
    inner = getattr(error, "innererror", None)
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    return str(inner_code or error.code or "")


def _auth_detail(exc: ClientAuthenticationError) -> str:
    text = redact(str(exc.message or exc))  # before any cut: a prefix of a value is a leak too
    found = _AADSTS.search(text)
    if found:
        return found.group(0)
    if "not configured to acquire tokens for tenant" in text:
        return "the vault's challenge names another tenant than AZURE_TENANT_ID"
    code = _AKV_CODE.search(text)
    if code:
        return f"Key Vault refused the access token ({code.group(0)})"
    return "authentication failed"


def translate(exc: BaseException, operation: str) -> ClientError:
    """Map an azure-core / azure-identity exception to our taxonomy (no body, no value)."""
    what = operation
    if isinstance(exc, ClientError):
        return exc
    if isinstance(exc, ClientAuthenticationError) and is_transient_status(_status(exc)):
        # Entra's token endpoint throttled or failing: our RetryPolicy waits (interruptibly, within
        # the deadline) for its Retry-After, which azure-core's own retry would sleep through.
        return from_status(
            SYSTEM, _status(exc), f"{what}: Entra token request", retry_after=_retry_after(exc)
        )
    if isinstance(exc, ClientAuthenticationError):
        # 401 from Key Vault for a token the SDK still believed valid, or an Entra error on the token POST.
        return Unauthorized(SYSTEM, f"{what}: {_auth_detail(exc)}")
    if isinstance(exc, ResourceNotFoundError):
        return NotFound(SYSTEM, f"{what}: not found (404 {_service_code(exc) or 'NotFound'})")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        code = _service_code(exc)
        if status == 403 and code == "SecretDisabled":
            return NotFound(SYSTEM, f"{what}: disabled ({status} {code})")
        return from_status(SYSTEM, status, what, reason=code, retry_after=_retry_after(exc))
    if isinstance(exc, ServiceRequestTimeoutError | ServiceResponseTimeoutError):
        return Unreachable(SYSTEM, f"{what}: timed out")
    if isinstance(exc, ServiceRequestError) and "SSL" in str(exc):
        return Unreachable(SYSTEM, f"{what}: TLS verification failed (is REQUESTS_CA_BUNDLE the vault's CA?)")
    if isinstance(exc, ServiceRequestError):
        return unreachable(SYSTEM, what, "Azure Key Vault", exc)
    if isinstance(exc, ServiceResponseError):
        return Transient(SYSTEM, f"{what}: no complete response ({type(exc).__name__})")
    if isinstance(exc, ValueError) and "challenge resource" in str(exc):
        return Permanent(
            SYSTEM,
            f"{what}: the vault's challenge resource does not match its host (emulators on loopback "
            "addresses need AZURE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE=false)",
        )
    if isinstance(exc, OSError):
        return Permanent(SYSTEM, f"{what}: {type(exc).__name__}: {exc.strerror or 'I/O error'}")
    if isinstance(exc, AzureError):
        return Permanent(SYSTEM, f"{what}: {type(exc).__name__}")
    return Permanent(SYSTEM, f"{what}: unexpected {type(exc).__name__}")
