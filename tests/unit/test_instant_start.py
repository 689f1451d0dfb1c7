"""Instant start: `--help`, `--version` and every exit-2 path run before any vendor SDK is imported
(hvac, requests, httpx, azure, kubernetes load only when a client is built), and all but the settings
paths (which need a valid catalog's model) without pydantic, pydantic-settings or tenacity either.
Asserted on `sys.modules` of a fresh interpreter, not on timing."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ("hvac", "httpx", "requests", "urllib3", "azure", "kubernetes", "msal", "prometheus_client")
# What an exit-2 path before the catalog model must not load: the vendor SDKs and the heavy libraries.
HEAVY = (*VENDOR, "pydantic", "pydantic_core", "pydantic_settings", "tenacity", "keycloak", "jobs.bootstrap")
ENTRYPOINTS = ("jobs.vault_bootstrap", "jobs.client_patcher", "jobs.secret_origin")


def vendor_modules_after(
    code: str, env: dict[str, str] | None = None, roots: tuple[str, ...] = VENDOR
) -> set[str]:
    """Run `code` in a fresh interpreter, then list the modules under `roots` it loaded."""
    probe = (
        "import json, sys, contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        f"{''.join('    ' + line + chr(10) for line in code.splitlines())}"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    return {m for m in loaded if any(m == r or m.startswith(r + ".") for r in roots)}


@pytest.mark.parametrize("module", ENTRYPOINTS)
def test_importing_an_entrypoint_loads_no_vendor_sdk(module: str) -> None:
    assert vendor_modules_after(f"import {module}") == set()


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        ("jobs.vault_bootstrap", ["--help"]),
        ("jobs.vault_bootstrap", ["--version"]),
        ("jobs.client_patcher", ["--help"]),
        ("jobs.secret_origin", ["--help"]),
        ("jobs.secret_origin", ["smoke", "--help"]),
        ("jobs.vault_bootstrap", []),  # no catalog: exit 2
        ("jobs.client_patcher", ["--catalog", "/nonexistent/catalog.yaml"]),  # exit 2
        ("jobs.client_patcher", ["--metrics-push", "ftp://pushgateway"]),  # exit 2, before prometheus_client
    ],
)
def test_help_version_and_bad_invocations_load_no_vendor_sdk(module: str, argv: list[str]) -> None:
    assert vendor_modules_after(_main(module, argv, (0, 2))) == set()


def _main(module: str, argv: list[str], codes: tuple[int, ...]) -> str:
    code = f"import {module}\ntry:\n    code = {module}.main({argv!r})\n"
    code += "except SystemExit as exc:\n    code = exc.code\n"
    return code + f"assert code in {codes!r}, code\n"


BAD_YAML = "environment: dev\nsecrets: [\n"
SCHEMA_ERROR = "environment: dev\nsecrets:\n  - name: a\n    origin: nope\n    extra: 1\n"
NOT_A_MAPPING = "- a\n- b\n"
EXIT_2_WITHOUT_PYDANTIC = [
    *[(m, ["--help"], 0) for m in ENTRYPOINTS],
    *[(m, ["--version"], 0) for m in ENTRYPOINTS],
    *[("jobs.secret_origin", [c, "--help"], 0) for c in ("check", "smoke", "audit", "policy")],
    ("jobs.secret_origin", [], 2),  # no subcommand
    ("jobs.secret_origin", ["policy", "--catalog", "CATALOG"], 2),  # --for missing
    ("jobs.vault_bootstrap", ["--concurrency", "0", "--catalog", "CATALOG"], 2),
    ("jobs.client_patcher", ["--deadline", "-1", "--catalog", "CATALOG"], 2),
    ("jobs.client_patcher", ["--log-format", "xml"], 2),
    ("jobs.client_patcher", ["--login-rate", "0", "--catalog", "CATALOG"], 2),
    *[(m, [], 2) for m in ("jobs.vault_bootstrap", "jobs.client_patcher")],  # no catalog
    *[(m, ["--catalog", "/nonexistent/catalog.yaml"], 2) for m in ENTRYPOINTS if m != "jobs.secret_origin"],
    ("jobs.secret_origin", ["check", "--catalog", "/nonexistent/catalog.yaml"], 2),
]


@pytest.mark.parametrize(("module", "argv", "exit_code"), EXIT_2_WITHOUT_PYDANTIC)
def test_help_version_and_usage_errors_load_neither_sdk_nor_pydantic(
    module: str, argv: list[str], exit_code: int, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(SCHEMA_ERROR)
    argv = [str(catalog) if a == "CATALOG" else a for a in argv]
    assert vendor_modules_after(_main(module, argv, (exit_code,)), roots=HEAVY) == set()


@pytest.mark.parametrize("text", [BAD_YAML, SCHEMA_ERROR, NOT_A_MAPPING, ""])
@pytest.mark.parametrize(
    "prefix", [["jobs.vault_bootstrap"], ["jobs.client_patcher"], ["jobs.secret_origin", "check"]]
)
def test_a_refused_catalog_exits_2_without_pydantic(text: str, prefix: list[str], tmp_path: Path) -> None:
    """A catalog the YAML reader or the schema refuses is reported without loading the model."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(text)
    module, *command = prefix
    code = _main(module, [*command, "--catalog", str(catalog), "--log-format", "json"], (2,))
    assert vendor_modules_after(code, roots=HEAVY) == set()


def test_missing_settings_exit_2_before_any_vendor_sdk_loads() -> None:
    """A Vault settings error is reported before hvac is imported: the exit-2 path stays instant."""
    catalog = ROOT / "examples" / "catalog.yaml"
    code = (
        "import jobs.vault_bootstrap as m\n"
        f"code = m.main(['--catalog', {str(catalog)!r}, '--log-format', 'json'])\n"
        "assert code == 2, code\n"
    )
    assert vendor_modules_after(code) == set()


def test_the_help_subprocess_loads_no_vendor_sdk() -> None:
    """The console script itself, as the container runs it."""
    probe = (
        "import runpy, sys, json, atexit\n"
        "atexit.register(lambda: sys.__stderr__.write(json.dumps(sorted(sys.modules))))\n"
        "sys.argv = ['vault-bootstrap', '--help']\n"
        "runpy.run_module('jobs.vault_bootstrap', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0
    assert "usage: vault-bootstrap" in done.stdout
    loaded = {m for m in json.loads(done.stderr) if m.split(".")[0] in VENDOR}
    assert loaded == set()


@pytest.mark.parametrize("module", ENTRYPOINTS)
def test_version_reads_the_installed_metadata_without_importlib_metadata(module: str) -> None:
    """`--version` finds the dist-info itself: importing importlib.metadata costs more than the rest."""
    code = _main(module, ["--version"], (0,))
    assert vendor_modules_after(code, roots=("importlib.metadata", "email")) == set()
    done = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert done.stdout.split() == [done.stdout.split()[0], version]
