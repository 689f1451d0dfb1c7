"""Operator docs that are executed: catalog snippets load, every documented command line parses with
the real entrypoint parser, the example values carry the example catalog, the values table is current.
The docs stand alone: nothing in the repository cites a document outside it, and every cited section of
docs/design.md exists."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import unicodedata
from collections.abc import Iterator
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
        "design.md",
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


# -- the docs stand alone --------------------------------------------------------------------------------
DESIGN = ROOT / "docs" / "design.md"
# The sections other files cite as docs/design.md#<anchor>; their names are part of the contract.
DESIGN_ANCHORS = (
    "origins-and-authorities",
    "the-catalog",
    "settings-and-credentials",
    "client-patcher",
    "vault-bootstrap",
    "checks",
    "metadata-keys",
    "exit-codes",
    "rules-that-never-bend",
    "vendor-behaviours",
    "keycloak",
    "azure-key-vault",
    "workload-identity",
    "external-secrets-operator",
    "vault-kv-v2",
    "kubernetes-api",
    "helm-and-argo-cd",
    "traps",
)
TRAPS = 15
_SKIPPED_DIRS = {
    ".git",
    ".venv",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
}

# What points outside the repository. The expressions are written so that this file does not match
# itself (`wor[k]`, `share[d]`): the test scans every tracked file, this one included.
_OUTSIDE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a section of a background document", re.compile(r"\b(?:SPEC|CONTRACTS)\s*§")),
    ("a background document", re.compile(r"\b(?:SPEC|CONTRACTS|STYLE)\.md\b")),
    ("a folder outside the repository", re.compile(r"(?<![\w.-])share[d]/")),
    ("a build machine's path", re.compile(r"/wor[k]/")),
)
# A numbered trap ("trap" or "traps" and a number) must say where the list is, on the same line:
# "docs/design.md#traps, trap 9", or "[trap 9](design.md#traps)".
_TRAP = re.compile(r"\btraps?\s+#?\d+", re.IGNORECASE)
_TRAP_CONTEXT = "#traps"
_TRAP_WINDOW = (80, 40)  # characters before and after the match searched for the context


def _tracked_files() -> list[Path]:
    """Every file git tracks; outside a git checkout, every file outside .git and the tool caches."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode("utf-8")
    except (OSError, subprocess.CalledProcessError):
        return sorted(
            p
            for p in ROOT.rglob("*")
            if p.is_file()
            and not _SKIPPED_DIRS.intersection(p.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in p.relative_to(ROOT).parts)
        )
    return sorted(ROOT / name for name in listing.split("\0") if name and (ROOT / name).is_file())


def _texts() -> Iterator[tuple[str, str]]:
    for path in _tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files cite nothing
        yield path.relative_to(ROOT).as_posix(), text


def outside_references(text: str) -> list[tuple[int, str]]:
    """(line number, what) for every reference in `text` to something outside the repository."""
    found: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in _OUTSIDE:
            found += [(number, f"{what}: {m.group(0)!r}") for m in pattern.finditer(line)]
        before, after = _TRAP_WINDOW
        for m in _TRAP.finditer(line):
            if _TRAP_CONTEXT not in line[max(0, m.start() - before) : m.end() + after]:
                found.append((number, f"a trap number without docs/design.md#traps: {m.group(0)!r}"))
    return found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Split so that this file does not cite what it tests.
        ("see SPEC" + " §4 for more", 1),
        ("(CONTRACTS" + " §2.3)", 1),
        ("the rules in STYLE" + ".md and CONTRACTS" + ".md", 2),
        ("open ../share" + "d/notes", 1),
        ("built on /wor" + "k/tmp", 1),
        ("ESO ignores it (tra" + "p 9)", 1),
        ("tra" + "ps 9 and 10 apply", 1),
        ("docs/design.md#traps, trap 9", 0),
        ("see [trap 9](design.md#traps)", 0),
        ("azure/keyvault/secrets/_shared/client_base.py", 0),
        ("the emulator trap: a status object", 0),
        ("SPECIFIC section 4, CONTRACTSx", 0),
    ],
)
def test_outside_reference_matcher(text: str, expected: int) -> None:
    assert len(outside_references(text)) == expected, outside_references(text)


def test_no_file_cites_a_document_outside_the_repository() -> None:
    """Code, comments, help texts, chart, examples, docs and tests cite docs/design.md or the upstream
    source, never a document that is not in the repository, nor a path of a build machine."""
    offenders = [
        f"{name}:{line}: {what}" for name, text in _texts() for line, what in outside_references(text)
    ]
    assert offenders == [], f"{len(offenders)} reference(s) leave the repository:\n" + "\n".join(offenders)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in {"L", "N"})
    return kept.replace(" ", "-")


def _headings(text: str) -> list[tuple[int, str]]:
    """(level, text) of every Markdown heading outside code fences."""
    found: list[tuple[int, str]] = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)):
            found.append((len(m.group(1)), m.group(2)))
    return found


def design_anchors() -> set[str]:
    anchors: set[str] = set()
    for _, heading in _headings(DESIGN.read_text(encoding="utf-8")):
        anchor, n = github_anchor(heading), 0
        while (candidate := anchor if n == 0 else f"{anchor}-{n}") in anchors:
            n += 1
        anchors.add(candidate)
    return anchors


def test_github_anchor() -> None:
    assert github_anchor("Helm and Argo CD") == "helm-and-argo-cd"
    assert github_anchor("Vault KV v2") == "vault-kv-v2"
    assert github_anchor("`client-patcher`") == "client-patcher"
    assert github_anchor("Rules that never bend!") == "rules-that-never-bend"


def test_design_has_every_section_others_cite() -> None:
    assert set(DESIGN_ANCHORS) <= design_anchors()
    headings = _headings(DESIGN.read_text(encoding="utf-8"))
    vendor = headings.index((2, "Vendor behaviours"))
    nested = []
    for level, heading in headings[vendor + 1 :]:
        if level <= 2:
            break
        nested.append(github_anchor(heading))
    assert nested == list(DESIGN_ANCHORS[DESIGN_ANCHORS.index("keycloak") : -1])


def test_every_cited_design_anchor_exists() -> None:
    anchors = design_anchors()
    missing = [
        f"{name}: design.md#{anchor}"
        for name, text in _texts()
        for anchor in re.findall(r"design\.md#([\w-]+)", text)
        if anchor not in anchors
    ]
    own = DESIGN.read_text(encoding="utf-8")
    missing += [f"docs/design.md: #{a}" for a in re.findall(r"\]\(#([\w-]+)\)", own) if a not in anchors]
    assert missing == []


def test_traps_are_numbered_and_point_to_their_vendor_section() -> None:
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("\n## Traps\n", 1)[1].split("\n## ", 1)[0]
    items = re.split(r"^(\d+)\. ", section, flags=re.MULTILINE)[1:]
    numbers = [int(n) for n in items[0::2]]
    assert numbers == list(range(1, TRAPS + 1))
    vendor = set(DESIGN_ANCHORS[DESIGN_ANCHORS.index("keycloak") : -1])
    for number, body in zip(numbers, items[1::2], strict=True):
        links = set(re.findall(r"\]\(#([\w-]+)\)", body))
        assert links and links <= vendor, f"trap {number} must link its vendor section"


def test_readme_links_the_design() -> None:
    assert "(docs/design.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
