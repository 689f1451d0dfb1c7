"""client-patcher: Keycloak-generated client secrets -> Vault KV v2 -> ESO force-sync
(docs/design.md#client-patcher)."""

from __future__ import annotations

from jobs.core import signals

signals.install()  # first: a SIGTERM during the imports below only sets the interrupt flag

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from jobs.core.runner import add_common_arguments, run_main  # noqa: E402
from jobs.patcher.decide import select  # noqa: E402
from jobs.patcher.run import JOB, Options, execute  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=JOB, description=__doc__)
    add_common_arguments(parser)
    parser.add_argument(
        "--rotate",
        action="append",
        default=[],
        metavar="NAME",
        help="regenerate this entry's client secret in Keycloak now (repeatable); "
        "the catalog's keycloak.rotate.runId rotates once per new runId without this flag",
    )
    return parser


def parse_options(args: argparse.Namespace) -> Options:
    return Options(rotate=tuple(args.rotate))


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(JOB, build_parser(), argv, execute, select, options=parse_options)


if __name__ == "__main__":
    sys.exit(main())
