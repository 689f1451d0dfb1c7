"""The Kubernetes API emulator, driven by the official `kubernetes` client and by a real OpenBao."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import hvac
import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from emulators.kube import KubeEmulator
from lab.openbao import OpenBao

ESO = ("external-secrets.io", "v1")
NS = "apps"
SA_NS = "secret-origin"
SA = "client-patcher"


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        assert isinstance(emulator, KubeEmulator)
        emulator.add_external_secret(NS, "app", remote_key="app/kc", refresh_policy="OnChange")
        emulator.add_service_account(SA_NS, SA)
        yield emulator


@contextmanager
def api_client(kube: KubeEmulator, token: str, tmp_path: Path) -> Iterator[client.ApiClient]:
    """An ApiClient built by `load_kube_config` from the emulator's kubeconfig (no global state)."""
    path = kube.kubeconfig(tmp_path / f"kubeconfig-{uuid.uuid4().hex[:6]}", token)
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        yield api


def status_of(error: ApiException) -> dict[str, object]:
    body = json.loads(error.body)
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["code"] == error.status
    return body  # type: ignore[no-any-return]


def sa_token(kube: KubeEmulator) -> str:
    return kube.issue_token(SA_NS, SA)


# -- ExternalSecret patching -----------------------------------------------------------------------------
def test_merge_patch_adds_annotation_and_bumps_resource_version_not_generation(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    before = kube.get_object("ExternalSecret", NS, "app")
    assert before is not None
    with api_client(kube, kube.admin_token, tmp_path) as api:
        patched = client.CustomObjectsApi(api).patch_namespaced_custom_object(
            *ESO, NS, "externalsecrets", "app", {"metadata": {"annotations": {"force-sync": "1767225600"}}}
        )
    assert patched["metadata"]["annotations"] == {"force-sync": "1767225600"}
    assert int(patched["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert patched["metadata"]["generation"] == before["metadata"]["generation"] == 1
    assert kube.annotations("ExternalSecret", NS, "app") == {"force-sync": "1767225600"}
    assert kube.requests[-1] == ("PATCH", f"/apis/external-secrets.io/v1/namespaces/{NS}/externalsecrets/app")


def test_spec_change_bumps_generation_and_same_value_patch_changes_nothing(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    with api_client(kube, kube.admin_token, tmp_path) as api:
        custom = client.CustomObjectsApi(api)
        first = custom.patch_namespaced_custom_object(
            *ESO, NS, "externalsecrets", "app", {"spec": {"refreshInterval": "0s"}}
        )
        again = custom.patch_namespaced_custom_object(
            *ESO, NS, "externalsecrets", "app", {"spec": {"refreshInterval": "0s"}}
        )
    assert first["metadata"]["generation"] == 2
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_merge_patch_null_deletes_an_annotation(kube: KubeEmulator, tmp_path: Path) -> None:
    kube.add_external_secret(NS, "old", remote_key="k", annotations={"force-sync": "1", "keep": "yes"})
    with api_client(kube, kube.admin_token, tmp_path) as api:
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            *ESO, NS, "externalsecrets", "old", {"metadata": {"annotations": {"force-sync": None}}}
        )
    assert kube.annotations("ExternalSecret", NS, "old") == {"keep": "yes"}


def test_json_patch_unescapes_slash_in_annotation_key_and_failed_test_op_is_422(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    with api_client(kube, kube.admin_token, tmp_path) as api:
        custom = client.CustomObjectsApi(api)
        custom.patch_namespaced_custom_object(
            *ESO,
            NS,
            "externalsecrets",
            "app",
            [
                {"op": "add", "path": "/metadata/annotations", "value": {}},
                {"op": "add", "path": "/metadata/annotations/external-secrets.io~1force-sync", "value": "7"},
            ],
            _content_type="application/json-patch+json",
        )
        assert kube.annotations("ExternalSecret", NS, "app") == {"external-secrets.io/force-sync": "7"}
        with pytest.raises(ApiException) as caught:
            custom.patch_namespaced_custom_object(
                *ESO,
                NS,
                "externalsecrets",
                "app",
                [
                    {
                        "op": "test",
                        "path": "/metadata/annotations/external-secrets.io~1force-sync",
                        "value": "8",
                    }
                ],
                _content_type="application/json-patch+json",
            )
    assert caught.value.status == 422
    assert kube.annotations("ExternalSecret", NS, "app") == {"external-secrets.io/force-sync": "7"}


def test_strategic_merge_on_a_custom_resource_is_415(kube: KubeEmulator) -> None:
    response = httpx.patch(
        f"{kube.url}/apis/external-secrets.io/v1/namespaces/{NS}/externalsecrets/app",
        content=b'{"metadata":{"annotations":{"force-sync":"1"}}}',
        headers={
            "Authorization": f"Bearer {kube.admin_token}",
            "Content-Type": "application/strategic-merge-patch+json",
        },
    )
    assert response.status_code == 415
    body = response.json()
    assert body["reason"] == "UnsupportedMediaType"
    assert body["message"].startswith("the body of the request was in an unknown format")
    assert kube.annotations("ExternalSecret", NS, "app") == {}


def test_get_missing_external_secret_is_404_not_found_with_name(kube: KubeEmulator, tmp_path: Path) -> None:
    with api_client(kube, kube.admin_token, tmp_path) as api, pytest.raises(ApiException) as caught:
        client.CustomObjectsApi(api).get_namespaced_custom_object(*ESO, NS, "externalsecrets", "nope")
    assert caught.value.status == 404
    body = status_of(caught.value)
    assert body["reason"] == "NotFound"
    assert body["message"] == 'externalsecrets.external-secrets.io "nope" not found'
    assert body["details"] == {"name": "nope", "group": "external-secrets.io", "kind": "externalsecrets"}


def test_unserved_v1beta1_is_404_could_not_find_the_requested_resource(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    with api_client(kube, kube.admin_token, tmp_path) as api, pytest.raises(ApiException) as caught:
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            "external-secrets.io",
            "v1beta1",
            NS,
            "externalsecrets",
            "app",
            {"metadata": {"labels": {"a": "b"}}},
        )
    body = status_of(caught.value)
    assert caught.value.status == 404
    assert body["reason"] == "NotFound"
    assert body["message"] == "the server could not find the requested resource"
    assert "name" not in body.get("details", {})


def test_old_cluster_serves_only_v1beta1(tmp_path: Path) -> None:
    with KubeEmulator(eso_versions=("v1beta1",)) as kube:
        assert isinstance(kube, KubeEmulator)
        kube.add_external_secret(NS, "app", remote_key="k")
        with api_client(kube, kube.admin_token, tmp_path) as api:
            custom = client.CustomObjectsApi(api)
            got = custom.get_namespaced_custom_object(
                "external-secrets.io", "v1beta1", NS, "externalsecrets", "app"
            )
            assert got["apiVersion"] == "external-secrets.io/v1beta1"
            with pytest.raises(ApiException) as caught:
                custom.get_namespaced_custom_object(*ESO, NS, "externalsecrets", "app")
            assert status_of(caught.value)["message"] == "the server could not find the requested resource"
            group = client.ApisApi(api).get_api_versions()
            eso = next(g for g in group.groups if g.name == "external-secrets.io")
            assert [v.version for v in eso.versions] == ["v1beta1", "v1alpha1"]
            assert eso.preferred_version.version == "v1beta1"


def test_discovery_lists_served_eso_resources(kube: KubeEmulator, tmp_path: Path) -> None:
    with api_client(kube, kube.admin_token, tmp_path) as api:
        resources = client.CustomObjectsApi(api).get_api_resources("external-secrets.io", "v1")
        core = client.CoreV1Api(api).get_api_resources()
    names = {r.name: r for r in resources.resources}
    assert names["externalsecrets"].kind == "ExternalSecret"
    assert "patch" in names["externalsecrets"].verbs
    assert "externalsecrets/status" in names
    assert {"configmaps", "secrets"} <= {r.name for r in core.resources}


# -- RBAC and authentication ------------------------------------------------------------------------------
def test_patch_with_only_get_granted_is_403_with_the_apiserver_message(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    kube.grant(NS, SA_NS, SA, verbs=["get"], group="external-secrets.io", resource="externalsecrets")
    with api_client(kube, sa_token(kube), tmp_path) as api:
        custom = client.CustomObjectsApi(api)
        assert (
            custom.get_namespaced_custom_object(*ESO, NS, "externalsecrets", "app")["metadata"]["name"]
            == "app"
        )
        with pytest.raises(ApiException) as caught:
            custom.patch_namespaced_custom_object(
                *ESO, NS, "externalsecrets", "app", {"metadata": {"annotations": {"force-sync": "1"}}}
            )
    body = status_of(caught.value)
    assert caught.value.status == 403
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'externalsecrets.external-secrets.io "app" is forbidden: User '
        f'"system:serviceaccount:{SA_NS}:{SA}" cannot patch resource "externalsecrets" in API group '
        f'"external-secrets.io" in the namespace "{NS}"'
    )
    assert body["details"] == {"name": "app", "group": "external-secrets.io", "kind": "externalsecrets"}
    assert kube.annotations("ExternalSecret", NS, "app") == {}


def test_resource_names_restrict_patch_and_never_grant_create_or_unfiltered_list(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    kube.add_external_secret(NS, "other", remote_key="k")
    kube.grant(
        NS,
        SA_NS,
        SA,
        verbs=["get", "list", "patch", "create"],
        group="external-secrets.io",
        resource="externalsecrets",
        resource_names=["app"],
    )
    annotate = {"metadata": {"annotations": {"force-sync": "2"}}}
    with api_client(kube, sa_token(kube), tmp_path) as api:
        custom = client.CustomObjectsApi(api)
        custom.patch_namespaced_custom_object(*ESO, NS, "externalsecrets", "app", annotate)
        with pytest.raises(ApiException) as other:
            custom.patch_namespaced_custom_object(*ESO, NS, "externalsecrets", "other", annotate)
        with pytest.raises(ApiException) as listing:
            custom.list_namespaced_custom_object(*ESO, NS, "externalsecrets")
        only_app = custom.list_namespaced_custom_object(
            *ESO, NS, "externalsecrets", field_selector="metadata.name=app"
        )
        with pytest.raises(ApiException) as create:
            custom.create_namespaced_custom_object(
                *ESO,
                NS,
                "externalsecrets",
                {
                    "apiVersion": "external-secrets.io/v1",
                    "kind": "ExternalSecret",
                    "metadata": {"name": "app2"},
                    "spec": {},
                },
            )
    assert kube.annotations("ExternalSecret", NS, "app") == {"force-sync": "2"}
    assert kube.annotations("ExternalSecret", NS, "other") == {}
    assert (other.value.status, listing.value.status, create.value.status) == (403, 403, 403)
    assert status_of(listing.value)["message"].startswith("externalsecrets.external-secrets.io is forbidden")
    assert [item["metadata"]["name"] for item in only_app["items"]] == ["app"]


def test_rbac_is_per_namespace(kube: KubeEmulator, tmp_path: Path) -> None:
    kube.add_external_secret("elsewhere", "app", remote_key="k")
    kube.grant(NS, SA_NS, SA, verbs=["patch"], group="external-secrets.io", resource="externalsecrets")
    with api_client(kube, sa_token(kube), tmp_path) as api, pytest.raises(ApiException) as caught:
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            *ESO, "elsewhere", "externalsecrets", "app", {"metadata": {"annotations": {"a": "b"}}}
        )
    assert caught.value.status == 403


@pytest.mark.parametrize("token_kind", ["unknown", "expired", "deleted-account", "wrong-audience"])
def test_bad_bearer_tokens_are_401_status(kube: KubeEmulator, tmp_path: Path, token_kind: str) -> None:
    kube.grant(None, SA_NS, SA, verbs=["*"], group="*", resource="*")
    if token_kind == "unknown":
        token = "not-a-token"
    elif token_kind == "expired":
        token = kube.issue_token(SA_NS, SA, issued_at=kube.clock() - 7200, lifetime=3600)
    elif token_kind == "wrong-audience":
        token = kube.issue_token(SA_NS, SA, audiences=["vault"])
    else:
        token = sa_token(kube)
        kube.delete_service_account(SA_NS, SA)
    with api_client(kube, token, tmp_path) as api, pytest.raises(ApiException) as caught:
        client.CustomObjectsApi(api).get_namespaced_custom_object(*ESO, NS, "externalsecrets", "app")
    assert caught.value.status == 401
    body = status_of(caught.value)
    assert (body["reason"], body["message"]) == ("Unauthorized", "Unauthorized")


def test_no_token_is_401(kube: KubeEmulator) -> None:
    response = httpx.get(f"{kube.url}/apis/external-secrets.io/v1/namespaces/{NS}/externalsecrets/app")
    assert response.status_code == 401
    assert response.json()["reason"] == "Unauthorized"


def test_self_subject_access_review_answers_can_i(kube: KubeEmulator, tmp_path: Path) -> None:
    kube.grant(NS, SA_NS, SA, verbs=["patch"], group="external-secrets.io", resource="externalsecrets")

    def can_i(api: client.ApiClient, verb: str) -> bool:
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    namespace=NS,
                    verb=verb,
                    group="external-secrets.io",
                    resource="externalsecrets",
                    name="app",
                )
            )
        )
        return bool(client.AuthorizationV1Api(api).create_self_subject_access_review(review).status.allowed)

    with api_client(kube, sa_token(kube), tmp_path) as api:
        assert can_i(api, "patch")
        assert not can_i(api, "delete")


# -- ConfigMaps and Secrets -----------------------------------------------------------------------------
def test_config_map_create_twice_is_409_already_exists(kube: KubeEmulator, tmp_path: Path) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="catalog"), data={"a": "1"})
    with api_client(kube, kube.admin_token, tmp_path) as api:
        core = client.CoreV1Api(api)
        created = core.create_namespaced_config_map(NS, body)
        with pytest.raises(ApiException) as caught:
            core.create_namespaced_config_map(NS, body)
    assert created.metadata.uid and created.metadata.creation_timestamp is not None
    status = status_of(caught.value)
    assert (caught.value.status, status["reason"]) == (409, "AlreadyExists")
    assert status["message"] == 'configmaps "catalog" already exists'
    assert status["details"] == {"name": "catalog", "kind": "configmaps"}


