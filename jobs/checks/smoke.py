"""`secret-origin smoke`: live check that cluster-managed secrets are real (docs/design.md#checks).

Every cluster-managed entry's Vault key must exist and must not hold a fixture: not marked as one in
custom_metadata, not equal to any fixture the catalog declares, not matching a placeholder pattern.
With `--consumers`, each consumer ExternalSecret's target Secret is compared with Vault by SHA-256
digest (in memory only): a consumer holding a placeholder is reported apart from one ESO has not
refreshed yet. Exit 1 lists the offenders.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from jobs.checks import rules
from jobs.checks.manifests import Location, parse_external_secret, resolve_key
from jobs.core import metadata as md
from jobs.core.catalog import Catalog, Consumer, SecretEntry
from jobs.core.model import Action, EntryResult
from jobs.core.observed import KvRead


@dataclass(frozen=True)
class SmokeOptions:
    consumers: bool = False  # also compare each consumer's synced Secret with Vault
    placeholder_patterns: tuple[str, ...] = ()


def digest(value: str | bytes) -> bytes:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).digest()


@dataclass(frozen=True)
class Known:
    """What counts as a placeholder: the catalog's fixtures and the placeholder patterns."""

    fixtures: tuple[rules.KnownFixture, ...]
    patterns: tuple[rules.Placeholder, ...]

    @classmethod
    def of(cls, catalog: Catalog, placeholder_patterns: Sequence[str]) -> Known:
        return cls(rules.known_fixtures([catalog]), rules.placeholders(placeholder_patterns))

    def why_placeholder(self, value: str) -> str | None:
        fixture = next((f for f in self.fixtures if f.value == value), None)
        if fixture is not None:
            return f"equals the fixture of entry `{fixture.entry}`"
        pattern = rules.first_placeholder(value, self.patterns)
        return f"matches placeholder pattern {pattern.label}" if pattern is not None else None


def writer(current: KvRead) -> str:
    meta = current.custom_metadata
    if md.is_ours(meta):
        return f"written by secret-origin, authority {meta.get(md.AUTHORITY, '?')}"
    other = meta.get(md.MANAGED_BY)
    return f"managed-by {other}" if other else "unknown writer (no managed-by)"


def decide_vault(entry: SecretEntry, current: KvRead, field_name: str, known: Known) -> str | None:
    """The offence of one cluster-managed key, or None when it holds a real value. Pure."""
    if not current.exists:
        return f"missing: {current.path} does not exist in Vault"
    if current.deleted:
        return f"missing: the current version v{current.version} of {current.path} is deleted"
    value = current.value(field_name)
    if value is None:
        return f"missing: {current.path} has no field {field_name!r}"
    if md.is_fixture_marked(current.custom_metadata):
        return f"placeholder: v{current.version} is marked as a fixture in custom_metadata"
    if entry.fixture is not None and value == entry.fixture:
        return f"placeholder: v{current.version} equals the entry's declared fixture"
    why = known.why_placeholder(value)
    return f"placeholder: v{current.version} {why}" if why else None


def consumer_keys(obj: Mapping[str, object], mount: str, entry_name: str, field_name: str) -> list[str]:
    """The target Secret keys through which this ExternalSecret carries the entry's field."""
    es = parse_external_secret(obj, Location("cluster", 1))
    wanted = f"{mount}/{entry_name}"
    keys = []
    for read in es.reads:
        if resolve_key(mount, read.key) != wanted:
            continue
        if read.secret_key is None:
            keys.append(field_name)  # dataFrom.extract: every field becomes a key of its own name
        elif read.property == field_name:
            keys.append(read.secret_key)
    return keys


def decide_consumer(
    consumer: Consumer,
    *,
    target: str,
    keys: Sequence[str],
    synced: Mapping[str, bytes] | None,
    vault_digest: bytes,
    vault_version: int,
    known: Known,
) -> str | None:
    """One consumer's state against Vault (digests only). Pure."""
    if not keys:
        return f"consumer {consumer} does not read this entry's Vault key"
    if synced is None:
        return f"ESO has not refreshed: consumer {consumer}'s Secret {target} does not exist yet"
    for key in keys:
        value = synced.get(key)
        if value is None:
            return f"ESO has not refreshed: consumer {consumer}'s Secret {target} has no key {key!r}"
        if hmac.compare_digest(digest(value), vault_digest):
            continue
        why = known.why_placeholder(value.decode("utf-8", errors="replace"))
        if why:
            return f"placeholder: consumer {consumer}'s Secret {target} key {key!r} {why}"
        return (
            f"ESO has not refreshed: consumer {consumer}'s Secret {target} key {key!r} differs from "
            f"Vault v{vault_version}"
        )
    return None


def selected(entries: Iterable[SecretEntry], consumers: bool) -> tuple[SecretEntry, ...]:
    """Cluster-managed entries, plus (with --consumers) external entries that have consumers."""
    return tuple(e for e in entries if e.origin.cluster_managed or (consumers and e.consumers))


def vault_outcome(
    entry: SecretEntry, current: KvRead, consumers_checked: bool, problems: Sequence[str]
) -> EntryResult:
    """The entry's result from its Vault key and the consumer problems found. Pure."""
    if problems:
        return EntryResult(entry.name, Action.FAILED, "; ".join(problems), current.version or None)
    consumers = (
        f", {len(entry.consumers)} consumer(s) in sync" if consumers_checked and entry.consumers else ""
    )
    origin = "" if entry.origin.cluster_managed else "external: "
    return EntryResult(
        entry.name,
        Action.UNCHANGED,
        f"ok: {origin}v{current.version}, {writer(current)}{consumers}",
        current.version,
    )
