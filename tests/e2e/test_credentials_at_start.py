"""Credentials are masked and withheld before anything else: a kubeconfig exec plugin (a child process)
never sees our credentials, and kubeconfig key material never stays in TMPDIR, SIGKILL included."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from lab.client_patcher_stack import KC_ADMIN_PASSWORD, KC_SA_SECRET, ClientPatcherStack
from lab.openbao import OpenBao


@pytest.fixture
def stack(openbao: OpenBao, kv_mount: str, tmp_path: Path) -> Iterator[ClientPatcherStack]:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path / "stack") as world:
        yield world


def rewrite_user(stack: ClientPatcherStack, user: dict[str, Any]) -> None:
    config = yaml.safe_load(stack.kubeconfig.read_text())
    config["users"][0]["user"] = user
    stack.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))


def test_a_failing_exec_plugin_that_prints_its_environment_shows_no_credential(
    stack: ClientPatcherStack, tmp_path: Path
) -> None:
    plugin = tmp_path / "print-env-plugin"
    plugin.write_text("#!/bin/sh\nenv >&2\necho 'exec plugin failed' >&2\nexit 1\n")
    plugin.chmod(0o755)
    rewrite_user(
        stack,
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": str(plugin),
                "interactiveMode": "Never",
            }
        },
    )
    done = stack.run("--log-format", "text", env=stack.env(AZURE_CLIENT_SECRET="azure-secret-abc-123"))
    output = done.stdout + done.stderr
    assert "exec plugin failed" in output  # the plugin ran, and its output was shown
    assert "KEYCLOAK_CLIENT_ID=" in output  # plain settings stay in the environment
    for name in ("VAULT_TOKEN", "KEYCLOAK_CLIENT_SECRET", "KEYCLOAK_ADMIN_PASSWORD", "AZURE_CLIENT_SECRET"):
        assert f"{name}=" not in output, name
    for value in (stack.vault_token, KC_SA_SECRET, KC_ADMIN_PASSWORD, "azure-secret-abc-123"):
        assert value not in output


def key_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()]


def test_no_kubeconfig_key_stays_in_tmpdir_after_sigkill(stack: ClientPatcherStack, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("client-patcher")
    rewrite_user(
        stack,
        {
            "token": "kube-token-for-the-emulator-0001",
            "client-certificate-data": base64.b64encode(cert.cert_chain_pems[0].bytes()).decode(),
            "client-key-data": base64.b64encode(cert.private_key_pem.bytes()).decode(),
        },
    )
    tmpdir = tmp_path / "job-tmp"
    tmpdir.mkdir()
    stack.keycloak.latency = 1.0  # the run is mid-flight, its kubeconfig loaded, for several seconds
    process = subprocess.Popen(
        stack.command("--log-format", "json"),
        env=stack.env(TMPDIR=str(tmpdir)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while stack.keycloak.count(lambda m, p: True) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(10)
    assert process.returncode == -signal.SIGKILL
    assert key_files(tmpdir) == []
