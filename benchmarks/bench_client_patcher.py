"""Benchmark client-patcher at realistic latency: first sync, no-op resync and rotation of N clients.

    .venv/bin/python benchmarks/bench_client_patcher.py [--entries 2000] [--realms 2] [--consumers 200]
        [--namespaces 4] [--keycloak-latency 10] [--kube-latency 5] [--vault-latency 3]
        [--concurrency 8] [--json]

For each size in `--entries`, starts a real OpenBao dev server behind `lab.vault_proxy.VaultProxy` plus
the Keycloak and Kubernetes emulators, seeded the way the e2e tests seed them
(lab/client_patcher_stack.py) but with N generated confidential clients spread over `--realms` realms,
and `--consumers` ExternalSecrets (refreshPolicy OnChange) spread over `--namespaces` namespaces, one
per entry on evenly spaced entries (default: one consumer per 10 entries). Runs the real
`client-patcher` console script for each scenario:

1. first sync     every entry is created in Vault and its consumers get force-sync;
2. no-op resync   nothing changed anywhere;
3. rotation       `keycloak.rotate.runId` set on `--rotate-percent` of the entries.

`--concurrency` is passed to the job when its `--help` lists it. Prints wall time, requests per entry
per system, peak RSS and CPU of the job process, and the ratio to the latency floor; how each figure is
made is in benchmarks/_measure.py and docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import _measure as m  # noqa: E402
from lab.client_patcher_stack import ClientPatcherStack, ClientSpec  # noqa: E402
from lab.openbao import start_openbao  # noqa: E402
from lab.vault_proxy import VaultProxy  # noqa: E402

JOB = "client-patcher"
LATENCY_DEFAULTS = {"keycloak": 10.0, "kube": 5.0, "vault": 3.0}  # the scenario
SCENARIOS = ("first sync", "no-op resync", "rotation")


def generate_clients(n: int, realms: int, consumers: int, namespaces: int) -> tuple[ClientSpec, ...]:
    """N clients round-robin over the realms; consumer j on entry j*n//consumers, namespace j % namespaces."""
    owners = {j * n // consumers: j for j in range(min(consumers, n))} if consumers > 0 else {}
    return tuple(
        ClientSpec(
            f"bench-{i:05d}-client-secret",
            f"bench-realm-{i % realms}",
            f"bench-{i:05d}",
            ((f"bench-ns-{owners[i] % namespaces}", f"bench-{i:05d}-sync"),) if i in owners else (),
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


def summary_counts(run: m.JobRun, scenario: str) -> dict[str, int]:
    try:
        return dict(json.loads(run.stdout.splitlines()[-1])["counts"])  # the summary record is last
    except (ValueError, KeyError):
        print(f"{JOB} {scenario}: no JSON summary (exit {run.returncode})", file=sys.stderr)
        print(run.stderr[-2000:], file=sys.stderr)
        return {}


def bench_size(n: int, args: argparse.Namespace, has_flag: bool, workdir: Path) -> list[m.RunFigures]:
    latency = m.latencies(args)
    consumers = n // 10 if args.consumers is None else args.consumers
    clients = generate_clients(n, args.realms, consumers, args.namespaces)
    log = m.RequestLog()
    openbao = start_openbao(workdir / "openbao")
    try:
        with (
            ClientPatcherStack.start(
                openbao,
                openbao.new_kv_mount(),
                workdir / "stack",
                clients,
                per_key_policy=args.vault_policy == "per-key",
            ) as stack,
            VaultProxy(openbao.addr, latency=latency["vault"] / 1000) as proxy,
        ):
            stack.keycloak.latency = latency["keycloak"] / 1000
            stack.kube.latency = latency["kube"] / 1000
            m.instrument(stack.keycloak, log, lambda _: "keycloak", {})
            m.instrument(stack.kube, log, lambda _: "kube", {})
            log.add_source(m.vault_source(proxy))
            env = stack.env(VAULT_ADDR=proxy.addr)
            extra = ["--concurrency", str(args.concurrency)] if has_flag else []
            extra += ["--login-rate", str(args.login_rate)] if args.login_rate else []
            command = stack.command("--log-format", "json", *extra)
            runs = []
            for scenario in SCENARIOS[: 3 if args.rotation else 2]:
                if scenario == "rotation":
                    stack.write_catalog(with_rotation(clients, args.rotate_percent, "r1"))
                before, cpu_before = log.mark(), m.servers_cpu(openbao.process.pid)
                run = m.run_job(command, env, args.timeout)
                servers = m.servers_cpu(openbao.process.pid) - cpu_before
                figures = m.figures(
                    JOB,
                    scenario,
                    n,
                    run,
                    log.since(before),
                    latency,
                    args.concurrency,
                    summary_counts(run, scenario),
                    servers,
                )
                figures.extra = {
                    "realms": args.realms,
                    "consumers": consumers,
                    "namespaces": args.namespaces,
                    "vault_policy": args.vault_policy,
                }
                runs.append(figures)
            return runs
    finally:
        openbao.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    m.add_arguments(parser, LATENCY_DEFAULTS, [2000])
    parser.add_argument("--realms", type=int, default=2)
    parser.add_argument(
        "--consumers", type=int, default=None, help="ExternalSecrets in all (default: entries / 10)"
    )
    parser.add_argument("--namespaces", type=int, default=4)
    parser.add_argument("--rotate-percent", type=float, default=10.0)
    parser.add_argument(
        "--no-rotation", dest="rotation", action="store_false", help="first sync and no-op only"
    )
    parser.add_argument(
        "--vault-policy",
        choices=("per-key", "mount"),
        default="per-key",
        help="the job's Vault token: a policy naming every key (as `secret-origin policy` writes it), or "
        "the same rights on `<mount>/*` (OpenBao then spends far less CPU per request; see "
        "docs/performance.md) (default %(default)s)",
    )
    parser.add_argument(
        "--login-rate",
        type=float,
        default=None,
        metavar="PER_SECOND",
        help="passed to the job: the pace of --verify-login's logins (the job's default, 5 per second, "
        "sets a first sync's wall time: 2,000 written entries take at least 400 s)",
    )
    args = parser.parse_args(argv)
    has_flag = m.job_has_flag(JOB, "--concurrency")
    runs: list[m.RunFigures] = []
    for n in args.entries:
        with tempfile.TemporaryDirectory(prefix="bench-client-patcher-") as tmp:
            runs += bench_size(n, args, has_flag, Path(tmp))
    m.emit(m.document(JOB, args, has_flag, runs), args.json)
    return 0 if all(r.exit_code == 0 for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
