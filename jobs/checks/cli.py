"""The command line of `secret-origin`: each subcommand's flags, and their parsing at the door into
the frozen option objects the commands take (a bad flag is a bad invocation: exit 2).

Building the parser needs the standard library alone, so `--help`, `--version` and a usage error
answer before the commands, the catalog model or any vendor SDK is imported; the option classes load
when the options are parsed, after the catalog was read."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias

from jobs.core.errors import ConfigError

if TYPE_CHECKING:
    from jobs.checks.audit import AuditOptions
    from jobs.checks.check import CheckOptions
    from jobs.checks.policy import PolicyOptions
    from jobs.checks.smoke import SmokeOptions

    Command: TypeAlias = CheckOptions | SmokeOptions | AuditOptions | PolicyOptions

FORMATS: Final = ("text", "json", "sarif")  # secret-origin check --format
AUDIT_FORMATS: Final = ("markdown", "json")  # secret-origin audit --format
JOBS: Final = ("client-patcher", "vault-bootstrap", "smoke", "audit")  # secret-origin policy --for


def add_placeholder_argument(parser: argparse.ArgumentParser) -> None:
    """`--placeholder-pattern`, shared by check, smoke and audit."""
    parser.add_argument(
        "--placeholder-pattern",
        action="append",
        default=[],
        metavar="REGEX",
        help="a regular expression of placeholder values (repeatable; added to the built-in ones)",
    )


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--values",
        action="append",
        default=[],
        metavar="[ENV=]FILE",
        help="a Helm values file, tagged with its environment (untagged: the catalog's environment); "
        "repeatable. Files tagged production/prod are checked for fixtures and placeholders",
    )
    parser.add_argument(
        "--manifests",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="rendered manifests (e.g. `helm template` output), searched recursively; repeatable",
    )
    parser.add_argument(
        "--fixtures-from",
        action="append",
        default=[],
        type=Path,
        metavar="CATALOG",
        help="another catalog (e.g. the dev one) whose fixtures also count as known placeholders; repeatable",
    )
    add_placeholder_argument(parser)
    parser.add_argument(
        "--no-builtin-placeholders",
        action="store_true",
        help="use only the --placeholder-pattern expressions",
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")


def add_smoke_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--consumers",
        action="store_true",
        help="also compare each consumer ExternalSecret's synced Secret with Vault (needs Kubernetes access)",
    )
    add_login_arguments(parser)
    add_placeholder_argument(parser)


def add_login_arguments(parser: argparse.ArgumentParser) -> None:
    """`--login` and `--login-rate`, shared by smoke and audit."""
    parser.add_argument(
        "--login",
        action="store_true",
        help="also log in to each service-generated entry's realm as its client (client_credentials) with "
        "the secret in Vault (smoke --consumers: and in each consumer's Secret); no admin credential "
        "is used, no token kept (docs/design.md#checks)",
    )
    parser.add_argument(
        "--login-rate",
        type=float,
        default=5.0,
        metavar="PER_SECOND",
        help="at most this many token-endpoint requests per second (default: 5)",
    )


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=AUDIT_FORMATS, default="markdown")
    add_login_arguments(parser)
    add_placeholder_argument(parser)


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--for", dest="job", choices=JOBS, required=True)


def compile_patterns(patterns: Sequence[str]) -> tuple[str, ...]:
    """The `--placeholder-pattern` expressions, once each is known to compile (else exit 2)."""
    for n, pattern in enumerate(patterns, 1):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"--placeholder-pattern #{n} is not a valid regular expression: {exc.msg}"
            ) from None
    return tuple(patterns)


def parse_check_options(args: argparse.Namespace) -> CheckOptions:
    from jobs.checks.check import CheckOptions

    return CheckOptions(
        values=tuple(args.values),
        manifests=tuple(args.manifests),
        fixtures_from=tuple(args.fixtures_from),
        placeholder_patterns=compile_patterns(args.placeholder_pattern),
        builtin_placeholders=not args.no_builtin_placeholders,
        format=args.format,
    )


def login_rate(args: argparse.Namespace) -> float:
    if args.login_rate <= 0:
        raise ConfigError("--login-rate must be a positive number of requests per second")
    return float(args.login_rate)


def parse_options(args: argparse.Namespace) -> Command:
    from jobs.checks.audit import AuditOptions
    from jobs.checks.policy import PolicyOptions
    from jobs.checks.smoke import SmokeOptions

    if args.command == "check":
        return parse_check_options(args)
    if args.command == "smoke":
        return SmokeOptions(
            bool(args.consumers),
            compile_patterns(args.placeholder_pattern),
            login=bool(args.login),
            login_rate=login_rate(args),
        )
    if args.command == "audit":
        return AuditOptions(
            args.format,
            compile_patterns(args.placeholder_pattern),
            login=bool(args.login),
            login_rate=login_rate(args),
        )
    return PolicyOptions(args.job)
