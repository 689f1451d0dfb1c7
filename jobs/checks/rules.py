"""The offline rules of `secret-origin check`: each has a stable id, a one-line explanation and the fix.

Every rule is a pure function from parsed inputs to findings. A finding names the file and line and
says what is wrong — never a secret value, fixture values included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from jobs.checks.yamlsrc import Scalar
from jobs.core.catalog import Catalog, Origin


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
def check_production_catalog(catalog: Catalog) -> Iterator[Finding]:
    """SO201, SO202: a production catalog carries no fixtures at all."""
    if not catalog.is_production:
        return
    if catalog.fixtures.enabled:
        yield Finding(
            PRODUCTION_FIXTURES_ENABLED,
            catalog.path,
            catalog.fixtures_line,
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
