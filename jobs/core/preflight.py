"""Pre-flight: before the first entry, prove each system the run needs can be used at all, once.

Vault: reachable and the credential accepted (a Kubernetes-auth login; `lookup-self` when the mount
probe is refused, since Vault answers 403 both for a dead token and for a missing mount), and
`vault.kvMount` really a KV version 2 mount (docs/design.md#vault-kv-v2). A mount that is missing,
KV version 1 or another engine is a bad invocation (exit 2, nothing written): KV v1 would take the
writes at `<mount>/data/<name>`, where no consumer looks. An unreachable or sealed Vault, or a refused
credential, fails every entry with the one shared reason (exit 1). Keycloak's token and Key Vault's
first listing page are those systems' pre-flight, done by the jobs themselves.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jobs.core.catalog import SecretEntry
from jobs.core.errors import ClientError, ConfigError
from jobs.core.model import RunReport
from jobs.core.observed import VaultMount
from jobs.core.runner import RunContext, fail_all

if TYPE_CHECKING:  # the vendor SDK loads only when a client is built (instant --help)
    from jobs.core.clients.vault import VaultClient


def mount_problem(mount: str, found: VaultMount | None, target: str) -> str | None:
    """Why `mount` cannot hold the catalog's secrets, or None when it is a KV v2 mount of that path."""
    where = f"vault.kvMount {mount!r} at {target}"
    if found is None:
        return (
            f"{where}: no such mount, or this credential may use nothing in it (Vault answers 403 for "
            "both); check the mount name and the policy"
        )
    if found.path != mount.strip("/"):
        return f"{where}: not a mount itself but a path inside the mount {found.path!r}"
    if found.type == "kv" and found.version == "1":
        return f"{where}: is a KV version 1 mount; the jobs need KV version 2 (docs/design.md#vault-kv-v2)"
    if found.type != "kv":
        return f"{where}: is a {found.type or 'unknown'} secrets engine, not KV version 2"
    return None


def check_vault(vault: VaultClient, mount: str) -> None:
    """Raise the ClientError that fails the run (unreachable, sealed, refused credential), or the
    ConfigError that makes it a bad invocation (the mount is not KV v2)."""
    found = vault.mount(mount)  # a 200 here also proves the credential (after a Kubernetes-auth login)
    if found is None:
        vault.check_token()  # 403 on the mount: a dead token, or really no such mount?
    problem = mount_problem(mount, found, vault.target)
    if problem is not None:
        raise ConfigError(problem)


def vault_or_fail_all(
    ctx: RunContext[Any], entries: Sequence[SecretEntry], vault: VaultClient, warnings: Iterable[str] = ()
) -> RunReport | None:
    """None when Vault is usable; else the report in which every entry failed with the one reason.
    A mount that is not KV v2 raises ConfigError (exit 2)."""
    try:
        check_vault(vault, ctx.catalog.vault.kv_mount)
    except ClientError as exc:
        return fail_all(ctx, entries, exc, warnings)
    return None


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_http_warnings(**urls: str | None) -> tuple[str, ...]:
    """One warning per system reached over plain http:// on a host that is not loopback: tokens and
    secret values would cross the network unencrypted."""
    found = []
    for system, url in urls.items():
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme == "http" and not _loopback(parts.hostname or ""):
            found.append(
                f"{system} at {parts.scheme}://{parts.netloc} is plain http:// on a non-loopback host: "
                "credentials and secret values cross the network unencrypted; use https://"
            )
    return tuple(found)
