"""Zero-downtime rotation against the real Keycloak 26.7.3 (`--features=client-secret-rotation`, a
`secret-rotation` client policy keeping the old secret 1 h on the `rolling-*` clients, none on the
others): the old secret logs in until client-patcher closes the window, the new one throughout; a
consumer that does not converge keeps the window open and fails the entry; a rerun after SIGKILL
finishes without a second regenerate; without the policy a grace rotation is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.client_patcher_stack import CLIENT_PATCHER, ClientSpec, assert_no_secret_in
from lab.openbao import OpenBao
from lab.real_client_patcher import RealClientPatcherStack
from lab.real_tier import RealServer
from lab.vault_proxy import Action, Rule, VaultProxy
from tests.support.summary import read_summary

SINCE = "client.secret.creation.time"
EXPIRES = "client.secret.expiration.time"
ROTATED_SINCE = "client.secret.rotated.creation.time"
NS = "ameide-dev"


def spec(client_id: str, *consumers: str, **rotate: Any) -> ClientSpec:
    options = {"rotate_run_id": "r1", "rotate_grace": "15m", **rotate}
    pairs = tuple((NS, c) for c in consumers)
    return ClientSpec(f"{client_id}-secret", "ameide", client_id, pairs, **options)


@contextmanager
def world(
    server: RealServer, openbao: OpenBao, tmp_path: Path, *clients: ClientSpec
) -> Iterator[RealClientPatcherStack]:
    service_account = ("master", "client-patcher")
    mount = openbao.new_kv_mount()
    with RealClientPatcherStack.start(
        server, openbao, mount, tmp_path / "stack", clients, service_account
    ) as stack:
        yield stack


def login(stack: RealClientPatcherStack, client: ClientSpec, secret: str) -> int:
    reply = httpx.post(
        f"{stack.server.url}/realms/{client.realm}/protocol/openid-connect/token",
        data={"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": secret},
        timeout=30,
    )
    return reply.status_code


def attributes(stack: RealClientPatcherStack, client: ClientSpec) -> dict[str, str]:
    api = stack.server.api
    rep = api.ok("GET", f"/{client.realm}/clients/{api.client_uuid(client.realm, client.client_id)}")
    return dict(rep.get("attributes") or {})


def rotated_status(stack: RealClientPatcherStack, client: ClientSpec) -> int:
    api = stack.server.api
    path = f"/{client.realm}/clients/{api.client_uuid(client.realm, client.client_id)}/client-secret/rotated"
    return api.request("GET", path).status_code


def run(stack: RealClientPatcherStack, *args: str, **env: str) -> tuple[int, dict[str, Any], str]:
    done = stack.run("--summary", "full", *args, env=stack.env(**env))
    assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
    try:
        summary = read_summary(done.stdout)
    except ValueError:
        pytest.fail(f"no summary (exit {done.returncode}): {done.stdout}\n{done.stderr[-3000:]}")
    entry = next(iter(summary["entries"]))
    return done.returncode, entry, done.stderr


def timeline(stderr: str) -> list[tuple[str, str]]:
    """(time, message) of the JSON log lines that mark a rotation's steps."""
    steps = ("rotated the client secret", "wrote the new secret", "annotated consumer", "consumer converged")
    steps += ("rotation window",)
    found = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message = str(record.get("message", ""))
        if any(message.startswith(step) for step in steps):
            found.append((str(record.get("time")), message))
    return found


def test_old_secret_logs_in_until_every_consumer_converged_then_the_window_closes(
    real_keycloak: RealServer, openbao: OpenBao, tmp_path: Path
) -> None:
    client = spec("rolling-close", "rolling-close-sync", "rolling-close-auth")
    with world(real_keycloak, openbao, tmp_path, client) as stack:
        old = stack.keycloak_secret(client)
        assert old is not None
        stack.extra_secrets.append(old)
        code, entry, stderr = run(stack)
        assert code == 0, entry
        new = stack.vault_state(client.name)[1]
        assert new is not None and new == stack.keycloak_secret(client) and new != old
        assert "rotation window closed" in entry["reason"]
        assert (login(stack, client, old), login(stack, client, new)) == (401, 200)
        assert rotated_status(stack, client) == 404
        steps = timeline(stderr)
        print("\nTIMELINE " + client.client_id + "\n" + "\n".join(f"{t}  {m}" for t, m in steps))
        messages = [m for _, m in steps]
        assert messages[0].startswith("rotated the client secret")
        assert messages[-1] == "rotation window closed"


def test_a_consumer_that_does_not_converge_keeps_the_window_open_and_the_rerun_closes_it(
    real_keycloak: RealServer, openbao: OpenBao, tmp_path: Path
) -> None:
    client = spec("rolling-stuck", "rolling-stuck-sync", "rolling-stuck-fine")
    with world(real_keycloak, openbao, tmp_path, client) as stack:
        old = stack.keycloak_secret(client)
        assert old is not None
        stack.extra_secrets.append(old)
        eso = stack.kube.eso_reconciler
        assert eso is not None
        eso.fault(NS, "rolling-stuck-sync", "never", "never")  # ESO never refreshes it, re-annotated or not
        code, entry, _ = run(stack, "--consumer-timeout", "4")
        assert code == 1
        assert entry["action"] == "failed"
        assert f"{NS}/rolling-stuck-sync" in entry["reason"] and "window left open" in entry["reason"]
        new = stack.keycloak_secret(client)
        assert new is not None and stack.vault_state(client.name)[1] == new
        assert (login(stack, client, old), login(stack, client, new)) == (200, 200)  # both, in the window
        regenerated = attributes(stack, client)[SINCE]

        assert f"{NS}/rolling-stuck-fine" not in entry["reason"].split("not converged")[-1]
        code, entry, _ = run(stack)  # ESO works again
        assert code == 0, entry
        assert "rotation window closed" in entry["reason"]
        assert attributes(stack, client)[SINCE] == regenerated  # no second regenerate
        assert stack.keycloak_secret(client) == new
        assert (login(stack, client, old), login(stack, client, new)) == (401, 200)


