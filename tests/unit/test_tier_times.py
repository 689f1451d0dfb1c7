"""The per-tier timing line of every pytest run attributes a test to its tier folder."""

from __future__ import annotations

import pytest

from tests.support.tier_times import tier_of


@pytest.mark.parametrize(
    ("nodeid", "tier"),
    [
        ("tests/unit/test_catalog.py::test_x", "unit"),
        ("tests/e2e/test_client_patcher.py::test_y[param]", "e2e"),
        ("tests/test_openbao_fixture.py::test_z", "top-level"),
    ],
)
def test_a_test_is_charged_to_its_tier_folder(nodeid: str, tier: str) -> None:
    assert tier_of(nodeid) == tier
