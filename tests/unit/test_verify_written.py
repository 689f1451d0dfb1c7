"""client-patcher's --verify-login: a written secret Keycloak rejects fails its entry; an accepted one,
or a Keycloak that cannot be asked, leaves the result as it was."""

from __future__ import annotations

import httpx
import pytest

from jobs.core.clients.keycloak_login import SecretLogin
from jobs.core.model import Action, EntryResult
from jobs.patcher.verify import verify_written

WRITTEN = EntryResult("app-client-secret", Action.WRITTEN, "created from keycloak ameide/app", 1)
SECRET = "the-written-secret-value-000000000001"
NO_SERVICE_ACCOUNT = "Client not enabled to retrieve service account"
WRONG = "Invalid client or Invalid client credentials"


def login_answering(status: int, body: dict[str, str]) -> SecretLogin:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/realms/ameide/protocol/openid-connect/token"
        return httpx.Response(status, json=body)

    return SecretLogin("http://keycloak.test", rate=0, transport=httpx.MockTransport(answer))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, {"access_token": "not-kept", "token_type": "Bearer"}),
        (
            401,
            {
                "error": "unauthorized_client",
                "error_description": "Client not enabled to retrieve service account",
            },
        ),
        (503, {"error": "unknown_error"}),
    ],
)
def test_an_accepted_or_unjudged_secret_keeps_the_result(status: int, body: dict[str, str]) -> None:
    assert verify_written(login_answering(status, body), "ameide", "app", SECRET, WRITTEN) == WRITTEN


def test_a_rejected_secret_fails_the_entry_before_consumers_are_told() -> None:
    body = {
        "error": "unauthorized_client",
        "error_description": "Invalid client or Invalid client credentials",
    }
    result = verify_written(login_answering(401, body), "ameide", "app", SECRET, WRITTEN)
    assert result.action is Action.FAILED
    assert (
        "Keycloak rejects the written secret" in result.reason and "consumers not annotated" in result.reason
    )
    assert SECRET not in result.reason


def test_client_patcher_login_rate_reaches_the_login_it_paces() -> None:
    from jobs.client_patcher import build_parser, parse_options
    from jobs.patcher.verify import open_secret_login

    options = parse_options(build_parser().parse_args(["--catalog", "c.yaml", "--login-rate", "20"]))
    assert options.login_rate == 20.0
    login = open_secret_login(True, "http://keycloak.test", options.login_rate)
    assert login is not None
    try:
        assert login._interval == pytest.approx(0.05)  # one request per 50 ms at most
    finally:
        login.close()
    default = parse_options(build_parser().parse_args(["--catalog", "c.yaml"]))
    assert default.login_rate == 5.0
