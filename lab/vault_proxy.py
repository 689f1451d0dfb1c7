"""A fault- and latency-injecting HTTP reverse proxy to put in front of a real Vault (OpenBao) server.

What it is for: tests and benchmarks that need Vault to be slow, flaky or ambiguous in the ways a real
cluster is — a network round trip on every request (benchmarks at realistic latency), a port that refuses
or a server that accepts and never answers (fail-fast tests), and writes whose outcome the client cannot
know (a 500 or a reset *after* OpenBao applied the write: exactly-once tests). Point `VAULT_ADDR` at
`VaultProxy.addr`; the proxy forwards to the real server and logs every request it sees.

- HTTP/1.1 keep-alive, one upstream connection per client connection, one thread per connection,
  TCP_NODELAY on both sides (headers and body are separate writes: Nagle + delayed ACK would add ~40 ms).
- `latency` seconds are added once per request, before the request is answered or forwarded.
- `Rule`s (method + path regex, optional nth match / count / probability drawn from a seeded RNG) choose
  an `Action`; they can be added and cleared while the proxy serves. The first rule that fires wins.
- `refuse()` closes the port (new connections are refused, open ones are reset) and `restore()` reopens
  it; `stop()` ends everything promptly, hung requests included.

Request bodies must carry Content-Length (hvac, httpx and requests all send one); chunked request bodies
are not supported.
"""

from __future__ import annotations

import contextlib
import enum
import http.client
import json
import random
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade"}
)
UPSTREAM_TIMEOUT = 60.0
POLL_INTERVAL = 0.05  # how long stop() and refuse() may wait for the accept loop to notice


class Action(enum.StrEnum):
    """What a firing rule does with the request."""

    RESPOND = "respond"  # answer with the rule's reply, never forwarded
    FORWARD_THEN_RESPOND = "forward-then-respond"  # forwarded (applied), then the answer is replaced
    FORWARD_THEN_DROP = "forward-then-drop"  # forwarded (applied), then the connection is reset
    DROP = "drop"  # the connection is reset before forwarding (not applied)
    HANG = "hang"  # never answered: held until `hang_seconds`, refuse() or stop(), then reset
    CLOSE = "close"  # the port is closed (as refuse()) and this connection reset: Vault is gone


@dataclass(frozen=True)
class Reply:
    """A canned HTTP answer."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def vault_error(status: int, *messages: str, headers: Mapping[str, str] | None = None) -> Reply:
    """A reply shaped like Vault's own errors: `{"errors": [...]}` as JSON."""
    body = json.dumps({"errors": list(messages)}, separators=(",", ":")).encode()
    return Reply(status, body, (("Content-Type", "application/json"), *(headers or {}).items()))


def unavailable(retry_after: int | None = None) -> Reply:
    """503 as an ingress or a standby answers during a restart, with or without Retry-After."""
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return vault_error(503, "service unavailable", headers=headers)


SEALED = vault_error(503, "Vault is sealed")
METADATA_CAS_REQUIRED = vault_error(400, "metadata check-and-set parameter required")
PERMISSION_DENIED = vault_error(403, "permission denied")
INTERNAL_ERROR = vault_error(500, "internal error")
UPSTREAM_UNREACHABLE = vault_error(502, "vault_proxy: upstream unreachable")


@dataclass
class Rule:
    """A fault: which requests it matches, when it fires, and what it does.

    `method` is a regex matched against the whole HTTP method (case-insensitive), `path` a regex searched
    in the request path (query string included). Among a rule's matches, it fires from the `nth` on, at
    most `count` times (None: no limit), each time with `probability` (drawn from the proxy's seeded RNG).
    `matched` and `fired` count what happened so far.
    """

    action: Action
    method: str = ".*"
    path: str = ".*"
    reply: Reply | None = None
    nth: int = 1
    count: int | None = None
    probability: float = 1.0
    hang_seconds: float = 30.0
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        needs_reply = self.action in (Action.RESPOND, Action.FORWARD_THEN_RESPOND)
        if needs_reply != (self.reply is not None):
            raise ValueError(f"{self.action}: a reply is {'required' if needs_reply else 'not used'}")
        if self.nth < 1 or (self.count is not None and self.count < 0):
            raise ValueError("nth starts at 1 and count is not negative")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability is between 0 and 1")
        self._method = re.compile(self.method, re.IGNORECASE)
        self._path = re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        return bool(self._method.fullmatch(method)) and bool(self._path.search(path))

    def take(self, rng: random.Random) -> bool:
        """Count one match and say whether the rule fires on it (the caller holds the proxy's lock)."""
        self.matched += 1
        if self.matched < self.nth or (self.count is not None and self.fired >= self.count):
            return False
        if self.probability < 1.0 and rng.random() >= self.probability:
            return False
        self.fired += 1
        return True


