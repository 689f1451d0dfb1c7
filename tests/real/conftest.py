"""The real tier: client-patcher against the session's real Keycloak (lab/real_tier.py), a real OpenBao
and the Kubernetes emulator. Every test here carries the `real` marker (set by lab/real_tier.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.openbao import OpenBao
from lab.real_client_patcher import RealClientPatcherStack
from lab.real_tier import RealServer


@pytest.fixture
def stack(
    real_keycloak: RealServer, openbao: OpenBao, kv_mount: str, tmp_path: Path
) -> Iterator[RealClientPatcherStack]:
    with RealClientPatcherStack.start(real_keycloak, openbao, kv_mount, tmp_path / "stack") as world:
        yield world
