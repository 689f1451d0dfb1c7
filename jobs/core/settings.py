"""Connection settings from the environment, under the ecosystem's own variable names
(docs/design.md#settings-and-credentials).

Credentials are `SecretStr` and never come from the catalog. Missing or invalid variables become one
`ConfigError` that names every variable at fault, for every system the run needs
(`load_all_settings`), so one run finds them all — never a stack trace.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Self, TypeVar, overload
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.core.credentials import (
    CREDENTIAL_SUFFIXES,
    forget_held_credentials,
    held,
    is_credential_variable,
    protect_environment,
)
from jobs.core.errors import ConfigError

__all__ = [
    "CREDENTIAL_SUFFIXES",
    "AzureSettings",
    "KeycloakSettings",
    "KubeSettings",
    "SettingsError",
    "VaultSettings",
    "check_url",
    "forget_held_credentials",
    "is_credential_variable",
    "load_all_settings",
    "load_settings",
    "protect_environment",
]

DEFAULT_SA_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
_held: Final = held  # the credentials protect_environment moved out of os.environ


def _environ(alias: str) -> str | None:
    return os.environ.get(alias) or _held.get(alias)


class SettingsError(ConfigError):
    """Every settings problem found, each naming its variable; the message lists them all."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _shown(value: str) -> str:
    """A URL as it may appear in a message: not when it could carry a credential or garble a line."""
    if "@" in value or not value.isprintable() or len(value) > 200:
        return ""
    return f" (got '{value}')"


