"""The flags every entrypoint shares, built from the standard library alone: `--help`, `--version`
and a usage error (exit 2) answer before the catalog model, the settings or any vendor SDK is
imported (docs/design.md#exit-codes)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NoReturn
from urllib.parse import unquote, urlsplit

from jobs.core.credentials import environment_value
from jobs.core.logs import register_secret
from jobs.core.model import SummaryMode

CATALOG_ENV: Final = "SECRET_CATALOG"
# Not `..._KEY`: a variable ending in _KEY is a credential (docs/design.md#settings-and-credentials).
CATALOG_KEY_ENV: Final = "SECRET_CATALOG_KEY_PATH"
BAD_INVOCATION: Final = 2  # ExitCode.BAD_INVOCATION
# Entries processed at once (vault-bootstrap's Vault phase; Key Vault value reads cap themselves at 10).
DEFAULT_CONCURRENCY: Final = 8
MAX_CONCURRENCY: Final = 32
METRICS_PUSH_ENV: Final = "SECRET_ORIGIN_METRICS_PUSH"
METRICS_FILE_ENV: Final = "SECRET_ORIGIN_METRICS_FILE"


class VersionAction(argparse.Action):
    """`--version`: the installed package's version, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        import jobs

        print(f"{parser.prog} {jobs.__version__}")  # on stdout, as argparse's own version action does
        parser.exit()


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def positive_number(unit: str, at_most: float) -> Callable[[str], float]:
    """An argparse type: a number above 0 and at most `at_most`, named by its unit in the errors."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of {unit}: {text!r}") from None
        if not 0 < value <= at_most:
            raise argparse.ArgumentTypeError(f"must be > 0 and <= {at_most:g} {unit}: {text!r}")
        return value

    return parse


def concurrency_argument(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_CONCURRENCY}")
    return value


def pushgateway_url(text: str) -> str:
    """An http(s) Pushgateway URL; never echoed back, as it may carry user:password (registered for
    redaction at once)."""
    try:
        parts = urlsplit(text)
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise argparse.ArgumentTypeError("not a URL") from None
    register_secret(unquote(parts.password or ""))
    if parts.scheme not in ("http", "https") or not host:
        raise argparse.ArgumentTypeError("needs http://HOST:PORT or https://HOST:PORT")
    return text


def add_version_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action=VersionAction, help="print the version and exit")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    add_version_argument(parser)
    parser.add_argument(
        "--catalog",
        type=Path,
        default=os.environ.get(CATALOG_ENV) or None,
        help=f"catalog YAML file (default: ${CATALOG_ENV})",
    )
    parser.add_argument(
        "--catalog-key",
        default=os.environ.get(CATALOG_KEY_ENV) or None,
        metavar="KEY",
        help="read the catalog under this dotted key of a Helm values file given as --catalog, e.g. "
        f"`catalog` (default: ${CATALOG_KEY_ENV}; docs/catalog-reference.md)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="read everything, print the plan, write nothing"
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=None,
        help="log and summary format (default: json when stdout is not a terminal)",
    )
    parser.add_argument(
        "--summary",
        choices=[m.value for m in SummaryMode],
        default=SummaryMode.CHANGES.value,
        help="changes: list the entries that were not unchanged, then the counts (default); "
        "full: list every entry",
    )
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="limit to this entry (repeatable)"
    )
    parser.add_argument(
        "--deadline",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="stop retrying and starting entries after this long (below the Job's activeDeadlineSeconds)",
    )
    parser.add_argument(
        "--request-timeout",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="timeout of each request to Vault, Keycloak, Key Vault or Kubernetes (default 10 s; 15 s for "
        "Key Vault); a system that fails 3 times in a row is not contacted again in this run",
    )
    add_metrics_arguments(parser)


def add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-push",
        type=pushgateway_url,
        default=environment_value(METRICS_PUSH_ENV),
        metavar="URL",
        help=f"push the run's Prometheus metrics to this Pushgateway (default: ${METRICS_PUSH_ENV}); "
        "a failed push is a warning, never a failed run (docs/design.md#metrics-and-events)",
    )
    parser.add_argument(
        "--metrics-file",
        type=Path,
        default=os.environ.get(METRICS_FILE_ENV) or None,
        metavar="PATH",
        help=f"write the run's metrics to this node-exporter textfile, atomically "
        f"(default: ${METRICS_FILE_ENV})",
    )


def log_format_of(argv: Sequence[str] | None) -> str:
    """The log format asked for, read before (and whatever) argparse decides: json when stdout is not
    a terminal, unless `--log-format` says otherwise."""
    args = list(sys.argv[1:] if argv is None else argv)
    for n, arg in enumerate(args):
        if arg == "--log-format" and n + 1 < len(args):
            return args[n + 1]
        if arg.startswith("--log-format="):
            return arg.split("=", 1)[1]
    return "text" if sys.stdout.isatty() else "json"


def bad_invocation(
    job: str, log_format: str, message: str, problems: Sequence[str] = (), exit_code: int = BAD_INVOCATION
) -> int:
    """A run that ends before its entries (exit 2, or 1 for a crash), said once. Under json, stderr
    gets one JSON object (catalog problems as a `problems` array) and stdout still ends with the
    summary record carrying the exit code."""
    if log_format != "json":
        print(message, file=sys.stderr)
        return exit_code
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "error",
        "logger": "jobs",
        "message": "bad invocation" if exit_code == BAD_INVOCATION else "run failed",
        "job": job,
        "error": message.splitlines()[0] if message else "",
    }
    if problems:
        record["problems"] = list(problems)
    print(json.dumps(record), file=sys.stderr, flush=True)
    summary = {
        "record": "summary",
        "summary": job,
        "dry_run": False,
        "interrupted": False,
        "stopped_by": None,
        "exit_code": exit_code,
        "counts": {},
        "warnings": [],
    }
    print(json.dumps(summary), flush=True)
    return exit_code


class JobParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors follow `--log-format` (JSON under json)."""

    def parse_known_args(
        self, args: Iterable[str] | None = None, namespace: Any = None
    ) -> tuple[Any, list[str]]:
        given = None if args is None else list(args)
        self._log_format = log_format_of(given)
        return super().parse_known_args(given, namespace)

    def error(self, message: str) -> NoReturn:
        if getattr(self, "_log_format", "text") != "json":
            super().error(message)
        redacted = message  # argparse echoes flags and choices only, never a value read from a server
        sys.exit(bad_invocation(self.prog, "json", f"{self.prog}: error: {redacted}"))


def missing_catalog(prog: str, args: argparse.Namespace) -> int | None:
    """Exit 2 when no catalog was given (checked before anything heavy is imported), else None."""
    if args.catalog is not None:
        return None
    log_format = args.log_format or ("text" if sys.stdout.isatty() else "json")
    return bad_invocation(prog, log_format, f"{prog}: error: --catalog or ${CATALOG_ENV} is required")
