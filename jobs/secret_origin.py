"""secret-origin: the classification enforced in CI (check) and in the cluster (smoke, audit, policy).

check   offline: catalog classification, production hygiene of values files, ESO anti-patterns in
        rendered manifests; text, JSON or SARIF; exit 1 on any error
smoke   live: cluster-managed Vault keys exist and hold no fixture (and, with --consumers, ESO synced them)
audit   live: the compliance matrix (markdown or JSON); exit 1 on any NON-COMPLIANT entry
policy  the least-privilege Vault policy (HCL) a job needs for this catalog
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jobs import __version__
from jobs.checks import audit, check, policy, smoke
from jobs.core.model import CommandOutput, RunReport
from jobs.core.runner import RunContext, add_common_arguments, run_main

PROG = "secret-origin"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    check_parser = sub.add_parser("check", help="offline CI check (exit 2 invalid catalog, 1 violation)")
    add_common_arguments(check_parser)
    check.add_arguments(check_parser)
    smoke_parser = sub.add_parser("smoke", help="live: cluster-managed secrets are real, consumers synced")
    add_common_arguments(smoke_parser)
    smoke.add_arguments(smoke_parser)
    audit_parser = sub.add_parser("audit", help="live: the compliance matrix")
    add_common_arguments(audit_parser)
    audit_parser.add_argument("--format", choices=audit.FORMATS, default="markdown")
    check.add_placeholder_argument(audit_parser)
    policy_parser = sub.add_parser("policy", help="the least-privilege Vault policy of a job (HCL)")
    add_common_arguments(policy_parser)
    policy_parser.add_argument("--for", dest="job", choices=policy.JOBS, required=True)
    return parser


def execute(ctx: RunContext) -> RunReport | CommandOutput:
    command = ctx.args.command
    ctx.job = f"{PROG} {command}"  # the summary names the subcommand
    if command == "check":
        return check.execute(ctx.catalog, ctx.args)
    if command == "smoke":
        check.compile_patterns(ctx.args.placeholder_pattern)
        return smoke.execute(ctx)
    if command == "audit":
        check.compile_patterns(ctx.args.placeholder_pattern)
        return audit.execute(ctx)
    return policy.execute(ctx.catalog, ctx.args.job, ctx.entries)


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(PROG, build_parser(), argv, execute)


if __name__ == "__main__":
    sys.exit(main())
