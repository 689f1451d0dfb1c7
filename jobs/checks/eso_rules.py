"""The ESO anti-pattern rules of `secret-origin check` (SO301-SO308): who reads and who writes each
Vault path in the rendered manifests, against the catalog. Pure, like every rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from jobs.checks.manifests import ExternalSecret, Manifests, PushSecret, vault_path
from jobs.checks.rules import (
    CONSUMER_IGNORES_FORCE_SYNC,
    CONSUMER_MISSING,
    CONSUMER_NOT_READING,
    ES_AND_PUSHSECRET_SAME_PATH,
    ES_READS_MIRROR,
    ES_READS_UNWRITTEN,
    JOB_WRITERS,
    PUSHSECRET_NOT_REPLACE,
    PUSHSECRET_OVERWRITES_JOB,
    Finding,
)
from jobs.core.catalog import Catalog, SecretEntry
from jobs.core.eso import why_force_sync_ignored

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Read:
    es: ExternalSecret
    path: str
    line: int


@dataclass(frozen=True)
class _Write:
    ps: PushSecret
    path: str
    line: int


def _reads(manifests: Manifests, mount: str) -> list[_Read]:
    reads = []
    for es in manifests.external_secrets:
        for read in es.reads:
            path = vault_path(manifests.stores, read.store, es.namespace, read.key, mount)
            if path is not None:
                reads.append(_Read(es, path, read.line))
    return reads


def _writes(manifests: Manifests, mount: str) -> list[_Write]:
    writes = []
    for ps in manifests.push_secrets:
        refs = ps.stores or ()
        for key, line in ps.remote_keys:
            for ref in refs:
                path = vault_path(manifests.stores, ref, ps.namespace, key, mount)
                if path is not None:
                    writes.append(_Write(ps, path, line))
    return writes


def _by_path(items: Iterable[_T], path: Callable[[_T], str]) -> dict[str, list[_T]]:
    grouped: dict[str, list[_T]] = {}
    for item in items:
        grouped.setdefault(path(item), []).append(item)
    return grouped


def check_manifests(catalog: Catalog, manifests: Manifests) -> Iterator[Finding]:
    """SO301-SO308 over one catalog and the ESO objects of the rendered manifests."""
    mount = catalog.vault.kv_mount
    by_path: Mapping[str, SecretEntry] = {catalog.vault_path(e): e for e in catalog.secrets}
    reads = _reads(manifests, mount)
    writes = _writes(manifests, mount)
    for ps in manifests.push_secrets:
        if ps.update_policy != "Replace":
            yield Finding(
                PUSHSECRET_NOT_REPLACE,
                ps.where.file,
                ps.where.line,
                f"PushSecret {ps.ref} has updatePolicy `{ps.update_policy}`",
            )
    yield from _check_writes(writes, _by_path(reads, lambda r: r.path), by_path)
    yield from _check_reads(catalog, reads, _by_path(writes, lambda w: w.path), by_path)
    yield from _check_consumers(catalog, manifests, reads)


def _check_writes(
    writes: Sequence[_Write], readers_of: Mapping[str, list[_Read]], by_path: Mapping[str, SecretEntry]
) -> Iterator[Finding]:
    for write in writes:
        readers = sorted({r.es.ref for r in readers_of.get(write.path, [])})
        if readers:
            yield Finding(
                ES_AND_PUSHSECRET_SAME_PATH,
                write.ps.where.file,
                write.line,
                f"PushSecret {write.ps.ref} writes `{write.path}`, which ExternalSecret "
                f"{', '.join(readers)} reads",
            )
        entry = by_path.get(write.path)
        if entry is not None and entry.origin in JOB_WRITERS:
            yield Finding(
                PUSHSECRET_OVERWRITES_JOB,
                write.ps.where.file,
                write.line,
                f"PushSecret {write.ps.ref} writes `{write.path}`, which {JOB_WRITERS[entry.origin]} "
                f"writes for {entry.origin.value} entry `{entry.name}`",
            )


def _check_reads(
    catalog: Catalog,
    reads: Sequence[_Read],
    writers_of: Mapping[str, list[_Write]],
    by_path: Mapping[str, SecretEntry],
) -> Iterator[Finding]:
    for read in reads:
        entry = by_path.get(read.path)
        job_writer = entry is not None and entry.origin in JOB_WRITERS
        mirrors = sorted({w.ps.ref for w in writers_of.get(read.path, [])})
        if mirrors and not job_writer:
            yield Finding(
                ES_READS_MIRROR,
                read.es.where.file,
                read.line,
                f"ExternalSecret {read.es.ref} reads `{read.path}`, which only PushSecret "
                f"{', '.join(mirrors)} writes",
            )
        elif (
            entry is not None
            and not job_writer
            and not mirrors
            and not (catalog.fixtures_active and entry.fixture)
        ):
            yield Finding(
                ES_READS_UNWRITTEN,
                read.es.where.file,
                read.line,
                f"ExternalSecret {read.es.ref} reads `{read.path}` ({entry.origin.value} entry "
                f"`{entry.name}`), which nothing writes to Vault",
            )


def _check_consumers(catalog: Catalog, manifests: Manifests, reads: Sequence[_Read]) -> Iterator[Finding]:
    for index, entry in enumerate(catalog.secrets):
        path = catalog.vault_path(entry)
        for consumer in entry.consumers:
            es = manifests.find_external_secret(consumer.namespace, consumer.name)
            if es is None:
                yield Finding(
                    CONSUMER_MISSING,
                    catalog.path,
                    catalog.line_of(index),
                    f"secrets[{index}] ({entry.name}): consumer ExternalSecret {consumer} is not in the "
                    "manifests",
                )
                continue
            if not any(r.es is es and r.path == path for r in reads):
                yield Finding(
                    CONSUMER_NOT_READING,
                    es.where.file,
                    es.where.line,
                    f"ExternalSecret {consumer} is a consumer of `{entry.name}` but does not read `{path}`",
                )
            if why_force_sync_ignored(es.refresh_policy, es.refresh_interval):
                yield Finding(
                    CONSUMER_IGNORES_FORCE_SYNC,
                    es.where.file,
                    es.where.line,
                    f"ExternalSecret {consumer} (refreshInterval {es.refresh_interval or '-'}, refreshPolicy "
                    f"{es.refresh_policy or 'Periodic'}) will ignore force-sync for `{entry.name}`",
                )
