"""secret-origin smoke, audit and policy against a real OpenBao populated by the real jobs
(vault-bootstrap from the Key Vault emulator, client-patcher from the Keycloak emulator) and, for
`smoke --consumers`, the Kubernetes API emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import hvac
import pytest
import yaml

from emulators.kube import KubeEmulator
from jobs.core import metadata as md
from jobs.core.apply import KvTarget, converge
from jobs.core.clients.vault import VaultClient
from jobs.core.plan import plan_sync
from jobs.core.settings import VaultSettings
from lab.client_patcher_stack import ClientPatcherStack, assert_no_secret_in
from lab.openbao import OpenBao
from lab.vault_bootstrap_stack import BootstrapStack
from tests.support.summary import read_summary

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SECRET_ORIGIN = str(BIN / "secret-origin")
SEED_CATALOG = ROOT / "examples" / "seed-462-catalog.yaml"
AKV = {
    "ghcr-pull-secret": "ghp_seedGhcrToken0001",
    "anthropic-api-key": "sk-ant-seed-0002",
    "openai-api-key": "sk-openai-seed-0003",
    "langsmith-api-key": "ls-seed-0004",
    "argocd-oidc-secret": "entra-argocd-seed-0005",
    # azure-dns-client-secret is not provisioned yet (not required): CONDITIONAL
}
KEYCLOAK = {
    "platform-app-client-secret": ("platform-app", "kc-platform-app-22chars"),
    "platform-app-master-client-secret": ("platform-app-master", "kc-platform-master-22ch"),
}
MIRROR = {"postgres-ameide-auth": "cnpg-generated-password-0006"}


def secret_origin(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SECRET_ORIGIN, *args], capture_output=True, text=True, env=dict(env), timeout=120, check=False
    )


def write_like_client_patcher(vault: VaultClient, mount: str, name: str, client_id: str, value: str) -> None:
    """What client-patcher records for a Keycloak client secret (docs/design.md#metadata-keys)."""
    ours = md.stamp(
        origin="service-generated",
        authority=md.AUTHORITY_KEYCLOAK,
        fixture="false",
        keycloak_realm="ameide",
        keycloak_client_id=client_id,
    )
    converge(
        vault.read(mount, name),
        lambda _: vault.read(mount, name),
        lambda kv: plan_sync(kv, "value", value, ours, "keycloak"),
        KvTarget(vault, mount, dry_run=False),
    )


def write_like_pushsecret(client: hvac.Client, mount: str, name: str, value: str) -> None:
    """What ESO's Vault provider writes for a PushSecret (docs/design.md#external-secrets-operator)."""
    client.secrets.kv.v2.create_or_update_secret(name, {"value": value}, mount_point=mount)
    client.secrets.kv.v2.update_metadata(
        name, mount_point=mount, custom_metadata={"managed-by": "external-secrets"}
    )


@pytest.fixture(scope="module")
def seed_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BootstrapStack]:
    """OpenBao mirroring the seed's Compliance Audit: the real vault-bootstrap copies AKV and seeds the
    dev fixtures, client-patcher's writes for the two compliant Keycloak clients, a PushSecret mirror."""
    workdir = tmp_path_factory.mktemp("seed-462")
    with BootstrapStack.start(workdir) as stack:
        document = yaml.safe_load(SEED_CATALOG.read_text())
        document["vault"]["kvMount"] = stack.mount
        document["azureKeyVault"]["url"] = stack.emulator.vault_url + "/"
        stack.catalog_path.write_text(yaml.safe_dump(document, sort_keys=False))
        stack.seed_akv(AKV)
        stack.settle()
        done = stack.run("--log-format", "json", "--summary", "full")
        assert done.returncode == 0, done.stdout + done.stderr
        vault = VaultClient(
            VaultSettings.model_validate(
                {"VAULT_ADDR": stack.openbao.addr, "VAULT_TOKEN": stack.openbao.root_token}
            )
        )
        for name, (client_id, value) in KEYCLOAK.items():
            write_like_client_patcher(vault, stack.mount, name, client_id, value)
        for name, value in MIRROR.items():
            write_like_pushsecret(stack.vault(), stack.mount, name, value)
        yield stack


