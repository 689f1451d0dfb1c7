"""The catalog: the classification matrix as code (docs/design.md#the-catalog).

`load_catalog(path)` parses and validates one YAML file and raises `CatalogError` carrying every
problem at once, each naming the file, the line of the offending key, the entry (index and name) and
the field. Unknown keys are errors, so a typo can never be silently ignored. The file is read by
`jobs.core.safe_yaml` (regular files, size, UTF-8, tags, nesting, aliases, duplicate keys); names and
free text refuse control characters, and nothing from the file that could be a secret or forge a
`file:line:` line is printed. Nothing here performs network I/O.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, Self
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
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
from jobs.core import safe_yaml
from jobs.core.safe_yaml import LineDict, LineList, YamlInputError

# Azure Key Vault secret names: 1-127 letters, digits and dashes. Every catalog name must be a valid
# AKV name, which also makes it a valid single Vault path segment.
NAME_PATTERN: Final = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_MOUNT_PATTERN: Final = re.compile(r"^[0-9A-Za-z_.-]+(/[0-9A-Za-z_.-]+)*$")
_K8S_NAME: Final = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
PRODUCTION: Final = "production"


# At most this many problems are printed; the rest are counted (a broken 75 KB file once printed 100 MB).
MAX_PRINTED_PROBLEMS: Final = safe_yaml.MAX_SHOWN_PROBLEMS


def yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's complaint without the text it quotes: for `*x` or `!x` it names the token it found,
    which may be a secret from a values file or a fixture."""
    return safe_yaml.yaml_problem(exc)


def yaml_error_line(exc: yaml.YAMLError) -> int:
    """The 1-based line the parser stopped at (1 when it does not say)."""
    return safe_yaml.yaml_error_line(exc)


# Unicode categories refused in names and free text: controls (newline, tab, ESC...), format characters
# (bidi overrides), line/paragraph separators, surrogates, private use and unassigned code points. Any
# of them could forge a `file:line:` line or rewrite a terminal when the text is printed.
_UNPRINTABLE: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(char) in _UNPRINTABLE for char in value)


