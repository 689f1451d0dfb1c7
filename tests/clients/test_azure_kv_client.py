"""AzureKeyVaultClient (official SDK + WorkloadIdentityCredential) against the Entra ID + Key Vault
emulator."""

from __future__ import annotations

import ast
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emulators.azure import AzureEmulator
from jobs.core.clients import azure_kv
from jobs.core.clients.azure_kv import AzureKeyVaultClient
from jobs.core.errors import (
    ClientError,
    ConfigError,
    NotFound,
    PermissionDenied,
    Transient,
    Unauthorized,
    Unavailable,
)
from jobs.core.observed import AkvValue
from jobs.core.retry import RetryPolicy
from jobs.core.settings import AzureSettings
from lab.openbao import free_port

Make = Callable[..., AzureKeyVaultClient]


@pytest.fixture
def emu() -> Iterator[AzureEmulator]:
    with AzureEmulator() as emulator:
        assert isinstance(emulator, AzureEmulator)
        yield emulator


@pytest.fixture
def make(emu: AzureEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Make]:
    """Clients configured the way the pod is: webhook env + REQUESTS_CA_BUNDLE + the two documented knobs."""
    token_file = emu.write_federated_token_file(tmp_path / "azure-identity-token")
    for key, value in emu.sdk_env(token_file).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AZURE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE", "false")
    monkeypatch.setenv("AZURE_KEYVAULT_API_VERSION", "7.6")
    opened: list[AzureKeyVaultClient] = []

    def build(retry: RetryPolicy | None = None, **kwargs: object) -> AzureKeyVaultClient:
        settings = AzureSettings()  # type: ignore[call-arg]
        if kwargs:
            settings = settings.model_copy(update=kwargs)
        client = AzureKeyVaultClient(emu.vault_url, settings, retry or RetryPolicy(initial_wait=0.01))
        opened.append(client)
        return client

    yield build
    for client in opened:
        client.close()


def test_lists_every_page_with_attributes_and_server_time(emu: AzureEmulator, make: Make) -> None:
    now = int(time.time())
    for i in range(60):
        emu.set_secret(f"app-{i:02d}", f"value-{i:02d}")
    emu.set_secret("Retired", "x-value", enabled=False)
    emu.set_secret("expiring", "x-value", exp=now - 10, nbf=now - 100)
    emu.set_secret("cert", "pem-value", managed=True, content_type="application/x-pem-file")

    listing = make().list_secrets()

    assert len(listing.secrets) == 63
    assert [e.status for e in emu.exchanges if e.path == "/secrets"] == [401, 200, 200, 200]
    assert all(e.api_version == "7.6" for e in emu.exchanges if e.path == "/secrets")
    retired = listing.get("retired")
    assert retired is not None and retired.name == "Retired" and retired.enabled is False
    expiring = listing.get("expiring")
    assert expiring is not None and expiring.expires == now - 10
    assert expiring.unusable_reason(now) == "expired"
    cert = listing.get("cert")
    assert cert is not None and cert.managed
    app = listing.get("APP-07")
    assert app is not None and app.unusable_reason(now) is None
    assert app.created is not None and abs(app.created - now) <= 2
    assert listing.server_time is not None and abs(listing.server_time - now) <= 2
    assert emu.count(lambda m, p: m == "GET" and p.startswith("/secrets/")) == 0  # no value read


def test_fetches_only_the_given_names_concurrently_and_once(emu: AzureEmulator, make: Make) -> None:
    versions = {f"s{i}": emu.set_secret(f"s{i}", f"value-{i}") for i in range(20)}
    emu.latency = 0.05

    started = time.monotonic()
    fetched = make().fetch_values([*versions, "S3", "s3"])  # duplicates in any case: one GET
    elapsed = time.monotonic() - started

    assert set(fetched) == set(versions)
    for name, version in versions.items():
        outcome = fetched[name]
        assert isinstance(outcome, AkvValue)
        assert outcome.version == version
        assert outcome.value == f"value-{name[1:]}"
        assert "value-" not in repr(outcome)
    gets = [p for m, p in emu.requests if m == "GET" and p.startswith("/secrets/")]
    assert len(gets) == 20 + 1  # + the body-less challenge request
    assert elapsed < 20 * 0.05  # a bounded pool, not one at a time


def test_missing_and_disabled_secrets_are_not_found_per_name(emu: AzureEmulator, make: Make) -> None:
    emu.set_secret("ok", "ok-value")
    emu.set_secret("off", "off-value")
    emu.disable_secret("off")

    fetched = make().fetch_values(["ok", "off", "gone"])

    assert isinstance(fetched["ok"], AkvValue)
    assert isinstance(fetched["off"], NotFound) and "disabled" in str(fetched["off"])
    assert isinstance(fetched["gone"], NotFound) and "SecretNotFound" in str(fetched["gone"])


def test_throttling_honours_retry_after_and_pauses_every_worker(emu: AzureEmulator, make: Make) -> None:
    for i in range(30):
        emu.set_secret(f"s{i}", f"value-{i}")
    emu.throttle_limit, emu.throttle_window = 10, 1.0

    fetched = make(RetryPolicy(attempts=8, initial_wait=0.01)).fetch_values([f"s{i}" for i in range(30)])

    kv = [e for e in emu.exchanges if e.path.startswith("/secrets/")]
    assert all(isinstance(v, AkvValue) for v in fetched.values()), fetched
    throttled = [e for e in kv if e.status == 429]
    assert throttled
    first = throttled[0]
    retry_after = float(first.headers["Retry-After"])
    # after the first 429 every worker paused: apart from requests already in flight, nothing reached
    # the vault until Retry-After had passed
    quiet = [e for e in kv if first.at + 0.2 < e.at < first.at + retry_after - 0.05]
    assert quiet == []
    # one retry policy, paused vault-wide: no name was throttled more than a couple of times
    per_name = Counter(e.path for e in throttled)
    assert max(per_name.values()) <= 3


