"""Property: whatever bytes a catalog, values file or manifest holds, reading it ends in success or in
the loader's own error (exit 2), within a bounded time, and no secret-looking value from the input
appears in the message."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.checks.yamlsrc import iter_scalars, load_documents
from jobs.core.catalog import CatalogError, load_catalog
from jobs.core.errors import ConfigError

SECONDS_PER_EXAMPLE = 5.0

# Secret-looking values: base64-ish text with `+` and `=`, so no rule may show them as a name or a key.
secrets = st.builds(
    lambda head, tail: f"ZQ9{head}+{tail}=",
    st.text("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=8, max_size=12),
    st.text("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=6, max_size=10),
)

TOKENS = [
    "\n", "\n  ", "\n    ", "  ", ": ", ":", "- ", "-", "[", "]", "{", "}", ",", "? ", "&a ", "*a", "&b ",
    "*b", "<<: *a", "!!int ", "!!float ", "!!bool ", "!!set ", "!!binary ", "!!python/name:os.system ",
    "!custom ", "! ", "|", ">-", "'", '"', "#", "\t", "---\n", "...\n", "%YAML 1.1\n", "\\", "\x1b[31m",
    "\\e", "\\n", "\x00", "\x85", "\u2028", "\u202e", "\ufeff", "é", "2024-05-01", "2024-13-45", "1e999",
    "0x1F", "7" * 40, "~", "null", "yes", ".nan", "environment", "secrets", "name", "origin", "external",
    "service-generated", "helm-generated", "keycloak", "realm", "clientId", "rotate", "runId", "fixture",
    "consumers", "namespace", "vault", "kvMount", "..", "azureKeyVault", "url", "https://kv.vault.azure.net/",
    "fixtures", "enabled", "true", "SECRET",
]  # fmt: skip


@st.composite
def token_soup(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """YAML-flavoured token streams: every kind of syntax, tag, alias and character, in any order."""
    found = draw(st.lists(secrets, min_size=1, max_size=3))
    parts = draw(st.lists(st.sampled_from(TOKENS), max_size=60))
    text = ""
    for part in parts:
        text += found[len(text) % len(found)] if part == "SECRET" else part
    return text.encode("utf-8", "surrogatepass"), found


def _entry(draw: st.DrawFn, secret: str, index: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": draw(st.sampled_from([f"entry-{index}", f"e{index}", secret])),
        "origin": draw(st.sampled_from(["external", "service-generated", "helm-generated", "bogus", secret])),
    }
    if draw(st.booleans()):
        entry["fixture"] = draw(st.sampled_from([secret, f"[{secret}]", "abc", 7]))
    if draw(st.booleans()):
        entry["keycloak"] = {
            "realm": draw(st.sampled_from(["r", "..", "a/b", secret])),
            "clientId": draw(st.sampled_from(["c", secret, "c\x1b"])),
            "rotate": {"runId": draw(st.sampled_from([secret, "2024-05-01", 7, True]))},
        }
    if draw(st.booleans()):
        entry["consumers"] = [{"namespace": "ns", "name": draw(st.sampled_from(["x", secret]))}] * draw(
            st.integers(1, 2)
        )
    if draw(st.booleans()):
        entry[draw(st.sampled_from(["requird", secret]))] = secret
    return entry


MUTATIONS = ["insert", "delete", "duplicate-line", "tab", "tag", "bytes"]


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A valid-looking catalog holding secrets in every field, then a few mutations."""
    secret = draw(secrets)
    catalog: dict[str, Any] = {
        "environment": draw(st.sampled_from(["dev", "production", secret])),
        "fixtures": {"enabled": draw(st.booleans())},
        "vault": {"kvMount": draw(st.sampled_from(["secret", "kv/../sys", secret])), "field": "value"},
        "azureKeyVault": {"url": draw(st.sampled_from(["https://kv.vault.azure.net/", "kv", secret]))},
        "keycloak": {"url": draw(st.sampled_from(["http://keycloak:8080", "https://", secret]))},
        "secrets": [_entry(draw, secret, i) for i in range(draw(st.integers(1, 4)))],
    }
    text = yaml.safe_dump(catalog, default_flow_style=draw(st.sampled_from([False, None, True])))
    data = text.encode()
    for _ in range(draw(st.integers(0, 3))):
        mutation = draw(st.sampled_from(MUTATIONS))
        at = draw(st.integers(0, len(data)))
        if mutation == "insert":
            data = data[:at] + draw(st.sampled_from(TOKENS)).encode() + data[at:]
        elif mutation == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 8)) :]
        elif mutation == "duplicate-line":
            lines = data.split(b"\n")
            index = at % len(lines)
            data = b"\n".join([*lines[: index + 1], lines[index], *lines[index + 1 :]])
        elif mutation == "tab":
            data = data.replace(b"\n  ", b"\n\t", 1)
        elif mutation == "tag":
            data = data.replace(b": ", b": " + draw(st.sampled_from([b"!!int ", b"!!bool ", b"!x "])), 1)
        else:
            data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    # A mutation may cut a secret; what is left of it is no longer "the value". Whole ones stay unechoed.
    return data, [secret] if secret.encode() in data else []


raw_bytes = st.tuples(st.binary(max_size=400), st.just(list[str]()))
inputs = st.one_of(token_soup(), near_valid(), raw_bytes)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def _assert_not_echoed(message: str, found: list[str]) -> None:
    for secret in found:
        assert secret not in message, "a secret-looking value was printed"
        assert secret[:11] not in message and secret[-8:] not in message, "part of one was printed"


@settings(
    max_examples=150,
    deadline=timedelta(seconds=SECONDS_PER_EXAMPLE),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(inputs)
def test_any_bytes_load_or_fail_with_a_catalog_error(workdir: Path, case: tuple[bytes, list[str]]) -> None:
    data, found = case
    path = workdir / "catalog.yaml"
    path.write_bytes(data)
    started = time.monotonic()
    try:
        load_catalog(path)
    except CatalogError as exc:
        _assert_not_echoed(str(exc), found)
        assert len(exc.problems) >= 1
    assert time.monotonic() - started < SECONDS_PER_EXAMPLE


@settings(
    max_examples=100,
    deadline=timedelta(seconds=SECONDS_PER_EXAMPLE),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(inputs)
def test_values_and_manifests_load_or_fail_with_a_config_error(case: tuple[bytes, list[str]]) -> None:
    data, found = case
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # read_text refuses it before parsing (tested on its own)
    for read in (lambda: list(iter_scalars(text, "values.yaml")), lambda: load_documents(text, "m.yaml")):
        try:
            read()
        except ConfigError as exc:
            _assert_not_echoed(str(exc), found)
