"""Run-level failure modes through the real console scripts: a sealed Vault, and a Keycloak that hangs
past the run's --deadline. Each must end with one summary naming the cause, exit 1, and no secret."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.support.client_patcher_stack import DEFAULT_CLIENTS, ClientPatcherStack, assert_no_secret_in
from tests.support.openbao import OpenBao
from tests.support.vault_bootstrap_stack import BootstrapStack


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    payload = json.loads(done.stdout)
    assert isinstance(payload, dict)
    return payload


def test_client_patcher_against_a_sealed_vault_fails_every_entry_saying_sealed(
    private_openbao: OpenBao, tmp_path: Path
) -> None:
    with ClientPatcherStack.start(private_openbao, private_openbao.new_kv_mount(), tmp_path) as stack:
        private_openbao.cli("operator", "seal")
        done = stack.run()
        assert done.returncode == 1
        report = summary(done)
        entries = report["entries"]
        assert isinstance(entries, list) and len(entries) == len(DEFAULT_CLIENTS)
        assert all(e["action"] == "failed" and "sealed" in e["reason"] for e in entries)
        assert all(stack.keycloak.regenerations(s.realm, s.client_id) == 0 for s in DEFAULT_CLIENTS)
        assert all(
            "force-sync" not in notes
            for _, notes in (stack.consumer(ns, n) for s in DEFAULT_CLIENTS for ns, n in s.consumers)
        )
        assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())


def test_vault_bootstrap_against_a_sealed_vault_fails_saying_sealed(
    private_openbao: OpenBao, tmp_path: Path
) -> None:
    with BootstrapStack.start(tmp_path, openbao=private_openbao) as stack:
        stack.seed_akv({"ghcr-pull-secret": "ghp_sealedTest00001"})
        stack.write_catalog(
            [
                {"name": "ghcr-token", "origin": "external", "azureKeyVault": "ghcr-pull-secret"},
                {"name": "grafana-admin-password", "origin": "helm-generated", "fixture": "C1tr0n3lla!"},
            ]
        )
        private_openbao.cli("operator", "seal")
        done = stack.run("--log-format", "json")
        assert done.returncode == 1
        entries = summary(done)["entries"]
        assert isinstance(entries, list)
        assert [e["action"] for e in entries] == ["failed", "failed"]
        assert all("sealed" in e["reason"] for e in entries)
        assert "ghp_sealedTest00001" not in done.stdout + done.stderr
        assert "C1tr0n3lla!" not in done.stdout + done.stderr


def test_a_hanging_keycloak_cannot_hold_the_run_past_its_deadline(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path) as stack:
        stack.keycloak.latency = 30  # every request hangs far longer than the run may take
        started = time.monotonic()
        done = stack.run("--deadline", "3", timeout=60)
        elapsed = time.monotonic() - started
        assert done.returncode == 1
        assert elapsed < 15, f"the run took {elapsed:.1f} s despite --deadline 3"
        entries = summary(done)["entries"]
        assert isinstance(entries, list) and len(entries) == len(DEFAULT_CLIENTS)
        assert all(e["action"] == "failed" for e in entries)
        assert any("timed out" in e["reason"] for e in entries)
        assert all(stack.vault_state(s.name)[0] == 0 for s in DEFAULT_CLIENTS)
        assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
