"""`secret-origin check`: every rule has a failing and a passing fixture (tests/fixtures/check/<RULE>/),
the output formats, exit codes, and that no fixture value is ever printed."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from jobs import secret_origin
from jobs.checks.check import parse_values_argument
from jobs.checks.manifests import Store, StoreRef, resolve_key, vault_path
from jobs.checks.rules import RULES

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "check"
SARIF_SCHEMA = ROOT / "tests" / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"
RULE_IDS = [rule.id for rule in RULES]
# Every fixture value declared anywhere under tests/fixtures/check and examples/.
FIXTURE_VALUES = (
    "platform_client_secret",
    "C1tr0n3lla!",
    "minio_root_password",
    "ChangeMe-2024",
    "please-replace-me",
)


def check_args(case: Path) -> list[str]:
    args = ["check", "--catalog", str(case / "catalog.yaml")]
    if (case / "fixtures-from.yaml").exists():
        args += ["--fixtures-from", str(case / "fixtures-from.yaml")]
    for values in sorted(case.glob("values.*.yaml")):
        args += ["--values", f"{values.name.split('.')[1]}={values}"]
    if (case / "manifests").is_dir():
        args += ["--manifests", str(case / "manifests")]
    return args


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = secret_origin.main([*args, "--log-format", "json"])
    out, err = capsys.readouterr()
    return code, out, err


def findings(case: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, object]], str]:
    code, out, err = run([*check_args(case), "--format", "json"], capsys)
    assert code in (0, 1), err
    payload = json.loads(out)
    assert payload["exit_code"] == code  # snake_case, like every other summary
    return code, payload["findings"], out + err


def test_every_rule_has_a_failing_and_a_passing_fixture() -> None:
    for rule in RULE_IDS:
        assert (FIXTURES / rule / "fail" / "expected.txt").exists(), rule
        assert (FIXTURES / rule / "pass" / "catalog.yaml").exists(), rule


@pytest.mark.parametrize("rule", RULE_IDS)
def test_failing_fixture_reports_the_rule_at_its_line(rule: str, capsys: pytest.CaptureFixture[str]) -> None:
    case = FIXTURES / rule / "fail"
    code, found, output = findings(case, capsys)
    got = {f"{f['rule']}:{Path(str(f['file'])).relative_to(case).as_posix()}:{f['line']}" for f in found}
    expected = set((case / "expected.txt").read_text().split())
    assert expected <= got
    level = next(r.level.value for r in RULES if r.id == rule)
    assert code == (1 if level == "error" else 0)
    for value in FIXTURE_VALUES:
        assert value not in output


@pytest.mark.parametrize("rule", RULE_IDS)
def test_passing_fixture_does_not_report_the_rule(rule: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, found, _ = findings(FIXTURES / rule / "pass", capsys)
    assert rule not in {f["rule"] for f in found}


def test_text_output_is_linter_style_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    case = FIXTURES / "SO203" / "fail"
    code, out, err = run(check_args(case), capsys)
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith(f"{case / 'values.production.yaml'}:3: SO203 ")
    assert out.splitlines()[1].strip().startswith("fix: Remove the value")
    # the seed's own fixture values (462-21) are found but never printed
    for value in ("platform_client_secret", "C1tr0n3lla", "C1tr0n3lla!"):
        assert value not in out + err
    assert "2 error(s), 0 warning(s)" in out


def test_sarif_output_is_valid_sarif_2_1_0(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    schema = json.loads(SARIF_SCHEMA.read_text())
    case = FIXTURES / "SO301" / "fail"
    code, out, _ = run([*check_args(case.relative_to(ROOT)), "--format", "sarif"], capsys)
    assert code == 1
    log = json.loads(out)
    jsonschema.Draft4Validator(schema).validate(log)
    run_ = log["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == RULE_IDS
    results = run_["results"]
    assert {r["ruleId"] for r in results} == {"SO301", "SO303"}
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "tests/fixtures/check/SO301/fail/manifests/m.yaml"
        assert location["region"]["startLine"] >= 1


def test_clean_run_is_valid_sarif_with_no_results(capsys: pytest.CaptureFixture[str]) -> None:
    schema = json.loads(SARIF_SCHEMA.read_text())
    code, out, _ = run([*check_args(FIXTURES / "SO301" / "pass"), "--format", "sarif"], capsys)
    assert code == 0
    jsonschema.Draft4Validator(schema).validate(json.loads(out))
    assert json.loads(out)["runs"][0]["results"] == []


def test_seed_examples_are_clean(capsys: pytest.CaptureFixture[str]) -> None:
    examples = ROOT / "examples"
    code, out, err = run(
        [
            "check",
            "--catalog",
            str(examples / "seed-462" / "catalog.production.yaml"),
            "--fixtures-from",
            str(examples / "seed-462-catalog.yaml"),
            "--values",
            str(examples / "seed-462" / "values-production.yaml"),  # untagged: the catalog's environment
            "--manifests",
            str(examples / "seed-462" / "manifests"),
        ],
        capsys,
    )
    assert code == 0, out + err
    code, out, err = run(["check", "--catalog", str(examples / "seed-462-catalog.yaml")], capsys)
    assert code == 0, out + err


def test_untagged_values_file_takes_the_catalogs_environment(capsys: pytest.CaptureFixture[str]) -> None:
    case = FIXTURES / "SO203" / "fail"
    args = [
        "check",
        "--catalog",
        str(case / "catalog.yaml"),
        "--fixtures-from",
        str(case / "fixtures-from.yaml"),
    ]
    code, out, _ = run([*args, "--values", str(case / "values.production.yaml")], capsys)
    assert code == 1 and "SO203" in out  # the catalog is production
    code, out, _ = run([*args, "--values", f"dev={case / 'values.production.yaml'}"], capsys)
    assert code == 0


def test_custom_placeholder_pattern_is_reported_by_position_not_by_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("token: acme-dummy-4711\n")
    catalog = FIXTURES / "SO204" / "pass" / "catalog.yaml"
    code, out, _ = run(
        [
            "check",
            "--catalog",
            str(catalog),
            "--values",
            f"production={values}",
            "--placeholder-pattern",
            "dummy-\\d+",
        ],
        capsys,
    )
    assert code == 1
    assert "matches --placeholder-pattern #1" in out
    assert "acme-dummy" not in out and "dummy-\\d+" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--placeholder-pattern", "("], "--placeholder-pattern #1 is not a valid regular expression"),
        (["--values", "production=/nonexistent/values.yaml"], "cannot read"),
        (["--manifests", "/nonexistent/dir"], "no such directory"),
    ],
)
def test_bad_inputs_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        ["check", "--catalog", str(FIXTURES / "SO101" / "pass" / "catalog.yaml"), *args], capsys
    )
    assert code == 2
    assert message in err


def test_invalid_yaml_manifest_exits_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text("kind: ExternalSecret\nspec: [unclosed\n")
    code, _, err = run(
        [
            "check",
            "--catalog",
            str(FIXTURES / "SO101" / "pass" / "catalog.yaml"),
            "--manifests",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 2
    assert f"{tmp_path / 'bad.yaml'}:" in err and "not valid YAML" in err


def test_invalid_catalog_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "environment: dev\nsecrets:\n  - {name: x, origin: helm-generated, azureKeyVault: x}\n"
    )
    code, _, err = run(["check", "--catalog", str(catalog)], capsys)
    assert code == 2
    assert "`azureKeyVault` is only valid on external entries" in err


# -- Vault path resolution (docs/design.md#external-secrets-operator) ------------------------------------
@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("app/kc", "secret/app/kc"),
        ("secret/app/kc", "secret/app/kc"),
        ("secret/data/app/kc", "secret/app/kc"),
        ("/app/kc", "secret/app/kc"),
    ],
)
def test_resolve_key_deduplicates_mount_and_data_prefixes(key: str, expected: str) -> None:
    assert resolve_key("secret", key) == expected


def test_store_lookup_uses_the_stores_mount_and_skips_non_vault_stores() -> None:
    stores = [
        Store("SecretStore", "team", "apps", "kv-team"),
        Store("ClusterSecretStore", "aws", None, None),
    ]
    assert vault_path(stores, StoreRef("team"), "apps", "x", "secret") == "kv-team/x"
    assert vault_path(stores, StoreRef("team"), "other", "x", "secret") == "secret/x"  # not that namespace's
    assert vault_path(stores, StoreRef("aws", "ClusterSecretStore"), None, "x", "secret") is None
    assert vault_path(stores, StoreRef("unknown", "ClusterSecretStore"), None, "x", "secret") == "secret/x"


@pytest.mark.parametrize(
    ("text", "environment", "path"),
    [
        ("production=a/values.yaml", "production", "a/values.yaml"),
        ("a/values.yaml", "dev", "a/values.yaml"),
        ("prod=v.yaml", "prod", "v.yaml"),
    ],
)
def test_values_argument_tagging(text: str, environment: str, path: str) -> None:
    parsed = parse_values_argument(text, "dev")
    assert (parsed.environment, parsed.path) == (environment, Path(path))
