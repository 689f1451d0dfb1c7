"""Shared plumbing for the project's HTTP(S) emulators.

Every emulator is a real `ThreadingHTTPServer` on a loopback port (0 = pick a free one), optionally
wrapped in TLS, run in a daemon thread. It can be used in-process by tests (`with Emu() as emu:`) or
as a standalone process (`python -m emulators.<name>`) for `make demo` and docker-compose.

Fault-injection knobs live here so they behave the same everywhere:
- `latency`: seconds slept before every response;
- `fail_next(n, status, retry_after)`: the next n requests (optionally matching a path prefix) get
  that status with the vendor's own error body (the subclass renders it via `error_body`);
- `requests`: a log of (method, path) received, for benchmarks and round-trip counting.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] | None = None

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Response:
        merged = {"Content-Type": content_type}
        merged.update(headers or {})
        return cls(status, json.dumps(payload).encode(), merged)


@dataclass
class Request:
    method: str
    path: str  # without query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None


@dataclass
class _Fault:
    remaining: int
    status: int
    retry_after: float | None
    path_prefix: str


class EmulatorServer:
    """Base class: subclasses implement `handle(request) -> Response` and `error_body(status)`."""

    name = "emulator"
    # Seconds between shutdown checks of the serving loop: `stop()` waits up to this long. The stdlib
    # default is kept here; a subclass may lower it so each stop() in a test costs less than half a second.
    poll_interval = 0.5

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.latency = 0.0
        self.requests: list[tuple[str, str]] = []
        self._faults: list[_Fault] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> EmulatorServer:
        handler = _make_handler(self)
        server = ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(self.poll_interval,), name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Foreground mode for `python -m emulators.<name>`."""
        self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.stop()

    # -- knobs -------------------------------------------------------------------------------------
    def fail_next(
        self, n: int, status: int = 503, retry_after: float | None = None, path_prefix: str = ""
    ) -> None:
        with self._lock:
            self._faults.append(_Fault(n, status, retry_after, path_prefix))

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def count(self, predicate: Callable[[str, str], bool] | None = None) -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if predicate is None or predicate(m, p))

    # -- subclass hooks ----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    def error_body(self, status: int, request: Request) -> Response:
        """The vendor's error response for an injected fault; subclasses override."""
        return Response.json(status, {"error": f"HTTP {status}"})

    # -- dispatch ----------------------------------------------------------------------------------
    def _injected_fault(self, request: Request) -> Response | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and request.path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    response = self.error_body(fault.status, request)
                    if fault.retry_after is not None:
                        response.headers = dict(response.headers or {})
                        response.headers["Retry-After"] = _fmt_seconds(fault.retry_after)
                    return response
            self._faults = [f for f in self._faults if f.remaining > 0]
        return None

    def dispatch(self, request: Request) -> Response:
        with self._lock:
            self.requests.append((request.method, request.path))
        if self.latency:
            time.sleep(self.latency)
        return self._injected_fault(request) or self.handle(request)


def _fmt_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _make_handler(emulator: EmulatorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet by default
            return

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: with Nagle on, the client's delayed ACK adds
            # ~40 ms to every response, which real servers do not.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            try:
                response = emulator.dispatch(request)
            except Exception as exc:  # an emulator bug must surface as a 500, not a hung socket
                response = Response.json(500, {"error": f"emulator error: {type(exc).__name__}"})
            self.send_response(response.status)
            for key, value in (response.headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD" and response.body:
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return Handler
