"""The catalog loader cannot be knocked over: hostile or broken files end in a `CatalogError` (exit 2)
that says where, never a traceback, a hang, unbounded memory or an echoed value."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from jobs.core.catalog import CatalogError, load_catalog, parse_catalog

T = TypeVar("T")

BASE = """\
environment: dev
azureKeyVault: {url: "https://kv.vault.azure.net/"}
keycloak: {url: "http://keycloak:8080"}
secrets:
"""
SECRET = "Zq9-Hunter2-Secret-Value"


def within(seconds: float, call: Callable[[], T]) -> T:
    """Run `call` in a daemon thread; fail (instead of hanging the suite) when it takes too long."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"did not finish within {seconds} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def catalog_error(text: str) -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        within(10, lambda: parse_catalog(text, "cat.yaml"))
    return caught.value


def file_error(path: Path) -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        within(10, lambda: load_catalog(path))
    return caught.value


# -- bytes and files -----------------------------------------------------------------------------------


def test_latin1_file_names_the_byte_offset_not_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "cat.yaml"
    path.write_bytes(BASE.encode() + "  - {name: caf\xe9, origin: external}\n".encode("latin-1"))
    error = file_error(path)
    offset = len(BASE.encode()) + len("  - {name: caf")
    assert f"byte offset {offset}" in str(error)
    assert "not UTF-8" in str(error)
    assert "caf" not in str(error) and "\\xe9" not in str(error) and "\xe9" not in str(error)
    assert error.problems[0].line == 5


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_fifo_is_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "catalog.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in str(file_error(fifo))


def test_device_is_refused_without_reading() -> None:
    assert "not a regular file" in str(file_error(Path("/dev/zero")))


def test_directory_is_refused(tmp_path: Path) -> None:
    assert "not a regular file" in str(file_error(tmp_path))


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "cat.yaml"
    path.write_bytes(BASE.encode() + b"# padding\n" * 500_000)
    error = file_error(path)
    assert "MiB" in str(error) and "larger than" in str(error)


# -- YAML features that are not data ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        f"!!int {SECRET}",
        f"!!float {SECRET}",
        f"!!bool {SECRET}",
        f"!!python/object/apply:os.system ['{SECRET}']",
        f"!!python/name:{SECRET}",
        f"!{SECRET} x",
        f"!custom {SECRET}",
        f"!!binary {SECRET}",
        f"!!set {{{SECRET}: null}}",
    ],
)
def test_explicit_tags_are_refused_without_echoing_the_value(value: str) -> None:
    error = catalog_error(
        BASE + "  - name: a\n    origin: service-generated\n    keycloak:\n      realm: r\n"
        f"      clientId: c\n      rotate:\n        runId: {value}\n"
    )
    assert "explicit YAML tags" in str(error)
    assert "cat.yaml:11:" in str(error)
    assert SECRET not in str(error) and SECRET[:12] not in str(error)


@pytest.mark.parametrize(
    "snippet",
    [
        "  - {? [a, b] : c, name: a, origin: external}\n",
        "  - {name: a, origin: external, {x: 1}: c}\n",
        "  - &e {name: a, origin: external, consumers: [*e]}\n",
    ],
)
def test_unhashable_keys_and_recursive_aliases_are_refused(snippet: str) -> None:
    error = catalog_error(BASE + snippet)
    assert error.problems[0].line == 5
    assert "mapping key must be a plain value" in str(error) or "recursive" in str(error)


@pytest.mark.parametrize("depth", [100, 493, 5_000])
def test_deep_nesting_is_refused(depth: int) -> None:
    error = catalog_error(BASE + "  - " + "[" * depth + "]" * depth + "\n")
    assert "nested" in str(error)


BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
    "environment: dev\n"
    "secrets: *i\n"
)


def test_alias_bomb_fails_fast_and_small() -> None:
    assert len(BOMB.encode()) < 500
    error = catalog_error(BOMB)
    assert "alias" in str(error)
    assert len(str(error)) < 2_000


