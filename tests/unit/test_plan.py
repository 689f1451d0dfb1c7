from __future__ import annotations

import pytest

from jobs.core import metadata as md
from jobs.core.model import Action
from jobs.core.observed import KvRead
from jobs.core.plan import holds_fixture, plan_fixture, plan_sync

OURS = md.stamp(origin="external", authority="azure-key-vault", fixture="false", akv_version="v2")


def kv(
    value: str | None = None, *, version: int = 1, meta: dict[str, str] | None = None, **extra: str
) -> KvRead:
    if value is None and not extra and version == 0:
        return KvRead("secret", "k", exists=False, version=0)
    data = {**extra, **({"value": value} if value is not None else {})}
    return KvRead("secret", "k", exists=True, version=version, data=data, custom_metadata=meta or {})


@pytest.mark.parametrize(
    ("current", "action", "writes_data", "reason"),
    [
        (kv(version=0), Action.WRITTEN, True, "created from AKV"),
        (kv("old-value", version=3), Action.WRITTEN, True, "differed from AKV"),
        (kv("same-value", version=3, meta=dict(OURS)), Action.UNCHANGED, False, "equal to AKV"),
        (kv("same-value", version=3), Action.UNCHANGED, False, "equal to AKV; metadata updated"),
        (kv(version=2, other="x-value"), Action.WRITTEN, True, "field 'value' was missing; written from AKV"),
    ],
)
def test_plan_sync(current: KvRead, action: Action, writes_data: bool, reason: str) -> None:
    plan = plan_sync(
        current, "value", "same-value" if action is Action.UNCHANGED else "new-value", OURS, "AKV"
    )
    assert plan.action is action
    assert (plan.write_data is not None) is writes_data
    assert plan.reason == reason
    if writes_data:
        assert plan.cas == current.version


def test_plan_sync_keeps_other_fields_and_foreign_metadata() -> None:
    current = kv(
        "old-value", version=4, meta={"owner": "team-a", "akv-version": "stale"}, extra_field="keep-me"
    )
    plan = plan_sync(current, "value", "new-value", OURS, "AKV")
    assert plan.write_data == {"extra_field": "keep-me", "value": "new-value"}
    assert plan.write_metadata is not None
    assert plan.write_metadata["owner"] == "team-a"
    assert plan.write_metadata["akv-version"] == "v2"


def test_deleted_current_version_is_restored_with_its_version_as_cas() -> None:
    deleted = KvRead("secret", "k", exists=True, version=5, deleted=True)
    plan = plan_sync(deleted, "value", "v", OURS, "AKV")
    assert (plan.action, plan.cas) == (Action.WRITTEN, 5)


FIXTURE_META = md.stamp(origin="fixture", authority="fixture", fixture="true")


@pytest.mark.parametrize(
    ("current", "action", "seeds"),
    [
        (kv(version=0), Action.SEEDED_FIXTURE, True),
        (kv("placeholder", version=1), Action.UNCHANGED, False),  # equals the declared fixture
        (kv("anything-value", version=1, meta=dict(FIXTURE_META)), Action.UNCHANGED, False),  # marked
        (kv("a-real-value", version=2), Action.SKIPPED, False),
        (KvRead("secret", "k", exists=True, version=3, deleted=True), Action.SKIPPED, False),
    ],
)
def test_fixture_only_ever_seeds_an_absent_key(current: KvRead, action: Action, seeds: bool) -> None:
    plan = plan_fixture(current, "value", "placeholder", FIXTURE_META)
    assert plan.action is action
    assert (plan.write_data is not None) is seeds
    if seeds:
        assert plan.cas == 0
        assert plan.write_metadata == FIXTURE_META


def test_holds_fixture_by_marker_or_by_value() -> None:
    assert holds_fixture(kv("x-value", meta={"fixture": "true"}), "value", None)
    assert holds_fixture(kv("placeholder"), "value", "placeholder")
    assert not holds_fixture(kv("real-value"), "value", "placeholder")


def test_stamp_rejects_unknown_keys_and_drops_none() -> None:
    assert md.stamp(origin="external", akv_version=None) == {
        "managed-by": "secret-origin",
        "origin": "external",
    }
    with pytest.raises(ValueError, match="not a secret-origin metadata key"):
        md.stamp(colour="blue")
