"""Benchmark vault-bootstrap: first sync and no-op resync of N external secrets (not a test).

    .venv/bin/python benchmarks/bench_vault_bootstrap.py [--secrets 2000] [--latency 0.0]

Starts a real OpenBao dev server and the Entra ID / Key Vault emulator (lab/), seeds N AKV
secrets, and runs the real `vault-bootstrap` console script three times: first sync, no-op resync, and
`--verify` resync. Prints wall time and HTTP requests per secret for each side.

How requests are counted:
- Azure: the emulator's own request log (every HTTP request it received, token POSTs included).
- Vault: a small counting reverse proxy in front of OpenBao (VAULT_ADDR points at it; see
  benchmarks/_counting.py for why a proxy rather than an audit device).
`--latency` adds that many seconds to every emulator response, to see the bounded fetch pool at work.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._counting import CountingProxy  # noqa: E402
from lab.vault_bootstrap_stack import BootstrapStack  # noqa: E402


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
