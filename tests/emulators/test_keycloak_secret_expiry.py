"""The Keycloak emulator's secret-rotation policy expires secrets like Keycloak 26: the expiration-period
knob, the login refused once the expiration time has passed, and the rotation a client PUT does then
(tests/contract/test_expiry_contract.py asks the real Keycloak the same). Time moves with a fake clock."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from emulators.keycloak import KeycloakEmulator

REALM = "ameide"
PATCHER = "client-patcher"
APP = "app"
EXPIRATION = "client.secret.expiration.time"
REFUSED = (
    401,
    {"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"},
)


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emu(clock: Clock) -> Iterator[KeycloakEmulator]:
    emulator = KeycloakEmulator(clock=clock)
    emulator.add_realm(REALM)
    roles = ["view-clients", "manage-clients", "view-realm"]
    emulator.add_client(REALM, PATCHER, service_account=True, service_account_roles=roles)
    emulator.add_client(REALM, APP, service_account=True)
    with emulator:
        yield emulator


@pytest.fixture
def http(emu: KeycloakEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.url, timeout=5) as client:
        yield client


def login(http: httpx.Client, client_id: str, secret: str) -> tuple[int, object]:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    reply = http.post(f"/realms/{REALM}/protocol/openid-connect/token", data=form)
    return reply.status_code, reply.json() if reply.status_code != 200 else "token"


def admin_headers(http: httpx.Client, emu: KeycloakEmulator) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": PATCHER,
        "client_secret": emu.client_secret(REALM, PATCHER),
    }
    reply = http.post(f"/realms/{REALM}/protocol/openid-connect/token", data=form)
    assert reply.status_code == 200
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def put_unchanged(http: httpx.Client, emu: KeycloakEmulator) -> None:
    headers = admin_headers(http, emu)
    path = f"/admin/realms/{REALM}/clients/{emu.client_uuid(REALM, APP)}"
    rep = http.get(path, headers=headers).json()
    rep.pop("secret", None)
    assert http.put(path, json=rep, headers=headers).status_code == 204


def test_the_expiration_period_is_a_per_client_knob_shown_in_the_profiles(
    emu: KeycloakEmulator, http: httpx.Client, clock: Clock
) -> None:
    emu.set_rotation_policy(REALM, APP, True, rotated_expiration=30, secret_expiration=60)
    put_unchanged(http, emu)
    assert int(emu.client_attributes(REALM, APP)[EXPIRATION]) == clock.now + 60
    profiles = http.get(f"/admin/realms/{REALM}/client-policies/profiles", headers=admin_headers(http, emu))
    config = profiles.json()["profiles"][0]["executors"][0]["configuration"]
    assert (config["expiration-period"], config["rotated-expiration-period"]) == (60, 30)


def test_the_default_expiration_period_is_keycloaks_29_days(
    emu: KeycloakEmulator, http: httpx.Client, clock: Clock
) -> None:
    emu.set_rotation_policy(REALM, APP, True)
    put_unchanged(http, emu)
    assert int(emu.client_attributes(REALM, APP)[EXPIRATION]) == clock.now + 29 * 86400


def test_an_expired_secret_refuses_the_current_and_the_rotated_secret(
    emu: KeycloakEmulator, http: httpx.Client, clock: Clock
) -> None:
    emu.set_rotation_policy(REALM, APP, True, rotated_expiration=60, secret_expiration=60)
    current = emu.client_secret(REALM, APP) or ""
    expires = int(clock.now) + 10
    emu.set_client_attributes(  # a rotated secret outliving the current one: still refused
        REALM,
        APP,
        {
            EXPIRATION: str(expires),
            "client.secret.rotated": "the-rotated-one",
            "client.secret.rotated.expiration.time": str(expires + 100),
        },
    )
    clock.now = expires  # expired only when the expiration time < now
    assert login(http, APP, current) == login(http, APP, "the-rotated-one") == (200, "token")
    clock.now = expires + 1
    assert login(http, APP, current) == login(http, APP, "the-rotated-one") == REFUSED


def test_a_put_after_expiry_rotates_and_keeps_nothing_without_a_rotated_period(
    emu: KeycloakEmulator, http: httpx.Client, clock: Clock
) -> None:
    emu.set_rotation_policy(REALM, APP, True, rotated_expiration=0, secret_expiration=10)
    old = emu.client_secret(REALM, APP) or ""
    put_unchanged(http, emu)
    clock.now += 5
    put_unchanged(http, emu)  # not expired yet: nothing changes
    assert emu.client_secret(REALM, APP) == old
    clock.now += 6
    assert login(http, APP, old) == REFUSED
    put_unchanged(http, emu)
    new = emu.client_secret(REALM, APP) or ""
    attrs = emu.client_attributes(REALM, APP)
    assert new != old
    assert (int(attrs["client.secret.creation.time"]), int(attrs[EXPIRATION])) == (clock.now, clock.now + 10)
    assert emu.rotated_secret(REALM, APP) is None
    assert (login(http, APP, new), login(http, APP, old)) == ((200, "token"), REFUSED)
    assert emu.regenerations(REALM, APP) == 0  # the executor's rotation, not a regenerate call


@pytest.mark.parametrize(("expiration", "rotated"), [(0, 0), (-1, 0), (10, 11)])
def test_a_policy_keycloak_refuses_is_refused(emu: KeycloakEmulator, expiration: int, rotated: int) -> None:
    with pytest.raises(ValueError, match="period"):
        emu.set_rotation_policy(REALM, APP, True, rotated_expiration=rotated, secret_expiration=expiration)
    with pytest.raises(ValueError, match="period"):
        emu.add_client(
            REALM, "other", rotation_policy=True, rotated_expiration=rotated, secret_expiration=expiration
        )
