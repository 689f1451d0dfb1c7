"""The ESO reconciler's value source for a standalone emulator (`python -m emulators.kube
--eso-vault URL`): a KV v2 key read from Vault or OpenBao over HTTP with the standard library, as
ESO's Vault provider reads it (`GET /v1/<mount>/data/<key>`, docs/design.md#vault-kv-v2). The token
comes from the environment (`ESO_VAULT_TOKEN`), never from the command line."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import quote

from emulators.kube.eso_reconciler import ValueSource

TOKEN_ENV = "ESO_VAULT_TOKEN"


def kv2_source(addr: str, token: str, timeout: float = 5.0) -> ValueSource:
    """Reads "<mount>/<key>" (or "<mount>/data/<key>"): the fields of the current version, or None
    when the key does not exist, its current version is deleted, or Vault cannot be read."""
    base = addr.rstrip("/")

    def read(remote_key: str) -> Mapping[str, str] | None:
        mount, _, name = remote_key.strip("/").partition("/")
        url = f"{base}/v1/{quote(mount)}/data/{quote(name.removeprefix('data/'))}"
        request = urllib.request.Request(url, headers={"X-Vault-Token": token})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            return None  # ESO: "could not get secret data from provider", Ready=False
        data = ((body or {}).get("data") or {}).get("data")
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) and data else None

    return read
