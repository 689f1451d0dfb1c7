"""A no-op is a no-op: a Key Vault version created in the very second vault-bootstrap lists and fetches it
is copied with its fingerprint held back, and the proof is recorded in that same run as soon as a Key
Vault response's `Date` allows it, so the next fault-free run writes nothing. The emulator's clock
starts exactly on a second boundary (and runs at half speed, so the run's first requests surely fall
in the second the version was created)."""

from __future__ import annotations

import email.utils
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

import emulators.azure.store
from jobs.bootstrap.decide import select
from jobs.bootstrap.run import Options, bootstrap
from jobs.core import metadata as md
from jobs.core.catalog import load_catalog
from jobs.core.clients.azure_kv import AzureKeyVaultClient
from jobs.core.clients.vault import VaultClient
from jobs.core.model import Action, RunReport
from jobs.core.retry import Deadline, RetryPolicy
from jobs.core.runner import RunContext
from jobs.core.settings import AzureSettings, VaultSettings
from lab.openbao import OpenBao
from lab.vault_bootstrap_stack import BootstrapStack

AKV_NAME = "ghcr-pull-secret"


@pytest.fixture
def stack(openbao: OpenBao, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BootstrapStack]:
    with BootstrapStack.start(tmp_path, openbao=openbao) as started:
        for key, value in started.env().items():
            monkeypatch.setenv(key, value)
        yield started


@pytest.fixture
def boundary_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator's clock (version `created` times and every response's `Date`): it starts on a whole
    second and runs at half speed."""
    start, origin = float(int(time.time())), time.monotonic()

    def now() -> float:
        return start + (time.monotonic() - origin) / 2

    monkeypatch.setattr(emulators.azure.store, "time", SimpleNamespace(time=now))
    monkeypatch.setattr(
        http.server.BaseHTTPRequestHandler,
        "date_time_string",
        lambda self, timestamp=None: email.utils.formatdate(
            now() if timestamp is None else timestamp, usegmt=True
        ),
    )


def run_once(stack: BootstrapStack) -> RunReport:
    catalog = load_catalog(stack.catalog_path)
    settings = VaultSettings.model_validate(
        {"VAULT_ADDR": stack.openbao.addr, "VAULT_TOKEN": stack.openbao.root_token}
    )
    akv = AzureKeyVaultClient(stack.emulator.vault_url, AzureSettings(), RetryPolicy(initial_wait=0.01))  # type: ignore[call-arg]
    ctx = RunContext(
        job="vault-bootstrap",
        options=Options(verify=False, concurrency=1),
        catalog=catalog,
        entries=select(catalog),
        log_format="json",
        dry_run=False,
        deadline=Deadline(None),
        interrupt=threading.Event(),
        retry=RetryPolicy(),
    )
    try:
        return bootstrap(ctx, VaultClient(settings, retry=RetryPolicy(initial_wait=0.01)), akv)
    finally:
        akv.close()


def metadata_updated_time(stack: BootstrapStack, name: str) -> str:
    meta = stack.vault().secrets.kv.v2.read_secret_metadata(path=name, mount_point=stack.mount)
    return str(meta["data"]["updated_time"])


@pytest.mark.usefixtures("boundary_clock")
def test_second_fault_free_run_after_a_same_second_version_writes_nothing(stack: BootstrapStack) -> None:
    stack.write_catalog([{"name": "ghcr-token", "origin": "external", "azureKeyVault": AKV_NAME}])
    stack.seed_akv({AKV_NAME: "ghp_sameSecondVersion0001"})

    first = run_once(stack)
    assert [(r.name, r.action) for r in first.results] == [("ghcr-token", Action.WRITTEN)]
    assert md.AKV_FINGERPRINT in stack.vault_custom_metadata("ghcr-token"), first.results[0].reason
    before = (stack.vault_versions(), metadata_updated_time(stack, "ghcr-token"))

    second = run_once(stack)
    (result,) = second.results
    assert result.action is Action.UNCHANGED
    assert "metadata updated" not in result.reason and "unchanged since the last sync" in result.reason
    assert (stack.vault_versions(), metadata_updated_time(stack, "ghcr-token")) == before
