"""The real `client-patcher` console script against a real OpenBao and the Keycloak and Kube emulators."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import hvac
import pytest

from jobs.patcher.decide import ATTR_RUN_ID
from lab.client_patcher_stack import (
    DEFAULT_CLIENTS,
    KC_SA_SECRET,
    KUBE_SA,
    ClientPatcherStack,
    ClientSpec,
    assert_no_secret_in,
)
from lab.openbao import OpenBao
from tests.support.summary import read_summary

PLATFORM, WWW, PORTAL, PARTNER_API = DEFAULT_CLIENTS
CONSUMERS = [c for spec in DEFAULT_CLIENTS for c in spec.consumers]


@pytest.fixture
def stack(openbao: OpenBao, kv_mount: str, tmp_path: Path) -> Iterator[ClientPatcherStack]:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path / "stack") as world:
        yield world


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        return read_summary(done.stdout)
    except ValueError:
        pytest.fail(f"no JSON summary on stdout (exit {done.returncode}): {done.stdout}\n{done.stderr}")


def entries(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {e["entry"]: e for e in summary(done)["entries"]}


def run_clean(stack: ClientPatcherStack, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the job and check the one rule every run obeys: no secret value in any output."""
    done = stack.run("--summary", "full", *args, **kwargs)
    assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
    return done


def consumer_states(stack: ClientPatcherStack) -> dict[tuple[str, str], tuple[str, dict[str, str]]]:
    return {c: stack.consumer(*c) for c in CONSUMERS}


def test_two_realms_first_run_writes_and_annotates_second_run_changes_nothing(
    stack: ClientPatcherStack,
) -> None:
    first = run_clean(stack)
    assert first.returncode == 0, first.stderr
    assert summary(first)["counts"]["written"] == 4
    for spec in DEFAULT_CLIENTS:
        version, value, metadata = stack.vault_state(spec.name)
        assert (version, value) == (1, stack.keycloak_secret(spec))
        assert metadata == {
            "managed-by": "secret-origin",
            "origin": "service-generated",
            "authority": "keycloak",
            "fixture": "false",
            "keycloak-realm": spec.realm,
            "keycloak-client-id": spec.client_id,
        }
    after_first = consumer_states(stack)
    for consumer, (_, notes) in after_first.items():
        spec = next(s for s in DEFAULT_CLIENTS if consumer in s.consumers)
        assert notes["force-sync"] == stack.force_sync_of(spec.name)
    assert "ameide-dev/platform-app-master-client-sync" in entries(first)[PLATFORM.name]["reason"]

    stack.kube.reset_requests()
    second = run_clean(stack)
    assert second.returncode == 0, second.stderr
    assert summary(second)["counts"]["unchanged"] == 4
    assert all(stack.vault_state(spec.name)[0] == 1 for spec in DEFAULT_CLIENTS)
    assert consumer_states(stack) == after_first  # same resourceVersions, same annotations
    assert stack.kube.count(lambda method, _: method == "PATCH") == 0


def test_a_real_value_replaces_a_fixture_as_a_normal_write(stack: ClientPatcherStack) -> None:
    fixture = "platform_client_secret"
    stack.vault().secrets.kv.v2.create_or_update_secret(
        PLATFORM.name, {"value": fixture}, cas=0, mount_point=stack.mount
    )
    stack.vault().adapter.post(
        f"/v1/{stack.mount}/metadata/{PLATFORM.name}",
        json={
            "custom_metadata": {
                "managed-by": "secret-origin",
                "origin": "fixture",
                "authority": "fixture",
                "fixture": "true",
                "owner": "team-a",
            }
        },
    )
    done = run_clean(stack, "--only", PLATFORM.name)
    assert done.returncode == 0, done.stderr
    assert entries(done)[PLATFORM.name]["action"] == "written"
    version, value, metadata = stack.vault_state(PLATFORM.name)
    assert (version, value) == (2, stack.keycloak_secret(PLATFORM))
    assert metadata["fixture"] == "false" and metadata["authority"] == "keycloak"
    assert metadata["owner"] == "team-a"  # other tools' keys are kept
    assert stack.consumer("ameide-dev", "platform-app-master-client-sync")[1][
        "force-sync"
    ] == stack.force_sync_of(PLATFORM.name)


