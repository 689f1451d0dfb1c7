"""The real `client-patcher` console script against the real Keycloak 26.7.3, a real OpenBao and the
Kubernetes emulator: what the emulator-backed e2e tests (tests/e2e/test_client_patcher.py) prove, proved
again against the vendor's own server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import pytest

from lab.client_patcher_stack import DEFAULT_CLIENTS, ClientSpec, assert_no_secret_in
from lab.openbao import OpenBao
from lab.real_client_patcher import RealClientPatcherStack
from lab.real_tier import RealServer
from tests.support.summary import read_summary

PLATFORM, WWW, PORTAL, PARTNER_API = DEFAULT_CLIENTS
CONSUMERS = [c for spec in DEFAULT_CLIENTS for c in spec.consumers]
AMEIDE = tuple(s for s in DEFAULT_CLIENTS if s.realm == "ameide")


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        return read_summary(done.stdout)
    except ValueError:
        pytest.fail(
            f"no JSON summary on stdout (exit {done.returncode}): {done.stdout}\n{done.stderr[-3000:]}"
        )


def entries(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {e["entry"]: e for e in summary(done)["entries"]}


def run_clean(stack: RealClientPatcherStack, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the job and check the rule every run obeys: no secret value in any output."""
    done = stack.run("--summary", "full", *args, **kwargs)
    assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
    return done


@contextmanager
def other_stack(
    real_keycloak: RealServer,
    openbao: OpenBao,
    tmp_path: Path,
    clients: tuple[ClientSpec, ...],
    service_account: tuple[str, str],
) -> Iterator[RealClientPatcherStack]:
    with RealClientPatcherStack.start(
        real_keycloak, openbao, openbao.new_kv_mount(), tmp_path / "other", clients, service_account
    ) as world:
        yield world


def test_two_realms_first_run_writes_and_annotates_second_run_changes_nothing(
    stack: RealClientPatcherStack,
) -> None:
    first = run_clean(stack)
    assert first.returncode == 0, first.stderr[-3000:]
    assert summary(first)["counts"]["written"] == 4
    for spec in DEFAULT_CLIENTS:
        version, value, metadata = stack.vault_state(spec.name)
        assert (version, value) == (1, stack.keycloak_secret(spec))
        assert metadata["keycloak-realm"] == spec.realm and metadata["keycloak-client-id"] == spec.client_id
    after_first = {c: stack.consumer(*c) for c in CONSUMERS}
    expected = {stack.force_sync_of(name) for name in {c.name for c in DEFAULT_CLIENTS}}
    assert {annotations["force-sync"] for _, annotations in after_first.values()} <= expected
    assert all(annotations["force-sync"].startswith("v1-") for _, annotations in after_first.values())

    second = run_clean(stack)
    assert second.returncode == 0, second.stderr[-3000:]
    assert summary(second)["counts"]["unchanged"] == 4
    assert all(stack.vault_state(spec.name)[0] == 1 for spec in DEFAULT_CLIENTS)
    assert {c: stack.consumer(*c) for c in CONSUMERS} == after_first


def test_missing_public_bearer_only_and_jwt_clients_and_a_missing_realm_fail_alone(
    real_keycloak: RealServer, openbao: OpenBao, tmp_path: Path
) -> None:
    clients = (
        WWW,
        ClientSpec("ghost-client-secret", "ameide", "ghost", in_keycloak=False),
        ClientSpec("spa-client-secret", "ameide", "spa", public=True),
        ClientSpec("api-client-secret", "partners", "api", bearer_only=True),
        ClientSpec("jwt-client-secret", "partners", "jwt-app", authenticator="client-jwt"),
        ClientSpec("no-realm-client-secret", "nope", "app", in_keycloak=False),
    )
    with other_stack(real_keycloak, openbao, tmp_path, clients, ("master", "client-patcher")) as stack:
        done = run_clean(stack)
        assert done.returncode == 1, done.stderr[-3000:]
        result = entries(done)
        assert (
            result["ghost-client-secret"]["reason"] == "keycloak: client 'ghost' not found in realm 'ameide'"
        )
        assert "is a public client" in result["spa-client-secret"]["reason"]
        assert "is bearer-only" in result["api-client-secret"]["reason"]
        assert "uses 'client-jwt' authentication" in result["jwt-client-secret"]["reason"]
        assert "realm 'nope' not found" in result["no-realm-client-secret"]["reason"]
        assert result[WWW.name]["action"] == "written"
        assert stack.vault_state(WWW.name)[:2] == (1, stack.keycloak_secret(WWW))
        for spec in clients[1:]:
            assert stack.vault_state(spec.name)[0] == 0


