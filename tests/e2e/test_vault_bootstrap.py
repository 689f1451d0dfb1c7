"""The real `vault-bootstrap` console script against a real OpenBao and the Entra ID / Key Vault emulator."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.core import metadata as md
from jobs.core.apply import KvTarget, converge
from jobs.core.clients.vault import VaultClient
from jobs.core.plan import plan_sync
from jobs.core.settings import VaultSettings
from lab.openbao import OpenBao
from lab.vault_bootstrap_stack import BootstrapStack
from tests.support.summary import read_summary

KEYCLOAK = {"url": "http://keycloak.invalid:8080"}
FIXTURE = "dev-placeholder-fixture"


@pytest.fixture
def stack(openbao: OpenBao, tmp_path: Path) -> Iterator[BootstrapStack]:
    with BootstrapStack.start(tmp_path, openbao=openbao) as started:
        yield started


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return read_summary(done.stdout)


def actions(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {e["entry"]: e["action"] for e in summary(done)["entries"]}


def run(stack: BootstrapStack, *args: str, never: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run the job (JSON logs) and check no secret value reached any output."""
    done = stack.run("--log-format", "json", "--summary", "full", *args)
    output = done.stdout + done.stderr
    for value in [*stack.secret_values(), FIXTURE, *never]:
        assert value not in output, "a secret value was printed"
    return done


def external(count: int) -> list[dict[str, Any]]:
    return [{"name": f"app-{i:02d}", "origin": "external"} for i in range(count)]


def test_sixty_secrets_sync_then_resync_is_a_true_no_op(stack: BootstrapStack) -> None:
    values = {f"app-{i:02d}": f"akv-value-{i:02d}-Zq9" for i in range(60)}
    stack.seed_akv(values)
    stack.write_catalog(
        [
            *external(60),
            {"name": "optional-api-key", "origin": "external", "fixture": FIXTURE},
            {"name": "grafana-admin-password", "origin": "helm-generated", "fixture": FIXTURE + "-g"},
        ]
    )
    stack.settle()

    first = run(stack)

    assert first.returncode == 0, first.stdout + first.stderr
    assert summary(first)["counts"] == {
        "written": 60,
        "unchanged": 0,
        "seeded_fixture": 2,
        "skipped": 0,
        "failed": 0,
    }
    assert all(stack.vault_value(name) == value for name, value in values.items())
    assert stack.vault_value("optional-api-key") == FIXTURE
    assert [e.status for e in stack.emulator.exchanges if e.path == "/secrets"] == [401, 200, 200, 200]
    meta = stack.vault_custom_metadata("app-07")
    assert meta["origin"] == "external" and meta["authority"] == "azure-key-vault"
    assert meta["fixture"] == "false" and meta["managed-by"] == "secret-origin"
    assert meta["akv-version"] == stack.emulator.versions("app-07")[-1]
    assert stack.vault_custom_metadata("optional-api-key")["fixture"] == "true"

    versions = stack.vault_versions()
    stack.emulator.reset_requests()
    second = run(stack)

    assert second.returncode == 0
    assert summary(second)["counts"]["unchanged"] == 62
    assert stack.vault_versions() == versions
    assert stack.akv_value_gets() == 0  # proven unchanged from the listing: no value downloaded

    stack.emulator.reset_requests()
    verified = run(stack, "--verify")
    assert verified.returncode == 0
    assert summary(verified)["counts"]["unchanged"] == 62
    assert stack.akv_value_gets() == 60  # full comparison on request, still nothing written
    assert stack.vault_versions() == versions


def test_changed_akv_value_updates_vault_and_only_that_value_is_fetched(stack: BootstrapStack) -> None:
    stack.seed_akv({f"app-{i:02d}": f"akv-value-{i:02d}-Zq9" for i in range(5)})
    stack.write_catalog(external(5))
    stack.settle()
    assert run(stack).returncode == 0
    before = stack.vault_versions()

    stack.seed_akv({"app-03": "rotated-value-Zq9"})
    stack.settle()
    stack.emulator.reset_requests()
    done = run(stack)

    assert done.returncode == 0
    assert actions(done)["app-03"] == "written"
    assert stack.vault_value("app-03") == "rotated-value-Zq9"
    assert stack.vault_versions() == {**before, "app-03": before["app-03"] + 1}
    assert stack.akv_value_gets() == 1


