"""The Kubernetes client against the Kubernetes API emulator, through a real kubeconfig."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kubernetes.client
import kubernetes.config
import pytest

from emulators.kube import KubeEmulator
from jobs.core.clients.kube import KubeClient, load_configuration
from jobs.core.clients.kube_index import ExternalSecretIndex
from jobs.core.errors import ConfigError, NotFound, PermissionDenied, Transient, Unauthorized, Unreachable
from jobs.core.retry import RetryPolicy

NS = "apps"
SA = ("secret-origin", "client-patcher")
FAST = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05)


def grant(kube: KubeEmulator, *names: str, verbs: tuple[str, ...] = ("get", "patch")) -> None:
    kube.grant(
        NS, *SA, verbs=verbs, group="external-secrets.io", resource="externalsecrets", resource_names=names
    )


def client_for(kube: KubeEmulator, tmp_path: Path, token: str | None = None) -> KubeClient:
    path = kube.kubeconfig(tmp_path / f"kubeconfig-{uuid.uuid4().hex[:6]}", token or kube.issue_token(*SA))
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(path), client_configuration=configuration)
    configuration.retries = 0
    return KubeClient(configuration, FAST)


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator(tls=True) as emulator:
        assert isinstance(emulator, KubeEmulator)
        emulator.add_service_account(*SA)
        emulator.add_external_secret(NS, "app", remote_key="secret/app", refresh_policy="OnChange")
        emulator.add_external_secret(
            NS, "frozen", remote_key="secret/app", refresh_interval="0", annotations={"team": "x"}
        )
        grant(emulator, "app", "frozen")
        yield emulator


def test_reads_refresh_settings_and_merge_patches_only_force_sync(kube: KubeEmulator, tmp_path: Path) -> None:
    with client_for(kube, tmp_path) as client:
        state = client.get_external_secret(NS, "frozen")
        assert (state.refresh_interval, state.refresh_policy, state.force_sync) == ("0", None, None)
        assert state.api_version == "external-secrets.io/v1"
        before = kube.get_object("ExternalSecret", NS, "frozen")
        assert before is not None
        new_rv = client.annotate_force_sync(NS, "frozen", "v3")
    after = kube.get_object("ExternalSecret", NS, "frozen")
    assert after is not None
    assert after["metadata"]["annotations"] == {"team": "x", "force-sync": "v3"}  # merge, not replace
    assert after["metadata"]["resourceVersion"] == new_rv != before["metadata"]["resourceVersion"]
    assert after["spec"] == before["spec"]
    patches = [p for m, p in kube.requests if m == "PATCH"]
    assert patches == [f"/apis/external-secrets.io/v1/namespaces/{NS}/externalsecrets/frozen"]


def test_versions_are_discovered_once_per_client(kube: KubeEmulator, tmp_path: Path) -> None:
    with client_for(kube, tmp_path) as client:
        for _ in range(3):
            client.get_external_secret(NS, "app")
    assert kube.count(lambda m, p: p.rstrip("/") == "/apis") == 1


def test_falls_back_to_v1beta1_only_when_v1_is_not_served(tmp_path: Path) -> None:
    with KubeEmulator(eso_versions=("v1beta1",)) as kube:
        assert isinstance(kube, KubeEmulator)
        kube.add_service_account(*SA)
        kube.add_external_secret(NS, "app", remote_key="secret/app", version="v1beta1")
        grant(kube, "app")
        with client_for(kube, tmp_path) as client:
            assert client.external_secret_version() == "v1beta1"
            client.annotate_force_sync(NS, "app", "v1")
        assert kube.annotations("ExternalSecret", NS, "app")["force-sync"] == "v1"
    with KubeEmulator(eso_versions=("v1", "v1beta1")) as both:
        assert isinstance(both, KubeEmulator)
        both.add_service_account(*SA)
        with client_for(both, tmp_path) as client:
            assert client.external_secret_version() == "v1"


def test_no_eso_served_is_reported(tmp_path: Path) -> None:
    with KubeEmulator(eso_versions=("v1alpha1",)) as kube:
        assert isinstance(kube, KubeEmulator)
        kube.add_service_account(*SA)
        with client_for(kube, tmp_path) as client, pytest.raises(NotFound, match="is External Secrets"):
            client.external_secret_version()


def test_missing_consumer_is_not_found_with_namespace_and_name(kube: KubeEmulator, tmp_path: Path) -> None:
    grant(kube, "gone")
    with client_for(kube, tmp_path) as client, pytest.raises(NotFound) as caught:
        client.get_external_secret(NS, "gone")
    message = str(caught.value)
    assert f"namespaces/{NS}/externalsecrets/gone" in message
    assert 'NotFound: externalsecrets.external-secrets.io "gone" not found' in message


def test_forbidden_consumer_carries_the_api_reason(kube: KubeEmulator, tmp_path: Path) -> None:
    kube.add_external_secret(NS, "other", remote_key="secret/other")
    with client_for(kube, tmp_path) as client, pytest.raises(PermissionDenied) as caught:
        client.annotate_force_sync(NS, "other", "v1")
    assert "403 Forbidden" in str(caught.value)
    assert 'cannot patch resource "externalsecrets"' in str(caught.value)
    assert "force-sync" not in kube.annotations("ExternalSecret", NS, "other")


def test_get_only_grant_cannot_patch(kube: KubeEmulator, tmp_path: Path) -> None:
    kube.revoke_all(*SA)
    grant(kube, "app", verbs=("get",))
    with client_for(kube, tmp_path) as client:
        client.get_external_secret(NS, "app")
        with pytest.raises(PermissionDenied, match="cannot patch"):
            client.annotate_force_sync(NS, "app", "v1")


def test_expired_token_is_unauthorized(kube: KubeEmulator, tmp_path: Path) -> None:
    token = kube.issue_token(*SA, issued_at=kube.clock() - 7200, lifetime=3600)
    with client_for(kube, tmp_path, token) as client, pytest.raises(Unauthorized):
        client.get_external_secret(NS, "app")


def test_server_errors_are_retried_then_transient(kube: KubeEmulator, tmp_path: Path) -> None:
    with client_for(kube, tmp_path) as client:
        client.external_secret_version()
        kube.fail_next(2, 503, path_prefix="/apis/external-secrets.io")
        assert client.get_external_secret(NS, "app").name == "app"
        kube.fail_next(10, 429, retry_after=0.01, path_prefix="/apis/external-secrets.io")
        with pytest.raises(Transient, match="429"):
            client.annotate_force_sync(NS, "app", "v1")


def test_no_configuration_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=r"KUBECONFIG: no such file: .*missing"):
        load_configuration()


def test_kubeconfig_from_the_environment(
    kube: KubeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig(tmp_path / "kc", kube.issue_token(*SA))))
    with KubeClient(retry=FAST) as client:
        assert client.get_external_secret(NS, "app").refresh_policy == "OnChange"


def test_connection_errors_are_unreachable_not_urllib3() -> None:
    configuration = kubernetes.client.Configuration()
    configuration.host = "http://127.0.0.1:9"
    configuration.retries = 0
    with (
        KubeClient(configuration, RetryPolicy(attempts=2, initial_wait=0.01)) as client,
        pytest.raises(
            Unreachable, match=r"Kubernetes API at http://127\.0\.0\.1:9 unreachable: connection refused"
        ),
    ):
        client.get_external_secret(NS, "app")


def test_reads_eso_status_and_spec_and_digests_a_secret_without_returning_values(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    import hashlib

    kube.put_object(
        {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": "mixed", "namespace": NS},
            "spec": {
                "target": {"name": "mixed-target", "template": {"type": "Opaque"}},
                "data": [
                    {"secretKey": "CLIENT_SECRET", "remoteRef": {"key": "secret/app", "property": "value"}}
                ],
                "dataFrom": [{"extract": {"key": "secret/app"}, "rewrite": [{"regexp": {}}]}, {"find": {}}],
            },
        }
    )
    kube.set_status(
        "ExternalSecret",
        NS,
        "mixed",
        {
            "refreshTime": "2026-11-29T15:01:00Z",
            "syncedResourceVersion": "1-abc",
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "SecretSyncedError", "message": "no"}
            ],
        },
    )
    grant(kube, "mixed")
    kube.add_secret(NS, "mixed-target", {"CLIENT_SECRET": "s3cr3t-value"})
    kube.grant(NS, *SA, verbs=["get"], group="", resource="secrets", resource_names=["mixed-target"])
    with client_for(kube, tmp_path) as client:
        state = client.get_external_secret(NS, "mixed")
        assert (state.secret_name, state.templated, state.generation, state.other_sources) == (
            "mixed-target",
            True,
            1,
            True,
        )
        assert [(d.secret_key, d.key, d.property) for d in state.data] == [
            ("CLIENT_SECRET", "secret/app", "value")
        ]
        assert [(e.key, e.rewritten) for e in state.extracts] == [("secret/app", True)]
        assert (state.status.refresh_time, state.status.synced_resource_version) == (
            "2026-11-29T15:01:00Z",
            "1-abc",
        )
        assert (state.status.ready, state.status.ready_reason, state.status.ready_message) == (
            "False",
            "SecretSyncedError",
            "no",
        )
        digests = client.secret_digests(NS, "mixed-target")
        assert digests == {"CLIENT_SECRET": hashlib.sha256(b"s3cr3t-value").hexdigest()}
        with pytest.raises(PermissionDenied):
            client.secret_digests(NS, "other")
        assert client.get_external_secret(NS, "app").secret_name == "app"  # default target: its name


# -- the run's ExternalSecret index: one LIST per namespace ------------------------------------------------
def list_grant(kube: KubeEmulator, namespace: str = NS) -> None:
    kube.grant(namespace, *SA, verbs=["list"], group="external-secrets.io", resource="externalsecrets")


def test_the_index_lists_each_namespace_once_for_any_number_of_threads(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    names = [f"es-{n:02d}" for n in range(30)]
    for name in names:
        kube.add_external_secret(NS, name, remote_key="secret/x", annotations={"force-sync": f"v-{name}"})
    list_grant(kube)
    with client_for(kube, tmp_path) as client:
        index = ExternalSecretIndex(client)
        kube.reset_requests()
        with ThreadPoolExecutor(8) as pool:
            found = list(pool.map(lambda name: index.get_external_secret(NS, name), names * 2))
        direct = client.get_external_secret(NS, "frozen")
        assert index.get_external_secret(NS, "frozen") == direct
    assert [s.force_sync for s in found] == [f"v-{name}" for name in names] * 2
    collection = f"/apis/external-secrets.io/v1/namespaces/{NS}/externalsecrets"
    reads = [p for m, p in kube.requests if m == "GET" and p.rstrip("/") != "/apis"]
    assert reads == [collection, f"{collection}/frozen"]


def test_a_consumer_the_listing_lacks_fails_as_a_get_of_it_does(kube: KubeEmulator, tmp_path: Path) -> None:
    list_grant(kube)
    grant(kube, "gone")
    with client_for(kube, tmp_path) as client:
        with pytest.raises(NotFound) as direct:
            client.get_external_secret(NS, "gone")
        with pytest.raises(NotFound) as listed:
            ExternalSecretIndex(client).get_external_secret(NS, "gone")
    assert str(listed.value) == str(direct.value)
    assert "not found" in str(listed.value) and "gone" in str(listed.value)


def test_a_forbidden_listing_falls_back_to_gets_and_says_so_once(
    kube: KubeEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The fixture's Role grants get/patch by resourceNames only, as the chart did before `list`."""
    with client_for(kube, tmp_path) as client:
        index = ExternalSecretIndex(client)
        kube.reset_requests()
        with caplog.at_level(logging.WARNING):
            states = [index.get_external_secret(NS, name) for name in ("app", "frozen", "app")]
    assert [s.name for s in states] == ["app", "frozen", "app"]
    assert states[1].refresh_interval == "0"
    gets = [p.rsplit("/", 1)[1] for m, p in kube.requests if m == "GET" and "/externalsecrets/" in p]
    assert gets == ["app", "frozen", "app"]
    warnings = [r for r in caplog.records if "cannot list ExternalSecrets" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].__dict__["namespace"] == NS
