"""events.k8s.io/v1 Events in the Kubernetes emulator: created through the official client, refused the
way the API server refuses them (kubernetes/kubernetes pkg/apis/core/validation/events.go; a MicroTime
that is not RFC 3339 with six fraction digits is a decoding error), RBAC checked like every resource."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from emulators.kube import KubeEmulator
from tests.emulators.test_kube_emulator import NS, SA, SA_NS, api_client, sa_token, status_of


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        emulator.add_external_secret(NS, "app", remote_key="app/kc")
        emulator.add_service_account(SA_NS, SA)
        yield emulator


def event(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "app.18a1b2c3d4e5f6a7", "namespace": NS},
        "eventTime": "2026-11-29T15:00:00.000000Z",
        "reportingController": "secret-origin/client-patcher",
        "reportingInstance": "client-patcher-29012345-abcde",
        "action": "ForceSync",
        "reason": "ForceSynced",
        "regarding": {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "namespace": NS,
            "name": "app",
        },
        "note": "entry app-secret: force-sync=v2",
        "type": "Normal",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def create(kube: KubeEmulator, token: str, tmp_path: Path, body: dict[str, Any]) -> dict[str, Any]:
    with api_client(kube, token, tmp_path) as api:
        # exactly the body given (EventsV1Api would re-serialise eventTime through its model)
        created = client.CustomObjectsApi(api).create_namespaced_custom_object(
            "events.k8s.io", "v1", NS, "events", body
        )
        return dict(created)


def refused(kube: KubeEmulator, tmp_path: Path, body: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        create(kube, kube.admin_token, tmp_path, body)
    return status_of(caught.value)


def test_a_complete_event_is_stored_and_listed(kube: KubeEmulator, tmp_path: Path) -> None:
    created = create(kube, kube.admin_token, tmp_path, event())
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    (stored,) = kube.list_objects("Event", NS)
    assert stored["reason"] == "ForceSynced" and stored["regarding"]["name"] == "app"
    with api_client(kube, kube.admin_token, tmp_path) as api:
        listed = client.EventsV1Api(api).list_namespaced_event(NS, _preload_content=False)
    assert [e["metadata"]["name"] for e in json.loads(listed.data)["items"]] == ["app.18a1b2c3d4e5f6a7"]


def test_the_fields_the_api_server_requires_are_required(kube: KubeEmulator, tmp_path: Path) -> None:
    status = refused(
        kube,
        tmp_path,
        event(reportingController=None, reportingInstance=None, action=None, reason=None, type="Info"),
    )
    assert status["code"] == 422 and status["reason"] == "Invalid"
    causes = {(c["field"], c["reason"]) for c in status["details"]["causes"]}  # type: ignore[index]
    assert causes == {
        ("reportingController", "FieldValueRequired"),
        ("reportingController", "FieldValueInvalid"),  # "" is no qualified name either, as in Go
        ("reportingInstance", "FieldValueRequired"),
        ("action", "FieldValueRequired"),
        ("reason", "FieldValueRequired"),
        ("type", "FieldValueInvalid"),
    }


def test_event_time_is_required_and_must_be_a_micro_time(kube: KubeEmulator, tmp_path: Path) -> None:
    missing = refused(kube, tmp_path, event(eventTime=None))
    assert {c["field"] for c in missing["details"]["causes"]} == {"eventTime"}  # type: ignore[index]
    for bad in ("2026-11-29T15:00:00Z", "2026-11-29T15:00:00+00:00", "2026-11-29T15:00:00.123Z"):
        status = refused(kube, tmp_path, event(eventTime=bad))
        assert status["code"] == 400 and status["reason"] == "BadRequest", bad
    assert create(kube, kube.admin_token, tmp_path, event(eventTime="2026-11-29T15:00:00.000001+00:00"))


def test_lengths_and_the_regarding_namespace(kube: KubeEmulator, tmp_path: Path) -> None:
    status = refused(
        kube,
        tmp_path,
        event(
            note="n" * 1025,
            reason="r" * 129,
            reportingController="not a qualified name",
            regarding={"kind": "ExternalSecret", "name": "app"},
            deprecatedCount=3,
        ),
    )
    fields = sorted(c["field"] for c in status["details"]["causes"])  # type: ignore[index]
    assert fields == ["count", "involvedObject.namespace", "message", "reason", "reportingController"]
    assert create(kube, kube.admin_token, tmp_path, event(note="n" * 1024))


def test_creating_events_needs_the_grant_in_that_namespace(kube: KubeEmulator, tmp_path: Path) -> None:
    token = sa_token(kube)
    with pytest.raises(ApiException) as caught:
        create(kube, token, tmp_path, event())
    status = status_of(caught.value)
    assert status["code"] == 403
    assert 'cannot create resource "events" in API group "events.k8s.io" in the namespace "apps"' in str(
        status["message"]
    )
    kube.grant(NS, SA_NS, SA, verbs=["create"], group="events.k8s.io", resource="events")
    assert create(kube, token, tmp_path, event())["reason"] == "ForceSynced"
    assert kube.list_objects("Event", NS)


def test_discovery_serves_events_k8s_io(kube: KubeEmulator, tmp_path: Path) -> None:
    with api_client(kube, kube.admin_token, tmp_path) as api:
        groups = client.ApisApi(api).get_api_versions()
        resources = client.EventsV1Api(api).get_api_resources()
    assert "events.k8s.io" in {g.name for g in groups.groups}
    assert {r.name for r in resources.resources} == {"events"}
