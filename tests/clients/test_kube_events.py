"""Events on consumer ExternalSecrets (jobs.core.clients.kube_events) against the Kubernetes emulator,
which validates them as the API server does (docs/design.md#metrics-and-events)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from emulators.kube import KubeEmulator
from jobs.core.catalog import Consumer
from jobs.core.clients.kube_events import ConsumerEvents, event_name, micro_time
from jobs.core.model import Action, ConsumerResult, EntryResult
from tests.clients.test_kube_client import NS, SA, client_for, grant

LONG = "a" * 250


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator(tls=True) as emulator:
        emulator.add_service_account(*SA)
        for name in ("app", "frozen"):
            emulator.add_external_secret(NS, name, remote_key="secret/app")
        grant(emulator, "app", "frozen")
        yield emulator


def grant_events(kube: KubeEmulator) -> None:
    kube.grant(NS, *SA, verbs=["create"], group="events.k8s.io", resource="events")


def test_a_zero_fraction_is_still_six_digits_and_names_stay_valid() -> None:
    assert micro_time(1_800_000_000.0) == "2027-01-15T08:00:00.000000Z"
    name = event_name(LONG + "-x-", 1_800_000_000.0)
    assert len(name) <= 253 and name.startswith("a" * 200) and "-." not in name


def test_force_synced_and_failed_consumers_get_their_events(kube: KubeEmulator, tmp_path: Path) -> None:
    grant_events(kube)
    kube.add_external_secret(NS, LONG, remote_key="secret/app")
    consumers = (Consumer(namespace=NS, name="app"), Consumer(namespace=NS, name=LONG))
    result = EntryResult(
        "app-secret",
        Action.FAILED,
        "consumer refresh failed: consumer apps/" + LONG + ": 503 " + "x" * 2000,
        vault_version=4,
        consumers=(
            ConsumerResult(NS, "app", "v4-1767225600", "patched"),
            ConsumerResult(NS, LONG, "v4-1767225600", "failed"),
        ),
    )
    with client_for(kube, tmp_path) as client:
        events = ConsumerEvents(
            client, "secret", instance="client-patcher-abc12", clock=lambda: 1_800_000_000.0
        )
        events.after_entry(result, consumers)
    assert events.warnings == []
    by_object = {e["regarding"]["name"]: e for e in kube.list_objects("Event", NS)}
    synced, failed = by_object["app"], by_object[LONG]
    assert (synced["type"], synced["reason"]) == ("Normal", "ForceSynced")
    assert (
        synced["note"]
        == "entry app-secret: force-sync=v4-1767225600 (Vault secret/app-secret v4); ESO refreshes now"
    )
    assert synced["eventTime"] == "2027-01-15T08:00:00.000000Z"
    assert synced["reportingInstance"] == "client-patcher-abc12"
    assert (failed["type"], failed["reason"]) == ("Warning", "ConsumerFailed")
    assert len(failed["note"].encode()) == 1024 and failed["note"].endswith("...")


def test_an_entry_that_failed_before_its_consumers_warns_each_of_them(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    grant_events(kube)
    consumers = (Consumer(namespace=NS, name="app"), Consumer(namespace=NS, name="frozen"))
    with client_for(kube, tmp_path) as client:
        events = ConsumerEvents(client, "secret")
        events.after_entry(EntryResult("app-secret", Action.FAILED, "keycloak: unreachable"), consumers)
        events.after_entry(EntryResult("app-secret", Action.WRITTEN, "dry", 2, dry_run=True), consumers)
    recorded = kube.list_objects("Event", NS)
    assert sorted((e["reason"], e["action"], e["regarding"]["name"]) for e in recorded) == [
        ("EntryFailed", "Sync", "app"),
        ("EntryFailed", "Sync", "frozen"),
    ]
    assert all("keycloak: unreachable" in e["note"] for e in recorded)


def test_a_server_error_is_one_warning_and_later_events_are_still_tried(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    grant_events(kube)
    consumers = (Consumer(namespace=NS, name="app"), Consumer(namespace=NS, name="frozen"))
    kube.fail_next(1, 500, path_prefix=f"/apis/events.k8s.io/v1/namespaces/{NS}/events")
    with client_for(kube, tmp_path) as client:
        events = ConsumerEvents(client, "secret")
        events.after_entry(EntryResult("app-secret", Action.FAILED, "boom"), consumers)
    (warning,) = events.warnings
    assert "500" in warning
    assert [e["regarding"]["name"] for e in kube.list_objects("Event", NS)] == ["frozen"]


def test_forbidden_events_are_one_warning_and_then_not_tried(kube: KubeEmulator, tmp_path: Path) -> None:
    consumers = (Consumer(namespace=NS, name="app"), Consumer(namespace=NS, name="frozen"))
    kube.reset_requests()
    with client_for(kube, tmp_path) as client:
        events = ConsumerEvents(client, "secret")
        events.after_entry(EntryResult("app-secret", Action.FAILED, "boom"), consumers)
        events.after_entry(EntryResult("app-secret", Action.FAILED, "boom"), consumers)
    (warning,) = events.warnings
    assert "403" in warning
    assert kube.count(lambda method, path: method == "POST") == 1


def test_concurrent_entries_stop_after_one_refusal(kube: KubeEmulator, tmp_path: Path) -> None:
    # client-patcher reports entries from several threads; without Events RBAC the first 403 must
    # stop the rest, even when they were all about to post at the same moment.
    consumers = (Consumer(namespace=NS, name="app"), Consumer(namespace=NS, name="frozen"))
    kube.latency = 0.05
    kube.reset_requests()
    with client_for(kube, tmp_path) as client:
        events = ConsumerEvents(client, "secret")
        with ThreadPoolExecutor(8) as pool:
            for index in range(8):
                pool.submit(events.after_entry, EntryResult(f"e{index}", Action.FAILED, "boom"), consumers)
    (warning,) = events.warnings
    assert "403" in warning
    assert kube.count(lambda method, path: method == "POST") == 1
