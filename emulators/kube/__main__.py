"""`python -m emulators.kube --port 6443 --seed seed.yaml --out DIR [--tls] [--eso-vault URL]`: the API
server in the foreground; writes an admin kubeconfig and, per seeded service account, an in-cluster
style directory. `--eso-vault` turns on the ESO reconciler simulation, reading values from that Vault
with the token in $ESO_VAULT_TOKEN, so client-patcher's consumer verification sees ESO refresh."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from emulators import base, kube
from emulators.kube.seed import load_seed, write_account_files
from emulators.kube.server import KubeEmulator
from emulators.kube.types import DEFAULT_AUDIENCE
from emulators.kube.vault_source import TOKEN_ENV, kv2_source


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=Path, help="YAML seed file (see emulators.kube.load_seed)")
    parser.add_argument(
        "--out", type=Path, default=Path(".kube-emulator"), help="where kubeconfigs and tokens go"
    )
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--eso-versions", help="comma-separated, e.g. v1 or v1beta1 (default: seed or v1)")
    parser.add_argument("--token-lifetime", type=int, default=86400)
    parser.add_argument(
        "--eso-vault",
        metavar="URL",
        help=f"simulate ESO's reconciler, reading KV v2 values from this Vault (token: ${TOKEN_ENV})",
    )


def _read_seed(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    loaded = yaml.safe_load(path.read_text())
    if loaded is not None and not isinstance(loaded, dict):
        raise ValueError(f"{path}: the seed must be a mapping")
    return loaded or {}


def _build(args: argparse.Namespace) -> KubeEmulator:
    args.seed_document = seed = _read_seed(args.seed)
    versions = args.eso_versions.split(",") if args.eso_versions else seed.get("esoVersions") or ["v1"]
    emulator = KubeEmulator(eso_versions=versions, tls=args.tls, host=args.host, port=args.port)
    try:
        args.accounts = load_seed(emulator, seed)
    except ValueError as exc:
        raise ValueError(f"{args.seed}: {exc}") from None
    if args.eso_vault:
        token = os.environ.get(TOKEN_ENV)
        if not token:
            raise ValueError(f"--eso-vault needs the Vault token in ${TOKEN_ENV}")
        emulator.enable_eso_reconciler(kv2_source(args.eso_vault, token))
    return emulator


def _ready(emulator: base.EmulatorServer, args: argparse.Namespace) -> str:
    """Writes the kubeconfigs and token directories (the URL is known now) and says where they are."""
    assert isinstance(emulator, KubeEmulator)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    admin = emulator.kubeconfig(out / "kubeconfig", emulator.admin_token, user="admin")
    audiences_by_account = {
        (str(a["namespace"]), str(a["name"])): a.get("tokenAudiences") or [DEFAULT_AUDIENCE]
        for a in args.seed_document.get("serviceAccounts") or []
    }
    written = {
        f"{ns}/{name}": str(
            write_account_files(
                emulator, out, ns, name, audiences_by_account[(ns, name)], args.token_lifetime
            )
        )
        for ns, name in args.accounts
    }
    summary = {
        "url": emulator.url,
        "kubeconfig": str(admin),
        "ca": str(emulator.ca_pem_path) if emulator.ca_pem_path else None,
        "serviceAccounts": written,
    }
    return json.dumps(summary)


STANDALONE = base.Standalone(
    prog="python -m emulators.kube",
    description=(kube.__doc__ or "").splitlines()[0],
    default_port=0,
    add_arguments=_add_arguments,
    build=_build,
    ready=_ready,
)


def main(argv: list[str] | None = None) -> int:
    return base.main(STANDALONE, argv)


if __name__ == "__main__":
    sys.exit(main())
