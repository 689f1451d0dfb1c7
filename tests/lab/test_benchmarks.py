"""The benchmark instruments: the latency floor, how requests are sorted into phases, and both benchmark
scripts end to end at a few entries (their --json document)."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks import bench_client_patcher, bench_vault_bootstrap
from benchmarks._measure import Logged, Phase, latency_floor, phases_of, stage_of

RUN_FIELDS = {
    "job",
    "scenario",
    "entries",
    "exit_code",
    "wall_s",
    "cpu_s",
    "peak_rss_mib",
    "concurrency",
    "requests",
    "requests_per_entry",
    "phases",
    "floor_s",
    "floor_ratio",
    "serial_floor_s",
    "counts",
    "servers_cpu_s",
    "load_1m",
}


@pytest.mark.parametrize(
    ("phases", "concurrency", "seconds"),
    [
        ([], 8, 0.0),
        ([Phase("vault", "entries", 1000, 3.0, serial=False)], 1, 3.0),
        ([Phase("vault", "entries", 1000, 3.0, serial=False)], 8, 0.375),  # ⌈1000/8⌉ = 125 x 3 ms
        ([Phase("vault", "entries", 1001, 3.0, serial=False)], 8, 0.378),  # ⌈1001/8⌉ = 126
        ([Phase("keyvault", "list-next", 10, 20.0, serial=True)], 8, 0.2),  # serial: every page waits
        (
            [
                Phase("entra", "auth", 1, 20.0, serial=True),
                Phase("keyvault", "list", 1, 20.0, serial=False),
                Phase("keyvault", "list-next", 9, 20.0, serial=True),
                Phase("keyvault", "entries", 1000, 20.0, serial=False),
                Phase("vault", "entries", 3000, 3.0, serial=False),
            ],
            8,
            (1 + 1 + 9 + 125) * 0.020 + 375 * 0.003,
        ),
        ([Phase("kube", "entries", 4, 5.0, serial=False)], 8, 0.005),  # fewer requests than workers
        ([Phase("kube", "entries", 0, 5.0, serial=False)], 8, 0.0),
    ],
)
def test_latency_floor_sums_rounds_of_each_phase(
    phases: list[Phase], concurrency: int, seconds: float
) -> None:
    assert latency_floor(phases, concurrency) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("request_", "stage"),
    [
        (Logged("entra", "POST", "/tenant/oauth2/v2.0/token", anonymous=True), "auth"),
        (Logged("keyvault", "GET", "/secrets", "api-version=7.6", anonymous=True), "auth"),  # the challenge
        (Logged("keyvault", "GET", "/secrets", "api-version=7.6"), "list"),
        (Logged("keyvault", "GET", "/secrets", "api-version=7.6&$skiptoken=abc"), "list-next"),
        (Logged("keyvault", "GET", "/secrets/a/", "api-version=7.6"), "entries"),
        (Logged("keycloak", "POST", "/realms/master/protocol/openid-connect/token", anonymous=True), "auth"),
        (Logged("keycloak", "GET", "/admin/realms/a/clients", "clientId=x"), "entries"),
        (Logged("keycloak", "GET", "/admin/realms/a/clients", "first=0&max=100"), "list"),
        (Logged("keycloak", "GET", "/admin/realms/a/clients", "first=100&max=100"), "list-next"),
        (Logged("keycloak", "POST", "/admin/realms/a/clients/id/client-secret"), "entries"),
        (Logged("vault", "GET", "/v1/auth/token/lookup-self"), "auth"),
        (Logged("vault", "LIST", "/v1/kv/metadata/"), "list"),
        (Logged("vault", "GET", "/v1/kv/data/a"), "entries"),
        (Logged("vault", "POST", "/v1/kv/metadata/a"), "entries"),
        (Logged("kube", "GET", "/apis/"), "auth"),
        (Logged("kube", "GET", "/apis/external-secrets.io/v1"), "auth"),
        (Logged("kube", "GET", "/apis/external-secrets.io/v1/namespaces/ns/externalsecrets"), "list"),
        (
            Logged("kube", "GET", "/apis/external-secrets.io/v1/namespaces/ns/externalsecrets", "continue=x"),
            "list-next",
        ),
        (Logged("kube", "GET", "/apis/external-secrets.io/v1/namespaces/ns/externalsecrets/es"), "entries"),
        (Logged("kube", "PATCH", "/apis/external-secrets.io/v1/namespaces/ns/externalsecrets/es"), "entries"),
    ],
)
def test_requests_are_sorted_into_stages(request_: Logged, stage: str) -> None:
    assert stage_of(request_) == stage


def test_phases_group_requests_by_system_and_stage() -> None:
    requests = [Logged("vault", "GET", f"/v1/kv/data/{i}") for i in range(10)]
    requests.append(Logged("vault", "GET", "/v1/auth/token/lookup-self"))
    assert phases_of(requests, {"vault": 3.0}) == [
        Phase("vault", "auth", 1, 3.0, serial=True),
        Phase("vault", "entries", 10, 3.0, serial=False),
    ]


def check_document(
    text: str, job: str, entries: int, scenarios: tuple[str, ...], latency: dict[str, float]
) -> None:
    doc = json.loads(text)
    assert doc["benchmark"] == job
    assert doc["concurrency"] == 4
    assert {s: doc["latency_ms"][s] for s in latency} == latency
    assert [r["scenario"] for r in doc["runs"]] == list(scenarios)
    for run in doc["runs"]:
        assert set(run) >= RUN_FIELDS
        assert run["exit_code"] == 0
        assert run["entries"] == entries
        assert run["wall_s"] > 0
        assert 10 < run["peak_rss_mib"] < 1024
        assert set(run["requests"]) == set(latency)  # every system the job talks to, counted
        for system, count in run["requests"].items():
            assert run["requests_per_entry"][system] == pytest.approx(count / entries, abs=0.001)
        assert sum(p["requests"] for p in run["phases"]) == sum(run["requests"].values())
        phases = [Phase(**{k: v for k, v in p.items() if k != "cost_ms"}) for p in run["phases"]]
        assert run["floor_s"] == pytest.approx(latency_floor(phases, 4), abs=0.001)
        assert run["floor_ratio"] == pytest.approx(run["wall_s"] / run["floor_s"], rel=0.01)
        assert run["serial_floor_s"] >= run["floor_s"]
    first = doc["runs"][0]
    assert sum(first["counts"].values()) == entries


def test_vault_bootstrap_benchmark_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--entries", "6", "--keyvault-latency", "2", "--entra-latency", "1", "--vault-latency", "1"]
    assert bench_vault_bootstrap.main([*argv, "--concurrency", "4", "--json"]) == 0
    latency = {"entra": 1.0, "keyvault": 2.0, "vault": 1.0}
    check_document(capsys.readouterr().out, "vault-bootstrap", 6, bench_vault_bootstrap.SCENARIOS, latency)


def test_client_patcher_benchmark_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--entries", "8", "--consumers", "4", "--namespaces", "2", "--keycloak-latency", "2"]
    argv += ["--kube-latency", "1", "--vault-latency", "1", "--concurrency", "4", "--json", "--no-rotation"]
    assert bench_client_patcher.main(argv) == 0  # the rotation run is left out to stay well under 30 s
    latency = {"keycloak": 2.0, "kube": 1.0, "vault": 1.0}
    check_document(capsys.readouterr().out, "client-patcher", 8, bench_client_patcher.SCENARIOS[:2], latency)


def test_consumers_spread_over_entries_and_namespaces() -> None:
    clients = bench_client_patcher.generate_clients(2000, realms=2, consumers=200, namespaces=4)
    consumers = [c for spec in clients for c in spec.consumers]
    assert len(consumers) == 200
    assert {ns for ns, _ in consumers} == {f"bench-ns-{i}" for i in range(4)}
    assert {spec.realm for spec in clients} == {"bench-realm-0", "bench-realm-1"}
    assert math.isclose(sum(1 for spec in clients if spec.consumers) / len(clients), 0.1)
