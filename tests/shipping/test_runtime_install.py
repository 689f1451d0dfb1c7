"""What the images do, without Docker (tests/support/runtime_image.py): the wheel built from the Docker
build context, installed with its runtime dependencies only, runs every console script."""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path

import pytest

from lab.client_patcher_stack import ClientPatcherStack
from lab.openbao import OpenBao
from lab.vault_bootstrap_stack import BootstrapStack
from tests.shipping.conftest import ROOT
from tests.support.runtime_image import CONSOLE_SCRIPTS, RuntimeInstall
from tests.support.summary import read_summary


def test_the_console_scripts_are_the_declared_ones() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert set(scripts) == set(CONSOLE_SCRIPTS)


@pytest.mark.parametrize("script", CONSOLE_SCRIPTS)
def test_entrypoint_help_runs_from_a_clean_install(runtime_install: RuntimeInstall, script: str) -> None:
    result = runtime_install.run(script, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: {script}" in result.stdout
    for flag in ("--catalog", "--dry-run", "--log-format", "--only", "--deadline"):
        assert flag in result.stdout or script == "secret-origin", flag


@pytest.mark.parametrize("script", CONSOLE_SCRIPTS)
def test_entrypoint_version_from_a_clean_install(runtime_install: RuntimeInstall, script: str) -> None:
    """The version comes from the installed package's metadata, i.e. from pyproject.toml."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    result = runtime_install.run(script, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{script} {version}"


def test_the_clean_install_does_not_see_the_dev_environment(runtime_install: RuntimeInstall) -> None:
    python = runtime_install.bin / "python"
    assert python.exists()
    result = runtime_install.run("python", "-c", "import pytest")
    assert result.returncode != 0, "the test extra leaked into the runtime install"


def test_the_wheel_holds_only_the_package(runtime_install: RuntimeInstall) -> None:
    names = zipfile.ZipFile(runtime_install.wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"jobs"}
    assert "jobs/py.typed" in names


def test_policy_invocation_shape_from_the_docs(runtime_install: RuntimeInstall) -> None:
    """The command NOTES.txt and docs/ print: `secret-origin policy --for JOB --catalog FILE`."""
    for job in ("client-patcher", "vault-bootstrap"):
        result = runtime_install.run(
            "secret-origin", "policy", "--for", job, "--catalog", str(ROOT / "examples" / "catalog.yaml")
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert 'path "secret/data/' in result.stdout


def test_catalog_validation_runs_from_a_clean_install(
    runtime_install: RuntimeInstall, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("environment: dev\nsecrets: [{name: x, origin: nope}]\n", encoding="utf-8")
    result = runtime_install.run("vault-bootstrap", "--catalog", str(bad), "--log-format", "text")
    assert result.returncode == 2


def _stack_env(env: dict[str, str]) -> dict[str, str]:
    """The stack's connection variables only: the clean install's own PATH must win."""
    return {
        k: v
        for k, v in env.items()
        if k.startswith(("VAULT_", "KEYCLOAK_", "AZURE_", "KUBECONFIG", "SECRET_"))
        or k == "REQUESTS_CA_BUNDLE"
    }


def test_both_jobs_dry_run_against_the_local_stack_from_a_clean_install(
    runtime_install: RuntimeInstall, openbao: OpenBao, tmp_path: Path
) -> None:
    """A runtime dependency that only the dev environment provides would fail these real runs."""
    with ClientPatcherStack.start(openbao, openbao.new_kv_mount(), tmp_path / "cp") as stack:
        done = runtime_install.run(
            "client-patcher",
            "--dry-run",
            "--log-format",
            "json",
            "--summary",
            "full",
            env=_stack_env(stack.env()),
        )
        assert done.returncode == 0, done.stderr[-2000:]
        summary = read_summary(done.stdout)
        assert summary["dry_run"] is True
        assert summary["counts"]["written"] == len(stack.clients)
        assert all(stack.vault_state(spec.name)[0] == 0 for spec in stack.clients)  # nothing written
    with BootstrapStack.start(tmp_path / "vb", openbao=openbao) as boot:
        boot.seed_akv({"ghcr-pull-secret": "ghp_runtimeInstall0001"})
        boot.write_catalog(
            [{"name": "ghcr-token", "origin": "external", "azureKeyVault": "ghcr-pull-secret"}]
        )
        done = runtime_install.run(
            "vault-bootstrap",
            "--dry-run",
            "--log-format",
            "json",
            "--summary",
            "full",
            env=_stack_env(boot.env()),
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert read_summary(done.stdout)["counts"]["written"] == 1
        assert boot.vault_value("ghcr-token") is None
        assert "ghp_runtimeInstall0001" not in done.stdout + done.stderr