def all_values() -> list[str]:
    fixtures = [e["fixture"] for e in yaml.safe_load(SEED_CATALOG.read_text())["secrets"] if "fixture" in e]
    return [*AKV.values(), *(v for _, v in KEYCLOAK.values()), *MIRROR.values(), *fixtures]


def test_vault_bootstrap_populated_the_seed_world(seed_world: BootstrapStack) -> None:
    assert seed_world.vault_value("ghcr-token") == AKV["ghcr-pull-secret"]
    assert md.is_fixture_marked(seed_world.vault_custom_metadata("argocd-dex-client-secret"))
    assert seed_world.vault_custom_metadata("platform-app-master-client-secret")["authority"] == "keycloak"
    assert seed_world.vault_read("keycloak-db-credentials") is None


def test_audit_of_the_seed_catalog_matches_the_seed_matrix(seed_world: BootstrapStack) -> None:
    done = secret_origin(
        "audit", "--catalog", str(seed_world.catalog_path), "--format", "json", env=seed_world.env()
    )
    assert done.returncode == 1, done.stderr  # the OIDC client secrets are still fixtures
    report = json.loads(done.stdout)
    status = {row["secret"]: (row["status"], row["severity"]) for row in report["rows"]}
    assert status["platform-app-client-secret"] == ("COMPLIANT", "-")
    assert status["platform-app-master-client-secret"] == ("COMPLIANT", "-")
    for oidc in (
        "argocd-dex-client-secret",
        "k8s-dashboard-oidc-client-secret",
        "pgadmin-oidc-client-secret",
    ):
        assert status[oidc] == ("NON-COMPLIANT", "MEDIUM")
    assert status["keycloak-admin-password"][0] == "CONDITIONAL"
    assert status["grafana-admin-password"][0] == "CONDITIONAL"
    assert status["ghcr-token"] == ("COMPLIANT", "-")
    assert status["azure-dns-client-secret"] == ("CONDITIONAL", "LOW")
    assert status["postgres-ameide-auth"] == ("COMPLIANT", "-")
    assert status["keycloak-db-credentials"] == ("COMPLIANT", "-")
    rows = {row["secret"]: row for row in report["rows"]}
    assert rows["argocd-dex-client-secret"]["current"] == "Vault fixture (vault-bootstrap)"
    assert rows["postgres-ameide-auth"]["current"] == "K8s Secret (PushSecret mirror)"
    summary = {s["category"]: s for s in report["summary"]}
    service = summary["Service-generated (Keycloak client secrets)"]
    assert (service["compliant"], service["non_compliant"], service["total"]) == (2, 7, 9)
    assert_no_secret_in(done.stdout + done.stderr, all_values())

    markdown = secret_origin("audit", "--catalog", str(seed_world.catalog_path), env=seed_world.env())
    assert markdown.returncode == 1
    assert "| Category | Compliant | Non-Compliant | Conditional | Notes |" in markdown.stdout
    assert (
        "| `argocd-dex-client-secret` |" in markdown.stdout and "❌ NON-COMPLIANT | MEDIUM" in markdown.stdout
    )
    assert_no_secret_in(markdown.stdout + markdown.stderr, all_values())


