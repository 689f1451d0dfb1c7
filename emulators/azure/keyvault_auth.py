"""Key Vault's door: throttling, the bearer challenge, access-token validation, api-version and RBAC."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import jwt

from emulators.azure.model import (
    API_VERSIONS,
    JSON_UTF8,
    LATEST_API_VERSION,
    KvError,
)
from emulators.base import Request, Response


class KeyVaultAuth:
    """Runs before the route table for every `/secrets` path, in the service's order."""

    def admit(self, request: Request) -> str:
        """The caller's app id, or a `KvError` (429, 401 with the challenge, 400 for the api-version)."""
        throttled = self._throttle()
        if throttled is not None:
            raise throttled
        app_id = self._authenticate(request)
        api_version = request.q("api-version")
        if not api_version:
            raise KvError(400, "BadParameter", "The 'api-version' query parameter is missing.")
        if api_version not in API_VERSIONS:
            raise KvError(
                400,
                "BadParameter",
                f"The specified version ({api_version}) is not recognized. Consider using the latest "
                f"supported version ({LATEST_API_VERSION}).",
            )
        return app_id

    def _kv_error_response(self, request: Request, err: KvError) -> Response:
        error: dict[str, Any] = {"code": err.code, "message": err.message}
        if err.inner:
            error["innererror"] = {"code": err.inner}
        headers = self._kv_headers(request)
        if err.challenge:
            headers["WWW-Authenticate"] = (
                f'Bearer authorization="{self.authority}/{self.tenant_id}", '
                f'resource="{self._challenge_resource(request)}"'
            )
        if err.retry_after is not None:
            headers["Retry-After"] = err.retry_after
        return Response.json(err.status, {"error": error}, headers, content_type=JSON_UTF8)

    def _kv_headers(self, request: Request) -> dict[str, str]:
        headers = {
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Expires": "-1",
            "x-ms-keyvault-region": "emulator",
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-keyvault-service-version": "1.9.0.0",
        }
        client_request_id = request.headers.get("x-ms-client-request-id")
        if client_request_id:
            headers["x-ms-client-request-id"] = client_request_id
        return headers

    def _origin(self, request: Request) -> str:
        host = request.headers.get("host") or f"{self.host}:{self.port}"
        return f"https://{host}"

    def _challenge_resource(self, request: Request) -> str:
        return self.resource or self._origin(request)

    def _throttle(self) -> KvError | None:
        limit = self.throttle_limit
        if limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            while self._hits and self._hits[0] <= now - self.throttle_window:
                self._hits.popleft()
            if len(self._hits) >= limit:  # throttled calls do not count (service-limits doc)
                wait = self._hits[0] + self.throttle_window - now
                err = KvError(
                    429,
                    "Throttled",
                    "Request was not processed because too many requests were received. "
                    "Reason: VaultRequestTypeLimitReached",
                )
                err.retry_after = str(max(1, math.ceil(wait)))
                return err
            self._hits.append(now)
        return None

    def reset_throttle(self) -> None:
        with self._lock:
            self._hits.clear()

    def _authenticate(self, request: Request) -> str:
        token = request.bearer
        if not token:
            raise _unauthorized("AKV10000: Request is missing a Bearer or PoP token.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _unauthorized("[BearerReadAccessTokenFailed] Error validating token: 'S2S12005'.") from None
        if header.get("kid") != self._entra_kid:
            raise _unauthorized("AKV10046: Unable to resolve the key used for signature validation.")
        try:
            claims = jwt.decode(
                token,
                self._entra_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise _unauthorized(
                "AKV10046: Unable to resolve the key used for signature validation."
            ) from None
        if time.time() >= float(claims.get("exp", 0)):
            raise _unauthorized("[TokenExpired] Error validating token: 'S2S12086'.")
        accepted = self._accepted_resources() | {self._challenge_resource(request).rstrip("/")}
        aud = str(claims.get("aud", ""))
        if aud.rstrip("/") not in accepted:
            raise _unauthorized(
                f"AKV10022: Invalid audience. Expected {self._challenge_resource(request)}, found: {aud}."
            )
        if claims.get("tid") != self.tenant_id:
            raise _unauthorized(
                f"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{self.tenant_id}/, "
                f"https://login.microsoftonline.com/{self.tenant_id}/v2.0, found {claims.get('iss')}."
            )
        return str(claims.get("appid", ""))

    def _authorize(self, request: Request, app_id: str, action: str) -> None:
        with self._lock:
            denied = app_id in self._denied
        if denied:
            vault = urlsplit(self._origin(request)).netloc
            raise KvError(
                403,
                "Forbidden",
                "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny "
                "assignments or role definitions were changed recently, please observe propagation time.\r\n"
                f"Caller: appid={app_id};iss=https://sts.windows.net/{self.tenant_id}/\r\n"
                f"Action: 'Microsoft.KeyVault/vaults/secrets/{action}'\r\n"
                f"Resource: '{vault}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\n"
                "DecisionReason: null \r\n",
                inner="ForbiddenByRbac",
            )


def _unauthorized(message: str) -> KvError:
    """A 401 with the bearer challenge, as Key Vault answers every token problem."""
    return KvError(401, "Unauthorized", message, challenge=True)