def test_rotation_by_run_id_happens_exactly_once(stack: RealClientPatcherStack) -> None:
    rotating = replace(WWW, rotate_run_id="1")
    stack.write_catalog([rotating])
    original = stack.keycloak_secret(WWW)
    assert original is not None
    stack.extra_secrets.append(original)
    for _ in range(3):
        done = run_clean(stack)
        assert done.returncode == 0, done.stderr[-3000:]
    version, value, metadata = stack.vault_state(WWW.name)
    # One rotation: each rotation writes a Vault version, so a second one would have made version 2.
    assert (version, value) == (1, stack.keycloak_secret(WWW))
    assert value != original
    assert metadata["rotation-run-id"] == "1"
    assert stack.consumer("ameide-dev", "www-auth")[1]["force-sync"] == stack.force_sync_of(WWW.name)

    stack.write_catalog([replace(rotating, rotate_run_id="2")])
    rotated = run_clean(stack)
    assert rotated.returncode == 0
    assert entries(rotated)[WWW.name]["reason"].startswith("rotated (new runId '2'")
    assert stack.vault_state(WWW.name)[:2] == (2, stack.keycloak_secret(WWW))
    assert stack.consumer("ameide-dev", "www-auth")[1]["force-sync"] == stack.force_sync_of(WWW.name)
    assert stack.force_sync_of(WWW.name).startswith("v2-")


def test_a_secret_regenerated_in_keycloak_between_two_runs_is_caught_up(
    stack: RealClientPatcherStack,
) -> None:
    assert run_clean(stack).returncode == 0
    old = stack.vault_state(PORTAL.name)[1]
    assert old is not None
    stack.extra_secrets.append(old)
    fresh = stack.server.api.regenerate_secret(PORTAL.realm, PORTAL.client_id)
    done = run_clean(stack)
    assert done.returncode == 0, done.stderr[-3000:]
    result = entries(done)
    assert result[PORTAL.name]["action"] == "written"
    assert summary(done)["counts"]["unchanged"] == 3
    assert stack.vault_state(PORTAL.name)[:2] == (2, fresh)
    assert stack.consumer("partners", "portal-sync")[1]["force-sync"] == stack.force_sync_of(PORTAL.name)
    assert stack.force_sync_of(PORTAL.name).startswith("v2-")


