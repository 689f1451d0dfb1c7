"""What the clients return: frozen data with no vendor imports.

These types sit below the clients so the pure decisions (`jobs.core.plan`, `jobs.bootstrap.decide`,
`jobs.patcher.decide`, `jobs.checks`) can read them without loading a client library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

# The ExternalSecret annotation whose change makes ESO refresh at once
# (docs/design.md#external-secrets-operator).
FORCE_SYNC: Final = "force-sync"
# The Keycloak client authenticator whose stored secret is what the client authenticates with.
CLIENT_SECRET_AUTH: Final = "client-secret"


@dataclass(frozen=True)
class KvRead:
    """What Vault holds at one key. An absent key is a normal result (`exists=False`, version 0)."""

    mount: str
    name: str
    exists: bool
    version: int  # current version; 0 when the key has no metadata
    data: Mapping[str, str] = field(default_factory=dict, repr=False)  # fields of the current version
    custom_metadata: Mapping[str, str] = field(default_factory=dict)
    deleted: bool = False  # the current version is soft-deleted or destroyed
    created_time: str | None = None  # when the current version was written (Vault's RFC 3339 text)

    @property
    def path(self) -> str:
        return f"{self.mount}/{self.name}"

    def value(self, field_name: str) -> str | None:
        return self.data.get(field_name)


@dataclass(frozen=True)
class KvMetadata:
    """A key's metadata (`GET <mount>/metadata/<key>`)."""

    created_time: str  # when the key itself was created: a delete-and-recreate changes it
    current_version: int
    metadata_version: int | None  # OpenBao >= 2.4 `current_metadata_version`; None where not supported
    custom_metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AkvSecretInfo:
    """One Key Vault list item: the current version's attributes, without its value or version id."""

    name: str  # as Key Vault spells it (names are case-insensitive in the service)
    enabled: bool
    created: int | None  # Unix seconds of the current version's creation
    not_before: int | None = None
    expires: int | None = None
    managed: bool = False  # backs a Key Vault certificate

    def unusable_reason(self, now: float) -> str | None:
        """Why this secret counts as missing, or None when it may be read."""
        if not self.enabled:
            return "disabled"
        if self.expires is not None and self.expires <= now:
            return "expired"
        if self.not_before is not None and self.not_before > now:
            return "not yet valid (nbf in the future)"
        if self.managed:
            return "backs a Key Vault certificate (managed)"
        return None


@dataclass(frozen=True)
class AkvListing:
    secrets: dict[str, AkvSecretInfo]  # key: lower-cased name
    server_time: int | None  # the vault's `Date` at the last list page, Unix seconds

    def get(self, name: str) -> AkvSecretInfo | None:
        return self.secrets.get(name.lower())


@dataclass(frozen=True)
class AkvValue:
    name: str
    version: str
    created: int | None
    value: str = field(repr=False)
    info: AkvSecretInfo | None = None  # the attributes of the version that was read
    server_time: int | None = None  # the vault's `Date` when it answered with this version, Unix seconds


@dataclass(frozen=True)
class KeycloakClientInfo:
    """The parts of a Keycloak ClientRepresentation that decide whether it has a usable secret."""

    realm: str
    id: str  # the UUID used in /clients/{id}/... paths
    client_id: str
    public: bool
    bearer_only: bool
    authenticator: str
    enabled: bool
    # The secret as the clients search returned it; None when Keycloak left it out (public and
    # bearer-only clients) or masked it (an identity without manage-clients on Keycloak 26.8+).
    listed_secret: str | None = field(default=None, repr=False, compare=False)
    # Found in a realm's listing at the run's start rather than looked up when the entry began: its
    # secret may have changed since, so it is read again before it is written (never on a no-op).
    from_listing: bool = field(default=False, compare=False)
    # Unix seconds when Keycloak stops accepting the current secret (`client.secret.expiration.time`,
    # set while a secret-rotation client policy applies); None: it does not expire.
    secret_expires: int | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return f"{self.realm}/{self.client_id}"


