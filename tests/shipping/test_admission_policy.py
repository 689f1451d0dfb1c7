"""The chart's ValidatingAdmissionPolicy: client-patcher's ServiceAccount may change only the
`force-sync` annotation of an ExternalSecret. The rendered objects are validated against the Kubernetes
schemas, and their CEL expressions are evaluated (cel-python, a pure-Python CEL implementation) against
allowed and forbidden patches, as the API server would: matchConditions, then variables, then every
validation."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import celpy
import kubernetes_validate
import pytest

from tests.shipping.conftest import CHART, CI_VALUES, NAMESPACE, RELEASE, Rendered, load_values, render

VALUES = next(p for p in CI_VALUES if p.name == "cronjob-values.yaml")
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:{RELEASE}-secret-origin-client-patcher"
ESO_CONTROLLER = "system:serviceaccount:external-secrets:external-secrets"


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    return render(load_values(VALUES))


def external_secret(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "www-auth", "namespace": "ameide-dev", "labels": {"app": "www"}}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": metadata,
        "spec": {
            "refreshPolicy": "OnChange",
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault"},
            "target": {"name": "www-auth"},
            "data": [{"secretKey": "secret", "remoteRef": {"key": "www-client-secret", "property": "value"}}],
        },
    }


Admit = Callable[[dict[str, Any], dict[str, Any], str], list[str]]


@pytest.fixture(scope="module")
def admit(rendered: Rendered) -> Admit:
    """The denial messages of the rendered policy for an UPDATE by `user` (empty = admitted)."""
    (policy,) = rendered.of_kind("ValidatingAdmissionPolicy")
    spec = policy["spec"]
    env = celpy.Environment()

    def program(expression: str) -> Any:
        return env.program(env.compile(expression))

    conditions = [program(c["expression"]) for c in spec["matchConditions"]]
    variables = [(v["name"], program(v["expression"])) for v in spec["variables"]]
    validations = [(program(v["expression"]), v["message"]) for v in spec["validations"]]

    def run(old: dict[str, Any], new: dict[str, Any], user: str) -> list[str]:
        activation: dict[str, Any] = {
            "object": celpy.json_to_cel(new),
            "oldObject": celpy.json_to_cel(old),
            "request": celpy.json_to_cel({"operation": "UPDATE", "userInfo": {"username": user}}),
        }
        if not all(bool(c.evaluate(activation)) for c in conditions):
            return []
        activation["variables"] = celpy.celtypes.MapType(
            {celpy.celtypes.StringType(name): p.evaluate(activation) for name, p in variables}
        )
        return [message for p, message in validations if not bool(p.evaluate(activation))]

    return run


def test_policy_and_binding_are_valid_kubernetes_and_bound_with_deny(rendered: Rendered) -> None:
    (policy,) = rendered.of_kind("ValidatingAdmissionPolicy")
    (binding,) = rendered.of_kind("ValidatingAdmissionPolicyBinding")
    for obj in (policy, binding):
        assert obj["apiVersion"] == "admissionregistration.k8s.io/v1"
        kubernetes_validate.validate(obj, "1.30", strict=True)
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert policy["spec"]["failurePolicy"] == "Fail"
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["apiGroups"], rule["resources"], rule["operations"]) == (
        ["external-secrets.io"],
        ["externalsecrets"],
        ["UPDATE"],
    )
    assert SERVICE_ACCOUNT in policy["spec"]["matchConditions"][0]["expression"]


@pytest.mark.parametrize(
    ("old_annotations", "new_annotations"),
    [
        (None, {"force-sync": "v1"}),  # the first refresh request
        ({"force-sync": "v1", "team": "web"}, {"force-sync": "v2", "team": "web"}),
        ({"team": "web"}, {"team": "web", "force-sync": "v3"}),
    ],
)
def test_changing_only_force_sync_is_admitted(
    admit: Admit, old_annotations: dict[str, str] | None, new_annotations: dict[str, str]
) -> None:
    assert admit(external_secret(old_annotations), external_secret(new_annotations), SERVICE_ACCOUNT) == []


def _retarget(es: dict[str, Any]) -> None:
    es["spec"]["target"]["name"] = "kube-system-admin"


def _redirect(es: dict[str, Any]) -> None:
    es["spec"]["data"][0]["remoteRef"]["key"] = "another-apps-secret"


def _annotate(es: dict[str, Any]) -> None:
    es["metadata"]["annotations"]["team"] = "mine"


def _unannotate(es: dict[str, Any]) -> None:
    del es["metadata"]["annotations"]["team"]


def _relabel(es: dict[str, Any]) -> None:
    es["metadata"]["labels"]["app"] = "other"


def _finalize(es: dict[str, Any]) -> None:
    es["metadata"]["finalizers"] = ["example.com/hold"]


@pytest.mark.parametrize("change", [_retarget, _redirect, _annotate, _unannotate, _relabel, _finalize])
def test_any_other_change_by_client_patcher_is_denied(
    admit: Admit, change: Callable[[dict[str, Any]], None]
) -> None:
    old = external_secret({"force-sync": "v1", "team": "web"})
    new = copy.deepcopy(old)
    new["metadata"]["annotations"]["force-sync"] = "v2"
    change(new)
    denied = admit(old, new, SERVICE_ACCOUNT)
    assert denied and all("client-patcher may change only the force-sync annotation" in m for m in denied)


def test_other_identities_are_not_matched(admit: Admit) -> None:
    old = external_secret({"force-sync": "v1"})
    new = copy.deepcopy(old)
    _retarget(new)
    assert admit(old, new, ESO_CONTROLLER) == []
    assert admit(old, new, SERVICE_ACCOUNT)


def test_can_be_turned_off() -> None:
    values = load_values(VALUES)
    values.setdefault("clientPatcher", {}).setdefault("rbac", {})["admissionPolicy"] = False
    off = render(values)
    assert off.of_kind("ValidatingAdmissionPolicy") == []
    assert off.of_kind("ValidatingAdmissionPolicyBinding") == []
    assert "admissionPolicy" in (CHART / "values.schema.json").read_text(encoding="utf-8")