def _plain_text(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("must not contain control characters (newline, tab, escape, bidi overrides, ...)")
    return value


def _path_segment(value: str) -> str:
    """A Keycloak realm: one URL path segment, so no '/' or '\\', and not '.' or '..'."""
    if value in {".", ".."} or "/" in value or "\\" in value:
        raise ValueError("must be one path segment: no '/' or '\\', and not '.' or '..'")
    return value


Text = Annotated[str, AfterValidator(_plain_text)]
Realm = Annotated[str, AfterValidator(_plain_text), AfterValidator(_path_segment)]


def _url(value: str, schemes: tuple[str, ...]) -> str:
    _plain_text(value)
    wanted = " or ".join(f"{scheme}://" for scheme in schemes)
    if not value.startswith(tuple(f"{scheme}://" for scheme in schemes)):
        raise ValueError(f"must be an {wanted} URL")
    try:
        host = urlsplit(value).hostname
    except ValueError:
        host = None
    if not host:
        raise ValueError(f"must be an {wanted} URL with a host")
    return value


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


RunId = Annotated[
    str, BeforeValidator(_to_str), Field(min_length=1, max_length=128), AfterValidator(_plain_text)
]


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
        if not _MOUNT_PATTERN.fullmatch(value):
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
        _url(value, ("https",))
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
        return _url(value, ("http", "https")).rstrip("/")


class Rotation(_Strict):
    run_id: RunId = Field(alias="runId")


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
                    shown = all(isinstance(part, str) and _K8S_NAME.fullmatch(part) for part in key)
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
    """Every problem of one catalog. The message prints at most MAX_PRINTED_PROBLEMS of them, then a
    count; `problems` keeps them all."""

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        lines = ["  " + p.render(path) for p in problems[:MAX_PRINTED_PROBLEMS]]
        if len(problems) > MAX_PRINTED_PROBLEMS:
            lines.append(f"  … and {len(problems) - MAX_PRINTED_PROBLEMS} more")
        super().__init__(f"invalid catalog {path} ({len(problems)} problem(s)):\n" + "\n".join(lines))


# Names shown in labels even when invalid: plain words, so a typo is easy to find. Anything else
# (control characters that could forge a `file:line:` line, or base64-like text that may be a secret
# pasted into the wrong field) is left out of the label.
_SHOWN_NAME: Final = re.compile(r"[0-9A-Za-z _.-]{1,127}")


def _shown_name(name: Any) -> str | None:
    """An entry's name as it may appear in a label: never one that could forge or garble a line."""
    return name if isinstance(name, str) and _SHOWN_NAME.fullmatch(name) else None


def _entry_label(raw_secrets: Any, index: int) -> str:
    name = None
    if isinstance(raw_secrets, list) and index < len(raw_secrets) and isinstance(raw_secrets[index], dict):
        name = _shown_name(raw_secrets[index].get("name"))
    return f"secrets[{index}] ({name})" if name is not None else f"secrets[{index}]"


_CAMEL: Final = {"kv_mount": "kvMount", "azure_key_vault": "azureKeyVault", "auth_realm": "authRealm"}


def _location(loc: tuple[int | str, ...], raw: Mapping[str, Any]) -> str:
    parts: list[str] = []
    items = list(loc)
    if len(items) >= 2 and items[0] == "secrets" and isinstance(items[1], int):
        parts.append(_entry_label(raw.get("secrets"), items[1]))
        items = items[2:]
    for item in items:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            key = _CAMEL.get(str(item), str(item))
            parts.append(key if safe_yaml.shown_key(key).startswith("`") else "(key not shown)")
    return ".".join(parts) or "(top level)"


def _walk(raw: Any, loc: tuple[int | str, ...]) -> tuple[int, Any]:
    """The line of the deepest key or item of `loc` present in the raw data, and the value there."""
    line = raw.line if isinstance(raw, LineDict) else 1
    node = raw
    for part in loc:
        if isinstance(node, LineDict) and isinstance(part, str):
            key = _CAMEL.get(part, part)
            if key not in node:
                break
            line, node = node.line_of(key), node[key]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line, node = node.line_of(part), node[part]
        else:
            break
    else:
        return line, node
    return line, None


def _unquoted_hint(value: Any) -> str | None:
    """When a text field got a date, a boolean or a number, YAML resolved an unquoted value."""
    if isinstance(value, datetime.date):
        kind = "a date"
    elif isinstance(value, bool):
        kind = "true/false"
    elif isinstance(value, float):
        kind = "a number"
    else:
        return None
    return f"must be text, but YAML reads this unquoted value as {kind}: put it in quotes"


def _entry_line(raw: Mapping[str, Any], index: int) -> int:
    return _walk(raw, ("secrets", index))[0]


def _cross_entry_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """Rules spanning entries; computed from the raw data so they are reported even when an
    individual entry is also invalid."""
    problems: list[Problem] = []
    secrets = raw.get("secrets")
    if not isinstance(secrets, list) or not secrets:
        if "secrets" in raw:
            problems.append(
                Problem("secrets", "must be a non-empty list of entries", _walk(raw, ("secrets",))[0])
            )
        return problems
    first_seen: dict[str, int] = {}
    for index, item in enumerate(secrets):
        if not isinstance(item, dict):
            continue
        line = _entry_line(raw, index)
        name = item.get("name")
        if isinstance(name, str):
            if name in first_seen:
                problems.append(
                    Problem(
                        _entry_label(secrets, index) + ".name",
                        f"duplicate name (also secrets[{first_seen[name]}]): two entries would own one "
                        "Vault path",
                        _walk(raw, ("secrets", index, "name"))[0],
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


def _entry_lines(raw: Mapping[str, Any]) -> tuple[int, ...]:
    """1-based line of each item of the top-level `secrets` list, for linter-style messages."""
    secrets = raw.get("secrets")
    return tuple(secrets.lines) if isinstance(secrets, LineList) else ()


def parse_catalog(text: str, path: str = "<catalog>") -> Catalog:
    try:
        raw = safe_yaml.load(text)
    except YamlInputError as exc:
        raise CatalogError(path, [Problem("(yaml)", p.message, p.line) for p in exc.problems]) from None
    if not isinstance(raw, dict):
        raise CatalogError(path, [Problem("(top level)", "must be a mapping with environment, secrets, ...")])
    problems: list[Problem] = []
    catalog: Catalog | None = None
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            loc = tuple(error["loc"])
            line, value = _walk(raw, loc)
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key (typo?)"
            elif error["type"] == "string_type":
                message = _unquoted_hint(value) or message
            problems.append(Problem(_location(loc, raw), message, line))
    problems.extend(_cross_entry_problems(raw))
    if problems or catalog is None:
        unique = sorted(set(problems), key=lambda p: (p.line, p.location, p.message))
        raise CatalogError(path, unique)
    catalog._path = path
    catalog._lines = _entry_lines(raw)
    return catalog


def load_catalog(path: str | Path) -> Catalog:
    """Read (a regular file of at most safe_yaml.MAX_BYTES, UTF-8) and parse one catalog file."""
    path = Path(path)
    try:
        text = safe_yaml.read_text(path)
    except YamlInputError as exc:
        raise CatalogError(str(path), [Problem("(file)", p.message, p.line) for p in exc.problems]) from None
    return parse_catalog(text, str(path))
