"""Zero-downtime rotation, the pure decisions (jobs.patcher.window) and the catalog's grace field."""

from __future__ import annotations

from dataclasses import replace

import pytest

from jobs.core.catalog import Consumer
from jobs.core.catalog_model import Rotation
from jobs.core.model import Action, ConsumerResult, EntryResult
from jobs.core.observed import RotatedSecret
from jobs.patcher.window import (
    decide_close,
    decide_gate,
    decide_kept,
    duration,
    preview_gate,
    with_expiry,
)

NOW = 1_800_000_000
LABEL = "ameide/app"
CONSUMERS = (Consumer(namespace="apps", name="a"), Consumer(namespace="apps", name="b"))
OPEN = RotatedSecret(since=NOW - 10, expires=NOW + 3600)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("1h30m", 5400), ("2d", 172800), ("90s", 90), ("7d", 604800), ("1m", 60)],
)
def test_grace_is_a_duration_with_units(text: str, seconds: int) -> None:
    assert Rotation.model_validate({"runId": "1", "grace": text}).grace == seconds
    assert Rotation.model_validate({"runId": "1", "grace": duration(seconds)}).grace == seconds


@pytest.mark.parametrize("bad", ["30s", "8d", "15", 15, "", "15 minutes", "1h-5m", True])
def test_grace_out_of_bounds_or_without_unit_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="grace"):
        Rotation.model_validate({"runId": "1", "grace": bad})


def test_hard_cut_is_an_explicit_opt_in() -> None:
    assert Rotation.model_validate({"runId": "1"}).hard_cut is False
    assert Rotation.model_validate({"runId": "1", "grace": "15m", "hardCut": True}).hard_cut is True


def test_gate_refuses_when_no_policy_applies_and_names_what_is_needed() -> None:
    gate = decide_gate(900, False, False, None, LABEL)
    assert not gate.rotate
    assert "rotation refused (grace 15m)" in gate.reason
    assert "client-secret-rotation" in gate.reason and "hardCut: true" in gate.reason


def test_gate_refuses_a_policy_that_keeps_nothing() -> None:
    gate = decide_gate(900, False, True, (0,), LABEL)
    assert not gate.rotate and "rotated-expiration-period 0" in gate.reason


def test_gate_accepts_a_hard_cut_only_when_the_catalog_says_so() -> None:
    gate = decide_gate(900, True, False, None, LABEL)
    assert gate.rotate and not gate.window and "hard cut accepted" in gate.reason


@pytest.mark.parametrize(
    ("periods", "warning"),
    [
        (None, "cannot read the client policies"),
        ((600,), "keeps the old secret 10m, less than the catalog's grace 15m"),
        ((3600,), None),
    ],
)
def test_gate_opens_a_window_when_the_policy_applies(
    periods: tuple[int, ...] | None, warning: str | None
) -> None:
    gate = decide_gate(900, False, True, periods, LABEL)
    assert gate.rotate and gate.window
    assert (gate.warning is None) if warning is None else (warning in str(gate.warning))


@pytest.mark.parametrize(
    ("applied", "periods", "rotate", "said"),
    [
        (False, (), False, "rotation refused"),  # the realm has no such policy: certain
        (False, (0,), False, "rotation refused"),  # the only policy keeps nothing: certain
        (False, (3600,), True, "only if a secret-rotation policy applies"),  # the update decides
        (False, None, True, "only if a secret-rotation policy applies"),  # policies unreadable
        (True, (3600,), True, "Keycloak keeps the old secret"),
    ],
)
def test_a_dry_run_refuses_only_what_the_run_would_certainly_refuse(
    applied: bool, periods: tuple[int, ...] | None, rotate: bool, said: str
) -> None:
    gate = preview_gate(900, False, applied, periods, LABEL)
    assert gate.rotate is rotate and said in gate.reason
    if rotate and not applied:
        assert "checks again after updating the client" in str(gate.warning)
    assert preview_gate(900, True, applied, periods, LABEL).rotate  # a hard cut is never refused


def test_kept_reports_a_hard_cut_nobody_accepted_as_a_problem() -> None:
    assert decide_kept(900, None, NOW, hard_cut=False).problem is not None
    assert decide_kept(900, None, NOW, hard_cut=True).problem is None
    expired = RotatedSecret(since=NOW - 100, expires=NOW - 1)
    assert not decide_kept(900, expired, NOW, hard_cut=False).window