def test_dry_run_prints_the_plan_and_writes_nothing_anywhere(stack: ClientPatcherStack) -> None:
    assert run_clean(stack).returncode == 0
    stack.keycloak.set_secret(WWW.realm, WWW.client_id, "changed-out-of-band-" + uuid.uuid4().hex)
    before = consumer_states(stack)
    stack.kube.reset_requests()
    stack.keycloak.reset_requests()
    dry = run_clean(stack, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    www = entries(dry)[WWW.name]
    assert www["action"] == "written"
    assert www["reason"].startswith("DRY-RUN: would be written")
    assert "would annotate force-sync=v2 on ameide-dev/www-auth" in www["reason"]
    assert entries(dry)[PLATFORM.name]["action"] == "unchanged"
    assert summary(dry)["dry_run"] is True
    assert {
        "namespace": "ameide-dev",
        "name": "www-auth",
        "force_sync": "v2",
        "outcome": "would_patch",
    } in www["consumers"]
    annotated = [line for line in dry.stderr.splitlines() if "DRY-RUN: consumer would be annotated" in line]
    assert any("ameide-dev/www-auth" in line and "v2" in line for line in annotated)
    assert stack.vault_state(WWW.name)[0] == 1
    assert consumer_states(stack) == before
    assert stack.kube.count(lambda method, _: method != "GET") == 0
    assert stack.keycloak.count(lambda method, path: method == "POST" and "/admin/" in path) == 0

    real = run_clean(stack)
    assert real.returncode == 0
    assert stack.vault_state(WWW.name)[:2] == (2, stack.keycloak_secret(WWW))
    assert stack.consumer("ameide-dev", "www-auth")[1]["force-sync"] == stack.force_sync_of(WWW.name)
    assert stack.consumer("ameide-dev", "platform-app-master-client-sync")[1][
        "force-sync"
    ] == stack.force_sync_of(PLATFORM.name)


def test_one_second_tokens_with_latency_still_converge(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path, token_lifespan=1) as stack:
        stack.keycloak.latency = 0.5  # four Admin calls take ~2 s: every token expires mid-run
        done = run_clean(stack)
        assert done.returncode == 0, done.stderr
        assert summary(done)["counts"]["written"] == 4
        assert stack.keycloak.count(lambda m, p: p.endswith("/token")) >= 2


def test_refused_service_account_fails_the_run_unless_the_fallback_is_allowed(
    stack: ClientPatcherStack,
) -> None:
    wrong = "not-the-secret-" + uuid.uuid4().hex
    stack.extra_secrets.append(wrong)
    refused = run_clean(stack, env=stack.env(KEYCLOAK_CLIENT_SECRET=wrong))
    assert refused.returncode == 1, refused.stderr
    assert all("KEYCLOAK_ALLOW_PASSWORD_FALLBACK" in e["reason"] for e in entries(refused).values())
    assert all(stack.vault_state(spec.name)[0] == 0 for spec in DEFAULT_CLIENTS)

    allowed = run_clean(
        stack, env=stack.env(KEYCLOAK_CLIENT_SECRET=wrong, KEYCLOAK_ALLOW_PASSWORD_FALLBACK="true")
    )
    assert allowed.returncode == 0, allowed.stderr
    warnings = summary(allowed)["warnings"]
    assert any("fell back to the admin password grant" in w and "unauthorized_client" in w for w in warnings)
    assert "grant=password" in allowed.stderr or '"grant": "password"' in allowed.stderr


def test_everything_refused_fails_every_entry_once(stack: ClientPatcherStack) -> None:
    done = run_clean(stack, env=stack.env(admin=False, KEYCLOAK_CLIENT_SECRET="wrong-" + KC_SA_SECRET))
    assert done.returncode == 1
    reasons = {e["reason"] for e in entries(done).values()}
    assert len(reasons) == 1
    assert "unauthorized_client" in reasons.pop()
    assert all(stack.vault_state(spec.name)[0] == 0 for spec in DEFAULT_CLIENTS)


def test_503_three_times_then_success(stack: ClientPatcherStack) -> None:
    stack.keycloak.fail_next(3, 503, path_prefix="/admin")
    done = run_clean(stack, "--only", WWW.name)
    assert done.returncode == 0, done.stderr
    assert entries(done)[WWW.name]["action"] == "written"
    assert done.stderr.count("retrying after a transient error") == 3


def test_bad_entries_fail_alone_and_the_others_are_written(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    clients = (
        *DEFAULT_CLIENTS,
        ClientSpec("ghost-client-secret", "ameide", "ghost", in_keycloak=False),
        ClientSpec("spa-client-secret", "ameide", "spa", public=True),
        ClientSpec("api-client-secret", "partners", "api", bearer_only=True),
        ClientSpec("jwt-client-secret", "partners", "jwt-app", authenticator="client-jwt"),
        ClientSpec("no-realm-client-secret", "nope", "app", in_keycloak=False),
    )
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path, clients) as stack:
        # one consumer is gone, one is not patchable, one has refreshInterval 0 (ESO ignores force-sync)
        stack.kube.delete_object("ExternalSecret", "ameide-dev", "www-ameide-platform-auth")
        stack.kube.revoke_all(*KUBE_SA)
        stack.kube.grant(
            "ameide-dev",
            *KUBE_SA,
            verbs=["get"],
            group="external-secrets.io",
            resource="externalsecrets",
            resource_names=["platform-app-master-client-sync", "www-ameide-platform-auth", "www-auth"],
        )
        stack.kube.grant(
            "partners",
            *KUBE_SA,
            verbs=["get", "patch"],
            group="external-secrets.io",
            resource="externalsecrets",
            resource_names=["portal-sync"],
        )
        stack.kube.add_external_secret("partners", "portal-sync", remote_key="x", refresh_interval="0")
        stack.keycloak.reset_requests()
        done = run_clean(stack)
        assert done.returncode == 1
        result = entries(done)
        assert (
            result["ghost-client-secret"]["reason"] == "keycloak: client 'ghost' not found in realm 'ameide'"
        )
        assert "is a public client" in result["spa-client-secret"]["reason"]
        assert "is bearer-only" in result["api-client-secret"]["reason"]
        assert "uses 'client-jwt' authentication" in result["jwt-client-secret"]["reason"]
        assert "realm 'nope' not found" in result["no-realm-client-secret"]["reason"]
        for name in ("spa", "api", "jwt-app"):  # docs/design.md#traps, trap 3: never read before the gate
            realm = "ameide" if name == "spa" else "partners"
            uuid_ = stack.keycloak.client_uuid(realm, name)
            assert stack.keycloak.count(lambda m, p, u=uuid_: u in p) == 0
        platform = result[PLATFORM.name]
        assert platform["action"] == "failed"
        assert "consumer ameide-dev/www-ameide-platform-auth" in platform["reason"]
        assert "not found" in platform["reason"]
        assert platform["vault_version"] == 1  # the value itself was written
        www = result[WWW.name]
        assert www["action"] == "failed"
        assert "consumer ameide-dev/www-auth" in www["reason"] and "forbidden" in www["reason"]
        portal = result[PORTAL.name]
        assert portal["action"] == "written"
        assert "force-sync will be ignored" in portal["warnings"][0]
        assert stack.consumer("partners", "portal-sync")[1]["force-sync"] == stack.force_sync_of(PORTAL.name)
        assert result[PARTNER_API.name]["action"] == "written"
        for spec in DEFAULT_CLIENTS:
            assert stack.vault_state(spec.name)[:2] == (1, stack.keycloak_secret(spec))

        # Once the consumer is patchable, the rerun catches it up without writing Vault again.
        stack.kube.grant(
            "ameide-dev",
            *KUBE_SA,
            verbs=["patch"],
            group="external-secrets.io",
            resource="externalsecrets",
            resource_names=["www-auth"],
        )
        stack.kube.grant(  # consumer verification reads its Secret
            "ameide-dev", *KUBE_SA, verbs=["get"], group="", resource="secrets", resource_names=["www-auth"]
        )
        again = run_clean(stack, "--only", WWW.name)
        assert again.returncode == 0, again.stdout
        caught = f"caught up force-sync={stack.force_sync_of(WWW.name)} on ameide-dev/www-auth"
        assert caught in entries(again)[WWW.name]["reason"]
        assert stack.vault_state(WWW.name)[0] == 1


def test_rotation_by_run_id_happens_exactly_once(stack: ClientPatcherStack) -> None:
    rotating = replace(WWW, rotate_run_id="1")
    stack.write_catalog([rotating if spec is WWW else spec for spec in DEFAULT_CLIENTS])
    original = stack.keycloak_secret(WWW)
    assert original is not None
    stack.extra_secrets.append(original)
    for _ in range(3):
        done = run_clean(stack, "--only", WWW.name)
        assert done.returncode == 0, done.stderr
    assert stack.keycloak.regenerations(WWW.realm, WWW.client_id) == 1
    version, value, metadata = stack.vault_state(WWW.name)
    assert (version, value) == (1, stack.keycloak_secret(WWW))
    assert value != original
    assert metadata["rotation-run-id"] == "1"
    assert stack.keycloak.client_attributes(WWW.realm, WWW.client_id)[ATTR_RUN_ID] == "1"
    assert stack.consumer("ameide-dev", "www-auth")[1]["force-sync"] == stack.force_sync_of(WWW.name)

    stack.write_catalog(
        [replace(rotating, rotate_run_id="2") if s.name == WWW.name else s for s in stack.clients]
    )
    dry = run_clean(stack, "--only", WWW.name, "--dry-run")
    assert "would rotate the client secret of ameide/www" in entries(dry)[WWW.name]["reason"]
    assert stack.keycloak.regenerations(WWW.realm, WWW.client_id) == 1  # no POST in a dry run
    done = run_clean(stack, "--only", WWW.name)
    assert done.returncode == 0
    assert entries(done)[WWW.name]["reason"].startswith("rotated (new runId '2'")
    assert stack.keycloak.regenerations(WWW.realm, WWW.client_id) == 2
    assert stack.vault_state(WWW.name)[0] == 2
    assert stack.vault_state(WWW.name)[2]["rotation-run-id"] == "2"
    assert stack.consumer("ameide-dev", "www-auth")[1]["force-sync"] == stack.force_sync_of(WWW.name)

    forced = run_clean(stack, "--only", WWW.name, "--rotate", WWW.name)
    assert forced.returncode == 0
    assert stack.keycloak.regenerations(WWW.realm, WWW.client_id) == 3
    assert stack.vault_state(WWW.name)[:2] == (3, stack.keycloak_secret(WWW))


def test_rotate_flag_names_must_be_selected_entries(stack: ClientPatcherStack) -> None:
    done = run_clean(stack, "--rotate", "nope")
    assert done.returncode == 2
    assert "--rotate names not among" in done.stderr
    assert stack.keycloak.count() == 0


def test_rotation_whose_vault_write_fails_is_reported_loudly_and_never_repeated(
    stack: ClientPatcherStack,
) -> None:
    assert run_clean(stack, "--only", WWW.name).returncode == 0
    stack.write_catalog([replace(WWW, rotate_run_id="r1") if s is WWW else s for s in DEFAULT_CLIENTS])
    no_data_write = f"no-data-write-{stack.mount}"
    stack.openbao.write_policy(
        no_data_write,
        f'path "{stack.mount}/data/*" {{ capabilities = ["read"] }}\n'
        f'path "{stack.mount}/metadata/*" {{ capabilities = ["create", "read", "update"] }}\n',
    )
    token = stack.openbao.token_with_policies(no_data_write)
    stack.extra_secrets.append(token)
    done = run_clean(stack, "--only", WWW.name, env=stack.env(VAULT_TOKEN=token))
    assert done.returncode == 1
    reason = entries(done)[WWW.name]["reason"]
    assert reason.startswith("ROTATED in Keycloak (new runId 'r1'")
    assert "the old secret, which no longer works" in reason and "does not rotate again" in reason
    assert '"level": "critical"' in done.stderr
    assert stack.vault_state(WWW.name)[0] == 1
    assert stack.keycloak.regenerations(WWW.realm, WWW.client_id) == 1

    fixed = run_clean(stack, "--only", WWW.name)  # Vault fixed: written, consumers told, no rotation
    assert fixed.returncode == 0, fixed.stdout
    assert stack.keycloak.regenerations(WWW.realm, WWW.client_id) == 1
    assert stack.vault_state(WWW.name)[:2] == (2, stack.keycloak_secret(WWW))
    assert stack.consumer("ameide-dev", "www-auth")[1]["force-sync"] == stack.force_sync_of(WWW.name)


def test_vault_kubernetes_auth_with_a_policy_limited_to_the_catalog(
    stack: ClientPatcherStack, tmp_path: Path
) -> None:
    root = stack.openbao.client()
    mount = f"k8s-{uuid.uuid4().hex[:8]}"
    root.sys.enable_auth_method("kubernetes", path=mount)
    stack.kube.add_service_account("vault", "token-reviewer")
    stack.kube.allow_token_review("vault", "token-reviewer")
    ca = stack.kube.ca_pem_path
    assert ca is not None
    reviewer = stack.kube.issue_token("vault", "token-reviewer")
    root.auth.kubernetes.configure(
        stack.kube.url,
        kubernetes_ca_cert=ca.read_text(),
        token_reviewer_jwt=reviewer,
        mount_point=mount,
        disable_local_ca_jwt=True,
    )
    policy = f"client-patcher-{stack.mount}"  # written by the stack: the catalog's paths only
    root.auth.kubernetes.create_role(
        "client-patcher", [KUBE_SA[1]], [KUBE_SA[0]], policies=[policy], ttl="10m", mount_point=mount
    )
    token_file = tmp_path / "sa-token"
    token_file.write_text(stack.kube_token)
    stack.extra_secrets.append(reviewer)
    env = stack.env(
        VAULT_TOKEN="",
        VAULT_AUTH_ROLE="client-patcher",
        VAULT_AUTH_MOUNT=mount,
        VAULT_K8S_TOKEN_PATH=str(token_file),
    )
    done = run_clean(stack, "--log-format", "text", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "auth=kubernetes" in done.stderr
    assert all(stack.vault_state(spec.name)[0] == 1 for spec in DEFAULT_CLIENTS)
    # The same login cannot write anything outside the catalog's paths.
    login = hvac.Client(url=stack.openbao.addr)
    login.auth.kubernetes.login("client-patcher", stack.kube_token, mount_point=mount)
    with pytest.raises(hvac.exceptions.Forbidden):
        login.secrets.kv.v2.create_or_update_secret("elsewhere", {"value": "x"}, mount_point=stack.mount)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_sigterm_mid_run_exits_1_with_a_summary(stack: ClientPatcherStack, concurrency: int) -> None:
    """The entries in flight when SIGTERM arrives finish; the others do not start."""
    stack.keycloak.latency = 0.4
    process = subprocess.Popen(
        stack.command("--log-format", "json", "--summary", "full", "--concurrency", str(concurrency)),
        env=stack.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while stack.keycloak.count(lambda m, p: p.startswith("/admin/")) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert_no_secret_in(stdout + stderr, stack.secret_values())
    report = read_summary(stdout)
    assert report["interrupted"] is True
    in_flight, rest = report["entries"][:concurrency], report["entries"][concurrency:]
    for entry in in_flight:  # the entries in flight finished their write and their patches, but
        # SIGTERM ends the wait for their consumers: unverified, they fail, named as stopped
        assert entry["vault_version"] == 1
        assert (
            entry["action"] == "written"
            or "did not converge after force-sync (stopped by SIGTERM)" in entry["reason"]
        )
    assert [e["action"] for e in rest] == ["skipped"] * len(rest)
    assert all(
        e["reason"] == "not started: interrupted by SIGTERM"
        for e in report["entries"]
        if e["action"] == "skipped"
    )


def test_two_concurrent_runs_write_each_value_once_and_agree(stack: ClientPatcherStack) -> None:
    """A CronJob run and a manual `kubectl create job --from=cronjob/...` can overlap: check-and-set
    lets exactly one write each key; the other sees the value and changes nothing."""
    runs = [
        subprocess.Popen(
            stack.command("--log-format", "json", "--summary", "full"),
            env=stack.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    written = [read_summary(out)["counts"]["written"] for out, _ in outputs]
    assert sum(written) == len(DEFAULT_CLIENTS)  # every key written by exactly one of the two runs
    for spec in DEFAULT_CLIENTS:
        version, value, _ = stack.vault_state(spec.name)
        assert (version, value) == (1, stack.keycloak_secret(spec))
    for (namespace, name), (_, notes) in consumer_states(stack).items():
        spec = next(s for s in DEFAULT_CLIENTS if (namespace, name) in s.consumers)
        assert notes.get("force-sync") == stack.force_sync_of(spec.name), f"{namespace}/{name}"
    for out, err in outputs:
        assert_no_secret_in(out + err, stack.secret_values())


def client_logins(stack: ClientPatcherStack) -> int:
    """Token requests outside the job's own realm (master): logins as the catalog's clients."""
    return stack.keycloak.count(
        lambda method, path: (
            method == "POST"
            and path.endswith("/protocol/openid-connect/token")
            and not path.startswith("/realms/master/")
        )
    )


def test_each_written_secret_is_proven_at_its_token_endpoint_once(stack: ClientPatcherStack) -> None:
    first = run_clean(stack)
    assert first.returncode == 0, first.stderr
    assert client_logins(stack) == len(DEFAULT_CLIENTS)  # one login per written entry
    second = run_clean(stack)
    assert second.returncode == 0, second.stderr
    assert client_logins(stack) == len(DEFAULT_CLIENTS)  # nothing written, nothing to prove


def test_no_verify_login_sends_no_client_login(stack: ClientPatcherStack) -> None:
    done = run_clean(stack, "--no-verify-login")
    assert done.returncode == 0, done.stderr
    assert summary(done)["counts"]["written"] == len(DEFAULT_CLIENTS)
    assert client_logins(stack) == 0
