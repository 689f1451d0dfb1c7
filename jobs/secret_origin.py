"""secret-origin: the classification enforced in CI (check) and in the cluster (smoke, audit, policy)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jobs.core.errors import ConfigError
from jobs.core.model import RunReport
from jobs.core.runner import RunContext, add_common_arguments, run_main

PROG = "secret-origin"
SUBCOMMANDS = ("check", "smoke", "audit", "policy")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        add_common_arguments(sub.add_parser(name))
    return parser


def execute(ctx: RunContext) -> RunReport:
    raise ConfigError(f"`{ctx.args.command}` is not implemented yet: the catalog is valid")


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(PROG, build_parser(), argv, execute)


if __name__ == "__main__":
    sys.exit(main())
