"""`smoke --login`'s token-endpoint login (`SecretLogin.check_client_secret`) and its verdict
(`judge_login`), identical on the emulator and on real Keycloak 26.7.3: a valid secret is told from a
wrong one by status + error + error_description, also when the grant itself is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs.checks.login import FAIL, OK, SKIP, judge_login
from jobs.core.clients.keycloak_login import SecretLogin
from jobs.core.observed import LoginVerdict
from tests.contract.conftest import Vendor


@pytest.fixture
def login(vendor: Vendor) -> Iterator[SecretLogin]:
    probe = SecretLogin(vendor.url, rate=50)
    yield probe
    probe.close()


def test_valid_secret_with_a_service_account(vendor: Vendor, login: SecretLogin) -> None:
    answer = login.check_client_secret("master", "nobody", vendor.secret("master", "nobody"))
    assert answer == LoginVerdict(200)
    assert judge_login(answer)[0] == OK


def test_valid_secret_without_a_service_account_is_still_valid(vendor: Vendor, login: SecretLogin) -> None:
    answer = login.check_client_secret("ameide", "www", vendor.secret("ameide", "www"))
    assert answer == LoginVerdict(
        401, "unauthorized_client", "Client not enabled to retrieve service account"
    )
    assert judge_login(answer) == (
        OK,
        "Keycloak accepts the secret (no service account: the grant is refused after the secret is checked)",
    )


def test_wrong_secret_is_rejected(vendor: Vendor, login: SecretLogin) -> None:
    answer = login.check_client_secret("ameide", "www", "stale-" + vendor.secret("ameide", "www"))
    assert answer == LoginVerdict(401, "unauthorized_client", "Invalid client or Invalid client credentials")
    assert judge_login(answer) == (FAIL, "unauthorized_client: Invalid client or Invalid client credentials")


def test_public_client_is_skipped_whatever_the_secret(vendor: Vendor, login: SecretLogin) -> None:
    for secret in ("anything", ""):
        answer = login.check_client_secret("ameide", "spa", secret)
        assert answer == LoginVerdict(
            401, "unauthorized_client", "Public client not allowed to retrieve service account"
        )
        assert judge_login(answer) == (SKIP, "public client: it has no secret to check")


def test_bearer_only_client(vendor: Vendor, login: SecretLogin) -> None:
    right = login.check_client_secret("partners", "api", vendor.secret("partners", "api"))
    assert right == LoginVerdict(400, "invalid_client", "Bearer-only not allowed")
    assert judge_login(right)[0] == SKIP
    wrong = login.check_client_secret("partners", "api", "wrong")
    assert judge_login(wrong)[0] == FAIL


def test_client_jwt_client_is_skipped(vendor: Vendor, login: SecretLogin) -> None:
    answer = login.check_client_secret("partners", "jwt-app", "x")
    assert judge_login(answer) == (SKIP, "the client authenticates with a signed JWT, not a secret")


def test_unknown_client_and_missing_realm_fail(vendor: Vendor, login: SecretLogin) -> None:
    ghost = login.check_client_secret("ameide", "ghost", "x")
    assert ghost == LoginVerdict(401, "invalid_client", "Invalid client or Invalid client credentials")
    assert judge_login(ghost)[0] == FAIL
    nowhere = login.check_client_secret("nope", "www", "x")
    assert nowhere == LoginVerdict(404, "Realm does not exist")
    assert judge_login(nowhere) == (FAIL, "the realm does not exist (Realm does not exist)")


def test_no_keycloak_reachable_is_a_skip() -> None:
    probe = SecretLogin("http://127.0.0.1:9", rate=50, timeout=2)
    try:
        answer = probe.check_client_secret("ameide", "www", "x")
    finally:
        probe.close()
    assert answer.status is None
    assert judge_login(answer)[0] == SKIP
