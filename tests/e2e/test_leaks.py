"""Leak hunting against the real console scripts: force library and server errors mid-run (emulator
fault knobs, responses that echo what they were sent, malformed bodies, a broken kubeconfig) and assert
that no secret value — nor its head or tail — reaches stdout or stderr.

Some of these failed against real leaks (a broken KUBECONFIG's token in a raw traceback, an Entra error
echoing the client assertion cut before redaction); they now guard the fixes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from emulators.base import Request, Response
from lab.client_patcher_stack import (
    DEFAULT_CLIENTS,
    KC_ADMIN_PASSWORD,
    KC_SA_SECRET,
    ClientPatcherStack,
    clean_env,
    vault_policy,
)
from lab.openbao import OpenBao
from lab.vault_bootstrap_stack import BootstrapStack
from tests.support.summary import read_summary

BIN = Path(sys.executable).parent
PLATFORM, WWW, PORTAL, PARTNER_API = DEFAULT_CLIENTS


def assert_clean(done: subprocess.CompletedProcess[str], values: Iterable[str]) -> None:
    output = done.stdout + done.stderr
    for value in values:
        assert value not in output, "a secret value was printed"
        assert value[:12] not in output, "the head of a secret value was printed"
        assert value[-12:] not in output, "the tail of a secret value was printed"


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        return read_summary(done.stdout)
    except ValueError:
        pytest.fail(f"no JSON summary (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def intercept(
    monkeypatch: pytest.MonkeyPatch, emulator: Any, answer: Callable[[Request], Response | None]
) -> None:
    """Let `answer` reply first (None: the emulator's own handling)."""
    original = emulator.handle

    def handle(request: Request) -> Response:
        return answer(request) or original(request)

    monkeypatch.setattr(emulator, "handle", handle)


# -- a broken kubeconfig: crash before the entry loop ------------------------------------------------
KUBE_TOKEN = "Kube-Static-Token-Zq9-7731"


@pytest.mark.parametrize("job", ["client-patcher", "smoke"])
def test_broken_kubeconfig_never_prints_its_token(job: str, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        f"users: [{{name: u, user: {{token: *{KUBE_TOKEN}}}}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "environment: dev\nvault: {kvMount: secret}\nkeycloak: {url: 'http://127.0.0.1:9'}\n"
        "secrets:\n"
        "  - name: app-client-secret\n    origin: service-generated\n"
        "    keycloak: {realm: r, clientId: app}\n    consumers: [{namespace: ns, name: es}]\n"
    )
    env = clean_env()
    env.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "VAULT_ADDR": "http://127.0.0.1:9",
            "VAULT_TOKEN": "hvs.Zq9-vault-token-unused",
            "KEYCLOAK_ADMIN_USERNAME": "admin",
            "KEYCLOAK_ADMIN_PASSWORD": "Zq9-admin-password-unused",
        }
    )
    command = (
        [str(BIN / "client-patcher")]
        if job == "client-patcher"
        else [str(BIN / "secret-origin"), "smoke", "--consumers"]
    )
    done = subprocess.run(
        [*command, "--catalog", str(catalog), "--log-format", "json", "--summary", "full"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_clean(done, [KUBE_TOKEN])
    assert "Traceback" not in done.stderr
    assert done.returncode == 2  # a bad invocation, reported as one


# -- client-patcher: Keycloak and Vault errors mid-run ---------------------------------------------
@pytest.fixture
def patcher(openbao: OpenBao, kv_mount: str, tmp_path: Path) -> Iterator[ClientPatcherStack]:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path / "stack") as world:
        yield world


def test_token_endpoint_echoing_the_login_form_prints_no_credential(
    patcher: ClientPatcherStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def echo(request: Request) -> Response | None:
        if request.path.endswith("/protocol/openid-connect/token"):
            form = request.body.decode()
            return Response.json(
                401, {"error": "invalid_client", "error_description": f"Invalid client credentials: {form}"}
            )
        return None

    intercept(monkeypatch, patcher.keycloak, echo)
    done = patcher.run("--summary", "full")
    assert done.returncode == 1
    assert "invalid_client" in done.stdout
    assert {e["action"] for e in summary(done)["entries"]} == {"failed"}
    assert_clean(done, [KC_ADMIN_PASSWORD, KC_SA_SECRET, *patcher.secret_values()])


def test_token_endpoint_failing_until_the_deadline_prints_no_credential(patcher: ClientPatcherStack) -> None:
    patcher.keycloak.fail_next(50, 500, path_prefix="/realms/master/protocol")
    done = patcher.run("--summary", "full", "--deadline", "4")
    assert done.returncode == 1
    assert "retrying after a transient error" in done.stderr
    assert_clean(done, patcher.secret_values())


def test_token_response_that_is_not_json_prints_nothing_of_its_body(
    patcher: ClientPatcherStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaked_token = "Zq9-access-token-in-a-broken-body-4242"

    def broken(request: Request) -> Response | None:
        if request.path.endswith("/protocol/openid-connect/token"):
            body = f'{{"access_token": "{leaked_token}", "expires_in": 60, '.encode()
            return Response(200, body, {"Content-Type": "application/json"})
        return None

    intercept(monkeypatch, patcher.keycloak, broken)
    done = patcher.run("--summary", "full")
    assert done.returncode == 1
    assert "not Keycloak's JSON" in done.stdout
    assert_clean(done, [leaked_token, *patcher.secret_values()])


def test_clients_search_that_is_not_json_prints_none_of_the_secrets_it_holds(
    patcher: ClientPatcherStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The secrets in this body were never registered with the redaction filter: only our own
    messages stand between them and the output."""
    secrets = [v for v in patcher.secret_values() if v not in (KC_ADMIN_PASSWORD, KC_SA_SECRET)]

    def html(request: Request) -> Response | None:
        if request.path.startswith("/admin/realms/") and request.path.endswith("/clients"):
            page = "<html><pre>" + "\n".join(f"secret={s}" for s in secrets) + "</pre>"
            return Response(200, page.encode(), {"Content-Type": "text/html"})
        return None

    intercept(monkeypatch, patcher.keycloak, html)
    done = patcher.run("--summary", "full")
    assert done.returncode == 1
    assert "not JSON" in done.stdout
    assert_clean(done, patcher.secret_values())


def test_admin_api_errors_with_keycloak_bodies_print_no_secret(patcher: ClientPatcherStack) -> None:
    patcher.keycloak.fail_next(1, 401, path_prefix="/admin")  # a token renewal mid-run
    patcher.keycloak.fail_next(1, 403, path_prefix=f"/admin/realms/{PORTAL.realm}")
    patcher.keycloak.fail_next(20, 500, path_prefix=f"/admin/realms/{PARTNER_API.realm}/clients")
    done = patcher.run("--summary", "full", "--deadline", "6")
    assert done.returncode == 1
    results = {e["entry"]: e["action"] for e in summary(done)["entries"]}
    assert results[WWW.name] == "written"
    assert results[PARTNER_API.name] == "failed"
    assert_clean(done, patcher.secret_values())


def test_vault_permission_denied_on_one_key_prints_no_secret(patcher: ClientPatcherStack) -> None:
    allowed = [spec.name for spec in DEFAULT_CLIENTS if spec is not WWW]
    policy = f"leaks-{patcher.mount}"
    patcher.openbao.write_policy(policy, vault_policy(patcher.mount, allowed))
    token = patcher.openbao.token_with_policies(policy)
    done = patcher.run("--summary", "full", env=patcher.env(VAULT_TOKEN=token))
    assert done.returncode == 1
    results = {e["entry"]: e for e in summary(done)["entries"]}
    assert results[WWW.name]["action"] == "failed"
    assert "permission denied" in results[WWW.name]["reason"]
    assert_clean(done, [token, *patcher.secret_values()])


def test_consumer_verification_failures_print_no_secret(patcher: ClientPatcherStack) -> None:
    """Stale Secrets (an old value, compared by digest) and an ESO Ready message that echoes the value
    being synced: the failure reasons name consumers, keys and versions, never a value or a digest."""
    import hashlib

    secret = patcher.keycloak_secret(PLATFORM)
    assert secret
    sync, auth = PLATFORM.consumers
    patcher.kube.add_secret(*sync, {"value": "previous-" + secret[::-1]})
    patcher.extra_secrets.append("previous-" + secret[::-1])
    patcher.eso.fault(*sync, "stale", "stale")
    patcher.eso.fault(*auth, "error", "error")
    patcher.eso.error_message = f"could not get secret data from provider: value {secret} rejected"
    done = patcher.run("--summary", "full", "--only", PLATFORM.name, "--consumer-timeout", "3")
    assert done.returncode == 1
    (entry,) = summary(done)["entries"]
    assert "holds another value" in entry["reason"] and "Ready=False" in entry["reason"]
    digests = [hashlib.sha256(v.encode()).hexdigest() for v in (secret, "previous-" + secret[::-1])]
    assert_clean(done, [*patcher.secret_values(), *digests])


def test_dry_run_with_rotation_prints_no_secret(patcher: ClientPatcherStack) -> None:
    done = patcher.run("--summary", "full", "--dry-run", "--rotate", WWW.name, "--log-format", "text")
    assert done.returncode == 0, done.stderr
    assert "DRY-RUN" in done.stdout
    assert_clean(done, patcher.secret_values())


# -- vault-bootstrap: Entra ID and Key Vault errors mid-run ------------------------------------------
@pytest.fixture
def bootstrap(openbao: OpenBao, tmp_path: Path) -> Iterator[BootstrapStack]:
    with BootstrapStack.start(tmp_path, openbao=openbao) as started:
        yield started


EXTERNAL = [{"name": "app-one", "origin": "external"}, {"name": "app-two", "origin": "external"}]
AKV_VALUES = {"app-one": "Zq9-akv-value-one-7731", "app-two": "q7#"}  # the second is below the minimum


def federated_jwt(stack: BootstrapStack) -> str:
    return stack.token_file.read_text(encoding="utf-8").strip()


def test_entra_error_echoing_the_client_assertion_prints_no_part_of_it(
    bootstrap: BootstrapStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap.seed_akv(AKV_VALUES)
    bootstrap.write_catalog(EXTERNAL)

    def echo(request: Request) -> Response | None:
        if request.path.endswith("/oauth2/v2.0/token"):
            assertion = parse_qs(request.body.decode()).get("client_assertion", [""])[0]
            description = f"AADSTS50027: Invalid JWT token {assertion}. Trace ID: 0 Correlation ID: 0"
            return Response.json(400, {"error": "invalid_request", "error_description": description})
        return None

    intercept(monkeypatch, bootstrap.emulator, echo)
    done = bootstrap.run("--log-format", "json", "--summary", "full")
    assert done.returncode == 1
    assert "AADSTS50027" in done.stdout
    for segment in federated_jwt(bootstrap).split("."):
        assert segment not in done.stdout + done.stderr


def test_key_vault_403_429_and_token_errors_print_no_secret(bootstrap: BootstrapStack) -> None:
    bootstrap.seed_akv(AKV_VALUES)
    bootstrap.write_catalog(EXTERNAL)
    bootstrap.emulator.fail_next(1, 500, path_prefix=f"/{bootstrap.emulator.tenant_id}/oauth2")
    bootstrap.emulator.fail_next(2, 429, retry_after=0.2, path_prefix="/secrets/app-one")
    first = bootstrap.run("--log-format", "json", "--summary", "full")
    assert first.returncode == 0, first.stderr
    assert bootstrap.vault_value("app-two") == "q7#"
    assert_clean(first, bootstrap.secret_values())
    assert "q7#" not in first.stdout + first.stderr

    bootstrap.emulator.deny_access(bootstrap.emulator.client_id)
    denied = bootstrap.run("--log-format", "text", "--verify")
    assert denied.returncode == 1
    assert "permission denied" in denied.stdout
    assert_clean(denied, bootstrap.secret_values())
    assert "q7#" not in denied.stdout + denied.stderr


def test_key_vault_value_in_a_malformed_body_is_never_printed(
    bootstrap: BootstrapStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The value in this body never reaches the client, so it is never registered for redaction."""
    bootstrap.seed_akv(AKV_VALUES)
    bootstrap.write_catalog(EXTERNAL)
    unseen = "Zq9-value-only-in-a-broken-body-5151"

    def truncated(request: Request) -> Response | None:
        if request.method == "GET" and request.path.startswith("/secrets/app-one"):
            body = f'{{"value": "{unseen}", "id": "https://x/secrets/app-one/1", '.encode()
            return Response(200, body, {"Content-Type": "application/json; charset=utf-8"})
        return None

    intercept(monkeypatch, bootstrap.emulator, truncated)
    done = bootstrap.run("--log-format", "json", "--summary", "full")
    assert done.returncode == 1
    results = {e["entry"]: e for e in summary(done)["entries"]}
    assert results["app-one"]["action"] == "failed"
    assert results["app-two"]["action"] == "written"
    assert_clean(done, [unseen, *bootstrap.secret_values()])
