"""client-patcher's run: settings, the clients built once, the per-run indexes, then every entry
through `jobs.patcher.entry.Patcher`, `--concurrency` at a time (docs/design.md#client-patcher)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from jobs.core.apply import KvTarget
from jobs.core.errors import ConfigError
from jobs.core.flags import DEFAULT_CONCURRENCY
from jobs.core.model import RunReport
from jobs.core.preflight import plain_http_warnings, vault_or_fail_all
from jobs.core.runner import RunContext, process_entries
from jobs.core.session import login_or_fail_all, open_vault
from jobs.core.settings import KeycloakSettings, KubeSettings, VaultSettings, load_all_settings
from jobs.patcher.consumers import Verification
from jobs.patcher.entry import Patcher
from jobs.patcher.verify import open_secret_login

if TYPE_CHECKING:  # vendor SDKs load only when a client is built (instant --help)
    from jobs.core.clients.keycloak import KeycloakClient
    from jobs.core.clients.keycloak_index import ClientLookup
    from jobs.core.clients.keycloak_login import SecretLogin
    from jobs.core.clients.kube import KubeClient
    from jobs.core.clients.kube_index import ExternalSecretIndex

JOB: Final = "client-patcher"


@dataclass(frozen=True)
class Options:
    rotate: tuple[str, ...] = ()  # entries whose client secret is regenerated now (--rotate NAME)
    verify_login: bool = True  # log in once with each written secret (--no-verify-login turns it off)
    login_rate: float = 5.0  # --login-rate: those logins per second at most
    verify_consumers: bool = True  # wait for patched consumers to converge (--no-verify-consumers)
    consumer_timeout: float = 60.0  # --consumer-timeout: seconds per entry for that wait
    events: bool = True  # Kubernetes Events on the consumers (--no-events turns them off)
    concurrency: int = DEFAULT_CONCURRENCY  # entries processed at once (--concurrency)


Context = RunContext[Options]


def forced_rotations(ctx: Context) -> frozenset[str]:
    """`--rotate` names, each one a selected service-generated entry (else a bad invocation)."""
    wanted = set(ctx.options.rotate)
    unknown = sorted(wanted - {e.name for e in ctx.entries})
    if unknown:
        raise ConfigError(
            f"--rotate names not among the selected service-generated entries of {ctx.catalog.path}: "
            + ", ".join(unknown)
        )
    return frozenset(wanted)


def indexes(
    ctx: Context, keycloak: KeycloakClient, kube: KubeClient | None
) -> tuple[ClientLookup, ExternalSecretIndex | None]:
    """The run's Keycloak lookups (a listing per realm where it pays) and ExternalSecret index."""
    from jobs.core.clients.keycloak_index import ClientLookup
    from jobs.core.clients.kube_index import ExternalSecretIndex

    wanted = [(e.keycloak.realm, e.keycloak.client_id) for e in ctx.entries if e.keycloak]
    lookups = ClientLookup(keycloak, wanted, ctx.options.concurrency)
    return lookups, ExternalSecretIndex(kube) if kube is not None else None


def execute(ctx: Context) -> RunReport:
    forced = forced_rotations(ctx)
    entries = ctx.entries
    if not entries:
        return ctx.report([])
    config = ctx.catalog.keycloak
    if config is None:  # pragma: no cover - the catalog requires it with service-generated entries
        raise ConfigError(f"{ctx.catalog.path}: no top-level `keycloak`")
    needs_kube = any(entry.consumers for entry in entries)
    if needs_kube:
        vault_settings, keycloak_settings, _ = load_all_settings(
            VaultSettings, KeycloakSettings, KubeSettings
        )
    else:
        vault_settings, keycloak_settings = load_all_settings(VaultSettings, KeycloakSettings)
    warnings = plain_http_warnings(Vault=vault_settings.addr, Keycloak=config.url)
    threads = ctx.options.concurrency
    vault = open_vault(ctx.retry, vault_settings, connections=threads)
    from jobs.core.clients.keycloak import KeycloakClient
    from jobs.core.clients.kube import KubeClient, load_configuration
    from jobs.core.clients.kube_events import open_events

    kube = KubeClient(load_configuration(), ctx.retry, connections=threads) if needs_kube else None
    keycloak = KeycloakClient(config.url, config.auth_realm, keycloak_settings, ctx.retry)
    login: SecretLogin | None = None
    try:
        refused = vault_or_fail_all(ctx, entries, vault, warnings) or login_or_fail_all(
            ctx, entries, keycloak, warnings=warnings
        )
        if refused is not None:
            return refused
        target = KvTarget(vault, ctx.catalog.vault.kv_mount, ctx.dry_run)
        login = open_secret_login(
            ctx.options.verify_login and not ctx.dry_run, config.url, ctx.options.login_rate
        )
        verification = Verification(ctx.options.verify_consumers, ctx.options.consumer_timeout)
        events = open_events(kube, target.mount, enabled=ctx.options.events and not ctx.dry_run)
        patcher = Patcher(
            keycloak,
            target,
            kube,
            ctx.catalog.vault.field,
            forced,
            ctx.retry,
            login,
            verification,
            events,
            *indexes(ctx, keycloak, kube),
        )
        report = process_entries(ctx, entries, patcher.handle, warnings, concurrency=threads)
        more = (*keycloak.warnings, *(events.warnings if events else ()))
        return replace(report, warnings=(*report.warnings, *more))
    finally:
        keycloak.close()
        if login is not None:
            login.close()
        if kube is not None:
            kube.close()
