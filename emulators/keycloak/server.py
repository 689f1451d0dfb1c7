"""The Keycloak emulator: its state, its route table and its error shapes.

Each concern is one mixin in its own module (the handlers the table names live there); this class holds
the state they share (`__init__`), the route table, and what answers before and around it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.base import EmulatorServer, Request, Response, Route
from emulators.keycloak.admin import AdminApi
from emulators.keycloak.model import (
    MASTER,
    Realm,
    Session,
    jaxrs_error,
)
from emulators.keycloak.store import RealmStore
from emulators.keycloak.tokens import TokenEndpoint

_ADMIN_PATH = re.compile(r"^/admin/realms/([^/]+)(/.*)?$")
_CLIENT = "/admin/realms/{realm}/clients/{id}"


class KeycloakEmulator(RealmStore, TokenEndpoint, AdminApi, EmulatorServer):
    """Keycloak 26 token endpoint + client-secret Admin API. See the package docstring for the contract."""

    name = "keycloak-emulator"
    poll_interval = 0.05  # quick stop() for tests
    trailing_slash = True
    routes = (
        Route("POST", "/realms/{realm}/protocol/openid-connect/token", TokenEndpoint.token),
        Route("GET", "/realms/{realm}/protocol/openid-connect/certs", TokenEndpoint.certs),
        Route("GET", "/realms/{realm}/.well-known/openid-configuration", TokenEndpoint.well_known),
        Route("GET", "/admin/realms/{realm}/clients", AdminApi.list_clients),
        Route("POST", "/admin/realms/{realm}/clients", AdminApi.create_client),
        Route("GET", _CLIENT, AdminApi.get_client),
        Route("PUT", _CLIENT, AdminApi.update_client),
        Route("GET", f"{_CLIENT}/client-secret", AdminApi.get_secret),
        Route("POST", f"{_CLIENT}/client-secret", AdminApi.regenerate_secret),
        Route("GET", f"{_CLIENT}/client-secret/rotated", AdminApi.get_rotated_secret),
        Route("DELETE", f"{_CLIENT}/client-secret/rotated", AdminApi.delete_rotated_secret),
        Route("GET", "/admin/realms/{realm}/client-policies/policies", AdminApi.client_policies),
        Route("GET", "/admin/realms/{realm}/client-policies/profiles", AdminApi.client_profiles),
    )

    def __init__(
        self,
        token_lifespan: int | None = None,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        secret_read_requires_manage: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host=host, port=port)
        self.latency = latency
        self.token_lifespan = token_lifespan
        self.secret_read_requires_manage = secret_read_requires_manage
        self.clock = clock
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = uuid.uuid4().hex
        self._realms: dict[str, Realm] = {}
        self._sessions: dict[str, Session] = {}
        self.add_realm(MASTER)

    def error_body(self, status: int, request: Request) -> Response:
        if status >= 500:
            payload = {
                "error": "unknown_error",
                "error_description": "For more on this error consult the server log.",
            }
            return Response.json(status, payload)
        return jaxrs_error(status).response()

    def not_found(self, request: Request) -> Response:
        if match := _ADMIN_PATH.match(request.path):  # the admin API authenticates before it looks further
            with self._lock:
                request.params = {"realm": match.group(1)}
                self.admin_scope(request)
        return jaxrs_error(404).response()

    def method_not_allowed(self, request: Request, allowed: list[str]) -> Response:
        if request.path.startswith("/admin/realms/"):
            with self._lock:
                self.admin_client(request) if "id" in request.params else self.admin_scope(request)
        return jaxrs_error(405).response()
