"""Layering: only `jobs.core.clients` talks to the vendor libraries, so no library exception type or
object can reach the entrypoints, the planning code or the checks; and the layers of
docs/architecture.md hold (import-linter's layers contract in pyproject.toml)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

JOBS = Path(__file__).resolve().parents[2] / "jobs"
VENDOR = ("hvac", "httpx", "requests", "urllib3", "azure", "kubernetes", "msal")
OUTSIDE_CLIENTS = sorted(p for p in JOBS.rglob("*.py") if "clients" not in p.relative_to(JOBS).parts)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", OUTSIDE_CLIENTS, ids=lambda p: str(p.relative_to(JOBS)))
def test_only_the_clients_import_vendor_libraries(path: Path) -> None:
    vendor = {m for m in imported_modules(path) if m.split(".")[0] in VENDOR}
    assert not vendor, f"{path.relative_to(JOBS)} imports {sorted(vendor)}: go through jobs.core.clients"


def test_the_core_does_not_import_the_entrypoints_or_the_checks() -> None:
    for path in (JOBS / "core").rglob("*.py"):
        upward = {
            m
            for m in imported_modules(path)
            if m in {"jobs.client_patcher", "jobs.vault_bootstrap", "jobs.secret_origin"}
            or m.startswith(("jobs.checks", "jobs.bootstrap", "jobs.patcher"))
        }
        assert not upward, f"{path.relative_to(JOBS)} imports {sorted(upward)}"


def test_the_scan_sees_the_modules_it_guards() -> None:
    names = {str(p.relative_to(JOBS)) for p in OUTSIDE_CLIENTS}
    assert {
        "client_patcher.py",
        "vault_bootstrap.py",
        "core/plan.py",
        "checks/smoke.py",
        "bootstrap/run.py",
    } <= names


# -- the layers contract (import-linter), and what the pure layers load ------------------------------
ROOT = JOBS.parent
CONTRACT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
LAYERS = [
    name.strip()
    for contract in CONTRACT["contracts"]
    if contract["type"] == "layers"
    for layer in contract["layers"]
    for name in layer.replace(":", "|").split("|")
]
PURE_FROM = LAYERS.index("jobs.bootstrap.decide")  # this layer and every one below it: no I/O client


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(module_name(p) for p in JOBS.rglob("*.py"))


def layer_of(module: str) -> str | None:
    return next((name for name in LAYERS if module == name or module.startswith(name + ".")), None)


def test_the_import_linter_layers_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_module_sits_in_a_layer() -> None:
    packages = {m for m in MODULES if (JOBS.parent / m.replace(".", "/") / "__init__.py").exists()}
    unplaced = [m for m in MODULES if m not in packages and layer_of(m) is None]
    assert not unplaced, f"add these modules to a layer in pyproject.toml [tool.importlinter]: {unplaced}"


def test_the_pure_layers_load_no_vendor_library_even_transitively() -> None:
    pure = [m for m in MODULES if (layer := layer_of(m)) is not None and LAYERS.index(layer) >= PURE_FROM]
    assert {"jobs.core.plan", "jobs.bootstrap.decide", "jobs.patcher.decide", "jobs.core.observed"} <= set(
        pure
    )
    probe = (
        "import importlib, json, sys\n"
        f"for name in {pure!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    loaded = {m for m in json.loads(done.stdout) if m.split(".")[0] in VENDOR}
    assert not loaded, f"the pure layers load {sorted(loaded)}"
