"""vault-bootstrap's pure decisions, table-tested (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.bootstrap.decide import (
    AkvObservation,
    AkvState,
    Policy,
    anti_patterns,
    decide,
    fingerprint,
    needs_fetch,
    observe_akv,
    policy_of,
    provably_unchanged,
    select,
    with_fetched,
    with_refetched,
)
from jobs.core import metadata as md
from jobs.core.catalog import Catalog, SecretEntry
from jobs.core.errors import NotFound, Transient
from jobs.core.model import Action
from jobs.core.observed import AkvListing, AkvSecretInfo, AkvValue, KvRead

NOW = 1_800_000_000
CREATED = NOW - 3600
ACTIVE = Policy("value", fixtures_active=True, fixtures_off_reason="", server_time=NOW)
INACTIVE = Policy(
    "value", fixtures_active=False, fixtures_off_reason="fixtures are disabled", server_time=NOW
)
FIXTURE_META = md.stamp(origin="fixture", authority="fixture", fixture="true")


def entry(origin: str = "external", **fields: Any) -> SecretEntry:
    keycloak = {"keycloak": {"realm": "r", "clientId": "c"}} if origin == "service-generated" else {}
    return SecretEntry.model_validate({"name": "k", "origin": origin, **keycloak, **fields})


def absent() -> KvRead:
    return KvRead("secret", "k", exists=False, version=0)


def held(value: str, version: int = 1, meta: dict[str, str] | None = None) -> KvRead:
    return KvRead(
        "secret", "k", exists=True, version=version, data={"value": value}, custom_metadata=meta or {}
    )


def synced_meta(version: int, created: int = CREATED) -> dict[str, str]:
    return md.stamp(
        origin="external",
        authority="azure-key-vault",
        fixture="false",
        akv_version="abc",
        akv_fingerprint=fingerprint("k", created, version),
    )


def present(value: str | None = None, created: int = CREATED) -> AkvObservation:
    info = AkvSecretInfo("k", enabled=True, created=created)
    fetched = AkvValue("k", "ver2", created, value) if value is not None else None
    return AkvObservation("k", AkvState.PRESENT, info=info, value=fetched)


MISSING = AkvObservation("k", AkvState.MISSING, "disabled")
UNKNOWN = AkvObservation("k", AkvState.UNKNOWN, "azure-key-vault: list secrets: unauthorized")
REFUSED = AkvObservation(
    "k", AkvState.REFUSED, "AKV secret k also maps to cluster-managed entry 'x'; it is never read"
)


@pytest.mark.parametrize(
    ("case", "the_entry", "current", "obs", "policy", "action", "writes", "reason"),
    [
        # external, AKV has a value
        ("new key", entry(), absent(), present("akv-value"), ACTIVE, Action.WRITTEN, True, "created from"),
        (
            "differs",
            entry(),
            held("old-value"),
            present("akv-value"),
            ACTIVE,
            Action.WRITTEN,
            True,
            "differed",
        ),
        (
            "equal, already stamped",
            entry(),
            held("akv-value", 1, {**synced_meta(1), "akv-version": "ver2"}),
            present("akv-value"),
            ACTIVE,
            Action.UNCHANGED,
            False,
            "equal to Azure Key Vault",
        ),
        (
            "real AKV value replaces a fixture",
            entry(fixture="placeholder"),
            held("placeholder", 1, FIXTURE_META),
            present("akv-value"),
            ACTIVE,
            Action.WRITTEN,
            True,
            "differed",
        ),
        (
            "fingerprint proves unchanged: no fetch needed",
            entry(),
            held("akv-value", 3, synced_meta(3)),
            present(),
            ACTIVE,
            Action.UNCHANGED,
            False,
            "version unchanged since the last sync",
        ),
        (
            "not fetched and not provable",
            entry(),
            held("v", 3),
            present(),
            ACTIVE,
            Action.FAILED,
            False,
            "not fetched",
        ),
        # external, missing in AKV
        (
            "required + missing",
            entry(required=True, fixture="plac"),
            absent(),
            MISSING,
            ACTIVE,
            Action.FAILED,
            False,
            "required",
        ),
        (
            "missing, fixture into absent key",
            entry(fixture="placeholder"),
            absent(),
            MISSING,
            ACTIVE,
            Action.SEEDED_FIXTURE,
            True,
            "disabled in Azure Key Vault; absent key seeded",
        ),
        (
            "missing, real value kept",
            entry(fixture="placeholder"),
            held("real-value"),
            MISSING,
            ACTIVE,
            Action.SKIPPED,
            False,
            "never overwrites",
        ),
        (
            "missing, value kept, no fixture",
            entry(),
            held("real-value"),
            MISSING,
            ACTIVE,
            Action.SKIPPED,
            False,
            "the value in Vault is kept",
        ),
        (
            "missing, absent, no fixture",
            entry(),
            absent(),
            MISSING,
            ACTIVE,
            Action.SKIPPED,
            False,
            "no fixture declared",
        ),
        (
            "missing, fixtures off",
            entry(fixture="placeholder"),
            absent(),
            MISSING,
            INACTIVE,
            Action.SKIPPED,
            False,
            "fixtures are disabled",
        ),
        (
            "could not observe AKV",
            entry(fixture="placeholder"),
            absent(),
            UNKNOWN,
            ACTIVE,
            Action.FAILED,
            False,
            "could not read",
        ),
        (
            "name shared with cluster-managed",
            entry(),
            absent(),
            REFUSED,
            ACTIVE,
            Action.FAILED,
            False,
            "never read",
        ),
        # cluster-managed: fixtures only
        (
            "helm fixture seeds absent",
            entry("helm-generated", fixture="placeholder"),
            absent(),
            None,
            ACTIVE,
            Action.SEEDED_FIXTURE,
            True,
            "seeded",
        ),
        (
            "helm fixture never over a real value",
            entry("helm-generated", fixture="placeholder"),
            held("real-value"),
            None,
            ACTIVE,
            Action.SKIPPED,
            False,
            "never overwrites",
        ),
        (
            "keycloak placeholder already there",
            entry("service-generated", fixture="placeholder"),
            held("placeholder"),
            None,
            ACTIVE,
            Action.UNCHANGED,
            False,
            "already holds",
        ),
        (
            "fixtures off, no read",
            entry("helm-generated", fixture="placeholder"),
            None,
            None,
            INACTIVE,
            Action.SKIPPED,
            False,
            "disabled",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_decide(
    case: str,
    the_entry: SecretEntry,
    current: KvRead | None,
    obs: AkvObservation | None,
    policy: Policy,
    action: Action,
    writes: bool,
    reason: str,
) -> None:
    plan = decide(the_entry, current, obs, policy)
    assert plan.action is action, case
    assert plan.writes is writes, case
    assert reason in plan.reason, case
    if action is Action.SEEDED_FIXTURE:
        assert plan.cas == 0
        assert plan.write_metadata == FIXTURE_META
    if action is Action.WRITTEN:
        assert current is not None
        assert plan.cas == current.version
        assert plan.write_metadata is not None
        assert plan.write_metadata["fixture"] == "false"
        assert plan.write_metadata["authority"] == "azure-key-vault"
        assert plan.write_metadata["akv-version"] == "ver2"


def test_written_value_records_a_fingerprint_of_the_next_vault_version() -> None:
    plan = decide(entry(), held("old-value", 4), present("akv-value"), ACTIVE)
    assert plan.write_metadata is not None
    assert plan.write_metadata["akv-fingerprint"] == fingerprint("k", CREATED, 5)


def test_fingerprint_not_recorded_for_a_version_created_in_the_listing_second() -> None:
    same_second = Policy("value", True, "", server_time=CREATED)
    plan = decide(entry(), absent(), present("akv-value"), same_second)
    assert plan.write_metadata is not None
    assert "akv-fingerprint" not in plan.write_metadata
    assert plan.write_metadata["akv-version"] == "ver2"


def test_equal_value_without_fingerprint_only_updates_metadata() -> None:
    plan = decide(entry(), held("akv-value", 2), present("akv-value"), ACTIVE)
    assert plan.action is Action.UNCHANGED
    assert plan.write_data is None
    assert plan.write_metadata is not None
    assert plan.write_metadata["akv-fingerprint"] == fingerprint("k", CREATED, 2)


@pytest.mark.parametrize(
    ("current", "created", "provable"),
    [
        (held("v", 3, synced_meta(3)), CREATED, True),
        (held("v", 4, synced_meta(3)), CREATED, False),  # Vault changed behind our back
        (held("v", 3, synced_meta(3)), CREATED + 1, False),  # a new AKV version
        (held("v", 3, {**synced_meta(3), "fixture": "true"}), CREATED, False),
        (held("v", 3, {**synced_meta(3), "managed-by": "someone"}), CREATED, False),
        (KvRead("secret", "k", True, 3, {}, synced_meta(3)), CREATED, False),  # field missing
        (KvRead("secret", "k", True, 3, {}, synced_meta(3), deleted=True), CREATED, False),
        (absent(), CREATED, False),
    ],
)
def test_provably_unchanged(current: KvRead, created: int, provable: bool) -> None:
    obs = present(created=created)
    assert provably_unchanged(current, "value", obs) is provable
    assert needs_fetch(obs, current, "value", verify=False) is not provable
    assert needs_fetch(obs, current, "value", verify=True) is True


def test_fingerprint_names_the_akv_secret_case_insensitively() -> None:
    assert fingerprint("GHCR-Pull", 5, 2) == "ghcr-pull/5/v2"


@pytest.mark.parametrize(
    ("info", "state", "reason"),
    [
        (None, AkvState.MISSING, "not found"),
        (AkvSecretInfo("K", enabled=False, created=1), AkvState.MISSING, "disabled"),
        (AkvSecretInfo("K", enabled=True, created=1, expires=NOW - 1), AkvState.MISSING, "expired"),
        (AkvSecretInfo("K", enabled=True, created=1, not_before=NOW + 60), AkvState.MISSING, "not yet valid"),
        (AkvSecretInfo("K", enabled=True, created=1, managed=True), AkvState.MISSING, "certificate"),
        (
            AkvSecretInfo("K", enabled=True, created=1, expires=NOW + 60, not_before=NOW - 60),
            AkvState.PRESENT,
            "",
        ),
    ],
)
def test_observe_akv_treats_unusable_secrets_as_missing(
    info: AkvSecretInfo | None, state: AkvState, reason: str
) -> None:
    listing = AkvListing({"k": info} if info else {}, NOW)
    obs = observe_akv("k", listing, NOW, {})
    assert obs.state is state
    assert reason in obs.reason


def test_observe_akv_refuses_a_name_owned_by_a_cluster_managed_entry() -> None:
    listing = AkvListing({"k": AkvSecretInfo("K", True, 1)}, NOW)
    assert observe_akv("K", listing, NOW, {"k": "grafana"}).state is AkvState.REFUSED


def test_with_fetched_folds_races_into_missing_or_unknown() -> None:
    obs = present()
    assert with_fetched(obs, NotFound("azure-key-vault", "get secret k: disabled")).state is AkvState.MISSING
    assert with_fetched(obs, Transient("azure-key-vault", "get secret k: 503")).state is AkvState.UNKNOWN
    value = AkvValue("k", "v9", CREATED, "akv-value")
    assert with_fetched(obs, value).value == value
    assert with_fetched(obs, None) == obs


def test_a_value_read_again_after_a_lost_race_replaces_the_older_one() -> None:
    info = AkvSecretInfo("k", enabled=True, created=NOW - 5)
    newer = AkvValue("k", "v10", NOW - 5, "newer-akv-value", info)
    obs = with_refetched(present("older-akv-value"), newer, NOW)
    assert (obs.state, obs.value, obs.info) == (AkvState.PRESENT, newer, info)
    plan = decide(entry(), held("newer-akv-value"), obs, ACTIVE)
    assert plan.action is Action.UNCHANGED and plan.write_data is None


@pytest.mark.parametrize(
    ("outcome", "state", "reason"),
    [
        (
            AkvValue(
                "k", "v10", NOW - 5, "x", AkvSecretInfo("k", enabled=True, created=NOW - 5, expires=NOW - 1)
            ),
            AkvState.MISSING,
            "expired (its latest version",
        ),
        (
            NotFound("azure-key-vault", "get secret k: disabled (403 SecretDisabled)"),
            AkvState.MISSING,
            "disabled",
        ),
        (Transient("azure-key-vault", "get secret k: timed out"), AkvState.UNKNOWN, "timed out"),
    ],
)
def test_a_secret_unusable_when_read_again_is_never_written(
    outcome: AkvValue | NotFound | Transient, state: AkvState, reason: str
) -> None:
    obs = with_refetched(present("older-akv-value"), outcome, NOW)
    assert obs.state is state and reason in obs.reason and obs.value is None
    plan = decide(entry(), held("older-akv-value"), obs, ACTIVE)
    assert plan.write_data is None


CATALOG = {
    "environment": "dev",
    "fixtures": {"enabled": True},
    "azureKeyVault": {"url": "https://kv.example/", "prefix": "app-"},
    "keycloak": {"url": "http://kc"},
    "secrets": [
        {"name": "ext", "origin": "external"},
        {"name": "grafana", "origin": "helm-generated", "fixture": "C1tr0n3lla!"},
        {"name": "pg", "origin": "operator-reconciled"},
        {"name": "kc", "origin": "service-generated", "keycloak": {"realm": "r", "clientId": "c"}},
    ],
}


def test_anti_patterns_match_prefixed_names_case_insensitively() -> None:
    catalog = Catalog.model_validate(CATALOG)
    listing = AkvListing(
        {n.lower(): AkvSecretInfo(n, True, 1) for n in ("App-Grafana", "app-ext", "app-kc-other")}, NOW
    )
    warnings = anti_patterns(catalog, listing)
    assert len(warnings) == 1
    assert "'App-Grafana'" in warnings[0] and "'grafana'" in warnings[0]


def test_select_takes_external_entries_and_declared_fixtures() -> None:
    catalog = Catalog.model_validate(CATALOG)
    assert [e.name for e in select(catalog)] == ["ext", "grafana"]


@pytest.mark.parametrize(
    ("environment", "enabled", "active", "reason"),
    [
        ("dev", True, True, ""),
        ("dev", False, False, "fixtures are disabled"),
        ("Production", True, False, "environment is production"),
    ],
)
def test_policy_never_activates_fixtures_in_production(
    environment: str, enabled: bool, active: bool, reason: str
) -> None:
    catalog = Catalog.model_validate(
        {**CATALOG, "environment": environment, "fixtures": {"enabled": enabled}}
    )
    policy = policy_of(catalog)
    assert policy.fixtures_active is active
    assert reason in policy.fixtures_off_reason
    assert bool(policy.fixtures_off_reason) is not active
