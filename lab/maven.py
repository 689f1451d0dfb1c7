"""Real vendor servers from Maven Central: find Java and Maven, fetch a pinned artifact, verify, unpack once.

Everything lands in `.cache/real-servers/` at the repository root (git-ignored; override with
`SECRET_ORIGIN_REAL_CACHE`), so a second run reuses the unpacked server without touching the network.
Maven's own local repository (`~/.m2/repository`, or `SECRET_ORIGIN_MAVEN_REPO`) keeps the download.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JVM_DIR = Path("/usr/lib/jvm")


class ToolMissing(RuntimeError):
    """Java or Maven is not installed (or too old); the message names what to install."""


def cache_dir() -> Path:
    configured = os.environ.get("SECRET_ORIGIN_REAL_CACHE")
    path = Path(configured) if configured else ROOT / ".cache" / "real-servers"
    path.mkdir(parents=True, exist_ok=True)
    return path


def maven_repo() -> Path:
    configured = os.environ.get("SECRET_ORIGIN_MAVEN_REPO")
    return Path(configured) if configured else Path.home() / ".m2" / "repository"


def mvn_binary() -> str:
    found = shutil.which("mvn")
    if not found:
        raise ToolMissing("Maven (`mvn`) is not on PATH: install it (Debian: apt-get install maven)")
    return found


def java_major(home: Path) -> int | None:
    """The feature version of the JDK/JRE at `home`, from its `release` file (no JVM started)."""
    release = home / "release"
    if not (home / "bin" / "java").exists() or not release.exists():
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', release.read_text(errors="replace"), re.MULTILINE)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def find_java(minimum: int) -> Path:
    """A Java home of at least `minimum`: JAVA_HOME if new enough, else the newest under /usr/lib/jvm."""
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    if JVM_DIR.is_dir():
        found = [(java_major(p), p) for p in JVM_DIR.iterdir() if p.is_dir() and not p.is_symlink()]
        candidates += [p for major, p in sorted(found, key=lambda f: -(f[0] or 0)) if major]
    for home in candidates:
        major = java_major(home)
        if major is not None and major >= minimum:
            return home
    raise ToolMissing(
        f"no Java >= {minimum} in JAVA_HOME or {JVM_DIR}: install one (e.g. Debian: apt-get install "
        f"openjdk-{minimum}-jdk-headless, or a Temurin {minimum}+ JDK) or point JAVA_HOME at it"
    )


@dataclass(frozen=True)
class Artifact:
    group: str
    artifact: str
    version: str
    packaging: str = "jar"
    classifier: str = ""

    @property
    def coordinates(self) -> str:
        tail = f":{self.classifier}" if self.classifier else ""
        return f"{self.group}:{self.artifact}:{self.version}:{self.packaging}{tail}"

    @property
    def filename(self) -> str:
        tail = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{tail}.{self.packaging}"

    def local_path(self, repo: Path) -> Path:
        return repo.joinpath(*self.group.split("."), self.artifact, self.version, self.filename)


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)  # what Maven Central publishes beside each artifact
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(artifact: Artifact, timeout: float = 900) -> Path:
    """The artifact in Maven's local repository, downloaded with strict checksums if it is not there yet,
    and checked against the `.sha1` Maven Central published beside it."""
    repo = maven_repo()
    path = artifact.local_path(repo)
    published = path.with_name(path.name + ".sha1")
    if not (path.exists() and published.exists()):
        done = subprocess.run(
            [
                mvn_binary(),
                "-B",
                "-q",
                "--strict-checksums",
                "dependency:get",
                f"-Dartifact={artifact.coordinates}",
                "-Dtransitive=false",
                f"-Dmaven.repo.local={repo}",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0 or not path.exists():
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            raise RuntimeError(f"mvn dependency:get {artifact.coordinates} failed: " + " | ".join(tail))
    if published.exists():
        expected = published.read_text().split()[0].strip().lower()
        actual = sha1_of(path)
        if actual != expected:
            path.unlink()
            raise RuntimeError(f"{artifact.filename}: sha1 {actual} != published {expected}; deleted, retry")
    return path


def unpack(archive: Path, name: str) -> Path:
    """Unpack `archive` once into the cache as `name/` (its single top folder); later calls reuse it.

    A marker holding the archive's sha1 is written last, so an interrupted unpack is redone."""
    target = cache_dir() / name
    marker = target / ".unpacked-from"
    expected = sha1_of(archive)
    if marker.exists() and marker.read_text().strip() == expected:
        return target
    staging = cache_dir() / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    staging.mkdir(parents=True)
    if archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as tar:  # a truncated or corrupt archive fails here
            tar.extractall(staging, filter="data")
    else:
        with zipfile.ZipFile(archive) as zipped:
            if zipped.testzip() is not None:
                raise RuntimeError(f"{archive.name} is corrupt")
            zipped.extractall(staging)
    (top,) = list(staging.iterdir())
    top.rename(target)
    shutil.rmtree(staging)
    for script in (target / "bin").glob("*.sh"):
        script.chmod(0o755)
    marker.write_text(expected + "\n")
    return target