def test_duplicate_keys_are_an_error_naming_both_lines() -> None:
    error = catalog_error(
        "environment: production\nfixtures: {enabled: true}\nenvironment: dev\nsecrets:\n"
        "  - {name: a, origin: helm-generated, fixture: dev-fixture}\n"
    )
    assert "duplicate key `environment`" in str(error)
    assert "line 1" in str(error) and error.problems[0].line == 3


def test_duplicate_keys_inside_an_entry_are_an_error() -> None:
    error = catalog_error(BASE + "  - name: a\n    origin: external\n    name: b\n")
    assert error.problems[0].line == 7
    assert "first at line 5" in str(error)


def test_huge_integer_and_impossible_date_are_catalog_errors() -> None:
    digits = "7" * 5_000
    error = catalog_error(
        BASE + "  - name: a\n    origin: service-generated\n"
        f"    keycloak: {{realm: r, clientId: c, rotate: {{runId: {digits}}}}}\n"
    )
    assert digits[:12] not in str(error)
    catalog_error(
        BASE + "  - name: a\n    origin: service-generated\n"
        "    keycloak: {realm: r, clientId: c, rotate: {runId: 2024-13-45}}\n"
    )


# -- what is echoed -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["\\n", "\\e[31m", "\\r", "\\x7f", "\\u202e", "\\u2028", "\\t"])
def test_control_characters_in_names_are_refused_and_never_echoed(bad: str) -> None:
    error = catalog_error(BASE + f'  - {{name: "ok{bad}cat.yaml:1: forged", origin: external}}\n')
    text = str(error)
    assert "forged" not in text
    for char in ("\x1b", "\r", "\x7f", "\u202e", "\u2028", "\t"):
        assert char not in text
    assert any(p.location.endswith(".name") for p in error.problems)


@pytest.mark.parametrize(
    ("field", "snippet"),
    [
        ("environment", 'environment: "dev\\e[2K\\rproduction"\n'),
        ("vault.field", 'vault: {field: "value\\nx"}\n'),
        ("keycloak.authRealm", 'keycloak: {url: "http://k", authRealm: "master\\n"}\n'),
    ],
)
def test_control_characters_in_free_text_are_refused(field: str, snippet: str) -> None:
    text = (
        "environment: dev\nazureKeyVault: {url: 'https://kv.vault.azure.net/'}\nkeycloak: {url: 'http://k'}\n"
    )
    key = snippet.split(":", maxsplit=1)[0]
    text = "\n".join(line for line in text.splitlines() if not line.startswith(key)) + "\n" + snippet
    error = catalog_error(text + "secrets:\n  - {name: a, origin: external}\n")
    assert any(p.location == field and "control character" in p.message for p in error.problems)
    assert "\x1b" not in str(error) and "\r" not in str(error)


def test_control_characters_in_realm_client_id_and_run_id_are_refused() -> None:
    error = catalog_error(
        BASE + "  - name: a\n    origin: service-generated\n"
        '    keycloak: {realm: "r\\n", clientId: "c\\e", rotate: {runId: "1\\r"}}\n'
    )
    locations = {p.location for p in error.problems if "control character" in p.message}
    assert {
        "secrets[0] (a).keycloak.realm",
        "secrets[0] (a).keycloak.clientId",
        "secrets[0] (a).keycloak.rotate.runId",
    } <= locations


def test_an_unknown_key_with_a_newline_cannot_forge_a_line() -> None:
    error = catalog_error(BASE + '  - {name: a, origin: external, "x\\ncat.yaml:1: forged": 1}\n')
    assert "\n  cat.yaml:1: forged" not in str(error)
    assert "forged" not in str(error)


def test_consumer_listed_twice_does_not_echo_an_invalid_name() -> None:
    error = catalog_error(
        BASE + "  - {name: a, origin: helm-generated,"
        ' consumers: [{namespace: "n\\e[0m", name: x}, {namespace: "n\\e[0m", name: x}]}\n'
    )
    assert "\x1b" not in str(error)


