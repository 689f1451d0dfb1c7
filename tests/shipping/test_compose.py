"""docker-compose.test.yml against the Compose Specification JSON schema (vendored, see
vendor/SOURCES.md), plus what the schema cannot know: pinned images, the files it mounts, the realm."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

from lab.stack import COMPOSE_DEFAULTS
from tests.shipping.conftest import ROOT

COMPOSE = ROOT / "docker-compose.test.yml"
VENDOR = Path(__file__).parent / "vendor"


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_valid_against_the_compose_specification() -> None:
    schema = json.loads((VENDOR / "compose-spec.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(compose())


def test_the_schema_is_strict_enough_to_catch_a_typo() -> None:
    schema = json.loads((VENDOR / "compose-spec.json").read_text(encoding="utf-8"))
    broken = compose()
    broken["services"]["openbao"]["imagee"] = "x"
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_the_stack_has_every_server_the_tests_need() -> None:
    services = compose()["services"]
    assert set(services) == {"openbao", "keycloak", "lowkey-vault", "entra", "kube"}
    assert (
        "start-dev" in services["keycloak"]["command"] and "--import-realm" in services["keycloak"]["command"]
    )
    assert "-dev" in services["openbao"]["command"]
    for name in ("entra", "kube"):
        assert any(
            f"emulators.{'azure' if name == 'entra' else 'kube'}" in c for c in services[name]["command"]
        )


def test_every_image_is_pinned() -> None:
    for name, service in compose()["services"].items():
        image = service["image"]
        assert not image.endswith(":latest") and ":" in image, name
        tag = image.split("@")[0].rsplit(":", 1)[1]
        assert re.fullmatch(r"\d+\.\d+\.\d+(-[a-z0-9.-]+)?", tag), f"{name}: {image} is not an exact version"


def test_every_port_is_bound_to_loopback() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_mounted_files_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict) and volume.get("type") == "bind":
                assert (ROOT / volume["source"]).exists(), f"{name}: {volume['source']}"
    kube_command = " ".join(compose()["services"]["kube"]["command"])
    seed = re.search(r"--seed /src/(\S+)", kube_command)
    assert seed and (ROOT / seed.group(1)).is_file()


def test_realm_import_holds_the_test_clients() -> None:
    realm = json.loads((ROOT / "compose" / "keycloak" / "ameide-realm.json").read_text(encoding="utf-8"))
    clients = {c["clientId"]: c for c in realm["clients"]}
    admin = clients["secret-origin"]
    assert admin["serviceAccountsEnabled"] and not admin["publicClient"]
    (account,) = [u for u in realm["users"] if u.get("serviceAccountClientId") == "secret-origin"]
    assert {"view-clients", "manage-clients"} <= set(account["clientRoles"]["realm-management"])
    # The example catalog's client, plus the two kinds client-patcher must refuse
    # (docs/design.md#client-patcher).
    assert clients["platform-app-master"]["clientAuthenticatorType"] == "client-secret"
    assert clients["public-spa"]["publicClient"] is True
    assert clients["jwt-client"]["clientAuthenticatorType"] == "client-jwt"


def test_kube_seed_matches_the_example_consumers() -> None:
    seed = yaml.safe_load((ROOT / "compose" / "kube-seed.yaml").read_text(encoding="utf-8"))
    catalog = yaml.safe_load((ROOT / "examples" / "catalog.yaml").read_text(encoding="utf-8"))
    consumers = {(c["namespace"], c["name"]) for e in catalog["secrets"] for c in e.get("consumers", [])}
    objects = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in seed["objects"]}
    assert objects == consumers


def test_compose_provider_defaults_are_documented_and_match_the_published_ports() -> None:
    doc = (ROOT / "docs" / "testing-with-compose.md").read_text(encoding="utf-8")
    for name, default in COMPOSE_DEFAULTS.items():
        row = re.search(rf"^\| `{name}` \| (.+?) \|", doc, re.MULTILINE)
        assert row, f"{name} is not in the settings table"
        assert not default or row.group(1) == f"`{default}`", name
    published = {
        int(str(port).split(":")[1])
        for service in compose()["services"].values()
        for port in service.get("ports", [])
    }
    for name, default in COMPOSE_DEFAULTS.items():
        if default.startswith(("http://", "https://")):
            assert urlsplit(default).port in published, f"{name}={default}: port not published"
