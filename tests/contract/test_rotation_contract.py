"""Zero-downtime rotation, the same questions to the emulator and to the real Keycloak 26.7.3 (started
with `--features=client-secret-rotation`): what a regenerate keeps under a `secret-rotation` client
policy, GET/DELETE `.../client-secret/rotated`, and the client PUT that tells client-patcher whether
the policy applies (lab/keycloak_real.py provisions one policy per rotated-expiration-period)."""

from __future__ import annotations

import time
from typing import Any

from lab.keycloak_real import EXPIRING_PERIOD, ROTATED_PERIOD
from tests.contract.conftest import Vendor

EXPIRATION = "client.secret.expiration.time"
ROTATED_SINCE = "client.secret.rotated.creation.time"
ROTATED_EXPIRES = "client.secret.rotated.expiration.time"


def client_path(vendor: Vendor, client_id: str) -> str:
    return f"/ameide/clients/{vendor.uuid('ameide', client_id)}"


def attributes(vendor: Vendor, client_id: str) -> dict[str, str]:
    return dict(vendor.api.ok("GET", client_path(vendor, client_id)).get("attributes") or {})


def put_unchanged(vendor: Vendor, client_id: str) -> None:
    """What client-patcher's probe does: PUT the representation back without the secret."""
    rep: dict[str, Any] = vendor.api.ok("GET", client_path(vendor, client_id))
    rep.pop("secret", None)
    rep.pop("access", None)
    vendor.api.ok("PUT", client_path(vendor, client_id), json=rep)


def login(vendor: Vendor, client_id: str, secret: str) -> int:
    reply = vendor.token_reply(
        "ameide", grant_type="client_credentials", client_id=client_id, client_secret=secret
    )
    return reply.status_code


def test_under_the_policy_a_regenerate_keeps_the_old_secret_until_deleted(vendor: Vendor) -> None:
    client, token = "rolling-contract", vendor.token("master", "client-patcher")
    path = client_path(vendor, client)
    rotated_url = f"{path}/client-secret/rotated"
    none = vendor.admin_get(token, rotated_url)
    assert (none.status_code, none.json()) == (404, {"error": "Client does not have a rotated secret"})
    put_unchanged(vendor, client)
    assert EXPIRATION in attributes(vendor, client)  # the policy applies: the probe sees it
    old = vendor.secret("ameide", client)
    before = int(time.time())
    new = vendor.admin_get(token, f"{path}/client-secret", method="POST").json()["value"]
    kept = vendor.admin_get(token, rotated_url)
    assert kept.status_code == 200 and kept.json() == {"type": "secret", "value": old}
    attrs = attributes(vendor, client)
    assert before - 1 <= int(attrs[ROTATED_SINCE]) <= time.time() + 1  # when it became the rotated one
    assert int(attrs[ROTATED_EXPIRES]) - int(attrs[ROTATED_SINCE]) == ROTATED_PERIOD
    assert (login(vendor, client, old), login(vendor, client, new)) == (200, 200)
    put_unchanged(vendor, client)  # a PUT during the window keeps it
    assert login(vendor, client, old) == 200
    closed = vendor.admin_get(token, rotated_url, method="DELETE")
    assert closed.status_code == 204
    assert (login(vendor, client, old), login(vendor, client, new)) == (401, 200)
    assert vendor.admin_get(token, rotated_url).status_code == 404
    assert vendor.admin_get(token, rotated_url, method="DELETE").status_code == 204  # idempotent
    assert not {ROTATED_SINCE, ROTATED_EXPIRES} & set(attributes(vendor, client))


def test_without_the_policy_a_put_clears_the_expiration_and_a_regenerate_keeps_nothing(
    vendor: Vendor,
) -> None:
    client, token = "www-admin", vendor.token("master", "client-patcher")
    path = client_path(vendor, client)
    put_unchanged(vendor, client)
    assert EXPIRATION not in attributes(vendor, client)
    vendor.admin_get(token, f"{path}/client-secret", method="POST")
    assert vendor.admin_get(token, f"{path}/client-secret/rotated").status_code == 404


def test_a_policy_keeping_nothing_applies_but_keeps_no_rotated_secret(vendor: Vendor) -> None:
    client, token = "rolling-nothing-kept", vendor.token("master", "client-patcher")
    path = client_path(vendor, client)
    put_unchanged(vendor, client)
    assert EXPIRATION in attributes(vendor, client)
    old = vendor.secret("ameide", client)
    vendor.admin_get(token, f"{path}/client-secret", method="POST")
    assert vendor.admin_get(token, f"{path}/client-secret/rotated").status_code == 404
    assert login(vendor, client, old) == 401


def test_client_policies_need_view_realm_which_manage_clients_lacks(vendor: Vendor) -> None:
    token = vendor.token("master", "client-patcher")  # query/view/manage-clients
    for part in ("policies", "profiles"):
        reply = vendor.admin_get(token, f"/ameide/client-policies/{part}")
        assert (reply.status_code, reply.json()) == (403, {"error": "HTTP 403 Forbidden"})
    policies = vendor.api.ok("GET", "/ameide/client-policies/policies")["policies"]
    profiles = vendor.api.ok("GET", "/ameide/client-policies/profiles")["profiles"]
    assert any(p["enabled"] for p in policies)
    periods = {
        e["configuration"]["rotated-expiration-period"]
        for p in profiles
        for e in p["executors"]
        if e["executor"] == "secret-rotation"
    }
    assert periods and periods <= {0, ROTATED_PERIOD, EXPIRING_PERIOD}
