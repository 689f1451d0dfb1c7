"""The Vault session reads the environment's proxy settings, ~/.netrc and the kind of CA path once per
address, and ends up with exactly what requests itself would (proxies, NO_PROXY, the CA bundle
variables, a netrc login, a CA file or directory)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

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


def prepared(session: requests.Session, url: str = URL) -> requests.PreparedRequest:
    return session.prepare_request(requests.Request("GET", url, headers={"X-Vault-Token": "t"}))


def test_a_netrc_login_is_sent_as_requests_sends_it_and_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine vault.example login ops password pw\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    session = ours()
    basic = "Basic " + base64.b64encode(b"ops:pw").decode()
    assert prepared(session).headers["Authorization"] == basic
    assert prepared(requests.Session()).headers["Authorization"] == basic  # requests' own
    netrc.unlink()
    assert prepared(session).headers["Authorization"] == basic  # not looked up again
    assert "Authorization" not in prepared(session, "https://vault-2.example/v1/x").headers
    session.trust_env = False
    assert "Authorization" not in prepared(session).headers


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_the_ca_path_is_used_as_requests_uses_it_and_looked_at_once(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = tmp_path / "ca"
    ca.mkdir() if kind == "directory" else ca.write_text("")
    adapter = ours().get_adapter(URL)
    own = requests.adapters.HTTPAdapter()
    request = prepared(requests.Session())
    expected = own.build_connection_pool_key_attributes(request, str(ca))
    looked: list[str] = []
    real_isdir = os.path.isdir
    monkeypatch.setattr(os.path, "isdir", lambda path: looked.append(str(path)) or real_isdir(path))
    for _ in range(3):
        assert adapter.build_connection_pool_key_attributes(request, str(ca)) == expected
    assert looked == [str(ca)]
