"""vault-bootstrap: Azure Key Vault -> Vault KV v2 through Workload Identity, plus dev fixtures.

What it promises: docs/design.md#vault-bootstrap. This module turns argv into an exit code; the
decisions are in `jobs.bootstrap.decide` (pure), the I/O in `jobs.bootstrap.run`.
"""

from __future__ import annotations

from jobs.core import signals

signals.install()  # first: a SIGTERM during the imports below only sets the interrupt flag

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from jobs.bootstrap.decide import select  # noqa: E402
from jobs.bootstrap.run import JOB, Options, execute  # noqa: E402
from jobs.core.clients.azure_kv import DEFAULT_CONCURRENCY, MAX_CONCURRENCY  # noqa: E402
from jobs.core.runner import add_common_arguments, run_main  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=JOB, description=__doc__.split("\n", 1)[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--verify",
        action="store_true",
        help="fetch every AKV value and compare it in full, even when the recorded fingerprint proves "
        "Vault already holds it",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        choices=range(1, MAX_CONCURRENCY + 1),
        default=DEFAULT_CONCURRENCY,
        metavar=f"1..{MAX_CONCURRENCY}",
        help=f"parallel AKV value reads (default {DEFAULT_CONCURRENCY})",
    )
    return parser


def parse_options(args: argparse.Namespace) -> Options:
    return Options(verify=bool(args.verify), concurrency=int(args.concurrency))


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(JOB, build_parser(), argv, execute, select, options=parse_options)


if __name__ == "__main__":
    sys.exit(main())
