"""Azure Key Vault secrets through the official SDK, authenticated with Workload Identity.

- Credential: `azure-identity`'s `WorkloadIdentityCredential` from what the webhook injects
  (`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_AUTHORITY_HOST`); the CA
  trust store comes from `REQUESTS_CA_BUNDLE`, which azure-core's requests transport honours. Never a
  stored client secret.
- Listing: `list_secrets` pages through `GET /secrets` once per run. A list item carries the current
  version's attributes (`enabled`, `nbf`, `exp`, `created`, `managed`) but **no version id**
  (docs/design.md#azure-key-vault: the list `id` has no version), so change detection uses `created`
  (see `jobs.bootstrap.decide`).
  The `Date` header of the last list page is kept as the vault's own clock at listing time.
- Values: `fetch_values` GETs only the names it is given, concurrently with a small bounded pool. Every
  value is registered with the log redaction filter the moment it arrives.
- Retries: azure-core's own retry policy is switched off on the Key Vault client (`retry_total=0`) and
  everything goes through our one `RetryPolicy`, which honours `Retry-After`; a 429 also pauses *all*
  workers until the Retry-After has passed, so a throttled vault is not hammered by the other threads.
  Two stacked policies would multiply (azure-core's default is up to 10 tries with backoff up to 120 s,
  times ours). The credential's token POST has no azure-core retry either: a throttled or failing
  Entra answer surfaces from the Key Vault call as `Transient` and our policy waits, interruptibly.
- Timeouts: every Key Vault request passes azure-core's per-operation `connection_timeout` and
  `read_timeout`, capped by the run's `--deadline` at each attempt, so a hanging vault cannot hold the
  run past it. The token POST keeps the credential's fixed timeout (the challenge policy passes no
  per-operation options to `get_token`).
- Errors: every azure-core / azure-identity exception is mapped to `jobs.core.errors`; messages carry the
  operation, the secret name, the status and the service's error code — never a response body or value.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, TypeVar

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from azure.core.pipeline import PipelineResponse
from azure.identity import WorkloadIdentityCredential
from azure.keyvault.secrets import SecretClient, SecretProperties

from jobs.core.clients.azure_errors import SYSTEM, translate
from jobs.core.clients.azure_traffic import CountingTransport
from jobs.core.errors import (
    ClientError,
    ConfigError,
    Permanent,
    Transient,
)
from jobs.core.logs import register_secret
from jobs.core.observed import AkvListing, AkvSecretInfo, AkvValue
from jobs.core.retry import Breaker, RetryPolicy
from jobs.core.settings import AzureSettings

log = logging.getLogger(__name__)
PAGE_SIZE: Final = 25  # the service maximum (docs/design.md#azure-key-vault)
DEFAULT_CONCURRENCY: Final = 8
MAX_CONCURRENCY: Final = 10
# The only scope a token of this client is ever requested for, whatever a 401 challenge names and
# whatever AZURE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE says: a challenge from a look-alike vault URL must
# not obtain an Entra token for another resource, such as Azure Resource Manager
# (docs/design.md#azure-key-vault).
KEY_VAULT_SCOPE: Final = "https://vault.azure.net/.default"
T = TypeVar("T")


def _unix(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def _info(name: str, props: SecretProperties) -> AkvSecretInfo:
    return AkvSecretInfo(
        name=name,
        enabled=props.enabled is not False,
        created=_unix(props.created_on),
        not_before=_unix(props.not_before),
        expires=_unix(props.expires_on),
        managed=bool(props.managed),
    )


def _remember_date(response: PipelineResponse[Any, Any], dates: list[int]) -> None:
    """The `Date` of a 200 answer: the vault's own clock, Unix seconds."""
    raw = response.http_response.headers.get("Date")
    if raw and response.http_response.status_code == 200:
        with contextlib.suppress(TypeError, ValueError):
            dates.append(int(parsedate_to_datetime(raw).astimezone(UTC).timestamp()))


