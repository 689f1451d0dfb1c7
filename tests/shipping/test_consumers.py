"""The consumer ExternalSecrets against ESO's own v1 CRD schema (vendored, see vendor/SOURCES.md), and
`secret-origin check` over the rendered chart plus those consumers, for every mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from jobs.core.catalog import Origin, parse_catalog
from tests.shipping.conftest import CI_VALUES, EXAMPLE_VALUES, ROOT, load_values, render

VENDOR = Path(__file__).parent / "vendor"
DOCS_CONSUMERS = ROOT / "docs" / "examples" / "consumer-externalsecrets.yaml"
VALUE_FILES = [*CI_VALUES, EXAMPLE_VALUES]
# Values that carry the catalog (a mapping, or the YAML text `--set-file` gives); the others point at an
# existing ConfigMap the chart never sees, so there is no catalog to check against the rendered output.
WITH_CATALOG = [p for p in VALUE_FILES if load_values(p).get("catalog")]


def catalog_of(values: dict[str, Any]) -> dict[str, Any]:
    catalog = values["catalog"]
    parsed = yaml.safe_load(catalog) if isinstance(catalog, str) else catalog
    assert isinstance(parsed, dict)
    return parsed


def test_only_the_existing_catalog_mode_carries_no_catalog() -> None:
    assert {p.name for p in VALUE_FILES} - {p.name for p in WITH_CATALOG} == {"existing-catalog-values.yaml"}


def _no_unknown_fields(node: Any) -> Any:
    """Like kubernetes-validate's strict mode: an object schema with `properties` rejects other keys
    (the API server would prune them silently, which is how a typo goes unnoticed)."""
    if isinstance(node, dict):
        out = {k: _no_unknown_fields(v) for k, v in node.items()}
        if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_no_unknown_fields(v) for v in node]
    return node


def eso_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((VENDOR / "eso-externalsecret-v1.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(_no_unknown_fields(schema))


def consumers_for(catalog_data: dict[str, Any]) -> list[dict[str, Any]]:
    """ExternalSecrets for every consumer a catalog names, built the way docs/examples shows."""
    catalog = parse_catalog(yaml.safe_dump(catalog_data), "values")
    out = []
    for entry in catalog.secrets:
        if entry.origin is not Origin.SERVICE_GENERATED:
            continue
        for consumer in entry.consumers:
            out.append(
                {
                    "apiVersion": "external-secrets.io/v1",
                    "kind": "ExternalSecret",
                    "metadata": {"name": consumer.name, "namespace": consumer.namespace},
                    "spec": {
                        "refreshPolicy": "OnChange",
                        "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault-backend"},
                        "target": {"name": consumer.name},
                        "data": [
                            {
                                "secretKey": "client-secret",
                                "remoteRef": {"key": entry.name, "property": catalog.vault.field},
                            }
                        ],
                    },
                }
            )
    return out


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobs.secret_origin", "check", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_docs_consumers_are_valid_eso_v1_objects() -> None:
    validator = eso_validator()
    docs = [d for d in yaml.safe_load_all(DOCS_CONSUMERS.read_text(encoding="utf-8")) if d]
    assert len(docs) == 2
    for doc in docs:
        assert doc["apiVersion"] == "external-secrets.io/v1"
        validator.validate(doc)
        assert doc["spec"]["refreshPolicy"] == "OnChange"


def test_docs_consumers_are_exactly_the_example_catalogs_consumers() -> None:
    docs = [d for d in yaml.safe_load_all(DOCS_CONSUMERS.read_text(encoding="utf-8")) if d]
    expected = consumers_for(load_values(EXAMPLE_VALUES)["catalog"])
    assert {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs} == {
        (d["metadata"]["namespace"], d["metadata"]["name"]) for d in expected
    }


def test_the_strict_eso_schema_catches_a_typo() -> None:
    (doc, *_) = consumers_for(load_values(EXAMPLE_VALUES)["catalog"])
    doc["spec"]["refreshPolicyy"] = "OnChange"
    with pytest.raises(jsonschema.ValidationError):
        eso_validator().validate(doc)
    doc = consumers_for(load_values(EXAMPLE_VALUES)["catalog"])[0]
    doc["spec"]["refreshPolicy"] = "Sometimes"
    with pytest.raises(jsonschema.ValidationError):
        eso_validator().validate(doc)


@pytest.mark.parametrize("path", WITH_CATALOG, ids=[p.name for p in WITH_CATALOG])
def test_secret_origin_check_passes_on_the_rendered_chart(path: Path, tmp_path: Path) -> None:
    values = load_values(path)
    values_catalog = catalog_of(values)
    manifests = render(values).write(tmp_path / "manifests")
    consumers = consumers_for(values_catalog)
    for doc in consumers:
        eso_validator().validate(doc)
    (manifests / "consumers.yaml").write_text(yaml.safe_dump_all(consumers), encoding="utf-8")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(values_catalog, sort_keys=False), encoding="utf-8")
    env = values_catalog["environment"]
    result = run_check("--catalog", str(catalog), "--manifests", str(manifests), "--values", f"{env}={path}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_secret_origin_check_passes_on_the_documented_example(tmp_path: Path) -> None:
    manifests = render(load_values(EXAMPLE_VALUES)).write(tmp_path / "manifests")
    result = run_check(
        "--catalog",
        str(ROOT / "examples" / "catalog.yaml"),
        "--manifests",
        str(manifests),
        "--manifests",
        str(DOCS_CONSUMERS.parent),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_secret_origin_check_flags_a_missing_consumer(tmp_path: Path) -> None:
    """The check really looks at the rendered output: without the consumers it fails (SO304)."""
    manifests = render(load_values(EXAMPLE_VALUES)).write(tmp_path / "manifests")
    result = run_check("--catalog", str(ROOT / "examples" / "catalog.yaml"), "--manifests", str(manifests))
    assert result.returncode == 1
    assert "SO304" in result.stdout
