"""Run-level failure modes through the real console scripts: a sealed Vault, and a Keycloak that hangs
past the run's --deadline. Each must end with one summary naming the cause, exit 1, and no secret."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.client_patcher_stack import DEFAULT_CLIENTS, ClientPatcherStack, assert_no_secret_in
from lab.openbao import OpenBao
from lab.vault_bootstrap_stack import BootstrapStack
from tests.support.summary import read_summary


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    payload = read_summary(done.stdout)
    assert isinstance(payload, dict)
    return payload


def test_client_patcher_against_a_sealed_vault_fails_every_entry_saying_sealed(
    private_openbao: OpenBao, tmp_path: Path
) -> None:
    with ClientPatcherStack.start(private_openbao, private_openbao.new_kv_mount(), tmp_path) as stack:
        private_openbao.cli("operator", "seal")
        done = stack.run("--summary", "full")
        assert done.returncode == 1
        report = summary(done)
        entries = report["entries"]
        assert isinstance(entries, list) and len(entries) == len(DEFAULT_CLIENTS)
        # the pre-flight meets the sealed Vault: every entry fails with the one reason, the run stops
        assert all(e["action"] == "failed" and "Vault is sealed" in e["reason"] for e in entries)
        assert report["stopped_by"] == "sealed"
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
        done = stack.run("--log-format", "json", "--summary", "full")
        assert done.returncode == 1
        report = summary(done)
        entries = report["entries"]
        assert isinstance(entries, list)
        assert [e["action"] for e in entries] == ["failed", "failed"]  # the pre-flight meets the seal
        assert report["stopped_by"] == "sealed"
        assert all("sealed" in e["reason"] for e in entries)
        assert "ghp_sealedTest00001" not in done.stdout + done.stderr
        assert "C1tr0n3lla!" not in done.stdout + done.stderr


def test_a_hanging_keycloak_cannot_hold_the_run_past_its_deadline(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path) as stack:
        stack.keycloak.latency = 30  # every request hangs far longer than the run may take
        started = time.monotonic()
        done = stack.run("--summary", "full", "--deadline", "3", timeout=60)
        elapsed = time.monotonic() - started
        assert done.returncode == 1
        assert elapsed < 15, f"the run took {elapsed:.1f} s despite --deadline 3"
        entries = summary(done)["entries"]
        assert isinstance(entries, list) and len(entries) == len(DEFAULT_CLIENTS)
        assert all(e["action"] == "failed" for e in entries)
        assert any("timed out" in e["reason"] for e in entries)
        assert all(stack.vault_state(s.name)[0] == 0 for s in DEFAULT_CLIENTS)
        assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())


@contextmanager
def never_answering_server() -> Iterator[str]:
    """An address that takes connections (the kernel completes the handshake into the backlog) and
    never answers a request: a hung server, as a client sees one."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        host, port = server.getsockname()
        yield f"http://{host}:{port}"


def run_timed(
    run: Callable[[], subprocess.CompletedProcess[str]],
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = run()
    return done, time.monotonic() - started


def test_a_hanging_key_vault_cannot_hold_vault_bootstrap_past_its_deadline(
    openbao: OpenBao, tmp_path: Path
) -> None:
    with BootstrapStack.start(tmp_path, openbao=openbao) as stack:
        stack.seed_akv({"ghcr-pull-secret": "ghp_hangingAkvTest0001", "npm-token": "npm_hangingAkvTest0002"})
        stack.write_catalog(
            [
                {"name": "ghcr-token", "origin": "external", "azureKeyVault": "ghcr-pull-secret"},
                {"name": "npm-token", "origin": "external"},
            ]
        )
        stack.emulator.latency = 30  # every request hangs far longer than the run may take
        done, elapsed = run_timed(
            lambda: stack.run("--log-format", "json", "--summary", "full", "--deadline", "3", timeout=60)
        )
        assert done.returncode == 1
        # The deadline plus the process start on a loaded node, below the 10 s request timeout that
        # would end the run without the deadline.
        assert elapsed < 9.5, f"the run took {elapsed:.1f} s despite --deadline 3"
        report = summary(done)
        assert report["interrupted"] is True
        assert report["warnings"] == [
            "anti-pattern check not done: azure-key-vault: list secrets (page 1): timed out"
        ]
        entries = report["entries"]
        assert isinstance(entries, list) and len(entries) == 2
        assert all(e["action"] == "skipped" and "run deadline reached" in e["reason"] for e in entries)
        assert stack.vault_versions() == {}
        assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())


def test_a_hanging_vault_cannot_hold_vault_bootstrap_past_its_deadline(
    openbao: OpenBao, tmp_path: Path
) -> None:
    with BootstrapStack.start(tmp_path, openbao=openbao) as stack, never_answering_server() as hung:
        stack.seed_akv({"ghcr-pull-secret": "ghp_hangingVaultTest01"})
        stack.write_catalog(
            [
                {"name": "ghcr-token", "origin": "external", "azureKeyVault": "ghcr-pull-secret"},
                {"name": "grafana-admin-password", "origin": "helm-generated", "fixture": "C1tr0n3lla!"},
            ]
        )
        env = stack.env(VAULT_ADDR=hung)
        done, elapsed = run_timed(
            lambda: stack.run(
                "--log-format",
                "json",
                "--summary",
                "full",
                "--deadline",
                "3",
                env=env,
                timeout=60,
            )
        )
        assert done.returncode == 1
        # The deadline plus the process start on a loaded node, below the 10 s request timeout that
        # would end the run without the deadline.
        assert elapsed < 9.5, f"the run took {elapsed:.1f} s despite --deadline 3"
        entries = summary(done)["entries"]
        assert isinstance(entries, list) and len(entries) == 2
        # The pre-flight (token lookup) timed out: every entry fails with that one reason, naming Vault.
        assert all(
            e["action"] == "failed" and f"Vault at {hung} unreachable: timed out" in e["reason"]
            for e in entries
        ), entries
        assert stack.akv_value_gets() == 0  # stopped before any value was fetched
        assert_no_secret_in(done.stdout + done.stderr, [*stack.secret_values(), "C1tr0n3lla!"])


def test_a_hanging_vault_fails_client_patcher_saying_timed_out_within_its_deadline(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path) as stack, never_answering_server() as hung:
        env = stack.env(VAULT_ADDR=hung)
        done, elapsed = run_timed(
            lambda: stack.run("--summary", "full", "--deadline", "3", env=env, timeout=60)
        )
        assert done.returncode == 1
        # The deadline plus the process start on a loaded node, below the 10 s request timeout that
        # would end the run without the deadline.
        assert elapsed < 9.5, f"the run took {elapsed:.1f} s despite --deadline 3"
        entries = summary(done)["entries"]
        assert isinstance(entries, list) and len(entries) == len(DEFAULT_CLIENTS)
        assert all(
            e["action"] == "failed" and f"Vault at {hung} unreachable: timed out" in e["reason"]
            for e in entries
        ), entries
        assert all(stack.keycloak.regenerations(s.realm, s.client_id) == 0 for s in DEFAULT_CLIENTS)
        assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