@dataclass(frozen=True)
class Exchange:
    """One request as the proxy handled it.

    `status` is what the client received (None: no answer), `upstream_status` what the real server
    answered (None: never forwarded, or no answer), `action` the fault applied (None: plain forward).
    """

    method: str
    path: str
    status: int | None
    upstream_status: int | None
    action: Action | None


def path_prefix(path: str, depth: int) -> str:
    """The first `depth` segments of a path without its query: `/v1/kv/data/a/b`, 3 -> `/v1/kv/data`."""
    segments = path.split("?", 1)[0].split("/")[1 : depth + 1]
    return "/" + "/".join(segments)


class VaultProxy:
    """A reverse proxy to `upstream` (e.g. `http://127.0.0.1:8200`) on `addr`, with latency and faults.

    A request no rule takes is forwarded; if the upstream cannot be reached the client gets a 502 with a
    Vault-shaped error body. After refuse(), restore() binds the same port again (another process could
    take it in between; on loopback in a test run that does not happen).
    """

    def __init__(self, upstream: str, latency: float = 0.0, seed: int = 0, host: str = "127.0.0.1") -> None:
        target = urlsplit(upstream)
        if target.scheme != "http" or not target.hostname:
            raise ValueError("upstream must be an http:// URL")
        self.upstream_host = target.hostname
        self.upstream_port = target.port or 80
        self.latency = latency
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._rules: list[Rule] = []
        self._log: list[Exchange] = []
        self._handlers: set[_Handler] = set()
        self._released = threading.Event()  # set while the port is closed or the proxy stopped
        self._stopped = threading.Event()
        self._server: _Server | None = None
        self.host = host
        self.port = int(self._serve(host, 0).server_address[1])
        self.addr = f"http://{host}:{self.port}"

    # --- faults ---------------------------------------------------------------------------------------
    def add(self, rule: Rule) -> Rule:
        """Arm `rule` after the ones already there; returns it so its counters can be read."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: Rule) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r is not rule]

    def clear(self) -> None:
        """Disarm every rule: from the next request on, everything is forwarded."""
        with self._lock:
            self._rules = []

    def choose(self, method: str, path: str) -> Rule | None:
        """The first armed rule that fires for this request, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path) and rule.take(self._rng):
                    return rule
        return None

    # --- the request log ------------------------------------------------------------------------------
    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self._log.append(exchange)

    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._log)

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request so far, in the order their outcomes were logged."""
        return [(e.method, e.path) for e in self.exchanges()]

    def count(self, method: str | None = None, prefix: str = "") -> int:
        """Requests so far, optionally only one method and paths starting with `prefix`."""
        return sum(
            1
            for e in self.exchanges()
            if (method is None or e.method == method.upper()) and e.path.startswith(prefix)
        )

    def counts(self, depth: int = 3) -> Counter[tuple[str, str]]:
        """Requests by (method, first `depth` path segments), e.g. ("POST", "/v1/kv/data")."""
        return Counter((e.method, path_prefix(e.path, depth)) for e in self.exchanges())

    def reset_log(self) -> None:
        with self._lock:
            self._log = []

    # --- the port -------------------------------------------------------------------------------------
    def refuse(self) -> None:
        """Close the port: new connections are refused, open ones reset, hung requests released."""
        with self._lock:
            server, self._server = self._server, None
            self._released.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        self._reset_connections()

    def restore(self) -> None:
        """Listen again on the same port after refuse()."""
        if self._stopped.is_set():
            raise RuntimeError("the proxy is stopped")
        with self._lock:
            if self._server is not None:
                return
            self._released = threading.Event()
        self._serve(self.host, self.port)

    @property
    def refusing(self) -> bool:
        return self._server is None

    def stop(self) -> None:
        """End everything now: the port, every connection, every hung request."""
        self._stopped.set()
        self.refuse()

    def __enter__(self) -> VaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- plumbing used by the handlers ----------------------------------------------------------------
    def _serve(self, host: str, port: int) -> _Server:
        server = _Server((host, port), _Handler)
        server.proxy = self
        with self._lock:
            self._server = server
        threading.Thread(
            target=server.serve_forever, args=(POLL_INTERVAL,), name="vault-proxy", daemon=True
        ).start()
        return server

    def _reset_connections(self) -> None:
        with self._lock:
            handlers = list(self._handlers)
        for handler in handlers:
            handler.abort()

    def _track(self, handler: _Handler, alive: bool) -> None:
        with self._lock:
            if alive:
                self._handlers.add(handler)
            else:
                self._handlers.discard(handler)

    def _hang(self, seconds: float) -> None:
        with self._lock:
            released = self._released
        released.wait(seconds)

    def _delay(self) -> None:
        if self.latency > 0:
            self._stopped.wait(self.latency)  # stop() cuts it short


@dataclass(frozen=True)
class _Outcome:
    """What the client gets: `reply`, or a reset when None; and whether the port closes first."""

    reply: Reply | None
    upstream_status: int | None = None
    close_port: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops SYNs under a concurrent benchmark
    proxy: VaultProxy

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a connection reset by a fault or by stop() is no error worth a traceback


class _Handler(BaseHTTPRequestHandler):
    """One client connection: parses each request and forwards it on its own upstream connection."""

    protocol_version = "HTTP/1.1"
    server: _Server
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: object) -> None:
        return

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.proxy._track(self, alive=True)

    def finish(self) -> None:
        self.server.proxy._track(self, alive=False)
        self._close_upstream()
        with contextlib.suppress(OSError):
            super().finish()

    def abort(self) -> None:
        """Reset the client connection and the upstream one (from another thread)."""
        self.close_connection = True
        self._shut(self.connection)
        upstream = self._upstream
        if upstream is not None and upstream.sock is not None:
            self._shut(upstream.sock)

    # --- one request ----------------------------------------------------------------------------------
    def proxy_one(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        proxy._delay()
        rule = proxy.choose(self.command, self.path)
        action = rule.action if rule is not None else None
        outcome = _ACTIONS[action](self, rule, body)
        status = outcome.reply.status if outcome.reply is not None else None
        # Logged before the client hears anything, so the log is complete once the client knows.
        proxy.record(Exchange(self.command, self.path, status, outcome.upstream_status, action))
        if outcome.close_port:
            proxy.refuse()
        if outcome.reply is None:
            self._drop()
        else:
            self._send(outcome.reply)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_LIST = do_HEAD = do_OPTIONS = proxy_one

    def _forward_plain(self, rule: Rule | None, body: bytes | None) -> _Outcome:
        answer = self._forward(body)
        if answer is None:
            return _Outcome(UPSTREAM_UNREACHABLE)
        return _Outcome(answer, answer.status)

    def _respond(self, rule: Rule | None, body: bytes | None) -> _Outcome:
        assert rule is not None
        return _Outcome(rule.reply)

    def _forward_then_respond(self, rule: Rule | None, body: bytes | None) -> _Outcome:
        assert rule is not None
        answer = self._forward(body)
        return _Outcome(rule.reply, answer.status if answer else None)

    def _forward_then_drop(self, rule: Rule | None, body: bytes | None) -> _Outcome:
        answer = self._forward(body)
        return _Outcome(None, answer.status if answer else None)

    def _drop_now(self, rule: Rule | None, body: bytes | None) -> _Outcome:
        return _Outcome(None)

    def _hang(self, rule: Rule | None, body: bytes | None) -> _Outcome:
        assert rule is not None
        self.server.proxy._hang(rule.hang_seconds)
        return _Outcome(None)

    def _close_port(self, rule: Rule | None, body: bytes | None) -> _Outcome:
        return _Outcome(None, close_port=True)

    # --- wire -----------------------------------------------------------------------------------------
    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _forward(self, body: bytes | None) -> Reply | None:
        """Send the request upstream and read the whole answer; None if the upstream cannot be reached."""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
        try:
            conn = self._upstream_connection()
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self._close_upstream()
            return None
        kept = tuple((k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP)
        if self.command == "HEAD":
            kept += (("Content-Length", response.getheader("Content-Length") or "0"),)
        return Reply(response.status, payload, kept)

    def _upstream_connection(self) -> http.client.HTTPConnection:
        if self._upstream is None:
            proxy = self.server.proxy
            conn = http.client.HTTPConnection(
                proxy.upstream_host, proxy.upstream_port, timeout=UPSTREAM_TIMEOUT
            )
            conn.connect()
            assert conn.sock is not None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._upstream = conn
        return self._upstream

    def _close_upstream(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None

    def _send(self, reply: Reply) -> None:
        self.send_response_only(reply.status)
        for key, value in reply.headers:
            self.send_header(key, value)
        if not any(key.lower() == "date" for key, _ in reply.headers):
            self.send_header("Date", self.date_time_string())
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)

    def _drop(self) -> None:
        """Close the client connection with a reset (SO_LINGER 0) and without a byte of answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()  # its reference would keep the socket open past close()
            self.connection.close()

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        """Wake whatever thread reads `sock`, which then sees the connection end (used from other threads)."""
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)


_ActionHandler = Callable[[_Handler, Rule | None, bytes | None], _Outcome]
_ACTIONS: dict[Action | None, _ActionHandler] = {
    None: _Handler._forward_plain,
    Action.RESPOND: _Handler._respond,
    Action.FORWARD_THEN_RESPOND: _Handler._forward_then_respond,
    Action.FORWARD_THEN_DROP: _Handler._forward_then_drop,
    Action.DROP: _Handler._drop_now,
    Action.HANG: _Handler._hang,
    Action.CLOSE: _Handler._close_port,
}
