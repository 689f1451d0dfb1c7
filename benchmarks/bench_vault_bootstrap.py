"""Benchmark vault-bootstrap at realistic latency: first sync and no-op resync of N external secrets.

    .venv/bin/python benchmarks/bench_vault_bootstrap.py [--entries 1000] [--keyvault-latency 20]
        [--vault-latency 3] [--entra-latency 0] [--concurrency 8] [--json]

For each size in `--entries`, starts a real OpenBao dev server behind `lab.vault_proxy.VaultProxy` (Vault
latency, request log) and the Entra ID / Key Vault emulator (lab/vault_bootstrap_stack.py), seeds N AKV
secrets and an all-external catalog, and runs the real `vault-bootstrap` console script twice: first
sync (everything written) and no-op resync (nothing changed). `--concurrency` is passed to the job when
its `--help` lists it. Prints wall time, requests per entry per system, peak RSS and CPU of the job
process, and the ratio to the latency floor; how each figure is made is in benchmarks/_measure.py and
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import _measure as m  # noqa: E402
from emulators.azure.model import TOKEN_PATH  # noqa: E402
from lab.vault_bootstrap_stack import VAULT_BOOTSTRAP, BootstrapStack  # noqa: E402
from lab.vault_proxy import VaultProxy  # noqa: E402

JOB = "vault-bootstrap"
LATENCY_DEFAULTS = {"keyvault": 20.0, "vault": 3.0}  # the scenario
SCENARIOS = ("first sync", "no-op resync")


def azure_system(request: object) -> str:
    return "entra" if TOKEN_PATH.match(getattr(request, "path", "")) else "keyvault"


def bench_size(n: int, args: argparse.Namespace, has_flag: bool, workdir: Path) -> list[m.RunFigures]:
    latency = m.latencies(args)
    log = m.RequestLog()
    with BootstrapStack.start(workdir) as stack, VaultProxy(stack.openbao.addr) as proxy:
        stack.seed_akv({f"bench-{i:05d}": f"benchmark-value-{i:05d}-{'x' * 24}" for i in range(n)})
        stack.write_catalog([{"name": f"bench-{i:05d}", "origin": "external"} for i in range(n)])
        stack.emulator.latency = 0.0  # one port, two systems: `instrument` sleeps per system instead
        m.instrument(stack.emulator, log, azure_system, {s: latency[s] for s in ("entra", "keyvault")})
        proxy.latency = latency["vault"] / 1000
        log.add_source(m.vault_source(proxy))
        env = stack.env(VAULT_ADDR=proxy.addr)
        command = [VAULT_BOOTSTRAP, "--log-format", "json"]
        if has_flag:
            command += ["--concurrency", str(args.concurrency)]
        stack.settle()
        runs = []
        for scenario in SCENARIOS:
            before, cpu_before = log.mark(), m.servers_cpu(stack.openbao.process.pid)
            run = m.run_job(command, env, args.timeout)
            servers = m.servers_cpu(stack.openbao.process.pid) - cpu_before
            counts = summary_counts(run, scenario)
            requests = log.since(before)
            runs.append(
                m.figures(JOB, scenario, n, run, requests, latency, args.concurrency, counts, servers)
            )
        return runs


def summary_counts(run: m.JobRun, scenario: str) -> dict[str, int]:
    try:
        return dict(json.loads(run.stdout.splitlines()[-1])["counts"])  # the summary record is last
    except (ValueError, KeyError):
        print(f"{JOB} {scenario}: no JSON summary (exit {run.returncode})", file=sys.stderr)
        print(run.stderr[-2000:], file=sys.stderr)
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    m.add_arguments(parser, LATENCY_DEFAULTS, [1000])
    args = parser.parse_args(argv)
    has_flag = m.job_has_flag(JOB, "--concurrency")
    runs: list[m.RunFigures] = []
    for n in args.entries:
        with tempfile.TemporaryDirectory(prefix="bench-vault-bootstrap-") as tmp:
            runs += bench_size(n, args, has_flag, Path(tmp))
    m.emit(m.document(JOB, args, has_flag, runs), args.json)
    return 0 if all(r.exit_code == 0 for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
