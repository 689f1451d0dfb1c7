"""Benchmark vault-bootstrap: first sync and no-op resync of N external secrets (not a test).

    .venv/bin/python benchmarks/bench_vault_bootstrap.py [--secrets 2000] [--latency 0.0]

Starts a real OpenBao dev server and the Entra ID / Key Vault emulator (tests/support), seeds N AKV
secrets, and runs the real `vault-bootstrap` console script three times: first sync, no-op resync, and
`--verify` resync. Prints wall time and HTTP requests per secret for each side.

How requests are counted:
- Azure: the emulator's own request log (every HTTP request it received, token POSTs included).
- Vault: a small counting reverse proxy in front of OpenBao (VAULT_ADDR points at it). OpenBao's file
  audit device would be the other choice, but OpenBao refuses to enable audit devices through the API
  ("use declarative, config-based audit device management"), and a config-file audit device would mean
  a second way of starting the dev server. The proxy keeps one upstream connection per client
  connection, so it adds little latency.
`--latency` adds that many seconds to every emulator response, to see the bounded fetch pool at work.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.vault_bootstrap_stack import BootstrapStack  # noqa: E402


class CountingProxy:
    """HTTP/1.1 reverse proxy that counts requests (method, path) on their way to `upstream`."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.requests: list[tuple[str, str]] = []
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def setup(self) -> None:
                super().setup()
                # Headers and body are separate writes: without this, Nagle + delayed ACK add ~40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _forward(self) -> None:
                with lock:
                    proxy.requests.append((self.command, self.path))
                conn = getattr(self, "_upstream", None)
                if conn is None:
                    conn = self._upstream = http.client.HTTPConnection(
                        target.hostname, target.port, timeout=60
                    )
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_LIST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.addr = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self) -> int:
        return len(self.requests)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--secrets", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each AKV response")
    args = parser.parse_args()
    n = args.secrets

    with (
        tempfile.TemporaryDirectory(prefix="bench-vault-bootstrap-") as tmp,
        BootstrapStack.start(Path(tmp)) as stack,
    ):
        proxy = CountingProxy(stack.openbao.addr)
        stack.extra_env["VAULT_ADDR"] = proxy.addr
        stack.seed_akv({f"bench-{i:05d}": f"benchmark-value-{i:05d}-{'x' * 24}" for i in range(n)})
        stack.write_catalog([{"name": f"bench-{i:05d}", "origin": "external"} for i in range(n)])
        stack.emulator.latency = args.latency
        stack.settle()
        print(f"vault-bootstrap benchmark: {n} external secrets, AKV latency {args.latency * 1000:.0f} ms")
        print(
            f"{'run':<16} {'exit':>4} {'wall s':>8} {'written':>8} {'AKV req':>8} {'AKV/secret':>10} "
            f"{'value GETs':>10} {'Vault req':>9} {'Vault/secret':>12}"
        )
        for label, extra in (("first sync", []), ("no-op resync", []), ("--verify resync", ["--verify"])):
            stack.emulator.reset_requests()
            vault_before = proxy.count()
            started = time.monotonic()
            done = stack.run("--log-format", "json", *extra, timeout=1800)
            wall = time.monotonic() - started
            if done.returncode != 0:
                print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
                return 1
            counts = json.loads(done.stdout)["counts"]
            akv = stack.emulator.count()
            gets = stack.akv_value_gets()
            vault = proxy.count() - vault_before
            print(
                f"{label:<16} {done.returncode:>4} {wall:>8.2f} {counts['written']:>8} {akv:>8} "
                f"{akv / n:>10.3f} {gets:>10} {vault:>9} {vault / n:>12.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
