"""client-patcher's consumer verification (docs/design.md#client-patcher) against a real OpenBao and the
Kubernetes emulator's ESO reconciler simulation: after force-sync, ESO must report a refresh and each
target Secret must hold the value just written (digests); a stale consumer is re-annotated once, and
one that still does not converge fails its entry, named with the reason."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.client_patcher_stack import DEFAULT_CLIENTS, ClientPatcherStack, assert_no_secret_in
from lab.openbao import OpenBao
from tests.support.summary import read_summary

PLATFORM = DEFAULT_CLIENTS[0]
(SYNC, AUTH) = PLATFORM.consumers  # two consumers of one entry, in ameide-dev
FAST = ("--consumer-timeout", "3")


@pytest.fixture
def stack(openbao: OpenBao, kv_mount: str, tmp_path: Path) -> Iterator[ClientPatcherStack]:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path / "stack", [PLATFORM]) as world:
        yield world


def run(stack: ClientPatcherStack, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = stack.run("--summary", "full", *args)
    assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
    (entry,) = read_summary(done.stdout)["entries"]
    return done, entry


def digest(raw: bytes | str | None) -> str | None:
    if raw is None:
        return None
    return hashlib.sha256(raw.encode() if isinstance(raw, str) else raw).hexdigest()


def held_digest(stack: ClientPatcherStack, consumer: tuple[str, str]) -> str | None:
    data = stack.kube.secret_data(*consumer) or {}
    return digest(data.get("value"))


def test_converged_consumers_hold_the_new_value_and_the_entry_succeeds(stack: ClientPatcherStack) -> None:
    done, entry = run(stack)
    assert done.returncode == 0, done.stderr[-2000:]
    assert entry["action"] == "written"
    assert f"converged: {SYNC[0]}/{SYNC[1]}, {AUTH[0]}/{AUTH[1]}" in entry["reason"]
    value = stack.force_sync_of(PLATFORM.name)
    for consumer in (SYNC, AUTH):
        assert held_digest(stack, consumer) == digest(stack.keycloak_secret(PLATFORM))
        assert stack.eso.history(*consumer) == [value]  # annotated once, never re-annotated
    assert {c["outcome"] for c in entry["consumers"]} == {"patched"}


def test_eso_never_refreshing_fails_the_entry_after_exactly_one_reannotation(
    stack: ClientPatcherStack,
) -> None:
    stack.eso.mode = "never"
    done, entry = run(stack, *FAST)
    assert done.returncode != 0
    assert entry["action"] == "failed"
    value = stack.force_sync_of(PLATFORM.name)
    for namespace, name in (SYNC, AUTH):
        assert (
            f"consumer {namespace}/{name} did not converge after one re-annotation: "
            f"ESO never refreshed it after force-sync={value}-r"
        ) in entry["reason"]
        history = stack.eso.history(namespace, name)
        assert len(history) == 2 and history[0] == value
        assert history[1].startswith(f"{value}-r") and history[1] != value
        assert stack.kube.secret_data(namespace, name) is None
    assert {c["outcome"] for c in entry["consumers"]} == {"failed"}
    # the Vault write stands; a rerun counts the re-annotated consumers as current and patches nothing
    rerun, again = run(stack, *FAST)
    assert again["action"] == "unchanged" and rerun.returncode == 0, again["reason"]
    assert all(len(stack.eso.history(*c)) == 2 for c in (SYNC, AUTH))


def test_stale_then_fresh_after_the_reannotation_succeeds(stack: ClientPatcherStack) -> None:
    stack.eso.fault(*SYNC, "stale")  # the first refresh reads an old value (a lagging standby)
    done, entry = run(stack, "--consumer-timeout", "6")
    assert done.returncode == 0, entry["reason"]
    assert f"re-annotated {SYNC[0]}/{SYNC[1]}" in entry["reason"]
    assert len(stack.eso.history(*SYNC)) == 2 and len(stack.eso.history(*AUTH)) == 1
    for consumer in (SYNC, AUTH):
        assert held_digest(stack, consumer) == digest(stack.keycloak_secret(PLATFORM))


def test_stale_twice_names_the_consumer_and_the_other_value(stack: ClientPatcherStack) -> None:
    stack.eso.fault(*SYNC, "stale", "stale")
    done, entry = run(stack, *FAST)
    assert done.returncode != 0 and entry["action"] == "failed"
    assert (
        f"consumer {SYNC[0]}/{SYNC[1]} did not converge after one re-annotation: ESO refreshed it but its "
        f"Secret {SYNC[0]}/{SYNC[1]} key 'value' holds another value, not Vault v1"
    ) in entry["reason"]
    assert f"{AUTH[0]}/{AUTH[1]}" not in entry["reason"].split("consumer refresh failed")[1]
    assert {c["name"]: c["outcome"] for c in entry["consumers"]} == {SYNC[1]: "failed", AUTH[1]: "patched"}


def test_ready_false_surfaces_esos_message(stack: ClientPatcherStack) -> None:
    stack.eso.mode = "error"
    stack.eso.error_message = "could not get secret data from provider: permission denied"
    done, entry = run(stack, *FAST)
    assert done.returncode != 0 and entry["action"] == "failed"
    assert (
        f"consumer {SYNC[0]}/{SYNC[1]} did not converge after one re-annotation: ESO reports Ready=False "
        "(SecretSyncedError: could not get secret data from provider: permission denied)"
    ) in entry["reason"]


def test_an_unreadable_target_secret_is_a_precise_reason(stack: ClientPatcherStack) -> None:
    # the consumer writes a Secret of another name, which client-patcher may not get (403)
    stack.kube.add_external_secret(
        *SYNC, remote_key=f"{stack.mount}/{PLATFORM.name}", refresh_policy="OnChange", target="renamed"
    )
    done, entry = run(stack, *FAST)
    assert done.returncode != 0 and entry["action"] == "failed"
    reason = entry["reason"]
    assert f"consumer {SYNC[0]}/{SYNC[1]} did not converge after force-sync: " in reason  # no re-annotation
    assert f"its Secret {SYNC[0]}/renamed cannot be read: " in reason
    assert "403" in reason and "clientPatcher.rbac.targetSecrets" in reason
    assert len(stack.eso.history(*SYNC)) == 1
    assert held_digest(stack, AUTH) == digest(stack.keycloak_secret(PLATFORM))


def test_no_verify_consumers_reads_no_secret_and_succeeds(stack: ClientPatcherStack) -> None:
    # a Secret read would be refused (403) and ESO never refreshes: only an unverified run succeeds
    stack.kube.add_external_secret(
        *SYNC, remote_key=f"{stack.mount}/{PLATFORM.name}", refresh_policy="OnChange", target="renamed"
    )
    stack.eso.mode = "never"
    done, entry = run(stack, "--no-verify-consumers")
    assert done.returncode == 0, entry["reason"]
    assert entry["action"] == "written" and "converged" not in entry["reason"]
    assert [len(stack.eso.history(*c)) for c in (SYNC, AUTH)] == [1, 1]


def test_sigterm_during_the_wait_stops_promptly(stack: ClientPatcherStack) -> None:
    stack.eso.mode = "never"
    process = subprocess.Popen(
        stack.command("--log-format", "json", "--summary", "full", "--consumer-timeout", "600"),
        env=stack.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    waited = time.monotonic() + 60
    while not all(stack.eso.history(*c) for c in (SYNC, AUTH)) and time.monotonic() < waited:
        time.sleep(0.1)
    time.sleep(0.5)  # inside the wait
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert time.monotonic() - sent < 10
    assert process.returncode != 0
    assert_no_secret_in(stdout + stderr, stack.secret_values())
    report = read_summary(stdout)
    (entry,) = report["entries"]
    assert report["interrupted"] is True and entry["action"] == "failed"
    assert "did not converge after force-sync (stopped by SIGTERM): ESO never refreshed it" in entry["reason"]
    assert [len(stack.eso.history(*c)) for c in (SYNC, AUTH)] == [1, 1]  # no re-annotation after SIGTERM


def test_the_wait_ends_at_the_run_deadline(stack: ClientPatcherStack) -> None:
    stack.eso.mode = "never"
    started = time.monotonic()
    done, entry = run(stack, "--deadline", "6", "--consumer-timeout", "600")
    assert time.monotonic() - started < 20
    assert done.returncode != 0 and entry["action"] == "failed"
    assert "(run deadline reached): ESO never refreshed it" in entry["reason"]
