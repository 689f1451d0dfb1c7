"""The Vault layer against a real OpenBao dev server (no mocks)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.kube import KubeEmulator
from jobs.core.clients.vault import VaultClient
from jobs.core.errors import Conflict, Permanent, PermissionDenied, Sealed, Unauthorized, Unreachable
from jobs.core.observed import VaultMount
from jobs.core.retry import Deadline, RetryPolicy
from jobs.core.settings import VaultSettings
from lab.kube_auth import KubeAuth, configure_kubernetes_auth
from lab.openbao import OpenBao, free_port


def vault(addr: str, token: str, **retry: float) -> VaultClient:
    settings = VaultSettings.model_validate({"VAULT_ADDR": addr, "VAULT_TOKEN": token})
    return VaultClient(settings, retry=RetryPolicy(initial_wait=0.05, **retry), timeout=5)  # type: ignore[arg-type]


@pytest.fixture
def client(openbao: OpenBao) -> VaultClient:
    return vault(openbao.addr, openbao.root_token)


def test_absent_key_is_a_normal_result(client: VaultClient, kv_mount: str) -> None:
    read = client.read(kv_mount, "never-written")
    assert not read.exists
    assert read.version == 0
    assert read.value("value") is None


def test_create_only_write_then_read_back(client: VaultClient, kv_mount: str) -> None:
    assert client.write(kv_mount, "a", {"value": "first-value"}, cas=0) == 1
    read = client.read(kv_mount, "a")
    assert (read.exists, read.version, read.value("value")) == (True, 1, "first-value")
    with pytest.raises(Conflict, match="check-and-set"):
        client.write(kv_mount, "a", {"value": "second-value"}, cas=0)
    assert client.read(kv_mount, "a").value("value") == "first-value"


def race_create_only(openbao: OpenBao, mount: str, key: str, writers: int) -> list[str]:
    barrier = threading.Barrier(writers)
    outcomes: list[str] = []

    def writer(n: int) -> None:
        client = vault(openbao.addr, openbao.root_token)
        barrier.wait()
        try:
            client.write(mount, key, {"value": f"writer-{n}-value"}, cas=0)
            outcomes.append("won")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(outcomes)


def test_create_only_race_has_exactly_one_winner(openbao: OpenBao, kv_mount: str) -> None:
    for round_no in range(5):
        key = f"race-{round_no}"
        assert race_create_only(openbao, kv_mount, key, 4) == ["conflict", "conflict", "conflict", "won"]
        metadata = openbao.client().secrets.kv.v2.read_secret_metadata(key, mount_point=kv_mount)
        assert metadata["data"]["current_version"] == 1


def test_update_with_a_stale_version_is_refused(client: VaultClient, kv_mount: str) -> None:
    client.write(kv_mount, "b", {"value": "v1-value"}, cas=0)
    assert client.write(kv_mount, "b", {"value": "v2-value"}, cas=1) == 2
    with pytest.raises(Conflict):
        client.write(kv_mount, "b", {"value": "stale-value"}, cas=1)
    read = client.read(kv_mount, "b")
    assert (read.version, read.value("value")) == (2, "v2-value")


def test_custom_metadata_round_trip_keeps_other_settings(
    client: VaultClient, openbao: OpenBao, kv_mount: str
) -> None:
    client.write(kv_mount, "c", {"value": "meta-value"}, cas=0)
    openbao.cli(
        "kv", "metadata", "put", f"-mount={kv_mount}", "-delete-version-after=720h", "-max-versions=7", "c"
    )
    client.write_metadata(kv_mount, "c", {"managed-by": "secret-origin", "origin": "external"})
    read = client.read(kv_mount, "c")
    assert read.custom_metadata == {"managed-by": "secret-origin", "origin": "external"}
    meta = openbao.client().secrets.kv.v2.read_secret_metadata("c", mount_point=kv_mount)["data"]
    assert meta["delete_version_after"] == "720h0m0s"
    assert meta["max_versions"] == 7
    assert meta["current_version"] == 1  # metadata writes create no version


def test_soft_deleted_key_still_exists_and_blocks_create_only(
    client: VaultClient, openbao: OpenBao, kv_mount: str
) -> None:
    client.write(kv_mount, "d", {"value": "deleted-value"}, cas=0)
    openbao.client().secrets.kv.v2.delete_latest_version_of_secret("d", mount_point=kv_mount)
    read = client.read(kv_mount, "d")
    assert (read.exists, read.deleted, read.version, read.value("value")) == (True, True, 1, None)
    with pytest.raises(Conflict):
        client.write(kv_mount, "d", {"value": "fixture-value"}, cas=0)
    assert client.write(kv_mount, "d", {"value": "new-value"}, cas=1) == 2


def test_policy_limited_token_gets_permission_denied_naming_the_path(openbao: OpenBao, kv_mount: str) -> None:
    openbao.write_policy(
        f"only-allowed-{kv_mount}",
        f'path "{kv_mount}/data/allowed" {{ capabilities = ["create", "read", "update"] }}\n',
    )
    token = openbao.token_with_policies(f"only-allowed-{kv_mount}")
    limited = vault(openbao.addr, token)
    assert limited.write(kv_mount, "allowed", {"value": "ok-value"}, cas=0) == 1
    with pytest.raises(PermissionDenied) as caught:
        limited.read(kv_mount, "other")
    assert f"{kv_mount}/data/other" in str(caught.value)
    with pytest.raises(PermissionDenied, match=f"write {kv_mount}/data/other"):
        limited.write(kv_mount, "other", {"value": "x-value"}, cas=0)


def test_revoked_token_is_unauthorized(openbao: OpenBao, kv_mount: str) -> None:
    token = openbao.token_with_policies("default")
    openbao.client().auth.token.revoke(token)
    with pytest.raises(Unauthorized):
        vault(openbao.addr, token).read(kv_mount, "x")


def test_sealed_vault_gives_a_clear_sealed_result(private_openbao: OpenBao) -> None:
    client = vault(private_openbao.addr, private_openbao.root_token)
    assert client.read("secret", "x").exists is False
    private_openbao.cli("operator", "seal")
    with pytest.raises(Sealed, match="sealed"):
        client.read("secret", "x")


def test_unreachable_vault_is_retried_within_the_deadline() -> None:
    addr = f"http://127.0.0.1:{free_port()}"
    settings = VaultSettings.model_validate({"VAULT_ADDR": addr, "VAULT_TOKEN": "t-unused"})
    client = VaultClient(settings, retry=RetryPolicy(deadline=Deadline(1.5), initial_wait=0.1), timeout=1)
    with pytest.raises(Unreachable, match=rf"Vault at {re.escape(addr)} un.*: connection refused"):
        client.read("secret", "x")


# -- Kubernetes auth against OpenBao + the Kubernetes API emulator's TokenReview ----------------------------
@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator(tls=True) as emulator:
        assert isinstance(emulator, KubeEmulator)
        yield emulator


def k8s_vault(openbao: OpenBao, auth: KubeAuth) -> VaultClient:
    settings = VaultSettings.model_validate({"VAULT_ADDR": openbao.addr, **auth.env()})
    return VaultClient(settings, retry=RetryPolicy(initial_wait=0.05), timeout=5)


def test_kubernetes_auth_login_reads_and_writes_within_its_policy(
    openbao: OpenBao, kube: KubeEmulator, kv_mount: str, tmp_path: Path
) -> None:
    auth = configure_kubernetes_auth(
        openbao,
        kube,
        namespace="secret-origin",
        service_account="vault-bootstrap",
        policy_hcl=f'path "{kv_mount}/data/allowed" {{ capabilities = ["create", "read", "update"] }}',
        token_dir=tmp_path,
    )
    client = k8s_vault(openbao, auth)
    assert client.write(kv_mount, "allowed", {"value": "k8s-written"}, cas=0) == 1
    assert client.read(kv_mount, "allowed").value("value") == "k8s-written"
    with pytest.raises(PermissionDenied, match=f"{kv_mount}/data/elsewhere"):
        client.read(kv_mount, "elsewhere")


def test_kubernetes_auth_logs_in_again_when_the_token_expires_mid_run(
    openbao: OpenBao, kube: KubeEmulator, kv_mount: str, tmp_path: Path
) -> None:
    auth = configure_kubernetes_auth(
        openbao,
        kube,
        namespace="secret-origin",
        service_account="client-patcher",
        policy_hcl=f'path "{kv_mount}/data/*" {{ capabilities = ["create", "read", "update"] }}',
        token_dir=tmp_path,
        ttl="2s",
    )
    client = k8s_vault(openbao, auth)
    client.write(kv_mount, "a", {"value": "before-expiry"}, cas=0)
    logins_before = kube.count(lambda m, p: m == "POST" and p.endswith("/tokenreviews"))
    time.sleep(2.5)  # the Vault token is now dead
    assert client.read(kv_mount, "a").value("value") == "before-expiry"
    assert kube.count(lambda m, p: m == "POST" and p.endswith("/tokenreviews")) == logins_before + 1


def test_kubernetes_auth_recovers_from_a_revoked_token(
    openbao: OpenBao, kube: KubeEmulator, kv_mount: str, tmp_path: Path
) -> None:
    auth = configure_kubernetes_auth(
        openbao,
        kube,
        namespace="secret-origin",
        service_account="client-patcher",
        policy_hcl=f'path "{kv_mount}/data/*" {{ capabilities = ["create", "read", "update"] }}\n'
        'path "auth/token/lookup-self" { capabilities = ["read"] }',
        token_dir=tmp_path,
    )
    client = k8s_vault(openbao, auth)
    client.write(kv_mount, "b", {"value": "b-value"}, cas=0)
    openbao.client().auth.token.revoke(client._client.token)  # what an operator's revoke looks like
    assert client.read(kv_mount, "b").value("value") == "b-value"


def test_kubernetes_auth_refused_login_is_unauthorized_and_names_the_role(
    openbao: OpenBao, kube: KubeEmulator, kv_mount: str, tmp_path: Path
) -> None:
    auth = configure_kubernetes_auth(
        openbao,
        kube,
        namespace="secret-origin",
        service_account="client-patcher",
        policy_hcl=f'path "{kv_mount}/data/*" {{ capabilities = ["read"] }}',
        token_dir=tmp_path,
    )
    kube.add_service_account("secret-origin", "intruder")
    auth.token_path.write_text(kube.issue_token("secret-origin", "intruder"))
    with pytest.raises(Unauthorized, match=f"role '{auth.role}' refused"):
        k8s_vault(openbao, auth).read(kv_mount, "x")
    unknown = KubeAuth(mount=auth.mount, role="no-such-role", token_path=auth.token_path)
    with pytest.raises(Permanent, match="no-such-role"):
        k8s_vault(openbao, unknown).read(kv_mount, "x")
    missing = KubeAuth(mount=auth.mount, role=auth.role, token_path=tmp_path / "absent")
    with pytest.raises(Permanent, match="cannot read the service-account token"):
        k8s_vault(openbao, missing).read(kv_mount, "x")


def test_create_only_policy_meeting_a_key_created_meanwhile_is_a_conflict(
    openbao: OpenBao, client: VaultClient, kv_mount: str
) -> None:
    openbao.write_policy(
        f"create-only-{kv_mount}",
        f'path "{kv_mount}/data/seed" {{ capabilities = ["create", "read"] }}\n',
    )
    seeder = vault(openbao.addr, openbao.token_with_policies(f"create-only-{kv_mount}"))
    client.write(kv_mount, "seed", {"value": "seed-real-9c1"}, cas=0)  # the other writer wins the race
    with pytest.raises(Conflict, match="created by another writer meanwhile"):
        seeder.write(kv_mount, "seed", {"value": "seed-placeholder-7f3"}, cas=0)
    assert client.read(kv_mount, "seed").value("value") == "seed-real-9c1"
    with pytest.raises(PermissionDenied):  # a denial on an absent key stays a denial
        seeder.write(kv_mount, "elsewhere", {"value": "seed-placeholder-7f3"}, cas=0)


# -- the pre-flight: what the mount is, and whether the token works -----------------------------------------
def test_the_mount_probe_tells_kv2_kv1_other_engines_and_missing_apart(
    openbao: OpenBao, kv_mount: str
) -> None:
    suffix = kv_mount.removeprefix("kv-")
    openbao.cli("secrets", "enable", f"-path=old-{suffix}", "-version=1", "kv")
    openbao.cli("secrets", "enable", f"-path=tr-{suffix}", "transit")
    openbao.write_policy(f"one-key-{suffix}", f'path "{kv_mount}/data/app" {{ capabilities = ["read"] }}')
    scoped = vault(openbao.addr, openbao.token_with_policies(f"one-key-{suffix}"))
    root = vault(openbao.addr, openbao.root_token)
    assert root.mount(kv_mount) == VaultMount(kv_mount, "kv", "2")
    assert scoped.mount(kv_mount) == VaultMount(kv_mount, "kv", "2")  # access to one path is enough
    assert root.mount(f"old-{suffix}") == VaultMount(f"old-{suffix}", "kv", "1")
    found = root.mount(f"tr-{suffix}")
    assert found is not None and found.type == "transit"
    assert root.mount(f"missing-{suffix}") is None
    assert scoped.mount(f"old-{suffix}") is None  # 403: no access, same as missing


def test_the_token_check_says_a_dead_token_is_dead(openbao: OpenBao) -> None:
    vault(openbao.addr, openbao.root_token).check_token()
    with pytest.raises(Unauthorized, match="invalid, revoked or expired"):
        vault(openbao.addr, "s.not-a-real-token").check_token()
