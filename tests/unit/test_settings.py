from __future__ import annotations

import argparse
import subprocess

import pytest

from jobs.core.errors import ConfigError
from jobs.core.logs import redact
from jobs.core.settings import (
    AzureSettings,
    KeycloakSettings,
    VaultSettings,
    load_settings,
    protect_environment,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("VAULT_", "KEYCLOAK_", "AZURE_")):
            monkeypatch.delenv(name)


def test_missing_vault_addr_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="VAULT_ADDR: Field required"):
        load_settings(VaultSettings)


def test_vault_needs_a_token_or_a_kubernetes_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:8200")
    with pytest.raises(ConfigError, match="set VAULT_TOKEN, or VAULT_AUTH_ROLE"):
        load_settings(VaultSettings)
    monkeypatch.setenv("VAULT_AUTH_ROLE", "client-patcher")
    settings = load_settings(VaultSettings)
    assert settings.auth_mount == "kubernetes"
    assert str(settings.k8s_token_path) == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert not settings.uses_token


def test_vault_token_is_secret_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:8200")
    monkeypatch.setenv("VAULT_TOKEN", "hvs.very-secret-token")
    settings = load_settings(VaultSettings)
    assert settings.uses_token
    assert "very-secret-token" not in repr(settings)


def test_keycloak_needs_one_complete_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="no Keycloak credential"):
        load_settings(KeycloakSettings)
    monkeypatch.setenv("KEYCLOAK_CLIENT_ID", "secret-origin")
    with pytest.raises(
        ConfigError, match="KEYCLOAK_CLIENT_ID and KEYCLOAK_CLIENT_SECRET must be set together"
    ):
        load_settings(KeycloakSettings)
    monkeypatch.setenv("KEYCLOAK_CLIENT_SECRET", "kc-secret-value")
    settings = load_settings(KeycloakSettings)
    assert settings.client_secret is not None
    assert "kc-secret-value" not in repr(settings)


def test_azure_settings_use_the_webhook_names(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(AzureSettings)
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        assert name in str(caught.value)
    monkeypatch.setenv("AZURE_CLIENT_ID", "c")
    monkeypatch.setenv("AZURE_TENANT_ID", "t")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", "/tmp/token")
    settings = load_settings(AzureSettings)
    assert settings.verify_challenge_resource is True
    assert settings.keyvault_api_version is None


def test_credentials_are_masked_and_withheld_from_child_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:8200")
    monkeypatch.setenv("VAULT_TOKEN", "hvs.protect-me-0001")
    monkeypatch.setenv("KEYCLOAK_CLIENT_SECRET", "kc-protect-me-0002")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "az-protect-me-0003")
    protect_environment()
    child = subprocess.run(["env"], capture_output=True, text=True, check=True).stdout
    assert "protect-me" not in child and "VAULT_TOKEN" not in child
    assert "VAULT_ADDR=http://127.0.0.1:8200" in child
    assert redact("a hvs.protect-me-0001 b az-protect-me-0003") == "a [REDACTED] b [REDACTED]"
    settings = load_settings(VaultSettings)  # the settings still read them
    assert settings.token is not None and settings.token.get_secret_value() == "hvs.protect-me-0001"


def test_a_pushgateway_url_with_a_password_is_withheld_from_child_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jobs.core.flags import METRICS_PUSH_ENV, add_metrics_arguments

    monkeypatch.setenv(METRICS_PUSH_ENV, "https://ops:push-protect-me-0004@pushgateway.example:9091")
    protect_environment()
    child = subprocess.run(["env"], capture_output=True, text=True, check=True).stdout
    assert "protect-me" not in child and METRICS_PUSH_ENV not in child
    parser = argparse.ArgumentParser()
    add_metrics_arguments(parser)  # the flag's default still comes from the variable
    assert parser.parse_args([]).metrics_push is not None
    assert "push-protect-me-0004" not in redact("https://ops:push-protect-me-0004@pushgateway.example:9091")


def test_a_pushgateway_url_without_credentials_stays_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jobs.core.flags import METRICS_PUSH_ENV

    monkeypatch.setenv(METRICS_PUSH_ENV, "http://pushgateway.monitoring:9091")
    protect_environment()
    child = subprocess.run(["env"], capture_output=True, text=True, check=True).stdout
    assert f"{METRICS_PUSH_ENV}=http://pushgateway.monitoring:9091" in child