def test_transient_errors_are_retried_then_reported(emu: AzureEmulator, make: Make) -> None:
    emu.set_secret("s", "value-s")
    emu.fail_next(2, 503, path_prefix="/secrets/s")
    assert isinstance(make().fetch_values(["s"])["s"], AkvValue)

    emu.fail_next(10, 500, path_prefix="/secrets/s")
    outcome = make(RetryPolicy(attempts=2, initial_wait=0.01)).fetch_values(["s"])["s"]
    assert isinstance(outcome, Transient) and "500" in str(outcome)


def test_rbac_denial_is_permission_denied(emu: AzureEmulator, make: Make) -> None:
    assert emu.client_id is not None
    emu.deny_access(emu.client_id)
    with pytest.raises(PermissionDenied, match="ForbiddenByRbac"):
        make().list_secrets()


@pytest.mark.parametrize(
    ("mint", "code"),
    [
        (lambda e: e.mint_federated_token("system:serviceaccount:other:sa"), "AADSTS700213"),
        (lambda e: e.mint_federated_token(lifetime=-60), "AADSTS700024"),
    ],
    ids=["wrong-subject", "expired"],
)
def test_bad_federated_token_is_unauthorized_without_the_jwt(
    emu: AzureEmulator, make: Make, tmp_path: Path, mint: Callable[[AzureEmulator], str], code: str
) -> None:
    bad = tmp_path / "bad-token"
    jwt = mint(emu)
    bad.write_text(jwt, encoding="utf-8")
    with pytest.raises(Unauthorized) as caught:
        make(federated_token_file=bad).list_secrets()
    assert code in str(caught.value)
    assert jwt not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_token_rejected_by_key_vault_is_unauthorized(emu: AzureEmulator, make: Make) -> None:
    emu.set_secret("s", "value-s")
    client = make()
    client.list_secrets()
    emu._entra_kid = "rotated"  # Entra rotated its signing key: the token the SDK caches is now refused
    outcome = client.fetch_values(["s"])["s"]
    assert isinstance(outcome, Unauthorized)
    assert "AKV10046" in str(outcome)


def test_challenge_from_another_tenant_is_unauthorized(emu: AzureEmulator, make: Make) -> None:
    emu.tenant_id = "another-tenant"
    with pytest.raises(Unauthorized, match="another tenant than AZURE_TENANT_ID"):
        make().list_secrets()


def test_unreadable_token_file_is_a_config_error(make: Make, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AZURE_FEDERATED_TOKEN_FILE"):
        make(federated_token_file=tmp_path / "missing")


def test_challenge_resource_mismatch_names_the_setting(make: Make) -> None:
    with pytest.raises(ClientError, match="AZURE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE=false"):
        make(verify_challenge_resource=True).list_secrets()


def test_interrupt_stops_fetching(emu: AzureEmulator, make: Make) -> None:
    emu.set_secret("s", "value-s")
    interrupt = threading.Event()
    interrupt.set()
    outcome = make(RetryPolicy(interrupt=interrupt)).fetch_values(["s"])["s"]
    assert isinstance(outcome, Transient) and "not attempted" in str(outcome)
    assert emu.count(lambda m, p: p.startswith("/secrets/")) == 0


def test_no_library_exception_type_escapes_the_module() -> None:
    """Every `raise` in the client raises one of our taxonomy classes (or re-raises ours)."""
    tree = ast.parse(Path(azure_kv.__file__).read_text(encoding="utf-8"))
    ours = {
        "Transient",
        "Permanent",
        "NotFound",
        "Unauthorized",
        "PermissionDenied",
        "Unreachable",
        "ConfigError",
    }
    raised = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            raised.add(target.id if isinstance(target, ast.Name) else ast.unparse(target))
    assert raised <= ours | {"error"}, raised


def test_a_closed_key_vault_port_opens_the_breaker(make: Make) -> None:
    closed = f"https://127.0.0.1:{free_port()}"
    settings = AzureSettings()  # type: ignore[call-arg]
    client = AzureKeyVaultClient(closed, settings, RetryPolicy(initial_wait=0.01))
    try:
        with pytest.raises(Unavailable, match=f"Azure Key Vault at {closed} unavailable: connection refused"):
            client.list_secrets()
        started = time.monotonic()
        outcome = client.fetch_values([f"s{i}" for i in range(50)])
        assert time.monotonic() - started < 1.0
        assert {type(v) for v in outcome.values()} == {Unavailable}
    finally:
        client.close()


def test_a_challenge_naming_another_resource_never_gets_a_token_for_it(
    emu: AzureEmulator, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With AZURE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE=false the challenge may name any resource (here Azure
    Resource Manager, which the emulated tenant would issue tokens for): the client asks for Key Vault's."""
    emu.resource = "https://management.azure.com"
    requested: list[str] = []
    resource_for_scope = emu._resource_for_scope

    def recording(scope: str, tenant: str) -> str:
        requested.append(scope)
        return resource_for_scope(scope, tenant)

    monkeypatch.setattr(emu, "_resource_for_scope", recording)
    emu.set_secret("s", "akv-value-0001")
    fetched = make().fetch_values(["s"])["s"]
    assert isinstance(fetched, AkvValue) and fetched.value == "akv-value-0001"
    assert requested and set(requested) == {"https://vault.azure.net/.default"}