def test_token_expiry_mid_run(real_keycloak: RealServer, openbao: OpenBao, tmp_path: Path) -> None:
    """Tokens of the auth realm live 1 s: the run outlives several of them and still converges."""
    decoys = tuple(
        ClientSpec(f"{client_id}-client-secret", "ameide", client_id)
        for client_id in ("platform-app-master-v2", "platform-app", "www-admin")
    )
    real_keycloak.api.set_access_token_lifespan("ameide", 1)
    try:
        reply = real_keycloak.api.http.post(
            "/realms/ameide/protocol/openid-connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "ameide-patcher",
                "client_secret": real_keycloak.secret_of("ameide", "ameide-patcher"),
            },
        )
        # exp - iat, not `expires_in`: that is exp minus the second the answer was made, 0 when the
        # clock ticked in between
        claims = jwt.decode(reply.json()["access_token"], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 1
        with other_stack(
            real_keycloak, openbao, tmp_path, (*AMEIDE, *decoys), ("ameide", "ameide-patcher")
        ) as stack:
            done = run_clean(stack, "--log-format", "text")
            assert done.returncode == 0, done.stderr[-3000:]
            for spec in stack.clients:
                assert stack.vault_state(spec.name)[:2] == (1, stack.keycloak_secret(spec))
    finally:
        real_keycloak.api.set_access_token_lifespan("ameide", 300)


def test_view_clients_only_reads_but_a_rotation_names_the_missing_role(
    real_keycloak: RealServer, openbao: OpenBao, tmp_path: Path
) -> None:
    with other_stack(real_keycloak, openbao, tmp_path, (PARTNER_API,), ("master", "viewer")) as stack:
        read = run_clean(stack, env=stack.env(admin=False))
        assert read.returncode == 0, read.stderr[-3000:]  # Keycloak <= 26.7: view-clients reads secrets
        assert stack.vault_state(PARTNER_API.name)[:2] == (1, stack.keycloak_secret(PARTNER_API))
        before = stack.keycloak_secret(PARTNER_API)
        rotate = run_clean(stack, "--rotate", PARTNER_API.name, env=stack.env(admin=False))
        assert rotate.returncode == 1
        reason = entries(rotate)[PARTNER_API.name]["reason"]
        assert "permission denied (403" in reason
        assert (
            "needs the roles view-clients and manage-clients of the master client 'partners-realm'" in reason
        )
        assert stack.keycloak_secret(PARTNER_API) == before
        assert stack.vault_state(PARTNER_API.name)[0] == 1


def test_query_clients_only_is_reported_as_missing_view_clients(
    real_keycloak: RealServer, openbao: OpenBao, tmp_path: Path
) -> None:
    with other_stack(real_keycloak, openbao, tmp_path, (WWW,), ("master", "querier")) as stack:
        done = run_clean(stack, env=stack.env(admin=False))
        assert done.returncode == 1
        reason = entries(done)[WWW.name]["reason"]
        assert "needs the roles view-clients and manage-clients of the master client 'ameide-realm'" in reason
        assert "not found" not in reason
        assert stack.vault_state(WWW.name)[0] == 0


def test_refused_service_account_fails_unless_the_password_fallback_is_allowed(
    stack: RealClientPatcherStack,
) -> None:
    wrong = "not-the-secret-" + "0" * 20
    refused = run_clean(stack, env=stack.env(KEYCLOAK_CLIENT_SECRET=wrong))
    assert refused.returncode == 1, refused.stderr[-3000:]
    assert "unauthorized_client" in refused.stderr
    assert all("KEYCLOAK_ALLOW_PASSWORD_FALLBACK" in e["reason"] for e in entries(refused).values())

    allowed = run_clean(
        stack,
        "--log-format",
        "text",
        env=stack.env(KEYCLOAK_CLIENT_SECRET=wrong, KEYCLOAK_ALLOW_PASSWORD_FALLBACK="true"),
    )
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    assert "fell back to the admin password grant" in allowed.stdout + allowed.stderr
    assert "grant=password" in allowed.stderr
    for spec in DEFAULT_CLIENTS:
        assert stack.vault_state(spec.name)[:2] == (1, stack.keycloak_secret(spec))


def test_master_realm_and_realm_local_service_accounts(
    real_keycloak: RealServer, openbao: OpenBao, tmp_path: Path
) -> None:
    """A realm-local identity (roles on `realm-management`) serves its own realm only; the master one
    (roles on `<realm>-realm`) serves both."""
    clients = (WWW, PARTNER_API)
    with other_stack(real_keycloak, openbao, tmp_path, clients, ("ameide", "ameide-patcher")) as local:
        done = run_clean(local, env=local.env(admin=False))
        assert done.returncode == 1
        result = entries(done)
        assert result[WWW.name]["action"] == "written"
        assert local.vault_state(WWW.name)[:2] == (1, local.keycloak_secret(WWW))
        assert result[PARTNER_API.name]["action"] == "failed"
        assert "permission denied (403" in result[PARTNER_API.name]["reason"]
        assert (
            "an identity of realm 'ameide' cannot administer realm 'partners'"
            in result[PARTNER_API.name]["reason"]
        )
        assert local.vault_state(PARTNER_API.name)[0] == 0
    with other_stack(real_keycloak, openbao, tmp_path / "m", clients, ("master", "client-patcher")) as master:
        done = run_clean(master, env=master.env(admin=False))
        assert done.returncode == 0, done.stderr[-3000:]
        for spec in clients:
            assert master.vault_state(spec.name)[:2] == (1, master.keycloak_secret(spec))
