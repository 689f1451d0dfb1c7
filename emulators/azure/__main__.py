"""`python -m emulators.azure`: the Entra ID + Key Vault emulator in the foreground (HTTPS)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emulators import base
from emulators.azure.model import DEFAULT_CLIENT_ID, DEFAULT_ISSUER, DEFAULT_SUBJECT, DEFAULT_TENANT_ID
from emulators.azure.server import AzureEmulator


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=Path, help="JSON/YAML seed file (see AzureEmulator.load_seed)")
    parser.add_argument("--cert-dir", type=Path, required=True, help="where the CA PEM and token file go")
    parser.add_argument("--tenant-id", default=DEFAULT_TENANT_ID)
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--issuer", default=DEFAULT_ISSUER)
    parser.add_argument("--subject", default=DEFAULT_SUBJECT)
    parser.add_argument("--resource", default=None, help="resource advertised in the challenge")
    parser.add_argument(
        "--cert-host",
        action="append",
        default=[],
        help="extra DNS name/IP for the serving certificate (e.g. a compose service name); repeatable",
    )
    parser.add_argument("--token-lifetime", type=int, default=3600)


def _build(args: argparse.Namespace) -> AzureEmulator:
    emulator = AzureEmulator(
        tenant_id=args.tenant_id,
        client_id=args.client_id,
        issuer=args.issuer,
        subject=args.subject,
        host=args.host,
        port=args.port,
        cert_dir=args.cert_dir,
        resource=args.resource,
        token_lifetime=args.token_lifetime,
        cert_hosts=("127.0.0.1", "localhost", "::1", *args.cert_host),
    )
    if args.seed:
        emulator.load_seed(args.seed)
    return emulator


def _ready(emulator: base.EmulatorServer, args: argparse.Namespace) -> str:
    """Writes the federated token and the pod's environment (`azure.env`) next to the CA."""
    assert isinstance(emulator, AzureEmulator)
    token_file = emulator.write_federated_token_file(args.cert_dir / "azure-identity-token", lifetime=86400)
    env = emulator.sdk_env(token_file)
    (args.cert_dir / "azure.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    return json.dumps(
        {"url": emulator.url, "vault_url": emulator.vault_url, "ca_pem_path": emulator.ca_pem_path, **env}
    )


STANDALONE = base.Standalone(
    prog="python -m emulators.azure",
    description="Entra ID workload-identity token endpoint + Azure Key Vault secrets emulator (HTTPS).",
    default_port=8443,
    add_arguments=_add_arguments,
    build=_build,
    ready=_ready,
)


def main(argv: list[str] | None = None) -> int:
    return base.main(STANDALONE, argv)


if __name__ == "__main__":
    sys.exit(main())