def test_stale_put_is_409_conflict(kube: KubeEmulator, tmp_path: Path) -> None:
    kube.add_config_map(NS, "catalog", {"a": "1"})
    with api_client(kube, kube.admin_token, tmp_path) as api:
        core = client.CoreV1Api(api)
        mine = core.read_namespaced_config_map("catalog", NS)
        theirs = core.read_namespaced_config_map("catalog", NS)
        theirs.data = {"a": "theirs"}
        core.replace_namespaced_config_map("catalog", NS, theirs)
        mine.data = {"a": "mine"}
        with pytest.raises(ApiException) as caught:
            core.replace_namespaced_config_map("catalog", NS, mine)
    status = status_of(caught.value)
    assert (caught.value.status, status["reason"]) == (409, "Conflict")
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "catalog": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert (kube.get_object("ConfigMap", NS, "catalog") or {})["data"] == {"a": "theirs"}


def test_custom_resource_put_needs_resource_version(kube: KubeEmulator, tmp_path: Path) -> None:
    with api_client(kube, kube.admin_token, tmp_path) as api:
        custom = client.CustomObjectsApi(api)
        current = custom.get_namespaced_custom_object(*ESO, NS, "externalsecrets", "app")
        current["spec"]["refreshInterval"] = "5m"
        replaced = custom.replace_namespaced_custom_object(*ESO, NS, "externalsecrets", "app", current)
        del current["metadata"]["resourceVersion"]
        with pytest.raises(ApiException) as caught:
            custom.replace_namespaced_custom_object(*ESO, NS, "externalsecrets", "app", current)
    assert replaced["metadata"]["generation"] == 2
    assert caught.value.status == 422
    assert status_of(caught.value)["reason"] == "Invalid"


