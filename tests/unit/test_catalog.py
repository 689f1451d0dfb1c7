from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from jobs.core.catalog import CatalogError, Origin, is_valid_name, load_catalog, parse_catalog

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"

BASE = """\
environment: dev
azureKeyVault: {url: "https://kv.vault.azure.net/"}
keycloak: {url: "http://keycloak:8080"}
secrets:
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, "cat.yaml")
    return [p.render("cat.yaml") for p in caught.value.problems]


def test_spec_example_catalog_loads_with_every_field() -> None:
    catalog = load_catalog(EXAMPLE)
    assert catalog.environment == "dev"
    assert catalog.fixtures_active
    assert catalog.vault.kv_mount == "secret"
    assert catalog.vault.field == "value"
    ghcr = catalog.entry("ghcr-token")
    assert ghcr.required
    assert catalog.akv_name(ghcr) == "ghcr-pull-secret"
    assert catalog.akv_name(catalog.entry("anthropic-api-key")) == "anthropic-api-key"
    client = catalog.entry("platform-app-master-client-secret")
    assert client.keycloak is not None
    assert client.keycloak.client_id == "platform-app-master"
    assert [str(c) for c in client.consumers] == [
        "ameide-dev/platform-app-master-client-sync",
        "ameide-dev/www-ameide-platform-auth",
    ]
    assert catalog.entry("grafana-admin-password").origin is Origin.HELM_GENERATED
    assert catalog.vault_path(client) == "secret/platform-app-master-client-secret"


def test_empty_prefix_and_absent_prefix_both_mean_no_prefix() -> None:
    explicit = parse_catalog(
        BASE.replace('"}\nkeycloak', '", prefix: ""}\nkeycloak') + "  - {name: a-b, origin: external}\n"
    )
    absent = parse_catalog(BASE + "  - {name: a-b, origin: external}\n")
    prefixed = parse_catalog(
        BASE.replace('"}\nkeycloak', '", prefix: "dev-"}\nkeycloak') + "  - {name: a-b, origin: external}\n"
    )
    assert explicit.azure_key_vault is not None and explicit.azure_key_vault.prefix == ""
    assert explicit.akv_name(explicit.secrets[0]) == "a-b"
    assert absent.akv_name(absent.secrets[0]) == "a-b"
    assert prefixed.akv_name(prefixed.secrets[0]) == "dev-a-b"


def test_unknown_keys_are_errors_at_every_level() -> None:
    found = problems_of(
        "environment: dev\nfixture: {enabled: true}\nvault: {kvmount: x}\nazureKeyVault: {url: 'https://k/'}\n"
        "secrets:\n  - {name: a, origin: external, requird: true}\n"
    )
    assert "cat.yaml:2: fixture: unknown key (typo?)" in found
    assert "cat.yaml:3: vault.kvmount: unknown key (typo?)" in found
    assert "cat.yaml:6: secrets[0] (a).requird: unknown key (typo?)" in found


def test_all_problems_reported_at_once_with_file_entry_and_field() -> None:
    found = problems_of(
        BASE
        + "  - {name: ok-one, origin: external}\n"
        + "  - {name: bad_name, origin: external}\n"
        + "  - {name: kc, origin: service-generated}\n"
        + "  - {name: ext, origin: external, keycloak: {realm: r, clientId: c}}\n"
        + "  - {name: ok-one, origin: helm-generated, azureKeyVault: x}\n"
        + "  - {name: weird, origin: vault-generated}\n"
    )
    joined = "\n".join(found)
    assert "cat.yaml:6: secrets[1] (bad_name).name: must be 1-127 letters" in joined
    assert "cat.yaml:7: secrets[2] (kc): a service-generated entry needs a `keycloak` source" in joined
    assert "cat.yaml:8: secrets[3] (ext): `keycloak` is only valid on service-generated entries" in joined
    assert "cat.yaml:9: secrets[4] (ok-one).name: duplicate name (also secrets[0])" in joined
    assert "cat.yaml:9: secrets[4] (ok-one): `azureKeyVault` is only valid on external entries" in joined
    assert "cat.yaml:10: secrets[5] (weird).origin: Input should be" in joined
    assert len(found) == 6


def test_sources_need_their_top_level_connection() -> None:
    found = problems_of(
        "environment: dev\nsecrets:\n"
        "  - {name: a, origin: external}\n"
        "  - {name: b, origin: service-generated, keycloak: {realm: r, clientId: c}}\n"
    )
    assert found == [
        "cat.yaml:3: secrets[0] (a): external entry but no top-level `azureKeyVault`",
        "cat.yaml:4: secrets[1] (b): service-generated entry but no top-level `keycloak`",
    ]


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("  - {name: a, origin: helm-generated, required: true}\n", "`required` applies to external entries"),
        (
            "  - {name: a, origin: external, fixture: abc}\n",
            "fixture: String should have at least 4 characters",
        ),
        (
            "  - {name: a, origin: helm-generated,"
            " consumers: [{namespace: n, name: x}, {namespace: n, name: x}]}\n",
            "consumer n/x is listed twice",
        ),
        (
            "  - {name: a, origin: helm-generated, consumers: [{namespace: N_s, name: x}]}\n",
            "Kubernetes object name",
        ),
        (
            "  - {name: a, origin: external, azureKeyVault: 'has space'}\n",
            "Azure Key Vault secret name rules",
        ),
    ],
)
def test_entry_rules(snippet: str, expected: str) -> None:
    assert any(expected in p for p in problems_of(BASE + snippet))


def test_connection_urls_are_checked() -> None:
    found = problems_of(
        "environment: dev\nazureKeyVault: {url: 'http://kv/'}\nkeycloak: {url: 'keycloak:8080'}\n"
        "secrets:\n  - {name: a, origin: external}\n"
    )
    assert any("azureKeyVault.url: must be an https:// URL" in p for p in found)
    assert any("keycloak.url: must be an http:// or https:// URL" in p for p in found)


def test_yaml_syntax_error_names_the_line() -> None:
    found = problems_of("environment: dev\nsecrets:\n  - name: [unclosed\n")
    assert found[0].startswith("cat.yaml:4: (yaml): not valid YAML")


def test_empty_secrets_is_an_error() -> None:
    assert problems_of("environment: dev\nsecrets: []\n") == [
        "cat.yaml:2: secrets: must be a non-empty list of entries"
    ]


def test_numeric_run_id_is_accepted_as_text() -> None:
    catalog = parse_catalog(
        BASE
        + "  - {name: a, origin: service-generated, keycloak: {realm: r, clientId: c, rotate: {runId: 7}}}\n"
    )
    source = catalog.secrets[0].keycloak
    assert source is not None and source.rotate is not None and source.rotate.run_id == "7"


def test_production_never_activates_fixtures() -> None:
    catalog = parse_catalog(
        BASE.replace("environment: dev", "environment: Production\nfixtures: {enabled: true}")
        + "  - {name: a, origin: helm-generated, fixture: placeholder}\n"
    )
    assert catalog.is_production
    assert not catalog.fixtures_active


def test_unreadable_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path / "missing.yaml")
    assert "cannot read" in str(caught.value)


names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=127
)


@given(names)
def test_valid_names_are_accepted_everywhere(name: str) -> None:
    assert is_valid_name(name)
    catalog = parse_catalog(BASE + f"  - name: '{name}'\n    origin: external\n")
    assert catalog.secrets[0].name == name


@given(st.text(min_size=1, max_size=140).filter(lambda s: not is_valid_name(s)))
def test_invalid_names_are_rejected(name: str) -> None:
    text = BASE + "  - " + yaml.safe_dump({"name": name, "origin": "external"}, default_flow_style=True)
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, "cat.yaml")
    assert any(".name" in p.location for p in caught.value.problems)


entries = st.fixed_dictionaries(
    {"name": names, "origin": st.sampled_from(["external", "helm-generated", "operator-reconciled"])},
    optional={"fixture": st.text(min_size=4, max_size=40)},
)


@given(st.lists(entries, min_size=1, max_size=8, unique_by=lambda e: e["name"]), st.booleans())
def test_round_trip_through_yaml_is_lossless(items: list[dict[str, str]], enabled: bool) -> None:
    raw = {
        "environment": "dev",
        "fixtures": {"enabled": enabled},
        "azureKeyVault": {"url": "https://kv.vault.azure.net/", "prefix": ""},
        "secrets": items,
    }
    first = parse_catalog(yaml.safe_dump(raw))
    dumped = first.model_dump(by_alias=True, exclude_defaults=True, mode="json")
    second = parse_catalog(yaml.safe_dump(dumped))
    assert second.model_dump() == first.model_dump()
    assert second.secrets == first.secrets
