"""The catalog: the classification matrix as code (docs/design.md#the-catalog).

`load_catalog(path)` parses and validates one YAML file and raises `CatalogError` carrying every
problem at once, each naming the file, the entry (index and name) and the field. Unknown keys are
errors, so a typo can never be silently ignored. Nothing here performs network I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, Self

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from jobs.core import metadata as md

# Azure Key Vault secret names: 1-127 letters, digits and dashes. Every catalog name must be a valid
# AKV name, which also makes it a valid single Vault path segment.
NAME_PATTERN: Final = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_MOUNT_PATTERN: Final = re.compile(r"^[0-9A-Za-z_.-]+(/[0-9A-Za-z_.-]+)*$")
_K8S_NAME: Final = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
PRODUCTION: Final = "production"


_QUOTED: Final = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's complaint without the text it quotes: for `*x` or `!x` it names the token it found,
    which may be a secret from a values file or a fixture."""
    problem = getattr(exc, "problem", None) or "parse error"
    return _QUOTED.sub("'...'", str(problem))


def yaml_error_line(exc: yaml.YAMLError) -> int:
    """The 1-based line the parser stopped at (1 when it does not say)."""
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else 1


def is_valid_name(value: str) -> bool:
    return bool(NAME_PATTERN.fullmatch(value))


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


def _to_str(value: Any) -> Any:
    # YAML turns `runId: 7` into an int; a runId is an opaque label, so accept it as text.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


