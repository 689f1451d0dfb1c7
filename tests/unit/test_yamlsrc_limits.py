"""`check --values` and `--manifests` read YAML under the same limits as the catalog."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobs.checks.yamlsrc import iter_scalars, load_documents, read_text
from jobs.core.errors import ConfigError
from tests.unit.test_catalog_hardening import BOMB, SECRET, within


def config_error(call: object) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        within(10, call)  # type: ignore[arg-type]
    return caught.value


def test_values_alias_bomb_fails_fast_and_small() -> None:
    error = config_error(lambda: list(iter_scalars(BOMB, "values.yaml")))
    assert "alias" in str(error) and str(error).startswith("values.yaml:")


def test_manifest_alias_bomb_fails_fast_and_small() -> None:
    error = config_error(lambda: load_documents("---\n" + BOMB, "rendered/a.yaml"))
    assert "alias" in str(error)


@pytest.mark.parametrize("value", [f"!!int {SECRET}", f"!!python/name:{SECRET}", f"!x {SECRET}"])
def test_tags_are_refused_without_echo(value: str) -> None:
    text = f"kind: Secret\nstringData:\n  password: {value}\n"
    for call in (lambda: load_documents(text, "m.yaml"), lambda: list(iter_scalars(text, "v.yaml"))):
        error = config_error(call)
        assert ":3:" in str(error) and SECRET[:12] not in str(error)


def test_deep_nesting_is_refused() -> None:
    text = "a: " + "[" * 3_000 + "]" * 3_000 + "\n"
    config_error(lambda: load_documents(text, "m.yaml"))
    config_error(lambda: list(iter_scalars(text, "v.yaml")))


def test_duplicate_keys_are_refused_with_both_lines() -> None:
    error = config_error(lambda: load_documents("a: 1\nb: 2\na: 3\n", "m.yaml"))
    assert str(error).startswith("m.yaml:3:") and "line 1" in str(error)


def test_non_utf8_values_file_names_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_bytes(b"a: caf\xe9\n")
    error = config_error(lambda: read_text(path))
    assert "byte offset 6" in str(error) and "caf" not in str(error)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_fifo_values_file_is_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "values.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in str(config_error(lambda: read_text(fifo)))


def test_device_values_file_is_refused() -> None:
    assert "not a regular file" in str(config_error(lambda: read_text(Path("/dev/zero"))))


def test_line_dicts_still_carry_key_lines() -> None:
    (doc,) = load_documents("kind: Secret\nmetadata:\n  name: x\n", "m.yaml")
    assert doc.line_of("metadata") == 2 and doc["metadata"].line_of("name") == 3


def test_oversized_text_is_refused_without_parsing() -> None:
    text = "a: 1\n" + "# padding\n" * 450_000
    assert "larger than 4 MiB" in str(config_error(lambda: load_documents(text, "m.yaml")))


@pytest.mark.parametrize("where", ["catalog", "values", "manifests"])
def test_check_exits_2_on_hostile_input_anywhere(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from jobs import secret_origin

    catalog = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    extra = {
        "catalog": ["--catalog", str(bomb)],
        "values": ["--catalog", str(catalog), "--values", f"production={bomb}"],
        "manifests": ["--catalog", str(catalog), "--manifests", str(tmp_path)],
    }[where]
    code = within(20, lambda: secret_origin.main(["check", *extra, "--log-format", "text"]))
    err = capsys.readouterr().err
    assert code == 2
    assert f"{bomb}:6:" in err and "alias" in err
    assert "Traceback" not in err
