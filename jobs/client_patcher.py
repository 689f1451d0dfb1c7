"""client-patcher: Keycloak-generated client secrets -> Vault KV v2 -> ESO force-sync
(docs/design.md#client-patcher)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jobs.core.runner import add_common_arguments, run_main
from jobs.patcher.decide import select
from jobs.patcher.run import JOB, Options, execute


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
