"""What both benchmark scripts share: latency injection, request logs, the latency floor, the job runner.

The method is written up in docs/performance.md; in short:

- Latency: every request a job sends waits that system's latency before it is answered. Keycloak and
  Kubernetes through the emulators' `latency` knob; Entra ID and Key Vault share one emulator port, so
  `instrument` sleeps per system there instead of the knob; Vault through `lab.vault_proxy.VaultProxy`
  in front of OpenBao.
- Requests are counted where they arrive (the emulators, the proxy), each with its query string, and
  sorted into a stage (`stage_of`): `auth` (tokens, logins, discovery, anything sent without an
  Authorization header such as Key Vault's challenge), `list` (the first page of a listing),
  `list-next` (a page that needs the previous page's continuation token) and `entries` (per-entry
  reads and writes).
- The latency floor (`latency_floor`) is what the same requests would cost at the configured concurrency
  with nothing but the network: per system and stage one phase; serial phases (`auth`, `list-next`) cost
  one latency per request, the others ⌈requests / concurrency⌉ latencies; phases add up (no overlap
  between systems or stages is assumed).
- The job runs as a subprocess reaped with `os.wait4`, whose rusage is that process's own: peak RSS
  (`ru_maxrss`) and CPU time, not those of OpenBao or the `bao` CLI calls of the set-up. The servers'
  CPU during the run (this process, where the emulators and the proxy run, plus OpenBao) is reported
  beside it: on a small machine they compete with the job for the same cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SYSTEMS = ("entra", "keyvault", "keycloak", "vault", "kube")
STAGES = ("auth", "list", "list-next", "entries")
SERIAL_STAGES = frozenset({"auth", "list-next"})
DEFAULT_CONCURRENCY = 8


# -- the latency floor (pure) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Phase:
    """Requests of one system in one stage; `serial` ones each wait for the previous one."""

    system: str
    stage: str
    requests: int
    latency_ms: float
    serial: bool


def phase_cost_ms(phase: Phase, concurrency: int) -> float:
    rounds = phase.requests if phase.serial else math.ceil(phase.requests / max(1, concurrency))
    return rounds * phase.latency_ms


def latency_floor(phases: Iterable[Phase], concurrency: int) -> float:
    """Seconds the requests cost at `concurrency` with nothing but the latency: Σ over phases of
    ceil(requests / concurrency) * latency (a serial phase: requests * latency)."""
    return sum(phase_cost_ms(p, concurrency) for p in phases) / 1000


# -- sorting requests into phases -----------------------------------------------------------------------
@dataclass(frozen=True)
class Logged:
    system: str
    method: str
    path: str
    query: str = ""
    anonymous: bool = False  # sent without an Authorization header (a token request or a challenge)

    def q(self, name: str) -> str | None:
        values = parse_qs(self.query, keep_blank_values=True).get(name)
        return values[0] if values else None


_KUBE_DISCOVERY = re.compile(r"/(version|api|apis|openapi/.*|api/[^/]+|apis/[^/]+|apis/[^/]+/[^/]+)/?")
_KUBE_COLLECTION = re.compile(r"/(api/[^/]+|apis/[^/]+/[^/]+)(/namespaces/[^/]+)?/[^/]+/?")


def stage_of(request: Logged) -> str:
    """`auth`, `list`, `list-next` or `entries` (see the module docstring)."""
    system, method, path = request.system, request.method.upper(), request.path.rstrip("/") or "/"
    if system == "entra" or request.anonymous:
        return "auth"
    if system == "keyvault":
        if method == "GET" and path == "/secrets":
            return "list-next" if request.q("$skiptoken") else "list"
        return "entries"
    if system == "keycloak":
        if path.endswith(("/protocol/openid-connect/token", "/.well-known/openid-configuration")):
            return "auth"
        if (
            method == "GET"
            and re.fullmatch(r"/admin/realms/[^/]+/clients", path)
            and not request.q("clientId")
        ):
            return "list-next" if int(request.q("first") or 0) > 0 else "list"
        return "entries"
    if system == "vault":
        if path.startswith(("/v1/auth/", "/v1/sys/")):
            return "auth"
        if method == "LIST" or request.q("list") == "true":
            return "list-next" if request.q("after") else "list"
        return "entries"
    if system == "kube":
        if method == "GET" and _KUBE_DISCOVERY.fullmatch(path):
            return "auth"
        if method == "GET" and _KUBE_COLLECTION.fullmatch(path):
            return "list-next" if request.q("continue") else "list"
        if method == "POST" and path.endswith(("/tokenreviews", "/selfsubjectaccessreviews")):
            return "auth"
        return "entries"
    raise ValueError(f"unknown system {system!r}")


def phases_of(requests: Iterable[Logged], latency_ms: Mapping[str, float]) -> list[Phase]:
    counts = Counter((r.system, stage_of(r)) for r in requests)
    return [
        Phase(system, stage, counts[system, stage], latency_ms.get(system, 0.0), stage in SERIAL_STAGES)
        for system in SYSTEMS
        for stage in STAGES
        if counts[system, stage]
    ]


# -- counting and latency at the servers ----------------------------------------------------------------
class RequestLog:
    """Every request the emulators and the Vault proxy received, in arrival order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Logged] = []
        self._sources: list[Callable[[], list[Logged]]] = []

    def add(self, item: Logged) -> None:
        with self._lock:
            self._items.append(item)

    def add_source(self, source: Callable[[], list[Logged]]) -> None:
        """A log kept elsewhere (the Vault proxy's), read on `mark` and `since`."""
        self._sources.append(source)

    def _all(self) -> list[list[Logged]]:
        with self._lock:
            own = list(self._items)
        return [own, *(source() for source in self._sources)]

    def mark(self) -> tuple[int, ...]:
        """Where each log stands now; `since(mark)` returns what came after."""
        return tuple(len(items) for items in self._all())

    def since(self, mark: tuple[int, ...]) -> list[Logged]:
        return [item for items, start in zip(self._all(), mark, strict=True) for item in items[start:]]


