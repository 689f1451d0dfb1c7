"""Entra ID and Key Vault as the emulator keeps them: constants, records and the two error shapes."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulators.base import Request

FEDERATED_AUDIENCE = "api://AzureADTokenExchange"


JWT_BEARER_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


KEY_VAULT_RESOURCE = "https://vault.azure.net"


DEFAULT_TENANT_ID = "6f1c2a4e-0b7d-4c3e-9a51-2d8e7f4b9c10"


DEFAULT_CLIENT_ID = "3b0d6e9a-8c4f-4f21-b7a3-5e2c1d9f0a64"


DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"


DEFAULT_SUBJECT = "system:serviceaccount:secret-origin:vault-bootstrap"


# azure-keyvault-secrets 4.12.0 `_shared/client_base.py` ApiVersion; DEFAULT_VERSION is the first.
API_VERSIONS = (
    "2026-04-01",
    "2025-07-01",
    "7.6",
    "7.5",
    "7.4",
    "7.3",
    "7.2",
    "7.1",
    "7.0",
    "2016-10-01",
)


LATEST_API_VERSION = API_VERSIONS[0]


MAX_PAGE_SIZE = 25


RECOVERY_LEVEL = "Recoverable+Purgeable"  # soft delete on (the default since 2020), purge protection off


RECOVERABLE_DAYS = 90


SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")


TENANT_PATTERN = re.compile(r"^[A-Za-z0-9.-]+$")


TOKEN_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/token/?$")


FIC_DOCS = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"


JSON_UTF8 = "application/json; charset=utf-8"


@dataclass(frozen=True)
class FederatedCredential:
    """A federated identity credential on an app registration (Entra matches it case-sensitively)."""

    issuer: str
    subject: str
    audience: str = FEDERATED_AUDIENCE


@dataclass
class AppRegistration:
    tenant_id: str
    client_id: str
    object_id: str
    credentials: list[FederatedCredential] = field(default_factory=list)


@dataclass
class SecretVersion:
    version: str
    value: str
    enabled: bool
    nbf: int | None
    exp: int | None
    created: int
    updated: int
    content_type: str | None
    tags: dict[str, str] | None
    managed: bool


@dataclass(frozen=True)
class Exchange:
    """One request/response pair as the emulator saw it (for asserting retries and timing)."""

    method: str
    path: str
    status: int
    at: float  # time.monotonic() when the response was produced
    headers: dict[str, str]
    api_version: str | None


class AadError(Exception):
    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.code = code
        self.description = description


class KvError(Exception):
    def __init__(
        self, status: int, code: str, message: str, inner: str | None = None, challenge: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner
        self.challenge = challenge
        self.retry_after: str | None = None


def unix_time(value: int | float | datetime | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)


def iso7(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def required_field(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise AadError(
            400,
            "invalid_request",
            900144,
            f"The request body must contain the following parameter: '{name}'.",
        )
    return value


def json_body(request: Request) -> dict[str, Any]:
    try:
        payload = request.json()
    except ValueError:
        raise KvError(400, "BadParameter", "The request body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise KvError(400, "BadParameter", "The request body must be a JSON object.")
    return payload
