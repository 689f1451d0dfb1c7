"""The Entra ID + Key Vault emulator behaves like the services as seen by the official SDK (azure-identity
WorkloadIdentityCredential + azure-keyvault-secrets SecretClient) and by plain HTTP. Values are test
fixtures; assertions compare them without printing them."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import WorkloadIdentityCredential
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets._shared import http_challenge_cache
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.azure import (
    FEDERATED_AUDIENCE,
    JWT_BEARER_ASSERTION_TYPE,
    KEY_VAULT_RESOURCE,
    AzureEmulator,
)

KV_SCOPE = f"{KEY_VAULT_RESOURCE}/.default"
MakeClient = Callable[..., SecretClient]


@pytest.fixture
def emu() -> Iterator[AzureEmulator]:
    # The SDK caches each vault URL's challenge for the life of the process: an emulator on a port an
    # earlier test's server had would get no 401 first, and the request sequences asserted here would
    # depend on test order. A job starts with an empty cache; so does each test.
    http_challenge_cache.clear()
    with AzureEmulator() as emulator:
        assert isinstance(emulator, AzureEmulator)
        yield emulator


@pytest.fixture
def token_file(emu: AzureEmulator, tmp_path: Path) -> Path:
    return emu.write_federated_token_file(tmp_path / "azure-identity-token")


@pytest.fixture
def make_client(emu: AzureEmulator, token_file: Path) -> Iterator[MakeClient]:
    """Builds SDK clients the way the product will: workload identity + verify_challenge_resource=False."""
    opened: list[SecretClient | WorkloadIdentityCredential] = []

    def build(
        target: AzureEmulator | None = None, token: Path | None = None, **client_kwargs: object
    ) -> SecretClient:
        target = target or emu
        credential = WorkloadIdentityCredential(
            tenant_id=target.tenant_id,
            client_id=target.client_id,
            token_file_path=str(token or token_file),
            authority=target.authority,
            connection_verify=target.ca_pem_path,
        )
        client_kwargs.setdefault("verify_challenge_resource", False)
        client = SecretClient(
            target.vault_url, credential, connection_verify=target.ca_pem_path, **client_kwargs
        )
        opened.extend([client, credential])
        return client

    yield build
    for item in opened:
        item.close()


@pytest.fixture
def http(emu: AzureEmulator) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cafile=emu.ca_pem_path)
    with httpx.Client(base_url=emu.url, verify=context, timeout=5) as client:
        yield client


def fetch_token(http: httpx.Client, emu: AzureEmulator, **overrides: str) -> httpx.Response:
    form = {
        "client_assertion": emu.mint_federated_token(),
        "client_assertion_type": JWT_BEARER_ASSERTION_TYPE,
        "client_id": emu.client_id or "",
        "grant_type": "client_credentials",
        "scope": KV_SCOPE,
        "claims": json.dumps({"access_token": {"xms_cc": {"values": ["CP1"]}}}),
    }
    form.update(overrides)
    tenant = form.pop("tenant", emu.tenant_id)
    return http.post(f"/{tenant}/oauth2/v2.0/token", data=form)


# -- Key Vault through the SDK ------------------------------------------------------------------------------
def test_lists_sixty_secrets_in_three_pages_of_25(emu: AzureEmulator, make_client: MakeClient) -> None:
    names = {f"app-secret-{i:02d}" for i in range(60)}
    for name in names:
        emu.set_secret(name, f"value-of-{name}")

    pages = [list(page) for page in make_client().list_properties_of_secrets().by_page()]

    assert [len(page) for page in pages] == [25, 25, 10]
    assert {p.name for page in pages for p in page} == names
    assert all(p.enabled and p.version is None for page in pages for p in page)
    # one challenge, then three authorised pages (nextLink followed across the same origin)
    assert emu.statuses("/secrets") == [401, 200, 200, 200]


def test_next_link_is_absolute_with_skiptoken(emu: AzureEmulator, http: httpx.Client) -> None:
    for i in range(3):
        emu.set_secret(f"s{i}", "x")
    token = fetch_token(http, emu).json()["access_token"]
    page = http.get(
        "/secrets",
        params={"api-version": "7.6", "maxresults": "2"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()

    assert [item["id"] for item in page["value"]] == [
        f"{emu.vault_url}/secrets/s0",
        f"{emu.vault_url}/secrets/s1",
    ]
    assert page["nextLink"].startswith(f"{emu.vault_url}/secrets?api-version=7.6&$skiptoken=")
    assert page["nextLink"].endswith("&maxresults=2")
    last = http.get(page["nextLink"], headers={"Authorization": f"Bearer {token}"}).json()
    assert [item["id"] for item in last["value"]] == [f"{emu.vault_url}/secrets/s2"]
    assert last["nextLink"] is None
    too_many = http.get(
        "/secrets",
        params={"api-version": "7.6", "maxresults": "26"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "BadParameter"


def test_get_returns_latest_or_pinned_version_with_properties(
    emu: AzureEmulator, make_client: MakeClient
) -> None:
    first = emu.set_secret("ghcr-pull-secret", "old-value")
    latest = emu.set_secret(
        "ghcr-pull-secret", "new-value", content_type="text/plain", tags={"owner": "platform"}
    )
    client = make_client()

    secret = client.get_secret("ghcr-pull-secret")
    pinned = client.get_secret("ghcr-pull-secret", version=first)

    assert secret.value == "new-value"
    assert secret.id == f"{emu.vault_url}/secrets/ghcr-pull-secret/{latest}"
    assert re.fullmatch(r"[0-9a-f]{32}", latest)
    assert secret.properties.version == latest
    assert secret.properties.content_type == "text/plain"
    assert secret.properties.tags == {"owner": "platform"}
    assert secret.properties.enabled is True
    assert secret.properties.created_on is not None
    assert secret.properties.recoverable_days == 90
    assert pinned.value == "old-value"
    assert emu.versions("ghcr-pull-secret") == [first, latest]
    assert emu.exchanges[-2].path == "/secrets/ghcr-pull-secret/"  # trailing slash = latest


def test_disabled_secret_is_listed_but_get_is_forbidden(emu: AzureEmulator, make_client: MakeClient) -> None:
    emu.set_secret("retired", "value")
    emu.disable_secret("retired")
    client = make_client()

    listed = {p.name: p.enabled for p in client.list_properties_of_secrets()}
    with pytest.raises(HttpResponseError) as caught:
        client.get_secret("retired")

    assert listed == {"retired": False}
    assert caught.type is HttpResponseError  # not ResourceNotFoundError (docs/design.md#traps, trap 5)
    assert caught.value.status_code == 403
    assert caught.value.error is not None
    assert caught.value.error.code == "Forbidden"
    assert caught.value.error.message == "Operation get is not allowed on a disabled secret."
    assert caught.value.error.innererror == {"code": "SecretDisabled"}


def test_unknown_secret_or_version_is_resource_not_found(emu: AzureEmulator, make_client: MakeClient) -> None:
    emu.set_secret("present", "value")
    client = make_client()

    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_secret("absent")
    with pytest.raises(ResourceNotFoundError) as missing_version:
        client.get_secret("present", version="0" * 32)

    assert missing.value.error is not None
    assert missing.value.error.code == "SecretNotFound"
    assert "A secret with (name/id) absent was not found in this key vault" in str(
        missing.value.error.message
    )
    assert missing_version.value.status_code == 404


def test_certificate_backed_secret_carries_managed_and_kid(
    emu: AzureEmulator, make_client: MakeClient
) -> None:
    version = emu.set_secret("tls-cert", "pem", content_type="application/x-pem-file", managed=True)

    item = next(iter(make_client().list_properties_of_secrets()))
    secret = make_client().get_secret("tls-cert")

    assert item.managed is True
    assert secret.properties.managed is True
    assert secret.properties.key_id == f"{emu.vault_url}/keys/tls-cert/{version}"


def test_set_and_update_through_the_sdk_create_versions(emu: AzureEmulator, make_client: MakeClient) -> None:
    client = make_client()

    first = client.set_secret("seeded", "one")
    second = client.set_secret("seeded", "two", content_type="text/plain")
    client.update_secret_properties("seeded", enabled=False)

    assert emu.versions("seeded") == [first.properties.version, second.properties.version]
    assert emu.get_value("seeded") == "two"
    with pytest.raises(HttpResponseError) as caught:
        client.get_secret("seeded")
    assert caught.value.status_code == 403
    # the first PUT went out body-less for the challenge, then with its body
    assert [s for m, p, s in ((e.method, e.path, e.status) for e in emu.exchanges) if m == "PUT"] == [
        401,
        200,
        200,
    ]


def test_rbac_denial_is_403_forbidden_by_rbac(emu: AzureEmulator, make_client: MakeClient) -> None:
    emu.set_secret("s", "v")
    assert emu.client_id is not None
    emu.deny_access(emu.client_id)

    with pytest.raises(HttpResponseError) as caught:
        make_client().get_secret("s")

    assert caught.value.status_code == 403
    assert caught.value.error is not None
    assert caught.value.error.innererror == {"code": "ForbiddenByRbac"}


# -- api-version ----------------------------------------------------------------------------------------
def test_default_api_version_2026_04_01_and_pinned_7_6_both_work(
    emu: AzureEmulator, make_client: MakeClient
) -> None:
    emu.set_secret("s", "v")

    assert make_client().get_secret("s").value == "v"
    assert make_client(api_version="7.6").get_secret("s").value == "v"

    assert {e.api_version for e in emu.exchanges if e.path.startswith("/secrets")} == {"2026-04-01", "7.6"}


def test_unknown_api_version_is_bad_parameter(emu: AzureEmulator, http: httpx.Client) -> None:
    token = fetch_token(http, emu).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    unknown = http.get("/secrets", params={"api-version": "7.9"}, headers=auth)
    missing = http.get("/secrets", headers=auth)

    assert unknown.status_code == 400
    assert unknown.json() == {
        "error": {
            "code": "BadParameter",
            "message": "The specified version (7.9) is not recognized. Consider using the latest supported "
            "version (2026-04-01).",
        }
    }
    assert missing.status_code == 400


# -- challenge protocol ----------------------------------------------------------------------------------
def test_request_without_token_gets_the_key_vault_challenge(emu: AzureEmulator, http: httpx.Client) -> None:
    response = http.get("/secrets/anything/", params={"api-version": "2026-04-01"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer authorization="{emu.url}/{emu.tenant_id}", resource="{emu.url}"'
    )
    assert response.json() == {
        "error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}
    }


@pytest.mark.parametrize("resource", [None, KEY_VAULT_RESOURCE])
def test_default_sdk_resource_check_refuses_the_emulator(
    resource: str | None, tmp_path: Path, make_client: MakeClient
) -> None:
    """Why the product needs a setting that passes verify_challenge_resource=False."""
    with AzureEmulator(resource=resource) as other:
        assert isinstance(other, AzureEmulator)
        other.set_secret("s", "v")
        token_file = other.write_federated_token_file(tmp_path / "token")
        strict = make_client(other, token_file, verify_challenge_resource=True)
        with pytest.raises(ValueError, match="does not match the requested domain"):
            strict.get_secret("s")
        assert make_client(other, token_file).get_secret("s").value == "v"


def test_expired_access_token_is_challenged_again(emu: AzureEmulator, http: httpx.Client) -> None:
    emu.token_lifetime = 1
    token = fetch_token(http, emu).json()["access_token"]
    time.sleep(1.1)

    response = http.get(
        "/secrets", params={"api-version": "7.6"}, headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith(
        f'Bearer authorization="{emu.url}/{emu.tenant_id}"'
    )
    assert response.json()["error"] == {
        "code": "Unauthorized",
        "message": "[TokenExpired] Error validating token: 'S2S12086'.",
    }


def test_sdk_fetches_a_new_token_once_the_old_one_expired(
    emu: AzureEmulator, make_client: MakeClient
) -> None:
    emu.token_lifetime = 2
    emu.set_secret("s", "v")
    client = make_client()

    assert client.get_secret("s").value == "v"
    time.sleep(2.2)
    assert client.get_secret("s").value == "v"

    assert emu.token_requests() == 2
    assert emu.statuses("/secrets") == [401, 200, 200]


def test_access_token_for_another_tenant_or_audience_is_rejected(
    emu: AzureEmulator, http: httpx.Client
) -> None:
    emu.register_app("other-tenant", "other-app", emu.issuer, emu.subject)
    foreign = fetch_token(http, emu, tenant="other-tenant", client_id="other-app").json()["access_token"]
    response = http.get(
        "/secrets", params={"api-version": "7.6"}, headers={"Authorization": f"Bearer {foreign}"}
    )

    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("AKV10032: Invalid issuer.")
    assert "WWW-Authenticate" in response.headers


# -- Entra token endpoint ------------------------------------------------------------------------------
def test_token_response_has_the_entra_v2_shape(emu: AzureEmulator, http: httpx.Client) -> None:
    emu.token_lifetime = 1234
    response = fetch_token(http, emu)

    body = response.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert response.status_code == 200
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert (body["token_type"], body["expires_in"], body["ext_expires_in"]) == ("Bearer", 1234, 1234)
    assert claims["tid"] == emu.tenant_id
    assert claims["aud"] == KEY_VAULT_RESOURCE
    assert claims["appid"] == emu.client_id
    assert claims["xms_cc"] == ["CP1"]


@pytest.mark.parametrize(
    ("overrides", "status", "error", "code"),
    [
        ({"tenant": "no-such-tenant"}, 400, "invalid_tenant", 90002),
        ({"client_id": "not-registered"}, 400, "unauthorized_client", 700016),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        ({"scope": "https://graph.microsoft.com/.default"}, 400, "invalid_resource", 500011),
        ({"scope": KEY_VAULT_RESOURCE}, 400, "invalid_scope", 1002012),
        ({"client_assertion_type": "urn:other"}, 401, "invalid_client", 7000218),
        ({"client_assertion": "not-a-jwt"}, 400, "invalid_request", 50027),
    ],
)
def test_token_endpoint_rejects_bad_requests_with_aadsts_bodies(
    emu: AzureEmulator, http: httpx.Client, overrides: dict[str, str], status: int, error: str, code: int
) -> None:
    response = fetch_token(http, emu, **overrides)

    body = response.json()
    assert response.status_code == status
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert (
        f"Trace ID: {body['trace_id']} Correlation ID: {body['correlation_id']}" in body["error_description"]
    )
    assert body["error_uri"].endswith(f"/error?code={code}")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", body["timestamp"])


@pytest.mark.parametrize(
    ("mint", "code"),
    [
        (lambda e: e.mint_federated_token("system:serviceaccount:other:sa"), "AADSTS700213"),
        (lambda e: e.mint_federated_token(audience="api://something-else"), "AADSTS700212"),
        (lambda e: e.mint_federated_token(issuer="https://evil.example"), "AADSTS700211"),
        (lambda e: e.mint_federated_token(lifetime=-60), "AADSTS700024"),
    ],
    ids=["wrong-subject", "wrong-audience", "wrong-issuer", "expired"],
)
def test_bad_federated_assertion_is_client_authentication_error(
    emu: AzureEmulator,
    make_client: MakeClient,
    tmp_path: Path,
    mint: Callable[[AzureEmulator], str],
    code: str,
) -> None:
    emu.set_secret("s", "v")
    bad = tmp_path / "bad-token"
    bad.write_text(mint(emu), encoding="utf-8")

    with pytest.raises(ClientAuthenticationError, match=code):
        make_client(token=bad).get_secret("s")
    assert [e.status for e in emu.exchanges if e.path.endswith("/oauth2/v2.0/token")] == [401]


def test_assertion_signed_by_an_unknown_key_is_rejected(emu: AzureEmulator, http: httpx.Client) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {
            "iss": emu.issuer,
            "sub": emu.subject,
            "aud": [FEDERATED_AUDIENCE],
            "exp": int(time.time()) + 600,
            "iat": int(time.time()),
        },
        stranger,
        algorithm="RS256",
        headers={"kid": "stranger"},
    )

    response = fetch_token(http, emu, client_assertion=forged)

    assert response.status_code == 401
    assert response.json()["error_codes"] == [7000272]


def test_legacy_mode_reports_aadsts70021_with_assertion_details(tmp_path: Path) -> None:
    with AzureEmulator(legacy_fic_errors=True) as emu:
        assert isinstance(emu, AzureEmulator)
        token = emu.write_federated_token_file(tmp_path / "t", "system:serviceaccount:ns:wrong")
        credential = WorkloadIdentityCredential(
            tenant_id=emu.tenant_id,
            client_id=emu.client_id,
            token_file_path=str(token),
            authority=emu.authority,
            connection_verify=emu.ca_pem_path,
        )
        with credential, pytest.raises(ClientAuthenticationError) as caught:
            credential.get_token(KV_SCOPE)

    assert "AADSTS70021: No matching federated identity record found for presented assertion." in str(
        caught.value
    )
    assert "Assertion Subject: 'system:serviceaccount:ns:wrong'" in str(caught.value)


# -- throttling and faults ------------------------------------------------------------------------------
def test_throttled_request_is_retried_after_retry_after(tmp_path: Path, make_client: MakeClient) -> None:
    with AzureEmulator(throttle_limit=3, throttle_window=1.0) as emu:
        assert isinstance(emu, AzureEmulator)
        emu.set_secret("s", "v")
        client = make_client(emu, emu.write_federated_token_file(tmp_path / "token"))
        started = time.monotonic()

        # challenge 401 + 200, then 200: three hits fill the window; the third call is throttled once,
        # and the SDK's retry after Retry-After lands when the oldest hit has left the window.
        values = [client.get_secret("s").value for _ in range(3)]

        elapsed = time.monotonic() - started
        kv = [e for e in emu.exchanges if e.path.startswith("/secrets")]

    assert values == ["v"] * 3
    assert [e.status for e in kv] == [401, 200, 200, 429, 200]
    throttled, retried = kv[3], kv[4]
    retry_after = float(throttled.headers["Retry-After"])
    assert retry_after >= 1
    assert retried.at - throttled.at >= retry_after  # the SDK honoured Retry-After
    assert elapsed >= retry_after


def test_throttle_body_matches_the_service(http: httpx.Client, emu: AzureEmulator) -> None:
    emu.throttle_limit = 1
    emu.throttle_window = 30.0
    http.get("/secrets", params={"api-version": "7.6"})

    response = http.get("/secrets", params={"api-version": "7.6"})

    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    assert response.json() == {
        "error": {
            "code": "Throttled",
            "message": "Request was not processed because too many requests were received. "
            "Reason: VaultRequestTypeLimitReached",
        }
    }


def test_injected_fault_uses_key_vault_error_body(emu: AzureEmulator, make_client: MakeClient) -> None:
    emu.set_secret("s", "v")
    emu.fail_next(1, 503, retry_after=0, path_prefix="/secrets")

    assert make_client().get_secret("s").value == "v"
    assert emu.statuses("/secrets")[0] == 503


# -- wiring: env and standalone mode ----------------------------------------------------------------------
def test_sdk_env_is_enough_for_a_workload_identity_pod(
    emu: AzureEmulator, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu.set_secret("s", "v")
    env = emu.sdk_env(token_file)
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    with (
        WorkloadIdentityCredential() as credential,
        SecretClient(emu.vault_url, credential, verify_challenge_resource=False) as client,
    ):
        assert client.get_secret("s").value == "v"
    assert env["AZURE_AUTHORITY_HOST"] == emu.url + "/"
    assert Path(env["REQUESTS_CA_BUNDLE"]).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_standalone_process_serves_the_seed(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps(
            {"secrets": [{"name": "ghcr-pull-secret", "values": ["a", "b"]}, {"name": "x", "value": "y"}]}
        )
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.azure",
            "--port",
            "0",
            "--seed",
            str(seed),
            "--cert-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        credential = WorkloadIdentityCredential(
            tenant_id=info["AZURE_TENANT_ID"],
            client_id=info["AZURE_CLIENT_ID"],
            token_file_path=info["AZURE_FEDERATED_TOKEN_FILE"],
            authority=info["AZURE_AUTHORITY_HOST"],
            connection_verify=info["ca_pem_path"],
        )
        with (
            credential,
            SecretClient(
                info["vault_url"],
                credential,
                verify_challenge_resource=False,
                connection_verify=info["ca_pem_path"],
            ) as client,
        ):
            assert client.get_secret("ghcr-pull-secret").value == "b"
            assert len(list(client.list_properties_of_secret_versions("ghcr-pull-secret"))) == 2
        assert (tmp_path / "azure.env").read_text().count("=") == 5
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_seed_file_accepts_yaml_mapping_form(emu: AzureEmulator, tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "secrets:\n"
        "  plain: some-value\n"
        "  rotated: {values: [v1, v2], contentType: text/plain, tags: {team: platform}}\n"
        "  retired: {value: old, enabled: false}\n"
        "apps:\n"
        "  - {clientId: second-app, subject: 'system:serviceaccount:other:sa'}\n"
    )

    assert emu.load_seed(seed) == 4
    assert emu.secret_names() == ["plain", "retired", "rotated"]
    assert emu.get_value("rotated") == "v2"
    assert len(emu.versions("rotated")) == 2
    assert emu.register_app(
        emu.tenant_id, "second-app", emu.issuer, "system:serviceaccount:other:sa"
    ).credentials
