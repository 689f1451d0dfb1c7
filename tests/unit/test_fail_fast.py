"""Fail fast, fail right (pure parts): the cause of a transport failure in a few words, the circuit
breaker inside the one retry policy, the KV v2 mount verdict, the plain-http warning, and the SIGTERM
handler installed before any heavy import."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from jobs.core.errors import Permanent, Unavailable, Unreachable, transport_cause, unreachable
from jobs.core.observed import VaultMount
from jobs.core.pool import map_bounded
from jobs.core.preflight import mount_problem, plain_http_warnings
from jobs.core.retry import Breaker, Deadline, RetryPolicy


class _Wrapped(Exception):
    """A library error whose text is generic and whose cause is chained, as requests/httpx do."""


def chained(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise _Wrapped("Max retries exceeded with url: /v1/x") from exc
    except _Wrapped as outer:
        return outer


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (socket.gaierror(-2, "Name or service not known"), "name resolution failed"),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "http:// vs https://"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "certificate not trusted"),
        (TimeoutError("timed out"), "timed out"),
    ],
)
def test_the_cause_of_a_transport_failure_is_named(cause: BaseException, expected: str) -> None:
    assert expected in transport_cause(chained(cause))
    error = unreachable("vault", "read kv/data/a", "Vault at https://vault.example:8200", chained(cause))
    assert str(error).startswith("vault: read kv/data/a: Vault at https://vault.example:8200 unreachable: ")
    assert expected in str(error)


def refused() -> Unreachable:
    return Unreachable("vault", "read: refused", "connection refused")


def test_the_breaker_stops_contacting_a_system_after_consecutive_transport_failures() -> None:
    breaker = Breaker("vault", "Vault at http://10.0.0.1:8200", threshold=3)
    retry = RetryPolicy(initial_wait=0.001, attempts=5)
    sent = 0

    def always_refused() -> None:
        nonlocal sent
        sent += 1
        raise refused()

    with pytest.raises(Unavailable) as first:
        retry.call(always_refused, breaker)
    assert sent == 3  # the third failure in a row opened it; no fourth, fifth attempt
    reasons = set()
    for _ in range(2000):  # every later entry: not tried, the same shared reason
        with pytest.raises(Unavailable) as later:
            retry.call(always_refused, breaker)
        reasons.add(str(later.value))
    assert sent == 3
    assert reasons == {str(first.value)}
    assert str(first.value) == (
        "vault: Vault at http://10.0.0.1:8200 unavailable: connection refused; not tried"
    )


def test_threads_sharing_one_breaker_stop_together_with_one_reason(caplog: pytest.LogCaptureFixture) -> None:
    """The concurrent Vault phase (`map_bounded`) shares the client's breaker: once it opens, no
    thread sends again, every entry gets the one reason, and the breaker is logged open once."""
    breaker = Breaker("vault", "Vault at http://10.0.0.1:8200", threshold=3)
    retry = RetryPolicy(initial_wait=0.001, attempts=5)
    sent = 0
    lock = threading.Lock()

    def always_refused() -> None:
        nonlocal sent
        with lock:
            sent += 1
        time.sleep(0.005)
        raise refused()

    def one(_: int) -> str:
        try:
            retry.call(always_refused, breaker)
        except (Unavailable, Unreachable) as exc:
            return str(exc)
        return "succeeded?"

    reasons = map_bounded(list(range(64)), one, concurrency=8)
    shared = str(breaker.open_error)
    assert breaker.open_error is not None
    assert reasons.count(shared) >= 64 - 8  # at most the entries already in flight saw their own failure
    assert sent <= 3 * 8 + 8  # a handful of attempts in flight, never 64 entries x 5 attempts
    opened = [r for r in caplog.records if r.getMessage() == "giving up on a system for this run"]
    assert len(opened) == 1


def test_an_answer_from_the_server_resets_the_breaker_count() -> None:
    breaker = Breaker("vault", "Vault at http://10.0.0.1:8200", threshold=3)
    retry = RetryPolicy(initial_wait=0.001, attempts=2)
    for _ in range(5):  # two transport failures, then an answer: never three in a row
        with pytest.raises(Unreachable):
            retry.call(lambda: (_ for _ in ()).throw(refused()), breaker)
        with pytest.raises(Permanent):
            retry.call(lambda: (_ for _ in ()).throw(Permanent("vault", "400")), breaker)
    assert breaker.open_error is None
    assert retry.call(lambda: "ok", breaker) == "ok"


def test_a_silent_system_costs_at_most_threshold_request_timeouts() -> None:
    """With a fake clock: each attempt 'times out' after the request timeout; the breaker ends the run's
    contact with the system after 3 of them, whatever the number of entries."""
    now = [0.0]
    breaker = Breaker("vault", "Vault at http://10.0.0.1:8200")
    retry = RetryPolicy(deadline=Deadline(None, clock=lambda: now[0]), initial_wait=0.001, attempts=5)

    def hangs() -> None:
        now[0] += 10.0  # one request timeout
        raise Unreachable("vault", "read: timed out", "timed out")

    for _ in range(2000):
        with pytest.raises(Unreachable):
            retry.call(hangs, breaker)
    assert now[0] == 30.0  # < 2 x (request timeout x attempts) = 100 s


@pytest.mark.parametrize(
    ("found", "words"),
    [
        (VaultMount("secret", "kv", "2"), None),
        (None, "no such mount"),
        (VaultMount("secret", "kv", "1"), "KV version 1"),
        (VaultMount("secret", "transit", ""), "transit secrets engine"),
        (VaultMount("kv", "kv", "2"), "inside the mount 'kv'"),
    ],
)
def test_the_kv_mount_verdict_names_the_mount_and_what_it_is(
    found: VaultMount | None, words: str | None
) -> None:
    problem = mount_problem("secret", found, "Vault at http://127.0.0.1:8200")
    if words is None:
        assert problem is None
    else:
        assert problem is not None
        assert "vault.kvMount 'secret' at Vault at http://127.0.0.1:8200" in problem
        assert words in problem


def test_plain_http_to_a_non_loopback_host_is_a_warning() -> None:
    warnings = plain_http_warnings(
        Vault="http://vault.example:8200",
        Keycloak="http://127.0.0.1:8080",
        Other="https://kc.example",
        Local="http://localhost:8200",
        V6="http://[::1]:8200",
        Missing=None,
    )
    assert len(warnings) == 1
    assert warnings[0].startswith("Vault at http://vault.example:8200 is plain http://")


@pytest.mark.parametrize("entrypoint", ["jobs.vault_bootstrap", "jobs.client_patcher", "jobs.secret_origin"])
def test_the_sigterm_handler_is_installed_before_any_heavy_import(entrypoint: str) -> None:
    """In a fresh interpreter: at the moment a vendor SDK or the runner is first imported (at import
    time or lazily, once the flags are parsed), SIGTERM already goes to our handler (a SIGTERM during
    imports sets the flag, it does not kill with 143)."""
    probe = f"""
import signal, sys
seen = {{}}
class Finder:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("hvac", "requests", "httpx", "azure", "kubernetes", "pydantic") \\
                or name == "jobs.core.runner":
            seen.setdefault(name, signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL)
        return None
sys.meta_path.insert(0, Finder())
import {entrypoint}
import jobs.core.runner, jobs.core.clients.vault  # loaded lazily by main(), after the entrypoint
assert seen, "nothing heavy imported?"
bad = sorted(n for n, ok in seen.items() if not ok)
print("BAD" if bad else "OK", bad[:5])
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert done.stdout.startswith("OK"), done.stdout + done.stderr


def test_a_sigterm_right_after_start_keeps_a_clean_exit_code() -> None:
    """SIGTERM at once, during the imports: the run still ends with its own exit code, never 143."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-c", "import jobs.vault_bootstrap as m, sys, time; time.sleep(0.5); sys.exit(7)"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.25)  # the interpreter is up, the heavy imports may still run
    process.terminate()
    process.wait(timeout=30)
    assert process.returncode == 7, f"killed by the signal after {time.monotonic() - started:.2f} s"
