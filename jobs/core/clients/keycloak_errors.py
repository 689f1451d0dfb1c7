"""Keycloak's errors mapped to `jobs.core.errors`: its two error body shapes read for the code and
description only (never the raw body), then the one status table."""

from __future__ import annotations

from typing import Final

import httpx

from jobs.core.errors import ClientError, from_status
from jobs.core.logs import redact
from jobs.core.retry import parse_retry_after

SYSTEM: Final = "keycloak"
_DETAIL_MAX: Final = 200


def oauth_detail(response: httpx.Response) -> str:
    """Keycloak's error code and description, from either error shape (docs/design.md#traps, trap 4).
    Never the raw body."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [
        str(body[key])
        for key in ("error", "errorMessage", "error_description")
        if isinstance(body.get(key), str) and body[key]
    ]
    return redact(": ".join(parts))[:_DETAIL_MAX]


def status_error(response: httpx.Response, what: str) -> ClientError:
    """Map a non-2xx response through the status table (401 is handled by the caller first)."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    hint = (
        "; the Keycloak identity needs the realm-management roles view-clients and manage-clients "
        "(Keycloak 26.8+ requires manage-clients to read a secret)"
        if status == 403
        else ""
    )
    return from_status(SYSTEM, status, what, oauth_detail(response), retry_after=retry_after, hint=hint)
