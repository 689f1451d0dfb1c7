"""A counting reverse proxy for the benchmarks (not a test helper).

OpenBao refuses to enable audit devices through the API ("use declarative, config-based audit device
management"), and a config-file audit device would mean a second way of starting the dev server, so
the benchmarks count Vault requests with this small HTTP/1.1 proxy in front of OpenBao (VAULT_ADDR
points at it). It keeps one upstream connection per client connection, so it adds little latency.
"""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


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
