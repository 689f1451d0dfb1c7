"""client-patcher: Keycloak-generated client secrets -> Vault KV v2 -> ESO force-sync
(docs/design.md#client-patcher)."""

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
    positive_number,
)

if TYPE_CHECKING:
    from jobs.core.catalog import Catalog, SecretEntry
    from jobs.core.model import RunReport
    from jobs.core.runner import RunContext
    from jobs.patcher.run import Options

JOB: Final = "client-patcher"


def build_parser() -> argparse.ArgumentParser:
    parser = JobParser(prog=JOB, description=__doc__)
    add_common_arguments(parser)
    parser.add_argument(
        "--rotate",
        action="append",
        default=[],
        metavar="NAME",
        help="regenerate this entry's client secret in Keycloak now (repeatable); "
        "the catalog's keycloak.rotate.runId rotates once per new runId without this flag",
    )
    parser.add_argument(
        "--no-verify-login",
        dest="verify_login",
        action="store_false",
        help="after writing a secret, do not log in once to its realm's token endpoint to prove "
        "Keycloak accepts it (on by default: one request per written entry, no admin rights)",
    )
    parser.add_argument(
        "--login-rate",
        type=positive_number("requests per second", 1000),
        default=5.0,
        metavar="PER_SECOND",
        help="--verify-login sends at most this many token-endpoint requests per second, so a large "
        "first sync does not flood Keycloak (default: 5)",
    )
    parser.add_argument(
        "--concurrency",
        type=concurrency_argument,
        default=DEFAULT_CONCURRENCY,
        metavar=f"1..{MAX_CONCURRENCY}",
        help="entries processed at once; entries that name the same Keycloak client still run one "
        f"after the other (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--no-verify-consumers",
        dest="verify_consumers",
        action="store_false",
        help="after annotating consumer ExternalSecrets, do not wait for ESO to refresh them and for "
        "their Secrets to hold the new value (on by default; needs get on the target Secrets; "
        "docs/design.md#client-patcher)",
    )
    parser.add_argument(
        "--consumer-timeout",
        type=positive_number("seconds", 3600),
        default=60.0,
        metavar="SECONDS",
        help="how long one entry waits for its patched consumers to converge, both waits together: "
        "half, then one re-annotation of the stale ones and the other half (default: 60; always "
        "within --deadline)",
    )
    parser.add_argument(
        "--no-events",
        dest="events",
        action="store_false",
        help="record no Kubernetes Events on the consumer ExternalSecrets (on by default: ForceSynced, "
        "ConsumerFailed, EntryFailed; docs/design.md#metrics-and-events)",
    )
    return parser


def parse_options(args: argparse.Namespace) -> Options:
    from jobs.patcher.run import Options

    return Options(
        rotate=tuple(args.rotate),
        verify_login=args.verify_login,
        login_rate=args.login_rate,
        verify_consumers=args.verify_consumers,
        consumer_timeout=args.consumer_timeout,
        events=args.events,
        concurrency=int(args.concurrency),
    )


def select(catalog: Catalog) -> tuple[SecretEntry, ...]:
    """The entries this job handles; the job's modules (and vendor SDKs) load once a catalog was read."""
    from jobs.patcher.decide import select as selected

    return selected(catalog)


def execute(ctx: RunContext[Options]) -> RunReport:
    from jobs.patcher.run import execute as run

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
