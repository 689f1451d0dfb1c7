"""Exactly once under ambiguity: client-patcher against OpenBao behind the fault-injecting proxy.

Every test asserts the final state after each faulted run: how many times Keycloak regenerated the
secret (counted at the emulator), what Vault holds, and that every consumer names the version Vault
holds by the end of the same run — or the run exited non-zero.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobs.patcher.decide import ATTR_INTENT, ATTR_INTENT_SECRET_TIME, ATTR_RUN_ID, KEYCLOAK_SECRET_TIME
from lab.client_patcher_stack import ClientPatcherStack, ClientSpec, assert_no_secret_in
from lab.openbao import OpenBao
from lab.vault_proxy import (
    INTERNAL_ERROR,
    PERMISSION_DENIED,
    SEALED,
    Action,
    Rule,
    VaultProxy,
    unavailable,
)
from tests.support.summary import read_summary

APP = ClientSpec("app-client-secret", "ameide", "app", (("apps", "app-sync"),), rotate_run_id="r1")
PLAIN = replace(APP, rotate_run_id=None)
DATA_WRITE = r"^/v1/[^/]+/data/app-client-secret$"
METADATA = r"^/v1/[^/]+/metadata/app-client-secret$"


@pytest.fixture
def proxy(openbao: OpenBao) -> Iterator[VaultProxy]:
    with VaultProxy(openbao.addr) as vault_proxy:
        yield vault_proxy


def start(openbao: OpenBao, kv_mount: str, tmp_path: Path, spec: ClientSpec = APP) -> ClientPatcherStack:
    return ClientPatcherStack.start(openbao, kv_mount, tmp_path, clients=[spec])


def run(stack: ClientPatcherStack, proxy: VaultProxy, *args: str) -> tuple[int, dict[str, Any]]:
    done = stack.run("--summary", "full", *args, env=stack.env(VAULT_ADDR=proxy.addr), timeout=120)
    assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
    return done.returncode, read_summary(done.stdout)["entries"][0]


def regenerations(stack: ClientPatcherStack) -> int:
    return stack.keycloak.regenerations(APP.realm, APP.client_id)


def consumer_is_current(stack: ClientPatcherStack) -> bool:
    return stack.consumer("apps", "app-sync")[1].get("force-sync") == stack.force_sync_of(APP.name)


def assert_synced(stack: ClientPatcherStack, version: int) -> None:
    """Vault's current version is `version` and holds Keycloak's secret (compared, never shown)."""
    held_version, held = stack.vault_state(APP.name)[:2]
    assert (held_version, held == stack.keycloak_secret(APP)) == (version, True)
    assert consumer_is_current(stack)


def test_500_after_the_write_was_applied_is_written_and_told_in_the_same_run(
    openbao: OpenBao, kv_mount: str, tmp_path: Path, proxy: VaultProxy
) -> None:
    with start(openbao, kv_mount, tmp_path) as stack:
        proxy.add(Rule(Action.FORWARD_THEN_RESPOND, "POST", DATA_WRITE, INTERNAL_ERROR, count=1))
        code, entry = run(stack, proxy)
        assert (code, entry["action"]) == (0, "written")
        assert regenerations(stack) == 1
        assert_synced(stack, 1)
        code, entry = run(stack, proxy)  # the rerun: no second rotation, nothing to do
        assert (code, entry["action"], regenerations(stack)) == (0, "unchanged", 1)


def test_connection_dropped_after_forwarding_is_written_and_told_in_the_same_run(
    openbao: OpenBao, kv_mount: str, tmp_path: Path, proxy: VaultProxy
) -> None:
    with start(openbao, kv_mount, tmp_path) as stack:
        proxy.add(Rule(Action.FORWARD_THEN_DROP, "POST", DATA_WRITE, count=1))
        code, entry = run(stack, proxy)
        assert (code, entry["action"]) == (0, "written")
        assert "NOT written" not in entry["reason"]
        assert regenerations(stack) == 1
        assert_synced(stack, 1)


def test_metadata_refused_for_a_key_without_our_metadata_still_tells_consumers(
    openbao: OpenBao, kv_mount: str, tmp_path: Path, proxy: VaultProxy
) -> None:
    with start(openbao, kv_mount, tmp_path, PLAIN) as stack:
        stack.vault().secrets.kv.v2.create_or_update_secret(
            APP.name, {"value": "written-by-a-human-0001"}, mount_point=kv_mount
        )
        refuse = proxy.add(Rule(Action.RESPOND, "POST", METADATA, PERMISSION_DENIED))
        code, entry = run(stack, proxy)
        assert (code, entry["action"]) == (1, "failed")
        assert "holds the value as v2 but its metadata was not recorded" in entry["reason"]
        assert "check-and-set" not in entry["reason"]
        assert_synced(stack, 2)  # consumers told in the same run, although the entry failed
        code, entry = run(stack, proxy)  # the refusal persists: still failed, still current
        assert (code, entry["action"]) == (1, "failed")
        assert_synced(stack, 2)
        proxy.remove(refuse)
        code, entry = run(stack, proxy)
        assert (code, entry["action"]) == (0, "unchanged")
        assert stack.vault_state(APP.name)[2]["authority"] == "keycloak"
        assert_synced(stack, 2)


def test_metadata_refused_after_a_rotation_never_rotates_again(
    openbao: OpenBao, kv_mount: str, tmp_path: Path, proxy: VaultProxy
) -> None:
    with start(openbao, kv_mount, tmp_path) as stack:
        # the rotation lock's two metadata writes pass; the entry's own metadata write is refused
        refuse = proxy.add(Rule(Action.RESPOND, "POST", METADATA, PERMISSION_DENIED, nth=3))
        states = []
        for _ in range(2):
            code, entry = run(stack, proxy)
            states.append((code, entry["action"], regenerations(stack)))
            assert_synced(stack, 1)
        proxy.remove(refuse)
        code, entry = run(stack, proxy)
        states.append((code, entry["action"], regenerations(stack)))
        assert states == [(1, "failed", 1), (1, "failed", 1), (0, "unchanged", 1)]
        assert stack.vault_state(APP.name)[2]["rotation-run-id"] == "r1"
        assert_synced(stack, 1)


def test_metadata_cas_required_on_the_mount(
    openbao: OpenBao, kv_mount: str, tmp_path: Path, proxy: VaultProxy
) -> None:
    openbao.client().write(f"{kv_mount}/config", metadata_cas_required=True)
    with start(openbao, kv_mount, tmp_path) as stack:
        results = [(run(stack, proxy)[0], regenerations(stack)) for _ in range(3)]
        assert results == [(0, 1), (0, 1), (0, 1)]
        assert stack.vault_state(APP.name)[2]["rotation-run-id"] == "r1"
        assert_synced(stack, 1)


def test_vault_down_after_the_regenerate_then_the_rerun_writes_without_rotating(
    openbao: OpenBao, kv_mount: str, tmp_path: Path, proxy: VaultProxy
) -> None:
    with start(openbao, kv_mount, tmp_path) as stack:
        down = proxy.add(Rule(Action.RESPOND, "POST", DATA_WRITE, INTERNAL_ERROR))
        code, entry = run(stack, proxy, "--deadline", "20")
        assert (code, entry["action"], regenerations(stack)) == (1, "failed", 1)
        assert entry["reason"].startswith("ROTATED in Keycloak")
        assert stack.vault_state(APP.name)[0] == 0
        proxy.remove(down)
        code, entry = run(stack, proxy)
        assert (code, entry["action"], regenerations(stack)) == (0, "written", 1)
        assert_synced(stack, 1)


def test_two_concurrent_rotations_regenerate_once(openbao: OpenBao, kv_mount: str, tmp_path: Path) -> None:
    with (
        VaultProxy(openbao.addr, latency=0.02) as slow,  # a network round trip widens the race window
        start(openbao, kv_mount, tmp_path) as stack,
    ):
        env = stack.env(VAULT_ADDR=slow.addr)
        command = stack.command("--log-format", "json")
        listed = stack.keycloak_secret(APP)
        runs = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        outputs = [r.communicate(timeout=180) for r in runs]
        assert [r.returncode for r in runs] == [0, 0, 0], [err[-1500:] for _, err in outputs]
        assert regenerations(stack) == 1
        # exactly one version, holding the rotated secret: never the dead one first, never a duplicate
        assert_synced(stack, 1)
        rotated = stack.vault_state(APP.name)[1] != listed
        assert rotated
        assert stack.keycloak.client_attributes(APP.realm, APP.client_id)[ATTR_RUN_ID] == "r1"


def test_a_rotation_done_by_a_concurrent_run_while_reading_vault_syncs_the_rotated_secret(
    openbao: OpenBao, kv_mount: str, tmp_path: Path, proxy: VaultProxy
) -> None:
    """The run lists the client (with its secret), then a concurrent run rotates for the same runId
    and records it while this run reads Vault: the record says "done", and the secret listed before
    is dead — the run writes the rotated secret, never the one it listed."""
    with start(openbao, kv_mount, tmp_path) as stack:
        held = proxy.add(Rule(Action.HANG, "GET", DATA_WRITE, count=1, hang_seconds=2))
        command = stack.command("--summary", "full")
        env = stack.env(VAULT_ADDR=proxy.addr)
        with subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as job:
            deadline = time.monotonic() + 60
            while held.fired == 0 and job.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert held.fired == 1
            stack.keycloak.set_secret(APP.realm, APP.client_id, "rotated-by-a-concurrent-run-0001")
            stack.keycloak.set_client_attributes(APP.realm, APP.client_id, {ATTR_RUN_ID: "r1"})
            out, err = job.communicate(timeout=120)
        assert_no_secret_in(out + err, stack.secret_values())
        entry = read_summary(out)["entries"][0]
        assert (job.returncode, entry["action"], regenerations(stack)) == (0, "written", 0), err[-1500:]
        assert_synced(stack, 1)


def test_delete_and_recreate_never_repeats_a_force_sync_value_nor_a_rotation(
    openbao: OpenBao, kv_mount: str, tmp_path: Path, proxy: VaultProxy
) -> None:
    with start(openbao, kv_mount, tmp_path) as stack:
        assert run(stack, proxy)[0] == 0
        before = stack.consumer("apps", "app-sync")[1]["force-sync"]
        stack.vault().secrets.kv.v2.delete_metadata_and_all_versions(APP.name, mount_point=kv_mount)
        code, entry = run(stack, proxy)
        assert (code, entry["action"], regenerations(stack)) == (0, "written", 1)
        assert_synced(stack, 1)  # v1 again, yet a new force-sync value
        assert stack.consumer("apps", "app-sync")[1]["force-sync"] != before


@pytest.mark.parametrize(
    ("moved", "regenerates"),
    [(False, 1), (True, 0)],
    ids=["killed-before-the-regenerate", "killed-after-the-regenerate"],
)
def test_a_run_killed_between_two_steps_leads_to_one_regenerate_in_all(
    openbao: OpenBao, kv_mount: str, tmp_path: Path, proxy: VaultProxy, moved: bool, regenerates: int
) -> None:
    """What a run killed (SIGKILL) after recording its intent leaves behind, with the regenerate done
    or not: the next runs regenerate only if it was not done, and sync Keycloak's current secret."""
    with start(openbao, kv_mount, tmp_path, PLAIN) as stack:
        assert run(stack, proxy)[0] == 0
        created = stack.keycloak.client_attributes(APP.realm, APP.client_id)[KEYCLOAK_SECRET_TIME]
        intent_time = str(int(created) - 1) if moved else created
        stack.keycloak.set_client_attributes(
            APP.realm, APP.client_id, {ATTR_INTENT: "r1", ATTR_INTENT_SECRET_TIME: intent_time}
        )
        if moved:  # the killed run's regenerate: a new secret, a moved creation time
            stack.keycloak.set_secret(APP.realm, APP.client_id, "regenerated-by-the-killed-run-0001")
        stack.write_catalog([APP])
        for _ in range(2):
            assert run(stack, proxy)[0] == 0
        assert regenerations(stack) == regenerates
        assert stack.keycloak.client_attributes(APP.realm, APP.client_id)[ATTR_RUN_ID] == "r1"
        assert_synced(stack, 2)


def test_a_503_without_the_sealed_error_is_retried_with_its_retry_after(
    openbao: OpenBao, kv_mount: str, tmp_path: Path, proxy: VaultProxy
) -> None:
    with start(openbao, kv_mount, tmp_path, PLAIN) as stack:
        proxy.add(
            Rule(Action.RESPOND, "GET", r"/data/app-client-secret", unavailable(retry_after=1), count=2)
        )
        code, entry = run(stack, proxy)
        assert (code, entry["action"]) == (0, "written")
        assert_synced(stack, 1)


def test_a_sealed_vault_stops_the_run_with_one_message(
    openbao: OpenBao, kv_mount: str, tmp_path: Path, proxy: VaultProxy
) -> None:
    with start(openbao, kv_mount, tmp_path, PLAIN) as stack:
        proxy.add(Rule(Action.RESPOND, "GET", r"/data/", SEALED))
        code, entry = run(stack, proxy)
        assert (code, entry["action"]) == (1, "failed")
        assert "Vault is sealed" in entry["reason"]
        assert proxy.count("GET", f"/v1/{kv_mount}/data/") == 1  # not retried (pre-flight aside)
        assert httpx.get(f"{openbao.addr}/v1/sys/health").status_code == 200
