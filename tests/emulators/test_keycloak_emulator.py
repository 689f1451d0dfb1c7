"""The Keycloak emulator behaves like Keycloak 26, proven with the independent client python-keycloak and with
plain HTTP. Secrets here are random test values; assertions compare them without printing them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakGetError

from emulators.keycloak import KeycloakEmulator

REALM = "ameide"
PATCHER = "client-patcher"
TARGET = "platform-app-master"


@pytest.fixture
def emu() -> Iterator[KeycloakEmulator]:
    emulator = KeycloakEmulator()
    emulator.add_realm(REALM)
    emulator.add_client(
        REALM, PATCHER, service_account=True, service_account_roles=["view-clients", "manage-clients"]
    )
    emulator.add_client(REALM, TARGET)
    emulator.add_user("master", "admin", "admin-pw", realm_roles=["admin"])
    with emulator:
        yield emulator


@pytest.fixture
def http(emu: KeycloakEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.url, timeout=5) as client:
        yield client


def token_response(http: httpx.Client, realm: str, **form: str) -> httpx.Response:
    return http.post(f"/realms/{realm}/protocol/openid-connect/token", data=form)


def client_token(http: httpx.Client, emu: KeycloakEmulator, client_id: str = PATCHER) -> str:
    secret = emu.client_secret(REALM, client_id) or ""
    response = token_response(
        http, REALM, grant_type="client_credentials", client_id=client_id, client_secret=secret
    )
    assert response.status_code == 200
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def secret_matches(value: object, expected: str | None) -> bool:
    return isinstance(value, str) and value == expected


# -- python-keycloak, an independent client --------------------------------------------------------------
def test_python_keycloak_client_credentials_reads_and_regenerates_a_secret(emu: KeycloakEmulator) -> None:
    admin = KeycloakAdmin(
        server_url=f"{emu.url}/",
        realm_name=REALM,
        client_id=PATCHER,
        client_secret_key=emu.client_secret(REALM, PATCHER),
    )
    uuid = admin.get_client_id(TARGET)
    assert uuid == emu.client_uuid(REALM, TARGET)
    assert secret_matches(admin.get_client_secrets(uuid)["value"], emu.client_secret(REALM, TARGET))

    before = emu.client_secret(REALM, TARGET)
    regenerated = admin.generate_client_secrets(uuid)["value"]
    assert secret_matches(regenerated, emu.client_secret(REALM, TARGET))
    assert regenerated != before
    assert len(regenerated) == 86 and regenerated.isalnum()
    assert emu.regenerations(REALM, TARGET) == 1
    assert admin.get_client_id("absent-client") is None


def test_python_keycloak_master_admin_password_grant_manages_another_realm(emu: KeycloakEmulator) -> None:
    admin = KeycloakAdmin(
        server_url=f"{emu.url}/",
        username="admin",
        password="admin-pw",
        realm_name=REALM,
        user_realm_name="master",
    )
    uuid = admin.get_client_id(TARGET)
    assert secret_matches(admin.get_client_secrets(uuid)["value"], emu.client_secret(REALM, TARGET))
    admin.generate_client_secrets(uuid)
    assert emu.regenerations(REALM, TARGET) == 1
    assert admin.get_client(uuid)["clientId"] == TARGET


def test_python_keycloak_sees_403_for_a_service_account_without_roles(emu: KeycloakEmulator) -> None:
    emu.add_client(REALM, "nobody", service_account=True)
    admin = KeycloakAdmin(
        server_url=f"{emu.url}/",
        realm_name=REALM,
        client_id="nobody",
        client_secret_key=emu.client_secret(REALM, "nobody"),
    )
    with pytest.raises(KeycloakGetError) as caught:
        admin.get_client_id(TARGET)
    assert caught.value.response_code == 403


# -- token endpoint -------------------------------------------------------------------------------------
def test_client_credentials_token_is_a_signed_jwt_without_refresh_token(
    emu: KeycloakEmulator, http: httpx.Client
) -> None:
    secret = emu.client_secret(REALM, PATCHER) or ""
    response = token_response(
        http, REALM, grant_type="client_credentials", client_id=PATCHER, client_secret=secret
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert "refresh_token" not in body
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["refresh_expires_in"] == 0

    jwks = http.get(f"/realms/{REALM}/protocol/openid-connect/certs").json()
    key = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(body["access_token"], key, algorithms=["RS256"], options={"verify_aud": False})
    assert claims["iss"] == f"{emu.url}/realms/{REALM}"
    assert claims["azp"] == PATCHER
    assert claims["typ"] == "Bearer"
    assert claims["exp"] - claims["iat"] == 300
    assert sorted(claims["resource_access"]["realm-management"]["roles"]) == [
        "manage-clients",
        "view-clients",
    ]


def test_http_basic_client_authentication_works(emu: KeycloakEmulator, http: httpx.Client) -> None:
    secret = emu.client_secret(REALM, PATCHER) or ""
    response = http.post(
        f"/realms/{REALM}/protocol/openid-connect/token",
        data={"grant_type": "client_credentials"},
        auth=(PATCHER, secret),
    )
    assert response.status_code == 200


def test_master_password_grant_lives_60_seconds_and_refreshes(http: httpx.Client) -> None:
    response = token_response(
        http, "master", grant_type="password", client_id="admin-cli", username="admin", password="admin-pw"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 60
    assert body["refresh_expires_in"] == 1800
    refreshed = token_response(
        http, "master", grant_type="refresh_token", client_id="admin-cli", refresh_token=body["refresh_token"]
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] != body["access_token"]


def test_token_endpoint_error_bodies(emu: KeycloakEmulator, http: httpx.Client) -> None:
    emu.add_client(REALM, "no-sa")
    emu.add_client(REALM, "browser-app", public=True)
    cases = [
        (
            token_response(http, "nope", grant_type="client_credentials", client_id="x", client_secret="y"),
            404,
            {"error": "Realm does not exist"},
        ),
        (
            token_response(
                http, REALM, grant_type="client_credentials", client_id="ghost", client_secret="y"
            ),
            401,
            {"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"},
        ),
        (
            token_response(
                http, REALM, grant_type="client_credentials", client_id=PATCHER, client_secret="bad"
            ),
            401,
            {
                "error": "unauthorized_client",
                "error_description": "Invalid client or Invalid client credentials",
            },
        ),
        (
            token_response(
                http,
                REALM,
                grant_type="client_credentials",
                client_id="no-sa",
                client_secret=emu.client_secret(REALM, "no-sa") or "",
            ),
            401,
            {
                "error": "unauthorized_client",
                "error_description": "Client not enabled to retrieve service account",
            },
        ),
        (
            token_response(http, REALM, grant_type="client_credentials", client_id="browser-app"),
            401,
            {
                "error": "unauthorized_client",
                "error_description": "Public client not allowed to retrieve service account",
            },
        ),
        (
            token_response(
                http, "master", grant_type="password", client_id="admin-cli", username="admin", password="no"
            ),
            400,
            {"error": "invalid_grant", "error_description": "Invalid user credentials"},
        ),
        (
            token_response(
                http, REALM, grant_type="password", client_id="browser-app", username="a", password="b"
            ),
            400,
            {
                "error": "unauthorized_client",
                "error_description": "Client not allowed for direct access grants",
            },
        ),
        (
            token_response(http, REALM, grant_type="client_credentials", client_secret="x"),
            401,
            {"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"},
        ),
        (
            token_response(http, REALM, client_id=PATCHER),
            400,
            {"error": "invalid_request", "error_description": "Missing form parameter: grant_type"},
        ),
        (
            token_response(http, REALM, grant_type="magic", client_id=PATCHER),
            400,
            {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"},
        ),
    ]
    for response, status, body in cases:
        assert (response.status_code, response.json()) == (status, body)


def test_refresh_after_the_refresh_token_expired_is_token_not_active() -> None:
    clock = {"now": time.time()}
    emulator = KeycloakEmulator(clock=lambda: clock["now"])
    emulator.add_user("master", "admin", "admin-pw", realm_roles=["admin"])
    with emulator, httpx.Client(base_url=emulator.url) as client:
        body = token_response(
            client,
            "master",
            grant_type="password",
            client_id="admin-cli",
            username="admin",
            password="admin-pw",
        ).json()
        clock["now"] += 1801
        response = token_response(
            client,
            "master",
            grant_type="refresh_token",
            client_id="admin-cli",
            refresh_token=body["refresh_token"],
        )
        assert response.status_code == 400
        assert response.json() == {"error": "invalid_grant", "error_description": "Token is not active"}


# -- admin API ------------------------------------------------------------------------------------------
def test_client_id_lookup_is_exact_and_search_is_a_case_insensitive_substring(
    emu: KeycloakEmulator, http: httpx.Client
) -> None:
    for name in ("app", "app-admin", "my-app"):
        emu.add_client(REALM, name)
    headers = bearer(client_token(http, emu))
    path = f"/admin/realms/{REALM}/clients"

    exact = http.get(path, params={"clientId": "app"}, headers=headers).json()
    assert [c["clientId"] for c in exact] == ["app"]

    found = http.get(path, params={"clientId": "APP", "search": "true"}, headers=headers).json()
    assert [c["clientId"] for c in found] == ["app", "app-admin", "my-app", TARGET]

    page = http.get(path, params={"clientId": "app", "search": "true", "first": 1, "max": 1}, headers=headers)
    assert [c["clientId"] for c in page.json()] == ["app-admin"]

    missing = http.get(path, params={"clientId": "APP"}, headers=headers)
    assert (missing.status_code, missing.json()) == (200, [])


def test_expired_token_is_401_without_a_challenge() -> None:
    emulator = KeycloakEmulator(token_lifespan=1)
    emulator.add_realm(REALM)
    emulator.add_client(REALM, PATCHER, service_account=True, service_account_roles=["manage-clients"])
    with emulator, httpx.Client(base_url=emulator.url) as client:
        headers = bearer(client_token(client, emulator))
        assert client.get(f"/admin/realms/{REALM}/clients", headers=headers).status_code == 200
        time.sleep(2.1)
        response = client.get(f"/admin/realms/{REALM}/clients", headers=headers)
        assert response.status_code == 401
        assert "www-authenticate" not in response.headers
        assert response.json() == {"error": "HTTP 401 Unauthorized"}


def test_foreign_or_missing_tokens_are_401(emu: KeycloakEmulator, http: httpx.Client) -> None:
    other = KeycloakEmulator()
    other.add_realm(REALM)
    other.add_client(REALM, PATCHER, service_account=True, service_account_roles=["manage-clients"])
    with other, httpx.Client(base_url=other.url) as client:
        foreign = client_token(client, other)
    for headers in ({}, bearer("not-a-jwt"), bearer(foreign)):
        response = http.get(f"/admin/realms/{REALM}/clients", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "HTTP 401 Unauthorized"}


def test_role_requirements(emu: KeycloakEmulator, http: httpx.Client) -> None:
    emu.add_client(REALM, "nobody", service_account=True)
    emu.add_client(REALM, "lister", service_account=True, service_account_roles=["query-clients"])
    emu.add_client(REALM, "viewer", service_account=True, service_account_roles=["view-clients"])
    uuid = emu.client_uuid(REALM, TARGET)
    clients = f"/admin/realms/{REALM}/clients"

    nobody = http.get(clients, headers=bearer(client_token(http, emu, "nobody")))
    assert (nobody.status_code, nobody.json()) == (403, {"error": "HTTP 403 Forbidden"})

    listed = http.get(clients, params={"clientId": TARGET}, headers=bearer(client_token(http, emu, "lister")))
    assert (listed.status_code, listed.json()) == (200, [])  # query-clients alone sees nothing

    viewer = bearer(client_token(http, emu, "viewer"))
    rep = http.get(f"{clients}/{uuid}", headers=viewer).json()
    assert rep["secret"] == "**********"
    assert http.get(f"{clients}/{uuid}/client-secret", headers=viewer).status_code == 403
    assert http.post(f"{clients}/{uuid}/client-secret", headers=viewer).status_code == 403


def test_view_clients_reads_secrets_in_keycloak_before_26_8() -> None:
    emulator = KeycloakEmulator(secret_read_requires_manage=False)
    emulator.add_realm(REALM)
    emulator.add_client(REALM, "viewer", service_account=True, service_account_roles=["view-clients"])
    uuid = emulator.add_client(REALM, TARGET)
    with emulator, httpx.Client(base_url=emulator.url) as client:
        headers = bearer(client_token(client, emulator, "viewer"))
        response = client.get(f"/admin/realms/{REALM}/clients/{uuid}/client-secret", headers=headers)
        assert response.status_code == 200
        assert secret_matches(response.json()["value"], emulator.client_secret(REALM, TARGET))


def test_token_of_one_realm_cannot_manage_another(emu: KeycloakEmulator, http: httpx.Client) -> None:
    emu.add_realm("other")
    response = http.get("/admin/realms/other/clients", headers=bearer(client_token(http, emu)))
    assert (response.status_code, response.json()) == (403, {"error": "HTTP 403 Forbidden"})


def test_admin_not_found_bodies(emu: KeycloakEmulator, http: httpx.Client) -> None:
    headers = bearer(client_token(http, emu))
    realm = http.get("/admin/realms/nope/clients", headers=headers)
    assert (realm.status_code, realm.json()) == (404, {"error": "Realm not found."})
    client = http.get(f"/admin/realms/{REALM}/clients/0000/client-secret", headers=headers)
    assert (client.status_code, client.json()) == (404, {"error": "Could not find client"})


def test_regenerate_without_rotation_policy_kills_the_old_secret(
    emu: KeycloakEmulator, http: httpx.Client
) -> None:
    emu.add_client(REALM, "svc", service_account=True)
    old = emu.client_secret(REALM, "svc") or ""
    headers = bearer(client_token(http, emu))
    rotated = f"/admin/realms/{REALM}/clients/{emu.client_uuid(REALM, 'svc')}/client-secret/rotated"
    assert http.post(rotated.removesuffix("/rotated"), headers=headers).status_code == 200

    missing = http.get(rotated, headers=headers)
    assert (missing.status_code, missing.json()) == (404, {"error": "Client does not have a rotated secret"})
    stale = token_response(http, REALM, grant_type="client_credentials", client_id="svc", client_secret=old)
    assert stale.status_code == 401


def test_rotation_policy_keeps_the_previous_secret_usable(emu: KeycloakEmulator, http: httpx.Client) -> None:
    emu.add_client(REALM, "svc", service_account=True, rotation_policy=True)
    old = emu.client_secret(REALM, "svc") or ""
    headers = bearer(client_token(http, emu))
    secret_path = f"/admin/realms/{REALM}/clients/{emu.client_uuid(REALM, 'svc')}/client-secret"
    new = http.post(secret_path, headers=headers).json()["value"]

    rotated = http.get(f"{secret_path}/rotated", headers=headers)
    assert rotated.status_code == 200
    assert secret_matches(rotated.json()["value"], old)
    for secret in (old, new):
        form = {"grant_type": "client_credentials", "client_id": "svc", "client_secret": secret}
        assert token_response(http, REALM, **form).status_code == 200

    assert http.delete(f"{secret_path}/rotated", headers=headers).status_code == 204
    assert http.get(f"{secret_path}/rotated", headers=headers).status_code == 404


def test_regenerate_works_on_a_public_client_whose_representation_has_no_secret(
    emu: KeycloakEmulator, http: httpx.Client
) -> None:
    uuid = emu.add_client(REALM, "spa", public=True)
    headers = bearer(client_token(http, emu))
    rep = http.get(f"/admin/realms/{REALM}/clients/{uuid}", headers=headers).json()
    assert rep["publicClient"] is True
    assert "secret" not in rep
    assert http.get(f"/admin/realms/{REALM}/clients/{uuid}/client-secret", headers=headers).json() == {
        "type": "secret"
    }
    response = http.post(f"/admin/realms/{REALM}/clients/{uuid}/client-secret", headers=headers)
    assert response.status_code == 200
    assert emu.client_secret(REALM, "spa") is not None


def test_a_bearer_only_client_gets_a_generated_secret_a_public_one_none() -> None:
    emulator = KeycloakEmulator()
    emulator.add_realm(REALM)
    emulator.add_client(REALM, "api", bearer_only=True)
    emulator.add_client(REALM, "spa", public=True)
    secret = emulator.client_secret(REALM, "api")
    assert secret is not None and len(secret) == 86 and secret.isalnum()
    assert emulator.client_secret(REALM, "spa") is None


def test_create_client_returns_location_and_409_on_duplicate(
    emu: KeycloakEmulator, http: httpx.Client
) -> None:
    headers = bearer(client_token(http, emu))
    created = http.post(f"/admin/realms/{REALM}/clients", json={"clientId": "new-app"}, headers=headers)
    assert created.status_code == 201
    assert created.headers["location"].endswith(f"/clients/{emu.client_uuid(REALM, 'new-app')}")
    assert emu.client_secret(REALM, "new-app") is not None
    duplicate = http.post(f"/admin/realms/{REALM}/clients", json={"clientId": "new-app"}, headers=headers)
    assert (duplicate.status_code, duplicate.json()) == (
        409,
        {"errorMessage": "Client new-app already exists"},
    )


def test_out_of_band_secret_change_is_what_the_api_returns(emu: KeycloakEmulator, http: httpx.Client) -> None:
    emu.set_secret(REALM, TARGET, "changed-by-hand")
    uuid = emu.client_uuid(REALM, TARGET)
    response = http.get(
        f"/admin/realms/{REALM}/clients/{uuid}/client-secret", headers=bearer(client_token(http, emu))
    )
    assert secret_matches(response.json()["value"], "changed-by-hand")


def test_injected_fault_uses_keycloak_5xx_body(emu: KeycloakEmulator, http: httpx.Client) -> None:
    emu.fail_next(1, 503, retry_after=2, path_prefix="/admin/")
    headers = bearer(client_token(http, emu))
    failed = http.get(f"/admin/realms/{REALM}/clients", headers=headers)
    assert failed.status_code == 503
    assert failed.headers["retry-after"] == "2"
    assert failed.json() == {
        "error": "unknown_error",
        "error_description": "For more on this error consult the server log.",
    }
    assert http.get(f"/admin/realms/{REALM}/clients", headers=headers).status_code == 200


# -- seed and standalone mode ---------------------------------------------------------------------------
SEED = {
    "tokenLifespan": 30,
    "realms": [
        {
            "realm": "master",
            "users": [{"username": "root", "credentials": [{"value": "pw"}], "realmRoles": ["admin"]}],
        },
        {
            "realm": REALM,
            "clients": [
                {
                    "clientId": PATCHER,
                    "secret": "seeded-secret",
                    "serviceAccountsEnabled": True,
                    "serviceAccountRoles": ["manage-clients"],
                },
                {"clientId": TARGET, "secretRotation": True},
            ],
            "users": [
                {"username": "ops", "password": "ops", "clientRoles": {"realm-management": ["view-clients"]}}
            ],
        },
    ],
}


def test_standalone_mode_serves_a_seed(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    repo = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.keycloak", "--port", "0", "--seed", str(seed)],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        with httpx.Client(base_url=url, timeout=5) as client:
            form = {
                "grant_type": "client_credentials",
                "client_id": PATCHER,
                "client_secret": "seeded-secret",
            }
            body = token_response(client, REALM, **form).json()
            assert body["expires_in"] == 30
            found = client.get(
                f"/admin/realms/{REALM}/clients",
                params={"clientId": TARGET},
                headers=bearer(body["access_token"]),
            )
            assert [c["clientId"] for c in found.json()] == [TARGET]
    finally:
        process.terminate()
        process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


# -- realm import (the RealmRepresentation docker-compose.test.yml gives real Keycloak) ---------------
REALM_IMPORT = Path(__file__).resolve().parents[2] / "compose" / "keycloak" / "ameide-realm.json"


def test_the_compose_realm_import_grants_its_service_account_what_python_keycloak_needs() -> None:
    realm = json.loads(REALM_IMPORT.read_text(encoding="utf-8"))
    clients = {c["clientId"]: c for c in realm["clients"]}
    emulator = KeycloakEmulator()
    emulator.import_realm(realm, str(REALM_IMPORT))
    with emulator:
        admin = KeycloakAdmin(
            server_url=f"{emulator.url}/",
            realm_name=realm["realm"],
            client_id="secret-origin",
            client_secret_key=clients["secret-origin"]["secret"],
        )
        platform = admin.get_client(admin.get_client_id("platform-app-master"))
        assert secret_matches(
            admin.get_client_secrets(platform["id"])["value"], clients["platform-app-master"]["secret"]
        )
        spa = admin.get_client(admin.get_client_id("public-spa"))
        assert spa["publicClient"] is True and "secret" not in spa
        jwt_client = admin.get_client(admin.get_client_id("jwt-client"))
        assert jwt_client["clientAuthenticatorType"] == "client-jwt"
        assert jwt_client["serviceAccountsEnabled"] is True
        assert (
            admin.get_client(admin.get_client_id("secret-origin"))["name"] == clients["secret-origin"]["name"]
        )
    # Keycloak generates a secret for a confidential client imported without one.
    assert emulator.client_secret(realm["realm"], "jwt-client")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"clients": [{"clientId": "a", "attributes": {"x": "y"}}]}, "clients[0] (a): fields the emulator"),
        ({"clients": [{"clientId": "a", "protocol": "saml"}]}, "only openid-connect clients"),
        ({"users": [{"username": "service-account-a", "serviceAccountClientId": "a"}]}, "no service account"),
        ({"identityProviders": []}, "fields the emulator does not honour: identityProviders"),
        ({"enabled": False}, "disabled realms are not emulated"),
    ],
)
def test_a_realm_import_the_emulator_cannot_honour_fails_loudly(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        KeycloakEmulator().import_realm({"realm": "r", **change}, "r.json")