def test_value_changed_in_vault_behind_our_back_is_restored(stack: BootstrapStack) -> None:
    stack.seed_akv({"app-00": "akv-value-00-Zq9"})
    stack.write_catalog(external(1))
    stack.settle()
    assert run(stack).returncode == 0
    stack.vault().secrets.kv.v2.create_or_update_secret(
        "app-00", {"value": "tampered-Zq9"}, mount_point=stack.mount
    )

    done = run(stack, never=("tampered-Zq9",))

    assert actions(done)["app-00"] == "written"
    assert stack.vault_value("app-00") == "akv-value-00-Zq9"


def test_real_value_in_vault_is_never_overwritten_by_a_fixture(stack: BootstrapStack) -> None:
    stack.write_catalog(
        [
            {"name": "optional-api-key", "origin": "external", "fixture": FIXTURE},
            {"name": "grafana-admin-password", "origin": "helm-generated", "fixture": FIXTURE},
        ]
    )
    for name in ("optional-api-key", "grafana-admin-password"):
        stack.vault().secrets.kv.v2.create_or_update_secret(
            name, {"value": f"real-{name}"}, mount_point=stack.mount
        )
    versions = stack.vault_versions()

    done = run(stack, never=("real-optional-api-key", "real-grafana-admin-password"))

    assert done.returncode == 0
    assert set(actions(done).values()) == {"skipped"}
    assert stack.vault_versions() == versions
    assert stack.vault_value("grafana-admin-password") == "real-grafana-admin-password"


def test_fixture_run_racing_a_client_patcher_style_writer_never_leaves_the_fixture(
    stack: BootstrapStack,
) -> None:
    names = [f"kc-client-{i:02d}" for i in range(20)]
    stack.write_catalog(
        [
            {
                "name": name,
                "origin": "service-generated",
                "keycloak": {"realm": "r", "clientId": name},
                "fixture": FIXTURE,
            }
            for name in names
        ],
        keycloak=KEYCLOAK,
    )
    writer = VaultClient(VaultSettings.model_validate(stack.openbao.env()))
    ours = md.stamp(origin="service-generated", authority="keycloak", fixture="false")
    stop = threading.Event()

    def client_patcher() -> None:
        # Start once the job has begun writing, then converge every key (reverse order) until it exits,
        # exactly as client-patcher does: read, write only when different, CAS on the version read.
        while not stop.is_set() and not stack.vault_versions():
            time.sleep(0.002)
        while not stop.is_set():
            for name in reversed(names):
                converge(
                    writer.read(stack.mount, name),
                    lambda _, n=name: writer.read(stack.mount, n),
                    lambda kv, n=name: plan_sync(kv, "value", f"real-secret-{n}", ours, "keycloak"),
                    KvTarget(writer, stack.mount, dry_run=False),
                )

    thread = threading.Thread(target=client_patcher, daemon=True)
    thread.start()
    try:
        done = run(stack, never=tuple(f"real-secret-{n}" for n in names))
    finally:
        time.sleep(0.2)
        stop.set()
        thread.join(timeout=30)

    assert done.returncode == 0, done.stdout
    assert set(actions(done).values()) <= {"seeded_fixture", "skipped"}
    assert {name: stack.vault_value(name) for name in names} == {n: f"real-secret-{n}" for n in names}


def test_required_secret_missing_fails_without_a_fixture(stack: BootstrapStack) -> None:
    stack.seed_akv({"app-00": "akv-value-00-Zq9"})
    stack.write_catalog(
        [
            *external(1),
            {
                "name": "ghcr-token",
                "origin": "external",
                "azureKeyVault": "ghcr-pull-secret",
                "required": True,
            },
        ]
    )

    done = run(stack)

    assert done.returncode == 1
    entries = {e["entry"]: e for e in summary(done)["entries"]}
    assert entries["ghcr-token"]["action"] == "failed"
    assert "required, but ghcr-pull-secret is not found in Azure Key Vault" in entries["ghcr-token"]["reason"]
    assert entries["app-00"]["action"] == "written"  # the other entries were still processed
    assert stack.vault_read("ghcr-token") is None


