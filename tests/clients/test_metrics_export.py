"""The run's metrics as Prometheus reads them: pushed to a Pushgateway stand-in and written as a
textfile, both parsed back with prometheus_client's own parser (docs/design.md#metrics-and-events)."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

from jobs.core.clients.metrics import LAST_SUCCESS, RunFacts, export
from jobs.core.logs import redact
from tests.support.pushgateway import Pushgateway, samples_of

JOB = "client-patcher"
LABEL = (("job_name", JOB),)


def facts(exit_code: int = 0, finished: float = 1_800_000_000.5, *, dry_run: bool = False) -> RunFacts:
    return RunFacts(
        job=JOB,
        environment="dev",
        exit_code=exit_code,
        duration=2.25,
        finished=finished,
        dry_run=dry_run,
        counts={"written": 3, "unchanged": 5, "seeded_fixture": 0, "skipped": 0, "failed": exit_code},
        requests={("vault", "2xx"): 17, ("vault", "5xx"): 2, ("keycloak", "error"): 1},
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_successful_run_replaces_its_group_with_every_value_it_measured() -> None:
    with Pushgateway() as gateway:
        assert export(facts(), gateway.url, None) == []
    (push,) = gateway.pushes
    assert push.method == "PUT"  # replaces the whole group
    assert push.path == f"/metrics/job/{JOB}/environment/dev"
    samples = push.samples()
    assert samples[("secret_origin_entries", (("action", "written"), *LABEL))] == 3
    assert samples[("secret_origin_entries", (("action", "unchanged"), *LABEL))] == 5
    assert samples[("secret_origin_entries", (("action", "failed"), *LABEL))] == 0
    vault_5xx = (("job_name", JOB), ("status_class", "5xx"), ("system", "vault"))
    assert samples[("secret_origin_requests", vault_5xx)] == 2
    keycloak_error = (("job_name", JOB), ("status_class", "error"), ("system", "keycloak"))
    assert samples[("secret_origin_requests", keycloak_error)] == 1
    assert samples[("secret_origin_run_duration_seconds", LABEL)] == 2.25
    assert samples[("secret_origin_exit_code", LABEL)] == 0
    assert samples[(LAST_SUCCESS, LABEL)] == 1_800_000_000.5
    assert samples[("secret_origin_last_run_timestamp_seconds", LABEL)] == 1_800_000_000.5


def test_a_failed_run_replaces_its_families_but_keeps_the_last_success() -> None:
    with Pushgateway() as gateway:
        assert export(facts(exit_code=1), gateway.url, None) == []
        assert export(facts(dry_run=True), gateway.url, None) == []  # a dry run is no success either
    failed, dry = gateway.pushes
    for push in (failed, dry):
        assert push.method == "POST"  # replaces only the families it sends
        assert not any(name == LAST_SUCCESS for name, _ in push.samples())
    assert failed.samples()[("secret_origin_exit_code", LABEL)] == 1
    assert failed.samples()[("secret_origin_entries", (("action", "failed"), *LABEL))] == 1


def test_credentials_in_the_push_url_are_sent_as_basic_auth_and_never_shown() -> None:
    with Pushgateway(status=500) as gateway:
        url = gateway.url.replace("http://", "http://metrics:s3cret-pushpass@")
        (warning,) = export(facts(), url, None)
    (push,) = gateway.pushes
    assert push.authorization == "Basic " + base64.b64encode(b"metrics:s3cret-pushpass").decode()
    assert "s3cret-pushpass" not in warning and "metrics:" not in warning
    assert warning.startswith(f"metrics push to {gateway.url} failed")
    assert redact("s3cret-pushpass") == "[REDACTED]"


def test_a_refused_push_is_a_warning() -> None:
    port = closed_port()
    (warning,) = export(facts(), f"http://127.0.0.1:{port}", None)
    assert warning.startswith(f"metrics push to http://127.0.0.1:{port} failed:")
    assert "refused" in warning.lower()


def test_the_textfile_holds_the_same_values_and_keeps_the_last_success_through_a_failure(
    tmp_path: Path,
) -> None:
    path = tmp_path / "client-patcher.prom"
    assert export(facts(finished=1_800_000_000.5), None, path) == []
    first = samples_of(path.read_text())
    assert first[(LAST_SUCCESS, LABEL)] == 1_800_000_000.5
    assert export(facts(exit_code=1, finished=1_800_000_900.0), None, path) == []
    second = samples_of(path.read_text())
    assert second[("secret_origin_exit_code", LABEL)] == 1
    assert second[("secret_origin_last_run_timestamp_seconds", LABEL)] == 1_800_000_900.0
    assert second[(LAST_SUCCESS, LABEL)] == 1_800_000_000.5  # carried over
    assert [p.name for p in tmp_path.iterdir()] == ["client-patcher.prom"]  # no temporary file left


def test_an_unwritable_textfile_is_a_warning(tmp_path: Path) -> None:
    (warning,) = export(facts(), None, tmp_path / "missing-dir" / "x.prom")
    assert warning.startswith(f"metrics file {tmp_path / 'missing-dir' / 'x.prom'} not written")