@pytest.mark.parametrize(
    ("snippet", "location"),
    [
        ("vault: {kvMount: secret/../sys}\n", "vault.kvMount"),
        ("vault: {kvMount: ..}\n", "vault.kvMount"),
        ("vault: {kvMount: ./secret}\n", "vault.kvMount"),
        ("keycloak: {url: 'http://k', authRealm: ..}\n", "keycloak.authRealm"),
    ],
)
def test_dot_segments_are_refused_in_mounts_and_realms(snippet: str, location: str) -> None:
    text = "environment: dev\nazureKeyVault: {url: 'https://kv.vault.azure.net/'}\n"
    if not snippet.startswith("keycloak"):
        text += "keycloak: {url: 'http://k'}\n"
    error = catalog_error(text + snippet + "secrets:\n  - {name: a, origin: external}\n")
    assert any(p.location == location for p in error.problems)


@pytest.mark.parametrize("realm", ["..", ".", "a/b", "../master"])
def test_dot_segments_and_slashes_are_refused_in_entry_realms(realm: str) -> None:
    error = catalog_error(
        BASE + f"  - {{name: a, origin: service-generated, keycloak: {{realm: '{realm}', clientId: c}}}}\n"
    )
    assert any(p.location == "secrets[0] (a).keycloak.realm" for p in error.problems)


def test_keycloak_url_needs_a_host() -> None:
    error = catalog_error(
        BASE.replace("http://keycloak:8080", "https://") + "  - {name: a, origin: external}\n"
    )
    assert any(p.location == "keycloak.url" for p in error.problems)


# -- how problems are reported -----------------------------------------------------------------------------


def test_at_most_fifty_problems_are_printed_then_a_count() -> None:
    entries = "".join(f"  - {{name: 'bad name {i}', origin: external}}\n" for i in range(300))
    error = catalog_error(BASE + entries)
    assert len(error.problems) == 300
    lines = str(error).splitlines()
    assert len(lines) <= 52
    assert lines[-1].strip() == "… and 250 more"


def test_line_numbers_point_at_the_offending_key() -> None:
    error = catalog_error(
        BASE + "  - name: a\n    origin: service-generated\n    keycloak:\n      realm: r\n"
        "      clientId: [not, text]\n"
        "  - name: b\n    origin: external\n    required: maybe\n    typo: 1\n"
    )
    rendered = sorted(p.render("cat.yaml") for p in error.problems)
    assert any(r.startswith("cat.yaml:9: secrets[0] (a).keycloak.clientId:") for r in rendered), rendered
    assert any(r.startswith("cat.yaml:12: secrets[1] (b).required:") for r in rendered), rendered
    assert any(r.startswith("cat.yaml:13: secrets[1] (b).typo: unknown key") for r in rendered), rendered


def test_a_tab_keeps_its_yaml_hint_without_quoting_content() -> None:
    error = catalog_error("environment: dev\nsecrets:\n\t- {name: a, origin: external}\n")
    assert "tab" in str(error)
    assert "cat.yaml:3:" in str(error)
    assert "'...'" not in str(error)


def test_an_unquoted_date_run_id_suggests_quoting() -> None:
    error = catalog_error(
        BASE + "  - name: a\n    origin: service-generated\n"
        "    keycloak: {realm: r, clientId: c, rotate: {runId: 2024-05-01}}\n"
    )
    (problem,) = [p for p in error.problems if p.location.endswith("runId")]
    assert "date" in problem.message and "quote" in problem.message
    catalog = parse_catalog(
        BASE + "  - name: a\n    origin: service-generated\n"
        "    keycloak: {realm: r, clientId: c, rotate: {runId: '2024-05-01'}}\n"
    )
    source = catalog.secrets[0].keycloak
    assert source is not None and source.rotate is not None and source.rotate.run_id == "2024-05-01"


def test_merge_keys_still_work_and_may_override() -> None:
    catalog = parse_catalog(
        BASE + "  - &base {name: a, origin: external}\n  - {<<: *base, name: b}\n", "cat.yaml"
    )
    assert [e.name for e in catalog.secrets] == ["a", "b"]
