"""Keycloak 26 behaviours the jobs rely on, asserted identically against the emulator and the real server.

The expected values were read off Keycloak 26.7.3 (`keycloak-quarkus-dist`, `kc.sh start-dev`).
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from tests.contract.conftest import Vendor

INVALID_CREDENTIALS = "Invalid client or Invalid client credentials"
SECRET_LENGTH = 86  # SecretGenerator: 512 random bits as alphanumerics


def oauth(vendor: Vendor, realm: str, **form: str) -> tuple[int, dict[str, str]]:
    reply = vendor.token_reply(realm, **form)
    return reply.status_code, reply.json()


# -- token endpoint ---------------------------------------------------------------------------------------
def test_wrong_secret_is_unauthorized_client(vendor: Vendor) -> None:
    form = {"grant_type": "client_credentials", "client_id": "client-patcher", "client_secret": "wrong"}
    assert oauth(vendor, "master", **form) == (
        401,
        {"error": "unauthorized_client", "error_description": INVALID_CREDENTIALS},
    )


def test_unknown_or_missing_client_is_invalid_client(vendor: Vendor) -> None:
    expected = (401, {"error": "invalid_client", "error_description": INVALID_CREDENTIALS})
    form = {"grant_type": "client_credentials", "client_id": "ghost", "client_secret": "x"}
    assert oauth(vendor, "master", **form) == expected
    assert oauth(vendor, "master", grant_type="client_credentials") == expected


def test_public_client_cannot_use_client_credentials(vendor: Vendor) -> None:
    assert oauth(vendor, "ameide", grant_type="client_credentials", client_id="spa") == (
        401,
        {
            "error": "unauthorized_client",
            "error_description": "Public client not allowed to retrieve service account",
        },
    )


def test_client_without_service_account(vendor: Vendor) -> None:
    form = {"client_id": "www", "client_secret": vendor.secret("ameide", "www")}
    assert oauth(vendor, "ameide", grant_type="client_credentials", **form) == (
        401,
        {
            "error": "unauthorized_client",
            "error_description": "Client not enabled to retrieve service account",
        },
    )
    assert oauth(vendor, "ameide", grant_type="password", username="a", password="b", **form) == (
        400,
        {"error": "unauthorized_client", "error_description": "Client not allowed for direct access grants"},
    )


def test_bearer_only_client_authenticates_first_then_is_refused(vendor: Vendor) -> None:
    right = vendor.secret("partners", "api")
    form = {"grant_type": "client_credentials", "client_id": "api"}
    assert oauth(vendor, "partners", client_secret=right, **form) == (
        400,
        {"error": "invalid_client", "error_description": "Bearer-only not allowed"},
    )
    assert oauth(vendor, "partners", client_secret="wrong", **form) == (
        401,
        {"error": "unauthorized_client", "error_description": INVALID_CREDENTIALS},
    )


def test_client_jwt_client_with_a_secret(vendor: Vendor) -> None:
    form = {"grant_type": "client_credentials", "client_id": "jwt-app", "client_secret": "x"}
    assert oauth(vendor, "partners", **form) == (
        400,
        {"error": "invalid_client", "error_description": "Parameter client_assertion_type is missing"},
    )


def test_missing_realm_on_the_token_endpoint(vendor: Vendor) -> None:
    form = {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"}
    assert oauth(vendor, "nope", **form) == (404, {"error": "Realm does not exist"})


def test_password_grant_errors(vendor: Vendor) -> None:
    base = {"grant_type": "password", "client_id": "admin-cli"}
    assert oauth(vendor, "master", username=vendor.api._username, password="wrong", **base) == (
        400,
        {"error": "invalid_grant", "error_description": "Invalid user credentials"},
    )
    assert oauth(vendor, "master", **base) == (
        401,
        {"error": "invalid_request", "error_description": "Missing parameter: username"},
    )


def test_grant_type_errors(vendor: Vendor) -> None:
    assert oauth(vendor, "master", client_id="admin-cli") == (
        400,
        {"error": "invalid_request", "error_description": "Missing form parameter: grant_type"},
    )
    assert oauth(vendor, "master", grant_type="foo", client_id="admin-cli") == (
        400,
        {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"},
    )


def lifetime(reply: dict[str, Any]) -> tuple[int, int]:
    """(lifespan from the token's own claims, refresh_expires_in); `expires_in` is `exp - now`, so it
    may read one second less on a busy server."""
    claims = jwt.decode(reply["access_token"], options={"verify_signature": False})
    lifespan = int(claims["exp"]) - int(claims["iat"])
    assert reply["expires_in"] in (lifespan - 1, lifespan)
    return lifespan, reply["refresh_expires_in"]


def test_token_lifetimes(vendor: Vendor) -> None:
    master = vendor.token_reply(
        "master",
        grant_type="client_credentials",
        client_id="client-patcher",
        client_secret=vendor.secret("master", "client-patcher"),
    ).json()
    assert lifetime(master) == (60, 0)
    assert "refresh_token" not in master and "session_state" not in master
    local = vendor.token_reply(
        "ameide",
        grant_type="client_credentials",
        client_id="ameide-patcher",
        client_secret=vendor.secret("ameide", "ameide-patcher"),
    ).json()
    assert lifetime(local) == (300, 0)
    password = vendor.token_reply(
        "master",
        grant_type="password",
        client_id="admin-cli",
        username=vendor.api._username,
        password=vendor.api._password,
    ).json()
    assert lifetime(password)[0] == 60
    assert password["refresh_expires_in"] in (1799, 1800)  # SSO idle 30 min, counted from now
    assert password["refresh_token"] and password["session_state"]


# -- Admin API: lookups and rights ----------------------------------------------------------------------
def client_ids(vendor: Vendor, token: str, realm: str, **params: str) -> tuple[int, list[str]]:
    reply = vendor.admin_get(token, f"/{realm}/clients", params=params)
    body = reply.json()
    return reply.status_code, [c["clientId"] for c in body] if isinstance(body, list) else body


def test_client_id_lookup_is_exact_and_search_is_a_substring_match(vendor: Vendor) -> None:
    token = vendor.token("master", "client-patcher")
    assert client_ids(vendor, token, "ameide", clientId="www") == (200, ["www"])
    assert client_ids(vendor, token, "ameide", clientId="WWW") == (200, [])
    assert client_ids(vendor, token, "ameide", clientId="ghost") == (200, [])
    assert client_ids(vendor, token, "ameide", clientId="www", search="true") == (200, ["www", "www-admin"])
    assert client_ids(vendor, token, "ameide", clientId="platform-app", search="true") == (
        200,
        ["platform-app", "platform-app-master", "platform-app-master-v2"],
    )


def test_a_paged_listing_carries_what_the_exact_lookup_carries(vendor: Vendor) -> None:
    """client-patcher takes a realm's clients from `?first=&max=` pages when the catalog names many of
    them: each page item is the representation `?clientId=` returns (secret included for a
    confidential client, none for a public or bearer-only one), and the pages tile the listing."""
    token = vendor.token("master", "client-patcher")
    everything = vendor.admin_get(token, "/ameide/clients").json()
    pages = [
        vendor.admin_get(token, "/ameide/clients", params={"first": str(first), "max": "2"}).json()
        for first in range(0, len(everything) + 2, 2)
    ]
    assert [c["clientId"] for page in pages for c in page] == [c["clientId"] for c in everything]
    listed = {c["clientId"]: c for page in pages for c in page}
    for client_id in ("www", "spa"):
        (exact,) = vendor.admin_get(token, "/ameide/clients", params={"clientId": client_id}).json()
        assert listed[client_id] == exact
    assert listed["www"]["secret"] == vendor.secret("ameide", "www")
    assert "secret" not in listed["spa"]


def test_a_caller_without_view_rights_gets_an_empty_list(vendor: Vendor) -> None:
    token = vendor.token("master", "querier")  # query-clients only
    assert client_ids(vendor, token, "ameide", clientId="www") == (200, [])
    assert client_ids(vendor, token, "ameide", clientId="www", search="true") == (200, [])
    assert client_ids(vendor, token, "ameide") == (200, [])


def test_a_caller_without_any_role_is_forbidden(vendor: Vendor) -> None:
    token = vendor.token("master", "nobody")
    reply = vendor.admin_get(token, "/ameide/clients", params={"clientId": "www"})
    assert (reply.status_code, reply.json()) == (403, {"error": "HTTP 403 Forbidden"})
    www = vendor.uuid("ameide", "www")
    reply = vendor.admin_get(token, f"/ameide/clients/{www}")
    assert (reply.status_code, reply.json()) == (403, {"error": "HTTP 403 Forbidden"})


def test_view_clients_reads_secrets_but_cannot_regenerate(vendor: Vendor) -> None:
    token = vendor.token("master", "viewer")
    www = vendor.uuid("ameide", "www")
    read = vendor.admin_get(token, f"/ameide/clients/{www}/client-secret")
    assert read.status_code == 200 and read.json()["value"] == vendor.secret("ameide", "www")
    listed = vendor.admin_get(token, "/ameide/clients", params={"clientId": "www"}).json()
    assert listed[0]["secret"] == vendor.secret("ameide", "www")  # not masked up to 26.7
    regenerate = vendor.admin_get(token, f"/ameide/clients/{www}/client-secret", method="POST")
    assert (regenerate.status_code, regenerate.json()) == (403, {"error": "HTTP 403 Forbidden"})


def test_realm_local_service_account_administers_only_its_realm(vendor: Vendor) -> None:
    token = vendor.token("ameide", "ameide-patcher")
    assert client_ids(vendor, token, "ameide", clientId="www") == (200, ["www"])
    for realm in ("partners", "master"):
        reply = vendor.admin_get(token, f"/{realm}/clients", params={"clientId": "www"})
        assert (reply.status_code, reply.json()) == (403, {"error": "HTTP 403 Forbidden"})


def test_error_bodies_401_404_409(vendor: Vendor) -> None:
    token = vendor.token("master", "client-patcher")
    for bad in (None, "garbage"):
        reply = vendor.admin_get(bad, "/ameide/clients")
        assert (reply.status_code, reply.json()) == (401, {"error": "HTTP 401 Unauthorized"})
        assert "www-authenticate" not in reply.headers
    missing_realm = vendor.admin_get(token, "/nope/clients", params={"clientId": "x"})
    assert (missing_realm.status_code, missing_realm.json()) == (404, {"error": "Realm not found."})
    unknown = vendor.admin_get(token, "/ameide/clients/00000000-0000-0000-0000-000000000000")
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Could not find client"})
    duplicate = vendor.admin_get(token, "/ameide/clients", method="POST", json={"clientId": "www"})
    assert (duplicate.status_code, duplicate.json()) == (409, {"errorMessage": "Client www already exists"})
    www = vendor.uuid("ameide", "www")
    rotated = vendor.admin_get(token, f"/ameide/clients/{www}/client-secret/rotated")
    assert (rotated.status_code, rotated.json()) == (404, {"error": "Client does not have a rotated secret"})


# -- client secrets ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("realm", "client_id", "has_value"),
    [("partners", "partner-api", True), ("ameide", "spa", False), ("partners", "api", True)],
    ids=["confidential", "public", "bearer-only"],
)
def test_client_secret_get_and_post(vendor: Vendor, realm: str, client_id: str, has_value: bool) -> None:
    token = vendor.token("master", "client-patcher")
    uuid_ = vendor.uuid(realm, client_id)
    read = vendor.admin_get(token, f"/{realm}/clients/{uuid_}/client-secret")
    assert read.status_code == 200
    body = read.json()
    assert body["type"] == "secret"
    assert ("value" in body) is has_value
    if has_value:
        assert len(body["value"]) == SECRET_LENGTH and body["value"].isalnum()
    # Keycloak regenerates whatever the client type (the job must gate public/bearer-only itself).
    regenerated = vendor.admin_get(token, f"/{realm}/clients/{uuid_}/client-secret", method="POST")
    assert regenerated.status_code == 200
    fresh = regenerated.json()["value"]
    assert len(fresh) == SECRET_LENGTH and fresh.isalnum()
    assert fresh != body.get("value")
    assert vendor.api.client_secret(realm, client_id) == fresh
