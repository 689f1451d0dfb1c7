"""Layering: only `jobs.core.clients` talks to the vendor libraries, so no library exception type or
object can reach the entrypoints, the planning code or the checks (STYLE 4)."""

from __future__ import annotations

import ast
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
            or m.startswith("jobs.checks")
        }
        assert not upward, f"{path.relative_to(JOBS)} imports {sorted(upward)}"


def test_the_scan_sees_the_modules_it_guards() -> None:
    names = {str(p.relative_to(JOBS)) for p in OUTSIDE_CLIENTS}
    assert {"client_patcher.py", "vault_bootstrap.py", "core/plan.py", "checks/smoke.py"} <= names
