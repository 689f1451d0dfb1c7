"""The fault- and latency-injecting proxy, in front of the real OpenBao dev server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import hvac
import hvac.exceptions
import pytest
import requests

from lab.openbao import OpenBao
from lab.vault_proxy import (
    INTERNAL_ERROR,
    METADATA_CAS_REQUIRED,
    PERMISSION_DENIED,
    SEALED,
    Action,
    Exchange,
    Reply,
    Rule,
    VaultProxy,
    unavailable,
)

HEALTH = "/v1/sys/health"


@pytest.fixture
def proxy(openbao: OpenBao) -> Iterator[VaultProxy]:
    with VaultProxy(openbao.addr) as running:
        yield running


def through(proxy: VaultProxy, openbao: OpenBao) -> hvac.Client:
    return hvac.Client(url=proxy.addr, token=openbao.root_token, timeout=5)


def stored(openbao: OpenBao, mount: str, key: str) -> dict[str, str] | None:
    """The value OpenBao holds, read directly (not through the proxy)."""
    try:
        read = openbao.client().secrets.kv.v2.read_secret_version(
            key, mount_point=mount, raise_on_deleted_version=True
        )
    except hvac.exceptions.InvalidPath:
        return None
    return dict(read["data"]["data"])


def write(client: hvac.Client, mount: str, key: str, value: str) -> None:
    client.secrets.kv.v2.create_or_update_secret(key, {"password": value}, mount_point=mount)


def last(proxy: VaultProxy) -> Exchange:
    return proxy.exchanges()[-1]


def test_write_applied_then_500_lands_in_openbao_while_the_client_sees_500(
    proxy: VaultProxy, openbao: OpenBao, kv_mount: str
) -> None:
    rule = proxy.add(
        Rule(Action.FORWARD_THEN_RESPOND, "POST", rf"^/v1/{kv_mount}/data/app$", reply=INTERNAL_ERROR)
    )
    with pytest.raises(hvac.exceptions.InternalServerError):
        write(through(proxy, openbao), kv_mount, "app", "first")

    assert stored(openbao, kv_mount, "app") == {"password": "first"}
    assert last(proxy) == Exchange("POST", f"/v1/{kv_mount}/data/app", 500, 200, Action.FORWARD_THEN_RESPOND)
    assert (rule.matched, rule.fired) == (1, 1)


def test_write_applied_then_dropped_lands_while_the_client_sees_a_connection_error(
    proxy: VaultProxy, openbao: OpenBao, kv_mount: str
) -> None:
    proxy.add(Rule(Action.FORWARD_THEN_DROP, "POST", "/data/app$"))
    with pytest.raises(requests.exceptions.ConnectionError):
        write(through(proxy, openbao), kv_mount, "app", "first")

    assert stored(openbao, kv_mount, "app") == {"password": "first"}
    assert last(proxy) == Exchange("POST", f"/v1/{kv_mount}/data/app", None, 200, Action.FORWARD_THEN_DROP)


def test_drop_before_forwarding_never_reaches_openbao(
    proxy: VaultProxy, openbao: OpenBao, kv_mount: str
) -> None:
    proxy.add(Rule(Action.DROP, "POST", "/data/app$"))
    with pytest.raises(requests.exceptions.ConnectionError):
        write(through(proxy, openbao), kv_mount, "app", "first")

    assert stored(openbao, kv_mount, "app") is None
    assert last(proxy).upstream_status is None


@pytest.mark.parametrize("retry_after", [7, None])
def test_503_is_returned_verbatim_with_or_without_retry_after(
    proxy: VaultProxy, retry_after: int | None
) -> None:
    proxy.add(Rule(Action.RESPOND, "GET", HEALTH, reply=unavailable(retry_after)))
    answer = httpx.get(proxy.addr + HEALTH)

    assert answer.status_code == 503
    assert answer.headers.get("Retry-After") == (None if retry_after is None else str(retry_after))
    assert answer.json() == {"errors": ["service unavailable"]}
    assert last(proxy).upstream_status is None


def test_sealed_answer_carries_vaults_own_error_body(
    proxy: VaultProxy, openbao: OpenBao, kv_mount: str
) -> None:
    proxy.add(Rule(Action.RESPOND, path="^/v1/", reply=SEALED))
    assert httpx.get(proxy.addr + HEALTH).content == b'{"errors":["Vault is sealed"]}'

    with pytest.raises(hvac.exceptions.VaultDown) as raised:
        through(proxy, openbao).secrets.kv.v2.read_secret_version(
            "app", mount_point=kv_mount, raise_on_deleted_version=True
        )
    assert raised.value.errors == ["Vault is sealed"]


@pytest.mark.parametrize(
    ("reply", "error"),
    [(METADATA_CAS_REQUIRED, hvac.exceptions.InvalidRequest), (PERMISSION_DENIED, hvac.exceptions.Forbidden)],
)
def test_refused_metadata_write_is_not_forwarded_while_data_writes_are(
    proxy: VaultProxy, openbao: OpenBao, kv_mount: str, reply: Reply, error: type[Exception]
) -> None:
    client = through(proxy, openbao)
    proxy.add(Rule(Action.RESPOND, "POST", "/metadata/", reply=reply))
    write(client, kv_mount, "app", "first")
    with pytest.raises(error):
        client.secrets.kv.v2.update_metadata("app", custom_metadata={"origin": "lab"}, mount_point=kv_mount)

    metadata = openbao.client().secrets.kv.v2.read_secret_metadata("app", mount_point=kv_mount)
    assert not metadata["data"]["custom_metadata"]
    assert stored(openbao, kv_mount, "app") == {"password": "first"}


def test_latency_is_added_once_per_request(openbao: OpenBao) -> None:
    with VaultProxy(openbao.addr, latency=0.25) as slow, httpx.Client(base_url=slow.addr) as client:
        elapsed = []
        for _ in range(3):
            started = time.monotonic()
            assert client.get(HEALTH).status_code == 200
            elapsed.append(time.monotonic() - started)

    assert all(0.25 <= seconds < 0.5 for seconds in elapsed), elapsed  # once, not twice
    assert slow.count() == 3


def test_requests_are_logged_and_counted_by_method_and_path_prefix(
    proxy: VaultProxy, openbao: OpenBao, kv_mount: str
) -> None:
    client = through(proxy, openbao)
    write(client, kv_mount, "a", "first")
    for key in ("a", "a"):
        client.secrets.kv.v2.read_secret_version(key, mount_point=kv_mount, raise_on_deleted_version=True)
    client.secrets.kv.v2.list_secrets("", mount_point=kv_mount)

    counts = proxy.counts()
    assert counts[("POST", f"/v1/{kv_mount}/data")] == 1
    assert counts[("GET", f"/v1/{kv_mount}/data")] == 2
    assert counts[("LIST", f"/v1/{kv_mount}/metadata")] == 1
    assert proxy.count() == 4
    assert proxy.count("get", prefix=f"/v1/{kv_mount}/") == 2
    assert proxy.requests[0] == ("POST", f"/v1/{kv_mount}/data/a")
    assert [e.status for e in proxy.exchanges()] == [200, 200, 200, 200]
    proxy.reset_log()
    assert proxy.count() == 0


def test_nth_and_count_choose_which_matches_fire(proxy: VaultProxy) -> None:
    rule = proxy.add(Rule(Action.RESPOND, "GET", HEALTH, reply=unavailable(), nth=2, count=1))
    with httpx.Client(base_url=proxy.addr) as client:
        statuses = [client.get(HEALTH).status_code for _ in range(4)]

    assert statuses == [200, 503, 200, 200]
    assert (rule.matched, rule.fired) == (4, 1)


def test_probability_draws_from_the_seeded_rng(openbao: OpenBao) -> None:
    def statuses(seed: int) -> list[int]:
        with VaultProxy(openbao.addr, seed=seed) as seeded, httpx.Client(base_url=seeded.addr) as client:
            seeded.add(Rule(Action.RESPOND, reply=unavailable(), probability=0.5))
            return [client.get(HEALTH).status_code for _ in range(16)]

    first = statuses(seed=7)
    assert first == statuses(seed=7)
    assert set(first) == {200, 503}


def test_rules_are_added_and_cleared_while_serving(proxy: VaultProxy) -> None:
    with httpx.Client(base_url=proxy.addr) as client:
        assert client.get(HEALTH).status_code == 200
        proxy.add(Rule(Action.RESPOND, reply=SEALED))
        assert client.get(HEALTH).status_code == 503
        proxy.clear()
        assert client.get(HEALTH).status_code == 200


def test_hang_is_bounded_then_reset_without_an_answer(proxy: VaultProxy) -> None:
    proxy.add(Rule(Action.HANG, hang_seconds=0.3))
    started = time.monotonic()
    with pytest.raises(httpx.TransportError):
        httpx.get(proxy.addr + HEALTH, timeout=5)

    assert 0.3 <= time.monotonic() - started < 2
    assert last(proxy) == Exchange("GET", HEALTH, None, None, Action.HANG)


def test_stop_releases_a_hung_request_at_once(openbao: OpenBao) -> None:
    proxy = VaultProxy(openbao.addr)
    proxy.add(Rule(Action.HANG, hang_seconds=30))
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            httpx.get(proxy.addr + HEALTH, timeout=10)
        except httpx.TransportError as error:
            outcome.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)
    started = time.monotonic()
    proxy.stop()
    caller.join(timeout=3)

    assert not caller.is_alive()
    assert time.monotonic() - started < 1
    assert len(outcome) == 1


def test_refused_after_the_port_closes_and_served_after_it_reopens(proxy: VaultProxy) -> None:
    with httpx.Client(base_url=proxy.addr) as client:
        assert client.get(HEALTH).status_code == 200
        proxy.refuse()
        with pytest.raises(httpx.TransportError):
            client.get(HEALTH)  # the kept-alive connection is reset
        with pytest.raises(httpx.ConnectError):
            client.get(HEALTH)  # and a new one is refused
        proxy.restore()
        assert client.get(HEALTH).status_code == 200


def test_close_rule_takes_vault_away_on_the_matching_request(
    proxy: VaultProxy, openbao: OpenBao, kv_mount: str
) -> None:
    proxy.add(Rule(Action.CLOSE, "POST", "/data/"))
    client = through(proxy, openbao)
    assert client.sys.read_health_status(method="GET")["initialized"]
    with pytest.raises(requests.exceptions.ConnectionError):
        write(client, kv_mount, "app", "first")

    assert proxy.refusing
    with pytest.raises(httpx.ConnectError):
        httpx.get(proxy.addr + HEALTH)
    assert stored(openbao, kv_mount, "app") is None
