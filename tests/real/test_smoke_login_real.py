"""`secret-origin smoke --login --consumers` against the session's real Keycloak 26.7.3, a real OpenBao
populated by client-patcher, and consumer Secrets in the Kubernetes emulator (standing in for ESO)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.core import metadata as md
from lab.client_patcher_stack import DEFAULT_CLIENTS, ClientSpec, assert_no_secret_in
from lab.openbao import OpenBao
from lab.real_client_patcher import RealClientPatcherStack
from lab.real_tier import RealServer
from tests.support.summary import read_summary

SECRET_ORIGIN = str(Path(sys.executable).parent / "secret-origin")
WITH_SERVICE_ACCOUNT = ClientSpec("ameide-patcher-client-secret", "ameide", "ameide-patcher")
PUBLIC = ClientSpec("spa-client-secret", "ameide", "spa")
REJECTED = "unauthorized_client: Invalid client or Invalid client credentials"


@pytest.fixture
def login_stack(
    real_keycloak: RealServer, openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> Iterator[RealClientPatcherStack]:
    clients = (*DEFAULT_CLIENTS, WITH_SERVICE_ACCOUNT)
    with RealClientPatcherStack.start(real_keycloak, openbao, kv_mount, tmp_path / "stack", clients) as stack:
        yield stack


def populate(stack: RealClientPatcherStack) -> None:
    """client-patcher writes Vault; then each consumer's Secret gets Vault's value, as ESO would."""
    done = stack.run()
    assert done.returncode == 0, done.stderr
    sync_consumers(stack)


def sync_consumers(stack: RealClientPatcherStack, only: str | None = None) -> None:
    for spec in stack.clients:
        if only not in (None, spec.name):
            continue
        value = stack.vault_state(spec.name)[1]
        for namespace, name in spec.consumers:
            if value is not None:
                stack.kube.add_secret(namespace, name, {"value": value})


def smoke(
    stack: RealClientPatcherStack, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    kubeconfig = stack.kube.kubeconfig(stack.workdir / "admin-kubeconfig", stack.kube.admin_token)
    env = stack.openbao.env() | {"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin"}
    args = ["smoke", "--catalog", str(stack.catalog_path), "--login", "--consumers", "--login-rate", "20"]
    done = subprocess.run(
        [SECRET_ORIGIN, *args, "--log-format", "json", "--summary", "full", *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
    return done, {e["entry"]: e for e in read_summary(done.stdout)["entries"]}


def test_valid_secrets_pass_without_and_with_a_service_account(login_stack: RealClientPatcherStack) -> None:
    populate(login_stack)
    done, entries = smoke(login_stack)
    assert done.returncode == 0, done.stdout
    assert {e["status"] for e in entries.values()} == {"ok"}
    sa = entries["ameide-patcher-client-secret"]["reason"]
    assert sa.endswith(", login ok: Keycloak accepts the secret")
    www = entries["www-client-secret"]["reason"]
    assert "1 consumer(s) in sync" in www
    assert "login ok: Keycloak accepts the secret (no service account" in www


def test_a_secret_regenerated_behind_our_back_fails_vault_and_consumers(
    login_stack: RealClientPatcherStack,
) -> None:
    populate(login_stack)
    login_stack.server.api.regenerate_secret("ameide", "www")
    done, entries = smoke(login_stack)
    assert done.returncode == 1
    www = entries["www-client-secret"]
    assert www["status"] == "fail"
    assert f"Keycloak rejects the secret in Vault ({REJECTED})" in www["reason"]
    assert "consumer ameide-dev/www-auth holds a secret Keycloak rejects" in www["reason"]
    assert {n: e["status"] for n, e in entries.items() if n != "www-client-secret"} == {
        "platform-app-master-client-secret": "ok",
        "partner-portal-client-secret": "ok",
        "partner-api-client-secret": "ok",
        "ameide-patcher-client-secret": "ok",
    }
    # client-patcher catches Vault up; the consumer ESO has not refreshed is still named, Vault is not.
    # (ESO does not refresh here, so client-patcher runs without its consumer verification.)
    assert login_stack.kube.eso_reconciler is not None
    login_stack.kube.eso_reconciler.mode = "never"
    assert login_stack.run("--no-verify-consumers").returncode == 0
    done, entries = smoke(login_stack)
    assert done.returncode == 1
    reason = entries["www-client-secret"]["reason"]
    assert "Keycloak rejects the secret in Vault" not in reason
    assert "consumer ameide-dev/www-auth holds a secret Keycloak rejects" in reason
    sync_consumers(login_stack, "www-client-secret")
    done, entries = smoke(login_stack)
    assert done.returncode == 0, done.stdout


def test_a_public_client_is_skipped(login_stack: RealClientPatcherStack) -> None:
    populate(login_stack)
    login_stack.write_catalog((*login_stack.clients, PUBLIC))
    # client-patcher never stores a public client's secret (docs/design.md#traps, trap 3): a hand-written
    # value stands in for one left over from before the client was made public.
    kv = login_stack.vault().secrets.kv.v2
    kv.create_or_update_secret(
        path=PUBLIC.name, secret={"value": "left-over-value"}, mount_point=login_stack.mount
    )
    ours = md.stamp(
        origin="service-generated",
        authority=md.AUTHORITY_KEYCLOAK,
        fixture="false",
        keycloak_realm=PUBLIC.realm,
        keycloak_client_id=PUBLIC.client_id,
    )
    kv.update_metadata(path=PUBLIC.name, custom_metadata=ours, mount_point=login_stack.mount)
    done, entries = smoke(login_stack)
    assert done.returncode == 0, done.stdout
    assert "login skipped: public client: it has no secret to check" in entries[PUBLIC.name]["reason"]


def audit(stack: RealClientPatcherStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = stack.openbao.env() | {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [SECRET_ORIGIN, "audit", "--catalog", str(stack.catalog_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
    return done


def test_audit_login_column(login_stack: RealClientPatcherStack) -> None:
    populate(login_stack)
    plain = audit(login_stack)
    assert plain.returncode == 0, plain.stdout
    assert "Login" not in plain.stdout
    login_stack.server.api.regenerate_secret("partners", "partner-api")
    done = audit(login_stack, "--login", "--format", "json")
    assert done.returncode == 1
    cells = {row["secret"]: row["login"] for row in json.loads(done.stdout)["rows"]}
    assert cells["partner-api-client-secret"] == f"fail: Keycloak rejects the secret in Vault ({REJECTED})"
    assert cells["ameide-patcher-client-secret"] == "ok: Keycloak accepts the secret"
    assert cells["www-client-secret"].startswith("ok: Keycloak accepts the secret (no service account")
    table = audit(login_stack, "--login").stdout
    assert "| Severity | Note | Login |" in table
