"""pytest wiring of the real-server tier (tests/real/, and the `real` side of tests/contract/).

tests/conftest.py imports the hooks and the `real_keycloak` fixture from here. Tests that need a real
server carry the `real` marker (set here for everything under tests/real/ and for contract tests
parametrised with `real`). When Java >= 21 or Maven is missing:

- with `CI=true` those tests run and fail at setup with a message naming what is missing;
- elsewhere they are deselected, and the run ends with ONE line saying what to install.

One Keycloak per pytest session: started (fetched and unpacked on first use, lab/keycloak_real.py) by
the first test that needs it, provisioned once with `build_world()`, stopped at the session's end. Its
boot time is printed once in the terminal summary.

Azure Key Vault stays on the project's emulator in this tier: Maven Central serves lowkey-vault only as
its Java client library (`com.github.nagyesta.lowkey-vault:lowkey-vault-client`), not the runnable
`lowkey-vault-app` jar; docker-compose.test.yml runs lowkey-vault's image for users with Docker.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab.keycloak_real import (
    KEYCLOAK_VERSION,
    AdminApi,
    RealKeycloak,
    World,
    build_world,
    provision,
    requirements,
    start_keycloak,
)

REAL = "real"
REAL_DIR = Path(__file__).resolve().parents[1] / "tests" / "real"
_FIGURES = pytest.StashKey[dict[str, float]]()
_MISSING = pytest.StashKey[list[str]]()

# The bootstrap admin of the session's Keycloak (KC_BOOTSTRAP_ADMIN_*), also the password-grant fallback.
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "Adm1n-" + os.urandom(6).hex()


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@dataclass
class RealServer:
    """The session's Keycloak, provisioned with `world`, and an admin session on it."""

    keycloak: RealKeycloak
    world: World
    api: AdminApi = field(repr=False)

    @property
    def url(self) -> str:
        return self.keycloak.url

    def secret_of(self, realm: str, client_id: str) -> str:
        known = self.world.client(realm, client_id).secret
        value = known or self.api.client_secret(realm, client_id)
        assert value is not None
        return value


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_DIR in Path(str(item.fspath)).parents:
            item.add_marker(REAL)
    missing = requirements()
    config.stash[_MISSING] = missing
    if not missing or in_ci():
        return
    kept = [item for item in items if item.get_closest_marker(REAL) is None]
    dropped = [item for item in items if item.get_closest_marker(REAL) is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    missing = config.stash.get(_MISSING, [])
    if missing and not in_ci():
        terminalreporter.write_line(
            "REAL-SERVER TIER NOT RUN (Keycloak " + KEYCLOAK_VERSION + "): " + "; ".join(missing),
            red=True,
            bold=True,
        )
    figures = config.stash.get(_FIGURES, {})
    if figures:
        terminalreporter.write_line(
            f"real Keycloak {KEYCLOAK_VERSION}: booted in {figures['boot']:.1f} s, "
            f"provisioned in {figures['provision']:.1f} s"
        )


@pytest.fixture(scope="session")
def real_keycloak(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[RealServer]:
    missing = requirements()
    if missing:
        pytest.fail("the real-server tier needs: " + "; ".join(missing), pytrace=False)
    env = dict(os.environ)
    env.update({"KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USERNAME, "KC_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD})
    keycloak = start_keycloak(tmp_path_factory.mktemp("keycloak"), env)
    try:
        started = time.monotonic()
        api = keycloak.admin_api()
        world = build_world()
        provision(api, world)
        request.config.stash[_FIGURES] = {
            "boot": keycloak.boot_seconds,
            "provision": time.monotonic() - started,
        }
        yield RealServer(keycloak, world, api)
        api.close()
    finally:
        keycloak.stop()
