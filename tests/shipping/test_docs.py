"""Operator docs that are executed: catalog snippets load, every documented command line parses with
the real entrypoint parser, the example values carry the example catalog, the values table is current."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs import client_patcher, secret_origin, vault_bootstrap
from jobs.core.catalog import (
    AzureKeyVaultConfig,
    Catalog,
    Consumer,
    Fixtures,
    KeycloakConfig,
    KeycloakSource,
    Rotation,
    SecretEntry,
    VaultConfig,
    load_catalog,
    parse_catalog,
)
from tests.shipping.conftest import CHART, EXAMPLE_VALUES, ROOT, load_values, render
from tools import gen_values_table

DOCS = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [*DOCS, CHART / "README.md", ROOT / "examples" / "README.md"]
PARSERS: dict[str, argparse.ArgumentParser] = {
    "secret-origin": secret_origin.build_parser(),
    "client-patcher": client_patcher.build_parser(),
    "vault-bootstrap": vault_bootstrap.build_parser(),
}
COMMAND = re.compile(r"^(secret-origin|client-patcher|vault-bootstrap)\s")


def _fences(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def _commands(text: str) -> list[str]:
    found: list[str] = []
    for block in _fences(text, "sh"):
        joined = block.replace("\\\n", " ")
        found += [line.strip() for line in joined.splitlines() if COMMAND.match(line.strip())]
    found += [
        m.replace("\\|", "|")
        for m in re.findall(r"`((?:secret-origin|client-patcher|vault-bootstrap) [^`]+)`", text)
    ]
    return found


def _argv(command: str) -> tuple[str, list[str]]:
    # Stop at shell plumbing and comments: only the job's own argv is parsed.
    words: list[str] = []
    for word in shlex.split(command, comments=True):
        if word in {"|", ">", ">>", "&&", ";"}:
            break
        words.append(word)
    return words[0], words[1:]


def test_docs_exist() -> None:
    names = {p.name for p in DOCS}
    assert {
        "architecture.md",
        "catalog-reference.md",
        "rotation-runbook.md",
        "troubleshooting.md",
        "eso-upgrade.md",
        "testing-with-compose.md",
    } <= names


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: p.name)
def test_documented_commands_parse(doc: Path) -> None:
    for command in _commands(doc.read_text(encoding="utf-8")):
        program, argv = _argv(command)
        try:
            PARSERS[program].parse_args(argv)
        except SystemExit as exc:  # argparse's way of saying "bad invocation"
            pytest.fail(f"{doc.name}: `{command}` does not parse ({exc})")


def test_the_docs_hold_the_commands_operators_need() -> None:
    commands = {
        _argv(c)[0] + " " + " ".join(_argv(c)[1][:1])
        for d in DOCUMENTS
        for c in _commands(d.read_text("utf-8"))
    }
    assert {
        "secret-origin policy",
        "secret-origin check",
        "secret-origin smoke",
        "secret-origin audit",
    } <= commands


def test_notes_commands_parse() -> None:
    notes = render(load_values(EXAMPLE_VALUES)).notes
    policy = [line.strip() for line in notes.splitlines() if line.strip().startswith("secret-origin policy ")]
    assert len(policy) == 2
    for command in policy:
        program, argv = _argv(command)
        PARSERS[program].parse_args(argv)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_catalog_snippets_load(doc: Path) -> None:
    for block in _fences(doc.read_text(encoding="utf-8"), "yaml"):
        if block.startswith("# catalog\n"):
            parse_catalog(block, f"{doc.name} snippet")


def test_catalog_reference_names_every_key() -> None:
    text = (ROOT / "docs" / "catalog-reference.md").read_text(encoding="utf-8")
    models: list[Any] = [
        Catalog,
        Fixtures,
        VaultConfig,
        AzureKeyVaultConfig,
        KeycloakConfig,
        SecretEntry,
        KeycloakSource,
        Rotation,
        Consumer,
    ]
    for model in models:
        for name, field in model.model_fields.items():
            key = field.alias or name
            assert re.search(rf"`[\w.\[\]]*\b{re.escape(key)}\b", text), (
                f"{model.__name__}.{key} is undocumented"
            )


def test_example_catalog_loads() -> None:
    catalog = load_catalog(ROOT / "examples" / "catalog.yaml")
    assert {e.origin.value for e in catalog.secrets} == {
        "external",
        "service-generated",
        "helm-generated",
        "operator-reconciled",
    }


SNIPPET = re.compile(r"below is\s+\[`([^`]+)`\]\([^)]+\)[^`]*?^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("doc", [ROOT / "README.md", CHART / "README.md"], ids=lambda p: p.name)
def test_a_snippet_that_names_a_file_is_that_file(doc: Path) -> None:
    """A snippet introduced by "The example below is [`examples/catalog.yaml`](...)" is that file."""
    found = SNIPPET.findall(doc.read_text(encoding="utf-8"))
    if doc.name == "README.md" and doc.parent == ROOT:
        assert [name for name, _ in found] == ["examples/catalog.yaml"]
    for name, block in found:
        assert block == (ROOT / name).read_text(encoding="utf-8"), f"{doc.name}: snippet differs from {name}"


def test_examples_readme_explains_every_example() -> None:
    text = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    for path in sorted((ROOT / "examples").rglob("*")):
        if path.is_file() and path.name != "README.md":
            relative = path.relative_to(ROOT / "examples").as_posix()
            assert f"`{relative}`" in text, f"examples/README.md does not explain {relative}"


def test_example_values_carry_the_example_catalog() -> None:
    from_values = load_values(EXAMPLE_VALUES)["catalog"]
    from_file = yaml.safe_load((ROOT / "examples" / "catalog.yaml").read_text(encoding="utf-8"))
    assert from_values == from_file


def test_chart_readme_values_table_is_current() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    start = readme.index(gen_values_table.BEGIN) + len(gen_values_table.BEGIN)
    end = readme.index(gen_values_table.END)
    expected = gen_values_table.current_table()
    assert readme[start:end].strip() == expected, "run: make values-table"


def test_values_table_rows_come_from_the_schema() -> None:
    schema, values = gen_values_table.load()
    table = gen_values_table.table(schema, values)
    # Descriptions of a shared definition ($defs/job) appear under both jobs, with each job's default.
    assert '| `vaultBootstrap.image.repository` | `"ameide/secret-origin-vault-bootstrap"` |' in table
    assert '| `clientPatcher.image.repository` | `"ameide/secret-origin-client-patcher"` |' in table
    schema["properties"]["logFormat"]["description"] = "Changed in the schema."
    assert '| `logFormat` | `"json"` | Changed in the schema. |' in gen_values_table.table(schema, values)


def test_every_value_has_a_description() -> None:
    schema, values = gen_values_table.load()
    described = {key for key, _, _ in gen_values_table.rows(schema, values)}
    leaves = set(_leaves(values))
    # A leaf is described itself or through its nearest described parent (e.g. resources.requests.cpu).
    undocumented = {
        leaf for leaf in leaves if not any(leaf == d or leaf.startswith(d + ".") for d in described)
    }
    assert undocumented == set()


@pytest.mark.parametrize(
    "doc", [*DOCUMENTS, ROOT / "docs" / "examples" / "consumer-externalsecrets.yaml"], ids=lambda p: p.name
)
def test_relative_links_resolve(doc: Path) -> None:
    for target in re.findall(r"\]\((?!https?://|#)([^)#]+)", doc.read_text(encoding="utf-8")):
        assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"


def _leaves(data: Any, prefix: str = "") -> list[str]:
    if isinstance(data, dict) and data:
        out: list[str] = []
        for key, value in data.items():
            out += _leaves(value, f"{prefix}{key}.")
        return out
    return [prefix.rstrip(".")]
