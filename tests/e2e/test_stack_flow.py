"""Backend-neutral end to end: the real console scripts as subprocesses against `stack` — OpenBao + the
emulators by default, the real servers of docker-compose.test.yml with SECRET_ORIGIN_STACK=compose.

Everything here is set up and observed only through the servers' own APIs (hvac, python-keycloak's
KeycloakAdmin, azure-keyvault-secrets' SecretClient, the kubernetes client), never through an emulator's
Python handle, and every test works in a fresh KV mount with fresh Key Vault names, so the same tests
can run again and again against one long-lived compose stack. The ExternalSecrets are the two of
compose/kube-seed.yaml (client-patcher's grant names exactly them); each test re-creates them first.

The last test proves the `compose` provider on this machine, which has no Docker engine: it starts the
local equivalents of the compose services the way docker-compose.test.yml starts them and points the
provider at them through the SECRET_ORIGIN_* variables alone.
"""

from __future__ import annotations

import http.server
import json
import os
import select
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import WorkloadIdentityCredential
from cryptography import x509
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from lab.openbao import free_port, start_openbao
from lab.stack import KUBE_SEED, REALM_IMPORT, ROOT, Stack, StackUnavailable, open_stack
from tests.support.summary import read_summary

BIN = Path(sys.executable).parent
PLATFORM = "platform-app-master-client-secret"
CONSUMERS = (("ameide-dev", "platform-app-master-client-sync"), ("ameide-dev", "www-ameide-platform-auth"))
# The realm import's clients that client-patcher must refuse, and the reason it must give
# (docs/design.md#client-patcher).
REFUSED = {
    "public-spa-client-secret": ("public-spa", "is a public client: it has no client secret"),
    "jwt-client-secret": ("jwt-client", "uses 'client-jwt' authentication, not 'client-secret'"),
}


