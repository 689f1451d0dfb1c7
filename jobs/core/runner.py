"""What every entrypoint shares: the common flags and exit codes (docs/design.md#exit-codes),
catalog loading before anything is contacted, the frozen run context, SIGTERM handling, the per-entry
loop that catches at the entry boundary, and the single summary."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from jobs import __version__
from jobs.core import signals
from jobs.core.catalog import Catalog, CatalogError, SecretEntry, load_catalog
from jobs.core.errors import ConfigError, Unavailable, failure_reason
from jobs.core.logs import redact, setup_logging
from jobs.core.model import Action, EntryResult, ExitCode, Outcome, RunReport
from jobs.core.retry import Deadline, RetryPolicy
from jobs.core.settings import protect_environment

log = logging.getLogger(__name__)
CATALOG_ENV = "SECRET_CATALOG"


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--catalog",
        type=Path,
        default=os.environ.get(CATALOG_ENV) or None,
        help=f"catalog YAML file (default: ${CATALOG_ENV})",
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
        "--only", action="append", default=[], metavar="NAME", help="limit to this entry (repeatable)"
    )
    parser.add_argument(
        "--deadline",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="stop retrying and starting entries after this long (below the Job's activeDeadlineSeconds)",
    )
    parser.add_argument(
        "--request-timeout",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="timeout of each request to Vault, Keycloak, Key Vault or Kubernetes (default 10 s; 15 s for "
        "Key Vault); a system that fails 3 times in a row is not contacted again in this run",
    )


OptionsT = TypeVar("OptionsT")
OtherT = TypeVar("OtherT")


@dataclass(frozen=True)
class RunContext(Generic[OptionsT]):
    """Everything a run is given, decided at the door; `options` are the job's own typed flags."""

    job: str
    options: OptionsT
    catalog: Catalog
    entries: tuple[SecretEntry, ...]
    log_format: str
    dry_run: bool
    deadline: Deadline
    interrupt: threading.Event
    retry: RetryPolicy

    def with_options(self, job: str, options: OtherT) -> RunContext[OtherT]:
        """The same run, for one subcommand with its own options (e.g. `secret-origin smoke`)."""
        return RunContext(
            job,
            options,
            self.catalog,
            self.entries,
            self.log_format,
            self.dry_run,
            self.deadline,
            self.interrupt,
            self.retry,
        )

    def report(
        self, results: Iterable[EntryResult], interrupted: bool = False, warnings: Iterable[str] = ()
    ) -> RunReport:
        return RunReport(
            job=self.job,
            results=tuple(results),
            interrupted=interrupted or self.interrupt.is_set(),
            dry_run=self.dry_run,
            warnings=tuple(warnings),
        )


def process_entries(
    ctx: RunContext[Any],
    entries: Sequence[SecretEntry],
    handle: Callable[[SecretEntry], EntryResult],
    warnings: Iterable[str] = (),
) -> RunReport:
    """Run `handle` per entry. One bad entry yields `failed` and the loop goes on; SIGTERM or the
    deadline stop new entries from starting (those are reported as skipped, and the run exits 1)."""
    results: list[EntryResult] = []
    stopped_because = ""
    for entry in entries:
        if not stopped_because and ctx.interrupt.is_set():
            stopped_because = "not started: interrupted by SIGTERM"
        if not stopped_because and ctx.deadline.expired():
            stopped_because = "not started: run deadline reached"
        if stopped_because:
            results.append(EntryResult(entry.name, Action.SKIPPED, stopped_because))
            continue
        try:
            result = handle(entry)
        except Exception as exc:  # noqa: BLE001 - the entry boundary: record, go on
            reason = failure_reason(exc)
            if not isinstance(exc, Unavailable):  # the breaker logged that reason once, when it opened
                log.error("entry failed", extra={"entry": entry.name, "error": reason})  # noqa: TRY400
            result = EntryResult(entry.name, Action.FAILED, reason)
        results.append(result)
    return ctx.report(results, interrupted=bool(stopped_because), warnings=warnings)


def fail_all(
    ctx: RunContext[Any], entries: Sequence[SecretEntry], exc: BaseException, warnings: Iterable[str] = ()
) -> RunReport:
    """A run-level failure (e.g. Vault login refused): every entry fails with the same reason."""
    reason = failure_reason(exc)
    log.error("run failed before processing entries", extra={"error": reason})
    return ctx.report((EntryResult(e.name, Action.FAILED, reason) for e in entries), warnings=warnings)


def no_options(args: argparse.Namespace) -> None:
    """For a job without flags of its own."""
    return None


def _entries(
    job: str,
    catalog: Catalog,
    only: Sequence[str],
    select: Callable[[Catalog], tuple[SecretEntry, ...]] | None,
) -> tuple[SecretEntry, ...]:
    unknown = sorted(set(only) - {e.name for e in catalog.secrets})
    if unknown:
        raise ConfigError(f"--only names not in {catalog.path}: {', '.join(unknown)}")
    selected = select(catalog) if select else catalog.secrets
    handled = {e.name for e in selected}
    foreign = [e for e in catalog.secrets if e.name in set(only) and e.name not in handled]
    if foreign:
        kinds = ", ".join(f"{e.name} (origin {e.origin.value})" for e in foreign)
        raise ConfigError(f"--only names entries {job} does not handle: {kinds}")
    return tuple(e for e in selected if not only or e.name in set(only))


def _load(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Catalog | None:
    """The catalog, or None after printing why (exit 2 before any server is contacted)."""
    if args.catalog is None:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: --catalog or ${CATALOG_ENV} is required", file=sys.stderr)
        return None
    try:
        return load_catalog(args.catalog)
    except CatalogError as exc:
        print(redact(str(exc)), file=sys.stderr)
        return None


def run_main(
    job: str,
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    execute: Callable[[RunContext[OptionsT]], Outcome],
    select: Callable[[Catalog], tuple[SecretEntry, ...]] | None = None,
    *,
    options: Callable[[argparse.Namespace], OptionsT] = no_options,  # type: ignore[assignment]
) -> int:
    """Parse, validate the catalog (exit 2 before any contact), run, print one summary, exit code."""
    protect_environment()  # before any file is read or any client is built
    args = parser.parse_args(argv)
    log_format = args.log_format or ("text" if sys.stdout.isatty() else "json")
    setup_logging(log_format)
    catalog = _load(parser, args)
    if catalog is None:
        return ExitCode.BAD_INVOCATION
    interrupt = signals.install()
    deadline = Deadline(args.deadline)
    try:
        entries = _entries(job, catalog, args.only, select)
        ctx = RunContext(
            job=job,
            options=options(args),
            catalog=catalog,
            entries=entries,
            log_format=log_format,
            dry_run=bool(args.dry_run),
            deadline=deadline,
            interrupt=interrupt,
            retry=RetryPolicy(deadline=deadline, interrupt=interrupt, request_timeout=args.request_timeout),
        )
        outcome = execute(ctx)
    except ConfigError as exc:
        print(f"{parser.prog}: error: {redact(str(exc))}", file=sys.stderr)
        return ExitCode.BAD_INVOCATION
    except Exception as exc:  # noqa: BLE001 - a crash outside the entry loop: no raw traceback
        print(f"{parser.prog}: error: {failure_reason(exc)}", file=sys.stderr)
        return ExitCode.ENTRY_FAILED
    print(redact(outcome.render(log_format)), flush=True)
    return outcome.exit_code
