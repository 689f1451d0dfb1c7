"""The Keycloak client against the Keycloak emulator (real HTTP), plus transport fakes for server
behaviour the emulator does not show (a case-insensitive database collation returning near matches)."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from emulators.keycloak import KeycloakEmulator
from jobs.core.clients.keycloak import KeycloakClient
from jobs.core.errors import ClientError, NotFound, PermissionDenied, Unauthorized, Unreachable
from jobs.core.logs import TextFormatter
from jobs.core.retry import RetryPolicy
from jobs.core.settings import KeycloakSettings
from jobs.patcher.decide import usable_secret_problem

SA_SECRET = "sa-secret-0123456789abcdef"
ADMIN_PASSWORD = "admin-password-42"
FAST = RetryPolicy(attempts=5, initial_wait=0.01, max_wait=0.05)


class Clock:
    """One fake clock shared by the emulator (wall time) and the client (monotonic time)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keycloak(clock: Clock) -> Iterator[KeycloakEmulator]:
    with KeycloakEmulator(clock=clock) as emulator:
        assert isinstance(emulator, KeycloakEmulator)
        emulator.add_realm("ameide")
        emulator.add_user("master", "admin", ADMIN_PASSWORD, realm_roles=["admin"])
        emulator.add_client(
            "master",
            "client-patcher",
            secret=SA_SECRET,
            service_account=True,
            service_account_roles={"ameide-realm": ["query-clients", "view-clients", "manage-clients"]},
        )
        emulator.add_client("ameide", "app", secret="app-secret-value-000001")
        emulator.add_client("ameide", "app-admin", secret="app-admin-secret-00002")
        emulator.add_client("ameide", "spa", public=True)
        emulator.add_client("ameide", "api", bearer_only=True)
        emulator.add_client("ameide", "jwt-app", authenticator="client-jwt")
        yield emulator


def settings(
    client_id: str | None = "client-patcher",
    client_secret: str | None = SA_SECRET,
    username: str | None = "admin",
    password: str | None = ADMIN_PASSWORD,
    cacert: Path | None = None,
    fallback: bool | None = None,
) -> KeycloakSettings:
    values = {
        "KEYCLOAK_ALLOW_PASSWORD_FALLBACK": fallback,
        "KEYCLOAK_CLIENT_ID": client_id,
        "KEYCLOAK_CLIENT_SECRET": client_secret,
        "KEYCLOAK_ADMIN_USERNAME": username,
        "KEYCLOAK_ADMIN_PASSWORD": password,
        "KEYCLOAK_CACERT": cacert,
    }
    return KeycloakSettings(**{k: v for k, v in values.items() if v is not None})  # type: ignore[arg-type]