def test_smoke_lists_cluster_managed_fixtures_and_passes_real_values(seed_world: BootstrapStack) -> None:
    done = secret_origin(
        "smoke",
        "--catalog",
        str(seed_world.catalog_path),
        "--log-format",
        "json",
        "--summary",
        "full",
        env=seed_world.env(),
    )
    assert done.returncode == 1
    entries = {e["entry"]: e for e in read_summary(done.stdout)["entries"]}
    assert entries["platform-app-master-client-secret"]["status"] == "ok"
    assert entries["platform-app-master-client-secret"]["reason"].startswith(
        "ok: v2, written by secret-origin"
    )
    assert entries["argocd-dex-client-secret"]["status"] == "fail"
    assert "placeholder" in entries["argocd-dex-client-secret"]["reason"]
    assert entries["grafana-admin-password"]["status"] == "fail"
    # an unmirrored cluster-managed key: the Kubernetes Secret is the authority, audit says COMPLIANT
    assert entries["keycloak-db-credentials"]["status"] == "skip"
    assert entries["keycloak-db-credentials"]["reason"].startswith("skip: not mirrored")
    assert entries["ghcr-token"]["status"] == "skip"
    assert set(read_summary(done.stdout)["counts"]) == {"ok", "fail", "skip"}
    audit = secret_origin(
        "audit", "--catalog", str(seed_world.catalog_path), "--format", "json", env=seed_world.env()
    )
    rows = {r["secret"]: r for r in json.loads(audit.stdout)["rows"]}
    assert rows["keycloak-db-credentials"]["status"] == "COMPLIANT"
    assert_no_secret_in(done.stdout + done.stderr, all_values())


def test_smoke_and_audit_run_under_their_generated_read_only_policies(seed_world: BootstrapStack) -> None:
    bao = seed_world.openbao
    for job in ("smoke", "audit"):
        hcl = secret_origin(
            "policy", "--for", job, "--catalog", str(seed_world.catalog_path), env=seed_world.env()
        )
        assert hcl.returncode == 0, hcl.stderr
        assert '"create"' not in hcl.stdout and '"update"' not in hcl.stdout
        bao.write_policy(f"{job}-{seed_world.mount}", hcl.stdout)
        token = bao.token_with_policies(f"{job}-{seed_world.mount}")
        done = secret_origin(
            job, "--catalog", str(seed_world.catalog_path), env=seed_world.env() | {"VAULT_TOKEN": token}
        )
        assert done.returncode == 1, done.stdout + done.stderr  # the same verdicts as with the root token
        assert "permission denied" not in done.stdout + done.stderr
        with pytest.raises(hvac.exceptions.Forbidden):
            bao.client(token).secrets.kv.v2.create_or_update_secret(
                "grafana-admin-password", {"value": "nope-overwrite"}, mount_point=seed_world.mount
            )


def test_unknown_writer_is_reported_as_such(openbao: OpenBao, kv_mount: str, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        f"environment: production\nvault: {{kvMount: {kv_mount}}}\nkeycloak: {{url: 'http://kc:8080'}}\n"
        "secrets:\n"
        "  - {name: temporal-db-env, origin: operator-reconciled}\n"
        "  - {name: www-client, origin: service-generated, keycloak: {realm: a, clientId: www}}\n"
    )
    root = openbao.client()
    for name in ("temporal-db-env", "www-client"):
        root.secrets.kv.v2.create_or_update_secret(name, {"value": "hand-written-7781"}, mount_point=kv_mount)
    done = secret_origin("audit", "--catalog", str(catalog), "--format", "json", env=openbao.env())
    rows = {r["secret"]: r for r in json.loads(done.stdout)["rows"]}
    assert rows["temporal-db-env"]["current"] == "unknown writer"
    assert rows["temporal-db-env"]["status"] == "CONDITIONAL"
    assert rows["www-client"]["status"] == "NON-COMPLIANT" and rows["www-client"]["severity"] == "HIGH"
    assert done.returncode == 1
    assert "hand-written-7781" not in done.stdout + done.stderr


