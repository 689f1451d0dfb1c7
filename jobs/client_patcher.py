"""client-patcher: Keycloak-generated client secrets -> Vault KV v2 -> ESO force-sync (SPEC §4)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jobs.core.catalog import Catalog, Origin, SecretEntry
from jobs.core.errors import ConfigError
from jobs.core.model import RunReport
from jobs.core.runner import RunContext, add_common_arguments, run_main

JOB = "client-patcher"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=JOB, description=__doc__)
    add_common_arguments(parser)
    return parser


def select(catalog: Catalog) -> tuple[SecretEntry, ...]:
    return tuple(e for e in catalog.secrets if e.origin is Origin.SERVICE_GENERATED)


def execute(ctx: RunContext) -> RunReport:
    raise ConfigError("not implemented yet: the catalog is valid, but this job has no body")


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(JOB, build_parser(), argv, execute, select)


if __name__ == "__main__":
    sys.exit(main())
