"""Leak hunting, offline: every path by which a secret value could reach an error, a log line, a summary
or a check report without being printed by our own code — library and parser error texts, validation
errors, encodings the redaction filter does not know, extraction or truncation before redaction.

Each test here once failed against a real leak (YAML parser errors quoting file content, truncation
before redaction, URL-encoded and JSON-escaped forms); they now guard the fixes.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path
from urllib.parse import urlencode

import httpx
import hvac.exceptions
import pytest
from azure.core.exceptions import ClientAuthenticationError

from jobs import secret_origin
from jobs.checks import audit, rules, smoke
from jobs.checks.yamlsrc import iter_scalars, load_documents
from jobs.core.catalog import CatalogError, Consumer, parse_catalog
from jobs.core.clients import azure_errors, keycloak_errors, vault_errors
from jobs.core.errors import ConfigError, failure_reason
from jobs.core.logs import register_secret, setup_logging
from jobs.core.model import Action, EntryResult, RunReport
from jobs.core.observed import KvRead
from jobs.core.settings import AzureSettings, KeycloakSettings, VaultSettings, load_settings
from tests.support.summary import read_summary

# A federated service-account JWT (header.payload.signature): every segment is part of the secret.
JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IlF6OWsifQ"
    ".eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6eDp5IiwiZXhwIjoxfQ"
    ".Zq9vX2Ntb2tlZC1zaWduYXR1cmUtNzczMS1sZWFr"
)


def assert_absent(text: str, value: str) -> None:
    """Not the value, not its head, not its tail (12 characters, or the whole of a shorter value)."""
    assert value not in text, "a secret value was printed"
    assert value[:12] not in text, "the head of a secret value was printed"
    assert value[-12:] not in text, "the tail of a secret value was printed"


def catalog_yaml(fixture_line: str, environment: str = "dev") -> str:
    return (
        f"environment: {environment}\n"
        "fixtures: {enabled: true}\n"
        "vault: {kvMount: secret}\n"
        "secrets:\n"
        "  - name: grafana-admin\n"
        "    origin: helm-generated\n"
        f"    {fixture_line}\n"
    )


# -- YAML parser errors echo scalar text -------------------------------------------------------------------
# PyYAML names an undefined alias (`*value`) or an unknown tag (`!value`) in its error `problem`, so an
# unquoted value that starts with `*` or `!` comes back verbatim in "not valid YAML: ..." messages.


@pytest.mark.parametrize("marker", ["*", "!"])
def test_invalid_yaml_catalog_error_never_echoes_a_fixture(marker: str) -> None:
    fixture = "Gr4fana-Fixture-Zq9"
    with pytest.raises(CatalogError) as raised:
        parse_catalog(catalog_yaml(f"fixture: {marker}{fixture}"), "catalog.yaml")
    assert "catalog.yaml:7" in str(raised.value)  # the error still says where
    assert_absent(str(raised.value), fixture)


def test_invalid_yaml_values_file_error_never_echoes_the_value() -> None:
    real = "Pr0d-Real-Secret-Zq9-7731"
    with pytest.raises(ConfigError) as raised:
        list(iter_scalars(f"grafana:\n  adminPassword: *{real}\n", "values-production.yaml"))
    assert "values-production.yaml:2" in str(raised.value)
    assert_absent(str(raised.value), real)


@pytest.mark.parametrize("marker", ["*", "!"])
def test_invalid_yaml_manifest_error_never_echoes_a_secret(marker: str) -> None:
    real = "Pr0d-Manifest-Secret-Zq9"
    text = f"apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\nstringData:\n  password: {marker}{real}\n"
    with pytest.raises(ConfigError) as raised:
        load_documents(text, "rendered/secret.yaml")
    assert_absent(str(raised.value), real)


def test_check_prints_nothing_of_an_unparseable_production_values_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = "Pr0d-Real-Secret-Zq9-4242"
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "environment: production\nvault: {kvMount: secret}\n"
        "secrets:\n  - {name: grafana-admin, origin: helm-generated}\n"
    )
    values = tmp_path / "values.yaml"
    values.write_text(f"grafana:\n  adminPassword: *{real}\n")
    code = secret_origin.main(["check", "--catalog", str(catalog), "--values", f"production={values}"])
    out = capsys.readouterr()
    assert code == 2
    assert_absent(out.out + out.err, real)


def test_valid_production_values_are_reported_by_line_and_key_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The counterpart that holds: real values, fixtures and placeholders are never shown in any format."""
    fixture = "Dev-Fixture-Value-Zq9"
    real = "Pr0d-Real-Secret-Zq9-5151"
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(catalog_yaml(f"fixture: {fixture}"))
    values = tmp_path / "values.yaml"
    values.write_text(
        f"a:\n  realPassword: {real}\n  copied: prefix-{fixture}-suffix\n  todo: changeme-{real}\n"
        f"  list: [{real}, '{fixture}']\n"
    )
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "secret.yaml").write_text(
        f"apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\nstringData: {{password: {real}}}\n"
    )
    for fmt in ("text", "json", "sarif"):
        code = secret_origin.main(
            [
                "check",
                "--catalog",
                str(catalog),
                "--values",
                f"production={values}",
                "--manifests",
                str(manifests),
                "--format",
                fmt,
            ]
        )
        out = capsys.readouterr()
        assert code == 1, out
        assert "SO203" in out.out and "SO204" in out.out
        assert_absent(out.out + out.err, real)
        assert_absent(out.out + out.err, fixture)


