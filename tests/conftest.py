"""Shared fixtures: a real OpenBao dev server per test session, a fresh KV v2 mount per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.core.logs import forget_registered_secrets
from jobs.core.settings import forget_held_credentials
from lab import real_tier
from lab.openbao import OpenBao, start_openbao
from lab.real_tier import (  # the real-server tier: marker, skip-or-fail rule, the session's Keycloak
    pytest_collection_modifyitems,
    real_keycloak,
)
from tests.support import tier_times

__all__ = ["pytest_collection_modifyitems", "real_keycloak"]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tier_times.record(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    real_tier.pytest_terminal_summary(terminalreporter, config)
    tier_times.write_summary(terminalreporter)


@pytest.fixture(autouse=True)
def isolated_redaction() -> Iterator[None]:
    """Each test starts with an empty redaction registry, as each job process does."""
    forget_registered_secrets()
    forget_held_credentials()
    yield
    forget_registered_secrets()
    forget_held_credentials()


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    bao = start_openbao(tmp_path_factory.mktemp("openbao"))
    yield bao
    bao.stop()


@pytest.fixture
def kv_mount(openbao: OpenBao) -> str:
    """A KV v2 mount of its own, so tests never see each other's keys."""
    return openbao.new_kv_mount()


@pytest.fixture
def private_openbao(tmp_path: Path) -> Iterator[OpenBao]:
    """A server of the test's own, for tests that seal or otherwise break it."""
    bao = start_openbao(tmp_path)
    yield bao
    bao.stop()
