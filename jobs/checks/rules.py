"""The offline rules of `secret-origin check`: each has a stable id, a one-line explanation and the fix.

Every rule is a pure function from parsed inputs to findings. A finding names the file and line and
says what is wrong — never a secret value, fixture values included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from jobs.checks.manifests import ExternalSecret, Manifests, PushSecret, vault_path
from jobs.checks.yamlsrc import LineDict, Scalar
from jobs.core.catalog import Catalog, Origin, SecretEntry
from jobs.core.eso import is_zero_duration


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    summary: str  # one line: what is wrong and why it matters
    fix: str
    level: Level = Level.ERROR


@dataclass(frozen=True)
class Finding:
    rule: Rule
    file: str
    line: int
    message: str

    @property
    def level(self) -> Level:
        return self.rule.level


AKV_MAPS_CLUSTER_MANAGED = Rule(
    "SO101",
    "akv-maps-cluster-managed",
    "An Azure Key Vault mapping points at a cluster-managed secret; AKV can only hold a placeholder for "
    "it (anti-pattern 1).",
    "Remove the mapping: a cluster-managed secret comes from Keycloak, Helm or its operator, never AKV.",
)
PRODUCTION_FIXTURES_ENABLED = Rule(
    "SO201",
    "production-fixtures-enabled",
    "A production catalog enables fixtures; placeholders must never exist in production (anti-pattern 3).",
    "Set `fixtures.enabled: false` (or drop `fixtures`) in the production catalog.",
)
PRODUCTION_CATALOG_FIXTURE = Rule(
    "SO202",
    "production-catalog-fixture",
    "A production catalog entry declares a fixture value.",
    "Delete the entry's `fixture`; keep fixtures in the dev/CI catalog only.",
)
FIXTURE_IN_PRODUCTION_VALUES = Rule(
    "SO203",
    "fixture-in-production-values",
    "A production values file contains a known fixture value (a dev placeholder used as a real secret).",
    "Remove the value; let the secret's authority (AKV, Keycloak, Helm) provide it.",
)
PLACEHOLDER_IN_PRODUCTION_VALUES = Rule(
    "SO204",
    "placeholder-in-production-values",
    "A production values file contains a placeholder-looking value.",
    "Replace it with a reference to the real source, or remove it; never ship placeholders to production.",
)
ES_AND_PUSHSECRET_SAME_PATH = Rule(
    "SO301",
    "externalsecret-and-pushsecret-same-path",
    "A PushSecret writes a Vault path that an ExternalSecret reads: two directions on one path.",
    "Mirror to a path nobody reads, or stop reading the path; never combine both on one Vault path.",
)
PUSHSECRET_NOT_REPLACE = Rule(
    "SO302",
    "pushsecret-update-policy-not-replace",
    "A PushSecret mirroring a cluster secret uses an updatePolicy other than Replace, so Vault can "
    "diverge from the Kubernetes Secret that is the authority.",
    "Set `spec.updatePolicy: Replace` (the Kubernetes Secret stays the source of truth).",
)
ES_READS_MIRROR = Rule(
    "SO303",
    "externalsecret-reads-pushsecret-mirror",
    "An ExternalSecret reads a Vault path that only a PushSecret mirror writes; the replica becomes a "
    "source.",
    "Read the authority instead (the Kubernetes Secret itself, or the key its real writer fills).",
)
CONSUMER_MISSING = Rule(
    "SO304",
    "catalog-consumer-missing",
    "A catalog consumer ExternalSecret does not exist in the manifests, so client-patcher cannot refresh it.",
    "Fix the consumer's namespace/name in the catalog, or add the ExternalSecret to the chart.",
)
ES_READS_UNWRITTEN = Rule(
    "SO305",
    "externalsecret-reads-unwritten-key",
    "An ExternalSecret reads a catalog key that nothing writes to Vault (cluster-managed, no mirror).",
    "Consume the cluster's own Secret, or mirror it with a PushSecret (updatePolicy Replace) to another "
    "path.",
)
PUSHSECRET_OVERWRITES_JOB = Rule(
    "SO306",
    "pushsecret-writes-job-owned-path",
    "A PushSecret writes a Vault path that vault-bootstrap or client-patcher owns; two writers fight and "
    "ESO refuses keys it does not manage.",
    "Remove the PushSecret or point it at a path of its own.",
)
CONSUMER_NOT_READING = Rule(
    "SO307",
    "catalog-consumer-does-not-read-entry",
    "A catalog consumer ExternalSecret does not read its entry's Vault path, so force-sync refreshes the "
    "wrong thing.",
    "Point the ExternalSecret's remoteRef.key at the entry, or drop it from the entry's consumers.",
)
CONSUMER_IGNORES_FORCE_SYNC = Rule(
    "SO308",
    "catalog-consumer-ignores-force-sync",
    "A catalog consumer has refreshInterval 0 with the Periodic policy (or CreatedOnce), so ESO ignores "
    "client-patcher's force-sync annotation.",
    "Set `refreshPolicy: OnChange` (or a non-zero refreshInterval) on the ExternalSecret.",
    Level.WARNING,
)

RULES: Final[tuple[Rule, ...]] = (
    AKV_MAPS_CLUSTER_MANAGED,
    PRODUCTION_FIXTURES_ENABLED,
    PRODUCTION_CATALOG_FIXTURE,
    FIXTURE_IN_PRODUCTION_VALUES,
    PLACEHOLDER_IN_PRODUCTION_VALUES,
    ES_AND_PUSHSECRET_SAME_PATH,
    PUSHSECRET_NOT_REPLACE,
    ES_READS_MIRROR,
    CONSUMER_MISSING,
    ES_READS_UNWRITTEN,
    PUSHSECRET_OVERWRITES_JOB,
    CONSUMER_NOT_READING,
    CONSUMER_IGNORES_FORCE_SYNC,
)

JOB_WRITERS: Final = {Origin.EXTERNAL: "vault-bootstrap", Origin.SERVICE_GENERATED: "client-patcher"}
PRODUCTION_TAGS: Final = frozenset({"production", "prod"})


def is_production_tag(environment: str) -> bool:
    return environment.strip().lower() in PRODUCTION_TAGS


# -- placeholders -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Placeholder:
    """A pattern of values that are not real secrets. `label` is what findings print."""

    label: str
    pattern: re.Pattern[str]

    def matches(self, value: str) -> bool:
        return self.pattern.search(value) is not None


BUILTIN_PLACEHOLDERS: Final = (
    Placeholder("changeme", re.compile(r"change[-_ ]?me", re.IGNORECASE)),
    Placeholder("placeholder", re.compile(r"placeholder", re.IGNORECASE)),
    Placeholder("REPLACE_ME", re.compile(r"replace[-_ ]?me", re.IGNORECASE)),
    Placeholder("TODO/TBD/FIXME", re.compile(r"^\s*(todo|tbd|fixme)\s*$", re.IGNORECASE)),
    Placeholder("xxxx", re.compile(r"^\s*x{4,}\s*$", re.IGNORECASE)),
)


def placeholders(custom: Sequence[str], builtin: bool = True) -> tuple[Placeholder, ...]:
    """Built-in placeholder patterns plus the user's (`--placeholder-pattern`, labelled by position so
    the output never echoes a pattern that might itself be a secret)."""
    extra = tuple(
        Placeholder(f"--placeholder-pattern #{n}", re.compile(text)) for n, text in enumerate(custom, 1)
    )
    return (BUILTIN_PLACEHOLDERS if builtin else ()) + extra


def first_placeholder(value: str, patterns: Iterable[Placeholder]) -> Placeholder | None:
    return next((p for p in patterns if p.matches(value)), None)


@dataclass(frozen=True)
class KnownFixture:
    """A fixture declared by some catalog: the value stays in memory; findings name only its owner."""

    entry: str
    catalog: str
    value: str


def known_fixtures(catalogs: Iterable[Catalog]) -> tuple[KnownFixture, ...]:
    return tuple(
        KnownFixture(entry.name, catalog.path, entry.fixture)
        for catalog in catalogs
        for entry in catalog.secrets
        if entry.fixture
    )


# -- classification -------------------------------------------------------------------------------
def check_classification(catalog: Catalog) -> Iterator[Finding]:
    """SO101: an AKV mapping (an external entry's AKV name) that names a cluster-managed entry."""
    cluster = {
        name: entry
        for entry in catalog.secrets
        if entry.origin.cluster_managed
        for name in (entry.name, catalog.akv_name(entry))
    }
    for index, entry in enumerate(catalog.secrets):
        if entry.origin is not Origin.EXTERNAL:
            continue
        target = cluster.get(catalog.akv_name(entry))
        if target is not None:
            yield Finding(
                AKV_MAPS_CLUSTER_MANAGED,
                catalog.path,
                catalog.line_of(index),
                f"secrets[{index}] ({entry.name}) reads Azure Key Vault secret `{catalog.akv_name(entry)}`, "
                f"which is cluster-managed entry `{target.name}` ({target.origin.value})",
            )


# -- production hygiene ---------------------------------------------------------------------------
def check_production_catalog(catalog: Catalog, raw: LineDict | None) -> Iterator[Finding]:
    """SO201, SO202: a production catalog carries no fixtures at all."""
    if not catalog.is_production:
        return
    if catalog.fixtures.enabled:
        fixtures = raw.get("fixtures") if raw is not None else None
        line = fixtures.line_of("enabled") if isinstance(fixtures, LineDict) else 1
        yield Finding(
            PRODUCTION_FIXTURES_ENABLED,
            catalog.path,
            line,
            "`fixtures.enabled: true` in a catalog whose environment is production",
        )
    for index, entry in enumerate(catalog.secrets):
        if entry.fixture:
            yield Finding(
                PRODUCTION_CATALOG_FIXTURE,
                catalog.path,
                catalog.line_of(index),
                f"secrets[{index}] ({entry.name}) declares a fixture in a production catalog",
            )


def check_production_values(
    file: str,
    scalars: Iterable[Scalar],
    fixtures: Sequence[KnownFixture],
    patterns: Sequence[Placeholder],
) -> Iterator[Finding]:
    """SO203, SO204: one production values file. A value is reported by line and key, never shown."""
    for scalar in scalars:
        fixture = next((f for f in fixtures if f.value in scalar.value), None)
        if fixture is not None:
            yield Finding(
                FIXTURE_IN_PRODUCTION_VALUES,
                file,
                scalar.line,
                f"`{scalar.key_path}` contains the fixture of entry `{fixture.entry}` ({fixture.catalog})",
            )
            continue
        pattern = first_placeholder(scalar.value, patterns)
        if pattern is not None:
            yield Finding(
                PLACEHOLDER_IN_PRODUCTION_VALUES,
                file,
                scalar.line,
                f"`{scalar.key_path}` looks like a placeholder (matches {pattern.label})",
            )


# -- ESO anti-patterns ----------------------------------------------------------------------------
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


def _ignores_force_sync(es: ExternalSecret) -> bool:
    policy = (es.refresh_policy or "Periodic").strip()
    return policy == "CreatedOnce" or (policy == "Periodic" and is_zero_duration(es.refresh_interval))


def check_manifests(catalog: Catalog, manifests: Manifests) -> Iterator[Finding]:
    """SO301-SO308 over one catalog and the ESO objects of the rendered manifests."""
    mount = catalog.vault.kv_mount
    by_path: Mapping[str, SecretEntry] = {catalog.vault_path(e): e for e in catalog.secrets}
    reads = _reads(manifests, mount)
    writes = _writes(manifests, mount)
    writers_of: dict[str, list[_Write]] = {}
    for write in writes:
        writers_of.setdefault(write.path, []).append(write)
    readers_of: dict[str, list[_Read]] = {}
    for read in reads:
        readers_of.setdefault(read.path, []).append(read)

    for ps in manifests.push_secrets:
        if ps.update_policy != "Replace":
            yield Finding(
                PUSHSECRET_NOT_REPLACE,
                ps.where.file,
                ps.where.line,
                f"PushSecret {ps.ref} has updatePolicy `{ps.update_policy}`",
            )
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
    yield from _check_consumers(catalog, manifests, reads)


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
            if _ignores_force_sync(es):
                yield Finding(
                    CONSUMER_IGNORES_FORCE_SYNC,
                    es.where.file,
                    es.where.line,
                    f"ExternalSecret {consumer} (refreshInterval {es.refresh_interval or '-'}, refreshPolicy "
                    f"{es.refresh_policy or 'Periodic'}) will ignore force-sync for `{entry.name}`",
                )
