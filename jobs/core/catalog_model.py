"""The catalog's model: the typed, frozen entries and settings of docs/design.md#the-catalog, with the
per-field rules (from `jobs.core.catalog_text`) and each entry's origin rules (from
`jobs.core.catalog_origin`, which also work on raw YAML data, so the loader reports them even when the
same entry has other errors). The only catalog module that imports pydantic: it loads when a catalog
is validated, never on `--help` or a file the YAML reader refuses."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from jobs.core.catalog_origin import Origin, origin_problems
from jobs.core.catalog_text import (
    PRODUCTION,
    check_akv_name,
    check_akv_url,
    check_entry_name,
    check_k8s_name,
    check_keycloak_url,
    check_mount,
    check_prefix,
    parse_duration,
    path_segment,
    plain_text,
    to_str,
)

__all__ = [
    "AzureKeyVaultConfig",
    "Catalog",
    "Consumer",
    "Fixtures",
    "KeycloakConfig",
    "KeycloakSource",
    "Origin",
    "Rotation",
    "SecretEntry",
    "VaultConfig",
    "origin_problems",
]

Text = Annotated[str, AfterValidator(plain_text)]
Realm = Annotated[str, AfterValidator(plain_text), AfterValidator(path_segment)]
RunId = Annotated[
    str, BeforeValidator(to_str), Field(min_length=1, max_length=128), AfterValidator(plain_text)
]
Grace = Annotated[int, BeforeValidator(parse_duration), Field(strict=True)]


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
        return check_mount(value)


class AzureKeyVaultConfig(_Strict):
    url: str = Field(min_length=1)
    prefix: str = ""  # "" and absent both mean "no prefix"; never replaced by a default

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        return check_akv_url(value)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return check_prefix(value)


class KeycloakConfig(_Strict):
    url: str = Field(min_length=1)
    auth_realm: Realm = Field("master", alias="authRealm", min_length=1)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        return check_keycloak_url(value)


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
        return check_k8s_name(value)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


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
        return check_entry_name(value)

    @field_validator("azure_key_vault")
    @classmethod
    def _akv_name(cls, value: str | None) -> str | None:
        return check_akv_name(value)

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
