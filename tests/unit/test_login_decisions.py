"""`smoke --login`: the pure verdicts of a token-endpoint answer, and the login's pacing."""

from __future__ import annotations

import httpx

from jobs.checks.login import FAIL, OK, SKIP, consumer_login, judge_login, vault_login
from jobs.core.clients.keycloak_login import SecretLogin
from jobs.core.logs import redact
from jobs.core.observed import LoginVerdict

WRONG = LoginVerdict(401, "unauthorized_client", "Invalid client or Invalid client credentials")
NO_SA = LoginVerdict(401, "unauthorized_client", "Client not enabled to retrieve service account")


def test_same_code_different_description_splits_valid_from_wrong() -> None:
    assert judge_login(NO_SA)[0] == OK
    assert judge_login(WRONG)[0] == FAIL
    assert judge_login(LoginVerdict(200))[0] == OK


def test_server_trouble_is_not_judged() -> None:
    assert judge_login(LoginVerdict(503, "", ""))[0] == SKIP
    assert judge_login(LoginVerdict(None, "unreachable: timed out")) == (
        SKIP,
        "no Keycloak reachable (unreachable: timed out)",
    )


def test_smoke_words() -> None:
    assert vault_login(WRONG) == (
        FAIL,
        "Keycloak rejects the secret in Vault "
        "(unauthorized_client: Invalid client or Invalid client credentials)",
    )
    assert vault_login(LoginVerdict(200)) == (OK, "login ok: Keycloak accepts the secret")
    assert consumer_login("ns/app", "app-auth", NO_SA) is None
    assert consumer_login("ns/app", "app-auth", WRONG) == (
        "consumer ns/app holds a secret Keycloak rejects (Secret app-auth: "
        "unauthorized_client: Invalid client or Invalid client credentials)"
    )


def test_logins_are_spaced_and_the_secret_is_redacted_before_use() -> None:
    now = [100.0]
    sent: list[float] = []
    redacted_before: list[bool] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(now[0])
        redacted_before.append("s3cret-login-value" not in redact("s3cret-login-value"))
        return httpx.Response(200, json={"access_token": "tok", "expires_in": 60})

    def sleep(seconds: float) -> None:
        now[0] += seconds

    login = SecretLogin(
        "http://kc.invalid",
        rate=2,
        clock=lambda: now[0],
        sleep=sleep,
        transport=httpx.MockTransport(answer),
    )
    try:
        verdicts = [login.check_client_secret("r", "c", "s3cret-login-value") for _ in range(3)]
    finally:
        login.close()
    assert verdicts == [LoginVerdict(200)] * 3  # no token in the verdict
    assert sent == [100.0, 100.5, 101.0]
    assert all(redacted_before)
