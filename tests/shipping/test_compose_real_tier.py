"""docker-compose.test.yml runs the Keycloak version of the real-server tier, and `docker compose up
--wait` really waits: every service has a healthcheck."""

from __future__ import annotations

from pathlib import Path

import yaml

from lab.keycloak_real import KEYCLOAK_VERSION

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.test.yml"


def services() -> dict[str, dict[str, object]]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"])


def test_compose_keycloak_is_the_real_tier_version() -> None:
    assert services()["keycloak"]["image"] == f"quay.io/keycloak/keycloak:{KEYCLOAK_VERSION}"


def test_every_compose_service_has_a_healthcheck() -> None:
    missing = sorted(name for name, spec in services().items() if not spec.get("healthcheck"))
    assert missing == []
