"""client-patcher's metrics and Kubernetes Events, end to end: the real console script against a real
OpenBao and the Keycloak and Kubernetes emulators; the metrics read back with prometheus_client's parser
and compared with what the emulators saw (docs/design.md#metrics-and-events)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.client_patcher_stack import DEFAULT_CLIENTS, KUBE_SA, ClientPatcherStack
from lab.openbao import OpenBao
from lab.vault_bootstrap_stack import BootstrapStack
from tests.e2e.test_client_patcher import CONSUMERS, entries, run_clean, summary
from tests.support.pushgateway import Pushgateway, samples_of

PLATFORM, WWW, PORTAL, PARTNER_API = DEFAULT_CLIENTS
JOB = (("job_name", "client-patcher"),)
LAST_SUCCESS = "secret_origin_last_success_timestamp_seconds"


@pytest.fixture
def stack(openbao: OpenBao, kv_mount: str, tmp_path: Path) -> Iterator[ClientPatcherStack]:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path / "stack") as world:
        yield world


def events(stack: ClientPatcherStack) -> list[dict[str, Any]]:
    namespaces = sorted({namespace for namespace, _ in CONSUMERS})
    return [e for namespace in namespaces for e in stack.kube.list_objects("Event", namespace)]


def requests(samples: dict[Any, float], system: str) -> dict[str, float]:
    """status class -> requests the run sent to `system`."""
    found = {}
    for (name, labels), value in samples.items():
        label = dict(labels)
        if name == "secret_origin_requests" and label["system"] == system:
            found[label["status_class"]] = value
    return found


def test_a_run_records_force_synced_events_and_metrics_that_match_what_it_did(
    stack: ClientPatcherStack, tmp_path: Path
) -> None:
    path = tmp_path / "client-patcher.prom"
    with Pushgateway() as gateway:
        done = run_clean(stack, "--metrics-file", str(path), "--metrics-push", gateway.url)
    assert done.returncode == 0, done.stderr
    assert summary(done)["warnings"] == []

    recorded = events(stack)
    assert {(e["metadata"]["namespace"], e["regarding"]["name"]) for e in recorded} == set(CONSUMERS)
    for event in recorded:
        consumer = (event["metadata"]["namespace"], event["regarding"]["name"])
        spec = next(s for s in DEFAULT_CLIENTS if consumer in s.consumers)
        assert (
            event["type"] == "Normal" and event["reason"] == "ForceSynced" and event["action"] == "ForceSync"
        )
        assert event["reportingController"] == "secret-origin/client-patcher"
        assert event["regarding"]["kind"] == "ExternalSecret"
        assert event["regarding"]["apiVersion"] == "external-secrets.io/v1"
        assert f"entry {spec.name}: force-sync={stack.force_sync_of(spec.name)}" in event["note"]
        assert f"{stack.mount}/{spec.name} v1" in event["note"]
        assert not any(secret in str(event) for secret in stack.secret_values())

    from_file = samples_of(path.read_text())
    (push,) = gateway.pushes
    assert push.method == "PUT" and push.path == "/metrics/job/client-patcher/environment/dev"
    pushed = push.samples()
    assert pushed == from_file
    assert from_file[("secret_origin_entries", (("action", "written"), *JOB))] == 4
    assert from_file[("secret_origin_entries", (("action", "failed"), *JOB))] == 0
    assert from_file[("secret_origin_exit_code", JOB)] == 0
    assert from_file[(LAST_SUCCESS, JOB)] == from_file[("secret_origin_last_run_timestamp_seconds", JOB)]
    assert 0 < from_file[("secret_origin_run_duration_seconds", JOB)] < 60
    # every attempt counted once: the emulators saw exactly as many requests as the metrics say
    assert sum(requests(from_file, "kubernetes").values()) == len(stack.kube.requests)
    assert sum(requests(from_file, "keycloak").values()) == len(stack.keycloak.requests)
    assert requests(from_file, "vault")["2xx"] > 0


def test_a_failed_consumer_gets_a_warning_event_and_the_last_success_survives(
    stack: ClientPatcherStack, tmp_path: Path
) -> None:
    path = tmp_path / "client-patcher.prom"
    assert run_clean(stack, "--metrics-file", str(path)).returncode == 0
    first_success = samples_of(path.read_text())[(LAST_SUCCESS, JOB)]
    for event in events(stack):
        stack.kube.delete_object("Event", event["metadata"]["namespace"], event["metadata"]["name"])

    stack.keycloak.set_secret(WWW.realm, WWW.client_id, "changed-out-of-band-" + uuid.uuid4().hex)
    stack.kube.fail_next(
        5, 503, path_prefix="/apis/external-secrets.io/v1/namespaces/ameide-dev/externalsecrets/www-auth"
    )
    done = run_clean(stack, "--metrics-file", str(path))
    assert done.returncode == 1
    assert entries(done)[WWW.name]["action"] == "failed"

    warnings = [e for e in events(stack) if e["type"] == "Warning"]
    assert [(e["reason"], e["regarding"]["name"]) for e in warnings] == [("ConsumerFailed", "www-auth")]
    assert "503" in warnings[0]["note"] and f"entry {WWW.name}" in warnings[0]["note"]

    samples = samples_of(path.read_text())
    assert samples[("secret_origin_exit_code", JOB)] == 1
    assert samples[("secret_origin_entries", (("action", "failed"), *JOB))] == 1
    assert samples[(LAST_SUCCESS, JOB)] == first_success
    assert samples[("secret_origin_last_run_timestamp_seconds", JOB)] > first_success
    assert requests(samples, "kubernetes")["5xx"] == 5  # every attempt, retries included


def test_events_refused_are_one_warning_and_never_fail_the_run(stack: ClientPatcherStack) -> None:
    stack.kube.revoke_all(*KUBE_SA)
    for namespace in sorted({n for n, _ in CONSUMERS}):
        names = [name for n, name in CONSUMERS if n == namespace]
        stack.kube.grant(
            namespace,
            *KUBE_SA,
            verbs=["get", "patch"],
            group="external-secrets.io",
            resource="externalsecrets",
            resource_names=names,
        )
        stack.kube.grant(
            namespace, *KUBE_SA, verbs=["get"], group="", resource="secrets", resource_names=names
        )
    done = run_clean(stack)
    assert done.returncode == 0, done.stderr
    (warning,) = summary(done)["warnings"]
    assert warning.startswith("Kubernetes Events not recorded") and "403" in warning
    assert events(stack) == []
    posts = stack.kube.count(lambda method, path: method == "POST" and path.endswith("/events"))
    assert posts == 1  # after a 403 no further Event is tried


def test_no_events_flag_records_none(stack: ClientPatcherStack) -> None:
    done = run_clean(stack, "--no-events")
    assert done.returncode == 0, done.stderr
    assert events(stack) == []


def test_a_refused_push_is_a_warning_and_keeps_the_exit_code_and_the_credentials_hidden(
    stack: ClientPatcherStack,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run_clean(stack, "--metrics-push", f"http://pusher:pgw-pass-{port}@127.0.0.1:{port}")
    assert done.returncode == 0, done.stderr
    (warning,) = summary(done)["warnings"]
    assert warning.startswith(f"metrics push to http://127.0.0.1:{port} failed")
    assert f"pgw-pass-{port}" not in done.stdout + done.stderr


def test_metrics_push_from_the_environment_and_a_bad_url_is_exit_2(stack: ClientPatcherStack) -> None:
    with Pushgateway() as gateway:
        done = stack.run(env=stack.env(SECRET_ORIGIN_METRICS_PUSH=gateway.url))
    assert done.returncode == 0, done.stderr
    (push,) = gateway.pushes
    assert push.samples()[("secret_origin_exit_code", JOB)] == 0
    bad = stack.run("--metrics-push", "ftp://user:pw-ftp-secret@host")
    assert bad.returncode == 2
    assert "pw-ftp-secret" not in bad.stdout + bad.stderr


@pytest.fixture
def bootstrap(openbao: OpenBao, tmp_path: Path) -> Iterator[BootstrapStack]:
    with BootstrapStack.start(tmp_path / "bootstrap", openbao=openbao) as started:
        yield started


def test_vault_bootstrap_metrics_count_every_key_vault_request_and_the_challenge(
    bootstrap: BootstrapStack, tmp_path: Path
) -> None:
    bootstrap.seed_akv({f"app-{i}": f"akv-value-{i}-Zq9" for i in range(3)})
    bootstrap.write_catalog([{"name": f"app-{i}", "origin": "external"} for i in range(3)])
    bootstrap.settle()
    path = tmp_path / "vault-bootstrap.prom"
    done = bootstrap.run("--log-format", "json", "--metrics-file", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    samples = samples_of(path.read_text())
    label = (("job_name", "vault-bootstrap"),)
    assert samples[("secret_origin_entries", (("action", "written"), *label))] == 3
    key_vault = [e.status for e in bootstrap.emulator.exchanges if e.path.startswith("/secrets")]
    counted = {
        dict(labels)["status_class"]: value
        for (name, labels), value in samples.items()
        if name == "secret_origin_requests" and dict(labels)["system"] == "azure-key-vault"
    }
    assert counted["4xx"] == 1  # the challenge's unauthenticated first request
    assert sum(counted.values()) == len(key_vault)  # Entra's token request is not Key Vault's
    assert samples[(LAST_SUCCESS, label)] > 0
