"""secret-origin: the classification enforced in CI (check) and in the cluster (smoke, audit, policy).

check   offline: catalog classification, production hygiene of values files, ESO anti-patterns in
        rendered manifests; text, JSON or SARIF; exit 1 on any error
smoke   live: cluster-managed Vault keys exist and hold no fixture (and, with --consumers, ESO synced them)
audit   live: the compliance matrix (markdown or JSON); exit 1 on any NON-COMPLIANT entry
policy  the least-privilege Vault policy (HCL) a job needs for this catalog

Only the standard library is imported before the flags are parsed, so `--help`, `--version` and a
usage error are instant; the commands, the catalog model and the vendor SDKs load after that.
"""

from __future__ import annotations

from jobs.core import signals

signals.install()  # first: a SIGTERM during the imports below only sets the interrupt flag

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

from jobs.checks import cli  # noqa: E402
from jobs.core.flags import (  # noqa: E402
    JobParser,
    add_common_arguments,
    add_version_argument,
    missing_catalog,
)

if TYPE_CHECKING:
    from jobs.checks.cli import Command
    from jobs.core.model import Outcome
    from jobs.core.runner import RunContext

PROG = "secret-origin"


def build_parser() -> argparse.ArgumentParser:
    parser = JobParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text, add_arguments in (
        ("check", "offline CI check (exit 2 invalid catalog, 1 violation)", cli.add_check_arguments),
        ("smoke", "live: cluster-managed secrets are real, consumers synced", cli.add_smoke_arguments),
        ("audit", "live: the compliance matrix", cli.add_audit_arguments),
        ("policy", "the least-privilege Vault policy of a job (HCL)", cli.add_policy_arguments),
    ):
        command = sub.add_parser(name, help=help_text)
        add_common_arguments(command)
        add_arguments(command)
    return parser


def execute(ctx: RunContext[Command]) -> Outcome:
    """Each subcommand runs under its own name (the summary names it) with its own options."""
    from jobs.checks import check, live, policy
    from jobs.checks.audit import AuditOptions
    from jobs.checks.check import CheckOptions
    from jobs.checks.policy import PolicyOptions
    from jobs.checks.smoke import SmokeOptions

    options = ctx.options
    match options:
        case CheckOptions():
            return check.execute(ctx.catalog, options)
        case SmokeOptions():
            return live.smoke(ctx.with_options(f"{PROG} smoke", options))
        case AuditOptions():
            return live.audit(ctx.with_options(f"{PROG} audit", options))
        case PolicyOptions():
            return policy.execute(ctx.catalog, options.job, ctx.entries)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # --help, --version, usage errors and a missing catalog end here, before the heavy imports
    missing = missing_catalog(PROG, parser.parse_args(argv))
    if missing is not None:
        return missing
    from jobs.core.runner import run_main

    return run_main(PROG, parser, argv, execute, options=cli.parse_options)


if __name__ == "__main__":
    sys.exit(main())