def test_kept_warns_when_keycloak_keeps_less_than_the_grace() -> None:
    short = RotatedSecret(since=NOW, expires=NOW + 300)
    kept = decide_kept(900, short, NOW, hard_cut=False)
    assert kept.window and kept.problem is None and "only 5m" in str(kept.warning)
    assert decide_kept(900, OPEN, NOW, hard_cut=False).warning is None


def result(*outcomes: tuple[str, str], action: Action = Action.WRITTEN) -> EntryResult:
    consumers = tuple(ConsumerResult("apps", name, "v2", how) for name, how in outcomes)
    return EntryResult("app-client-secret", action, "written", 2, consumers=consumers)


def test_window_closes_only_when_every_consumer_converged_with_verification_on() -> None:
    close = decide_close(True, CONSUMERS, result(("a", "patched"), ("b", "current")), OPEN)
    assert close.close and not close.fail


def test_an_unconverged_consumer_keeps_the_window_open_and_fails_the_entry() -> None:
    close = decide_close(
        True, CONSUMERS, result(("a", "patched"), ("b", "failed"), action=Action.FAILED), OPEN
    )
    assert not close.close and close.fail
    assert "apps/b" in close.note and "a rerun resumes" in close.note


def test_a_failed_entry_keeps_the_window_open() -> None:
    close = decide_close(True, (), result(action=Action.FAILED), OPEN)
    assert not close.close and close.fail


def test_without_verification_the_window_is_left_to_keycloaks_expiry() -> None:
    close = decide_close(False, CONSUMERS, result(("a", "patched"), ("b", "patched")), OPEN)
    assert not close.close and not close.fail
    assert "verification is off" in close.note and "2027-01-15T09:00:00Z" in close.note


def test_an_entry_without_consumers_closes_at_once() -> None:
    assert decide_close(True, (), result(), OPEN).close


def test_rotated_secret_is_read_from_the_policy_attributes() -> None:
    attributes = {
        "client.secret.rotated": "x" * 10,
        "client.secret.rotated.creation.time": str(NOW),
        "client.secret.rotated.expiration.time": str(NOW + 60),
    }
    rotated = RotatedSecret.of(attributes)
    assert rotated == RotatedSecret(NOW, NOW + 60)
    assert rotated.live(NOW + 59) and not rotated.live(NOW + 60)
    assert RotatedSecret.of({"client.secret.creation.time": str(NOW)}) is None


def test_a_consumer_that_ignores_force_sync_keeps_the_window_open_without_failing() -> None:
    warned = result(("a", "patched"), ("b", "patched"))
    warning = (
        "consumer apps/b: refreshPolicy CreatedOnce, force-sync will be ignored (ESO never refreshes it)"
    )
    close = decide_close(True, CONSUMERS, replace(warned, warnings=(warning,)), OPEN)
    assert not close.close and not close.fail and "apps/b ignores force-sync" in close.note


@pytest.mark.parametrize(
    ("expires", "action", "said"),
    [
        (None, Action.UNCHANGED, None),  # no policy: the secret never expires
        (NOW + 8 * 86400, Action.UNCHANGED, None),  # more than a week left: quiet
        (NOW + 3 * 86400 + 3600, Action.UNCHANGED, "expires at 2027-01-18T09:00:00Z (in 3d1h)"),
        (NOW, Action.UNCHANGED, "expires at"),  # Keycloak still accepts it this second
        (NOW - 1, Action.FAILED, "expired at 2027-01-15T07:59:59Z"),
    ],
)
def test_an_expired_secret_fails_the_entry_and_one_about_to_expire_warns(
    expires: int | None, action: Action, said: str | None
) -> None:
    quiet = EntryResult("app", Action.UNCHANGED, "unchanged", 3)
    result = with_expiry(quiet, expires, NOW, LABEL)
    assert result.action is action and result.secret_expires == expires  # exported as a metric
    if said is None:
        assert result == quiet
    elif action is Action.FAILED:
        assert result.reason.startswith("unchanged; the client secret of ameide/app " + said)
        assert "Keycloak refuses it at every login" in result.reason and "runId" in result.reason
        assert result.warnings == ()
    else:
        (warning,) = result.warnings
        assert said in warning and "lengthen the policy's expiration-period" in warning
