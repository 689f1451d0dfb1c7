"""`smoke --login`: what a token-endpoint answer says about a stored client secret. Pure.

Keycloak 26 checks the client's secret BEFORE the grant (docs/design.md#keycloak), so a refused
grant still proves the secret: `unauthorized_client` "Client not enabled to retrieve service account"
is a VALID secret on a client without a service account, while the same code with "Invalid client or
Invalid client credentials" is a WRONG secret. The pair (status, error, error_description) decides,
never the status alone.
"""

from __future__ import annotations

from typing import Final

from jobs.core.observed import LoginVerdict

OK: Final = "ok"
FAIL: Final = "fail"
SKIP: Final = "skip"
INVALID_CREDENTIALS: Final = "Invalid client or Invalid client credentials"
NO_SERVICE_ACCOUNT: Final = "Client not enabled to retrieve service account"
PUBLIC_CLIENT: Final = "Public client not allowed to retrieve service account"
BEARER_ONLY: Final = "Bearer-only not allowed"
NO_ASSERTION: Final = "Parameter client_assertion_type is missing"

# (status, error, error_description) -> (verdict, reason); read off Keycloak 26.7.3.
_KNOWN: Final[dict[tuple[int, str, str], tuple[str, str]]] = {
    (401, "unauthorized_client", NO_SERVICE_ACCOUNT): (
        OK,
        "Keycloak accepts the secret (no service account: the grant is refused after the secret is checked)",
    ),
    (401, "unauthorized_client", PUBLIC_CLIENT): (SKIP, "public client: it has no secret to check"),
    (400, "invalid_client", BEARER_ONLY): (SKIP, "bearer-only client: it never logs in"),
    (400, "invalid_client", NO_ASSERTION): (
        SKIP,
        "the client authenticates with a signed JWT, not a secret",
    ),
}


def judge_login(verdict: LoginVerdict) -> tuple[str, str]:
    """(ok / fail / skip, reason) of one login with one secret."""
    if verdict.status is None:
        return SKIP, f"no Keycloak reachable ({verdict.error})"
    if verdict.status == 200:
        return OK, "Keycloak accepts the secret"
    known = _KNOWN.get((verdict.status, verdict.error, verdict.description))
    if known is not None:
        return known
    said = ": ".join(p for p in (verdict.error, verdict.description) if p) or "no error code"
    if verdict.status in (400, 401):
        return FAIL, said
    if verdict.status == 404:
        return FAIL, f"the realm does not exist ({said})"
    return SKIP, f"Keycloak answered {verdict.status} ({said}), not judged"


def vault_login(verdict: LoginVerdict) -> tuple[str, str]:
    """The Vault value's login, in smoke's words."""
    status, reason = judge_login(verdict)
    if status == FAIL:
        return FAIL, f"Keycloak rejects the secret in Vault ({reason})"
    return status, f"login ok: {reason}" if status == OK else f"login skipped: {reason}"


def consumer_login(consumer: str, target: str, verdict: LoginVerdict) -> str | None:
    """The offence of a consumer whose synced Secret holds a value Keycloak rejects, else None."""
    status, reason = judge_login(verdict)
    if status != FAIL:
        return None
    return f"consumer {consumer} holds a secret Keycloak rejects (Secret {target}: {reason})"


def login_cell(verdict: LoginVerdict) -> str:
    """`audit --login`'s Login cell for the value in Vault."""
    status, reason = judge_login(verdict)
    if status == FAIL:
        return f"fail: Keycloak rejects the secret in Vault ({reason})"
    return f"{status}: {reason}"
