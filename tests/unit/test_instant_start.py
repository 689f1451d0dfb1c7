"""Instant start: `--help`, `--version` and every exit-2 path run before any vendor SDK is imported
(hvac, requests, httpx, azure, kubernetes load only when a client is built). Asserted on `sys.modules`
of a fresh interpreter, not on timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ("hvac", "httpx", "requests", "urllib3", "azure", "kubernetes", "msal", "prometheus_client")
ENTRYPOINTS = ("jobs.vault_bootstrap", "jobs.client_patcher", "jobs.secret_origin")


def vendor_modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """Run `code` in a fresh interpreter, then list the vendor modules it loaded."""
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
    return {m for m in json.loads(done.stdout.splitlines()[-1]) if m.split(".")[0] in VENDOR}


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
    code = f"import {module}\ntry:\n    code = {module}.main({argv!r})\n"
    code += "except SystemExit as exc:\n    code = exc.code\n"
    code += "assert code in (0, 2), code\n"
    assert vendor_modules_after(code) == set()


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