def test_disabled_expired_and_future_secrets_count_as_missing_and_are_never_fetched(
    stack: BootstrapStack,
) -> None:
    now = int(time.time())
    stack.seed_akv({"disabled-key": "d-value-Zq9"}, enabled=False)
    stack.seed_akv({"expired-key": "e-value-Zq9"}, exp=now - 60)
    stack.seed_akv({"future-key": "f-value-Zq9"}, nbf=now + 3600)
    stack.write_catalog(
        [
            {"name": "disabled-key", "origin": "external", "fixture": FIXTURE},
            {"name": "expired-key", "origin": "external"},
            {"name": "future-key", "origin": "external", "required": True},
        ]
    )
    stack.vault().secrets.kv.v2.create_or_update_secret(
        "expired-key", {"value": "kept-Zq9"}, mount_point=stack.mount
    )

    done = run(stack, never=("kept-Zq9",))

    entries = {e["entry"]: e for e in summary(done)["entries"]}
    assert entries["disabled-key"]["action"] == "seeded_fixture"
    assert "disabled in Azure Key Vault" in entries["disabled-key"]["reason"]
    assert entries["expired-key"]["action"] == "skipped"
    assert "expired in Azure Key Vault; the value in Vault is kept" in entries["expired-key"]["reason"]
    assert entries["future-key"]["action"] == "failed"
    assert "not yet valid" in entries["future-key"]["reason"]
    assert stack.vault_value("expired-key") == "kept-Zq9"
    assert stack.akv_value_gets() == 0


def test_akv_secret_of_a_cluster_managed_entry_is_an_anti_pattern_never_fetched(
    stack: BootstrapStack,
) -> None:
    stack.seed_akv({"app-00": "akv-value-00-Zq9", "Postgres-Ameide-Password": "pg-value-Zq9"})
    stack.write_catalog([*external(1), {"name": "postgres-ameide-password", "origin": "operator-reconciled"}])

    done = run(stack)

    assert done.returncode == 0
    warnings = summary(done)["warnings"]
    assert len(warnings) == 1
    assert "anti-pattern" in warnings[0] and "'postgres-ameide-password'" in warnings[0]
    assert "anti-pattern" in done.stderr
    assert stack.emulator.count(lambda m, p: p.lower().startswith("/secrets/postgres")) == 0
    assert stack.vault_read("postgres-ameide-password") is None


def test_throttling_converges_and_respects_retry_after(stack: BootstrapStack) -> None:
    values = {f"app-{i:02d}": f"akv-value-{i:02d}-Zq9" for i in range(60)}
    stack.seed_akv(values)
    stack.write_catalog(external(60))
    stack.emulator.throttle_limit, stack.emulator.throttle_window = 20, 1.0

    done = run(stack)

    assert done.returncode == 0, done.stdout
    assert summary(done)["counts"]["written"] == 60
    assert all(stack.vault_value(name) == value for name, value in values.items())
    kv = [e for e in stack.emulator.exchanges if e.path.startswith("/secrets")]
    throttled = [e for e in kv if e.status == 429]
    assert throttled, "the test did not throttle"
    first = throttled[0]
    retry_after = float(first.headers["Retry-After"])
    assert [e for e in kv if first.at + 0.2 < e.at < first.at + retry_after - 0.05] == []
    assert "retrying after a transient error" in done.stderr


def test_bad_federated_token_fails_external_entries_clearly(stack: BootstrapStack) -> None:
    stack.seed_akv({"app-00": "akv-value-00-Zq9"})
    stack.write_catalog([*external(1), {"name": "grafana", "origin": "helm-generated", "fixture": FIXTURE}])
    stack.emulator.write_federated_token_file(stack.token_file, "system:serviceaccount:other:intruder")

    done = run(stack)

    assert done.returncode == 1
    entries = {e["entry"]: e for e in summary(done)["entries"]}
    assert entries["app-00"]["action"] == "failed"
    assert "AADSTS700213" in entries["app-00"]["reason"]
    assert "could not read Azure Key Vault" in entries["app-00"]["reason"]
    assert entries["grafana"]["action"] == "seeded_fixture"  # needs no Azure at all
    assert stack.vault_read("app-00") is None