def test_audit_reports_unobservable_vault_as_unknown_and_fails(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("environment: dev\nsecrets:\n  - {name: grafana, origin: helm-generated}\n")
    env = {"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "unused-token", "PATH": "/usr/bin:/bin"}
    done = secret_origin("audit", "--catalog", str(catalog), "--format", "json", "--deadline", "3", env=env)
    assert done.returncode == 1
    row = json.loads(done.stdout)["rows"][0]
    assert row["status"] == "UNKNOWN" and row["current"].startswith("unobservable:")


# -- policy: the job runs under it, a write outside it is denied ---------------------------------------
def assert_metadata_limited_to_custom_metadata(bao: OpenBao, token: str, mount: str, name: str) -> None:
    """Under a generated policy the job token may stamp custom_metadata, and nothing else of the key's
    metadata: the settings that would outlive the token are refused, and stay as they were."""
    client = bao.client(token)
    before = bao.client().secrets.kv.v2.read_secret_metadata(name, mount_point=mount)["data"]
    for sabotage in ({"max_versions": 1}, {"delete_version_after": "1s"}, {"cas_required": True}):
        with pytest.raises(hvac.exceptions.Forbidden):
            client.adapter.post(f"/v1/{mount}/metadata/{name}", json=sabotage)
        with pytest.raises(hvac.exceptions.Forbidden):  # not even alongside an allowed parameter
            client.adapter.post(
                f"/v1/{mount}/metadata/{name}",
                json={"custom_metadata": before["custom_metadata"], **sabotage},
            )
    after = bao.client().secrets.kv.v2.read_secret_metadata(name, mount_point=mount)["data"]
    for setting in ("max_versions", "delete_version_after", "cas_required", "custom_metadata"):
        assert after[setting] == before[setting], setting


def test_client_patcher_runs_under_its_generated_policy(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path) as stack:
        hcl = secret_origin(
            "policy", "--for", "client-patcher", "--catalog", str(stack.catalog_path), env=stack.env()
        )
        assert hcl.returncode == 0, hcl.stderr
        assert f'path "{kv_mount}/data/platform-app-master-client-secret" {{' in hcl.stdout
        assert "*" not in hcl.stdout.replace("# ", "")
        openbao.write_policy(f"generated-cp-{kv_mount}", hcl.stdout)
        token = openbao.token_with_policies(f"generated-cp-{kv_mount}")
        done = stack.run("--summary", "full", env=stack.env(VAULT_TOKEN=token))
        assert done.returncode == 0, done.stdout + done.stderr
        assert read_summary(done.stdout)["counts"]["written"] == len(stack.clients)
        client = openbao.client(token)
        with pytest.raises(hvac.exceptions.Forbidden):
            client.secrets.kv.v2.create_or_update_secret(
                "not-in-catalog", {"value": "x-denied"}, mount_point=kv_mount
            )
        with pytest.raises(hvac.exceptions.Forbidden):
            client.secrets.kv.v2.delete_metadata_and_all_versions("www-client-secret", mount_point=kv_mount)
        assert_metadata_limited_to_custom_metadata(openbao, token, kv_mount, "www-client-secret")


def test_vault_bootstrap_runs_under_its_generated_policy(openbao: OpenBao, tmp_path: Path) -> None:
    with BootstrapStack.start(tmp_path, openbao=openbao) as stack:
        stack.write_catalog(
            [
                {
                    "name": "ghcr-token",
                    "origin": "external",
                    "azureKeyVault": "ghcr-pull-secret",
                    "required": True,
                },
                {"name": "grafana-admin-password", "origin": "helm-generated", "fixture": "C1tr0n3lla!"},
                {"name": "postgres-ameide-auth", "origin": "operator-reconciled"},
            ]
        )
        stack.seed_akv({"ghcr-pull-secret": "ghp_policyTest0001"})
        stack.settle()
        hcl = secret_origin(
            "policy", "--for", "vault-bootstrap", "--catalog", str(stack.catalog_path), env=stack.env()
        )
        assert hcl.returncode == 0, hcl.stderr
        assert "postgres-ameide-auth" not in hcl.stdout  # never touched by vault-bootstrap
        assert (
            f'path "{stack.mount}/data/grafana-admin-password" {{\n  capabilities = ["create", "read"]'
            in hcl.stdout
        )
        openbao.write_policy(f"generated-vb-{stack.mount}", hcl.stdout)
        token = openbao.token_with_policies(f"generated-vb-{stack.mount}")
        done = stack.run("--log-format", "json", "--summary", "full", env=stack.env(VAULT_TOKEN=token))
        assert done.returncode == 0, done.stdout + done.stderr
        counts = read_summary(done.stdout)["counts"]
        assert (counts["written"], counts["seeded_fixture"]) == (1, 1)
        client = openbao.client(token)
        with pytest.raises(hvac.exceptions.Forbidden):  # a cluster-managed key it does not own
            client.secrets.kv.v2.create_or_update_secret(
                "postgres-ameide-auth", {"value": "x-denied"}, mount_point=stack.mount
            )
        with pytest.raises(hvac.exceptions.Forbidden):  # a fixture key may be created, never updated
            client.secrets.kv.v2.create_or_update_secret(
                "grafana-admin-password", {"value": "x-denied"}, mount_point=stack.mount
            )
        assert_metadata_limited_to_custom_metadata(openbao, token, stack.mount, "ghcr-token")


# -- smoke --consumers ----------------------------------------------------------------------------
@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    emulator = KubeEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


def test_smoke_consumers_tells_stale_from_placeholder(
    openbao: OpenBao, kv_mount: str, kube: KubeEmulator, tmp_path: Path
) -> None:
    real = "kc-real-secret-31337"
    catalog = tmp_path / "catalog.yaml"
    consumers = {
        "in-sync": real,
        "stale": "kc-old-secret-00042",
        "placeholder": "platform_client_secret",
        "unsynced": None,
    }
    entries: list[dict[str, Any]] = [
        {
            "name": "platform-app-master-client-secret",
            "origin": "service-generated",
            "keycloak": {"realm": "ameide", "clientId": "platform-app-master"},
            "fixture": "platform_client_secret",
            "consumers": [{"namespace": "ameide", "name": name} for name in consumers],
        }
    ]
    catalog.write_text(
        yaml.safe_dump(
            {
                "environment": "dev",
                "vault": {"kvMount": kv_mount},
                "keycloak": {"url": "http://kc:8080"},
                "secrets": entries,
            }
        )
    )
    vault = VaultClient(
        VaultSettings.model_validate({"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.root_token})
    )
    write_like_client_patcher(
        vault, kv_mount, "platform-app-master-client-secret", "platform-app-master", real
    )
    for name, value in consumers.items():
        kube.add_external_secret("ameide", name, remote_key=f"{kv_mount}/platform-app-master-client-secret")
        if value is not None:
            kube.add_secret("ameide", name, {"value": value})
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig", kube.admin_token)
    env = openbao.env() | {"KUBECONFIG": str(kubeconfig)}
    done = secret_origin(
        "smoke",
        "--catalog",
        str(catalog),
        "--consumers",
        "--log-format",
        "json",
        "--summary",
        "full",
        env=env,
    )
    assert done.returncode == 1, done.stderr
    reason = read_summary(done.stdout)["entries"][0]["reason"]
    assert "consumer ameide/in-sync" not in reason
    assert (
        "ESO has not refreshed: consumer ameide/stale's Secret stale key 'value' differs from Vault v1"
        in reason
    )
    assert (
        "placeholder: consumer ameide/placeholder's Secret placeholder key 'value' equals the fixture"
        in reason
    )
    assert "ESO has not refreshed: consumer ameide/unsynced's Secret unsynced does not exist yet" in reason
    assert_no_secret_in(
        done.stdout + done.stderr, [real, "kc-old-secret-00042", "platform_client_secret", kube.admin_token]
    )

    kube.add_secret("ameide", "stale", {"value": real})
    kube.add_secret("ameide", "placeholder", {"value": real})
    kube.add_secret("ameide", "unsynced", {"value": real})
    done = secret_origin(
        "smoke",
        "--catalog",
        str(catalog),
        "--consumers",
        "--log-format",
        "json",
        "--summary",
        "full",
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 consumer(s) in sync" in read_summary(done.stdout)["entries"][0]["reason"]
