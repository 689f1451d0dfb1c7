"""client-patcher's pure convergence decisions (jobs.patcher.converge): refreshed after the annotation?
which Secret key? converged, and if not, why — digests only."""

from __future__ import annotations

import pytest

from jobs.core.observed import DataRef, EsoStatus, ExternalSecretState, ExtractRef
from jobs.patcher.converge import (
    Baseline,
    Expected,
    SecretSeen,
    at_value,
    judge,
    needs_secret,
    refreshed_since,
    retry_value,
    secret_keys,
    value_digest,
)
from jobs.patcher.decide import decide_refresh

NEW = "new-value"
DIGEST = value_digest(NEW)
BEFORE = Baseline("1-aaa", "2026-11-29T15:00:00Z", annotated_at=1_795_964_460.7)  # 15:01:00.7
REFRESHED = EsoStatus("2026-11-29T15:01:00Z", "1-bbb", "True", "SecretSynced", "secret synced")
EXPECTED = Expected(DIGEST, 3, ("value",))


def state(status: EsoStatus = REFRESHED, **kw: object) -> ExternalSecretState:
    base: dict[str, object] = {
        "namespace": "apps",
        "name": "app",
        "api_version": "external-secrets.io/v1",
        "resource_version": "9",
        "refresh_interval": "1h",
        "refresh_policy": "OnChange",
        "annotations": {"force-sync": "v3-20261129150100"},
        "generation": 1,
        "extracts": (ExtractRef("secret/app-secret"),),
        "status": status,
    }
    base.update(kw)
    return ExternalSecretState(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "generation", "refreshed"),
    [
        (REFRESHED, 1, True),  # synced version changed, current generation
        (EsoStatus("2026-11-29T15:01:00Z", "1-aaa"), 1, False),  # synced version unchanged
        (EsoStatus("2026-11-29T15:01:00Z", "1-bbb"), 2, False),  # synced an older generation
        (EsoStatus("2026-11-29T15:01:00Z"), 1, True),  # no synced version: refreshTime moved, same second
        (EsoStatus("2026-11-29T15:00:59Z"), 1, False),  # moved, but before the annotation's second
        (EsoStatus("2026-11-29T15:00:00Z"), 1, False),  # did not move
        (EsoStatus(), 1, False),  # never refreshed
    ],
)
def test_refreshed_since_the_annotation(status: EsoStatus, generation: int, refreshed: bool) -> None:
    assert refreshed_since(status, generation, BEFORE) is refreshed


def test_converged_when_refreshed_and_every_key_holds_the_digest() -> None:
    verdict = judge(state(), BEFORE, EXPECTED, SecretSeen({"value": DIGEST, "other": "x"}))
    assert (verdict.converged, verdict.reason) == (True, "")


@pytest.mark.parametrize(
    ("es", "secret", "reason", "final"),
    [
        (
            state(EsoStatus("2026-11-29T15:00:00Z", "1-aaa")),
            None,
            "ESO never refreshed it after force-sync=v3-20261129150100 "
            "(status.syncedResourceVersion 1-aaa, refreshTime 2026-11-29T15:00:00Z)",
            False,
        ),
        (
            state(EsoStatus(ready="False", ready_reason="SecretSyncedError", ready_message="could not get")),
            None,
            "ESO reports Ready=False (SecretSyncedError: could not get)",
            False,
        ),
        (
            state(),
            SecretSeen({"value": value_digest("old")}),
            "ESO refreshed it but its Secret apps/app key 'value' holds another value, not Vault v3",
            False,
        ),
        (state(), SecretSeen(None), "ESO refreshed it but its Secret apps/app does not exist", False),
        (
            state(target_name="t"),
            SecretSeen({}),
            "ESO refreshed it but its Secret apps/t has no key 'value'",
            False,
        ),
        (
            state(),
            SecretSeen(error="403 Forbidden"),
            "ESO refreshed it but its Secret apps/app cannot be read: 403 Forbidden",
            True,
        ),
    ],
)
def test_not_converged_says_why(
    es: ExternalSecretState, secret: SecretSeen | None, reason: str, final: bool
) -> None:
    verdict = judge(es, BEFORE, EXPECTED, secret)
    assert (verdict.converged, verdict.reason, verdict.final) == (False, reason, final)
    assert NEW not in verdict.reason and DIGEST not in verdict.reason


def test_refreshed_without_a_known_key_converges_with_a_note_and_reads_no_secret() -> None:
    expected = Expected(
        DIGEST, 3, (), "spec.target.template renders the Secret, so its values are not Vault's"
    )
    assert not needs_secret(state(), BEFORE, expected)
    verdict = judge(state(), BEFORE, expected, None)
    assert verdict.converged and verdict.reason.endswith("value not compared: " + expected.unknown_keys)


def test_the_secret_is_read_only_once_eso_refreshed() -> None:
    assert needs_secret(state(), BEFORE, EXPECTED)
    assert not needs_secret(state(EsoStatus()), BEFORE, EXPECTED)


@pytest.mark.parametrize(
    ("es", "keys", "why"),
    [
        (state(), ("value",), None),  # dataFrom extract: the field's own name
        (state(extracts=(ExtractRef("app-secret"),)), ("value",), None),  # key relative to the mount
        (state(extracts=(ExtractRef("secret/data/app-secret"),)), ("value",), None),
        (
            state(
                extracts=(),
                data=(
                    DataRef("CLIENT_SECRET", "secret/app-secret", "value"),
                    DataRef("x", "secret/other", "value"),
                ),
            ),
            ("CLIENT_SECRET",),
            None,
        ),
        (
            state(extracts=(), data=(DataRef("all", "secret/app-secret"),)),
            (),
            "it reads no property 'value' of Vault key secret/app-secret (spec.data or dataFrom extract)",
        ),
        (state(templated=True), (), "spec.target.template renders the Secret, so its values are not Vault's"),
        (
            state(extracts=(ExtractRef("secret/app-secret", rewritten=True),)),
            (),
            "dataFrom extract of secret/app-secret uses rewrite, so the key holding 'value' is unknown",
        ),
        (
            state(extracts=(), other_sources=True),
            (),
            "its keys come from dataFrom find or sourceRef, not from a named Vault key",
        ),
    ],
)
def test_secret_keys_from_the_spec(es: ExternalSecretState, keys: tuple[str, ...], why: str | None) -> None:
    assert secret_keys(es, "secret", "app-secret", "value") == (keys, why)


def test_a_retry_value_is_new_and_a_later_run_counts_it_as_current() -> None:
    value = "v3-20261129150100"
    again = retry_value(value, 1_795_964_470.2)
    assert again == "v3-20261129150100-r1795964470" and again != value
    assert at_value(again, value) and at_value(value, value)
    assert not at_value("v3-20261129150100", "v3-2026112915010") and not at_value(None, value)
    assert not decide_refresh(state(annotations={"force-sync": again}), value).patch
    assert decide_refresh(state(annotations={"force-sync": "v2-1"}), value).patch