def make(keycloak: KeycloakEmulator, clock: Clock, kc: KeycloakSettings | None = None) -> KeycloakClient:
    return KeycloakClient(keycloak.url, "master", kc or settings(), FAST, clock=clock)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Log lines as the job prints them (message plus extra fields, redacted)."""
    return "\n".join(TextFormatter().format(r) for r in caplog.records)


def token_posts(keycloak: KeycloakEmulator) -> int:
    return keycloak.count(lambda method, path: method == "POST" and path.endswith("/token"))


def test_client_credentials_is_preferred_and_reads_a_secret(
    keycloak: KeycloakEmulator, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with make(keycloak, clock) as kc:
        kc.login()
        assert kc.grant == "client_credentials"
        app = kc.find_client("ameide", "app")
        assert kc.read_client_secret(app) == "app-secret-value-000001"
    assert "grant=client_credentials" in logged(caplog)
    assert SA_SECRET not in logged(caplog) and ADMIN_PASSWORD not in logged(caplog)


def test_refused_service_account_falls_back_to_password_grant_with_the_oauth_reason(
    keycloak: KeycloakEmulator, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    wrong = "wrong-secret-0000000000"
    with make(keycloak, clock, settings(client_secret=wrong, fallback=True)) as kc:
        kc.login()
        assert kc.grant == "password"
        assert kc.read_client_secret(kc.find_client("ameide", "app"))
        assert len(kc.warnings) == 1 and "fell back to the admin password grant" in kc.warnings[0]
    fallback = next(r for r in caplog.records if "fell back" in r.getMessage())
    assert "unauthorized_client" in fallback.reason  # type: ignore[attr-defined]
    assert "Invalid client or Invalid client credentials" in fallback.reason  # type: ignore[attr-defined]
    assert "grant=password" in logged(caplog)
    for value in (wrong, ADMIN_PASSWORD):
        assert value not in logged(caplog)


def test_refused_service_account_fails_without_an_explicit_fallback(
    keycloak: KeycloakEmulator, clock: Clock
) -> None:
    wrong = "wrong-secret-0000000001"
    with (
        make(keycloak, clock, settings(client_secret=wrong)) as kc,
        pytest.raises(Unauthorized, match="KEYCLOAK_ALLOW_PASSWORD_FALLBACK") as caught,
    ):
        kc.login()
    assert "unauthorized_client" in str(caught.value)
    assert wrong not in str(caught.value) and ADMIN_PASSWORD not in str(caught.value)
    assert kc.grant is None and not kc.warnings
    assert keycloak.count(lambda method, path: path.endswith("/token")) == 1  # never tried the password


def test_without_a_service_account_the_password_grant_says_why(
    keycloak: KeycloakEmulator, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with make(keycloak, clock, settings(client_id=None, client_secret=None)) as kc:
        kc.login()
        assert kc.grant == "password"
    assert "no service account configured" in logged(caplog)


def test_unknown_service_account_client_is_invalid_client(keycloak: KeycloakEmulator, clock: Clock) -> None:
    kc_settings = settings(client_id="nobody", username=None, password=None)
    with make(keycloak, clock, kc_settings) as kc, pytest.raises(Unauthorized, match="invalid_client"):
        kc.login()


def test_every_login_refused_keeps_the_oauth_error(keycloak: KeycloakEmulator, clock: Clock) -> None:
    kc_settings = settings(client_secret="wrong-secret-1111", password="wrong-password", fallback=True)
    with (
        make(keycloak, clock, kc_settings) as kc,
        pytest.raises(Unauthorized, match=r"invalid_grant: Invalid user credentials") as caught,
    ):
        kc.login()
    assert "wrong-password" not in str(caught.value)


def test_unknown_auth_realm_is_reported(keycloak: KeycloakEmulator, clock: Clock) -> None:
    with (
        KeycloakClient(keycloak.url, "nope", settings(), FAST, clock=clock) as kc,
        pytest.raises(NotFound, match="auth realm 'nope' does not exist"),
    ):
        kc.login()


@pytest.mark.parametrize("service_account", [True, False])
def test_token_is_renewed_before_it_expires(
    keycloak: KeycloakEmulator, clock: Clock, service_account: bool
) -> None:
    keycloak.token_lifespan = 1
    kc_settings = settings() if service_account else settings(client_id=None, client_secret=None)
    with make(keycloak, clock, kc_settings) as kc:
        kc.login()
        app = kc.find_client("ameide", "app")
        for _ in range(3):
            clock.now += 1.5  # past the 1 s lifespan every time
            assert kc.read_client_secret(app)
        assert token_posts(keycloak) == 4  # the login, then one renewal per expiry
    admin_401 = keycloak.count(lambda m, p: p.startswith("/admin"))
    assert admin_401 == 4  # no request was wasted on an expired token


def test_a_401_renews_the_token_once_and_retries(keycloak: KeycloakEmulator, clock: Clock) -> None:
    with make(keycloak, clock) as kc:
        kc.login()
        keycloak.fail_next(1, 401, path_prefix="/admin")
        assert kc.find_client("ameide", "app").client_id == "app"
        assert token_posts(keycloak) == 2
        keycloak.fail_next(2, 401, path_prefix="/admin")
        with pytest.raises(Unauthorized, match="401"):
            kc.find_client("ameide", "app")
        assert token_posts(keycloak) == 3  # once, not in a loop


def test_ended_password_session_is_replaced_by_a_new_login(keycloak: KeycloakEmulator, clock: Clock) -> None:
    with make(keycloak, clock, settings(client_id=None, client_secret=None)) as kc:
        kc.login()
        keycloak.end_sessions()  # the token is now refused with 401, and its refresh token too
        assert kc.find_client("ameide", "app").client_id == "app"


@pytest.mark.parametrize(("status", "retry_after"), [(503, None), (429, 0.05), (500, None)])
def test_transient_errors_are_retried(
    keycloak: KeycloakEmulator, clock: Clock, status: int, retry_after: float | None
) -> None:
    with make(keycloak, clock) as kc:
        keycloak.fail_next(3, status, retry_after=retry_after)
        kc.login()  # three token attempts fail, the fourth succeeds
        keycloak.fail_next(3, status, retry_after=retry_after, path_prefix="/admin")
        assert kc.find_client("ameide", "app").client_id == "app"


def test_transient_errors_give_up_after_the_policy(keycloak: KeycloakEmulator, clock: Clock) -> None:
    with make(keycloak, clock) as kc:
        kc.login()
        keycloak.fail_next(10, 503, path_prefix="/admin")
        with pytest.raises(ClientError, match=r"503: unknown_error"):
            kc.find_client("ameide", "app")


def test_exact_client_id_only(keycloak: KeycloakEmulator, clock: Clock) -> None:
    with make(keycloak, clock) as kc:
        assert kc.find_client("ameide", "app").client_id == "app"
        with pytest.raises(NotFound, match="client 'ap' not found in realm 'ameide'"):
            kc.find_client("ameide", "ap")
        with pytest.raises(NotFound, match="client 'APP' not found"):
            kc.find_client("ameide", "APP")
    assert not any("search" in p for _, p in keycloak.requests)


def test_near_matches_from_the_server_are_never_taken() -> None:
    """A MySQL/MariaDB collation may answer ?clientId=app with `App` (docs/design.md#traps, trap 2)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/token"):
            return httpx.Response(
                200, json={"access_token": "t0k3n-abc", "expires_in": 60, "token_type": "bearer"}
            )
        return httpx.Response(200, json=[{"id": "1", "clientId": "App", "publicClient": False}])

    with (
        KeycloakClient(
            "http://keycloak.test", "master", settings(), FAST, transport=httpx.MockTransport(handler)
        ) as kc,
        pytest.raises(NotFound, match=r"near matches \['App'\], ignored"),
    ):
        kc.find_client("ameide", "app")
    assert seen[-1].url.params["clientId"] == "app"
    assert "search" not in seen[-1].url.params


@pytest.mark.parametrize(
    ("client_id", "problem"),
    [
        ("spa", "is a public client"),
        ("api", "is bearer-only"),
        ("jwt-app", "uses 'client-jwt' authentication"),
        ("app", None),
    ],
)
def test_clients_without_a_usable_secret_are_refused_before_reading(
    keycloak: KeycloakEmulator, clock: Clock, client_id: str, problem: str | None
) -> None:
    with make(keycloak, clock) as kc:
        found = usable_secret_problem(kc.find_client("ameide", client_id))
    assert (found is None) if problem is None else (problem in (found or ""))


def test_unknown_realm_is_not_found(keycloak: KeycloakEmulator, clock: Clock) -> None:
    with make(keycloak, clock) as kc, pytest.raises(NotFound, match="realm 'nope' not found"):
        kc.find_client("nope", "app")


def test_view_only_identity_cannot_read_a_secret(keycloak: KeycloakEmulator, clock: Clock) -> None:
    keycloak.add_user("master", "viewer", "viewer-pass", client_roles={"ameide-realm": ["view-clients"]})
    kc_settings = settings(client_id=None, client_secret=None, username="viewer", password="viewer-pass")
    with make(keycloak, clock, kc_settings) as kc:
        app = kc.find_client("ameide", "app")
        with pytest.raises(PermissionDenied, match="manage-clients"):
            kc.read_client_secret(app)


def test_a_secret_the_client_search_returned_is_not_requested_again(
    keycloak: KeycloakEmulator, clock: Clock
) -> None:
    with make(keycloak, clock) as kc:
        app = kc.find_client("ameide", "app")
        keycloak.reset_requests()
        assert kc.client_secret(app) == "app-secret-value-000001"
    assert keycloak.count() == 0
    assert "app-secret-value-000001" not in repr(app)


def test_a_masked_secret_is_requested_and_refused_without_manage_clients(
    keycloak: KeycloakEmulator, clock: Clock
) -> None:
    keycloak.add_user("master", "viewer", "viewer-pass", client_roles={"ameide-realm": ["view-clients"]})
    kc_settings = settings(client_id=None, client_secret=None, username="viewer", password="viewer-pass")
    with make(keycloak, clock, kc_settings) as kc:
        app = kc.find_client("ameide", "app")
        assert app.listed_secret is None  # Keycloak 26.8+ masks it for view-clients
        with pytest.raises(PermissionDenied, match="manage-clients"):
            kc.client_secret(app)
    assert keycloak.count(lambda m, p: m == "GET" and p.endswith("/client-secret")) == 1


def test_identity_without_view_rights_cannot_see_the_client_type(
    keycloak: KeycloakEmulator, clock: Clock
) -> None:
    keycloak.add_user("master", "lister", "lister-pass", client_roles={"ameide-realm": ["query-clients"]})
    kc_settings = settings(client_id=None, client_secret=None, username="lister", password="lister-pass")
    with (
        make(keycloak, clock, kc_settings) as kc,
        pytest.raises(PermissionDenied, match="view-clients") as err,
    ):
        kc.find_client("ameide", "app")
    # Keycloak 26 lists `200 []` to query-clients alone: one probe tells that from a missing client.
    assert "lists no client at all to this identity" in str(err.value)
    assert "of the master client 'ameide-realm'" in str(err.value)


def test_a_missing_client_stays_not_found_for_an_identity_with_view_rights(
    keycloak: KeycloakEmulator, clock: Clock
) -> None:
    with make(keycloak, clock) as kc, pytest.raises(NotFound, match="client 'ghost' not found"):
        kc.find_client("ameide", "ghost")


def test_a_403_names_the_master_client_holding_the_roles_of_a_master_identity(
    keycloak: KeycloakEmulator, clock: Clock
) -> None:
    keycloak.add_user("master", "viewer", "viewer-pass", client_roles={"ameide-realm": ["view-clients"]})
    kc_settings = settings(client_id=None, client_secret=None, username="viewer", password="viewer-pass")
    with make(keycloak, clock, kc_settings) as kc:
        app = kc.find_client("ameide", "app")
        with pytest.raises(PermissionDenied) as err:
            kc.regenerate_client_secret(app)
    assert "manage-clients of the master client 'ameide-realm'" in str(err.value)


def test_a_403_names_realm_management_for_a_realm_local_identity_and_refuses_another_realm(
    keycloak: KeycloakEmulator, clock: Clock
) -> None:
    keycloak.add_realm("partners")
    keycloak.add_client("partners", "partner-app", secret="partner-secret-000003")
    keycloak.add_client(
        "ameide",
        "local-patcher",
        secret="local-sa-secret-0004",
        service_account=True,
        service_account_roles=["query-clients", "view-clients"],
    )
    kc_settings = settings(
        client_id="local-patcher", client_secret="local-sa-secret-0004", username=None, password=None
    )
    with KeycloakClient(keycloak.url, "ameide", kc_settings, FAST, clock=clock) as kc:
        app = kc.find_client("ameide", "app")
        with pytest.raises(PermissionDenied) as own:
            kc.regenerate_client_secret(app)
        with pytest.raises(PermissionDenied) as foreign:
            kc.find_client("partners", "partner-app")
    assert "manage-clients of the client 'realm-management'" in str(own.value)
    assert "an identity of realm 'ameide' cannot administer realm 'partners'" in str(foreign.value)


def test_regenerate_returns_the_new_secret(keycloak: KeycloakEmulator, clock: Clock) -> None:
    with make(keycloak, clock) as kc:
        app = kc.find_client("ameide", "app")
        new = kc.regenerate_client_secret(app)
    assert new != "app-secret-value-000001"
    assert new == keycloak.client_secret("ameide", "app")
    assert keycloak.regenerations("ameide", "app") == 1


def test_connection_errors_are_unreachable_not_httpx(clock: Clock) -> None:
    retry = RetryPolicy(attempts=2, initial_wait=0.01)
    with (
        KeycloakClient("http://127.0.0.1:9", "master", settings(), retry, clock=clock) as kc,
        pytest.raises(Unreachable, match=r"Keycloak at http://127\.0\.0\.1:9 un.*: connection refused"),
    ):
        kc.login()


def test_keycloak_cacert_is_trusted(clock: Clock, tmp_path: Path) -> None:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    emulator = KeycloakEmulator(clock=clock)
    emulator.ssl_context = server
    with emulator:
        emulator.add_user("master", "admin", ADMIN_PASSWORD, realm_roles=["admin"])
        trusted = settings(client_id=None, client_secret=None, cacert=ca_path)
        with KeycloakClient(emulator.url, "master", trusted, FAST, clock=clock) as kc:
            kc.login()
        untrusted = settings(client_id=None, client_secret=None)
        with (
            KeycloakClient(emulator.url, "master", untrusted, FAST, clock=clock) as kc,
            pytest.raises(Unreachable),
        ):
            kc.login()


def test_token_response_fields_are_compared_case_insensitively() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"access_token": "t0k3n-xyz", "expires_in": 60, "token_type": "bearer"}
        return httpx.Response(200, content=json.dumps(body), headers={"Content-Type": "application/json"})

    transport = httpx.MockTransport(handler)
    with KeycloakClient("http://kc.test", "master", settings(), FAST, transport=transport) as kc:
        kc.login()
        assert kc.grant == "client_credentials"


