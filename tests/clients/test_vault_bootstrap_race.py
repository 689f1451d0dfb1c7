"""vault-bootstrap losing a check-and-set race re-reads its authority (Azure Key Vault) before re-planning,
so a concurrent run that copied a newer AKV version is never overwritten with the older value."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from jobs.bootstrap.decide import select
from jobs.bootstrap.run import Options, bootstrap
from jobs.core import metadata as md
from jobs.core.catalog import load_catalog
from jobs.core.clients.azure_kv import AzureKeyVaultClient
from jobs.core.clients.vault import VaultClient
from jobs.core.model import Action
from jobs.core.retry import Deadline, RetryPolicy
from jobs.core.runner import RunContext
from jobs.core.settings import AzureSettings, VaultSettings
from lab.openbao import OpenBao
from lab.vault_bootstrap_stack import BootstrapStack

AKV_NAME = "ghcr-pull-secret"
OLDER = "ghp_olderVersionOfTheToken0001"
NEWER = "ghp_newerVersionOfTheToken0002"


class RacedVault(VaultClient):
    """Before its first write, another run finds a newer AKV version and writes it to Vault first."""

    def __init__(self, stack: BootstrapStack, settings: VaultSettings) -> None:
        super().__init__(settings, retry=RetryPolicy(initial_wait=0.01))
        self.stack = stack
        self.raced = False

    def write(self, mount: str, name: str, data: Mapping[str, str], *, cas: int) -> int:
        if not self.raced:
            self.raced = True
            self.stack.seed_akv({AKV_NAME: NEWER})
            self.stack.vault().secrets.kv.v2.create_or_update_secret(
                name, {"value": NEWER}, cas=cas, mount_point=mount
            )
        return super().write(mount, name, data, cas=cas)


@pytest.fixture
def stack(openbao: OpenBao, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BootstrapStack]:
    with BootstrapStack.start(tmp_path, openbao=openbao) as started:
        for key, value in started.env().items():  # the pod's environment, for AzureSettings and the SDK
            monkeypatch.setenv(key, value)
        yield started


def test_losing_the_cas_race_rereads_akv_instead_of_writing_an_older_version(stack: BootstrapStack) -> None:
    stack.seed_akv({AKV_NAME: OLDER})
    stack.write_catalog([{"name": "ghcr-token", "origin": "external", "azureKeyVault": AKV_NAME}])
    catalog = load_catalog(stack.catalog_path)
    vault = RacedVault(
        stack,
        VaultSettings.model_validate(
            {"VAULT_ADDR": stack.openbao.addr, "VAULT_TOKEN": stack.openbao.root_token}
        ),
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
        report = bootstrap(ctx, vault, akv)
    finally:
        akv.close()

    assert vault.raced
    assert stack.vault_value("ghcr-token") == stack.emulator.get_value(AKV_NAME) == NEWER
    assert stack.vault_versions() == {"ghcr-token": 1}  # the winner's write stands; ours was never made
    latest = stack.emulator.versions(AKV_NAME)[-1]
    assert stack.vault_custom_metadata("ghcr-token")[md.AKV_VERSION] == latest
    assert [(r.name, r.action) for r in report.results] == [("ghcr-token", Action.UNCHANGED)]
