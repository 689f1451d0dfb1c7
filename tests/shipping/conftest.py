"""Render the chart with real Helm (the Helm v4 Go SDK through helm-python-sdk) for the shipping tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.support.runtime_image import RuntimeInstall, install_runtime

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "secret-origin"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
EXAMPLE_VALUES = ROOT / "examples" / "helm-values.yaml"
RELEASE = "so"
NAMESPACE = "secret-origin"


def load_values(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


@dataclass(frozen=True)
class Rendered:
    files: dict[str, str]

    @property
    def objects(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, text in sorted(self.files.items()):
            if name.endswith("NOTES.txt"):
                continue
            out.extend(doc for doc in yaml.safe_load_all(text) if doc)
        return out

    @property
    def notes(self) -> str:
        return next((t for n, t in self.files.items() if n.endswith("NOTES.txt")), "")

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        matches = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(matches) == 1, f"{kind}/{name}: {len(matches)} matches"
        return matches[0]

    def pod_templates(self) -> list[tuple[str, dict[str, Any]]]:
        """(owner, pod template) of every CronJob and Job."""
        out = [
            (f"CronJob/{c['metadata']['name']}", c["spec"]["jobTemplate"]["spec"]["template"])
            for c in self.of_kind("CronJob")
        ]
        out += [(f"Job/{j['metadata']['name']}", j["spec"]["template"]) for j in self.of_kind("Job")]
        return out

    def job_specs(self) -> list[tuple[str, dict[str, Any]]]:
        out = [
            (f"CronJob/{c['metadata']['name']}", c["spec"]["jobTemplate"]["spec"])
            for c in self.of_kind("CronJob")
        ]
        out += [(f"Job/{j['metadata']['name']}", j["spec"]) for j in self.of_kind("Job")]
        return out

    def write(self, directory: Path) -> Path:
        """The files as `helm template --output-dir` would lay them out."""
        for name, text in self.files.items():
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return directory


def render(values: dict[str, Any], *, name: str = RELEASE, namespace: str = NAMESPACE) -> Rendered:
    with helm.Chart.load(CHART) as chart:
        return Rendered(chart.render(values, name=name, namespace=namespace))


@pytest.fixture(scope="session")
def runtime_install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeInstall]:
    """The package as the images install it: built wheel, fresh venv, runtime dependencies only."""
    yield install_runtime(tmp_path_factory.mktemp("runtime-image"))
