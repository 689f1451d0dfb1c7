"""Connection settings from the environment, under the ecosystem's own variable names
(docs/design.md#settings-and-credentials).

Credentials are `SecretStr` and never come from the catalog. A missing or invalid variable becomes a
`ConfigError` naming the variable — never a stack trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.core.errors import ConfigError

DEFAULT_SA_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class _EnvSettings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=True, extra="ignore", frozen=True, populate_by_name=False
    )


class VaultSettings(_EnvSettings):
    addr: str = Field(alias="VAULT_ADDR", min_length=1)
    cacert: Path | None = Field(None, alias="VAULT_CACERT")
    namespace: str | None = Field(None, alias="VAULT_NAMESPACE")
    token: SecretStr | None = Field(None, alias="VAULT_TOKEN")
    auth_role: str | None = Field(None, alias="VAULT_AUTH_ROLE")
    auth_mount: str = Field("kubernetes", alias="VAULT_AUTH_MOUNT", min_length=1)
    k8s_token_path: Path = Field(DEFAULT_SA_TOKEN, alias="VAULT_K8S_TOKEN_PATH")

    @model_validator(mode="after")
    def _auth_configured(self) -> Self:
        if not (self.token and self.token.get_secret_value()) and not self.auth_role:
            raise ValueError(
                "no Vault credential: set VAULT_TOKEN, or VAULT_AUTH_ROLE for Kubernetes auth "
                "(with VAULT_AUTH_MOUNT and VAULT_K8S_TOKEN_PATH if not the defaults)"
            )
        return self

    @property
    def uses_token(self) -> bool:
        return bool(self.token and self.token.get_secret_value())


class KeycloakSettings(_EnvSettings):
    client_id: str | None = Field(None, alias="KEYCLOAK_CLIENT_ID")
    client_secret: SecretStr | None = Field(None, alias="KEYCLOAK_CLIENT_SECRET")
    admin_username: str | None = Field(None, alias="KEYCLOAK_ADMIN_USERNAME")
    admin_password: SecretStr | None = Field(None, alias="KEYCLOAK_ADMIN_PASSWORD")
    cacert: Path | None = Field(None, alias="KEYCLOAK_CACERT")

    @model_validator(mode="after")
    def _credential_configured(self) -> Self:
        service_account = bool(self.client_id and self.client_secret)
        admin = bool(self.admin_username and self.admin_password)
        if bool(self.client_id) != bool(self.client_secret):
            raise ValueError("KEYCLOAK_CLIENT_ID and KEYCLOAK_CLIENT_SECRET must be set together")
        if bool(self.admin_username) != bool(self.admin_password):
            raise ValueError("KEYCLOAK_ADMIN_USERNAME and KEYCLOAK_ADMIN_PASSWORD must be set together")
        if not (service_account or admin):
            raise ValueError(
                "no Keycloak credential: set KEYCLOAK_CLIENT_ID + KEYCLOAK_CLIENT_SECRET (service account) "
                "or KEYCLOAK_ADMIN_USERNAME + KEYCLOAK_ADMIN_PASSWORD (admin-cli password grant)"
            )
        return self


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


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S]) -> S:
    """Read `cls` from the environment; turn validation errors into one readable ConfigError."""
    try:
        return cls()
    except ValidationError as exc:
        messages = []
        for error in exc.errors(include_url=False, include_input=False):
            name = ".".join(str(part) for part in error["loc"]) or cls.__name__
            text = error["msg"].removeprefix("Value error, ")
            messages.append(f"{text}" if not error["loc"] else f"{name}: {text}")
        raise ConfigError("; ".join(messages)) from None
