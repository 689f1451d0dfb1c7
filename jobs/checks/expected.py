"""The expected state of a Vault key, per origin: one definition that `secret-origin audit` reports as a
status and severity and `secret-origin smoke` as ok / fail / skip (docs/design.md#checks).

`observe` says who wrote what Vault holds now (from custom_metadata and the value, never shown);
`decide` judges that against the entry's origin. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from jobs.checks import rules
from jobs.core import metadata as md
from jobs.core.catalog import Catalog, Origin, SecretEntry
from jobs.core.observed import KvRead
from jobs.core.plan import holds_fixture


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


class Status(StrEnum):
    COMPLIANT = "COMPLIANT"
    NON_COMPLIANT = "NON-COMPLIANT"
    CONDITIONAL = "CONDITIONAL"
    UNKNOWN = "UNKNOWN"  # Vault could not be read: never reported as compliant


class Observed(StrEnum):
    ABSENT = "absent"
    FIXTURE = "fixture"
    KEYCLOAK = "keycloak"
    AKV = "azure-key-vault"
    MIRROR = "pushsecret-mirror"
    UNKNOWN_WRITER = "unknown-writer"
    UNREADABLE = "unreadable"


def observe(current: KvRead, field_name: str, entry: SecretEntry, known: Known) -> tuple[Observed, str]:
    """What Vault says about who wrote this key: (kind, human-readable current authority). Pure."""
    if not current.exists or current.deleted or current.value(field_name) is None:
        return Observed.ABSENT, "absent from Vault"
    meta = current.custom_metadata
    value = current.value(field_name) or ""
    if holds_fixture(current, field_name, entry.fixture) or known.why_placeholder(value):
        by = "vault-bootstrap" if md.is_ours(meta) else "unknown writer"
        return Observed.FIXTURE, f"Vault fixture ({by})"
    if md.is_ours(meta):
        authority = meta.get(md.AUTHORITY)
        if authority == md.AUTHORITY_KEYCLOAK:
            client = meta.get(md.KEYCLOAK_CLIENT_ID)
            return Observed.KEYCLOAK, "Keycloak-generated" + (f" ({client})" if client else "")
        if authority == md.AUTHORITY_AKV:
            version = meta.get(md.AKV_VERSION)
            return Observed.AKV, "Azure KV" + (f" ({version[:8]})" if version else "")
        return Observed.UNKNOWN_WRITER, f"secret-origin with authority {authority or '?'}"
    other = meta.get(md.MANAGED_BY)
    if other == "external-secrets":
        return Observed.MIRROR, "K8s Secret (PushSecret mirror)"
    return Observed.UNKNOWN_WRITER, "unknown writer" + (f" (managed-by {other})" if other else "")


# (origin group, observed) -> (status, severity in dev, severity in production, note)
_Decision = tuple[Status, str, str, str]
_NC, _COND, _OK = Status.NON_COMPLIANT, Status.CONDITIONAL, Status.COMPLIANT
_UNREADABLE: Final[_Decision] = (Status.UNKNOWN, "HIGH", "HIGH", "Vault could not be read")
_EXTERNAL_ABSENT: Final = {
    True: (_NC, "HIGH", "HIGH", "required, but not in Vault"),
    False: (_COND, "LOW", "MEDIUM", "not provisioned in Azure KV yet"),
}
_EXTERNAL: Final[dict[Observed, _Decision]] = {
    Observed.AKV: (_OK, "-", "-", "Azure KV → vault-bootstrap → Vault"),
    Observed.FIXTURE: (_COND, "LOW", "HIGH", "dev fixture; the Azure KV value replaces it"),
    Observed.KEYCLOAK: (_NC, "HIGH", "HIGH", "written from Keycloak; Azure KV is the authority"),
    Observed.MIRROR: (_NC, "MEDIUM", "HIGH", "a PushSecret writes an external secret's path"),
    Observed.UNKNOWN_WRITER: (_COND, "MEDIUM", "MEDIUM", "not written by vault-bootstrap"),
}
_SERVICE_GENERATED: Final[dict[Observed, _Decision]] = {
    Observed.KEYCLOAK: (_OK, "-", "-", "Keycloak → client-patcher → Vault"),
    Observed.ABSENT: (_NC, "HIGH", "HIGH", "client-patcher has not written it; consumers cannot start"),
    Observed.FIXTURE: (_NC, "MEDIUM", "CRITICAL", "fixture instead of the Keycloak secret (anti-pattern 3)"),
    Observed.AKV: (_NC, "HIGH", "HIGH", "fetched from Azure KV (anti-pattern 1)"),
    Observed.MIRROR: (_NC, "MEDIUM", "HIGH", "a PushSecret writes a client-patcher path"),
    Observed.UNKNOWN_WRITER: (
        _NC,
        "MEDIUM",
        "HIGH",
        "not written by client-patcher; Keycloak is the authority",
    ),
}
_CLUSTER_MANAGED: Final[dict[Observed, _Decision]] = {
    Observed.ABSENT: (_OK, "-", "-", "not in Vault; the K8s Secret is the authority"),
    Observed.MIRROR: (_OK, "-", "-", "mirrored by a PushSecret (Replace)"),
    Observed.FIXTURE: (_COND, "LOW", "HIGH", "dev fixture; production uses the Helm-generated value"),
    Observed.AKV: (_NC, "HIGH", "HIGH", "fetched from Azure KV (anti-pattern 1)"),
    Observed.KEYCLOAK: (_NC, "HIGH", "HIGH", "written from Keycloak; the K8s Secret is the authority"),
    Observed.UNKNOWN_WRITER: (
        _COND,
        "MEDIUM",
        "MEDIUM",
        "unknown writer: Vault must not drive it (anti-pattern 2); mirror with a PushSecret",
    ),
}


def decide(origin: Origin, seen: Observed, required: bool) -> _Decision:
    """(status, severity in dev, severity in production, note) of what was seen, for this origin."""
    if seen is Observed.UNREADABLE:
        return _UNREADABLE
    if origin is Origin.EXTERNAL:
        return _EXTERNAL_ABSENT[required] if seen is Observed.ABSENT else _EXTERNAL[seen]
    if origin is Origin.SERVICE_GENERATED:
        return _SERVICE_GENERATED[seen]
    return _CLUSTER_MANAGED[seen]
