"""vault-bootstrap: Azure Key Vault -> Vault KV v2 through Workload Identity, plus dev fixtures.

What it promises: docs/design.md#vault-bootstrap. This module turns argv into an exit code; the
decisions are in `jobs.bootstrap.decide` (pure), the I/O in `jobs.bootstrap.run`. Only the standard
library is imported before the flags are parsed, so `--help`, `--version` and a usage error are
instant; the catalog model, the settings and the vendor SDKs load after that, when needed.
"""

from __future__ import annotations

from jobs.core import signals

signals.install()  # first: a SIGTERM during the imports below only sets the interrupt flag

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import TYPE_CHECKING, Final  # noqa: E402

from jobs.core.flags import (  # noqa: E402
    DEFAULT_CONCURRENCY,
    MAX_CONCURRENCY,
    JobParser,
    add_common_arguments,
    concurrency_argument,
    missing_catalog,
)

if TYPE_CHECKING:
    from jobs.bootstrap.run import Options
    from jobs.core.catalog import Catalog, SecretEntry
    from jobs.core.model import RunReport
    from jobs.core.runner import RunContext

JOB: Final = "vault-bootstrap"


def build_parser() -> argparse.ArgumentParser:
    parser = JobParser(prog=JOB, description=__doc__.split("\n", 1)[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--verify",
        action="store_true",
        help="fetch every AKV value and compare it in full, even when the recorded fingerprint proves "
        "Vault already holds it",
    )
    parser.add_argument(
        "--concurrency",
        type=concurrency_argument,
        default=DEFAULT_CONCURRENCY,
        metavar=f"1..{MAX_CONCURRENCY}",
        help="entries read and written in Vault at once, and parallel AKV value reads (at most 10) "
        f"(default {DEFAULT_CONCURRENCY})",
    )
    return parser


def parse_options(args: argparse.Namespace) -> Options:
    from jobs.bootstrap.run import Options

    return Options(verify=bool(args.verify), concurrency=int(args.concurrency))


def select(catalog: Catalog) -> tuple[SecretEntry, ...]:
    """The entries this job handles; the job's modules (and vendor SDKs) load once a catalog was read."""
    from jobs.bootstrap.decide import select as selected

    return selected(catalog)


def execute(ctx: RunContext[Options]) -> RunReport:
    from jobs.bootstrap.run import execute as run

    return run(ctx)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # --help, --version, usage errors and a missing catalog end here, before the heavy imports
    missing = missing_catalog(JOB, parser.parse_args(argv))
    if missing is not None:
        return missing
    from jobs.core.runner import run_main

    return run_main(JOB, parser, argv, execute, select, options=parse_options)


if __name__ == "__main__":
    sys.exit(main())