def test_strategic_merge_patch_of_a_config_map_merges_data(kube: KubeEmulator, tmp_path: Path) -> None:
    kube.add_config_map(NS, "catalog", {"a": "1", "b": "2"})
    with api_client(kube, kube.admin_token, tmp_path) as api:
        patched = client.CoreV1Api(api).patch_namespaced_config_map(
            "catalog", NS, {"data": {"b": None, "c": "3"}, "metadata": {"labels": {"team": "x"}}}
        )
    assert patched.data == {"a": "1", "c": "3"}
    assert (kube.get_object("ConfigMap", NS, "catalog") or {})["metadata"]["labels"] == {"team": "x"}
    raw = httpx.patch(
        f"{kube.url}/api/v1/namespaces/{NS}/configmaps/catalog",
        content=b'{"data":{"$patch":"replace","only":"this"}}',
        headers={
            "Authorization": f"Bearer {kube.admin_token}",
            "Content-Type": "application/strategic-merge-patch+json",
        },
    )
    assert raw.status_code == 200
    assert raw.json()["data"] == {"only": "this"}


def test_invalid_annotation_key_and_non_string_value_are_rejected(kube: KubeEmulator, tmp_path: Path) -> None:
    with api_client(kube, kube.admin_token, tmp_path) as api:
        custom = client.CustomObjectsApi(api)
        with pytest.raises(ApiException) as bad_key:
            custom.patch_namespaced_custom_object(
                *ESO, NS, "externalsecrets", "app", {"metadata": {"annotations": {"bad key!": "1"}}}
            )
        with pytest.raises(ApiException) as bad_value:
            custom.patch_namespaced_custom_object(
                *ESO, NS, "externalsecrets", "app", {"metadata": {"annotations": {"force-sync": 1}}}
            )
    assert (bad_key.value.status, status_of(bad_key.value)["reason"]) == (422, "Invalid")
    assert (bad_value.value.status, status_of(bad_value.value)["reason"]) == (400, "BadRequest")
    assert kube.annotations("ExternalSecret", NS, "app") == {}


