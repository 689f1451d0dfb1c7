"""`python -m emulators.keycloak`: one Keycloak emulator in the foreground, seeded from files."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from emulators import base, keycloak
from emulators.keycloak.model import MASTER
from emulators.keycloak.server import KeycloakEmulator


def _load_seed_file(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the seed must be a mapping with a 'realms' list")
    return data


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=Path, help="JSON or YAML seed (realms -> clients -> users)")
    parser.add_argument(
        "--import-realm",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a Keycloak RealmRepresentation JSON file, as `kc.sh --import-realm` reads it; repeatable",
    )
    parser.add_argument(
        "--token-lifespan", type=int, default=None, help="override every realm's lifespan (s)"
    )


def _build(args: argparse.Namespace) -> KeycloakEmulator:
    emulator = KeycloakEmulator(token_lifespan=args.token_lifespan, host=args.host, port=args.port)
    admin_username = os.environ.get("KC_BOOTSTRAP_ADMIN_USERNAME")
    admin_password = os.environ.get("KC_BOOTSTRAP_ADMIN_PASSWORD")
    if admin_username and admin_password:  # Keycloak 26's temporary bootstrap admin
        emulator.add_user(MASTER, admin_username, admin_password, realm_roles=["admin"])
    source: Path | None = None
    try:
        if args.seed is not None:
            source = args.seed
            emulator.load_seed(_load_seed_file(args.seed))
        for source in args.import_realm:
            emulator.import_realm(json.loads(source.read_text(encoding="utf-8")), str(source))
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot load {source}: {exc}") from None
    return emulator


STANDALONE = base.Standalone(
    prog="python -m emulators.keycloak",
    description=(keycloak.__doc__ or "").splitlines()[0],
    default_port=8080,
    add_arguments=_add_arguments,
    build=_build,
    ready=lambda emulator, _args: f"keycloak emulator listening on {emulator.url}",
)


def main(argv: list[str] | None = None) -> int:
    return base.main(STANDALONE, argv)


if __name__ == "__main__":
    sys.exit(main())