@dataclass
class World:
    """One test's slice of the stack: a fresh KV mount, fresh AKV names, its own catalog and token."""

    stack: Stack
    mount: str
    prefix: str  # Key Vault names are prefix + entry name
    token: str = field(repr=False)
    catalog: Path
    fixtures: dict[str, str] = field(repr=False)
    akv: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, stack: Stack, workdir: Path) -> World:
        workdir.mkdir(parents=True, exist_ok=True)
        mount = stack.vault.new_kv_mount()
        tag = uuid.uuid4().hex[:8]
        fixtures = {PLATFORM: f"fixture-platform-{tag}", "grafana-admin-password": f"fixture-grafana-{tag}"}
        world = cls(
            stack, mount, f"t{tag}-", stack.vault.token_for_mount(mount), workdir / "catalog.yaml", fixtures
        )
        world.write_catalog()
        for namespace, name in CONSUMERS:
            stack.kube.put_external_secret(namespace, name, f"{mount}/{PLATFORM}")
        return world

    def write_catalog(self, *, rotate_run_id: str | None = None) -> None:
        platform: dict[str, Any] = {"realm": self.stack.keycloak.realm, "clientId": "platform-app-master"}
        if rotate_run_id is not None:
            platform["rotate"] = {"runId": rotate_run_id}
        secrets: list[dict[str, Any]] = [
            {"name": "ghcr-token", "origin": "external", "required": True},
            {"name": "anthropic-api-key", "origin": "external"},
            {"name": "openai-api-key", "origin": "external"},  # not in Key Vault, not required: skipped
            {
                "name": PLATFORM,
                "origin": "service-generated",
                "keycloak": platform,
                "fixture": self.fixtures[PLATFORM],
                "consumers": [{"namespace": ns, "name": name} for ns, name in CONSUMERS],
            },
            *(
                {
                    "name": name,
                    "origin": "service-generated",
                    "keycloak": {"realm": self.stack.keycloak.realm, "clientId": client_id},
                }
                for name, (client_id, _) in REFUSED.items()
            ),
            {
                "name": "grafana-admin-password",
                "origin": "helm-generated",
                "fixture": self.fixtures["grafana-admin-password"],
            },
        ]
        document = {
            "environment": "dev",
            "fixtures": {"enabled": True},
            "vault": {"kvMount": self.mount, "field": "value"},
            "azureKeyVault": {"url": self.stack.azure.vault_url + "/", "prefix": self.prefix},
            # The service-account client lives in the managed realm (compose/keycloak/ameide-realm.json).
            "keycloak": {"url": self.stack.keycloak.url, "authRealm": self.stack.keycloak.realm},
            "secrets": secrets,
        }
        self.catalog.write_text(yaml.safe_dump(document, sort_keys=False))

    def seed_akv(self) -> None:
        tag = uuid.uuid4().hex
        self.akv = {"ghcr-token": f"ghp_{tag[:20]}", "anthropic-api-key": f"sk-ant-{tag[12:]}"}
        self.stack.azure.set_secrets({self.prefix + name: value for name, value in self.akv.items()})

    # -- running -------------------------------------------------------------------------------------------
    def run(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        """The real console script; checks that no secret value reached stdout or stderr."""
        done = subprocess.run(
            [str(BIN / script), *args, "--log-format", "json", "--summary", "full"],
            env=self.stack.job_env(self.catalog, self.token),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assert_nothing_secret_in(done.stdout + done.stderr)
        return done

    def secret_values(self) -> list[str]:
        keycloak = [self.stack.keycloak.secret_of(client) for client in ("platform-app-master", "jwt-client")]
        return [*self.akv.values(), *self.fixtures.values(), self.token, *self.stack.credentials(), *keycloak]

    def assert_nothing_secret_in(self, output: str) -> None:
        dev_literals = REALM_IMPORT.read_text(encoding="utf-8")  # "dev-only-...-client-secret" tails are
        for value in self.secret_values():  # also entry names, so only generated values get the tail check
            assert value not in output, "a secret value was printed"
            if len(value) >= 16 and value not in dev_literals:
                assert value[-12:] not in output, "part of a secret value was printed"

    # -- observing -----------------------------------------------------------------------------------------
    def vault(self, name: str) -> tuple[int, str | None, dict[str, str]]:
        return self.stack.vault.state(self.mount, name)

    def versions(self) -> dict[str, int]:
        names = [
            "ghcr-token",
            "anthropic-api-key",
            "openai-api-key",
            PLATFORM,
            "grafana-admin-password",
            *REFUSED,
        ]
        return {name: self.vault(name)[0] for name in names}

    def consumers(self) -> dict[tuple[str, str], tuple[str, dict[str, str]]]:
        return {c: self.stack.kube.external_secret(*c) for c in CONSUMERS}


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        return read_summary(done.stdout)
    except ValueError:
        pytest.fail(f"no JSON summary (exit {done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")


def entries(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {e["entry"]: e for e in summary(done)["entries"]}


# -- scenarios (shared by the `stack` tests and the compose-provider proof) ---------------------------------
def vault_bootstrap_syncs_then_writes_nothing(world: World) -> None:
    world.seed_akv()
    first = world.run("vault-bootstrap")
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    result = entries(first)
    assert {
        name: result[name]["action"] for name in ("ghcr-token", "anthropic-api-key", "openai-api-key")
    } == {
        "ghcr-token": "written",
        "anthropic-api-key": "written",
        "openai-api-key": "skipped",
    }
    assert result[PLATFORM]["action"] == result["grafana-admin-password"]["action"] == "seeded_fixture"
    for name, value in world.akv.items():
        version, stored, metadata = world.vault(name)
        assert (version, stored) == (1, value)
        assert (metadata["authority"], metadata["managed-by"]) == ("azure-key-vault", "secret-origin")
    for name, value in world.fixtures.items():
        version, stored, metadata = world.vault(name)
        assert (version, stored, metadata["fixture"]) == (1, value, "true")
    before = world.versions()

    second = world.run("vault-bootstrap")
    assert second.returncode == 0, second.stdout + second.stderr[-3000:]
    counts = summary(second)["counts"]
    assert (counts["written"], counts["seeded_fixture"], counts["failed"]) == (0, 0, 0)
    assert world.versions() == before


def client_patcher_writes_keycloak_secret_then_patches_nothing(world: World) -> None:
    world.seed_akv()
    seeded = world.run("vault-bootstrap")  # the fixture goes in first, as in a fresh dev cluster
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr[-3000:]
    assert world.vault(PLATFORM)[:2] == (1, world.fixtures[PLATFORM])
    before = world.consumers()

    first = world.run("client-patcher")
    assert first.returncode == 1, first.stdout + first.stderr[-3000:]  # the two refused clients
    result = entries(first)
    version, value, metadata = world.vault(PLATFORM)
    assert (version, value) == (2, world.stack.keycloak.secret_of("platform-app-master"))
    assert result[PLATFORM]["action"] == "written", result[PLATFORM]
    assert metadata["authority"] == "keycloak" and metadata["fixture"] == "false"
    assert metadata["keycloak-client-id"] == "platform-app-master"
    for name, (client_id, reason) in REFUSED.items():
        assert result[name]["action"] == "failed"
        assert result[name]["reason"].startswith(f"client {world.stack.keycloak.realm}/{client_id} {reason}")
        assert world.vault(name)[0] == 0  # nothing written for a refused client
    after = world.consumers()
    for consumer in CONSUMERS:
        assert after[consumer][1]["force-sync"].startswith("v2-")  # version 2 and its creation time
        assert after[consumer][0] != before[consumer][0]

    second = world.run("client-patcher")
    assert second.returncode == 1
    assert entries(second)[PLATFORM]["action"] == "unchanged"
    assert world.vault(PLATFORM)[0] == 2
    assert world.consumers() == after  # resourceVersion unchanged: nothing patched


# -- the tests --------------------------------------------------------------------------------------------
def test_vault_bootstrap_syncs_key_vault_seeds_fixtures_and_a_rerun_writes_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    vault_bootstrap_syncs_then_writes_nothing(World.create(stack, tmp_path))


def test_client_patcher_replaces_the_fixture_refuses_public_and_jwt_clients_and_a_rerun_patches_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    client_patcher_writes_keycloak_secret_then_patches_nothing(World.create(stack, tmp_path))


def test_rotation_by_run_id_happens_once_however_often_the_job_reruns(stack: Stack, tmp_path: Path) -> None:
    world = World.create(stack, tmp_path)
    world.write_catalog(rotate_run_id="1")
    original = stack.keycloak.secret_of("platform-app-master")
    rotated: set[str] = set()
    for _ in range(3):
        done = world.run("client-patcher", "--only", PLATFORM)
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        rotated.add(stack.keycloak.secret_of("platform-app-master"))
    assert len(rotated) == 1 and original not in rotated  # regenerated exactly once
    version, value, metadata = world.vault(PLATFORM)
    assert (version, value) == (1, rotated.pop())
    assert metadata["rotation-run-id"] == "1"

    world.write_catalog(rotate_run_id="2")
    done = world.run("client-patcher", "--only", PLATFORM)
    assert entries(done)[PLATFORM]["reason"].startswith("rotated (new runId '2'")
    current = stack.keycloak.secret_of("platform-app-master")
    assert current != value
    assert world.vault(PLATFORM)[:2] == (2, current)
    assert world.consumers()[CONSUMERS[0]][1]["force-sync"].startswith("v2-")


def test_smoke_catches_placeholders_until_client_patcher_ran_and_audit_reports_the_matrix(
    stack: Stack, tmp_path: Path
) -> None:
    world = World.create(stack, tmp_path)
    world.seed_akv()
    assert world.run("vault-bootstrap").returncode == 0

    smoke = world.run("secret-origin", "smoke")
    assert smoke.returncode == 1
    failed = {name for name, e in entries(smoke).items() if e["status"] == "fail"}
    assert {PLATFORM, "grafana-admin-password"} <= failed

    world.run("client-patcher")
    smoke = world.run("secret-origin", "smoke")
    assert smoke.returncode == 1  # the Helm-generated secret still holds its fixture
    result = entries(smoke)
    assert result[PLATFORM]["status"] == "ok" and result[PLATFORM]["reason"].startswith("ok: v2")
    assert result["grafana-admin-password"]["status"] == "fail"

    audit = world.run("secret-origin", "audit", "--format", "json")
    assert audit.returncode == 1
    status = {row["secret"]: row["status"] for row in json.loads(audit.stdout)["rows"]}
    assert status[PLATFORM] == status["ghcr-token"] == status["anthropic-api-key"] == "COMPLIANT"
    assert status["public-spa-client-secret"] == "NON-COMPLIANT"


def test_lowkey_challenge_tenant_is_answered_with_the_home_tenant_when_multitenant_auth_is_disabled(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lowkey-vault's challenge names tenant `secrets` (docs/design.md#azure-key-vault); azure-identity
    refuses a foreign tenant unless AZURE_IDENTITY_DISABLE_MULTITENANTAUTH is set — env only, no product
    change."""
    env = stack.azure.env
    credential = WorkloadIdentityCredential(
        tenant_id=env["AZURE_TENANT_ID"],
        client_id=env["AZURE_CLIENT_ID"],
        token_file_path=env["AZURE_FEDERATED_TOKEN_FILE"],
        authority=env["AZURE_AUTHORITY_HOST"],
        connection_verify=env["REQUESTS_CA_BUNDLE"],
    )
    scope = "https://vault.azure.net/.default"
    with credential:
        monkeypatch.delenv("AZURE_IDENTITY_DISABLE_MULTITENANTAUTH", raising=False)
        with pytest.raises(ClientAuthenticationError, match="not configured to acquire tokens for tenant"):
            credential.get_token_info(scope, options={"tenant_id": "secrets"})
        monkeypatch.setenv("AZURE_IDENTITY_DISABLE_MULTITENANTAUTH", "true")
        assert credential.get_token_info(scope, options={"tenant_id": "secrets"}).token


# -- the compose provider, proven against local equivalents ------------------------------------------------
@contextmanager
def _service(command: list[str], log: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start an emulator the way docker-compose.test.yml does; yield its first stdout line (it prints
    one once it listens)."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, env=dict(env or os.environ)
        )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline().decode() if ready else ""
        if not line:
            pytest.fail(f"{command[2]} did not start: {log.read_text(errors='replace')[-2000:]}")
        yield line
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@contextmanager
def _lowkey_metadata_stand_in(ca_pem: Path) -> Iterator[str]:
    """lowkey-vault's HTTP side, as far as the provider uses it: `/metadata/default-cert/password` (text)
    and `/metadata/default-cert/lowkey-vault.p12` (a PKCS#12 store), here holding the certificate that
    the server playing Key Vault presents (the Azure emulator's CA)."""
    password = uuid.uuid4().hex
    certificate = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    store = pkcs12.serialize_key_and_certificates(
        b"lowkey-vault", None, certificate, None, BestAvailableEncryption(password.encode())
    )
    routes = {
        "/metadata/default-cert/password": (password.encode(), "text/plain"),
        "/metadata/default-cert/lowkey-vault.p12": (store, "application/octet-stream"),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, content_type = routes.get(self.path, (b"", "text/plain"))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_compose_provider_runs_the_jobs_against_servers_it_only_knows_from_env_vars(tmp_path: Path) -> None:
    """OpenBao and the three emulators started as docker-compose.test.yml starts them (same seed files,
    same Keycloak bootstrap admin), on free ports; the provider gets nothing but SECRET_ORIGIN_* variables.
    lowkey-vault cannot run here (no Docker), so the Azure emulator plays Key Vault as well as Entra ID,
    behind a stand-in for lowkey's certificate endpoints; the lowkey-only behaviour (its challenge tenant)
    is covered by the multitenant test above."""
    python = sys.executable
    ports = {name: free_port() for name in ("keycloak", "kube", "entra")}
    with ExitStack() as services:
        bao = start_openbao(tmp_path / "openbao")
        services.callback(bao.stop)
        keycloak_env = {
            **os.environ,
            "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
            "KC_BOOTSTRAP_ADMIN_PASSWORD": "admin",
        }
        services.enter_context(
            _service(
                [
                    python,
                    "-m",
                    "emulators.keycloak",
                    "--port",
                    str(ports["keycloak"]),
                    "--import-realm",
                    str(REALM_IMPORT),
                ],
                tmp_path / "keycloak.log",
                keycloak_env,
            )
        )
        services.enter_context(
            _service(
                [
                    python,
                    "-m",
                    "emulators.kube",
                    "--port",
                    str(ports["kube"]),
                    "--tls",
                    "--seed",
                    str(KUBE_SEED),
                    "--out",
                    str(tmp_path / "out" / "kube"),
                    "--eso-vault",  # as docker-compose.test.yml: client-patcher's consumers converge
                    bao.addr,
                ],
                tmp_path / "kube.log",
                {**os.environ, "ESO_VAULT_TOKEN": bao.root_token},
            )
        )
        services.enter_context(
            _service(
                [
                    python,
                    "-m",
                    "emulators.azure",
                    "--port",
                    str(ports["entra"]),
                    "--cert-dir",
                    str(tmp_path / "out" / "entra"),
                ],
                tmp_path / "entra.log",
            )
        )
        entra_url = f"https://127.0.0.1:{ports['entra']}"
        lowkey_http = services.enter_context(
            _lowkey_metadata_stand_in(tmp_path / "out" / "entra" / "azure-emulator-ca.pem")
        )
        environ = {
            "SECRET_ORIGIN_STACK": "compose",
            "SECRET_ORIGIN_VAULT_ADDR": bao.addr,
            "SECRET_ORIGIN_VAULT_TOKEN": bao.root_token,
            "SECRET_ORIGIN_KEYCLOAK_URL": f"http://127.0.0.1:{ports['keycloak']}",
            "SECRET_ORIGIN_AKV_URL": entra_url,
            "SECRET_ORIGIN_LOWKEY_HTTP_URL": lowkey_http,
            "SECRET_ORIGIN_ENTRA_URL": entra_url,
            "SECRET_ORIGIN_ENTRA_DIR": str(tmp_path / "out" / "entra"),
            "SECRET_ORIGIN_KUBE_URL": f"https://127.0.0.1:{ports['kube']}",
            "SECRET_ORIGIN_KUBE_DIR": str(tmp_path / "out" / "kube"),
        }
        with open_stack(tmp_path / "stack", environ=environ) as stack:
            assert stack.provider == "compose"
            vault_bootstrap_syncs_then_writes_nothing(World.create(stack, tmp_path / "bootstrap"))
            client_patcher_writes_keycloak_secret_then_patches_nothing(
                World.create(stack, tmp_path / "patcher")
            )


def test_compose_provider_says_which_server_is_not_up(tmp_path: Path) -> None:
    environ = {
        "SECRET_ORIGIN_STACK": "compose",
        "SECRET_ORIGIN_VAULT_ADDR": f"http://127.0.0.1:{free_port()}",
    }
    with (
        pytest.raises(StackUnavailable, match=r"SECRET_ORIGIN_VAULT_ADDR: .* is not answering"),
        open_stack(tmp_path, environ=environ),
    ):
        pass
