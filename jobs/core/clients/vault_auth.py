"""Vault authentication for `jobs.core.clients.vault.VaultClient`: a token from the settings, or a
Kubernetes-auth login with the pod's service-account JWT, renewed before its lease ends and once more
when Vault says the token died mid-run (docs/design.md#settings-and-credentials)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Final

import hvac
import hvac.exceptions
import requests

from jobs.core.clients.vault_errors import SYSTEM, translate
from jobs.core.errors import Permanent, PermissionDenied, Unauthorized
from jobs.core.logs import register_secret
from jobs.core.retry import Breaker, RetryPolicy
from jobs.core.settings import VaultSettings

log = logging.getLogger(__name__)
# Re-login this long before a Kubernetes-auth token's lease ends.
_RELOGIN_MARGIN: Final = 0.1


class VaultAuth:
    """The token of one `hvac.Client`: set from VAULT_TOKEN, or logged in (and again) by Kubernetes auth."""

    def __init__(
        self,
        client: hvac.Client,
        settings: VaultSettings,
        retry: RetryPolicy,
        breaker: Breaker,
        clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._settings = settings
        self._retry = retry
        self._breaker = breaker
        self._clock = clock
        self._target = f"Vault at {settings.addr}"
        self._client.token = None
        self._token_expires_at: float | None = None
        self._login_lock = threading.Lock()
        if settings.uses_token and settings.token is not None:
            token = settings.token.get_secret_value()
            register_secret(token)
            self._client.token = token

    def login(self) -> None:
        """Token auth needs no call; Kubernetes auth logs in with the service-account JWT."""
        if self._settings.uses_token:
            return
        with self._login_lock:
            self._kubernetes_login()

    def _kubernetes_login(self) -> None:
        role = self._settings.auth_role or ""
        mount = self._settings.auth_mount
        try:
            jwt = self._settings.k8s_token_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise Permanent(
                SYSTEM,
                f"cannot read the service-account token {self._settings.k8s_token_path}: {exc.strerror}",
            ) from None
        register_secret(jwt)
        path = f"auth/{mount}/login"

        def attempt() -> dict[str, Any]:
            try:
                result: dict[str, Any] = self._client.auth.kubernetes.login(
                    role=role, jwt=jwt, use_token=False, mount_point=mount
                )
                return result
            except (hvac.exceptions.VaultError, requests.RequestException) as exc:
                error = translate(exc, "login", path, self._target)
                if isinstance(error, PermissionDenied):
                    error = Unauthorized(SYSTEM, f"Kubernetes auth login as role {role!r} refused (403)")
                elif isinstance(error, Permanent):
                    error = Permanent(SYSTEM, f"Kubernetes auth login as role {role!r} rejected ({error})")
                raise error from None

        auth = self._retry.call(attempt, self._breaker)["auth"]
        token = str(auth["client_token"])
        register_secret(token)
        self._client.token = token
        lease = float(auth.get("lease_duration") or 0)
        self._token_expires_at = self._clock() + lease * (1 - _RELOGIN_MARGIN) if lease > 0 else None
        log.info(
            "logged in to Vault", extra={"auth": "kubernetes", "role": role, "lease_seconds": int(lease)}
        )

    def ensure_token(self) -> None:
        if self._settings.uses_token:
            return
        expires = self._token_expires_at
        if self._client.token is None or (expires is not None and self._clock() >= expires):
            self.login()

    def token_is_valid(self) -> bool:
        """Vault answers 403 both for a missing policy and for a dead token; lookup-self tells them
        apart (asked only after a 403, so it costs nothing on the happy path)."""
        try:
            self._client.auth.token.lookup_self()
        except hvac.exceptions.Forbidden:
            return False
        except (hvac.exceptions.VaultError, requests.RequestException):
            return True  # cannot tell; keep the original permission-denied verdict
        return True
