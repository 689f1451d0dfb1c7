"""Benchmark client-patcher: first sync, no-op resync and a rotation run of N clients (not a test).

    .venv/bin/python benchmarks/bench_client_patcher.py [--clients 500] [--consumers-per-client 1]

Starts a real OpenBao dev server plus the Keycloak and Kubernetes emulators, seeded the way the e2e
tests seed them (lab/client_patcher_stack.py) but with N generated confidential clients, each
with its consumers (ExternalSecrets, refreshPolicy OnChange). Runs the real `client-patcher` console
script three times:

1. first sync     every entry is created in Vault and its consumers get force-sync;
2. no-op resync   nothing changed anywhere;
3. rotation       `keycloak.rotate.runId` set on 10% of the entries (`--rotate-percent`).

Prints, per run, wall time, entry outcomes and requests per entry for each system, then every request
broken down by method + path pattern, and the GETs of one path repeated within one run.

How requests are counted:
- Keycloak and Kubernetes: the emulators' own request logs (every HTTP request they received, token
  and discovery requests included; the query string is not part of the logged path).
- Vault: the counting reverse proxy of benchmarks/_counting.py in front of OpenBao.

Wall time includes the emulators and OpenBao, which share the machine (and, for the emulators, the
benchmark's interpreter) with the job: request counts are the reliable figure.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._counting import CountingProxy  # noqa: E402
from lab.client_patcher_stack import ClientPatcherStack, ClientSpec  # noqa: E402
from lab.openbao import start_openbao  # noqa: E402

REALMS = ("bench-a", "bench-b")
NAMESPACES = ("bench-apps", "bench-jobs")
SYSTEMS = ("keycloak", "vault", "kube")

# (regex on the path without query, pattern label); the first match wins.
KEYCLOAK_PATTERNS: Sequence[tuple[str, str]] = (
    (r"/realms/[^/]+/protocol/openid-connect/token", "token"),
    (r"/realms/[^/]+/\.well-known/openid-configuration", "discovery"),
    (r"/admin/realms/[^/]+/clients", "clients?clientId"),
    (r"/admin/realms/[^/]+/clients/[^/]+/client-secret", "client-secret"),
    (r"/admin/realms/[^/]+/clients/[^/]+", "client by id"),
)
VAULT_PATTERNS: Sequence[tuple[str, str]] = (
    (r"/v1/[^/]+/data/.+", "kv data"),
    (r"/v1/[^/]+/metadata/.+", "kv metadata"),
    (r"/v1/auth/token/lookup-self", "token lookup-self"),
    (r"/v1/auth/[^/]+/login", "auth login"),
)
KUBE_PATTERNS: Sequence[tuple[str, str]] = (
    (r"/apis/?", "discovery /apis"),
    (r"/api/?", "discovery /api"),
    (r"/apis/[^/]+/?", "discovery /apis/<group>"),
    (r"/apis/[^/]+/[^/]+/?", "discovery /apis/<group>/<version>"),
    (r"/apis/external-secrets\.io/[^/]+/namespaces/[^/]+/externalsecrets/[^/]+", "ExternalSecret"),
)


def pattern(patterns: Sequence[tuple[str, str]], method: str, path: str) -> str:
    bare = path.split("?", 1)[0]
    for regex, label in patterns:
        if re.fullmatch(regex, bare):
            return f"{method} {label}"
    return f"{method} {bare}"  # unexpected: show it as is, so it stands out


@dataclass(frozen=True)
class RunFigures:
    label: str
    exit_code: int
    wall: float
    cpu: float  # user + system CPU seconds of the client-patcher process
    counts: dict[str, int]
    requests: dict[str, list[tuple[str, str]]]  # system -> (method, path) in order

    def by_pattern(self, system: str) -> Counter[str]:
        patterns = {"keycloak": KEYCLOAK_PATTERNS, "vault": VAULT_PATTERNS, "kube": KUBE_PATTERNS}[system]
        return Counter(pattern(patterns, m, p) for m, p in self.requests[system])

    def repeated_gets(self, system: str) -> int:
        """GETs of a path already fetched in this run (Keycloak's client search is excluded: its
        logged path has no query, so one realm's lookups all look alike)."""
        seen: Counter[str] = Counter(
            p for m, p in self.requests[system] if m == "GET" and not p.rstrip("/").endswith("/clients")
        )
        return sum(n - 1 for n in seen.values() if n > 1)


def generate_clients(n: int, consumers_per_client: int) -> tuple[ClientSpec, ...]:
    return tuple(
        ClientSpec(
            f"bench-{i:05d}-client-secret",
            REALMS[i % len(REALMS)],
            f"bench-{i:05d}",
            tuple(
                (NAMESPACES[j % len(NAMESPACES)], f"bench-{i:05d}-sync-{j}")
                for j in range(consumers_per_client)
            ),
        )
        for i in range(n)
    )


def with_rotation(clients: Sequence[ClientSpec], percent: float, run_id: str) -> tuple[ClientSpec, ...]:
    """Every k-th client gets `rotate.runId`, so `percent` of them rotate."""
    step = max(1, round(100 / percent)) if percent > 0 else 0
    return tuple(
        replace(spec, rotate_run_id=run_id) if step and i % step == 0 else spec
        for i, spec in enumerate(clients)
    )


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children only: not OpenBao
    return usage.ru_utime + usage.ru_stime


def run_once(stack: ClientPatcherStack, proxy: CountingProxy, label: str, env: dict[str, str]) -> RunFigures:
    stack.keycloak.reset_requests()
    stack.kube.reset_requests()
    vault_before = proxy.count()
    cpu_before = children_cpu()
    started = time.monotonic()
    done = stack.run("--log-format", "json", env=env, timeout=1800)
    wall = time.monotonic() - started
    cpu = children_cpu() - cpu_before
    try:
        summary: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        print(done.stdout[-2000:], done.stderr[-4000:], sep="\n")
        raise SystemExit(
            f"{label}: client-patcher printed no JSON summary (exit {done.returncode})"
        ) from None
    if done.returncode != 0:
        failed = [e for e in summary["entries"] if e["action"] == "failed"][:5]
        print(json.dumps(failed, indent=2), done.stderr[-2000:], sep="\n")
    return RunFigures(
        label,
        done.returncode,
        wall,
        cpu,
        dict(summary["counts"]),
        {
            "keycloak": list(stack.keycloak.requests),
            "vault": list(proxy.requests[vault_before:]),
            "kube": list(stack.kube.requests),
        },
    )


def print_summary(runs: Sequence[RunFigures], n: int) -> None:
    actions = sorted({k for r in runs for k in r.counts})
    head = f"{'run':<14} {'exit':>4} {'wall s':>7} {'ms/entry':>8} {'job CPU s':>9} "
    head += " ".join(f"{a:>9}" for a in actions)
    head += " " + " ".join(f"{s + '/entry':>14}" for s in SYSTEMS)
    head += f" {'repeated GETs':>13}"
    print(head)
    for r in runs:
        line = f"{r.label:<14} {r.exit_code:>4} {r.wall:>7.2f} {r.wall * 1000 / n:>8.1f} {r.cpu:>9.2f} "
        line += " ".join(f"{r.counts.get(a, 0):>9}" for a in actions)
        line += " " + " ".join(f"{len(r.requests[s]) / n:>14.3f}" for s in SYSTEMS)
        line += f" {sum(r.repeated_gets(s) for s in SYSTEMS):>13}"
        print(line)


def print_breakdown(runs: Sequence[RunFigures], n: int) -> None:
    print("\nrequests by method + path pattern: count (per entry)")
    print(f"{'system':<9} {'request':<38}" + "".join(f"{r.label:>20}" for r in runs))
    for system in SYSTEMS:
        counters = [r.by_pattern(system) for r in runs]
        keys = sorted({k for c in counters for k in c}, key=lambda k: (k.split(" ", 1)[1], k))
        for key in keys:
            cells = "".join(f"{f'{c[key]} ({c[key] / n:.3f})':>20}" for c in counters)
            print(f"{system:<9} {key:<38}{cells}")
        totals = "".join(f"{f'{sum(c.values())} ({sum(c.values()) / n:.3f})':>20}" for c in counters)
        print(f"{system:<9} {'total':<38}{totals}")
        repeated = "".join(f"{r.repeated_gets(system):>20}" for r in runs)
        print(f"{system:<9} {'repeated GETs of one path':<38}{repeated}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--consumers-per-client", type=int, default=1)
    parser.add_argument("--rotate-percent", type=float, default=10.0)
    args = parser.parse_args()
    n = args.clients
    clients = generate_clients(n, args.consumers_per_client)

    with tempfile.TemporaryDirectory(prefix="bench-client-patcher-") as tmp:
        openbao = start_openbao(Path(tmp) / "openbao")
        proxy: CountingProxy | None = None
        try:
            setup_started = time.monotonic()
            with ClientPatcherStack.start(
                openbao, openbao.new_kv_mount(), Path(tmp) / "stack", clients
            ) as stack:
                proxy = CountingProxy(openbao.addr)
                env = stack.env(VAULT_ADDR=proxy.addr)
                setup = time.monotonic() - setup_started
                print(
                    f"client-patcher benchmark: {n} service-generated entries, {args.consumers_per_client} "
                    f"consumer(s) each, {len(REALMS)} realms; rotation run rotates {args.rotate_percent:g}% "
                    f"(stack set up in {setup:.1f} s)"
                )
                plan: list[tuple[str, Callable[[], object]]] = [
                    ("first sync", lambda: None),
                    ("no-op resync", lambda: None),
                    (
                        "rotation",
                        lambda: stack.write_catalog(with_rotation(clients, args.rotate_percent, "r1")),
                    ),
                ]
                runs: list[RunFigures] = []
                for label, prepare in plan:
                    prepare()
                    runs.append(run_once(stack, proxy, label, env))
                print_summary(runs, n)
                print_breakdown(runs, n)
                rotated = runs[-1].by_pattern("keycloak")["POST client-secret"]
                print(f"\nrotation run: {rotated} client secrets regenerated in Keycloak")
                return 0 if all(r.exit_code == 0 for r in runs) else 1
        finally:
            if proxy is not None:
                proxy.stop()
            openbao.stop()


if __name__ == "__main__":
    raise SystemExit(main())
