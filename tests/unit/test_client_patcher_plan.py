"""client-patcher's pure decisions: rotation, force-sync target, consumer patch and warnings, metadata."""

from __future__ import annotations

import pytest

from jobs.client_patcher import build_parser
from jobs.core import metadata as md
from jobs.core.catalog import SecretEntry
from jobs.core.eso import is_zero_duration
from jobs.core.model import Action
from jobs.core.observed import ExternalSecretState
from jobs.patcher.decide import (
    consumer_warning,
    decide_force_sync_target,
    decide_refresh,
    decide_rotation,
    force_sync_value,
    metadata_for,
)

OURS_KEYCLOAK = md.stamp(origin="service-generated", authority="keycloak", fixture="false")
OURS_FIXTURE = md.stamp(origin="fixture", authority="fixture", fixture="true")


@pytest.mark.parametrize(
    ("wanted", "recorded", "forced", "rotate", "record"),
    [
        (None, None, False, False, None),  # no rotation configured
        (None, "3", False, False, "3"),  # runId removed from the catalog: keep what was recorded
        ("1", None, False, True, "1"),  # first runId ever: rotate once
        ("2", "1", False, True, "2"),  # new runId: rotate
        ("2", "2", False, False, "2"),  # same runId: rerun does nothing
        ("2", "2", True, True, "2"),  # --rotate forces it anyway
        (None, None, True, True, None),  # --rotate without a runId records none
    ],
)
def test_rotation_happens_once_per_new_run_id_or_when_forced(
    wanted: str | None, recorded: str | None, forced: bool, rotate: bool, record: str | None
) -> None:
    decision = decide_rotation(wanted, recorded, forced)
    assert decision.rotate is rotate
    assert decision.record_run_id == record
    assert decision.reason


@pytest.mark.parametrize(
    ("action", "version", "observed", "target", "catch_up"),
    [
        (Action.WRITTEN, 7, {}, 7, False),  # the value changed: tell consumers about v7
        (Action.WRITTEN, 7, OURS_FIXTURE, 7, False),  # a real value replaced a fixture: normal write
        (Action.UNCHANGED, 7, OURS_KEYCLOAK, 7, True),  # ours already: catch up a missed patch only
        (Action.UNCHANGED, 7, OURS_FIXTURE, None, False),  # not written by client-patcher
        (Action.UNCHANGED, 7, {}, None, False),  # someone else's value: never patch
        (Action.UNCHANGED, 7, None, None, False),
        (Action.FAILED, None, OURS_KEYCLOAK, None, False),
        (Action.SKIPPED, 3, OURS_KEYCLOAK, None, False),
    ],
)
def test_force_sync_target_is_the_new_vault_version_only_for_a_changed_value(
    action: Action, version: int | None, observed: dict[str, str] | None, target: int | None, catch_up: bool
) -> None:
    assert decide_force_sync_target(action, version, observed) == (target, catch_up)


def _es(
    interval: str | None = "1h", policy: str | None = "OnChange", force_sync: str | None = None
) -> ExternalSecretState:
    annotations = {"force-sync": force_sync} if force_sync is not None else {}
    return ExternalSecretState("ns", "es", "external-secrets.io/v1", "10", interval, policy, annotations)


def test_force_sync_value_is_the_vault_version_never_a_hash_or_time() -> None:
    assert force_sync_value(7) == "v7"


@pytest.mark.parametrize(
    ("state", "patch"),
    [
        (_es(), True),  # no annotation yet
        (_es(force_sync="v6"), True),  # older version
        (_es(force_sync="1712345678"), True),  # someone's timestamp: replaced
        (_es(force_sync="v7"), False),  # already current: reruns patch nothing
    ],
)
def test_consumer_is_patched_only_when_its_annotation_differs(
    state: ExternalSecretState, patch: bool
) -> None:
    plan = decide_refresh(state, 7)
    assert plan.patch is patch
    assert plan.value == "v7"
    assert plan.consumer == "ns/es"


@pytest.mark.parametrize(
    ("interval", "policy", "warned"),
    [
        ("0", None, True),  # default policy is Periodic
        ("0s", "Periodic", True),
        ("0m0s", None, True),
        ("0h0m0s", None, True),
        ("1h", None, False),
        (None, None, False),  # ESO's default interval is 1h
        ("0", "OnChange", False),  # OnChange reacts to annotation changes
        ("10s", "CreatedOnce", True),  # CreatedOnce ignores everything
        ("10s", "OnChange", False),
    ],
)
def test_consumer_that_ignores_force_sync_is_warned_about(
    interval: str | None, policy: str | None, warned: bool
) -> None:
    warning = consumer_warning(_es(interval, policy))
    assert (warning is not None) is warned
    if warning:
        assert "force-sync will be ignored" in warning
        assert "ns/es" in warning


@pytest.mark.parametrize(
    ("value", "zero"),
    [("0", True), ("0s", True), ("0.0s", True), ("00m", True), ("1s", False), ("10m0s", False), ("", False)],
)
def test_zero_duration_parsing(value: str, zero: bool) -> None:
    assert is_zero_duration(value) is zero


def test_metadata_records_origin_authority_source_and_run_id() -> None:
    entry = SecretEntry.model_validate(
        {
            "name": "kc",
            "origin": "service-generated",
            "keycloak": {"realm": "ameide", "clientId": "app", "rotate": {"runId": 4}},
        }
    )
    assert metadata_for(entry, "4") == {
        "managed-by": "secret-origin",
        "origin": "service-generated",
        "authority": "keycloak",
        "fixture": "false",
        "keycloak-realm": "ameide",
        "keycloak-client-id": "app",
        "rotation-run-id": "4",
    }
    assert "rotation-run-id" not in metadata_for(entry, None)


def test_rotate_flag_is_repeatable() -> None:
    args = build_parser().parse_args(["--rotate", "a", "--rotate", "b"])
    assert args.rotate == ["a", "b"]