# -- zero-downtime rotation ------------------------------------------------------------------------------
def test_rotated_secret_info_and_delete_under_the_secret_rotation_policy(
    keycloak: KeycloakEmulator, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keycloak.set_rotation_policy("ameide", "app", True, rotated_expiration=900)
    client = make(keycloak, clock)
    app = client.find_client("ameide", "app")
    assert client.rotated_secret_info(app) is None
    client.regenerate_client_secret(app)
    rotated = client.rotated_secret_info(app)
    assert rotated is not None and rotated.since == int(clock.now) and rotated.expires == int(clock.now) + 900
    assert "app-secret-value-000001" not in logged(caplog)
    client.delete_rotated_secret(app)
    assert client.rotated_secret_info(app) is None
    client.delete_rotated_secret(app)  # none left: still 204
    client.close()
    assert keycloak.rotated_secret("ameide", "app") is None


def test_rotated_expiration_periods_need_view_realm(keycloak: KeycloakEmulator, clock: Clock) -> None:
    keycloak.set_rotation_policy("ameide", "app", True, rotated_expiration=600)
    service_account = make(keycloak, clock)
    assert service_account.rotated_expiration_periods("ameide") is None  # 403: manage-clients only
    admin = make(keycloak, clock, settings(client_id=None, client_secret=None))
    assert admin.rotated_expiration_periods("ameide") == (600,)
    service_account.close()
    admin.close()
