"""The catalog's model: the typed, frozen entries and settings of docs/design.md#the-catalog, with the
per-field rules (from `jobs.core.catalog_text`) and each entry's origin
rules. `origin_problems` also works on raw YAML data, so the loader reports those rules even when the
same entry has other errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from jobs.core import metadata as md
from jobs.core.catalog_text import (
    K8S_NAME,
    MOUNT_PATTERN,
    PRODUCTION,
    Grace,
    Realm,
    RunId,
    Text,
    check_url,
    is_valid_name,
)


class Origin(StrEnum):
    EXTERNAL = "external"
    SERVICE_GENERATED = "service-generated"
    HELM_GENERATED = "helm-generated"
    OPERATOR_RECONCILED = "operator-reconciled"

    @property
    def cluster_managed(self) -> bool:
        return self is not Origin.EXTERNAL

    @property
    def authority(self) -> str:
        return _AUTHORITY[self]


_AUTHORITY: Final = {
    Origin.EXTERNAL: md.AUTHORITY_AKV,
    Origin.SERVICE_GENERATED: md.AUTHORITY_KEYCLOAK,
    Origin.HELM_GENERATED: "helm",
    Origin.OPERATOR_RECONCILED: "operator",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False, str_strip_whitespace=False)


class Fixtures(_Strict):
    enabled: bool = False


class VaultConfig(_Strict):
    kv_mount: str = Field("secret", alias="kvMount", min_length=1)
    field: Text = Field("value", min_length=1, max_length=256)

    @field_validator("kv_mount")
    @classmethod
    def _mount(cls, value: str) -> str:
        if not MOUNT_PATTERN.fullmatch(value):
            raise ValueError("must be a Vault mount path such as 'secret' (no leading or trailing '/')")
        if any(segment in {".", ".."} for segment in value.split("/")):
            raise ValueError("must not contain '.' or '..' path segments")
        return value


class AzureKeyVaultConfig(_Strict):
    url: str = Field(min_length=1)
    prefix: str = ""  # "" and absent both mean "no prefix"; never replaced by a default

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL (the Key Vault SDK refuses plain HTTP)")
        check_url(value, ("https",))
        return value if value.endswith("/") else value + "/"

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not re.fullmatch(r"[0-9A-Za-z-]{1,126}", value):
            raise ValueError("may contain only letters, digits and '-'")
        return value


class KeycloakConfig(_Strict):
    url: str = Field(min_length=1)
    auth_realm: Realm = Field("master", alias="authRealm", min_length=1)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        return check_url(value, ("http", "https")).rstrip("/")


class Rotation(_Strict):
    """`keycloak.rotate`: regenerate once per new `runId`. With `grace` the old secret must stay valid
    (Keycloak's `secret-rotation` client policy) until every consumer holds the new one; a rotation
    that cannot keep it is refused unless `hardCut: true` (docs/design.md#the-catalog)."""

    run_id: RunId = Field(alias="runId")
    grace: Grace | None = None  # seconds, from a duration such as "15m"
    hard_cut: bool = Field(False, alias="hardCut")


class KeycloakSource(_Strict):
    realm: Realm = Field(min_length=1)
    client_id: Text = Field(alias="clientId", min_length=1)
    rotate: Rotation | None = None


class Consumer(_Strict):
    namespace: str
    name: str

    @field_validator("namespace", "name")
    @classmethod
    def _k8s_name(cls, value: str) -> str:
        if not K8S_NAME.fullmatch(value):
            raise ValueError("must be a Kubernetes object name (lower-case DNS subdomain)")
        return value

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def origin_problems(item: Mapping[str, Any]) -> list[str]:
    """What an entry's origin forbids or requires. Works on raw YAML data, so these problems are
    reported even when the same entry has other errors."""
    problems: list[str] = []
    origin = item.get("origin")
    if origin not in {o.value for o in Origin}:
        return problems
    if origin == Origin.SERVICE_GENERATED.value and item.get("keycloak") is None:
        problems.append("a service-generated entry needs a `keycloak` source (realm, clientId)")
    if origin != Origin.SERVICE_GENERATED.value and item.get("keycloak") is not None:
        problems.append(f"`keycloak` is only valid on service-generated entries, not {origin}")
    if origin != Origin.EXTERNAL.value and item.get("azureKeyVault") is not None:
        problems.append(
            "`azureKeyVault` is only valid on external entries: a cluster-managed secret must never "
            "come from Azure Key Vault"
        )
    if origin != Origin.EXTERNAL.value and item.get("required"):
        problems.append("`required` applies to external entries (it means: must exist in Azure Key Vault)")
    consumers = item.get("consumers")
    if isinstance(consumers, list):
        seen: set[tuple[Any, Any]] = set()
        for consumer in consumers:
            if isinstance(consumer, dict):
                key = (consumer.get("namespace"), consumer.get("name"))
                if key in seen:
                    shown = all(isinstance(part, str) and K8S_NAME.fullmatch(part) for part in key)
                    problems.append(
                        f"consumer {key[0]}/{key[1]} is listed twice"
                        if shown
                        else "a consumer is listed twice"
                    )
                seen.add(key)
    return problems


class SecretEntry(_Strict):
    name: str
    origin: Origin
    azure_key_vault: str | None = Field(None, alias="azureKeyVault")
    required: bool = False
    keycloak: KeycloakSource | None = None
    # At least 4 characters so the log redaction filter can mask it (see jobs.core.logs).
    fixture: str | None = Field(None, min_length=4, max_length=25_000, repr=False)
    consumers: tuple[Consumer, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not is_valid_name(value):
            raise ValueError("must be 1-127 letters, digits or '-' (a valid Vault path segment and AKV name)")
        return value

    @field_validator("azure_key_vault")
    @classmethod
    def _akv_name(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_name(value):
            raise ValueError("must be 1-127 letters, digits or '-' (Azure Key Vault secret name rules)")
        return value

    @model_validator(mode="after")
    def _origin_rules(self) -> Self:
        problems = origin_problems(self.model_dump(by_alias=True, exclude_none=True, mode="json"))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def akv_name(self, prefix: str) -> str:
        """The Azure Key Vault secret name: explicit, else prefix + name ("" prefix = none)."""
        return self.azure_key_vault or f"{prefix}{self.name}"


class Catalog(_Strict):
    environment: Text = Field(min_length=1)
    fixtures: Fixtures = Fixtures()
    vault: VaultConfig = VaultConfig()
    azure_key_vault: AzureKeyVaultConfig | None = Field(None, alias="azureKeyVault")
    keycloak: KeycloakConfig | None = None
    secrets: tuple[SecretEntry, ...]

    _path: str = PrivateAttr(default="<catalog>")
    _lines: tuple[int, ...] = PrivateAttr(default=())
    _fixtures_line: int = PrivateAttr(default=1)

    @property
    def path(self) -> str:
        return self._path

    @property
    def is_production(self) -> bool:
        return self.environment.strip().lower() == PRODUCTION

    @property
    def fixtures_active(self) -> bool:
        """Fixtures are written only when enabled and never in production
        (docs/design.md#rules-that-never-bend)."""
        return self.fixtures.enabled and not self.is_production

    @property
    def fixtures_line(self) -> int:
        """The line of `fixtures.enabled` in the catalog's file."""
        return self._fixtures_line

    def line_of(self, index: int) -> int:
        return self._lines[index] if index < len(self._lines) else 1

    def entry(self, name: str) -> SecretEntry:
        for entry in self.secrets:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def akv_name(self, entry: SecretEntry) -> str:
        prefix = self.azure_key_vault.prefix if self.azure_key_vault else ""
        return entry.akv_name(prefix)

    def vault_path(self, entry: SecretEntry) -> str:
        return f"{self.vault.kv_mount}/{entry.name}"
