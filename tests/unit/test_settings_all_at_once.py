"""Settings problems are reported together, each naming the variable, so one run finds them all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobs.core.errors import ConfigError
from jobs.core.settings import (
    KeycloakSettings,
    KubeSettings,
    VaultSettings,
    load_all_settings,
    load_settings,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("VAULT_", "KEYCLOAK_", "AZURE_", "KUBECONFIG")):
            monkeypatch.delenv(name)


def test_missing_address_and_missing_credential_are_reported_together() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(VaultSettings)
    assert "VAULT_ADDR" in str(caught.value)
    assert "no Vault credential" in str(caught.value)


def test_every_system_s_problems_in_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYCLOAK_CLIENT_ID", "secret-origin")
    monkeypatch.setenv("VAULT_ADDR", "vault:8200")
    with pytest.raises(ConfigError) as caught:
        load_all_settings(KeycloakSettings, VaultSettings)
    text = str(caught.value)
    for expected in (
        "KEYCLOAK_CLIENT_ID and KEYCLOAK_CLIENT_SECRET must be set together",
        "VAULT_ADDR",
        "no Vault credential",
    ):
        assert expected in text
    assert len(caught.value.problems) == 3  # type: ignore[attr-defined]


def test_all_settings_load_when_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYCLOAK_CLIENT_ID", "secret-origin")
    monkeypatch.setenv("KEYCLOAK_CLIENT_SECRET", "Zq9-kc-secret")
    monkeypatch.setenv("VAULT_ADDR", "https://vault.example:8200")
    monkeypatch.setenv("VAULT_TOKEN", "hvs.Zq9-token")
    keycloak, vault = load_all_settings(KeycloakSettings, VaultSettings)
    assert keycloak.client_id == "secret-origin"
    assert vault.addr == "https://vault.example:8200"


@pytest.mark.parametrize("addr", ["vault:8200", "127.0.0.1:8200", "vault.example", "ftp://vault", "https://"])
def test_vault_addr_without_scheme_or_host_is_a_config_error(
    addr: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_ADDR", addr)
    monkeypatch.setenv("VAULT_TOKEN", "hvs.Zq9-token")
    with pytest.raises(ConfigError) as caught:
        load_settings(VaultSettings)
    assert "VAULT_ADDR" in str(caught.value)
    assert "http://" in str(caught.value) and "https://" in str(caught.value)


def test_vault_addr_with_credentials_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", "user:Zq9-pass@vault:8200")
    monkeypatch.setenv("VAULT_TOKEN", "hvs.Zq9-token")
    with pytest.raises(ConfigError) as caught:
        load_settings(VaultSettings)
    assert "Zq9-pass" not in str(caught.value)


def test_missing_kubeconfig_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    present = tmp_path / "present"
    present.write_text("apiVersion: v1\n")
    missing = tmp_path / "missing-kubeconfig"
    monkeypatch.setenv("KUBECONFIG", f"{present}{os.pathsep}{missing}")
    with pytest.raises(ConfigError) as caught:
        load_settings(KubeSettings)
    assert str(missing) in str(caught.value)
    assert str(present) not in str(caught.value)
    monkeypatch.setenv("KUBECONFIG", str(present))
    assert load_settings(KubeSettings).kubeconfig == (present,)


def test_unset_kubeconfig_is_fine() -> None:
    assert load_settings(KubeSettings).kubeconfig == ()