# Keycloak client attributes of the `secret-rotation` client policy (docs/design.md#keycloak).
ATTR_SECRET_EXPIRATION: Final = "client.secret.expiration.time"  # set only while the policy applies
ATTR_ROTATED: Final = "client.secret.rotated"  # the previous secret, still valid (a secret value)
ATTR_ROTATED_CREATED: Final = "client.secret.rotated.creation.time"
ATTR_ROTATED_EXPIRES: Final = "client.secret.rotated.expiration.time"


@dataclass(frozen=True)
class RotatedSecret:
    """A Keycloak client's rotated secret (the previous one, still accepted), without its value."""

    since: int | None  # Unix seconds: when it became the rotated secret (the regenerate)
    expires: int | None  # Unix seconds: when Keycloak stops accepting it

    @classmethod
    def of(cls, attributes: Mapping[str, str]) -> RotatedSecret | None:
        """From the client's attributes; None when the client has no rotated secret."""
        if not attributes.get(ATTR_ROTATED):
            return None
        since, expires = attributes.get(ATTR_ROTATED_CREATED), attributes.get(ATTR_ROTATED_EXPIRES)
        return cls(unix_seconds(since), unix_seconds(expires))

    def live(self, now: float) -> bool:
        return self.expires is None or now < self.expires


def unix_seconds(text: str | None) -> int | None:
    """A Unix-seconds client attribute; None when absent or not a number."""
    try:
        return int(text) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class DataRef:
    """One `spec.data[]` item: the target Secret key filled from `remoteRef.key` (and `.property`)."""

    secret_key: str
    key: str
    property: str | None = None


@dataclass(frozen=True)
class ExtractRef:
    """One `spec.dataFrom[].extract`: every field of `key` becomes a Secret key of the same name,
    unless `rewrite` renames them."""

    key: str
    rewritten: bool = False


@dataclass(frozen=True)
class EsoStatus:
    """What ESO reports in `status` (docs/design.md#external-secrets-operator): `refreshTime` (RFC 3339,
    whole seconds) and `syncedResourceVersion` ("<generation>-<hash of annotations and labels>") are
    set on every successful refresh; the `Ready` condition carries ESO's reason and message."""

    refresh_time: str | None = None
    synced_resource_version: str | None = None
    ready: str | None = None  # "True", "False", "Unknown"; None: no Ready condition
    ready_reason: str = ""
    ready_message: str = ""


@dataclass(frozen=True)
class ExternalSecretState:
    """What client-patcher needs to know about one consumer ExternalSecret."""

    namespace: str
    name: str
    api_version: str
    resource_version: str
    refresh_interval: str | None  # as written in spec (None: ESO's default, 1h)
    refresh_policy: str | None  # None: ESO's default, Periodic
    annotations: Mapping[str, str] = field(default_factory=dict)
    generation: int = 0
    target_name: str | None = None  # spec.target.name (None: ESO uses the ExternalSecret's name)
    templated: bool = False  # spec.target.template: the Secret holds rendered values, not Vault's
    data: tuple[DataRef, ...] = ()
    extracts: tuple[ExtractRef, ...] = ()
    other_sources: bool = False  # dataFrom find / sourceRef generators: keys not known in advance
    status: EsoStatus = field(default_factory=EsoStatus)

    @property
    def force_sync(self) -> str | None:
        return self.annotations.get(FORCE_SYNC)

    @property
    def secret_name(self) -> str:
        """The target Secret ESO writes."""
        return self.target_name or self.name


@dataclass(frozen=True)
class VaultMount:
    """A secrets engine mount as Vault describes it: `path` without slashes, `type` ("kv", "transit"),
    and for kv its `version` ("1" or "2")."""

    path: str
    type: str
    version: str = ""


@dataclass(frozen=True)
class LoginVerdict:
    """What a realm's token endpoint answered to a client_credentials login with one client secret:
    the status and Keycloak's `error` / `error_description`, never the body (docs/design.md#keycloak).
    `status` is None when no answer came (`error` then says why)."""

    status: int | None
    error: str = ""
    description: str = ""
