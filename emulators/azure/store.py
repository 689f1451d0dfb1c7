"""The setup API: app registrations and their federated credentials, secrets and their versions."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from pathlib import Path

import jwt

from emulators.azure.model import (
    FEDERATED_AUDIENCE,
    SECRET_NAME,
    AppRegistration,
    FederatedCredential,
    SecretVersion,
    unix_time,
)


class VaultStore:
    """What tests and the standalone mode call to shape the tenant and the vault the jobs will meet."""

    def register_app(
        self,
        tenant_id: str,
        client_id: str,
        issuer: str,
        subject: str,
        *,
        audience: str = FEDERATED_AUDIENCE,
    ) -> AppRegistration:
        """Register an app (or add a federated credential to an existing one) in a tenant."""
        with self._lock:
            self._tenants.add(tenant_id)
            app = self._apps.get((tenant_id, client_id))
            if app is None:
                app = AppRegistration(tenant_id, client_id, str(uuid.uuid4()))
                self._apps[(tenant_id, client_id)] = app
            credential = FederatedCredential(issuer, subject, audience)
            if credential not in app.credentials:
                app.credentials.append(credential)
            return app

    def mint_federated_token(
        self,
        subject: str | None = None,
        *,
        issuer: str | None = None,
        audience: str = FEDERATED_AUDIENCE,
        lifetime: int = 3600,
    ) -> str:
        """A projected service-account token signed by the emulator's cluster OIDC issuer key.

        A negative `lifetime` gives a token that expired that many seconds ago.
        """
        subject = subject or self.subject
        now = int(time.time())
        exp = now + lifetime
        iat = min(now, exp - 3600)
        namespace, _, account = subject.removeprefix("system:serviceaccount:").partition(":")
        claims = {
            "aud": [audience],
            "exp": exp,
            "iat": iat,
            "nbf": iat,
            "iss": issuer or self.issuer,
            "sub": subject,
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": account, "uid": str(uuid.uuid4())},
            },
        }
        return jwt.encode(claims, self._oidc_key, algorithm="RS256", headers={"kid": self._oidc_kid})

    def write_federated_token_file(
        self,
        path: str | Path,
        subject: str | None = None,
        *,
        issuer: str | None = None,
        audience: str = FEDERATED_AUDIENCE,
        lifetime: int = 3600,
    ) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            self.mint_federated_token(subject, issuer=issuer, audience=audience, lifetime=lifetime),
            encoding="utf-8",
        )
        return target

    def deny_access(self, client_id: str) -> None:
        """Remove the app's data-plane role: its Key Vault calls get 403 ForbiddenByRbac."""
        with self._lock:
            self._denied.add(client_id)

    def allow_access(self, client_id: str) -> None:
        with self._lock:
            self._denied.discard(client_id)

    def set_secret(
        self,
        name: str,
        value: str,
        *,
        enabled: bool = True,
        nbf: int | float | datetime | None = None,
        exp: int | float | datetime | None = None,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
        managed: bool = False,
    ) -> str:
        """Add a new version (32 hex chars, returned) and make it the latest."""
        if not SECRET_NAME.match(name):
            raise ValueError(f"invalid Key Vault secret name {name!r}: 1-127 of [0-9a-zA-Z-]")
        now = int(time.time())
        version = SecretVersion(
            version=uuid.uuid4().hex,
            value=value,
            enabled=enabled,
            nbf=unix_time(nbf),
            exp=unix_time(exp),
            created=now,
            updated=now,
            content_type=content_type,
            tags=dict(tags) if tags is not None else None,
            managed=managed,
        )
        with self._lock:
            display, history = self._secrets.get(name.lower(), (name, []))
            history.append(version)
            self._secrets[name.lower()] = (display, history)
        return version.version

    def disable_secret(self, name: str, version: str | None = None) -> None:
        self._set_enabled(name, version, enabled=False)

    def enable_secret(self, name: str, version: str | None = None) -> None:
        self._set_enabled(name, version, enabled=True)

    def delete_secret(self, name: str) -> None:
        """Delete every version (and purge: deleted-secret endpoints are not emulated)."""
        with self._lock:
            if self._secrets.pop(name.lower(), None) is None:
                raise KeyError(name)

    def get_value(self, name: str, version: str | None = None) -> str:
        return self._find(name, version).value

    def versions(self, name: str) -> list[str]:
        """Version ids, oldest first (the last one is what `GET /secrets/{name}/` returns)."""
        with self._lock:
            entry = self._secrets.get(name.lower())
            if entry is None:
                raise KeyError(name)
            return [v.version for v in entry[1]]

    def secret_names(self) -> list[str]:
        with self._lock:
            return sorted((display for display, _ in self._secrets.values()), key=str.lower)

    def load_seed(self, path: str | Path) -> int:
        """Load a seed file (JSON, or YAML by suffix); returns the number of versions written.

        Format: {"secrets": [{"name": "n", "value": "v" | "values": ["v1", "v2"], "enabled": bool,
        "contentType": str, "tags": {...}, "nbf": int, "exp": int, "managed": bool}, ...],
        "apps": [{"tenantId": ..., "clientId": ..., "issuer": ..., "subject": ...}]}.
        `secrets` may also be a mapping name -> value (or name -> the object above without name).
        """
        text = Path(path).read_text(encoding="utf-8")
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
        entries = data.get("secrets", [])
        if isinstance(entries, dict):
            entries = [
                {"name": key, **(item if isinstance(item, dict) else {"value": item})}
                for key, item in entries.items()
            ]
        written = 0
        for entry in entries:
            values = entry.get("values", [entry.get("value")] if "value" in entry else [])
            if not values:
                raise ValueError(f"{path}: secret {entry.get('name')!r} has neither value nor values")
            for value in values:
                self.set_secret(
                    entry["name"],
                    str(value),
                    enabled=bool(entry.get("enabled", True)),
                    nbf=entry.get("nbf"),
                    exp=entry.get("exp"),
                    content_type=entry.get("contentType"),
                    tags=entry.get("tags"),
                    managed=bool(entry.get("managed", False)),
                )
                written += 1
        for app in data.get("apps", []):
            self.register_app(
                app.get("tenantId", self.tenant_id),
                app["clientId"],
                app.get("issuer", self.issuer),
                app["subject"],
                audience=app.get("audience", FEDERATED_AUDIENCE),
            )
        return written

    def _find(self, name: str, version: str | None) -> SecretVersion:
        with self._lock:
            entry = self._secrets.get(name.lower())
            if entry is None:
                raise KeyError(name)
            history = entry[1]
            if not version:
                return history[-1]
            for candidate in history:
                if candidate.version == version.lower():
                    return candidate
        raise KeyError(f"{name}/{version}")

    def _set_enabled(self, name: str, version: str | None, *, enabled: bool) -> None:
        with self._lock:
            found = self._find(name, version)
            found.enabled = enabled
            found.updated = int(time.time())

    def _display_name(self, name: str) -> str:
        with self._lock:
            return self._secrets[name.lower()][0]