RunId = Annotated[str, BeforeValidator(_to_str), Field(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False, str_strip_whitespace=False)


class Fixtures(_Strict):
    enabled: bool = False


class VaultConfig(_Strict):
    kv_mount: str = Field("secret", alias="kvMount", min_length=1)
    field: str = Field("value", min_length=1, max_length=256)

    @field_validator("kv_mount")
    @classmethod
    def _mount(cls, value: str) -> str:
        if not _MOUNT_PATTERN.fullmatch(value):
            raise ValueError("must be a Vault mount path such as 'secret' (no leading or trailing '/')")
        return value


class AzureKeyVaultConfig(_Strict):
    url: str = Field(min_length=1)
    prefix: str = ""  # "" and absent both mean "no prefix"; never replaced by a default

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL (the Key Vault SDK refuses plain HTTP)")
        return value if value.endswith("/") else value + "/"

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not re.fullmatch(r"[0-9A-Za-z-]{1,126}", value):
            raise ValueError("may contain only letters, digits and '-'")
        return value


class KeycloakConfig(_Strict):
    url: str = Field(min_length=1)
    auth_realm: str = Field("master", alias="authRealm", min_length=1)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


class Rotation(_Strict):
    run_id: RunId = Field(alias="runId")


class KeycloakSource(_Strict):
    realm: str = Field(min_length=1)
    client_id: str = Field(alias="clientId", min_length=1)
    rotate: Rotation | None = None


class Consumer(_Strict):
    namespace: str
    name: str

    @field_validator("namespace", "name")
    @classmethod
    def _k8s_name(cls, value: str) -> str:
        if not _K8S_NAME.fullmatch(value):
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
                    problems.append(f"consumer {key[0]}/{key[1]} is listed twice")
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
    environment: str = Field(min_length=1)
    fixtures: Fixtures = Fixtures()
    vault: VaultConfig = VaultConfig()
    azure_key_vault: AzureKeyVaultConfig | None = Field(None, alias="azureKeyVault")
    keycloak: KeycloakConfig | None = None
    secrets: tuple[SecretEntry, ...]

    _path: str = PrivateAttr(default="<catalog>")
    _lines: tuple[int, ...] = PrivateAttr(default=())

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


@dataclass(frozen=True)
class Problem:
    location: str  # e.g. "secrets[2] (ghcr-token).keycloak.clientId"
    message: str
    line: int = 1

    def render(self, path: str) -> str:
        return f"{path}:{self.line}: {self.location}: {self.message}"


class CatalogError(Exception):
    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join("  " + p.render(path) for p in problems)
        super().__init__(f"invalid catalog {path} ({len(problems)} problem(s)):\n{lines}")


def _entry_label(raw_secrets: Any, index: int) -> str:
    name = None
    if isinstance(raw_secrets, list) and index < len(raw_secrets) and isinstance(raw_secrets[index], dict):
        name = raw_secrets[index].get("name")
    return f"secrets[{index}] ({name})" if isinstance(name, str) else f"secrets[{index}]"


_CAMEL: Final = {"kv_mount": "kvMount", "azure_key_vault": "azureKeyVault", "auth_realm": "authRealm"}


def _location(loc: tuple[int | str, ...], raw: Mapping[str, Any]) -> tuple[str, int | None]:
    parts: list[str] = []
    index: int | None = None
    items = list(loc)
    if len(items) >= 2 and items[0] == "secrets" and isinstance(items[1], int):
        index = items[1]
        parts.append(_entry_label(raw.get("secrets"), index))
        items = items[2:]
    for item in items:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(_CAMEL.get(str(item), str(item)))
    return ".".join(parts) or "(top level)", index


def _cross_entry_problems(raw: Mapping[str, Any], lines: tuple[int, ...]) -> list[Problem]:
    """Rules spanning entries; computed from the raw data so they are reported even when an
    individual entry is also invalid."""
    problems: list[Problem] = []
    secrets = raw.get("secrets")
    if not isinstance(secrets, list) or not secrets:
        if "secrets" in raw:
            problems.append(Problem("secrets", "must be a non-empty list of entries"))
        return problems
    first_seen: dict[str, int] = {}
    for index, item in enumerate(secrets):
        if not isinstance(item, dict):
            continue
        line = lines[index] if index < len(lines) else 1
        name = item.get("name")
        if isinstance(name, str):
            if name in first_seen:
                problems.append(
                    Problem(
                        _entry_label(secrets, index) + ".name",
                        f"duplicate name (also secrets[{first_seen[name]}]): two entries would own one "
                        "Vault path",
                        line,
                    )
                )
            else:
                first_seen[name] = index
        entry_rules = origin_problems(item)
        if entry_rules:
            problems.append(Problem(_entry_label(secrets, index), "; ".join(entry_rules), line))
        origin = item.get("origin")
        if origin == Origin.SERVICE_GENERATED.value and not isinstance(raw.get("keycloak"), dict):
            problems.append(
                Problem(
                    _entry_label(secrets, index), "service-generated entry but no top-level `keycloak`", line
                )
            )
        if origin == Origin.EXTERNAL.value and not isinstance(raw.get("azureKeyVault"), dict):
            problems.append(
                Problem(_entry_label(secrets, index), "external entry but no top-level `azureKeyVault`", line)
            )
    return problems


def _entry_lines(text: str) -> tuple[int, ...]:
    """1-based line of each item of the top-level `secrets` list, for linter-style messages."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return ()
    if not isinstance(node, yaml.MappingNode):
        return ()
    for key, value in node.value:
        if (
            isinstance(key, yaml.ScalarNode)
            and key.value == "secrets"
            and isinstance(value, yaml.SequenceNode)
        ):
            return tuple(item.start_mark.line + 1 for item in value.value)
    return ()


def parse_catalog(text: str, path: str = "<catalog>") -> Catalog:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = Problem("(yaml)", f"not valid YAML: {yaml_problem(exc)}", yaml_error_line(exc))
        raise CatalogError(path, [problem]) from None
    if not isinstance(raw, dict):
        raise CatalogError(path, [Problem("(top level)", "must be a mapping with environment, secrets, ...")])
    lines = _entry_lines(text)
    problems: list[Problem] = []
    catalog: Catalog | None = None
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            location, index = _location(tuple(error["loc"]), raw)
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key (typo?)"
            line = lines[index] if index is not None and index < len(lines) else 1
            problems.append(Problem(location, message, line))
    problems.extend(_cross_entry_problems(raw, lines))
    if problems or catalog is None:
        unique = sorted(set(problems), key=lambda p: (p.line, p.location, p.message))
        raise CatalogError(path, unique)
    catalog._path = path
    catalog._lines = lines
    return catalog


def load_catalog(path: str | Path) -> Catalog:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(str(path), [Problem("(file)", f"cannot read: {exc.strerror}")]) from None
    return parse_catalog(text, str(path))
