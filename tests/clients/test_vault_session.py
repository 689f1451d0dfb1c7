"""The Vault session reads the environment's proxy settings once per address, and merges them exactly
as requests itself would (proxies, NO_PROXY, the CA bundle variables)."""

from __future__ import annotations

import pytest
import requests

from jobs.core.clients.vault_session import DeadlineSession

URL = "https://vault.example:8200/v1/secret/data/x"


def ours() -> DeadlineSession:
    return DeadlineSession(lambda: 10.0, True, connections=8)


def requests_own(session: requests.Session) -> dict[str, object]:
    return dict(requests.Session.merge_environment_settings(session, URL, {}, None, None, None))


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HTTPS_PROXY": "http://proxy.example:3128"},
        {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "vault.example"},
        {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "other.example"},
        {"ALL_PROXY": "socks5://proxy.example:1080", "REQUESTS_CA_BUNDLE": "/etc/ssl/bundle.pem"},
        {"CURL_CA_BUNDLE": "/etc/ssl/curl.pem"},
    ],
)
def test_the_environment_is_merged_as_requests_merges_it(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    session = ours()
    for _ in range(2):  # the second answer comes from what the first one read
        assert dict(session.merge_environment_settings(URL, {}, None, None, None)) == requests_own(session)


def test_the_proxy_settings_are_read_once_per_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    session = ours()
    first = session.merge_environment_settings(URL, {}, None, None, None)
    monkeypatch.setenv("HTTPS_PROXY", "http://elsewhere.example:3128")
    assert session.merge_environment_settings(URL, {}, None, None, None) == first
    other = session.merge_environment_settings("https://vault-2.example/v1/x", {}, None, None, None)
    assert other["proxies"]["https"] == "http://elsewhere.example:3128"