def test_a_rerun_after_sigkill_mid_rotation_finishes_without_a_second_regenerate(
    real_keycloak: RealServer, openbao: OpenBao, tmp_path: Path
) -> None:
    client = spec("rolling-killed", "rolling-killed-sync")
    with world(real_keycloak, openbao, tmp_path, client) as stack:
        old = stack.keycloak_secret(client)
        assert old is not None
        stack.extra_secrets.append(old)
        before = attributes(stack, client)[SINCE]
        with VaultProxy(openbao.addr) as proxy:
            # The Vault write after the regenerate never answers: the job is killed while it waits.
            hang = proxy.add(Rule(Action.HANG, "POST", rf"/data/{client.name}$", hang_seconds=60))
            args = [str(CLIENT_PATCHER), "--catalog", str(stack.catalog_path), "--log-format", "json"]
            job = subprocess.Popen(
                args,
                env=stack.env(VAULT_ADDR=proxy.addr),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                deadline = time.monotonic() + 90
                # The rule's own counter: a hung request enters the proxy's log only once it ends.
                while hang.fired == 0 and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert hang.fired >= 1, "the job never reached Vault"
            finally:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()
        killed = attributes(stack, client)
        assert killed[SINCE] != before  # regenerated before the kill
        assert rotated_status(stack, client) == 200 and login(stack, client, old) == 200

        code, entry, _ = run(stack)
        assert code == 0, entry
        after = attributes(stack, client)
        assert after[SINCE] == killed[SINCE]  # no second regenerate
        assert stack.keycloak_secret(client) == stack.vault_state(client.name)[1]
        assert "rotation window closed" in entry["reason"]
        assert ROTATED_SINCE not in after and login(stack, client, old) == 401


def test_with_verification_off_the_window_is_left_to_keycloaks_expiry(
    real_keycloak: RealServer, openbao: OpenBao, tmp_path: Path
) -> None:
    client = spec("rolling-off", "rolling-off-sync")
    with world(real_keycloak, openbao, tmp_path, client) as stack:
        old = stack.keycloak_secret(client)
        assert old is not None
        stack.extra_secrets.append(old)
        code, entry, _ = run(stack, "--no-verify-consumers")
        assert code == 0, entry
        assert "consumer verification is off: window not closed" in entry["reason"]
        new = stack.keycloak_secret(client)
        assert new is not None and new != old
        assert rotated_status(stack, client) == 200
        assert (login(stack, client, old), login(stack, client, new)) == (200, 200)


def test_without_the_policy_a_grace_rotation_is_refused_and_nothing_changes(
    real_keycloak: RealServer, openbao: OpenBao, tmp_path: Path
) -> None:
    client = spec("platform-app")  # no secret-rotation policy applies to it
    with world(real_keycloak, openbao, tmp_path, client) as stack:
        secret, since = stack.keycloak_secret(client), attributes(stack, client)[SINCE]
        code, entry, _ = run(stack)
        assert code == 1 and entry["action"] == "failed"
        assert "rotation refused (grace 15m)" in entry["reason"] and "hardCut: true" in entry["reason"]
        assert (stack.keycloak_secret(client), attributes(stack, client)[SINCE]) == (secret, since)
        assert stack.vault_state(client.name)[0] == 0


def test_an_expired_secret_fails_its_entry_untouched_and_a_runid_bump_rotates_it(
    real_keycloak: RealServer, openbao: OpenBao, tmp_path: Path
) -> None:
    # `expiring-patched` is under a secret-rotation policy whose secrets expire after EXPIRING_PERIOD s.
    client = ClientSpec("expiring-patched-secret", "ameide", "expiring-patched")
    with world(real_keycloak, openbao, tmp_path, client) as stack:
        api = stack.server.api
        path = f"/ameide/clients/{api.client_uuid('ameide', 'expiring-patched')}"
        rep = api.ok("GET", path)
        api.ok("PUT", path, json={k: v for k, v in rep.items() if k not in ("secret", "access")})
        expires = int(attributes(stack, client)[EXPIRES])
        while time.time() < expires + 1.2:  # Keycloak compares whole seconds
            time.sleep(0.2)
        old, since = stack.keycloak_secret(client), attributes(stack, client)[SINCE]
        assert old is not None and login(stack, client, old) == 401
        stack.extra_secrets.append(old)

        code, entry, _ = run(stack)
        assert code == 1 and entry["action"] == "failed", entry
        assert "the client secret of ameide/expiring-patched expired at" in entry["reason"]
        assert "Keycloak refuses it at every login" in entry["reason"]
        # no client update: it would have made Keycloak regenerate the secret outside any runId
        assert (stack.keycloak_secret(client), attributes(stack, client)[SINCE]) == (old, since)

        stack.write_catalog([replace(client, rotate_run_id="after-expiry")])
        code, entry, _ = run(stack)  # --verify-login proves Keycloak accepts what was written
        assert code == 0 and "rotated" in entry["reason"], entry
        new = stack.vault_state(client.name)[1]
        assert new is not None and new != old and new == stack.keycloak_secret(client)
