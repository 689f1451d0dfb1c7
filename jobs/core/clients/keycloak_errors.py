"""Keycloak's errors mapped to `jobs.core.errors`: its two error body shapes read for the code and
description only (never the raw body), then the one status table."""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote

import httpx

from jobs.core.errors import ClientError, from_status
from jobs.core.logs import redact
from jobs.core.retry import parse_retry_after

SYSTEM: Final = "keycloak"
_DETAIL_MAX: Final = 200
ROLES_NEEDED: Final = "the roles view-clients and manage-clients of the client 'realm-management'"


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


def roles_needed(auth_realm: str, path: str) -> str:
    """What an identity of `auth_realm` needs to administer the realm of the Admin API `path`: the
    roles of the master client `<realm>-realm` for a master-realm identity, of `realm-management` for
    one of the realm itself; an identity of another realm cannot (Keycloak answers 403 whatever its
    roles)."""
    parts = path.split("/")  # "", "admin", "realms", "<realm>", ...
    target = unquote(parts[3]) if len(parts) > 3 else auth_realm
    if auth_realm == "master":
        return f"the roles view-clients and manage-clients of the master client '{target}-realm'"
    if target == auth_realm:
        return ROLES_NEEDED
    return (
        f"to be of realm 'master' or {target!r}: an identity of realm {auth_realm!r} cannot "
        f"administer realm {target!r}"
    )


def status_error(response: httpx.Response, what: str, needed: str = ROLES_NEEDED) -> ClientError:
    """Map a non-2xx response through the status table (401 is handled by the caller first). `needed`
    says what the identity lacks on a 403."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    hint = (
        f"; the Keycloak identity needs {needed} (Keycloak 26.8+ requires manage-clients to read a secret)"
        if status == 403
        else ""
    )
    return from_status(SYSTEM, status, what, oauth_detail(response), retry_after=retry_after, hint=hint)