class _Pause:
    """A vault-wide pause after a 429: every worker waits until the Retry-After has passed."""

    def __init__(self, interrupt: threading.Event) -> None:
        self._until = 0.0
        self._lock = threading.Lock()
        self._interrupt = interrupt

    def wait(self) -> None:
        with self._lock:
            remaining = self._until - time.monotonic()
        if remaining > 0:
            self._interrupt.wait(remaining)

    def extend(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)


class KeyVaultOnlyCredential:
    """The Workload Identity credential, asked for Key Vault's scope only: the scopes the SDK's challenge
    policy derives from the 401 challenge are ignored. Tenant and claims from the challenge still pass."""

    def __init__(self, inner: WorkloadIdentityCredential) -> None:
        self._inner = inner

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return self._inner.get_token(KEY_VAULT_SCOPE, **kwargs)

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        return self._inner.get_token_info(KEY_VAULT_SCOPE, options=options)

    def close(self) -> None:
        self._inner.close()


class AzureKeyVaultClient:
    """Read-only Key Vault access for vault-bootstrap. Build once in the entrypoint; `close()` at the end."""

    def __init__(
        self,
        vault_url: str,
        settings: AzureSettings,
        retry: RetryPolicy | None = None,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = 15.0,
    ) -> None:
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._breaker = Breaker(SYSTEM, f"Azure Key Vault at {vault_url.rstrip('/')}")
        self._pause = _Pause(self._retry.interrupt)
        # azure-core's requests transport pools 10 connections per host; more workers would only queue.
        self._concurrency = max(1, min(concurrency, MAX_CONCURRENCY))
        try:
            jwt = settings.federated_token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"AZURE_FEDERATED_TOKEN_FILE {settings.federated_token_file}: cannot read ({exc.strerror})"
            ) from None
        register_secret(jwt)  # the SDK reads the file itself; mask it should a library ever echo it
        credential_kwargs: dict[str, Any] = {
            "tenant_id": settings.tenant_id,
            "client_id": settings.client_id,
            "token_file_path": str(settings.federated_token_file),
            # No retry inside the SDK: its sleeps honour Retry-After but neither SIGTERM nor the
            # deadline. A throttled token POST surfaces as Transient and our RetryPolicy waits.
            "retry_total": 0,
            "connection_timeout": timeout,
            "read_timeout": timeout,
        }
        if settings.authority_host:
            credential_kwargs["authority"] = settings.authority_host
        try:
            self._credential = WorkloadIdentityCredential(**credential_kwargs)
        except ValueError as exc:  # missing or malformed identity settings
            raise ConfigError(f"Azure Workload Identity: {exc}") from None
        client_kwargs: dict[str, Any] = {
            "verify_challenge_resource": settings.verify_challenge_resource,
            "retry_total": 0,  # our RetryPolicy is the only one (see the module docstring)
            "transport": CountingTransport(connection_timeout=timeout, read_timeout=timeout),
            "connection_timeout": timeout,
            "read_timeout": timeout,
        }
        if settings.keyvault_api_version:
            client_kwargs["api_version"] = settings.keyvault_api_version
        try:
            self._client = SecretClient(vault_url, KeyVaultOnlyCredential(self._credential), **client_kwargs)
        except (ValueError, NotImplementedError) as exc:  # e.g. an api-version the SDK does not know
            self._credential.close()
            raise ConfigError(f"Azure Key Vault client: {exc}") from None

    # -- plumbing -----------------------------------------------------------------------------------
    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        def attempt() -> T:
            self._pause.wait()
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - the client boundary: nothing from the SDK escapes
                error = translate(exc, operation)
                if isinstance(error, Transient) and error.retry_after:
                    self._pause.extend(error.retry_after)
                raise error from None

        return self._retry.call(attempt, self._breaker)

    def _attempt_timeout(self) -> float:
        """The connection and read timeout of one attempt: never past the run's deadline."""
        return self._retry.timeout(self._timeout)

    def close(self) -> None:
        for closable in (self._client, self._credential):
            with contextlib.suppress(Exception):  # closing must never mask the run's outcome
                closable.close()

    def __enter__(self) -> AzureKeyVaultClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads --------------------------------------------------------------------------------------
    def list_secrets(self) -> AkvListing:
        """Every secret's current-version attributes, paging `GET /secrets` (25 per page). A failed
        page is retried from its own continuation link, not from the start."""
        found: dict[str, AkvSecretInfo] = {}
        server_time: list[int] = []

        def remember_date(response: PipelineResponse[Any, Any]) -> None:
            _remember_date(response, server_time)

        token: str | None = None
        pages = 0
        while True:

            def one_page(start: str | None = token) -> tuple[list[SecretProperties], str | None]:
                timeout = self._attempt_timeout()
                pager = self._client.list_properties_of_secrets(
                    max_page_size=PAGE_SIZE,
                    raw_response_hook=remember_date,
                    connection_timeout=timeout,
                    read_timeout=timeout,
                ).by_page(continuation_token=start)
                try:
                    page = list(next(pager))
                except StopIteration:
                    return [], None
                next_link = getattr(pager, "continuation_token", None)  # azure.core.paging.PageIterator
                return page, str(next_link) if next_link else None

            items, token = self._call(f"list secrets (page {pages + 1})", one_page)
            pages += 1
            for item in items:
                if not item.name:
                    continue
                found[item.name.lower()] = _info(item.name, item)
            if not token:
                break
        log.info("listed Azure Key Vault secrets", extra={"secrets": len(found), "pages": pages})
        return AkvListing(found, max(server_time) if server_time else None)

    def get_value(self, name: str) -> AkvValue:
        """The latest version's value. Raises NotFound for a missing or disabled secret."""

        def get() -> AkvValue:
            timeout = self._attempt_timeout()
            dates: list[int] = []
            secret = self._client.get_secret(
                name,
                connection_timeout=timeout,
                read_timeout=timeout,
                raw_response_hook=lambda response: _remember_date(response, dates),
            )
            value = secret.value
            if value is None:
                raise Permanent(SYSTEM, f"get secret {name}: the response carried no value")
            register_secret(value)
            return AkvValue(
                name=name,
                version=secret.properties.version or "",
                created=_unix(secret.properties.created_on),
                value=value,
                info=_info(name, secret.properties),
                server_time=max(dates) if dates else None,
            )

        return self._call(f"get secret {name}", get)

    def fetch_values(self, names: Iterable[str]) -> dict[str, AkvValue | ClientError]:
        """GET each name once, `concurrency` at a time. Per-name failures are returned, not raised,
        so one bad secret fails one entry; keys are lower-cased names."""
        unique = sorted({n.lower(): n for n in names}.items())
        results: dict[str, AkvValue | ClientError] = {}
        if not unique:
            return results

        def one(name: str) -> AkvValue | ClientError:
            if self._retry.interrupt.is_set() or self._retry.deadline.expired():
                return Transient(SYSTEM, f"get secret {name}: not attempted (run interrupted or out of time)")
            try:
                return self.get_value(name)
            except ClientError as exc:
                return exc

        # The first GET alone: on a client that has not talked to the vault yet it caches the
        # challenge and the token, so the workers do not each send a body-less challenge request.
        (first_key, first_name), rest = unique[0], unique[1:]
        results[first_key] = one(first_name)
        if rest:
            with ThreadPoolExecutor(max_workers=min(self._concurrency, len(rest))) as pool:
                fetched: Iterator[AkvValue | ClientError] = pool.map(one, [name for _, name in rest])
                for (key, _), outcome in zip(rest, fetched, strict=True):
                    results[key] = outcome
        return results
