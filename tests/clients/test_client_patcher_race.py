"""client-patcher losing a check-and-set race re-reads its authority (Keycloak) before re-planning,
so a value that a concurrent run's rotation killed is never written over the live one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jobs.core.apply import KvTarget
from jobs.core.catalog import load_catalog
from jobs.core.clients.keycloak import KeycloakClient
from jobs.core.clients.keycloak_index import BATCH_MIN, ClientLookup
from jobs.core.clients.vault import VaultClient
from jobs.core.model import Action
from jobs.core.retry import RetryPolicy
from jobs.core.settings import KeycloakSettings, VaultSettings
from jobs.patcher.entry import Patcher
from lab.client_patcher_stack import (
    KC_SA_CLIENT,
    KC_SA_SECRET,
    ClientPatcherStack,
    ClientSpec,
)
from lab.openbao import OpenBao

SPEC = ClientSpec("race-client-secret", "ameide", "race-app")


class RacedVault(VaultClient):
    """Before its first write, another run rotates the client in Keycloak and writes the new secret."""

    def __init__(self, stack: ClientPatcherStack, settings: VaultSettings) -> None:
        super().__init__(settings, retry=RetryPolicy(initial_wait=0.01))
        self.stack = stack
        self.raced = False

    def write(self, mount: str, name: str, data: Mapping[str, str], *, cas: int) -> int:
        if not self.raced:
            self.raced = True
            self.stack.keycloak.set_secret(SPEC.realm, SPEC.client_id, "rotated-by-the-other-run-0001")
            self.stack.vault().secrets.kv.v2.create_or_update_secret(
                name, {"value": "rotated-by-the-other-run-0001"}, cas=cas, mount_point=mount
            )
        return super().write(mount, name, data, cas=cas)


def test_losing_the_cas_race_rereads_keycloak_instead_of_writing_a_dead_secret(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path, clients=[SPEC]) as stack:
        catalog = load_catalog(stack.catalog_path)
        settings = KeycloakSettings.model_validate(
            {"KEYCLOAK_CLIENT_ID": KC_SA_CLIENT, "KEYCLOAK_CLIENT_SECRET": KC_SA_SECRET}
        )
        keycloak = KeycloakClient(stack.keycloak.url, "master", settings, RetryPolicy())
        vault = RacedVault(
            stack,
            VaultSettings.model_validate({"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.root_token}),
        )
        target = KvTarget(vault, catalog.vault.kv_mount, dry_run=False)
        keycloak.login()
        try:
            result = Patcher(keycloak, target, None, catalog.vault.field).sync(catalog.secrets[0])
        finally:
            keycloak.close()
        version, value, _ = stack.vault_state(SPEC.name)
        assert vault.raced
        assert value == stack.keycloak_secret(SPEC) == "rotated-by-the-other-run-0001"
        assert (result.action, version) == (Action.UNCHANGED, 1)


def test_a_listed_secret_older_than_vaults_is_read_again_before_it_is_written(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    """The run's realm listing is taken when the first entry starts; a concurrent run may rotate a
    client and write the new secret to Vault before this run reaches that entry. The listed secret
    differs from Vault, so it is read again: nothing dead is written over the live one."""
    specs = [ClientSpec(f"app-{n:02d}-client-secret", "ameide", f"app-{n:02d}") for n in range(BATCH_MIN)]
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path, clients=specs) as stack:
        catalog = load_catalog(stack.catalog_path)
        settings = KeycloakSettings.model_validate(
            {"KEYCLOAK_CLIENT_ID": KC_SA_CLIENT, "KEYCLOAK_CLIENT_SECRET": KC_SA_SECRET}
        )
        keycloak = KeycloakClient(stack.keycloak.url, "master", settings, RetryPolicy())
        vault = VaultClient(
            VaultSettings.model_validate({"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.root_token})
        )
        target = KvTarget(vault, catalog.vault.kv_mount, dry_run=False)
        keycloak.login()
        try:
            lookups = ClientLookup(keycloak, [(s.realm, s.client_id) for s in specs], concurrency=1)
            patcher = Patcher(keycloak, target, None, catalog.vault.field, lookups=lookups)
            first = patcher.sync(catalog.secrets[0])  # takes the listing
            other = specs[1]
            stack.keycloak.set_secret(other.realm, other.client_id, "rotated-by-the-other-run-0002")
            stack.vault().secrets.kv.v2.create_or_update_secret(
                other.name, {"value": "rotated-by-the-other-run-0002"}, mount_point=kv_mount
            )
            second = patcher.sync(catalog.secrets[1])
        finally:
            keycloak.close()
        assert first.action is Action.WRITTEN
        version, value, _ = stack.vault_state(other.name)
        assert value == stack.keycloak_secret(other) == "rotated-by-the-other-run-0002"
        assert (second.action, version) == (Action.UNCHANGED, 1)