# -- validation errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fixture_line",
    [
        "fixture: [Zq9-Fixture-In-A-List]",
        "fixture: {nested: Zq9-Fixture-In-A-Map}",
        "fixture: Zq9",  # shorter than the redaction minimum: refused, and not echoed
        "fixtrue: Zq9-Fixture-Under-A-Typo",  # an unknown key: its value is not echoed either
    ],
)
def test_catalog_validation_errors_never_echo_a_fixture(fixture_line: str) -> None:
    value = fixture_line.split("Zq9", 1)[1].rstrip("]}")
    with pytest.raises(CatalogError) as raised:
        parse_catalog(catalog_yaml(fixture_line), "catalog.yaml")
    text = str(raised.value)
    assert "catalog.yaml:7" in text
    assert "Zq9" not in text
    assert not value or value not in text


def test_catalog_error_about_another_field_never_echoes_the_entrys_fixture() -> None:
    text = catalog_yaml("fixture: Zq9-Valid-Fixture").replace("origin: helm-generated", "origin: helm")
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text, "catalog.yaml")
    assert "origin" in str(raised.value)
    assert "Zq9-Valid-Fixture" not in str(raised.value)


@pytest.mark.parametrize(
    ("settings", "env"),
    [
        (VaultSettings, {"VAULT_ADDR": "", "VAULT_TOKEN": "hvs.Zq9-vault-token"}),
        (KeycloakSettings, {"KEYCLOAK_CLIENT_SECRET": "Zq9-client-secret"}),
        (KeycloakSettings, {"KEYCLOAK_ADMIN_PASSWORD": "Zq9-admin-password"}),
        (
            AzureSettings,
            {
                "AZURE_CLIENT_ID": "c",
                "AZURE_TENANT_ID": "t",
                "AZURE_FEDERATED_TOKEN_FILE": "/x",
                "AZURE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE": "Zq9-not-a-boolean",
            },
        ),
    ],
)
def test_settings_errors_never_echo_an_environment_value(
    monkeypatch: pytest.MonkeyPatch, settings: type, env: dict[str, str]
) -> None:
    for name in (
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "VAULT_AUTH_ROLE",
        "KEYCLOAK_CLIENT_ID",
        "KEYCLOAK_CLIENT_SECRET",
        "KEYCLOAK_ADMIN_USERNAME",
        "KEYCLOAK_ADMIN_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings(settings)
    assert "Zq9" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


# -- library error texts -------------------------------------------------------------------------------
def test_entra_error_that_echoes_the_assertion_prints_no_part_of_it() -> None:
    register_secret(JWT)  # as AzureKeyVaultClient does with the federated token
    exc = ClientAuthenticationError(
        message=f"Microsoft Entra ID error '(invalid_client) AADSTS50027: Invalid JWT token {JWT}. "
        "Trace ID: 1 Correlation ID: 2'"
    )
    reason = failure_reason(azure_errors.translate(exc, "list secrets (page 1)"))
    assert "AADSTS50027" in reason
    for segment in JWT.split("."):
        assert segment not in reason


def test_entra_error_without_an_echo_keeps_its_code() -> None:
    exc = ClientAuthenticationError(message="AADSTS700213: No matching federated identity record found.")
    assert "AADSTS700213" in str(azure_errors.translate(exc, "get secret x"))


def test_keycloak_error_echoing_the_form_body_prints_no_password() -> None:
    password = "Adm1n!p@ss w0rd/Zq9"
    register_secret(password)  # as KeycloakClient does with KEYCLOAK_ADMIN_PASSWORD
    form = urlencode({"grant_type": "password", "client_id": "admin-cli", "password": password})
    response = httpx.Response(
        401, json={"error": "invalid_grant", "error_description": f"Invalid user credentials: {form}"}
    )
    reason = failure_reason(
        keycloak_errors.status_error(response, "POST /realms/master/protocol/openid-connect/token")
    )
    assert "invalid_grant" in reason
    assert "w0rd" not in reason and "Adm1n" not in reason


def test_keycloak_error_detail_is_redacted_before_it_is_truncated() -> None:
    secret = "Zq9-kc-" + "s" * 40 + "-tail-7731"
    register_secret(secret)
    description = "x" * 180 + f" {secret} " + "y" * 100
    response = httpx.Response(500, json={"error": "unknown_error", "error_description": description})
    reason = failure_reason(keycloak_errors.status_error(response, "GET /admin/realms/r/clients"))
    assert "Zq9-kc" not in reason and "tail-7731" not in reason


def test_vault_error_echoing_a_multiline_value_is_redacted() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvZq9firstLine\nMIIEvZq9secondLine\n-----END PRIVATE KEY-----"
    register_secret(pem)  # as VaultClient.read/write does with every value
    exc = hvac.exceptions.InvalidRequest(errors=[f"invalid value:\n{pem}"])
    reason = failure_reason(vault_errors.translate(exc, "write", "secret/data/tls"))
    assert "rejected (400" in reason
    assert "Zq9firstLine" not in reason and "Zq9secondLine" not in reason


def test_unexpected_exception_text_is_redacted_in_the_entry_reason() -> None:
    value = 'Zq9 "quoted" ünïcode secret'
    register_secret(value)
    reason = failure_reason(ValueError(f"bad input {value!r} and {json.dumps(value)}"))
    assert "Zq9" not in reason and "quoted" not in reason


# -- summaries, logs, warnings ---------------------------------------------------------------------------
def _report_with(value: str) -> RunReport:
    return RunReport(
        "client-patcher",
        (EntryResult("a", Action.FAILED, f"raw {value} repr {value!r}", warnings=(f"w {value}",)),),
        warnings=(json.dumps({"v": value}),),
    )


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_summary_masks_raw_values_in_reasons_and_warnings(fmt: str) -> None:
    value = "Zq9-plain-summary-secret"
    register_secret(value)
    text = _report_with(value).render(fmt)
    assert "Zq9" not in text
    if fmt == "json":
        assert read_summary(text)["exit_code"] == 1


def test_text_summary_masks_repr_and_json_forms() -> None:
    value = 'Zq9-"sum"-\u00fcn\u00ef\\code'
    register_secret(value)
    assert "Zq9" not in _report_with(value).render("text")


def test_json_summary_masks_repr_and_json_forms() -> None:
    value = 'Zq9-"sum"-\u00fcn\u00ef\\code'
    register_secret(value)
    assert "Zq9" not in _report_with(value).render("json")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_captured_python_warnings_are_redacted(fmt: str) -> None:
    buffer = io.StringIO()
    logging.captureWarnings(False)  # a previous test's setup_logging left capture on, pointing elsewhere
    setup_logging(fmt, stream=buffer)
    register_secret("Zq9-warned-secret-value")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("a library warned about Zq9-warned-secret-value", UserWarning, stacklevel=1)
    finally:
        logging.captureWarnings(False)
    assert "UserWarning" in buffer.getvalue()
    assert "Zq9" not in buffer.getvalue()


def test_library_logger_with_exc_info_is_redacted_in_the_error_field() -> None:
    buffer = io.StringIO()
    setup_logging("json", stream=buffer)
    register_secret("Zq9-exc-info-secret")
    try:
        raise RuntimeError("body was {'client_secret': 'Zq9-exc-info-secret'}")
    except RuntimeError:
        logging.getLogger("azure.identity").warning("get_token failed", exc_info=True)
    assert "Zq9" not in buffer.getvalue()
    assert "error" in json.loads(buffer.getvalue())


# -- smoke and audit renderings --------------------------------------------------------------------------
def _catalog(environment: str = "production") -> str:
    return (
        f"environment: {environment}\nvault: {{kvMount: secret}}\n"
        "keycloak: {url: 'http://kc'}\n"
        "secrets:\n"
        "  - {name: grafana-admin, origin: helm-generated}\n"
        "  - name: app-client-secret\n"
        "    origin: service-generated\n"
        "    keycloak: {realm: r, clientId: app}\n"
    )


def test_audit_matrix_never_shows_a_vault_value_or_placeholder() -> None:
    catalog = parse_catalog(_catalog(), "catalog.yaml")
    known = smoke.Known(rules.known_fixtures([catalog]), rules.placeholders([]))
    values = {"grafana-admin": "changeme-Zq9-real-ish", "app-client-secret": "Zq9-keycloak-secret-value"}
    reads = {
        name: KvRead(
            "secret", name, True, 3, {"value": value}, {"managed-by": "someone", "akv-version": "abc"}
        )
        for name, value in values.items()
    }
    rows = [audit.assess(catalog, e, reads[e.name], known) for e in catalog.secrets]
    for text in (audit.render_markdown(catalog, rows), audit.render_json(catalog, rows)):
        assert "Zq9" not in text


def test_smoke_offences_never_show_the_value() -> None:
    catalog = parse_catalog(_catalog("dev"), "catalog.yaml")
    entry = catalog.entry("grafana-admin")
    known = smoke.Known((), rules.placeholders(["Zq9"]))
    current = KvRead("secret", entry.name, True, 2, {"value": "Zq9-placeholder-ish"})
    offence = smoke.decide_vault(entry, current, "value", known)
    assert offence is not None and "Zq9" not in offence
    consumer = smoke.decide_consumer(
        Consumer(namespace="ns", name="es"),
        target="es-secret",
        keys=["password"],
        synced={"password": b"Zq9-synced-placeholder"},
        vault_digest=smoke.digest("Zq9-other"),
        vault_version=2,
        known=known,
    )
    assert consumer is not None and "Zq9" not in consumer
