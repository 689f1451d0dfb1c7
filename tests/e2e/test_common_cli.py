"""The three console scripts share flags, exit codes, catalog validation and redaction."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lab.openbao import OpenBao
from tests.support.summary import read_summary

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "examples" / "catalog.yaml"


def run(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ), check=False
    )


class ConnectionCounter:
    """A listening socket that counts connection attempts: proof that nothing was contacted."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> ConnectionCounter:
    counter = ConnectionCounter()
    yield counter  # type: ignore[misc]
    counter.close()


BAD_CATALOG = """\
environment: dev
keycloak: {url: "http://127.0.0.1:PORT"}
secrets:
  - {name: bad_name, origin: external}
  - {name: kc, origin: service-generated}
  - {name: kc2, origin: service-generated, keycloak: {realm: r, clientId: c}, typo: 1}
"""


@pytest.mark.parametrize(
    "command",
    [["client-patcher"], ["vault-bootstrap"], ["secret-origin", "check"], ["secret-origin", "smoke"]],
)
def test_invalid_catalog_exits_2_with_every_problem_and_contacts_nothing(
    command: list[str], tmp_path: Path, listener: ConnectionCounter
) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(BAD_CATALOG.replace("PORT", str(listener.port)))
    env = dict(os.environ, VAULT_ADDR=f"http://127.0.0.1:{listener.port}", VAULT_TOKEN="unused-token")
    done = run([str(BIN / command[0]), *command[1:], "--catalog", str(catalog)], env)
    assert done.returncode == 2
    assert f"{catalog}:4: secrets[0] (bad_name).name" in done.stderr
    assert f"{catalog}:5: secrets[1] (kc): a service-generated entry needs a `keycloak` source" in done.stderr
    assert f"{catalog}:6: secrets[2] (kc2).typo: unknown key" in done.stderr
    assert (
        f"{catalog}:4: secrets[0] (bad_name): external entry but no top-level `azureKeyVault`" in done.stderr
    )
    assert listener.connections == 0


def test_check_reads_the_catalog_out_of_the_example_helm_values() -> None:
    values = ROOT / "examples" / "helm-values.yaml"
    done = run([str(BIN / "secret-origin"), "check", "--catalog", str(values), "--catalog-key", "catalog"])
    assert done.returncode == 0, done.stderr
    assert "0 error(s), 0 warning(s)" in done.stdout


@pytest.mark.parametrize("command", [["client-patcher"], ["secret-origin", "check"]])
def test_a_catalog_in_a_values_file_is_refused_at_the_values_files_lines(
    command: list[str], tmp_path: Path, listener: ConnectionCounter
) -> None:
    values = tmp_path / "values.yaml"
    block = "".join(f"    {line}\n" for line in BAD_CATALOG.replace("PORT", str(listener.port)).splitlines())
    values.write_text(f"logFormat: text\nsecretOrigin:\n  catalog: |\n{block}")
    env = dict(os.environ, VAULT_ADDR=f"http://127.0.0.1:{listener.port}", VAULT_TOKEN="unused-token")
    env["SECRET_CATALOG_KEY_PATH"] = "secretOrigin.catalog"
    done = run([str(BIN / command[0]), *command[1:], "--catalog", str(values)], env)
    assert done.returncode == 2
    assert f"{values}:7: secretOrigin.catalog.secrets[0] (bad_name).name" in done.stderr
    assert f"{values}:9: secretOrigin.catalog.secrets[2] (kc2).typo: unknown key" in done.stderr
    assert listener.connections == 0


def test_check_finds_production_fixtures_at_the_values_files_line(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        "logFormat: json\ncatalog:\n  environment: production\n  fixtures:\n    enabled: true\n"
        "  azureKeyVault: {url: 'https://kv.vault.azure.net/'}\n"
        "  secrets:\n    - {name: a, origin: external}\n"
    )
    done = run([str(BIN / "secret-origin"), "check", "--catalog", str(values), "--catalog-key", "catalog"])
    assert done.returncode == 1
    assert f"{values}:5: SO201" in done.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--catalog", str(EXAMPLE), "--only", "nope"], "--only names not in"),
        (["--catalog", str(EXAMPLE), "--deadline", "0"], "must be greater than 0"),
        (["--catalog", str(EXAMPLE), "--log-format", "xml"], "invalid choice"),
        ([], "--catalog or $SECRET_CATALOG is required"),
    ],
)
def test_bad_invocation_exits_2(argv: list[str], message: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_CATALOG"}
    done = run([str(BIN / "client-patcher"), *argv], env)
    assert done.returncode == 2
    assert message in done.stderr


def test_catalog_can_come_from_secret_catalog_env(tmp_path: Path) -> None:
    done = run([str(BIN / "client-patcher"), "--help"])
    assert done.returncode == 0
    assert "--dry-run" in done.stdout and "--deadline" in done.stdout


def test_secret_value_never_printed_even_inside_a_library_error(
    openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> None:
    secret = "Zq9-leaky-value-7731"
    openbao.client().secrets.kv.v2.create_or_update_secret("leaky", {"value": secret}, mount_point=kv_mount)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        f"environment: dev\nvault: {{kvMount: {kv_mount}}}\n"
        "secrets:\n  - {name: leaky, origin: helm-generated}\n"
    )
    for fmt in ("json", "text"):
        done = run(
            [sys.executable, "-m", "tests.support.leaky_job", "--catalog", str(catalog), "--log-format", fmt],
            openbao.env() | {"PYTHONPATH": str(ROOT)},
        )
        assert done.returncode == 1, done.stderr
        assert secret not in done.stdout + done.stderr
        assert "[REDACTED]" in done.stderr  # the log line and the library error were masked, not dropped
        assert "leaky-value" not in done.stdout + done.stderr
    summary = read_summary(
        run(
            [
                sys.executable,
                "-m",
                "tests.support.leaky_job",
                "--catalog",
                str(catalog),
                "--log-format",
                "json",
                "--summary",
                "full",
            ],
            openbao.env() | {"PYTHONPATH": str(ROOT)},
        ).stdout
    )
    assert summary["entries"][0]["action"] == "failed"
    assert summary["entries"][0]["reason"].startswith("unexpected ParserError")
    assert "[REDACTED]" in summary["entries"][0]["reason"]