def test_secrets_keep_base64_data_and_fold_string_data(kube: KubeEmulator, tmp_path: Path) -> None:
    kube.add_secret(NS, "synced", {"client-secret": "s3cr3t"})
    with api_client(kube, kube.admin_token, tmp_path) as api:
        core = client.CoreV1Api(api)
        read = core.read_namespaced_secret("synced", NS)
        core.create_namespaced_secret(
            NS, client.V1Secret(metadata=client.V1ObjectMeta(name="typed"), string_data={"k": "v"})
        )
        core.patch_namespaced_secret("synced", NS, {"stringData": {"extra": "x"}})
        listed = core.list_namespaced_secret(NS)
    assert read.data == {"client-secret": "czNjcjN0"}
    assert kube.secret_data(NS, "typed") == {"k": b"v"}
    assert kube.secret_data(NS, "synced") == {"client-secret": b"s3cr3t", "extra": b"x"}
    assert (kube.get_object("Secret", NS, "typed") or {})["type"] == "Opaque"
    assert {s.metadata.name for s in listed.items} == {"synced", "typed"}


def test_list_carries_resource_version_and_honours_label_selector(kube: KubeEmulator, tmp_path: Path) -> None:
    kube.put_object(
        {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": "labelled", "namespace": NS, "labels": {"owner": "keycloak"}},
            "spec": {},
        }
    )
    with api_client(kube, kube.admin_token, tmp_path) as api:
        custom = client.CustomObjectsApi(api)
        everything = custom.list_namespaced_custom_object(*ESO, NS, "externalsecrets")
        selected = custom.list_namespaced_custom_object(
            *ESO, NS, "externalsecrets", label_selector="owner=keycloak"
        )
        cluster_wide = custom.list_cluster_custom_object(*ESO, "externalsecrets")
    assert everything["kind"] == "ExternalSecretList"
    assert everything["metadata"]["resourceVersion"] == str(kube.resource_version)
    assert [i["metadata"]["name"] for i in everything["items"]] == ["app", "labelled"]
    assert [i["metadata"]["name"] for i in selected["items"]] == ["labelled"]
    assert all(i["kind"] == "ExternalSecret" for i in cluster_wide["items"])