def instrument(
    emulator: Any, log: RequestLog, system_of: Callable[[Any], str], extra_latency_ms: Mapping[str, float]
) -> None:
    """Log every request `emulator` dispatches as `system_of(request)`; sleep `extra_latency_ms[system]`
    first (for the Azure emulator, whose one port serves two systems; the others use their knob)."""
    original = emulator.dispatch

    def dispatch(request: Any) -> Any:
        system = system_of(request)
        query = "&".join(f"{k}={v}" for k, values in request.query.items() for v in values)
        anonymous = "authorization" not in request.headers
        log.add(Logged(system, request.method, request.path, query, anonymous))
        delay = extra_latency_ms.get(system, 0.0)
        if delay:
            time.sleep(delay / 1000)
        return original(request)

    emulator.dispatch = dispatch


def vault_source(proxy: Any) -> Callable[[], list[Logged]]:
    def read() -> list[Logged]:
        out = []
        for method, target in proxy.requests:
            parts = urlsplit(target)
            out.append(Logged("vault", method, parts.path, parts.query))
        return out

    return read


# -- running a job --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobRun:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float
    peak_rss_kib: int


def run_job(command: Sequence[str], env: Mapping[str, str], timeout: float = 1800) -> JobRun:
    """Run `command` and reap it with wait4: its own CPU time and peak RSS (kill after `timeout`)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(list(command), stdout=out, stderr=err, env=dict(env))
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return JobRun(
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            wall,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss,  # KiB on Linux
        )


def servers_cpu(*pids: int) -> float:
    """CPU seconds used so far by the servers: this process (the emulators and the Vault proxy run in
    it) plus the given processes (OpenBao), read from /proc where there is one."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def job_has_flag(script: str, flag: str) -> bool:
    """Whether `<script> --help` lists `flag` (so the benchmarks work before and after a job gains it)."""
    done = subprocess.run(
        [str(BIN / script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    return re.search(rf"(^|\s|\[){re.escape(flag)}\b", done.stdout) is not None


# -- figures of one run ---------------------------------------------------------------------------------
@dataclass
class RunFigures:
    job: str
    scenario: str
    entries: int
    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    concurrency: int
    requests: dict[str, int]
    requests_per_entry: dict[str, float]
    phases: list[dict[str, Any]]
    floor_s: float
    floor_ratio: float | None
    serial_floor_s: float
    counts: dict[str, int] = field(default_factory=dict)
    servers_cpu_s: float = 0.0  # emulators + Vault proxy + OpenBao during the run
    load_1m: float = 0.0  # the machine's 1-minute load average when the run ended (wall is CPU-bound)
    extra: dict[str, Any] = field(default_factory=dict)


def figures(
    job: str,
    scenario: str,
    entries: int,
    run: JobRun,
    requests: Sequence[Logged],
    latency_ms: Mapping[str, float],
    concurrency: int,
    counts: Mapping[str, int],
    servers_cpu_s: float = 0.0,
) -> RunFigures:
    phases = phases_of(requests, latency_ms)
    by_system = Counter(r.system for r in requests)
    floor = latency_floor(phases, concurrency)
    return RunFigures(
        job=job,
        scenario=scenario,
        entries=entries,
        exit_code=run.returncode,
        wall_s=round(run.wall_s, 3),
        cpu_s=round(run.cpu_s, 3),
        peak_rss_mib=round(run.peak_rss_kib / 1024, 1),
        concurrency=concurrency,
        requests={s: by_system[s] for s in SYSTEMS if by_system[s]},
        requests_per_entry={s: round(by_system[s] / entries, 3) for s in SYSTEMS if by_system[s]},
        phases=[asdict(p) | {"cost_ms": phase_cost_ms(p, concurrency)} for p in phases],
        floor_s=round(floor, 3),
        floor_ratio=round(run.wall_s / floor, 2) if floor > 0 else None,
        serial_floor_s=round(latency_floor(phases, 1), 3),
        counts=dict(counts),
        servers_cpu_s=round(servers_cpu_s, 3),
        load_1m=round(os.getloadavg()[0], 2),
    )


# -- command line and output ----------------------------------------------------------------------------
def add_arguments(
    parser: argparse.ArgumentParser, latency_defaults: Mapping[str, float], entries_default: Sequence[int]
) -> None:
    group = parser.add_argument_group("latency (milliseconds added to every request of that system)")
    for system in SYSTEMS:
        group.add_argument(
            f"--{system}-latency",
            type=float,
            default=latency_defaults.get(system, 0.0),
            metavar="MS",
            help=f"default {latency_defaults.get(system, 0.0):g}",
        )
    parser.add_argument(
        "--entries",
        type=int,
        nargs="+",
        default=list(entries_default),
        metavar="N",
        help="catalog sizes to run, each on a fresh stack (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="passed to the job if its --help lists --concurrency; the floor is computed at this "
        "concurrency either way (default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per job run")


def latencies(args: argparse.Namespace) -> dict[str, float]:
    return {system: float(getattr(args, f"{system}_latency")) for system in SYSTEMS}


def document(
    job: str, args: argparse.Namespace, has_flag: bool, runs: Sequence[RunFigures]
) -> dict[str, Any]:
    return {
        "benchmark": job,
        "latency_ms": latencies(args),
        "concurrency": args.concurrency,
        "job_takes_concurrency": has_flag,
        "runs": [asdict(r) for r in runs],
    }


def print_json(doc: Mapping[str, Any]) -> None:
    json.dump(doc, sys.stdout, indent=1)
    sys.stdout.write("\n")


def print_table(doc: Mapping[str, Any]) -> None:
    runs = doc["runs"]
    used = [s for s in SYSTEMS if any(s in r["requests"] for r in runs)]
    latency = ", ".join(f"{s} {doc['latency_ms'][s]:g} ms" for s in used)
    taken = "passed to the job" if doc["job_takes_concurrency"] else "job has no --concurrency (sequential)"
    print(f"{doc['benchmark']}: latency {latency}; concurrency {doc['concurrency']} ({taken})")
    head = f"{'entries':>7} {'scenario':<13} {'exit':>4} {'wall s':>8} {'floor s':>8} {'x floor':>7} "
    head += f"{'serial fl':>9} {'CPU s':>7} {'srv CPU':>7} {'RSS MiB':>7} {'load':>5} " + " ".join(
        f"{s + '/entry':>14}" for s in used
    )
    print(head)
    for r in runs:
        ratio = "-" if r["floor_ratio"] is None else f"{r['floor_ratio']:.2f}"
        line = f"{r['entries']:>7} {r['scenario']:<13} {r['exit_code']:>4} {r['wall_s']:>8.2f} "
        line += f"{r['floor_s']:>8.2f} {ratio:>7} {r['serial_floor_s']:>9.2f} {r['cpu_s']:>7.2f} "
        line += f"{r['servers_cpu_s']:>7.2f} {r['peak_rss_mib']:>7.1f} {r['load_1m']:>5.1f} "
        line += " ".join(f"{r['requests_per_entry'].get(s, 0.0):>14.3f}" for s in used)
        print(line)
    print("\nfloor by phase (requests -> ms at the concurrency; serial phases one latency per request)")
    for r in runs:
        cells = ", ".join(
            f"{p['system']}/{p['stage']} {p['requests']} -> {p['cost_ms']:g}" for p in r["phases"]
        )
        print(f"{r['entries']:>7} {r['scenario']:<13} {cells}")


def emit(doc: Mapping[str, Any], as_json: bool) -> None:
    (print_json if as_json else print_table)(doc)
