"""A run's Prometheus metrics, pushed to a Pushgateway and/or written as a node-exporter textfile
(`--metrics-push`, `--metrics-file`; docs/design.md#metrics-and-events). `prometheus_client` is
imported only here, and this module only when metrics were asked for.

Every series carries `job_name`. The push goes to the group `job=<job>`, `environment=<catalog
environment>`. A fully successful run REPLACES its group (PUT); any other run replaces every family
it pushes but leaves out `secret_origin_last_success_timestamp_seconds` and pushes with POST, which
replaces only the families sent, so the last success survives a failed run. The textfile is
written atomically; a run that is not a success carries the previous file's last success over.
Exporting never changes the exit code: a failure comes back as a warning for the summary, with any
credential of the push URL left out."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit, urlunsplit

from jobs.core.logs import redact, register_secret

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

LAST_SUCCESS: Final = "secret_origin_last_success_timestamp_seconds"
EXPIRY: Final = "secret_origin_secret_expiry_timestamp_seconds"
PUSH_TIMEOUT: Final = 10.0  # seconds


@dataclass(frozen=True)
class RunFacts:
    """What one run did, as the metrics tell it."""

    job: str
    environment: str
    exit_code: int
    duration: float  # seconds
    finished: float  # unix time
    dry_run: bool = False
    counts: Mapping[str, int] = field(default_factory=dict)  # action -> entries (none for `check`)
    requests: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (system, class) -> n
    secret_expiry: Mapping[str, int] = field(default_factory=dict)  # entry -> unix time

    @property
    def succeeded(self) -> bool:
        """Exit 0 of a run that could write: a dry run is no success."""
        return self.exit_code == 0 and not self.dry_run


def build_registry(facts: RunFacts, last_success: float | None) -> CollectorRegistry:
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    job = ["job_name"]

    def gauge(name: str, doc: str, labels: list[str] = job) -> Gauge:
        return Gauge(name, doc, labels, registry=registry)

    entries = gauge("secret_origin_entries", "Entries of the run, by action", [*job, "action"])
    for action, count in facts.counts.items():
        entries.labels(facts.job, action).set(count)
    requests = gauge(
        "secret_origin_requests",
        "HTTP requests the run sent (every attempt), by system and status class (error: no answer)",
        [*job, "system", "status_class"],
    )
    for (system, status_class), count in sorted(facts.requests.items()):
        requests.labels(facts.job, system, status_class).set(count)
    if facts.secret_expiry:
        expiry = gauge(
            EXPIRY,
            "When the authority stops accepting the entry's secret (Keycloak's secret-rotation policy)",
            [*job, "entry"],
        )
        for entry, expires in sorted(facts.secret_expiry.items()):
            expiry.labels(facts.job, entry).set(expires)
    gauge("secret_origin_run_duration_seconds", "Wall time of the run").labels(facts.job).set(facts.duration)
    gauge("secret_origin_exit_code", "The run's exit code").labels(facts.job).set(facts.exit_code)
    gauge("secret_origin_last_run_timestamp_seconds", "When the run ended").labels(facts.job).set(
        facts.finished
    )
    if last_success is not None:
        gauge(LAST_SUCCESS, "When the last fully successful run ended").labels(facts.job).set(last_success)
    return registry


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(URL without user:password, user, password). The password is registered for redaction."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    password = unquote(parts.password) if parts.password is not None else None
    register_secret(password)
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, unquote(parts.username or ""), password


def _handler(user: str | None, password: str | None) -> Callable[..., Callable[[], None]]:
    from prometheus_client.exposition import basic_auth_handler, default_handler

    if user is None:
        return default_handler

    def with_basic_auth(
        url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        return basic_auth_handler(url, method, timeout, headers, data, user, password)

    return with_basic_auth


def push(facts: RunFacts, url: str, timeout: float = PUSH_TIMEOUT) -> str | None:
    """Push the run's metrics; a warning (never a credential) when the Pushgateway cannot be told."""
    from prometheus_client import push_to_gateway, pushadd_to_gateway

    bare, user, password = split_credentials(url)
    registry = build_registry(facts, facts.finished if facts.succeeded else None)
    send = push_to_gateway if facts.succeeded else pushadd_to_gateway
    try:
        send(
            bare,
            job=facts.job,
            registry=registry,
            grouping_key={"environment": facts.environment},
            timeout=timeout,
            handler=_handler(user, password),
        )
    except Exception as exc:  # noqa: BLE001 - metrics never fail the run: any failure is a warning
        return redact(f"metrics push to {bare} failed: {_cause(exc)}")
    return None


def _cause(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)  # URLError: the socket error, without the URL
    text = str(reason if reason is not None else exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def previous_last_success(path: Path, job: str) -> float | None:
    """The last success a textfile written earlier holds for `job`, or None."""
    from prometheus_client.parser import text_string_to_metric_families

    with contextlib.suppress(OSError, ValueError, UnicodeDecodeError):
        for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS and sample.labels.get("job_name") == job:
                    return float(sample.value)
    return None


def write_file(facts: RunFacts, path: Path) -> str | None:
    """Write the textfile atomically; a warning when it cannot be written."""
    from prometheus_client import write_to_textfile

    last = facts.finished if facts.succeeded else previous_last_success(path, facts.job)
    try:
        write_to_textfile(str(path), build_registry(facts, last))
    except OSError as exc:
        return f"metrics file {path} not written: {exc.strerror or type(exc).__name__}"
    return None


def export(facts: RunFacts, push_url: str | None, path: Path | None) -> list[str]:
    """Push and/or write the metrics; the warnings of what failed."""
    done: list[Any] = []
    if path is not None:
        done.append(write_file(facts, path))
    if push_url:
        done.append(push(facts, push_url))
    return [warning for warning in done if warning]