def test_status_subresource_is_separate_from_the_main_resource(kube: KubeEmulator, tmp_path: Path) -> None:
    with api_client(kube, kube.admin_token, tmp_path) as api:
        custom = client.CustomObjectsApi(api)
        custom.patch_namespaced_custom_object(
            *ESO, NS, "externalsecrets", "app", {"status": {"refreshTime": "x"}}
        )
        assert "status" not in (kube.get_object("ExternalSecret", NS, "app") or {})
        custom.patch_namespaced_custom_object_status(
            *ESO, NS, "externalsecrets", "app", {"status": {"refreshTime": "2026-01-01T00:00:00Z"}}
        )
    stored = kube.get_object("ExternalSecret", NS, "app") or {}
    assert stored["status"] == {"refreshTime": "2026-01-01T00:00:00Z"}
    assert stored["metadata"]["generation"] == 1


def test_push_secrets_are_served_as_v1alpha1(kube: KubeEmulator, tmp_path: Path) -> None:
    kube.add_push_secret(NS, "push", secret_name="src", remote_key="app/pushed")
    with api_client(kube, kube.admin_token, tmp_path) as api:
        custom = client.CustomObjectsApi(api)
        got = custom.get_namespaced_custom_object(
            "external-secrets.io", "v1alpha1", NS, "pushsecrets", "push"
        )
        created = custom.create_namespaced_custom_object(
            "external-secrets.io",
            "v1alpha1",
            NS,
            "pushsecrets",
            {
                "apiVersion": "external-secrets.io/v1alpha1",
                "kind": "PushSecret",
                "metadata": {"name": "p2"},
                "spec": {},
            },
        )
        listed = custom.list_namespaced_custom_object("external-secrets.io", "v1alpha1", NS, "pushsecrets")
    assert got["spec"]["data"][0]["match"]["remoteRef"]["remoteKey"] == "app/pushed"
    assert created["metadata"]["generation"] == 1
    assert [i["metadata"]["name"] for i in listed["items"]] == ["p2", "push"]


def test_injected_faults_are_status_objects_with_retry_after(kube: KubeEmulator, tmp_path: Path) -> None:
    annotate = {"metadata": {"annotations": {"force-sync": "1"}}}
    kube.fail_next(1, 429, retry_after=3, path_prefix="/apis/external-secrets.io")
    with api_client(kube, kube.admin_token, tmp_path) as api:
        custom = client.CustomObjectsApi(api)
        with pytest.raises(ApiException) as throttled:  # PATCH is never retried by the client
            custom.patch_namespaced_custom_object(*ESO, NS, "externalsecrets", "app", annotate)
        kube.fail_next(1, 503, path_prefix="/apis/external-secrets.io")
        with pytest.raises(ApiException) as unavailable:
            custom.get_namespaced_custom_object(*ESO, NS, "externalsecrets", "app")
        # urllib3 (under the client) retries a GET answered 429/503 *with* Retry-After by itself.
        kube.fail_next(1, 429, retry_after=0, path_prefix="/apis/external-secrets.io")
        kube.reset_requests()
        assert (
            custom.get_namespaced_custom_object(*ESO, NS, "externalsecrets", "app")["metadata"]["name"]
            == "app"
        )
        assert kube.count(lambda method, _: method == "GET") == 2
    body = status_of(throttled.value)
    assert (body["reason"], body["details"]["retryAfterSeconds"]) == ("TooManyRequests", 3)
    assert throttled.value.headers["Retry-After"] == "3"
    assert status_of(unavailable.value)["reason"] == "ServiceUnavailable"
    assert kube.annotations("ExternalSecret", NS, "app") == {}


