"""Fail fast, fail right, through the real console scripts: a wrong `vault.kvMount` is exit 2 with
nothing written; a Vault that refuses or goes silent ends the run in seconds with one shared reason
(the circuit breaker); messages name the target and the cause; settings problems are reported all at
once; an Entra 429 with Retry-After neither outlives SIGTERM nor the deadline."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import hvac.exceptions
import pytest

from jobs.core.flags import DEFAULT_CONCURRENCY
from lab.client_patcher_stack import ClientPatcherStack
from lab.openbao import OpenBao, free_port
from lab.vault_bootstrap_stack import VAULT_BOOTSTRAP, BootstrapStack
from lab.vault_proxy import Action, Rule, VaultProxy
from tests.support.summary import read_summary

FIXTURE = "C1tr0n3lla-fixture!"


def fixtures(n: int) -> list[dict[str, Any]]:
    return [{"name": f"fx-{i:04d}", "origin": "helm-generated", "fixture": FIXTURE} for i in range(n)]


def entries_of(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    report = read_summary(done.stdout)
    entries = report["entries"]
    assert isinstance(entries, list)
    return entries


def timed(stack: BootstrapStack, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = stack.run("--log-format", "json", *args, env=stack.env(**env), timeout=90)
    return done, time.monotonic() - started


# -- item 1: the pre-flight ---------------------------------------------------------------------------------
def test_a_kv_version_1_mount_is_exit_2_and_nothing_is_written(openbao: OpenBao, tmp_path: Path) -> None:
    mount = f"kv1-{free_port()}"
    openbao.cli("secrets", "enable", f"-path={mount}", "-version=1", "kv")
    with BootstrapStack.start(tmp_path, openbao=openbao) as started:
        stack = dataclasses.replace(started, mount=mount)
        stack.write_catalog(fixtures(2))
        done, _ = timed(stack)
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"vault.kvMount '{mount}'" in done.stderr
        assert "KV version 1" in done.stderr
        with pytest.raises(hvac.exceptions.InvalidPath):  # nothing written: the mount lists no key
            openbao.client().secrets.kv.v1.list_secrets(path="", mount_point=mount)


def test_a_mount_that_does_not_exist_is_exit_2_naming_it(openbao: OpenBao, tmp_path: Path) -> None:
    with BootstrapStack.start(tmp_path, openbao=openbao) as started:
        stack = dataclasses.replace(started, mount="no-such-mount")
        stack.write_catalog(fixtures(2))
        done, _ = timed(stack)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "vault.kvMount 'no-such-mount'" in done.stderr and "no such mount" in done.stderr


def test_a_wrong_token_is_reported_once_not_once_per_entry(openbao: OpenBao, tmp_path: Path) -> None:
    with BootstrapStack.start(tmp_path, openbao=openbao) as stack:
        stack.write_catalog(fixtures(20))
        done, _ = timed(stack, VAULT_TOKEN="s.not-a-real-token")
        assert done.returncode == 1
        entries = entries_of(done)
        assert len(entries) == 20 and all("invalid, revoked or expired" in e["reason"] for e in entries)
        assert done.stderr.count("invalid, revoked or expired") == 1, done.stderr
        assert stack.vault_versions() == {}


# -- item 2: the circuit breaker ----------------------------------------------------------------------------
def test_a_closed_vault_port_fails_the_run_in_seconds_naming_it(openbao: OpenBao, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with BootstrapStack.start(tmp_path, openbao=openbao) as stack:
        stack.write_catalog(fixtures(300))
        done, elapsed = timed(stack, VAULT_ADDR=closed)
        assert done.returncode == 1
        assert elapsed < 10, f"{elapsed:.1f} s"
        reasons = {e["reason"] for e in entries_of(done)}
        assert len(reasons) == 1
        assert f"Vault at {closed}" in reasons.pop()
        assert "connection refused" in done.stderr


def test_vault_closing_its_port_mid_run_trips_the_breaker(openbao: OpenBao, tmp_path: Path) -> None:
    """The pre-flight passes, then the first KV read closes the port: three attempts, then no more
    contact; every entry fails with the one shared reason, logged once."""
    with BootstrapStack.start(tmp_path, openbao=openbao) as stack, VaultProxy(openbao.addr) as proxy:
        stack.write_catalog(fixtures(300))
        proxy.add(Rule(Action.CLOSE, path=f"/v1/{stack.mount}/data/"))
        done, elapsed = timed(stack, VAULT_ADDR=proxy.addr)
        assert done.returncode == 1
        assert elapsed < 10, f"{elapsed:.1f} s"
        entries = entries_of(done)
        assert len(entries) == 300 and all(e["action"] == "failed" for e in entries)
        # one shared reason naming the address; its cause is what the first failures saw (refused, or
        # dropped for a connection the close cut) -- only reads already in flight say otherwise
        shared = re.compile(rf"vault: Vault at {re.escape(proxy.addr)} unavailable: [a-z ]+; not tried")
        reasons = Counter(e["reason"] for e in entries)
        common, count = reasons.most_common(1)[0]
        assert shared.fullmatch(common), sorted(reasons)[:5]
        assert count >= 300 - DEFAULT_CONCURRENCY, sorted(reasons)[:5]
        assert done.stderr.count("giving up on a system for this run") == 1
        assert done.stderr.count("not tried") <= 1  # the per-entry lines do not repeat it
        assert stack.vault_versions() == {}


def test_a_silent_vault_costs_a_few_request_timeouts_whatever_the_entries(
    openbao: OpenBao, tmp_path: Path
) -> None:
    with BootstrapStack.start(tmp_path, openbao=openbao) as stack, VaultProxy(openbao.addr) as proxy:
        stack.write_catalog(fixtures(300))
        hang = proxy.add(Rule(Action.HANG, path=f"/v1/{stack.mount}/data/", hang_seconds=60))
        done, elapsed = timed(stack, "--request-timeout", "0.5", VAULT_ADDR=proxy.addr)
        assert done.returncode == 1
        # 2 x (request timeout x attempts) = 5 s, plus the process start on a loaded node; one timeout
        # per entry would be 150 s
        assert elapsed < 5 + 5, f"{elapsed:.1f} s"
        # the reads in flight when the third timeout opened the breaker; the other entries were not tried
        assert 3 <= hang.matched <= DEFAULT_CONCURRENCY
        reasons = {e["reason"] for e in entries_of(done)}
        assert f"vault: Vault at {proxy.addr} unavailable: timed out; not tried" in reasons


# -- item 3: messages and settings --------------------------------------------------------------------------
def test_only_naming_an_entry_of_another_origin_is_exit_2(openbao: OpenBao, tmp_path: Path) -> None:
    with BootstrapStack.start(tmp_path, openbao=openbao) as stack:
        stack.write_catalog(
            [{"name": "cnpg-app", "origin": "operator-reconciled"}, *fixtures(1)],
        )
        done, _ = timed(stack, "--only", "cnpg-app")
        assert done.returncode == 2, done.stdout + done.stderr
        assert "cnpg-app (origin operator-reconciled)" in done.stderr
        assert "vault-bootstrap does not handle" in done.stderr


def test_every_missing_setting_is_reported_at_once(openbao: OpenBao, kv_mount: str, tmp_path: Path) -> None:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path) as stack:
        env = stack.env(service_account=False, admin=False, VAULT_TOKEN="", KUBECONFIG=str(tmp_path / "nope"))
        done = stack.run(env=env)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "no Vault credential" in done.stderr
        assert "no Keycloak credential" in done.stderr
        assert f"KUBECONFIG: no such file: {tmp_path / 'nope'}" in done.stderr
        no_scheme = stack.run(env=stack.env(VAULT_ADDR="127.0.0.1:8200"))
        assert no_scheme.returncode == 2
        assert "VAULT_ADDR: needs a scheme" in no_scheme.stderr


# -- item 8: every wait interruptible and capped, the Entra token request included ---------------------------
def entra_throttled(stack: BootstrapStack) -> None:
    stack.seed_akv({"ghcr-pull-secret": "ghp_throttledEntra0001"})
    stack.write_catalog([{"name": "ghcr-token", "origin": "external", "azureKeyVault": "ghcr-pull-secret"}])
    stack.emulator.fail_next(50, 429, retry_after=10, path_prefix=f"/{stack.emulator.tenant_id}/oauth2")


@pytest.mark.parametrize("how", ["sigterm", "deadline"])
def test_an_entra_429_with_retry_after_yields_to_sigterm_and_the_deadline(
    openbao: OpenBao, tmp_path: Path, how: str
) -> None:
    with BootstrapStack.start(tmp_path, openbao=openbao) as stack:
        entra_throttled(stack)
        extra = ["--deadline", "2"] if how == "deadline" else []
        process = subprocess.Popen(
            [VAULT_BOOTSTRAP, "--log-format", "json", *extra],
            env=stack.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started = time.monotonic()
        if how == "sigterm":
            # once Entra has answered 429, the job is inside the 10 s Retry-After wait
            throttled = f"/{stack.emulator.tenant_id}/oauth2"
            while not stack.emulator.count(lambda _, path: path.startswith(throttled)):
                assert process.poll() is None and time.monotonic() - started < 30, "no token request"
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            started = time.monotonic()
        stdout, stderr = process.communicate(timeout=60)
        elapsed = time.monotonic() - started
        assert process.returncode == 1, stdout + stderr
        # Bounds well below the 10 s Retry-After (which waiting it out would cost), with room for a
        # loaded CI node: the deadline case includes the process start.
        assert elapsed < (5.0 if how == "sigterm" else 8.0), f"{how}: exit {elapsed:.1f} s later"
        assert read_summary(stdout)["entries"][0]["action"] in ("failed", "skipped")
        assert "ghp_throttledEntra0001" not in stdout + stderr


@pytest.mark.parametrize(
    ("addr", "cause"),
    [
        ("http://vault.invalid:8200", "name resolution failed"),
    ],
)
def test_an_unusable_vault_address_is_named_with_its_cause_and_plain_http_is_warned(
    openbao: OpenBao, kv_mount: str, tmp_path: Path, addr: str, cause: str
) -> None:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path) as stack:
        started = time.monotonic()
        done = stack.run("--request-timeout", "0.3", env=stack.env(VAULT_ADDR=addr))
        elapsed = time.monotonic() - started
        assert done.returncode == 1, done.stdout + done.stderr
        assert elapsed < 8, f"{elapsed:.1f} s"
        report = read_summary(done.stdout)
        assert {e["reason"] for e in report["entries"]} == {
            f"vault: Vault at {addr} unavailable: {cause}; not tried"
        }
        assert any(w.startswith(f"Vault at {addr} is plain http://") for w in report["warnings"])
