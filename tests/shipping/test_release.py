"""Release engineering: one version source, the licence and changelog, `--version` on every entrypoint,
the hash-pinned lock of the runtime dependencies, and the GitHub workflows (actionlint + their shape)."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
import venv
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import jobs
from jobs import client_patcher, secret_origin, vault_bootstrap
from tests.shipping.conftest import CHART, ROOT
from tests.support.runtime_image import CONSOLE_SCRIPTS, RuntimeInstall

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]
LOCK = ROOT / "requirements.lock"
WORKFLOWS = ROOT / ".github" / "workflows"
PARSERS: dict[str, argparse.ArgumentParser] = {
    "client-patcher": client_patcher.build_parser(),
    "vault-bootstrap": vault_bootstrap.build_parser(),
    "secret-origin": secret_origin.build_parser(),
}


# -- one version source ----------------------------------------------------------------------------------


def test_the_chart_and_the_package_carry_the_pyproject_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["version"] == VERSION
    assert chart["appVersion"] == VERSION  # the default image tag
    assert jobs.__version__ == VERSION == metadata.version("secret-origin")


def test_the_changelog_has_unreleased_and_the_current_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert headings[0] == "Unreleased" and VERSION in headings
    for heading in headings:  # Keep a Changelog: every version heading has its link
        assert re.search(rf"^\[{re.escape(heading)}\]: https://", text, re.MULTILINE), heading


def test_the_licence_is_the_apache_2_text_pyproject_declares() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert PYPROJECT["project"]["license"] == "Apache-2.0"  # an SPDX expression (PEP 639)
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(re.findall(r"^\s*\d+\. ", text, re.MULTILINE)) >= 9  # the nine sections, in full


@pytest.mark.parametrize("program", PARSERS)
def test_every_entrypoint_prints_its_version(program: str, capsys: pytest.CaptureFixture[str]) -> None:
    argvs = [["--version"]]
    if program == "secret-origin":
        argvs += [[command, "--version"] for command in ("check", "smoke", "audit", "policy")]
    for argv in argvs:
        with pytest.raises(SystemExit) as raised:
            PARSERS[program].parse_args(argv)
        assert raised.value.code == 0, argv
        out = capsys.readouterr().out.strip()
        assert out.startswith(program) and out.endswith(f" {VERSION}"), out


# -- the lock --------------------------------------------------------------------------------------------


def _lock() -> dict[str, tuple[str, list[str]]]:
    """{canonical name: (pinned version, hashes)}; fails on anything a --require-hashes install refuses
    or that would make the install depend on something other than PyPI's files."""
    text = LOCK.read_text(encoding="utf-8").replace("\\\n", " ")
    entries: dict[str, tuple[str, list[str]]] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        assert not line.startswith("-"), f"option in the lock: {line}"
        requirement, *options = line.split()
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", requirement)
        assert match, f"not pinned with ==: {requirement}"
        hashes = [o.removeprefix("--hash=sha256:") for o in options if o.startswith("--hash=sha256:")]
        assert hashes and len(hashes) == len(options), f"{requirement}: every option must be a sha256 hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), requirement
        name = canonicalize_name(match.group(1))
        assert name not in entries, f"{name} pinned twice"
        entries[name] = (match.group(2), hashes)
    return entries


def test_the_lock_pins_every_runtime_dependency_within_its_pyproject_range() -> None:
    lock = _lock()
    for spec in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement.name} is a runtime dependency but not in requirements.lock"
        assert requirement.specifier.contains(lock[name][0], prereleases=True), (
            f"{name}=={lock[name][0]} is outside pyproject's {requirement.specifier}: run make lock"
        )
    assert "secret-origin" not in lock, "the package itself is installed from its wheel, not the lock"
    test_extra = PYPROJECT["project"]["optional-dependencies"]["test"]
    tools = {canonicalize_name(Requirement(s).name) for s in test_extra} - {"pyjwt"}  # pyjwt: via msal
    assert not tools & set(lock), "test-only packages in the runtime lock"


def test_the_lock_is_closed_under_the_dependencies_it_pins() -> None:
    """--no-deps installs nothing the lock does not list: every requirement of every locked package that
    this environment has at the locked version must be in the lock too."""
    lock = _lock()
    environment = {**default_environment(), "python_version": "3.11", "sys_platform": "linux"}
    checked = 0
    for name, (version, _) in lock.items():
        try:
            installed = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if canonicalize_name(installed.metadata["Name"]) != name or installed.version != version:
            continue
        checked += 1
        for spec in installed.requires or []:
            requirement = Requirement(spec)
            if requirement.marker and not requirement.marker.evaluate({**environment, "extra": ""}):
                continue
            dependency = canonicalize_name(requirement.name)
            assert dependency in lock, f"{name} needs {dependency}, which requirements.lock lacks"
            assert requirement.specifier.contains(lock[dependency][0], prereleases=True), (name, spec)
    assert checked >= len(lock) // 2, "too few locked packages installed here to check the closure"


