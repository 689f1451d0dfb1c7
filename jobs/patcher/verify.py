"""`--verify-login` (on by default): after client-patcher writes a client secret, one client_credentials
request to the realm's token endpoint proves Keycloak accepts the value now in Vault. A rejected value
fails the entry before any consumer is told about it (docs/design.md#keycloak gives the answers)."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

from jobs.checks.login import FAIL, judge_login
from jobs.core.model import Action, EntryResult

if TYPE_CHECKING:  # the HTTP client loads only when it is built
    from jobs.core.clients.keycloak_login import SecretLogin


def verify_written(
    login: SecretLogin, realm: str, client_id: str, secret: str, result: EntryResult
) -> EntryResult:
    """`result` as it stands when Keycloak accepts `secret` (or cannot be asked); failed otherwise."""
    verdict, reason = judge_login(login.check_client_secret(realm, client_id, secret))
    if verdict != FAIL:
        return result
    why = f"Keycloak rejects the written secret at the token endpoint ({reason}); consumers not annotated"
    return replace(result, action=Action.FAILED, reason=f"{result.reason}; {why}")


def open_secret_login(enabled: bool, url: str, rate: float = 5.0) -> SecretLogin | None:
    """The token-endpoint client for `verify_written`, or None when the check is off (or a dry run)."""
    if not enabled:
        return None
    from jobs.core.clients.keycloak_login import SecretLogin

    return SecretLogin(url, rate=rate, cacert=os.environ.get("KEYCLOAK_CACERT") or None)
