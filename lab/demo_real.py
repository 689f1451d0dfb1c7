"""`make demo-real`: the `make demo` story (emulators/demo.py) with the real Keycloak instead of the
Keycloak emulator. Needs Java >= 21 and Maven; the first run fetches Keycloak from Maven Central
(lab/keycloak_real.py), later runs reuse the unpacked copy in `.cache/real-servers/`.

client-patcher runs twice against the real Keycloak, a real OpenBao and the Kubernetes emulator: the
first run writes every client secret and annotates the consumers, the second changes nothing.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from emulators.demo import counts, step
from lab.client_patcher_stack import BIN, DEFAULT_CLIENTS
from lab.keycloak_real import KEYCLOAK_VERSION, build_world, provision, requirements, start_keycloak
from lab.openbao import start_openbao
from lab.real_client_patcher import RealClientPatcherStack
from lab.real_tier import ADMIN_PASSWORD, ADMIN_USERNAME, RealServer


def main() -> int:
    missing = requirements()
    if missing:
        print("demo-real needs: " + "; ".join(missing), file=sys.stderr)
        return 2
    problems: list[str] = []
    env = dict(
        os.environ, KC_BOOTSTRAP_ADMIN_USERNAME=ADMIN_USERNAME, KC_BOOTSTRAP_ADMIN_PASSWORD=ADMIN_PASSWORD
    )
    with tempfile.TemporaryDirectory(prefix="secret-origin-demo-real-") as tmp:
        work = Path(tmp)
        print(f"starting Keycloak {KEYCLOAK_VERSION} (kc.sh start-dev) ...", flush=True)
        keycloak = start_keycloak(work / "keycloak", env)
        bao = start_openbao(work / "openbao")
        try:
            started = time.monotonic()
            api = keycloak.admin_api()
            world = build_world()
            provision(api, world)
            print(
                f"Keycloak {keycloak.url}: booted in {keycloak.boot_seconds:.1f} s, "
                f"provisioned in {time.monotonic() - started:.1f} s"
            )
            server = RealServer(keycloak, world, api)
            with RealClientPatcherStack.start(server, bao, bao.new_kv_mount(), work / "cp") as cp:
                text = ("--log-format", "text")
                command = [str(BIN / "client-patcher"), "--catalog", str(cp.catalog_path), *text]
                first = step("real Keycloak -> Vault, consumers refreshed", command, cp.env())
                second = step("second run: nothing to do", command, cp.env())
                if first.returncode or counts(first.stdout)["written"] != len(DEFAULT_CLIENTS):
                    problems.append("first client-patcher run did not write every client secret")
                if second.returncode or counts(second.stdout)["unchanged"] != len(DEFAULT_CLIENTS):
                    problems.append("second client-patcher run was not a no-op")
            api.close()
        finally:
            bao.stop()
            keycloak.stop()
    print()
    if problems:
        print("demo-real FAILED: " + "; ".join(problems))
        return 1
    print(f"demo-real OK against Keycloak {KEYCLOAK_VERSION}: first run wrote, second run changed nothing.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