def check_url(value: str) -> str:
    """An http:// or https:// URL with a host; the message says what is missing."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise ValueError("is not a URL" + _shown(value)) from None
    if parts.scheme not in {"http", "https"} or not value.startswith(f"{parts.scheme}://"):
        raise ValueError("needs a scheme: write http://HOST:PORT or https://HOST:PORT" + _shown(value))
    if not host:
        raise ValueError("has no host: write http://HOST:PORT or https://HOST:PORT" + _shown(value))
    return value


def _is_set(value: Any) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)


class _EnvSettings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=True, extra="ignore", frozen=True, populate_by_name=False
    )

    @classmethod
    def rule_problems(cls, is_set: Callable[[str], bool]) -> list[str]:
        """Rules across variables, judged only on which variables are set, so they can be reported
        even when a single variable is also invalid (pydantic skips model validators then)."""
        return []

    @model_validator(mode="after")
    def _rules(self) -> Self:
        by_alias = {field.alias: name for name, field in type(self).model_fields.items()}
        problems = self.rule_problems(lambda alias: _is_set(getattr(self, by_alias[alias])))
        if problems:
            raise ValueError("; ".join(problems))
        return self


class VaultSettings(_EnvSettings):
    addr: str = Field(alias="VAULT_ADDR", min_length=1)
    cacert: Path | None = Field(None, alias="VAULT_CACERT")
    namespace: str | None = Field(None, alias="VAULT_NAMESPACE")
    token: SecretStr | None = Field(None, alias="VAULT_TOKEN")
    auth_role: str | None = Field(None, alias="VAULT_AUTH_ROLE")
    auth_mount: str = Field("kubernetes", alias="VAULT_AUTH_MOUNT", min_length=1)
    k8s_token_path: Path = Field(DEFAULT_SA_TOKEN, alias="VAULT_K8S_TOKEN_PATH")

    @field_validator("addr")
    @classmethod
    def _addr(cls, value: str) -> str:
        return check_url(value)

    @classmethod
    def rule_problems(cls, is_set: Callable[[str], bool]) -> list[str]:
        if not is_set("VAULT_TOKEN") and not is_set("VAULT_AUTH_ROLE"):
            return [
                "no Vault credential: set VAULT_TOKEN, or VAULT_AUTH_ROLE for Kubernetes auth "
                "(with VAULT_AUTH_MOUNT and VAULT_K8S_TOKEN_PATH if not the defaults)"
            ]
        return []

    @property
    def uses_token(self) -> bool:
        return bool(self.token and self.token.get_secret_value())


class KeycloakSettings(_EnvSettings):
    client_id: str | None = Field(None, alias="KEYCLOAK_CLIENT_ID")
    client_secret: SecretStr | None = Field(None, alias="KEYCLOAK_CLIENT_SECRET")
    admin_username: str | None = Field(None, alias="KEYCLOAK_ADMIN_USERNAME")
    admin_password: SecretStr | None = Field(None, alias="KEYCLOAK_ADMIN_PASSWORD")
    cacert: Path | None = Field(None, alias="KEYCLOAK_CACERT")
    # With both credentials set, a refused service account fails the run unless this allows the admin
    # password grant instead (docs/design.md#settings-and-credentials).
    allow_password_fallback: bool = Field(False, alias="KEYCLOAK_ALLOW_PASSWORD_FALLBACK")

    @classmethod
    def rule_problems(cls, is_set: Callable[[str], bool]) -> list[str]:
        client_id, client_secret = is_set("KEYCLOAK_CLIENT_ID"), is_set("KEYCLOAK_CLIENT_SECRET")
        username, password = is_set("KEYCLOAK_ADMIN_USERNAME"), is_set("KEYCLOAK_ADMIN_PASSWORD")
        if client_id != client_secret:
            return ["KEYCLOAK_CLIENT_ID and KEYCLOAK_CLIENT_SECRET must be set together"]
        if username != password:
            return ["KEYCLOAK_ADMIN_USERNAME and KEYCLOAK_ADMIN_PASSWORD must be set together"]
        if not (client_id or username):
            return [
                "no Keycloak credential: set KEYCLOAK_CLIENT_ID + KEYCLOAK_CLIENT_SECRET (service account) "
                "or KEYCLOAK_ADMIN_USERNAME + KEYCLOAK_ADMIN_PASSWORD (admin-cli password grant)"
            ]
        return []


class AzureSettings(_EnvSettings):
    """What the Azure Workload Identity webhook injects, plus two explicit knobs for emulators."""

    client_id: str = Field(alias="AZURE_CLIENT_ID", min_length=1)
    tenant_id: str = Field(alias="AZURE_TENANT_ID", min_length=1)
    federated_token_file: Path = Field(alias="AZURE_FEDERATED_TOKEN_FILE")
    authority_host: str | None = Field(None, alias="AZURE_AUTHORITY_HOST")
    # Pin the Key Vault REST api-version (e.g. "7.6" for lowkey-vault); unset = the SDK's default.
    keyvault_api_version: str | None = Field(None, alias="AZURE_KEYVAULT_API_VERSION")
    # Only for emulators on loopback addresses, whose host can never end in ".vault.azure.net".
    verify_challenge_resource: bool = Field(True, alias="AZURE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE")


class KubeSettings(_EnvSettings):
    """KUBECONFIG, used outside a pod: every file it lists must exist, and a missing one is named (the
    Kubernetes client would silently skip it and then report "no configuration found")."""

    kubeconfig_list: str = Field("", alias="KUBECONFIG")

    @field_validator("kubeconfig_list")
    @classmethod
    def _files_exist(cls, value: str) -> str:
        problems = []
        for path in _split_paths(value):
            if not path.exists():
                problems.append(f"no such file: {path}")
            elif not path.is_file():
                problems.append(f"not a regular file: {path}")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @property
    def kubeconfig(self) -> tuple[Path, ...]:
        return _split_paths(self.kubeconfig_list)


def _split_paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(part).expanduser() for part in value.split(os.pathsep) if part)


S = TypeVar("S", bound=BaseSettings)
A = TypeVar("A", bound=BaseSettings)
B = TypeVar("B", bound=BaseSettings)
C = TypeVar("C", bound=BaseSettings)


def _problems(cls: type[BaseSettings], exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        if error["loc"]:
            name = ".".join(str(part) for part in error["loc"])
            problems.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    if issubclass(cls, _EnvSettings):
        problems.extend(cls.rule_problems(lambda alias: bool(_environ(alias))))
    elif not problems:  # pragma: no cover - every settings class of this package is an _EnvSettings
        problems.append(f"{cls.__name__}: invalid")
    return problems


@overload
def load_all_settings(a: type[A], /) -> tuple[A]: ...
@overload
def load_all_settings(a: type[A], b: type[B], /) -> tuple[A, B]: ...
@overload
def load_all_settings(a: type[A], b: type[B], c: type[C], /) -> tuple[A, B, C]: ...
def load_all_settings(*classes: type[BaseSettings]) -> tuple[BaseSettings, ...]:
    """Read every settings class from the environment; one SettingsError listing every problem of
    every class when any is missing or invalid."""
    loaded: list[BaseSettings] = []
    problems: list[str] = []
    for cls in classes:
        aliases = {field.alias for field in cls.model_fields.values() if field.alias}
        held: dict[str, Any] = {a: _held[a] for a in aliases if a in _held and a not in os.environ}
        try:
            loaded.append(cls(**held))
        except ValidationError as exc:
            problems.extend(_problems(cls, exc))
    if problems:
        raise SettingsError(problems) from None
    return tuple(loaded)


def load_settings(cls: type[S]) -> S:
    """Read `cls` from the environment; every problem of it in one readable ConfigError."""
    (settings,) = load_all_settings(cls)
    return settings