# -- TokenReview ---------------------------------------------------------------------------------------
def test_token_review_through_the_python_client(kube: KubeEmulator, tmp_path: Path) -> None:
    kube.add_service_account("vault", "reviewer")
    kube.allow_token_review("vault", "reviewer")
    uid = kube.add_service_account(NS, "app-reader")
    token = kube.issue_token(NS, "app-reader", audiences=["vault"])

    def review(candidate: str, audiences: list[str] | None) -> client.V1TokenReviewStatus:
        body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=candidate, audiences=audiences))
        return client.AuthenticationV1Api(api).create_token_review(body).status

    with api_client(kube, kube.issue_token("vault", "reviewer"), tmp_path) as api:
        good = review(token, ["vault"])
        wrong_audience = review(token, None)  # defaults to the apiserver's audience
        garbage = review("garbage", ["vault"])
    assert good.authenticated is True
    assert good.audiences == ["vault"]
    assert good.user.username == f"system:serviceaccount:{NS}:app-reader"
    assert good.user.uid == uid
    assert f"system:serviceaccounts:{NS}" in good.user.groups
    assert "authentication.kubernetes.io/pod-name" in good.user.extra
    for failed in (wrong_audience, garbage):
        assert not failed.authenticated
        assert failed.error


def test_token_review_needs_create_permission(kube: KubeEmulator, tmp_path: Path) -> None:
    body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=sa_token(kube)))
    with api_client(kube, sa_token(kube), tmp_path) as api, pytest.raises(ApiException) as caught:
        client.AuthenticationV1Api(api).create_token_review(body)
    assert caught.value.status == 403
    assert status_of(caught.value)["message"] == (
        f'tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:{SA_NS}:{SA}" '
        'cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope'
    )


def test_token_review_accepts_vaults_body_without_type_fields(kube: KubeEmulator) -> None:
    kube.allow_token_review(SA_NS, SA)
    token = sa_token(kube)
    response = httpx.post(
        f"{kube.url}/apis/authentication.k8s.io/v1/tokenreviews",
        content=json.dumps(
            {
                "metadata": {"creationTimestamp": None},
                "spec": {"token": token, "audiences": ["https://kubernetes.default.svc"]},
                "status": {"user": {}},
            }
        ),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    review = response.json()
    assert (review["kind"], review["apiVersion"]) == ("TokenReview", "authentication.k8s.io/v1")
    assert isinstance(review["status"], dict)
    assert review["status"]["authenticated"] is True
    assert review["status"]["audiences"] == ["https://kubernetes.default.svc"]


# -- Vault/OpenBao Kubernetes auth end to end -----------------------------------------------------------
def _kubernetes_auth(
    openbao: OpenBao, kube: KubeEmulator, *, reviewer_jwt: str | None, audience: str | None
) -> tuple[str, str]:
    mount = f"k8s-{uuid.uuid4().hex[:8]}"
    root = openbao.client()
    root.sys.enable_auth_method("kubernetes", path=mount)
    ca = kube.ca_pem_path.read_text() if kube.ca_pem_path else None
    # OpenBao's config write needs a CA: kubernetes_ca_cert, or the pod's own ca.crt unless
    # disable_local_ca_jwt, so the emulator runs with TLS for these tests.
    root.auth.kubernetes.configure(
        kube.url,
        kubernetes_ca_cert=ca,
        token_reviewer_jwt=reviewer_jwt,
        mount_point=mount,
        disable_local_ca_jwt=True,
    )
    openbao.write_policy(f"{mount}-read", 'path "secret/data/app/*" { capabilities = ["read"] }')
    root.auth.kubernetes.create_role(
        "client-patcher",
        [SA],
        [SA_NS],
        policies=[f"{mount}-read"],
        ttl="10m",
        audience=audience,
        mount_point=mount,
    )
    return mount, "client-patcher"


def test_openbao_kubernetes_login_with_a_reviewer_jwt_over_tls(openbao: OpenBao) -> None:
    with KubeEmulator(tls=True) as kube:
        assert isinstance(kube, KubeEmulator)
        kube.add_service_account("vault", "token-reviewer")
        kube.allow_token_review("vault", "token-reviewer")
        sa_uid = kube.add_service_account(SA_NS, SA)
        kube.add_service_account(SA_NS, "intruder")
        mount, role = _kubernetes_auth(
            openbao, kube, reviewer_jwt=kube.issue_token("vault", "token-reviewer"), audience="vault"
        )
        bao = hvac.Client(url=openbao.addr)
        login = bao.auth.kubernetes.login(
            role, kube.issue_token(SA_NS, SA, audiences=["vault"]), mount_point=mount
        )
        assert login["auth"]["metadata"]["service_account_name"] == SA
        assert login["auth"]["metadata"]["service_account_namespace"] == SA_NS
        assert login["auth"]["metadata"]["service_account_uid"] == sa_uid
        assert f"{mount}-read" in login["auth"]["policies"]
        assert bao.token == login["auth"]["client_token"]
        assert kube.count(lambda m, p: m == "POST" and p.endswith("/tokenreviews")) >= 1

        refused = [
            kube.issue_token(SA_NS, "intruder", audiences=["vault"]),
            kube.issue_token(SA_NS, SA, audiences=["vault"], issued_at=kube.clock() - 7200, lifetime=3600),
            kube.issue_token(SA_NS, SA, audiences=["https://kubernetes.default.svc"]),
        ]
        for jwt in refused:
            with pytest.raises(hvac.exceptions.Forbidden):
                hvac.Client(url=openbao.addr).auth.kubernetes.login(role, jwt, mount_point=mount)


def test_openbao_kubernetes_login_reviews_with_the_clients_own_jwt(openbao: OpenBao) -> None:
    with KubeEmulator(tls=True) as kube:
        assert isinstance(kube, KubeEmulator)
        kube.add_service_account(SA_NS, SA)
        _login_with_the_clients_own_jwt(openbao, kube)


def _login_with_the_clients_own_jwt(openbao: OpenBao, kube: KubeEmulator) -> None:
    mount, role = _kubernetes_auth(openbao, kube, reviewer_jwt=None, audience=None)
    jwt = sa_token(kube)
    # Without system:auth-delegator the client's own token may not create TokenReviews.
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=openbao.addr).auth.kubernetes.login(role, jwt, mount_point=mount)
    kube.allow_token_review(SA_NS, SA)
    login = hvac.Client(url=openbao.addr).auth.kubernetes.login(role, jwt, mount_point=mount)
    assert login["auth"]["metadata"]["service_account_name"] == SA
    # A deleted and re-created account has a new uid: its old token no longer passes TokenReview.
    kube.delete_service_account(SA_NS, SA)
    kube.add_service_account(SA_NS, SA)
    kube.allow_token_review(SA_NS, SA)
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=openbao.addr).auth.kubernetes.login(role, jwt, mount_point=mount)


