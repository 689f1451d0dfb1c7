"""The `vendor` fixture: the same Keycloak world on the project's emulator and on the real Keycloak.

Every contract test runs twice, `[emulator]` and `[real]`, with the same assertions; the expected
values are what Keycloak 26.7 answers. A test that passes on `real` and fails on `emulator` is an
emulator bug to fix in emulators/keycloak.py, not a test to relax.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from emulators.keycloak import MASTER, KeycloakEmulator
from lab.keycloak_real import AdminApi, World, build_world, provision_emulator
from lab.real_tier import ADMIN_PASSWORD, ADMIN_USERNAME, RealServer


@dataclass
class Vendor:
    name: str
    url: str
    world: World
    api: AdminApi = field(repr=False)
    http: httpx.Client = field(repr=False)

    def secret(self, realm: str, client_id: str) -> str:
        known = self.world.client(realm, client_id).secret
        value = known or self.api.client_secret(realm, client_id)
        assert value is not None
        return value

    def token_reply(self, realm: str, **form: str) -> httpx.Response:
        return self.http.post(f"/realms/{realm}/protocol/openid-connect/token", data=form)

    def token(self, realm: str, client_id: str) -> str:
        reply = self.token_reply(
            realm,
            grant_type="client_credentials",
            client_id=client_id,
            client_secret=self.secret(realm, client_id),
        )
        assert reply.status_code == 200, reply.text
        return str(reply.json()["access_token"])

    def admin_get(self, token: str | None, path: str, method: str = "GET", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, f"/admin/realms{path}", headers=headers, **kwargs)

    def uuid(self, realm: str, client_id: str) -> str:
        return self.api.client_uuid(realm, client_id)


@pytest.fixture(scope="session")
def emulated_keycloak() -> Iterator[tuple[str, World]]:
    # Keycloak <= 26.7 lets view-clients read a secret: the real tier pins 26.7.3.
    emulator = KeycloakEmulator(secret_read_requires_manage=False)
    emulator.add_user(MASTER, ADMIN_USERNAME, ADMIN_PASSWORD, realm_roles=["admin"])
    world = build_world()
    provision_emulator(emulator, world)
    emulator.start()
    yield emulator.url, world
    emulator.stop()


@pytest.fixture(
    scope="session",
    params=["emulator", pytest.param("real", marks=pytest.mark.real)],
)
def vendor(request: pytest.FixtureRequest) -> Iterator[Vendor]:
    if request.param == "real":
        server: RealServer = request.getfixturevalue("real_keycloak")
        url, world = server.url, server.world
    else:
        url, world = request.getfixturevalue("emulated_keycloak")
    api = AdminApi(url, ADMIN_USERNAME, ADMIN_PASSWORD)
    with httpx.Client(base_url=url, timeout=30) as http:
        yield Vendor(request.param, url, world, api, http)
    api.close()
