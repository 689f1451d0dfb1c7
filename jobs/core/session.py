"""The Vault session every command opens the same way: build the client from the environment, log
in to each system once before the first entry, and fail every entry with the same reason if a login
is refused."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from jobs.core.catalog import SecretEntry
from jobs.core.errors import ClientError
from jobs.core.model import RunReport
from jobs.core.retry import RetryPolicy
from jobs.core.runner import RunContext, fail_all
from jobs.core.settings import VaultSettings, load_settings

if TYPE_CHECKING:  # the vendor SDK loads only when a client is built
    from jobs.core.clients.vault import VaultClient


class LogsIn(Protocol):
    def login(self) -> None: ...


def open_vault(
    retry: RetryPolicy, settings: VaultSettings | None = None, connections: int = 10
) -> VaultClient:
    """The Vault client, configured from VAULT_* (docs/design.md#settings-and-credentials); pass the
    settings when the entrypoint loaded them together with the other systems' (`load_all_settings`);
    `connections`: at least the threads that share it."""
    settings = settings or load_settings(VaultSettings)  # a settings error exits 2 before hvac is imported
    from jobs.core.clients.vault import VaultClient

    return VaultClient(settings, retry, connections=connections)


def login_error(*clients: LogsIn) -> ClientError | None:
    """Log in to each system in turn; the first refusal, or None when all accepted."""
    for client in clients:
        try:
            client.login()
        except ClientError as exc:
            return exc
    return None


def login_or_fail_all(
    ctx: RunContext[Any], entries: Sequence[SecretEntry], *clients: LogsIn, warnings: Iterable[str] = ()
) -> RunReport | None:
    """None when every login succeeded; else the report in which every entry failed with the reason."""
    error = login_error(*clients)
    return None if error is None else fail_all(ctx, entries, error, warnings)
