"""What every entrypoint shares: the common flags and exit codes (docs/design.md#exit-codes),
catalog loading before anything is contacted, the frozen run context, SIGTERM handling, the per-entry
loop that catches at the entry boundary, and the single summary."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from jobs.core import signals, traffic
from jobs.core.catalog import MAX_PRINTED_PROBLEMS, CatalogError, load_catalog
from jobs.core.credentials import protect_environment
from jobs.core.errors import ConfigError, Sealed, Unavailable, failure_reason
from jobs.core.flags import CATALOG_ENV, bad_invocation
from jobs.core.logs import redact, setup_logging
from jobs.core.model import (
    NOT_STARTED,
    Action,
    CommandOutput,
    EntryResult,
    ExitCode,
    Outcome,
    RunReport,
    StopReason,
    SummaryMode,
)
from jobs.core.pool import Progress, map_bounded

if TYPE_CHECKING:  # the catalog model (pydantic) and tenacity load once a catalog was read
    from jobs.core.catalog import Catalog, SecretEntry
    from jobs.core.retry import Deadline, RetryPolicy

log = logging.getLogger(__name__)


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

    def stop_reason(self) -> StopReason | None:
        """Why no new entry may start now (SIGTERM first), or None."""
        if self.interrupt.is_set():
            return StopReason.SIGTERM
        if self.deadline.expired():
            return StopReason.DEADLINE
        return None

    def report(
        self,
        results: Iterable[EntryResult],
        stopped_by: StopReason | None = None,
        warnings: Iterable[str] = (),
    ) -> RunReport:
        stopped = stopped_by or (StopReason.SIGTERM if self.interrupt.is_set() else None)
        return RunReport(
            job=self.job,
            results=tuple(results),
            interrupted=stopped is not None,
            dry_run=self.dry_run,
            warnings=tuple(warnings),
            stopped_by=stopped,
        )


def process_entries(
    ctx: RunContext[Any],
    entries: Sequence[SecretEntry],
    handle: Callable[[SecretEntry], EntryResult],
    warnings: Iterable[str] = (),
    *,
    concurrency: int = 1,
) -> RunReport:
    """Run `handle` per entry, on at most `concurrency` threads; results keep the entries' order.
    One bad entry yields `failed` and the loop goes on; SIGTERM or the deadline stop new entries from
    starting (in-flight ones finish; the rest are reported as skipped, and the run exits 1)."""
    progress = Progress(ctx.job, len(entries))
    sealed = threading.Event()

    def one(entry: SecretEntry) -> tuple[EntryResult, StopReason | None]:
        stop = StopReason.SEALED if sealed.is_set() else ctx.stop_reason()
        if stop is not None:
            return EntryResult(entry.name, Action.SKIPPED, NOT_STARTED[stop]), stop
        try:
            result = handle(entry)
        except Exception as exc:  # noqa: BLE001 - the entry boundary: record, go on
            reason = failure_reason(exc)
            if not isinstance(exc, Unavailable):  # the breaker logged that reason once, when it opened
                log.error("entry failed", extra={"entry": entry.name, "error": reason})  # noqa: TRY400
            result = EntryResult(entry.name, Action.FAILED, reason)
            if isinstance(exc, Sealed):  # it will not unseal itself: one message, no more attempts
                sealed.set()
        progress.tick(result.failed)
        return result, None

    done = map_bounded(entries, one, concurrency)
    stops = [stop for _, stop in done if stop is not None]
    return ctx.report([r for r, _ in done], stopped_by=stops[0] if stops else None, warnings=warnings)


def fail_all(
    ctx: RunContext[Any], entries: Sequence[SecretEntry], exc: BaseException, warnings: Iterable[str] = ()
) -> RunReport:
    """A run-level failure (e.g. Vault login refused): every entry fails with the same reason. A
    sealed Vault also stops the run (`stopped_by: sealed`), as it does when an entry meets it."""
    reason = failure_reason(exc)
    log.error("run failed before processing entries", extra={"error": reason})
    results = (EntryResult(e.name, Action.FAILED, reason) for e in entries)
    stopped_by = StopReason.SEALED if isinstance(exc, Sealed) else None
    return ctx.report(results, stopped_by=stopped_by, warnings=warnings)


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


def _load(job: str, args: argparse.Namespace, log_format: str) -> Catalog | int:
    """The catalog, or the exit code after saying why (exit 2 before any server is contacted)."""
    if args.catalog is None:
        return bad_invocation(job, log_format, f"{job}: error: --catalog or ${CATALOG_ENV} is required")
    try:
        return load_catalog(args.catalog, getattr(args, "catalog_key", None))
    except CatalogError as exc:
        problems = [redact(p.render(exc.path)) for p in exc.problems[:MAX_PRINTED_PROBLEMS]]
        return bad_invocation(job, log_format, redact(str(exc)), problems)


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
    catalog = _load(parser.prog, args, log_format)
    if isinstance(catalog, int):
        return catalog
    from jobs.core.retry import Deadline, RetryPolicy

    interrupt = signals.install()
    deadline = Deadline(args.deadline)
    started = time.monotonic()
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
        return bad_invocation(parser.prog, log_format, f"{parser.prog}: error: {redact(str(exc))}")
    except Exception as exc:  # noqa: BLE001 - a crash outside the entry loop: no raw traceback
        message = f"{parser.prog}: error: {failure_reason(exc)}"
        crashed = CommandOutput("", ExitCode.ENTRY_FAILED)
        export_metrics(job, args, catalog, crashed, started)
        return bad_invocation(parser.prog, log_format, message, exit_code=ExitCode.ENTRY_FAILED)
    outcome = export_metrics(job, args, catalog, outcome, started)
    print(redact(outcome.render(log_format, SummaryMode(args.summary))), flush=True)
    return outcome.exit_code


def export_metrics(
    job: str, args: argparse.Namespace, catalog: Catalog, outcome: Outcome, started: float
) -> Outcome:
    """Push and/or write the run's metrics when asked (docs/design.md#metrics-and-events). A failure
    never changes the exit code: it is logged, and a run report carries it as a warning."""
    push_url, path = getattr(args, "metrics_push", None), getattr(args, "metrics_file", None)
    if not push_url and path is None:
        return outcome
    from jobs.core.clients.metrics import RunFacts, export

    facts = RunFacts(
        job=getattr(outcome, "job", job),
        environment=catalog.environment,
        exit_code=int(outcome.exit_code),
        duration=time.monotonic() - started,
        finished=time.time(),
        dry_run=bool(args.dry_run),
        counts=getattr(outcome, "counts", {}),
        requests=traffic.snapshot(),
        secret_expiry=getattr(outcome, "secret_expiry", {}),
    )
    warnings = export(facts, push_url, path)
    for warning in warnings:
        log.warning("metrics not exported", extra={"warning": warning})
    if warnings and isinstance(outcome, RunReport):
        return replace(outcome, warnings=(*outcome.warnings, *warnings))
    return outcome
