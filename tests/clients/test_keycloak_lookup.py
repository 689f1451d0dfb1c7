"""A run's Keycloak lookups (`ClientLookup`) against the Keycloak emulator: a realm the catalog names
many clients of is read with one paged listing, a small or huge realm client by client, and every
answer — found, refused, missing — is the one `find_client` gives without a listing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from emulators.keycloak import KeycloakEmulator
from jobs.core.clients.keycloak import KeycloakClient
from jobs.core.clients.keycloak_index import BATCH_MIN, PAGE, ClientLookup
from jobs.core.errors import ClientError
from jobs.core.observed import KeycloakClientInfo
from jobs.core.retry import RetryPolicy
from jobs.core.settings import KeycloakSettings

SA_SECRET = "sa-secret-0123456789abcdef"
FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)
MANY = [f"app-{n:03d}" for n in range(BATCH_MIN + 10)]
ODD = ["spa", "api", "jwt-app", "ghost", "app"]  # public, bearer-only, client-jwt, missing, near matches


@pytest.fixture
def emulator() -> Iterator[KeycloakEmulator]:
    with KeycloakEmulator() as keycloak:
        assert isinstance(keycloak, KeycloakEmulator)
        for realm in ("big", "small"):
            keycloak.add_realm(realm)
        keycloak.add_client(
            "master",
            "client-patcher",
            secret=SA_SECRET,
            service_account=True,
            service_account_roles={
                f"{realm}-realm": ["query-clients", "view-clients", "manage-clients"]
                for realm in ("big", "small")
            },
        )
        for client_id in MANY:
            keycloak.add_client("big", client_id)
        keycloak.add_client("big", "spa", public=True)
        keycloak.add_client("big", "api", bearer_only=True)
        keycloak.add_client("big", "jwt-app", authenticator="client-jwt")
        keycloak.add_client("big", "app-")  # a near match of every app-NNN
        keycloak.add_client("big", "not-in-the-catalog")
        keycloak.add_client("small", "one")
        yield keycloak


@pytest.fixture
def client(emulator: KeycloakEmulator) -> Iterator[KeycloakClient]:
    settings = KeycloakSettings(KEYCLOAK_CLIENT_ID="client-patcher", KEYCLOAK_CLIENT_SECRET=SA_SECRET)  # type: ignore[call-arg]
    with KeycloakClient(emulator.url, "master", settings, FAST) as keycloak:
        keycloak.login()
        yield keycloak


def answer(fn: object, realm: str, client_id: str) -> tuple[KeycloakClientInfo | None, str | None, str]:
    """(info, listed secret, error) as a comparable triple."""
    try:
        info = fn(realm, client_id)  # type: ignore[operator]
    except ClientError as exc:
        return None, None, f"{type(exc).__name__}: {exc}"
    return info, info.listed_secret, ""


class Lookups:
    """The client searches (`GET …/clients`) the emulator answers, by kind."""

    def __init__(self, emulator: KeycloakEmulator) -> None:
        self.seen: list[dict[str, list[str]]] = []
        original = emulator.dispatch

        def dispatch(request: Any) -> Any:
            if request.method == "GET" and request.path.endswith("/clients"):
                self.seen.append(dict(request.query))
            return original(request)

        emulator.dispatch = dispatch  # type: ignore[method-assign]

    def counts(self) -> tuple[int, int]:
        """(listing pages, clientId lookups) since the last call."""
        pages = sum(1 for q in self.seen if "first" in q and "clientId" not in q)
        exact = sum(1 for q in self.seen if "clientId" in q)
        self.seen.clear()
        return pages, exact


def test_a_realm_with_many_catalog_clients_is_listed_once_whatever_the_threads(
    emulator: KeycloakEmulator, client: KeycloakClient
) -> None:
    wanted = [("big", c) for c in MANY]
    lookup, seen = ClientLookup(client, wanted, concurrency=8), Lookups(emulator)
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda pair: lookup.find_client(*pair), wanted))
    assert seen.counts() == (1, 0)
    assert [f.client_id for f in found] == MANY
    assert all(f.from_listing for f in found)
    for info in found:
        assert info.listed_secret == emulator.client_secret("big", info.client_id)
        assert info == client.find_client("big", info.client_id)


def test_every_refusal_and_miss_reads_as_without_a_listing(
    emulator: KeycloakEmulator, client: KeycloakClient
) -> None:
    wanted = [("big", c) for c in (*MANY, *ODD)] + [("nope", c) for c in MANY]
    lookup = ClientLookup(client, wanted, concurrency=4)
    for realm, client_id in [("big", c) for c in ODD] + [("nope", "app-000")]:
        assert answer(lookup.find_client, realm, client_id) == answer(client.find_client, realm, client_id)


def test_a_client_is_served_from_the_listing_once(emulator: KeycloakEmulator, client: KeycloakClient) -> None:
    """A second lookup (two entries sharing the client, or after a rotation) reads the server again."""
    lookup = ClientLookup(client, [("big", c) for c in MANY], concurrency=8)
    first = lookup.find_client("big", MANY[0])
    emulator.set_secret("big", MANY[0], "rotated-behind-the-listing-0001")
    again = lookup.find_client("big", MANY[0])
    assert first.from_listing and not again.from_listing
    assert again.listed_secret == "rotated-behind-the-listing-0001" != first.listed_secret


def test_a_realm_with_few_catalog_clients_is_not_listed(
    emulator: KeycloakEmulator, client: KeycloakClient
) -> None:
    lookup = ClientLookup(client, [("small", "one"), ("big", MANY[0])], concurrency=8)
    seen = Lookups(emulator)
    assert lookup.find_client("small", "one").client_id == "one"
    assert lookup.find_client("big", MANY[0]).from_listing is False
    assert seen.counts() == (0, 2)


def test_a_realm_larger_than_its_page_budget_is_looked_up_client_by_client(
    emulator: KeycloakEmulator, client: KeycloakClient
) -> None:
    """BATCH_MIN catalog clients at concurrency 8 justify ceil(BATCH_MIN / 8) pages; a realm with more
    clients than those pages hold is abandoned after them (never listed to the end)."""
    budget = -(-BATCH_MIN // 8)
    for n in range(budget * PAGE):
        emulator.add_client("big", f"zz-filler-{n:05d}")
    wanted = [("big", c) for c in MANY[:BATCH_MIN]]
    lookup, seen = ClientLookup(client, wanted, concurrency=8), Lookups(emulator)
    found = [lookup.find_client(*pair) for pair in wanted]
    assert seen.counts() == (budget, BATCH_MIN)
    assert not any(f.from_listing for f in found)


def test_entries_sharing_a_client_are_held_one_at_a_time(client: KeycloakClient) -> None:
    lookup = ClientLookup(client, [], concurrency=8)
    inside, most = 0, 0
    lock = threading.Lock()

    def hold(_: int) -> None:
        nonlocal inside, most
        with lookup.hold("big", "app-000"):
            with lock:
                inside += 1
                most = max(most, inside)
            threading.Event().wait(0.01)
            with lock:
                inside -= 1

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(hold, range(8)))
    assert most == 1
