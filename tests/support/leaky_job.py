"""A job built on the shared run machinery that reads a real secret from Vault and then hits a
library error embedding it — used to prove the value never reaches stdout or stderr."""

from __future__ import annotations

import argparse
import logging
import sys

import yaml

from jobs.core.catalog import SecretEntry
from jobs.core.clients.vault import VaultClient
from jobs.core.flags import add_common_arguments
from jobs.core.model import EntryResult, RunReport
from jobs.core.runner import RunContext, process_entries, run_main
from jobs.core.settings import VaultSettings, load_settings


def execute(ctx: RunContext) -> RunReport:
    vault = VaultClient(load_settings(VaultSettings), retry=ctx.retry)

    def handle(entry: SecretEntry) -> EntryResult:
        value = vault.read(ctx.catalog.vault.kv_mount, entry.name).value(ctx.catalog.vault.field)
        logging.getLogger("leaky").info("read %s", value)
        yaml.safe_load(f"key: [{value}")  # a library error whose text embeds the value
        raise AssertionError("unreachable")

    return process_entries(ctx, ctx.entries, handle)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="leaky-job")
    add_common_arguments(parser)
    sys.exit(run_main("leaky-job", parser, sys.argv[1:], execute))
