"""client-patcher on a larger catalog: entries run concurrently with the results and the Vault state
of a sequential run, a no-op rerun reads each consumer namespace with one LIST and each busy realm
with one listing, and a namespace that forbids `list` still works, one GET per consumer."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from jobs.core import metadata as md
from lab.client_patcher_stack import KUBE_SA, ClientPatcherStack, ClientSpec, assert_no_secret_in
from lab.openbao import OpenBao
from tests.support.summary import read_summary

REALMS = ("north", "south")
NAMESPACES = ("ns-a", "ns-b", "ns-c")
ENTRIES = 48  # 24 per realm: above the listing threshold (BATCH_MIN = 20)
CONSUMERS = 12


def clients() -> tuple[ClientSpec, ...]:
    """ENTRIES clients over two realms; every fourth entry has a consumer, spread over three namespaces."""
    return tuple(
        ClientSpec(
            f"app-{n:03d}-client-secret",
            REALMS[n % 2],
            f"app-{n:03d}",
            ((NAMESPACES[(n // 4) % 3], f"app-{n:03d}-sync"),) if n % 4 == 0 else (),
        )
        for n in range(ENTRIES)
    )


def run(stack: ClientPatcherStack, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    # 48 first writes at --verify-login's default pace (5 a second) would take ~10 s per run.
    done = stack.run("--summary", "full", "--login-rate", "500", *args, timeout=180)
    assert_no_secret_in(done.stdout + done.stderr, stack.secret_values())
    return done, read_summary(done.stdout)


def vault_states(stack: ClientPatcherStack) -> list[tuple[int, bool, dict[str, str]]]:
    """Per entry in catalog order: (version, value is Keycloak's secret, metadata without timestamps)."""
    states = []
    for spec in stack.clients:
        version, value, meta = stack.vault_state(spec.name)
        stable = {k: v for k, v in meta.items() if "time" not in k and k != md.ROTATION_INTENT}
        states.append((version, value == stack.keycloak_secret(spec), stable))
    return states


def kube_requests(stack: ClientPatcherStack) -> list[tuple[str, str]]:
    return [(m, p) for m, p in stack.kube.requests if p.rstrip("/") != "/apis"]


def test_concurrent_entries_give_the_results_and_state_of_a_sequential_run(
    openbao: OpenBao, tmp_path: Path
) -> None:
    outcomes = []
    for concurrency in ("1", "8"):
        with ClientPatcherStack.start(
            openbao, openbao.new_kv_mount(), tmp_path / concurrency, clients()
        ) as stack:
            done, report = run(stack, "--concurrency", concurrency)
            assert done.returncode == 0, done.stderr[-2000:]
            names = [e["entry"] for e in report["entries"]]
            assert names == [spec.name for spec in stack.clients]  # catalog order, whatever the threads
            actions = [(e["action"], e.get("vault_version")) for e in report["entries"]]
            assert set(actions) == {("written", 1)}
            annotated = [
                stack.consumer(ns, name)[1].get("force-sync") == stack.force_sync_of(spec.name)
                for spec in stack.clients
                for ns, name in spec.consumers
            ]
            assert annotated == [True] * CONSUMERS
            outcomes.append((actions, vault_states(stack)))
    assert outcomes[0] == outcomes[1]


def test_a_no_op_rerun_lists_each_namespace_and_realm_once(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path, clients()) as stack:
        first, _ = run(stack)
        assert first.returncode == 0, first.stderr[-2000:]
        stack.kube.reset_requests()
        stack.keycloak.reset_requests()
        done, report = run(stack)
        assert done.returncode == 0, done.stderr[-2000:]
        assert report["counts"]["unchanged"] == ENTRIES
        collections = sorted(
            f"/apis/external-secrets.io/v1/namespaces/{ns}/externalsecrets" for ns in NAMESPACES
        )
        assert sorted(p for _, p in kube_requests(stack)) == collections  # one LIST each, no GET, no PATCH
        assert stack.kube.count(lambda m, p: p.rstrip("/") == "/apis") == 1  # discovery once, not per thread
        keycloak = stack.keycloak.count()
        assert keycloak <= 1.2 * ENTRIES
        assert stack.keycloak.count(lambda m, p: "/client-secret" in p) == 0  # the listing carried them
        assert stack.keycloak.count(lambda m, p: p.endswith("/clients")) == len(REALMS)  # one page each


def test_a_namespace_that_forbids_list_is_read_with_gets_and_says_so(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    with ClientPatcherStack.start(openbao, kv_mount, tmp_path, clients()) as stack:
        specs = {ns: [s for s in stack.clients for c in s.consumers if c[0] == ns] for ns in NAMESPACES}
        stack.kube.revoke_all(*KUBE_SA)
        for ns, owners in specs.items():
            names = [c[1] for s in owners for c in s.consumers]
            stack.kube.grant(
                ns,
                *KUBE_SA,
                verbs=["get", "patch"],
                group="external-secrets.io",
                resource="externalsecrets",
                resource_names=names,
            )
            stack.kube.grant(  # consumer verification reads the target Secrets
                ns, *KUBE_SA, verbs=["get"], group="", resource="secrets", resource_names=names
            )
            if ns != "ns-b":
                stack.kube.grant(
                    ns, *KUBE_SA, verbs=["list"], group="external-secrets.io", resource="externalsecrets"
                )
        missing = specs["ns-c"][0]
        stack.kube.delete_object("ExternalSecret", *missing.consumers[0])
        stack.kube.reset_requests()
        done, report = run(stack)
        assert done.returncode == 1
        failed = {e["entry"]: e["reason"] for e in report["entries"] if e["action"] == "failed"}
        assert list(failed) == [missing.name]  # only the entry whose consumer is gone
        assert f"consumer {missing.consumers[0][0]}/{missing.consumers[0][1]}" in failed[missing.name]
        assert "not found" in failed[missing.name]
        forbidden = [line for line in done.stderr.splitlines() if "cannot list ExternalSecrets" in line]
        assert len(forbidden) == 1 and '"namespace": "ns-b"' in forbidden[0]
        gets = [p for m, p in kube_requests(stack) if m == "GET" and "/namespaces/ns-b/externalsecrets/" in p]
        assert set(gets) == {  # read one by one (consumer verification reads them again after)
            f"/apis/external-secrets.io/v1/namespaces/ns-b/externalsecrets/{c[1]}"
            for s in specs["ns-b"]
            for c in s.consumers
        }
        lists = sorted(p for m, p in kube_requests(stack) if m == "GET" and p.endswith("/externalsecrets"))
        assert lists == [f"/apis/external-secrets.io/v1/namespaces/{ns}/externalsecrets" for ns in NAMESPACES]
        for ns in NAMESPACES:
            spec_ok = [s for s in specs[ns] if s is not missing]
            for spec in spec_ok:
                annotations = stack.consumer(*spec.consumers[0])[1]
                assert annotations["force-sync"] == stack.force_sync_of(spec.name)
