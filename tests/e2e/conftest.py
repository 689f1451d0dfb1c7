"""The `stack` fixture: the servers the backend-neutral e2e tests run against (lab/stack.py).

SECRET_ORIGIN_STACK unset or `local`: OpenBao (the session's) + the emulators, started here; `compose`:
the already-running servers of docker-compose.test.yml, addressed by the SECRET_ORIGIN_* variables.
Modules that define their own `stack` fixture (the emulator-only tests) override this one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from lab.stack import Stack, open_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    local = (os.environ.get("SECRET_ORIGIN_STACK") or "local") == "local"
    openbao = request.getfixturevalue("openbao") if local else None
    with open_stack(tmp_path_factory.mktemp("stack"), openbao=openbao) as opened:
        yield opened
