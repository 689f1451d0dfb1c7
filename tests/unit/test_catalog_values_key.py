"""`--catalog values.yaml --catalog-key KEY`: the catalog read out of a Helm values file (one copy in a
GitOps repository), as a mapping or as a YAML string, with every line number pointing into that file."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from jobs.core.catalog import CatalogError, load_catalog
from jobs.core.flags import CATALOG_KEY_ENV, add_common_arguments
from jobs.core.settings import is_credential_variable

ROOT = Path(__file__).resolve().parents[2]

CATALOG = """\
environment: dev
azureKeyVault: {url: "https://kv.vault.azure.net/"}
secrets:
  - name: ghcr-token
    origin: external
  - name: second
    origin: external
"""


def indented(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line if line else line for line in text.splitlines(keepends=True))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path, key: str) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(path, key)
    assert caught.value.path == str(path)
    return [p.render("values.yaml") for p in caught.value.problems]


def test_the_example_values_carry_the_example_catalog() -> None:
    from_values = load_catalog(ROOT / "examples" / "helm-values.yaml", "catalog")
    alone = load_catalog(ROOT / "examples" / "catalog.yaml")
    assert from_values.model_dump() == alone.model_dump()
    assert from_values.path.endswith("helm-values.yaml")


def test_a_mapping_under_a_dotted_key_keeps_the_files_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path, "image: {tag: x}\nsecretOrigin:\n  logFormat: json\n  catalog:\n" + indented(CATALOG, 4)
    )
    catalog = load_catalog(path, "secretOrigin.catalog")
    assert [e.name for e in catalog.secrets] == ["ghcr-token", "second"]
    assert (catalog.line_of(0), catalog.line_of(1)) == (8, 10)
    assert catalog.path == str(path)


def test_a_mapping_problem_names_the_real_line_and_the_key(tmp_path: Path) -> None:
    broken = CATALOG.replace(
        "    origin: external\n  - name: second", "    origin: externl\n  - name: second"
    )
    path = write(tmp_path, "logFormat: json\ncatalog:\n" + indented(broken, 2))
    assert problems(path, "catalog") == [
        "values.yaml:7: catalog.secrets[0] (ghcr-token).origin: Input should be 'external', "
        "'service-generated', 'helm-generated' or 'operator-reconciled'"
    ]


def test_a_literal_block_string_is_offset_by_its_start(tmp_path: Path) -> None:
    path = write(
        tmp_path, "logFormat: json\ncatalog: |  # as --set-file would pass it\n" + indented(CATALOG, 2)
    )
    catalog = load_catalog(path, "catalog")
    assert (catalog.line_of(0), catalog.line_of(1)) == (6, 8)
    duplicate = CATALOG.replace("name: second", "name: ghcr-token")
    path = write(tmp_path, "logFormat: json\ncatalog: |\n" + indented(duplicate, 2))
    assert problems(path, "catalog") == [
        "values.yaml:8: catalog.secrets[1] (ghcr-token).name: duplicate name (also secrets[0]): "
        "two entries would own one Vault path"
    ]


def test_a_yaml_error_inside_a_literal_block_is_offset_too(tmp_path: Path) -> None:
    path = write(tmp_path, "catalog: |\n  environment: dev\n  secrets: [\n")
    (problem,) = problems(path, "catalog")
    assert problem.startswith("values.yaml:4: catalog (yaml): ")


def test_a_quoted_string_whose_lines_cannot_be_mapped_names_the_key_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'a: 1\ncatalog: "environment: dev\\nsecrets: []\\nextra: 1\\n"\n')
    assert {p.split(": ")[0] for p in problems(path, "catalog")} == {"values.yaml:2"}
    assert all(" catalog." in p for p in problems(path, "catalog"))


def test_a_missing_key_names_the_key_and_where_it_looked(tmp_path: Path) -> None:
    path = write(tmp_path, "logFormat: json\nsecretOrigin:\n  logFormat: text\n")
    assert problems(path, "secretOrigin.catalog") == [
        "values.yaml:3: (--catalog-key secretOrigin.catalog): no `catalog` key under secretOrigin"
    ]
    assert problems(path, "catalog") == [
        "values.yaml:1: (--catalog-key catalog): no `catalog` key under the top level"
    ]
    assert problems(path, "logFormat.catalog") == [
        "values.yaml:1: (--catalog-key logFormat.catalog): `logFormat` is not a mapping"
    ]


@pytest.mark.parametrize("value", ["[1, 2]", "7", "", "true"])
def test_a_key_holding_neither_a_mapping_nor_a_string_is_refused(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"logFormat: json\ncatalog: {value}\n")
    (problem,) = problems(path, "catalog")
    assert problem.startswith("values.yaml:2: (--catalog-key catalog): must hold the catalog: a mapping")


@pytest.mark.parametrize("key", ["", "a..b", ".catalog", "cata log", "a.b\n"])
def test_a_malformed_key_is_refused(tmp_path: Path, key: str) -> None:
    path = write(tmp_path, "catalog:\n" + indented(CATALOG, 2))
    if not key:  # no key: the file itself is the catalog
        with pytest.raises(CatalogError):
            load_catalog(path, key)
        return
    assert problems(path, key) == [
        "values.yaml:1: (--catalog-key): must be a dotted path of plain keys, such as `catalog` or "
        "`secretOrigin.catalog`"
    ]


def test_the_values_files_own_yaml_errors_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "a: 1\na: 2\ncatalog:\n" + indented(CATALOG, 2))
    (problem,) = problems(path, "catalog")
    assert problem.startswith("values.yaml:2: (yaml): ")


def test_production_fixtures_line_points_into_the_values_file(tmp_path: Path) -> None:
    production = CATALOG.replace("environment: dev", "environment: production\nfixtures:\n  enabled: true")
    path = write(tmp_path, "logFormat: json\ncatalog: |\n" + indented(production, 2))
    assert load_catalog(path, "catalog").fixtures_line == 5


def test_the_flag_and_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not is_credential_variable(CATALOG_KEY_ENV)  # a credential's value would be redacted everywhere
    monkeypatch.setenv(CATALOG_KEY_ENV, "secretOrigin.catalog")
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    assert parser.parse_args([]).catalog_key == "secretOrigin.catalog"
    assert parser.parse_args(["--catalog-key", "catalog"]).catalog_key == "catalog"
    monkeypatch.delenv(CATALOG_KEY_ENV)
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    assert parser.parse_args([]).catalog_key is None