def test_dry_run_prints_the_plan_and_writes_nothing(stack: BootstrapStack) -> None:
    stack.seed_akv({"app-00": "akv-value-00-Zq9"})
    stack.write_catalog([*external(1), {"name": "grafana", "origin": "helm-generated", "fixture": FIXTURE}])

    done = run(stack, "--dry-run")

    assert done.returncode == 0
    assert summary(done)["dry_run"] is True
    entries = {e["entry"]: e for e in summary(done)["entries"]}
    assert entries["app-00"]["reason"].startswith("DRY-RUN: would be written")
    assert entries["grafana"]["reason"].startswith("DRY-RUN: would be seeded_fixture")
    planned = [json.loads(line) for line in done.stderr.splitlines()]
    assert {
        "message": "DRY-RUN: entry would be written",
        "entry": "app-00",
        "action": "written",
    }.items() <= next(r for r in planned if r.get("entry") == "app-00").items()
    assert stack.vault_versions() == {}


def test_production_never_writes_fixtures(stack: BootstrapStack) -> None:
    stack.write_catalog(
        [{"name": "grafana", "origin": "helm-generated", "fixture": FIXTURE}, *external(1)],
        environment="production",
    )

    done = run(stack)

    entries = {e["entry"]: e for e in summary(done)["entries"]}
    assert entries["grafana"]["action"] == "skipped"
    assert "production" in entries["grafana"]["reason"]
    assert stack.vault_versions() == {}


def test_missing_azure_settings_is_a_bad_invocation(stack: BootstrapStack) -> None:
    stack.write_catalog(external(1))
    env = {k: v for k, v in stack.env().items() if k != "AZURE_FEDERATED_TOKEN_FILE"}

    done = stack.run("--log-format", "json", "--summary", "full", env=env)

    assert done.returncode == 2
    assert "AZURE_FEDERATED_TOKEN_FILE" in done.stderr


def test_output_is_log_friendly_json_lines_with_constant_messages(stack: BootstrapStack) -> None:
    """Every stderr line is one JSON object, messages are constant (the entry is a field), a progress
    record shows up, and by default stdout lists only the entries that changed, then the counts."""
    values = {f"app-{i:02d}": f"akv-value-{i:02d}-Zq9" for i in range(20)}
    stack.seed_akv(values)
    stack.write_catalog(external(20))
    stack.settle()
    first = stack.run("--log-format", "json", "--concurrency", "4")
    assert first.returncode == 0, first.stderr
    logs = [json.loads(line) for line in first.stderr.splitlines()]
    written = [r for r in logs if r["message"] == "entry written"]
    assert sorted(r["entry"] for r in written) == sorted(values)
    assert not any(name in r["message"] for r in logs for name in values)
    progress = [r for r in logs if r["message"] == "progress"]
    assert progress[-1]["done"] == progress[-1]["total"] == 20
    stdout = first.stdout.splitlines()
    assert all(len(line.encode()) <= 16 * 1024 for line in stdout)
    assert [e["entry"] for e in summary(first)["entries"]] == sorted(values)  # catalog order

    second = stack.run("--log-format", "json")
    assert second.returncode == 0
    assert len(second.stdout.splitlines()) == 1  # nothing changed: only the summary record
    assert summary(second)["counts"]["unchanged"] == 20 and summary(second)["exit_code"] == 0
    text = stack.run("--log-format", "text")
    assert "(20 unchanged entries not listed; --summary full lists them)" in text.stdout


@pytest.mark.parametrize(
    ("args", "env", "problems"),
    [
        (["--catalog", "{bad}"], {}, True),
        (["--catalog", "{good}", "--only", "nope"], {}, False),
        (["--catalog", "{good}", "--concurrency", "0"], {}, False),
        (["--catalog", "{good}"], {"VAULT_ADDR": ""}, False),
        ([], {}, False),
    ],
)
def test_exit_2_under_json_is_json_on_both_streams(
    stack: BootstrapStack, tmp_path: Path, args: list[str], env: dict[str, str], problems: bool
) -> None:
    stack.write_catalog(external(1))
    bad = tmp_path / "bad.yaml"
    bad.write_text("secrets:\n  - name: x\n    origin: nowhere\n", encoding="utf-8")
    argv = [a.format(bad=bad, good=stack.catalog_path) for a in args]
    environment = {k: v for k, v in stack.env(**env).items() if k != "SECRET_CATALOG" and v != ""}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "vault-bootstrap"), *argv, "--log-format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert records and all(isinstance(r, dict) for r in records)
    assert ("problems" in records[-1]) is problems
    assert summary(done)["exit_code"] == 2
