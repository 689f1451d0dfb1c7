"""Keycloak client lookups for one run: one paged listing per realm where that pays, else per client.

The rule (docs/performance.md, client-patcher): a realm is listed (`GET …/clients?first=&max=`,
`PAGE` clients a page) when the run looks up at least `BATCH_MIN` clients there, and only while the
listing costs no more round trips than the lookups it replaces: at most ⌈clients / concurrency⌉ pages.
A realm that does not end within that budget (thousands of clients of which the catalog names a few)
is not used: its clients are looked up one by one, as is every realm below `BATCH_MIN`.

The listing only answers hits: a client it holds exactly once, in a full representation, is taken
from it; anything else — absent, listed twice, a brief representation, a realm that could not be
listed (404, 403, `200 []` to an identity with query-clients alone) — is looked up with
`find_client`, which keeps every refusal and its message as they are without a listing. A client
taken from the listing is marked `from_listing` (its secret is read again before it is written), and
each client is served from the listing once: a second lookup of the same client (two entries sharing
it, or a rotation in between) goes to the server. `hold` serialises the entries that share a client.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Final, TypeAlias

from jobs.core.clients.keycloak import KeycloakClient, client_info
from jobs.core.clients.keycloak import is_full_representation as is_full
from jobs.core.errors import ClientError, failure_reason
from jobs.core.observed import KeycloakClientInfo

log = logging.getLogger(__name__)
PAGE: Final = 500  # clients per listing page
BATCH_MIN: Final = 20  # catalog clients in a realm before it is worth listing
# clientId -> each listed client of that exact clientId (None: a brief representation)
Listing: TypeAlias = dict[str, list[KeycloakClientInfo | None]]


class ClientLookup:
    """`find_client(realm, client_id)` for the clients `wanted` ((realm, clientId) pairs) of one run."""

    def __init__(self, keycloak: KeycloakClient, wanted: Iterable[tuple[str, str]], concurrency: int) -> None:
        self._keycloak = keycloak
        self._wanted: dict[str, set[str]] = {}
        for realm, client_id in wanted:
            self._wanted.setdefault(realm, set()).add(client_id)
        self._concurrency = max(1, concurrency)
        self._lock = threading.Lock()
        self._realm_locks: dict[str, threading.Lock] = {}
        self._client_locks: dict[tuple[str, str], threading.Lock] = {}
        self._listed: dict[str, Listing | None] = {}

    def find_client(self, realm: str, client_id: str) -> KeycloakClientInfo:
        listed = self._listing(realm)
        if listed is not None:
            with self._lock:
                reps = listed.pop(client_id, None)  # served once
            if reps is not None and len(reps) == 1 and reps[0] is not None:
                return reps[0]
        return self._keycloak.find_client(realm, client_id)

    @contextmanager
    def hold(self, realm: str, client_id: str) -> Iterator[None]:
        """Entries that name the same client run one after the other."""
        with self._lock:
            lock = self._client_locks.setdefault((realm, client_id), threading.Lock())
        with lock:
            yield

    # -- the listing --------------------------------------------------------------------------------
    def pages_allowed(self, realm: str) -> int:
        """0 (no listing) below BATCH_MIN clients, else the round trips the lookups would cost."""
        wanted = len(self._wanted.get(realm, ()))
        return 0 if wanted < BATCH_MIN else math.ceil(wanted / self._concurrency)

    def _listing(self, realm: str) -> Listing | None:
        with self._lock:
            if realm in self._listed:
                return self._listed[realm]
            lock = self._realm_locks.setdefault(realm, threading.Lock())
        with lock:
            with self._lock:
                if realm in self._listed:
                    return self._listed[realm]
            listed = self._list(realm) if self.pages_allowed(realm) else None
            with self._lock:
                self._listed[realm] = listed
            return listed

    def _list(self, realm: str) -> Listing | None:
        """The wanted clients of `realm` by clientId; None when the realm is not listed to the end."""
        wanted, budget = self._wanted[realm], self.pages_allowed(realm)
        found: Listing = {}
        try:
            for number in range(budget):
                page = self._keycloak.list_clients(realm, number * PAGE, PAGE)
                for rep in page:
                    if isinstance(rep, dict) and rep.get("clientId") in wanted:
                        info = client_info(realm, rep, from_listing=True) if is_full(rep) else None
                        found.setdefault(str(rep["clientId"]), []).append(info)
                if len(page) < PAGE:
                    if not page and number == 0:
                        return None  # `200 []`: let each lookup say why (find_client)
                    log.info(
                        "listed Keycloak realm",
                        extra={"realm": realm, "pages": number + 1, "catalog_clients": len(found)},
                    )
                    return found
        except ClientError as exc:
            log.info(
                "Keycloak realm not listed; looking its clients up one by one",
                extra={"realm": realm, "reason": failure_reason(exc)},
            )
            return None
        log.info(
            "Keycloak realm has more clients than its catalog clients justify listing; looking them up "
            "one by one",
            extra={"realm": realm, "pages_read": budget, "catalog_clients": len(wanted)},
        )
        return None
