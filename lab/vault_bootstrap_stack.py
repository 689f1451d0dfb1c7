"""A ready-to-run vault-bootstrap stack: real OpenBao + the Entra ID / Key Vault emulator + a catalog.

Reused by the e2e tests, the benchmark and (for the lead) `make demo`::

    with BootstrapStack.start(workdir) as stack:          # own OpenBao + emulator (or pass openbao=)
        stack.seed_akv({"ghcr-pull-secret": "..."})       # AKV content (backdated, see below)
        stack.write_catalog([{"name": "ghcr-token", "origin": "external",
                              "azureKeyVault": "ghcr-pull-secret", "required": True}])
        done = stack.run("--log-format", "json")         # the real console script, as a subprocess
        stack.vault_value("ghcr-token")                   # what landed in Vault

`env()` is exactly what a workload-identity pod would have: the webhook's AZURE_* variables pointing at
the emulator (authority + federated token file), REQUESTS_CA_BUNDLE for the emulator's CA, VAULT_ADDR +
VAULT_TOKEN, and the two documented emulator knobs AZURE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE=false (the
vault host is 127.0.0.1, which can never end in ".vault.azure.net") and AZURE_KEYVAULT_API_VERSION.

`settle()` waits until the emulator's clock has left the second in which the last AKV version was
created: vault-bootstrap only records its no-op fingerprint for AKV versions created in an earlier
second than the listing (two versions in one second would share a `created` time), so a run started
in that same second would skip the fingerprint once and refresh it (metadata only) on the next run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import yaml

from emulators.azure import AzureEmulator
from lab.openbao import OpenBao, start_openbao

BIN = Path(sys.executable).parent
VAULT_BOOTSTRAP = str(BIN / "vault-bootstrap")
API_VERSION = "7.6"


@dataclass
class BootstrapStack:
    emulator: AzureEmulator
    openbao: OpenBao
    mount: str
    workdir: Path
    token_file: Path
    catalog_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    _last_seed: float = 0.0

    # -- lifecycle -------------------------------------------------------------------------------------
    @classmethod
    @contextmanager
    def start(
        cls, workdir: Path, openbao: OpenBao | None = None, **emulator_kwargs: Any
    ) -> Iterator[BootstrapStack]:
        """Start the emulator (and OpenBao unless one is given), enable a fresh KV v2 mount, mint the
        federated token file. Everything started here is stopped on exit."""
        workdir.mkdir(parents=True, exist_ok=True)
        own_bao = openbao is None
        if openbao is None:
            (workdir / "openbao").mkdir(exist_ok=True)
        bao = openbao or start_openbao(workdir / "openbao")
        emulator = AzureEmulator(cert_dir=workdir / "azure", **emulator_kwargs)
        emulator.start()
        try:
            token_file = emulator.write_federated_token_file(workdir / "azure" / "azure-identity-token")
            stack = cls(
                emulator=emulator,
                openbao=bao,
                mount=bao.new_kv_mount(),
                workdir=workdir,
                token_file=token_file,
                catalog_path=workdir / "catalog.yaml",
            )
            yield stack
        finally:
            emulator.stop()
            if own_bao:
                bao.stop()

    # -- configuration ------------------------------------------------------------------------------------
    def env(self, **overrides: str) -> dict[str, str]:
        env = self.openbao.env()
        env.update(self.emulator.sdk_env(self.token_file))
        env.update(
            {
                "AZURE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE": "false",
                "AZURE_KEYVAULT_API_VERSION": API_VERSION,
                "SECRET_CATALOG": str(self.catalog_path),
            }
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def catalog(
        self,
        secrets: Sequence[Mapping[str, Any]],
        *,
        environment: str = "dev",
        fixtures: bool = True,
        prefix: str = "",
        **top_level: Any,
    ) -> dict[str, Any]:
        """A catalog for this stack; `top_level` adds sections such as `keycloak={"url": ...}`."""
        return {
            **top_level,
            "environment": environment,
            "fixtures": {"enabled": fixtures},
            "vault": {"kvMount": self.mount, "field": "value"},
            "azureKeyVault": {"url": self.emulator.vault_url + "/", "prefix": prefix},
            "secrets": [dict(s) for s in secrets],
        }

    def write_catalog(self, secrets: Sequence[Mapping[str, Any]], **options: Any) -> Path:
        self.catalog_path.write_text(yaml.safe_dump(self.catalog(secrets, **options), sort_keys=False))
        return self.catalog_path

    # -- Azure Key Vault content -------------------------------------------------------------------------
    def seed_akv(self, secrets: Mapping[str, str], **attributes: Any) -> dict[str, str]:
        """Set AKV secrets (a new version each); returns name -> version id."""
        versions = {
            name: self.emulator.set_secret(name, value, **attributes) for name, value in secrets.items()
        }
        self._last_seed = time.time()
        return versions

    def settle(self) -> None:
        """Sleep until the wall clock is past the second of the last seed (see the module docstring)."""
        wait = int(self._last_seed) + 1 - time.time()
        if wait > 0:
            time.sleep(wait + 0.02)

    def akv_value_gets(self) -> int:
        """Key Vault value reads (`GET /secrets/{name}/...`), not counting list pages."""
        return self.emulator.count(lambda method, path: method == "GET" and path.count("/") >= 2)

    # -- Vault ------------------------------------------------------------------------------------------
    def secret_values(self) -> list[str]:
        """Everything that must never be printed: AKV values, the Vault token, the federated JWT."""
        with self.emulator._lock:
            akv = [v.value for _, history in self.emulator._secrets.values() for v in history]
        return [*akv, self.openbao.root_token, self.token_file.read_text(encoding="utf-8").strip()]

    def vault(self) -> hvac.Client:
        return self.openbao.client()

    def vault_read(self, name: str) -> dict[str, Any] | None:
        """The latest version's body (`data` + `metadata`), or None when the key has no data."""
        try:
            body = self.vault().secrets.kv.v2.read_secret_version(
                path=name, mount_point=self.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            return None
        return dict(body["data"])

    def vault_value(self, name: str) -> str | None:
        body = self.vault_read(name)
        return None if body is None else body["data"].get("value")

    def vault_versions(self) -> dict[str, int]:
        """name -> current version of every key in the mount."""
        client = self.vault()
        try:
            keys = client.secrets.kv.v2.list_secrets(path="", mount_point=self.mount)["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            return {}
        return {
            key: int(
                client.secrets.kv.v2.read_secret_metadata(path=key, mount_point=self.mount)["data"][
                    "current_version"
                ]
            )
            for key in keys
        }

    def vault_custom_metadata(self, name: str) -> dict[str, str]:
        meta = self.vault().secrets.kv.v2.read_secret_metadata(path=name, mount_point=self.mount)
        return dict(meta["data"].get("custom_metadata") or {})

    # -- running the job ----------------------------------------------------------------------------------
    def run(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the real `vault-bootstrap` console script (catalog via $SECRET_CATALOG)."""
        return subprocess.run(
            [VAULT_BOOTSTRAP, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else self.env(),
            check=False,
            cwd=os.getcwd(),
        )
