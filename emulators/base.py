"""Shared plumbing for the project's HTTP(S) emulators.

Every emulator is a real `ThreadingHTTPServer` on a loopback port (0 = pick a free one), optionally
wrapped in TLS, run in a daemon thread. It can be used in-process by tests (`with Emu() as emu:`) or
as a standalone process (`python -m emulators.<name>`, see `main`) for `make demo` and docker-compose.

Routing is a table: each emulator lists `Route(method, pattern, handler)` rows, where a pattern names
its variable segments (`/realms/{realm}/clients/{id}`; `{rest:path}` takes the remainder, slashes
included) and a handler is `handler(emulator, request) -> Response` reading `request.params`. A path no
row matches gets `not_found`, a path some row matches with another method gets `method_not_allowed`
(each emulator renders these in its vendor's shape). A handler stops early by raising an `HttpProblem`,
whose `response()` is sent. Adding an endpoint is adding a row.

Fault-injection knobs live here so they behave the same everywhere:
- `latency`: seconds slept before every response;
- `fail_next(n, status, retry_after)`: the next n requests (optionally matching a path prefix) get
  that status with the vendor's own error body (the subclass renders it via `error_body`);
- `requests`: a log of (method, path) received, for benchmarks and round-trip counting.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
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
    params: dict[str, str] = field(default_factory=dict)  # the route pattern's variables
    user: Any = None  # whoever an emulator's authentication (before the table) admitted

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


class HttpProblem(Exception):
    """Raised by a handler to answer at once; `response()` is what the client gets."""

    def response(self) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError


class Reply(HttpProblem):
    """An `HttpProblem` carrying a ready response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self._response = response

    def response(self) -> Response:
        return self._response


Handler = Callable[[Any, Request], Response]


@dataclass(frozen=True)
class Route:
    """One table row: `method` is one HTTP method or several separated by spaces (`"GET HEAD"`)."""

    method: str
    pattern: str
    handler: Handler


_VARIABLE = re.compile(r"\{(\w+)(:path)?\}")


def _compile(pattern: str, trailing_slash: bool) -> re.Pattern[str]:
    regex, last = "", 0
    for match in _VARIABLE.finditer(pattern):
        regex += re.escape(pattern[last : match.start()])
        regex += f"(?P<{match.group(1)}>{'.*' if match.group(2) else '[^/]+'})"
        last = match.end()
    regex += re.escape(pattern[last:])
    return re.compile(f"^{regex}{'/?' if trailing_slash else ''}$")


class Router:
    """Path first, then method: the first row whose pattern matches the path decides, together with the
    other rows of that same pattern, which methods the path has (so `/x/versions` with a wrong method is a
    405 even if a later row `/x/{version}` would take it)."""

    def __init__(self, routes: Iterable[Route], *, trailing_slash: bool = False) -> None:
        self._rows = [(route, _compile(route.pattern, trailing_slash)) for route in routes]

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """(route, params, []) on a match; (None, params, allowed methods) if only the path matched;
        (None, {}, []) if nothing did."""
        for route, regex in self._rows:
            found = regex.match(path)
            if found is None:
                continue
            same = [row for row, _ in self._rows if row.pattern == route.pattern]
            for row in same:
                if method in row.method.split():
                    return row, found.groupdict(), []
            allowed = [m for row in same for m in row.method.split()]
            return None, found.groupdict(), list(dict.fromkeys(allowed))
        return None, {}, []


@dataclass
class _Fault:
    remaining: int
    status: int
    retry_after: float | None
    path_prefix: str


class EmulatorServer:
    """Base class: subclasses list `routes` and render `not_found`, `method_not_allowed` and `error_body`
    in their vendor's shape; `handle` may be overridden for what runs before the table (authentication)."""

    name = "emulator"
    routes: ClassVar[Sequence[Route]] = ()
    trailing_slash: ClassVar[bool] = False  # whether `/x/` matches the row `/x`
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

    # -- routing -----------------------------------------------------------------------------------
    @classmethod
    def router(cls) -> Router:
        cached = cls.__dict__.get("_router")
        if cached is None:
            cached = Router(cls.routes, trailing_slash=cls.trailing_slash)
            cls._router = cached  # type: ignore[attr-defined]
        return cached

    def handle(self, request: Request) -> Response:
        try:
            return self.route(request)
        except HttpProblem as problem:
            return problem.response()

    def route(self, request: Request) -> Response:
        """The table lookup: the matching row's handler, else 405 or 404."""
        route, params, allowed = self.router().match(request.method, request.path)
        request.params = params
        if route is None:
            return self.method_not_allowed(request, allowed) if allowed else self.not_found(request)
        return route.handler(self, request)

    # -- subclass hooks ----------------------------------------------------------------------------
    def not_found(self, request: Request) -> Response:
        return Response.json(404, {"error": "not found"})

    def method_not_allowed(self, request: Request, allowed: list[str]) -> Response:
        return Response.json(405, {"error": "method not allowed"}, headers={"Allow": ", ".join(allowed)})

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


@dataclass(frozen=True)
class Standalone:
    """How `main` runs one emulator as a process: its own arguments (after --host/--port), how to build
    it from them (ValueError/OSError/KeyError: exit 2 with the message) and what to print once it serves
    (files the clients need may be written there, as the URL is known by then)."""

    prog: str
    description: str
    default_port: int
    add_arguments: Callable[[argparse.ArgumentParser], None]
    build: Callable[[argparse.Namespace], EmulatorServer]
    ready: Callable[[EmulatorServer, argparse.Namespace], str]


def main(standalone: Standalone, argv: list[str] | None = None) -> int:
    """Serve one emulator in the foreground until SIGINT or SIGTERM; the first line printed is `ready`."""
    parser = argparse.ArgumentParser(prog=standalone.prog, description=standalone.description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=standalone.default_port)
    standalone.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        emulator = standalone.build(args)
    except (OSError, ValueError, KeyError) as exc:
        print(f"{standalone.prog}: {exc}", file=sys.stderr)
        return 2
    emulator.start()
    try:
        print(standalone.ready(emulator, args), flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        emulator.stop()
    return 0


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