# -- standalone mode -----------------------------------------------------------------------------------
def test_standalone_mode_seeds_accounts_objects_and_writes_kubeconfigs(tmp_path: Path) -> None:
    seed = {
        "serviceAccounts": [
            {
                "namespace": SA_NS,
                "name": SA,
                "tokenReview": True,
                "grants": [
                    {
                        "namespace": NS,
                        "verbs": ["get", "patch"],
                        "group": "external-secrets.io",
                        "resource": "externalsecrets",
                        "resourceNames": ["app"],
                    }
                ],
            }
        ],
        "objects": [
            {
                "apiVersion": "external-secrets.io/v1",
                "kind": "ExternalSecret",
                "metadata": {"name": "app", "namespace": NS},
                "spec": {"refreshInterval": "1h", "refreshPolicy": "OnChange"},
            }
        ],
    }
    seed_path = tmp_path / "seed.yaml"
    seed_path.write_text(yaml.safe_dump(seed))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.kube",
            "--port",
            "0",
            "--seed",
            str(seed_path),
            "--out",
            str(out),
            "--tls",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        summary = json.loads(process.stdout.readline())
        account_dir = Path(summary["serviceAccounts"][f"{SA_NS}/{SA}"])
        assert (account_dir / "namespace").read_text() == SA_NS
        assert (account_dir / "ca.crt").exists()
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(account_dir / "kubeconfig"), client_configuration=configuration
        )
        with client.ApiClient(configuration) as api:
            patched = client.CustomObjectsApi(api).patch_namespaced_custom_object(
                *ESO, NS, "externalsecrets", "app", {"metadata": {"annotations": {"force-sync": "1"}}}
            )
        assert patched["metadata"]["annotations"] == {"force-sync": "1"}
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _wait_for(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not predicate() and time.monotonic() < end:
        time.sleep(0.02)
    assert predicate()


def _annotate(kube: KubeEmulator, name: str, value: str) -> None:
    obj = kube.get_object("ExternalSecret", "apps", name)
    assert obj is not None
    obj["metadata"]["annotations"] = {"force-sync": value}
    kube.put_object(obj)


def _status(kube: KubeEmulator, name: str) -> dict[str, Any]:
    obj = kube.get_object("ExternalSecret", "apps", name)
    assert obj is not None
    return dict(obj.get("status") or {})


def test_eso_reconciler_is_off_by_default_and_syncs_on_a_force_sync_change(kube: KubeEmulator) -> None:
    kube.add_external_secret("apps", "off", remote_key="kv/app")
    _annotate(kube, "off", "1")
    time.sleep(0.2)
    assert kube.secret_data("apps", "off") is None and _status(kube, "off") == {}

    values = {"kv/app": {"value": "v-one"}}
    eso = kube.enable_eso_reconciler(values.get, delay=0.01)
    kube.add_external_secret("apps", "app", remote_key="kv/app", target="app-secret")
    _annotate(kube, "app", "v1")
    _wait_for(lambda: kube.secret_data("apps", "app-secret") == {"value": b"v-one"})
    first = _status(kube, "app")
    generation = kube.get_object("ExternalSecret", "apps", "app")["metadata"]["generation"]  # type: ignore[index]
    assert first["syncedResourceVersion"].startswith(f"{generation}-") and first["refreshTime"].endswith("Z")
    ready = [(c["type"], c["status"], c["reason"]) for c in first["conditions"]]
    assert ready == [("Ready", "True", "SecretSynced")]

    # stale: refreshed (a new synced version), but the Secret keeps the old value
    values["kv/app"] = {"value": "v-two"}
    eso.fault("apps", "app", "stale")
    _annotate(kube, "app", "v2")
    _wait_for(lambda: _status(kube, "app")["syncedResourceVersion"] != first["syncedResourceVersion"])
    assert kube.secret_data("apps", "app-secret") == {"value": b"v-one"}

    # error: Ready=False with the message; syncedResourceVersion and refreshTime are kept
    eso.mode, eso.error_message = "error", "could not get secret data from provider"
    synced = _status(kube, "app")["syncedResourceVersion"]
    _annotate(kube, "app", "v3")
    _wait_for(lambda: _status(kube, "app")["conditions"][0]["status"] == "False")
    status = _status(kube, "app")
    assert status["syncedResourceVersion"] == synced
    assert status["conditions"][0]["message"] == "could not get secret data from provider"

    # never: no refresh at all; every value is in the history
    eso.mode = "never"
    _annotate(kube, "app", "v4")
    time.sleep(0.2)
    assert _status(kube, "app") == status
    assert eso.history("apps", "app") == ["v1", "v2", "v3", "v4"]


def test_standalone_mode_with_eso_vault_refreshes_consumers_from_openbao(
    tmp_path: Path, openbao: OpenBao
) -> None:
    # What docker-compose.test.yml runs, so client-patcher's consumer verification sees ESO refresh.
    mount = openbao.new_kv_mount()
    openbao.client().secrets.kv.v2.create_or_update_secret(
        path="app", secret={"value": "from-openbao"}, mount_point=mount
    )
    spec = {
        "refreshPolicy": "OnChange",
        "target": {"name": "app-secret"},
        "data": [{"secretKey": "value", "remoteRef": {"key": f"{mount}/app", "property": "value"}}],
    }
    seed = {
        "objects": [
            {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", **_meta("app"), "spec": spec},
            {
                "apiVersion": "external-secrets.io/v1",
                "kind": "ExternalSecret",
                **_meta("gone"),
                "spec": {**spec, "data": [{"secretKey": "value", "remoteRef": {"key": f"{mount}/missing"}}]},
            },
        ]
    }
    seed_path = tmp_path / "seed.yaml"
    seed_path.write_text(yaml.safe_dump(seed))
    command = [sys.executable, "-m", "emulators.kube", "--port", "0", "--seed", str(seed_path)]
    command += ["--out", str(tmp_path / "out"), "--eso-vault", openbao.addr]
    root = Path(__file__).resolve().parents[2]
    refused = subprocess.run(command, capture_output=True, text=True, cwd=root, timeout=30, check=False)
    assert refused.returncode == 2 and "ESO_VAULT_TOKEN" in refused.stderr  # never a token argument
    env = {"PATH": "/usr/bin:/bin", "ESO_VAULT_TOKEN": openbao.root_token}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=root, env=env)
    try:
        assert process.stdout is not None
        summary = json.loads(process.stdout.readline())
        configuration = client.Configuration()
        config.load_kube_config(config_file=summary["kubeconfig"], client_configuration=configuration)
        with client.ApiClient(configuration) as api:
            custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
            for name in ("app", "gone"):
                body = {"metadata": {"annotations": {"force-sync": "v1"}}}
                custom.patch_namespaced_custom_object(*ESO, NS, "externalsecrets", name, body)

            def ready(name: str) -> list[tuple[str, str]]:
                status = custom.get_namespaced_custom_object(*ESO, NS, "externalsecrets", name).get("status")
                return [(c["status"], c["reason"]) for c in (status or {}).get("conditions", [])]

            _wait_for(lambda: ready("app") == [("True", "SecretSynced")] and bool(ready("gone")))
            secret = core.read_namespaced_secret("app-secret", NS)
            assert secret.data == {"value": "ZnJvbS1vcGVuYmFv"}  # base64 of the value in OpenBao
            assert ready("gone") == [("False", "SecretSyncedError")]  # a missing key is ESO's error
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _meta(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS}}
