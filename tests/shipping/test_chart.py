"""charts/secret-origin rendered with real Helm for every supported mode (ci/*-values.yaml) and the
example values; every object validated against the Kubernetes OpenAPI schemas (strict)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from jobs.core.catalog import Catalog, SecretEntry, parse_catalog
from tests.shipping.conftest import (
    CHART,
    CI_VALUES,
    EXAMPLE_VALUES,
    NAMESPACE,
    RELEASE,
    Rendered,
    load_values,
    render,
)

VALUE_FILES = [*CI_VALUES, EXAMPLE_VALUES]
IDS = [p.name for p in VALUE_FILES]
# The newest schema kubernetes-validate ships, and the oldest Kubernetes the chart declares.
KUBE_VERSIONS = (kubernetes_validate.latest_version(), "1.30")
HOOK_TYPES = {"helm", "argocd"}
# Helm's default `--timeout` (5m): a hook Job must give up before Helm does.
HELM_DEFAULT_TIMEOUT = 300


@pytest.fixture(scope="module", params=VALUE_FILES, ids=IDS)
def mode(request: pytest.FixtureRequest) -> tuple[dict[str, Any], Rendered]:
    values = load_values(request.param)
    return values, render(values)


def component_of(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def job_values(values: dict[str, Any], component: str) -> dict[str, Any]:
    key = {"vault-bootstrap": "vaultBootstrap", "client-patcher": "clientPatcher"}[component]
    return {**load_values(CHART / "values.yaml")[key], **values.get(key, {})}


def merged(values: dict[str, Any]) -> dict[str, Any]:
    with helm.Chart.load(CHART) as chart:
        return chart.merge_values(values)


def catalog_of(values: dict[str, Any]) -> dict[str, Any] | None:
    """The catalog the values carry: a mapping, or the YAML text `--set-file` gives; None when it
    lives in an existing ConfigMap."""
    catalog = values.get("catalog")
    if isinstance(catalog, str):
        parsed = yaml.safe_load(catalog)
        assert isinstance(parsed, dict)
        return parsed
    return catalog or None


def test_ci_values_cover_every_mode() -> None:
    names = {p.name for p in CI_VALUES}
    assert {
        "cronjob-values.yaml",
        "helm-hook-values.yaml",
        "argocd-hook-values.yaml",
        "set-file-values.yaml",
        "existing-catalog-values.yaml",
        "habits-values.yaml",
    } <= names
    hooks = {
        merged(load_values(p))[key]["hook"]["type"]
        for p in CI_VALUES
        for key in ("vaultBootstrap", "clientPatcher")
    }
    assert hooks == {"none", "helm", "argocd"}


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_object_is_valid_kubernetes(mode: tuple[dict[str, Any], Rendered], version: str) -> None:
    _, rendered = mode
    assert rendered.objects
    for obj in rendered.objects:
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("path", VALUE_FILES, ids=IDS)
def test_helm_lint_strict_is_clean(path: Path) -> None:
    report = helm.lint(CHART, load_values(path), strict=True, namespace=NAMESPACE, kube_version="v1.33.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [] and report["errors"] == []


def test_defaults_alone_name_exactly_the_required_values() -> None:
    report = helm.lint(CHART)
    text = "\n".join(report["errors"])
    assert (
        "/catalog" in text
        and "/vault/addr" in text
        and "/vaultBootstrap/azureWorkloadIdentity/clientId" in text
    )
    assert {m["path"] for m in report["messages"] if m["severity"] == 3} <= {"values.yaml", "templates/"}


def test_rendered_catalog_is_a_valid_catalog_equal_to_the_values(
    mode: tuple[dict[str, Any], Rendered],
) -> None:
    values, rendered = mode
    existing = values.get("existingCatalog", {}).get("configMapName")
    for owner, template in rendered.pod_templates():
        volume = next(v for v in template["spec"]["volumes"] if v["name"] == "catalog")
        mount = next(m for m in template["spec"]["containers"][0]["volumeMounts"] if m["name"] == "catalog")
        expected = (existing, values["existingCatalog"]["key"]) if existing else (None, "catalog.yaml")
        if existing:
            assert (volume["configMap"]["name"], mount["subPath"]) == expected, owner
        else:
            assert mount["subPath"] == "catalog.yaml", owner
    if existing:
        assert rendered.of_kind("ConfigMap") == [], "an existing catalog is not copied"
        return
    (config_map,) = rendered.of_kind("ConfigMap")
    text = config_map["data"]["catalog.yaml"]
    catalog = parse_catalog(text, "configmap")
    if isinstance(values["catalog"], str):
        assert text == values["catalog"], "a --set-file catalog is kept verbatim (its line numbers too)"
    else:
        assert catalog.model_dump() == parse_catalog(_dump(values["catalog"]), "values").model_dump()


def test_pods_are_locked_down(mode: tuple[dict[str, Any], Rendered]) -> None:
    values, rendered = mode
    for owner, template in rendered.pod_templates():
        spec = template["spec"]
        assert spec["automountServiceAccountToken"] is False, owner
        assert spec["restartPolicy"] == "Never", owner
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] > 0, owner
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, owner
        (container,) = spec["containers"]
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, owner
        assert sc["allowPrivilegeEscalation"] is False, owner
        assert sc["privileged"] is False, owner
        assert sc["capabilities"] == {"drop": ["ALL"]}, owner  # re-imposed, whatever was merged
        assert "requests" in container["resources"] and "limits" in container["resources"], owner
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]], owner
        # writable: /tmp, and the metrics textfile's directory when the chart mounts an emptyDir there
        textfile = values.get("metrics", {}).get("textfile", {})
        writable = {path for path, m in mounts.items() if not m.get("readOnly")}
        assert writable <= {"/tmp", textfile.get("directory")}, owner
        assert all("emptyDir" in volumes[mounts[path]["name"]] for path in writable), owner
        for volume in volumes.values():
            assert "hostPath" not in volume and "secret" not in volume, owner
        assert "add" not in sc["capabilities"] and sc["runAsNonRoot"] is True, owner


def test_service_account_tokens_only_where_needed(mode: tuple[dict[str, Any], Rendered]) -> None:
    values, rendered = mode
    vault_auth = merged(values)["vault"]["kubernetesAuth"]
    for owner, template in rendered.pod_templates():
        component = component_of(template)
        spec = template["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        token_sources = [
            s["serviceAccountToken"]
            for v in volumes.values()
            for s in v.get("projected", {}).get("sources", [])
            if "serviceAccountToken" in s
        ]
        api_path = "/var/run/secrets/kubernetes.io/serviceaccount"
        if component == "client-patcher":
            # It patches ExternalSecrets: the in-cluster API credentials, explicitly.
            sources = volumes[mounts[api_path]]["projected"]["sources"]
            assert {next(iter(s)) for s in sources} == {"serviceAccountToken", "configMap", "downwardAPI"}
        else:
            assert api_path not in mounts, f"{owner} does not talk to the Kubernetes API"
        if vault_auth["enabled"]:
            vault_token = volumes[mounts["/var/run/secrets/vault"]]["projected"]["sources"][0]
            assert vault_token["serviceAccountToken"].get("audience", "") == vault_auth["tokenAudience"]
            assert env["VAULT_K8S_TOKEN_PATH"] == "/var/run/secrets/vault/token"
            assert env["VAULT_AUTH_ROLE"] == job_values(values, component)["vaultRole"]
            assert env["VAULT_AUTH_MOUNT"] == vault_auth["mount"]
        assert len(token_sources) == (component == "client-patcher") + bool(vault_auth["enabled"]), owner


def test_jobs_fail_fast_on_exit_2_and_stop_before_their_deadline(
    mode: tuple[dict[str, Any], Rendered],
) -> None:
    _, rendered = mode
    for owner, spec in rendered.job_specs():
        container = spec["template"]["spec"]["containers"][0]
        rule = spec["podFailurePolicy"]["rules"][0]
        assert rule == {
            "action": "FailJob",
            "onExitCodes": {"containerName": container["name"], "operator": "In", "values": [2]},
        }, owner
        args = container["args"]
        deadline = float(args[args.index("--deadline") + 1])
        assert 30 <= deadline < spec["activeDeadlineSeconds"], owner
        assert spec["backoffLimit"] >= 0, owner


def test_entrypoint_env_names_the_catalog_and_vault(mode: tuple[dict[str, Any], Rendered]) -> None:
    values, rendered = mode
    for owner, template in rendered.pod_templates():
        container = template["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["SECRET_CATALOG"]["value"] == "/etc/secret-origin/catalog.yaml", owner
        assert env["VAULT_ADDR"]["value"] == values["vault"]["addr"], owner
        catalog_mount = next(m for m in container["volumeMounts"] if m["name"] == "catalog")
        assert catalog_mount["mountPath"] == env["SECRET_CATALOG"]["value"], owner
        for item in container.get("envFrom", []):
            assert set(item) <= {"secretRef", "configMapRef", "prefix"}, owner
        for name, item in env.items():
            if re.search(r"(SECRET|PASSWORD|TOKEN|_KEY)$", name):
                assert "value" not in item and "secretKeyRef" in item["valueFrom"], f"{owner}: {name} inline"


def test_cronjobs(mode: tuple[dict[str, Any], Rendered]) -> None:
    values, rendered = mode
    full = merged(values)
    crons = {component_of(c): c for c in rendered.of_kind("CronJob")}
    for key, component in (("vaultBootstrap", "vault-bootstrap"), ("clientPatcher", "client-patcher")):
        job = full[key]
        # A hook always comes with its CronJob: the rerun path in every mode.
        wanted = job["enabled"] and (job["cronjob"]["enabled"] or job["hook"]["type"] != "none")
        assert (component in crons) == wanted, component
    for cron in rendered.of_kind("CronJob"):
        component = component_of(cron)
        expected = full[_key(component)]["cronjob"]
        rerun_only = not expected["enabled"]
        spec = cron["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        # Always rendered, so GitOps reconciles it; suspended when it only serves reruns of a hook.
        assert spec["suspend"] is (expected["suspend"] or rerun_only)
        assert spec["schedule"] == expected["schedule"]
        assert spec["startingDeadlineSeconds"] == expected["startingDeadlineSeconds"]
        assert spec["successfulJobsHistoryLimit"] == expected["successfulJobsHistoryLimit"]
        assert spec["failedJobsHistoryLimit"] == expected["failedJobsHistoryLimit"]
        assert spec.get("timeZone", "") == expected["timeZone"]
        ttl = job_values(values, component)["job"].get("ttlSecondsAfterFinished", 86400)
        assert spec["jobTemplate"]["spec"].get("ttlSecondsAfterFinished") == ttl
        # `kubectl create job --from=cronjob/...` copies the jobTemplate labels: keep them identifying.
        assert spec["jobTemplate"]["metadata"]["labels"]["app.kubernetes.io/component"] == component


def test_history_limits_of_zero_are_rendered() -> None:
    rendered = render(load_values(CHART / "ci" / "production-values.yaml"))
    for cron in rendered.of_kind("CronJob"):
        assert cron["spec"]["successfulJobsHistoryLimit"] == 0
        assert cron["spec"]["failedJobsHistoryLimit"] == 0
    bootstrap = rendered.named("CronJob", f"{RELEASE}-secret-origin-vault-bootstrap")
    assert "ttlSecondsAfterFinished" not in bootstrap["spec"]["jobTemplate"]["spec"]  # null = keep


def test_hooks(mode: tuple[dict[str, Any], Rendered]) -> None:
    values, rendered = mode
    full = merged(values)
    jobs = {component_of(j): j for j in rendered.of_kind("Job")}
    for key, component in (("vaultBootstrap", "vault-bootstrap"), ("clientPatcher", "client-patcher")):
        hook = full[key]["hook"]
        if not full[key]["enabled"] or hook["type"] == "none":
            assert component not in jobs
            continue
        job = jobs[component]
        annotations = {
            k: v for k, v in job["metadata"]["annotations"].items() if k not in full["commonAnnotations"]
        }
        assert "ttlSecondsAfterFinished" not in job["spec"], "hooks are cleaned up by their delete policy"
        deadline = job["spec"]["activeDeadlineSeconds"]
        assert deadline == hook["activeDeadlineSeconds"] < HELM_DEFAULT_TIMEOUT, component
        if hook["type"] == "helm":
            assert annotations == {
                "helm.sh/hook": "post-install,post-upgrade",
                "helm.sh/hook-weight": hook["weight"],
                "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded",
            }
        else:
            assert annotations == {
                "argocd.argoproj.io/hook": "PostSync",
                "argocd.argoproj.io/sync-wave": hook["weight"],
                "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation,HookSucceeded,HookFailed",
            }


def test_helm_and_argocd_hooks_cannot_be_mixed() -> None:
    values = load_values(CHART / "ci" / "argocd-hook-values.yaml")
    values["vaultBootstrap"]["hook"] = {"type": "helm"}
    with pytest.raises(helm.HelmRenderError, match="must not mix helm and argocd"):
        render(values)


def test_rbac_is_get_and_patch_on_the_named_external_secrets_list_in_their_namespaces_and_create_events(
    mode: tuple[dict[str, Any], Rendered],
) -> None:
    values, rendered = mode
    catalog = catalog_of(values)
    expected = _consumers_by_namespace(parse_catalog(_dump(catalog), "values").secrets if catalog else ())
    for consumer in values.get("clientPatcher", {}).get("rbac", {}).get("consumers", []):
        expected.setdefault(consumer["namespace"], set()).add(consumer["name"])
    assert not rendered.of_kind("ClusterRole") and not rendered.of_kind("ClusterRoleBinding")
    roles = {r["metadata"]["namespace"]: r for r in rendered.of_kind("Role")}
    assert set(roles) == set(expected)
    patcher = values.get("clientPatcher", {})
    verify = patcher.get("verifyConsumers", True)
    events = patcher.get("events", {}).get("enabled", True)
    targets: dict[str, set[str]] = {ns: set(names) for ns, names in expected.items()}
    for secret in patcher.get("rbac", {}).get("targetSecrets", []):
        targets.setdefault(secret["namespace"], set()).add(secret["name"])
    for namespace, role in roles.items():
        named, listing, *more = role["rules"]
        for rule in (named, listing):
            assert rule["apiGroups"] == ["external-secrets.io"]
            assert rule["resources"] == ["externalsecrets"]
        assert named["verbs"] == ["get", "patch"]
        assert named["resourceNames"] == sorted(expected[namespace])
        assert listing == {  # list cannot be limited by resourceNames: nothing else rides on it
            "apiGroups": ["external-secrets.io"],
            "resources": ["externalsecrets"],
            "verbs": ["list"],
        }
        # consumer verification: get on the target Secrets only, by name; none when it is off
        wanted = [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": sorted(targets[namespace]),
                "verbs": ["get"],
            }
        ]
        event_rule = [{"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]}]
        assert more == (wanted if verify else []) + (event_rule if events else [])
    bindings = {b["metadata"]["namespace"]: b for b in rendered.of_kind("RoleBinding")}
    assert set(bindings) == set(expected)
    patcher_sa = _service_account_of(rendered, "client-patcher")
    for namespace, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": roles[namespace]["metadata"]["name"],
        }
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": patcher_sa, "namespace": NAMESPACE}]


def test_workload_identity_only_for_vault_bootstrap(mode: tuple[dict[str, Any], Rendered]) -> None:
    values, rendered = mode
    client_id = values["vaultBootstrap"]["azureWorkloadIdentity"]["clientId"]
    for owner, template in rendered.pod_templates():
        uses = template["metadata"]["labels"].get("azure.workload.identity/use")
        assert uses == ("true" if component_of(template) == "vault-bootstrap" else None), owner
    accounts = {component_of(sa): sa for sa in rendered.of_kind("ServiceAccount")}
    assert (
        accounts["vault-bootstrap"]["metadata"]["annotations"]["azure.workload.identity/client-id"]
        == client_id
    )
    for sa in accounts.values():
        assert sa["automountServiceAccountToken"] is False
    if "client-patcher" in accounts:
        annotations = accounts["client-patcher"]["metadata"].get("annotations", {})
        assert not any(k.startswith("azure.workload.identity/") for k in annotations)


def test_checksum_follows_the_catalog_only() -> None:
    values = load_values(CHART / "ci" / "cronjob-values.yaml")
    before = _checksums(render(values))
    assert len(set(before.values())) == 1

    rescheduled = copy.deepcopy(values)
    rescheduled["vaultBootstrap"]["cronjob"]["schedule"] = "3 * * * *"
    assert _checksums(render(rescheduled)) == before

    rotated = copy.deepcopy(values)
    entry = next(e for e in rotated["catalog"]["secrets"] if e["origin"] == "service-generated")
    entry["keycloak"]["rotate"] = {"runId": "8"}
    after = _checksums(render(rotated))
    assert after.keys() == before.keys()
    assert all(after[k] != before[k] for k in before)


def test_schema_accepts_a_zero_downtime_rotation_and_refuses_a_bare_grace_number() -> None:
    values = load_values(CHART / "ci" / "cronjob-values.yaml")
    entry = next(e for e in values["catalog"]["secrets"] if e["origin"] == "service-generated")
    entry["keycloak"]["rotate"] = {"runId": "9", "grace": "1h30m", "hardCut": False}
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values)
        entry["keycloak"]["rotate"]["grace"] = "15"
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(values)


def test_image_digest_wins_over_tag() -> None:
    rendered = render(load_values(CHART / "ci" / "production-values.yaml"))
    for owner, template in rendered.pod_templates():
        assert re.fullmatch(
            r"ghcr\.io/ameide/secret-origin-[a-z-]+@sha256:[0-9a-f]{64}",
            template["spec"]["containers"][0]["image"],
        ), owner
    rendered = render(load_values(CHART / "ci" / "cronjob-values.yaml"))
    for owner, template in rendered.pod_templates():
        assert template["spec"]["containers"][0]["image"].endswith(":0.1.0"), owner


def test_existing_service_account_is_used_not_created() -> None:
    rendered = render(load_values(CHART / "ci" / "production-values.yaml"))
    assert "client-patcher" not in {component_of(sa) for sa in rendered.of_kind("ServiceAccount")}
    assert _service_account_of(rendered, "client-patcher") == "secret-origin-client-patcher"


def test_run_deadline_must_leave_room() -> None:
    values = load_values(CHART / "ci" / "cronjob-values.yaml")
    values["clientPatcher"]["job"] = {"activeDeadlineSeconds": 60, "deadlineMarginSeconds": 40}
    with pytest.raises(helm.HelmRenderError, match="at least 30 s"):
        render(values)


def test_disabled_jobs_render_nothing_of_theirs() -> None:
    values = load_values(CHART / "ci" / "cronjob-values.yaml")
    values["clientPatcher"]["enabled"] = False
    rendered = render(values)
    assert {
        component_of(o) for o in rendered.objects if "app.kubernetes.io/component" in o["metadata"]["labels"]
    } == {"vault-bootstrap"}
    assert not rendered.of_kind("Role")


def test_notes_document_the_vault_policy_and_the_manual_trigger(
    mode: tuple[dict[str, Any], Rendered],
) -> None:
    values, rendered = mode
    full = merged(values)
    for key, component in (("vaultBootstrap", "vault-bootstrap"), ("clientPatcher", "client-patcher")):
        if not full[key]["enabled"]:
            continue
        assert f"secret-origin policy --for {component} --catalog catalog.yaml" in rendered.notes
        if full[key]["cronjob"]["enabled"] or full[key]["hook"]["type"] != "none":
            assert f"--from=cronjob/{RELEASE}-secret-origin-{component}" in rendered.notes


BAD_VALUES = {
    "unknown top-level key": lambda v: v.update(replicaCount=2),
    "typo in the catalog": lambda v: v["catalog"]["secrets"][0].update(requried=True),
    "unknown origin": lambda v: v["catalog"]["secrets"][0].update(origin="vault"),
    "keycloak source on an external entry": lambda v: v["catalog"]["secrets"][0].update(
        keycloak={"realm": "r", "clientId": "c"}
    ),
    "service-generated without keycloak": lambda v: v["catalog"]["secrets"].append(
        {"name": "x", "origin": "service-generated"}
    ),
    "inline client secret": lambda v: v["clientPatcher"].update(
        env=[{"name": "KEYCLOAK_CLIENT_SECRET", "value": "hunter22"}]
    ),
    "inline vault token": lambda v: v["vaultBootstrap"].update(
        env=[{"name": "VAULT_TOKEN", "value": "root"}]
    ),
    "envFrom without a source": lambda v: v["clientPatcher"].update(envFrom=[{"prefix": "KC_"}]),
    "unknown hook type": lambda v: v["clientPatcher"].update(hook={"type": "PostSync"}),
    "negative history limit": lambda v: v["vaultBootstrap"]["cronjob"].update(failedJobsHistoryLimit=-1),
    "workload identity without client id": lambda v: v["vaultBootstrap"].update(
        azureWorkloadIdentity={"enabled": True, "clientId": ""}
    ),
    "CRON_TZ in the schedule": lambda v: v["vaultBootstrap"]["cronjob"].update(
        schedule="CRON_TZ=UTC 0 * * * *"
    ),
    "root user": lambda v: v.update(podSecurityContext={"runAsUser": 0}),
    "runAsNonRoot false": lambda v: v.update(podSecurityContext={"runAsNonRoot": False}),
    "privileged container": lambda v: v.update(securityContext={"privileged": True}),
    "writable root file system": lambda v: v.update(securityContext={"readOnlyRootFilesystem": False}),
    "added capability": lambda v: v.update(securityContext={"capabilities": {"add": ["NET_ADMIN"]}}),
    "capabilities not dropped": lambda v: v.update(securityContext={"capabilities": {"drop": ["NET_RAW"]}}),
    "privilege escalation": lambda v: v.update(securityContext={"allowPrivilegeEscalation": True}),
    "hostPath volume": lambda v: v.update(extraVolumes=[{"name": "host", "hostPath": {"path": "/"}}]),
    "inline secret in extraEnv": lambda v: v.update(extraEnv=[{"name": "API_TOKEN", "value": "x"}]),
    "mount without a path": lambda v: v.update(extraVolumeMounts=[{"name": "ca"}]),
    "catalog and existingCatalog": lambda v: v.update(existingCatalog={"configMapName": "cat"}),
    "empty --set-file catalog": lambda v: v.update(catalog=""),
    "typo in rbac.consumers": lambda v: v["clientPatcher"].update(rbac={"consumers": [{"namespace": "a"}]}),
    "hook deadline below a minute": lambda v: v["clientPatcher"].update(hook={"activeDeadlineSeconds": 5}),
    "vault addr without scheme": lambda v: v["vault"].update(addr="vault:8200"),
    "short-lived projected token": lambda v: v["vault"].update(kubernetesAuth={"tokenExpirationSeconds": 60}),
    "string deadline": lambda v: v["clientPatcher"].update(job={"activeDeadlineSeconds": "600"}),
}


@pytest.mark.parametrize("mutation", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_rejects_bad_values(mutation: Any) -> None:
    values = load_values(CHART / "ci" / "cronjob-values.yaml")
    mutation(values)
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmError):
        render(values)


def test_schema_mirrors_the_catalog_model() -> None:
    """Every catalog key the jobs accept is in values.schema.json, and nothing else."""
    with helm.Chart.load(CHART) as chart:
        schema = chart.schema
    assert schema is not None
    defs = schema["$defs"]

    def keys(model: Any) -> set[str]:
        return {f.alias or name for name, f in model.model_fields.items()}

    assert set(defs["catalog"]["properties"]) == keys(Catalog)
    assert set(defs["catalogEntry"]["properties"]) == keys(SecretEntry)
    catalog_fields = Catalog.model_fields
    for key, field_name in (
        ("vault", "vault"),
        ("azureKeyVault", "azure_key_vault"),
        ("keycloak", "keycloak"),
    ):
        model = _model_of(catalog_fields[field_name].annotation)
        assert set(defs["catalog"]["properties"][key]["properties"]) == keys(model), key


def test_every_value_is_in_the_schema() -> None:
    with helm.Chart.load(CHART) as chart:
        schema = chart.schema
        defaults = chart.values
    assert schema is not None
    # `global` stays open: a parent chart passes its own globals through it.
    assert schema["properties"]["global"]["additionalProperties"] is True
    defaults = {k: v for k, v in defaults.items() if k != "global"}
    missing = list(_uncovered(defaults, schema, schema, ""))
    assert missing == []


# -- a first install that cannot fail, and a rerun path in every mode --------------------------------


def test_defaults_run_no_hook() -> None:
    """A hook on the first install runs before the Vault roles and the Keycloak Secret can exist."""
    defaults = load_values(CHART / "values.yaml")
    example = merged(load_values(EXAMPLE_VALUES))
    for key in ("vaultBootstrap", "clientPatcher"):
        assert defaults[key]["hook"]["type"] == "none", key
        assert example[key]["hook"]["type"] == "none", key
        assert defaults[key]["hook"]["activeDeadlineSeconds"] < HELM_DEFAULT_TIMEOUT, key
    # Nothing runs during `helm install` of the example: no hook Job, only CronJobs to trigger later.
    rendered = render(load_values(EXAMPLE_VALUES))
    assert rendered.of_kind("Job") == []
    assert {component_of(c) for c in rendered.of_kind("CronJob")} == {"vault-bootstrap", "client-patcher"}


def test_a_hook_comes_with_a_suspended_cronjob_for_reruns() -> None:
    rendered = render(load_values(CHART / "ci" / "helm-hook-values.yaml"))
    hooks = {component_of(j) for j in rendered.of_kind("Job")}
    crons = {component_of(c): c for c in rendered.of_kind("CronJob")}
    assert hooks == set(crons) == {"vault-bootstrap", "client-patcher"}
    for component, cron in crons.items():
        assert cron["spec"]["suspend"] is True, component
        hook = next(j for j in rendered.of_kind("Job") if component_of(j) == component)
        # The rerun is the same container, same deadline rules, as the hook.
        assert (
            cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"]
            == hook["spec"]["template"]["spec"]["containers"][0]["image"]
        )


def test_hook_deadline_must_leave_room() -> None:
    values = load_values(CHART / "ci" / "helm-hook-values.yaml")
    values["clientPatcher"]["hook"]["activeDeadlineSeconds"] = 60
    values["clientPatcher"]["job"]["deadlineMarginSeconds"] = 40
    with pytest.raises(helm.HelmRenderError, match=r"hook\.activeDeadlineSeconds .* at least 30 s"):
        render(values)


# -- the catalog: inline, --set-file, existing ConfigMap; rules spanning entries at template time ------


def test_set_file_catalog_renders_verbatim(tmp_path: Path) -> None:
    """What `helm install -f values.yaml --set-file catalog=examples/catalog.yaml` gives the chart."""
    values = load_values(CHART / "ci" / "cronjob-values.yaml")
    del values["catalog"]
    values.update(helm.parse_set_file(f"catalog={EXAMPLE_VALUES.parent / 'catalog.yaml'}"))
    rendered = render(values)
    (config_map,) = rendered.of_kind("ConfigMap")
    text = (EXAMPLE_VALUES.parent / "catalog.yaml").read_text(encoding="utf-8")
    assert config_map["data"]["catalog.yaml"] == text
    roles = {r["metadata"]["namespace"] for r in rendered.of_kind("Role")}
    assert roles == {"ameide-dev"}


DUPLICATE = """environment: dev
azureKeyVault: {url: https://kv.vault.azure.net/}
secrets:
  - {name: ghcr-token, origin: external}
  - {name: grafana-admin-password, origin: helm-generated}
  - {name: ghcr-token, origin: external}
  - {name: platform-client, origin: service-generated, keycloak: {realm: r, clientId: c}}
"""


@pytest.mark.parametrize("form", ["inline", "set-file"])
def test_cross_entry_rules_fail_at_template_naming_the_entry(form: str) -> None:
    values = load_values(CHART / "ci" / "cronjob-values.yaml")
    values["catalog"] = DUPLICATE if form == "set-file" else yaml.safe_load(DUPLICATE)
    with pytest.raises(helm.HelmRenderError) as raised:
        render(values)
    message = str(raised.value)
    assert "catalog.secrets[2] (ghcr-token).name: duplicate name (also secrets[0])" in message
    assert "catalog.secrets[3] (platform-client): service-generated entry but no top-level `keycloak`" in (
        message
    )


def test_set_file_catalog_that_is_not_yaml_fails_at_template() -> None:
    values = load_values(CHART / "ci" / "cronjob-values.yaml")
    values["catalog"] = "environment: dev\nsecrets: [unclosed\n"
    with pytest.raises(helm.HelmRenderError, match="catalog: not a YAML mapping"):
        render(values)


def test_existing_catalog_needs_the_consumers_for_rbac() -> None:
    values = load_values(CHART / "ci" / "existing-catalog-values.yaml")
    del values["clientPatcher"]["rbac"]
    with pytest.raises(helm.HelmRenderError, match=r"clientPatcher\.rbac\.consumers is required"):
        render(values)
    values["clientPatcher"]["rbac"] = {"create": False}
    assert render(values).of_kind("Role") == []


# -- habits -------------------------------------------------------------------------------------------


def test_common_labels_and_annotations_on_every_object() -> None:
    values = load_values(CHART / "ci" / "habits-values.yaml")
    rendered = render(values)
    for obj in rendered.objects:
        owner = f"{obj['kind']}/{obj['metadata']['name']}"
        assert values["commonLabels"].items() <= obj["metadata"]["labels"].items(), owner
        assert values["commonAnnotations"].items() <= obj["metadata"]["annotations"].items(), owner
    for owner, template in rendered.pod_templates():
        assert values["commonLabels"].items() <= template["metadata"]["labels"].items(), owner


def test_global_image_registry_and_pull_secrets() -> None:
    rendered = render(load_values(CHART / "ci" / "habits-values.yaml"))
    for owner, template in rendered.pod_templates():
        component = component_of(template)
        spec = template["spec"]
        assert spec["containers"][0]["image"] == (
            f"registry.example.com/mirror/ameide/secret-origin-{component}:0.1.0"
        ), owner
        assert spec["imagePullSecrets"] == [{"name": "ghcr-pull"}, {"name": "mirror-pull"}], owner


def test_security_contexts_merge_and_keep_the_hardening() -> None:
    values = load_values(CHART / "ci" / "habits-values.yaml")
    for owner, template in render(values).pod_templates():
        pod_sc = template["spec"]["securityContext"]
        assert pod_sc["fsGroupChangePolicy"] == "OnRootMismatch" and pod_sc["runAsUser"] == 10001, owner
        assert pod_sc["supplementalGroups"] == [20001], owner
    # A key nulled by the user (Helm deletes it) is re-imposed, not dropped.
    values["securityContext"] = {"readOnlyRootFilesystem": None, "capabilities": None}
    values["podSecurityContext"] = {"runAsNonRoot": None}
    for owner, template in render(values).pod_templates():
        sc = template["spec"]["containers"][0]["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"] == {"drop": ["ALL"]}, owner
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True, owner


def test_extra_volumes_mounts_and_env() -> None:
    values = load_values(CHART / "ci" / "habits-values.yaml")
    for owner, template in render(values).pod_templates():
        spec = template["spec"]
        container = spec["containers"][0]
        assert values["extraVolumes"][0] in spec["volumes"], owner
        assert values["extraVolumeMounts"][0] in container["volumeMounts"], owner
        assert values["extraEnv"][0] in container["env"], owner


def test_scheduling_per_job_wins_over_the_top_level() -> None:
    values = load_values(CHART / "ci" / "habits-values.yaml")
    rendered = render(values)
    for owner, template in rendered.pod_templates():
        spec = template["spec"]
        key = _key(component_of(template))
        assert spec["nodeSelector"] == values[key].get("nodeSelector", values["nodeSelector"]), owner
        assert spec.get("tolerations") == values[key].get("tolerations"), owner
        assert spec.get("affinity") == values[key].get("affinity"), owner


# -- the packaged chart ----------------------------------------------------------------------------------


def test_helm_package_renders_every_mode_like_the_source(tmp_path: Path) -> None:
    archive = Path(helm.package(CHART, destination=tmp_path))
    assert archive.name == f"secret-origin-{_chart_yaml()['version']}.tgz"
    for path in VALUE_FILES:
        values = load_values(path)
        with helm.Chart.load(archive) as packaged:
            from_archive = packaged.render(values, name=RELEASE, namespace=NAMESPACE)
        assert from_archive == render(values).files, path.name
    report = helm.lint(archive, load_values(EXAMPLE_VALUES), strict=True, namespace=NAMESPACE)
    assert report["errors"] == []


def _chart_yaml() -> dict[str, Any]:
    return load_values(CHART / "Chart.yaml")


# -- helpers ---------------------------------------------------------------------------------------


def _dump(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def _key(component: str) -> str:
    return {"vault-bootstrap": "vaultBootstrap", "client-patcher": "clientPatcher"}[component]


def _consumers_by_namespace(entries: tuple[SecretEntry, ...]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for entry in entries:
        if entry.origin.value != "service-generated":
            continue
        for consumer in entry.consumers:
            out.setdefault(consumer.namespace, set()).add(consumer.name)
    return out


def _service_account_of(rendered: Rendered, component: str) -> str:
    names = {
        t["spec"]["serviceAccountName"] for _, t in rendered.pod_templates() if component_of(t) == component
    }
    (name,) = names
    return str(name)


def _checksums(rendered: Rendered) -> dict[str, str]:
    return {owner: t["metadata"]["annotations"]["checksum/config"] for owner, t in rendered.pod_templates()}


def _model_of(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", (annotation,)):
        if isinstance(arg, type) and hasattr(arg, "model_fields"):
            return arg
    raise AssertionError(annotation)


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _uncovered(value: Any, node: dict[str, Any], root: dict[str, Any], path: str) -> Any:
    node = _resolve(node, root)
    if isinstance(value, dict) and "properties" in node:
        assert node.get("additionalProperties") is False, f"{path or '/'} allows unknown keys"
        for key, item in value.items():
            if key not in node["properties"]:
                yield f"{path}/{key}"
            else:
                yield from _uncovered(item, node["properties"][key], root, f"{path}/{key}")


def _container(rendered: Rendered, owner_prefix: str) -> dict[str, Any]:
    (found,) = [t for owner, t in rendered.pod_templates() if owner.startswith(owner_prefix)]
    (container,) = found["spec"]["containers"]
    return dict(container)


def test_events_off_means_no_grant_and_no_events() -> None:
    values = load_values(EXAMPLE_VALUES)
    values.setdefault("clientPatcher", {})["events"] = {"enabled": False}
    rendered = render(values)
    for role in rendered.of_kind("Role"):
        assert all(rule["apiGroups"] != ["events.k8s.io"] for rule in role["rules"])
    for owner, template in rendered.pod_templates():
        (container,) = template["spec"]["containers"]
        assert ("--no-events" in container["args"]) == (component_of(template) == "client-patcher"), owner


def test_events_on_by_default_grant_create_in_each_consumer_namespace() -> None:
    rendered = render(load_values(EXAMPLE_VALUES))
    assert rendered.of_kind("Role")
    for role in rendered.of_kind("Role"):
        assert {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]} in role["rules"]
    for _, template in rendered.pod_templates():
        assert "--no-events" not in template["spec"]["containers"][0]["args"]


def test_metrics_values_reach_every_job_as_env_and_an_empty_dir() -> None:
    values = load_values(EXAMPLE_VALUES)
    values["metrics"] = {
        "pushgateway": "http://pushgateway.monitoring:9091",
        "textfile": {"directory": "/var/run/metrics/", "emptyDir": True},
    }
    rendered = render(values)
    assert rendered.pod_templates()
    for owner, template in rendered.pod_templates():
        (container,) = template["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["SECRET_ORIGIN_METRICS_PUSH"] == "http://pushgateway.monitoring:9091", owner
        assert env["SECRET_ORIGIN_METRICS_FILE"] == f"/var/run/metrics/{component_of(template)}.prom", owner
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["metrics"] == "/var/run/metrics"
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        assert "emptyDir" in volumes["metrics"]


def test_metrics_push_url_from_a_secret_and_no_metrics_by_default() -> None:
    values = load_values(EXAMPLE_VALUES)
    plain = render(values)
    for _, template in plain.pod_templates():
        names = {e["name"] for e in template["spec"]["containers"][0]["env"]}
        assert not names & {"SECRET_ORIGIN_METRICS_PUSH", "SECRET_ORIGIN_METRICS_FILE"}
        assert "metrics" not in {v["name"] for v in template["spec"]["volumes"]}
    values["metrics"] = {
        "pushgateway": "http://ignored:9091",
        "pushgatewaySecret": {"name": "pgw", "key": "url"},
    }
    for _, template in render(values).pod_templates():
        (push,) = [
            e for e in template["spec"]["containers"][0]["env"] if e["name"] == "SECRET_ORIGIN_METRICS_PUSH"
        ]
        assert push == {
            "name": "SECRET_ORIGIN_METRICS_PUSH",
            "valueFrom": {"secretKeyRef": {"name": "pgw", "key": "url"}},
        }


def test_a_push_url_with_credentials_must_come_from_a_secret() -> None:
    values = load_values(EXAMPLE_VALUES)
    values["metrics"] = {"pushgateway": "http://user:pass@pushgateway:9091"}
    with pytest.raises(helm.HelmValuesError, match="metrics/pushgateway"):
        render(values)


def _patcher_args(rendered: Rendered) -> list[list[str]]:
    return [
        template["spec"]["containers"][0]["args"]
        for owner, template in rendered.pod_templates()
        if "client-patcher" in owner
    ]


def test_consumer_verification_flags_and_secret_rights_follow_the_values() -> None:
    values = load_values(CHART / "ci" / "cronjob-values.yaml")
    values["clientPatcher"]["consumerTimeout"] = 90
    values["clientPatcher"].setdefault("rbac", {})["targetSecrets"] = [
        {"namespace": "ameide-dev", "name": "renamed-target"}
    ]
    rendered = render(values)
    assert _patcher_args(rendered) and all(
        "--no-verify-consumers" not in args and args[args.index("--consumer-timeout") + 1] == "90"
        for args in _patcher_args(rendered)
    )
    role = next(r for r in rendered.of_kind("Role") if r["metadata"]["namespace"] == "ameide-dev")
    assert "renamed-target" in role["rules"][2]["resourceNames"]  # after get/patch and list
    values["clientPatcher"]["verifyConsumers"] = False
    rendered = render(values)
    assert all(
        "--no-verify-consumers" in args and "--consumer-timeout" not in args
        for args in _patcher_args(rendered)
    )
    assert all(r["apiGroups"] != [""] for role in rendered.of_kind("Role") for r in role["rules"])
