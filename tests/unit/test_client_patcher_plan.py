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
    ATTR_INTENT,
    ATTR_INTENT_SECRET_TIME,
    ATTR_RUN_ID,
    KEYCLOAK_SECRET_TIME,
    LOCK_STALE_SECONDS,
    NO_SECRET_TIME,
    RotationRecord,
    consumer_warning,
    decide_force_sync_target,
    decide_refresh,
    decide_rotation,
    force_sync_value,
    lock_is_live,
    lock_value,
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
    decision = decide_rotation(wanted, RotationRecord(run_id=recorded), None, forced)
    assert decision.rotate is rotate
    assert decision.record_run_id == record
    assert decision.reason


# (Keycloak attributes, Vault's recorded runId) -> (rotate, copy the record into Keycloak)
@pytest.mark.parametrize(
    ("attributes", "vault_run_id", "rotate", "record_in_keycloak"),
    [
        ({}, None, True, False),  # nothing recorded anywhere
        ({ATTR_RUN_ID: "r2"}, None, False, False),  # Keycloak record: done (survives metadata delete)
        ({}, "r2", False, True),  # recorded only in Vault (earlier versions): done, copy to Keycloak
        # intent recorded, the secret's creation time has not moved: the regenerate never happened
        ({ATTR_INTENT: "r2", ATTR_INTENT_SECRET_TIME: "100", KEYCLOAK_SECRET_TIME: "100"}, None, True, False),
        # intent recorded and the creation time moved: regenerated, the run died before its record
        ({ATTR_INTENT: "r2", ATTR_INTENT_SECRET_TIME: "100", KEYCLOAK_SECRET_TIME: "160"}, None, False, True),
        (
            {ATTR_INTENT: "r2", ATTR_INTENT_SECRET_TIME: NO_SECRET_TIME, KEYCLOAK_SECRET_TIME: "5"},
            None,
            False,
            True,
        ),
        # an intent for an older runId says nothing about this one
        ({ATTR_INTENT: "r1", ATTR_INTENT_SECRET_TIME: "100", KEYCLOAK_SECRET_TIME: "160"}, None, True, False),
    ],
)
def test_a_run_stopped_between_any_two_steps_never_leads_to_a_second_regenerate(
    attributes: dict[str, str], vault_run_id: str | None, rotate: bool, record_in_keycloak: bool
) -> None:
    decision = decide_rotation("r2", RotationRecord.of(attributes), vault_run_id, forced=False)
    assert (decision.rotate, decision.record_in_keycloak) == (rotate, record_in_keycloak)
    assert decision.record_run_id == "r2"


def test_the_intent_remembers_the_creation_time_the_regenerate_will_change() -> None:
    record = RotationRecord.of({KEYCLOAK_SECRET_TIME: "100"})
    intent = record.intent_attributes("r2")
    assert not RotationRecord.of({**intent, KEYCLOAK_SECRET_TIME: "100"}).regenerated_for("r2")
    assert RotationRecord.of({**intent, KEYCLOAK_SECRET_TIME: "101"}).regenerated_for("r2")


@pytest.mark.parametrize(
    ("value", "now", "live"),
    [
        (None, 1000.0, False),
        ("r2@1000#abc", 1000.0, True),
        ("r2@1000#abc", 1000.0 + LOCK_STALE_SECONDS - 1, True),
        ("r2@1000#abc", 1000.0 + LOCK_STALE_SECONDS, False),  # left by a dead run: may be taken
        ("garbage", 1000.0, False),  # unreadable: never a reason to wait forever
        (lock_value("a@b", 1000.0, "o"), 1001.0, True),  # a runId with "@" still parses
    ],
)
def test_a_rotation_lock_is_live_until_it_goes_stale(value: str | None, now: float, live: bool) -> None:
    assert lock_is_live(value, now) is live


@pytest.mark.parametrize(
    ("action", "version", "written", "target", "catch_up"),
    [
        (Action.WRITTEN, 7, True, 7, False),  # the value changed: tell consumers about v7
        (Action.UNCHANGED, 7, False, 7, True),  # whatever the metadata says: consumers behind catch up
        (Action.FAILED, 7, True, 7, False),  # written, metadata refused: consumers are still told
        (Action.FAILED, None, False, None, False),
        (Action.FAILED, 7, False, None, False),  # nothing written and the entry failed
        (Action.SKIPPED, 3, False, None, False),
    ],
)
def test_every_run_names_the_version_vault_holds_for_the_authoritys_value(
    action: Action, version: int | None, written: bool, target: int | None, catch_up: bool
) -> None:
    decided = decide_force_sync_target(action, version, written, "2026-01-02T03:04:05.5Z")
    assert (decided.version, decided.catch_up) == (target, catch_up)


def _es(
    interval: str | None = "1h", policy: str | None = "OnChange", force_sync: str | None = None
) -> ExternalSecretState:
    annotations = {"force-sync": force_sync} if force_sync is not None else {}
    return ExternalSecretState("ns", "es", "external-secrets.io/v1", "10", interval, policy, annotations)


def test_force_sync_value_is_the_version_and_its_creation_time_never_a_hash() -> None:
    assert force_sync_value(7) == "v7"
    assert force_sync_value(7, "2026-11-29T12:51:22.740907429Z") == "v7-20261129125122740907429"


def test_force_sync_value_never_repeats_across_delete_and_recreate() -> None:
    before = force_sync_value(1, "2026-11-29T12:51:22.740907429Z")
    recreated = force_sync_value(1, "2026-11-29T13:02:01.000000001Z")  # versions restart at 1
    assert before != recreated


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
    plan = decide_refresh(state, "v7")
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
