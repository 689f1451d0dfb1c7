"""Secret EXPIRY under a `secret-rotation` client policy, the same questions to the emulator and to the
real Keycloak 26.7.3: `expiring-contract` falls under a policy whose expiration-period and
rotated-expiration-period are EXPIRING_PERIOD seconds (lab/keycloak_real.py). A PUT sets the expiration;
once it has passed, the secret is refused; the next PUT rotates it (a new secret, the expired one kept
as the rotated secret)."""

from __future__ import annotations

import time

from lab.keycloak_real import EXPIRING_PERIOD
from tests.contract.conftest import Vendor
from tests.contract.test_rotation_contract import attributes, client_path, put_unchanged

CLIENT = "expiring-contract"
CREATED = "client.secret.creation.time"
EXPIRATION = "client.secret.expiration.time"
ROTATED_SINCE = "client.secret.rotated.creation.time"
ROTATED_EXPIRES = "client.secret.rotated.expiration.time"


def login(vendor: Vendor, secret: str) -> tuple[int, object]:
    reply = vendor.token_reply(
        "ameide", grant_type="client_credentials", client_id=CLIENT, client_secret=secret
    )
    return reply.status_code, reply.json() if reply.status_code != 200 else "token"


def current_secret(vendor: Vendor) -> str:
    secret = vendor.api.client_secret("ameide", CLIENT)
    assert secret is not None
    return secret


def sleep_past(expiration: int) -> None:
    """Keycloak refuses once expiration < now in whole seconds: wait until now >= expiration + 1."""
    time.sleep(max(0.0, expiration + 1.05 - time.time()))


def test_an_expired_secret_is_refused_until_a_put_rotates_it(vendor: Vendor) -> None:
    before, old = int(time.time()), current_secret(vendor)
    put_unchanged(vendor, CLIENT)  # no expiration yet: the policy sets one and keeps the secret
    assert current_secret(vendor) == old
    attrs = attributes(vendor, CLIENT)
    expiration = int(attrs[EXPIRATION])
    assert before + EXPIRING_PERIOD - 1 <= expiration <= time.time() + EXPIRING_PERIOD + 1
    assert login(vendor, old) == (200, "token")

    sleep_past(expiration)
    refused = (
        401,
        {"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"},
    )
    assert login(vendor, old) == refused
    assert current_secret(vendor) == old  # still the stored secret: nothing rotates it on its own

    rotated_at = int(time.time())
    put_unchanged(vendor, CLIENT)  # the unchanged representation: the executor rotates the expired secret
    new = current_secret(vendor)
    attrs = attributes(vendor, CLIENT)
    assert new != old
    assert rotated_at - 1 <= int(attrs[CREATED]) <= time.time() + 1
    assert int(attrs[EXPIRATION]) == int(attrs[CREATED]) + EXPIRING_PERIOD > time.time()
    assert int(attrs[ROTATED_SINCE]) == int(attrs[CREATED])
    assert int(attrs[ROTATED_EXPIRES]) == int(attrs[ROTATED_SINCE]) + EXPIRING_PERIOD
    rotated = vendor.api.ok("GET", f"{client_path(vendor, CLIENT)}/client-secret/rotated")
    assert rotated == {"type": "secret", "value": old}
    assert login(vendor, new) == (200, "token")
    assert login(vendor, old) == (200, "token")  # the expired secret logs in again, as the rotated one
