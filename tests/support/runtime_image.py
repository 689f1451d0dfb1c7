"""What the container images do, without Docker: build the wheel, install it with its runtime
dependencies only (no test extra) into a fresh virtual environment, and run the console scripts from
there. A runtime dependency missing from pyproject.toml then fails here, not in the cluster.

Reusable: `install_runtime(tmp)` returns a `RuntimeInstall` whose `run(script, *args, env=...)` runs one
of the installed console scripts with an environment that does not see the project's .venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPTS = ("client-patcher", "vault-bootstrap", "secret-origin")
# What .dockerignore lets into the image's build context, and so all the wheel may be built from.
BUILD_CONTEXT = ("pyproject.toml", "README.md", "jobs")


def stage_build_context(dest: Path) -> Path:
    """Copy the Docker build context (and nothing else) to `dest`: the build never writes into the
    working tree, and a file the package needs but the image build cannot see fails here too."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in BUILD_CONTEXT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, dest / name)
    return dest


def build_wheel(outdir: Path) -> Path:
    """`python -m build --wheel` on a copy of the build context, as the image's build stage does."""
    context = stage_build_context(outdir.parent / "context")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir), str(context)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    wheels = sorted(outdir.glob("secret_origin-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {outdir}, found {[w.name for w in wheels]}")
    return wheels[0]


@dataclass(frozen=True)
class RuntimeInstall:
    prefix: Path
    wheel: Path

    @property
    def bin(self) -> Path:
        return self.prefix / "bin"

    def script(self, name: str) -> Path:
        return self.bin / name

    def clean_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """No PYTHONPATH, no VIRTUAL_ENV: only the fresh environment is importable."""
        keep = {k: v for k, v in os.environ.items() if k in {"HOME", "LANG", "LC_ALL", "TMPDIR", "TERM"}}
        keep["PATH"] = f"{self.bin}{os.pathsep}/usr/bin:/bin"
        keep["PYTHONDONTWRITEBYTECODE"] = "1"
        return {**keep, **(extra or {})}

    def run(
        self, name: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.script(name)), *args],
            capture_output=True,
            text=True,
            env=self.clean_env(env),
            timeout=timeout,
            check=False,
        )


def install_runtime(workdir: Path) -> RuntimeInstall:
    """Build the wheel and install it into `workdir/venv` (a venv without pip, like the image's)."""
    wheel = build_wheel(workdir / "dist")
    prefix = workdir / "venv"
    venv.EnvBuilder(with_pip=False, clear=True).create(prefix)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(prefix / "bin" / "python"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return RuntimeInstall(prefix=prefix, wheel=wheel)