# The images' platforms (release.yml) and the glibc of their base image (Debian bookworm: 2.36).
PLATFORMS = {"amd64": "x86_64", "arm64": "aarch64"}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_lock_resolves_to_hashed_wheels_on_both_image_platforms(platform: str, tmp_path: Path) -> None:
    """What `pip install --require-hashes --no-deps --only-binary=:all:` in the image's build stage
    fetches, for each architecture the release builds: every file exists and matches its hash."""
    arch = PLATFORMS[platform]
    tags = [f"--platform=manylinux_2_{minor}_{arch}" for minor in (17, 24, 26, 27, 28, 31, 34, 35, 36)]
    result = subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--require-hashes", "--no-deps", "--only-binary=:all:", *tags, f"--platform=manylinux2014_{arch}",
            "--platform=any", "--python-version=3.11", "--implementation=cp",
            "--abi=cp311", "--abi=abi3", "--abi=none", "--dest", str(tmp_path), "-r", str(LOCK),
        ],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list(tmp_path.glob("*.whl"))) == len(_lock())


def test_the_image_install_steps_give_a_consistent_working_environment(
    runtime_install: RuntimeInstall, tmp_path: Path
) -> None:
    """The Dockerfiles' build stage, without Docker: the lock with --require-hashes --no-deps, then the
    wheel with --no-deps, into a venv without pip. `pip check` then proves the lock is closed (nothing
    --no-deps skipped is missing) and the console scripts run."""
    prefix = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(prefix)
    python = str(prefix / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", python]
    steps = [
        [*pip, "install", "--quiet", "--require-hashes", "--no-deps", "--only-binary=:all:", "-r", str(LOCK)],
        [*pip, "install", "--quiet", "--no-deps", str(runtime_install.wheel)],
        [*pip, "check"],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, check=False, timeout=900)
        assert result.returncode == 0, f"{step[6:]}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    clean = RuntimeInstall(prefix, runtime_install.wheel)
    for script in CONSOLE_SCRIPTS:
        result = clean.run(script, "--version")
        assert result.stdout.strip() == f"{script} {VERSION}", result.stderr


def test_make_lock_regenerates_the_lock_from_pyproject() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile[makefile.index("\nlock:") :].split("\n\n", 1)[0]
    assert "pip-compile" in recipe and "--generate-hashes" in recipe and "pyproject.toml" in recipe
    assert "--output-file requirements.lock" in recipe
    header = LOCK.read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert "make lock" in header and "Python 3.11" in header


# -- the workflows -----------------------------------------------------------------------------------------


def _workflow(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _run_steps(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def _uses(job: dict[str, Any]) -> list[str]:
    return [str(step["uses"]).split("@", 1)[0] for step in job["steps"] if "uses" in step]


def test_actionlint_is_clean() -> None:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is not installed (`make test` builds it into .venv/bin)")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert files
    result = subprocess.run(
        [found, "-color=false", *files], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pull_requests_run_make_test() -> None:
    workflow = _workflow("test.yml")
    assert "pull_request" in workflow[True]  # PyYAML reads the key `on` as True
    (job,) = workflow["jobs"].values()
    assert "make test" in _run_steps(job).splitlines()
    assert workflow["permissions"] == {"contents": "read"}


def test_the_release_workflow_ships_what_a_tag_promises() -> None:
    workflow = _workflow("release.yml")
    assert workflow[True] == {"push": {"tags": ["v*"]}}
    jobs_ = workflow["jobs"]
    # The tag must equal the one version source, and the chart must agree, before anything is built.
    version_check = _run_steps(jobs_["version"])
    assert "pyproject.toml" in version_check and '"v${version}"' in version_check
    assert "Chart.yaml" in version_check and "appVersion" in version_check
    assert "make test" in _run_steps(jobs_["test"])
    images = jobs_["images"]
    assert set(images["needs"]) >= {"version", "test"}
    assert images["strategy"]["matrix"]["job"] == ["client-patcher", "vault-bootstrap"]
    assert images["permissions"]["id-token"] == "write" and images["permissions"]["packages"] == "write"
    (build,) = [s for s in images["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action")]
    assert build["with"]["file"] == "Dockerfile.${{ matrix.job }}"
    assert set(build["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["with"]["push"] is True and build["with"]["sbom"] is True
    assert build["with"]["tags"].endswith(":${{ env.VERSION }}")
    assert "ghcr.io/" in images["env"]["IMAGE"]
    assert {"docker/setup-buildx-action", "docker/setup-qemu-action", "sigstore/cosign-installer"} <= set(
        _uses(images)
    )
    signing = _run_steps(images)
    assert 'cosign sign --yes "${IMAGE}@${DIGEST}"' in signing  # keyless: no --key anywhere
    assert "cosign attest --yes --type spdxjson" in signing and "--key" not in signing
    chart = jobs_["chart"]
    steps = _run_steps(chart)
    assert 'helm package charts/secret-origin --version "${VERSION}" --app-version "${VERSION}"' in steps
    assert re.search(r'helm push "secret-origin-\$\{VERSION\}\.tgz" "oci://ghcr\.io/', steps)


def test_the_chart_default_images_are_the_ones_the_release_pushes() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    release = _workflow("release.yml")
    pushed = release["jobs"]["images"]["env"]["IMAGE"].replace("${{ needs.version.outputs.owner }}", "ameide")
    for key, job in (("clientPatcher", "client-patcher"), ("vaultBootstrap", "vault-bootstrap")):
        image = values[key]["image"]
        assert f"{image['registry']}/{image['repository']}" == pushed.replace("${{ matrix.job }}", job)
        assert image["tag"] == "", "empty tag = the chart's appVersion = the pyproject version"
