"""The pure decisions behind smoke, audit and policy (no I/O)."""

from __future__ import annotations

import pytest

from jobs.checks import audit, policy, rules, smoke
from jobs.core import metadata as md
from jobs.core.catalog import Consumer, parse_catalog
from jobs.core.errors import Unreachable
from jobs.core.model import Action, EntryResult, RunReport, SummaryMode
from jobs.core.observed import KvRead
from tests.support.summary import read_summary

CATALOG = """\
environment: ENV
fixtures: {enabled: true}
azureKeyVault: {url: "https://kv.vault.azure.net/"}
keycloak: {url: "http://kc:8080"}
secrets:
  - {name: ghcr-token, origin: external, required: true}
  - {name: dns, origin: external}
  - {name: kc, origin: service-generated, keycloak: {realm: r, clientId: c}, fixture: kc_fixture_value}
  - {name: grafana, origin: helm-generated, fixture: "C1tr0n3lla!"}
  - {name: pg, origin: operator-reconciled}
"""


def catalog(environment: str = "dev", fixtures: bool = True):  # type: ignore[no-untyped-def]
    text = CATALOG.replace("ENV", environment)
    if not fixtures:
        text = text.replace(", fixture: kc_fixture_value", "").replace(', fixture: "C1tr0n3lla!"', "")
        text = text.replace("fixtures: {enabled: true}\n", "")
    return parse_catalog(text)


def kv(name: str, value: str | None, **meta: str) -> KvRead:
    if value is None:
        return KvRead("secret", name, exists=False, version=0)
    return KvRead("secret", name, exists=True, version=3, data={"value": value}, custom_metadata=meta)


KNOWN = smoke.Known(rules.known_fixtures([catalog()]), rules.placeholders([]))
OURS_KC = md.stamp(origin="service-generated", authority="keycloak", fixture="false")
OURS_AKV = md.stamp(origin="external", authority="azure-key-vault", fixture="false", akv_version="abc")
OURS_FIX = md.stamp(origin="fixture", authority="fixture", fixture="true")


@pytest.mark.parametrize(
    ("entry", "current", "environment", "status", "severity"),
    [
        ("ghcr-token", kv("ghcr-token", "real-akv-1", **OURS_AKV), "dev", "COMPLIANT", "-"),
        ("ghcr-token", kv("ghcr-token", None), "dev", "NON-COMPLIANT", "HIGH"),
        ("dns", kv("dns", None), "dev", "CONDITIONAL", "LOW"),
        ("kc", kv("kc", "real-kc-1", **OURS_KC), "dev", "COMPLIANT", "-"),
        ("kc", kv("kc", "kc_fixture_value", **OURS_FIX), "dev", "NON-COMPLIANT", "MEDIUM"),
        ("kc", kv("kc", "kc_fixture_value"), "production", "NON-COMPLIANT", "CRITICAL"),  # unmarked fixture
        ("kc", kv("kc", "real-kc-1", **OURS_AKV), "dev", "NON-COMPLIANT", "HIGH"),  # anti-pattern 1
        ("kc", kv("kc", "hand-made-1"), "dev", "NON-COMPLIANT", "MEDIUM"),  # unknown writer
        ("grafana", kv("grafana", None), "dev", "COMPLIANT", "-"),
        ("grafana", kv("grafana", "C1tr0n3lla!", **OURS_FIX), "dev", "CONDITIONAL", "LOW"),
        ("grafana", kv("grafana", "C1tr0n3lla!", **OURS_FIX), "production", "NON-COMPLIANT", "HIGH"),
        ("grafana", kv("grafana", "changeme"), "dev", "CONDITIONAL", "LOW"),  # placeholder pattern
        ("pg", kv("pg", "cnpg-1", **{"managed-by": "external-secrets"}), "dev", "COMPLIANT", "-"),
        ("pg", kv("pg", "cnpg-1", **OURS_KC), "dev", "NON-COMPLIANT", "HIGH"),  # anti-pattern 2
        ("pg", kv("pg", "vault-made-1"), "dev", "CONDITIONAL", "MEDIUM"),
        ("pg", Unreachable("vault", "read secret/data/pg: cannot connect"), "dev", "UNKNOWN", "HIGH"),
    ],
)
def test_assess(entry: str, current: KvRead, environment: str, status: str, severity: str) -> None:
    cat = catalog(environment)
    row = audit.assess(cat, cat.entry(entry), current, KNOWN)
    assert (row.status.value, row.severity) == (status, severity)


def test_unknown_writer_label_and_exit_code() -> None:
    cat = catalog()
    row = audit.assess(cat, cat.entry("pg"), kv("pg", "x-1234"), KNOWN)
    assert row.current == "unknown writer"
    assert audit.exit_code([row]) == 0
    bad = audit.assess(cat, cat.entry("kc"), kv("kc", None), KNOWN)
    assert audit.exit_code([row, bad]) == 1


@pytest.mark.parametrize(
    ("current", "offence"),
    [
        (kv("kc", "real-kc-1", **OURS_KC), None),
        (kv("kc", None), "missing:"),
        (kv("kc", "real-kc-1", **OURS_FIX), "placeholder: v3 is marked as a fixture"),
        (kv("kc", "kc_fixture_value"), "placeholder: v3 equals the entry's declared fixture"),
        (kv("kc", "C1tr0n3lla!"), "placeholder: v3 equals the fixture of entry `grafana`"),
        (kv("kc", "please-REPLACE_ME"), "placeholder: v3 matches placeholder pattern REPLACE_ME"),
        (KvRead("secret", "kc", exists=True, version=4, deleted=True), "missing: the current version v4"),
    ],
)
def test_decide_vault(current: KvRead, offence: str | None) -> None:
    cat = catalog()
    got = smoke.decide_vault(cat.entry("kc"), current, "value", KNOWN)
    assert got == offence if offence is None else (got or "").startswith(offence)


def test_decide_consumer_separates_stale_from_placeholder() -> None:
    consumer = Consumer(namespace="ns", name="es")
    vault_digest = smoke.digest("real-kc-1")

    def decide(synced: dict[str, bytes] | None, keys: tuple[str, ...] = ("value",)) -> str | None:
        return smoke.decide_consumer(
            consumer,
            target="t",
            keys=keys,
            synced=synced,
            vault_digest=vault_digest,
            vault_version=3,
            known=KNOWN,
        )

    assert decide({"value": b"real-kc-1"}) is None
    assert (decide({"value": b"old-kc-0"}) or "").startswith("ESO has not refreshed")
    assert (decide({"value": b"kc_fixture_value"}) or "").startswith("placeholder:")
    assert (decide(None) or "").startswith("ESO has not refreshed")
    assert (decide({"value": b"x"}, keys=()) or "").endswith("does not read this entry's Vault key")


def test_consumer_keys_follow_data_and_extract() -> None:
    obj = {
        "spec": {
            "data": [
                {"secretKey": "A", "remoteRef": {"key": "secret/data/kc", "property": "value"}},
                {"secretKey": "B", "remoteRef": {"key": "other", "property": "value"}},
            ],
            "dataFrom": [{"extract": {"key": "kc"}}],
        }
    }
    assert smoke.consumer_keys(obj, "secret", "kc", "value") == ["A", "value"]


def grants_of(job: str, environment: str = "dev") -> dict[str, set[str]]:
    cat = catalog(environment, fixtures=environment != "production")
    return {g.path: set(g.capabilities) for g in policy.grants(job, cat, cat.secrets)}


def test_policy_grants_are_exact() -> None:
    rw = {"create", "read", "update"}
    meta = {"create", "read", "update"}  # read: the metadata version for metadata_cas
    assert grants_of("client-patcher") == {"secret/data/kc": rw, "secret/metadata/kc": meta}
    assert grants_of("vault-bootstrap") == {
        "secret/data/ghcr-token": rw,
        "secret/metadata/ghcr-token": meta,
        "secret/data/dns": rw,
        "secret/metadata/dns": meta,
        "secret/data/kc": {"create", "read"},  # fixture: create only (cas=0)
        "secret/metadata/kc": meta,
        "secret/data/grafana": {"create", "read"},
        "secret/metadata/grafana": meta,
    }
    assert set(grants_of("vault-bootstrap", "production")) == {
        "secret/data/ghcr-token",
        "secret/metadata/ghcr-token",
        "secret/data/dns",
        "secret/metadata/dns",
    }
    assert grants_of("smoke") == {f"secret/data/{n}": {"read"} for n in ("kc", "grafana", "pg")}
    assert len(grants_of("audit")) == 5
    assert all(caps == {"read"} for caps in grants_of("audit").values())


def test_policy_hcl_shape() -> None:
    cat = catalog()
    hcl = policy.render_hcl("client-patcher", cat, cat.secrets)
    assert 'path "secret/data/kc" {\n  capabilities = ["create", "read", "update"]\n}' in hcl
    assert (
        'path "secret/metadata/kc" {\n  capabilities = ["create", "read", "update"]\n'
        '  allowed_parameters = {\n    "custom_metadata" = []\n    "metadata_cas" = []\n  }\n}'
    ) in hcl


# -- smoke and audit judge the same observed state by one expected state ------------------------------
CLUSTER_STATES = [
    ("grafana", kv("grafana", None)),  # not mirrored
    ("pg", KvRead("secret", "pg", exists=True, version=4, deleted=True)),
    ("pg", kv("pg", "cnpg-1", **{"managed-by": "external-secrets"})),  # a PushSecret mirror
    ("grafana", kv("grafana", "C1tr0n3lla!", **OURS_FIX)),
    ("grafana", kv("grafana", "changeme")),  # placeholder pattern
    ("pg", kv("pg", "cnpg-1", **OURS_KC)),  # anti-pattern 2
    ("pg", kv("pg", "cnpg-1", **OURS_AKV)),  # anti-pattern 1
    ("pg", kv("pg", "vault-made-1")),  # unknown writer: a real value
]


@pytest.mark.parametrize("environment", ["dev", "production"])
@pytest.mark.parametrize(("entry", "current"), CLUSTER_STATES)
def test_smoke_and_audit_agree_on_the_same_observed_state(
    entry: str, current: KvRead, environment: str
) -> None:
    cat = catalog(environment)
    known = smoke.Known(rules.known_fixtures([cat]), rules.placeholders(["changeme"]))
    row = audit.assess(cat, cat.entry(entry), current, known)
    verdict, reason = smoke.vault_verdict(cat.entry(entry), current, "value", known)
    absent = row.current == "absent from Vault"
    fixture = row.current.startswith("Vault fixture")
    expected = "skip" if absent else "fail" if row.status is audit.Status.NON_COMPLIANT or fixture else "ok"
    assert verdict == expected, (row, reason)
    if absent:
        assert row.status is audit.Status.COMPLIANT and reason.startswith("not mirrored")
    if verdict == "ok":
        assert row.status in (audit.Status.COMPLIANT, audit.Status.CONDITIONAL)


def test_smoke_speaks_ok_fail_skip() -> None:
    report = RunReport(
        "secret-origin smoke",
        (
            EntryResult("a", Action.UNCHANGED, "ok: v2, written by secret-origin", 2),
            EntryResult("b", Action.SKIPPED, "skip: not mirrored"),
            EntryResult("c", Action.FAILED, "placeholder: v1 is marked as a fixture", 1),
        ),
    )
    out = smoke.SmokeOutput(report)
    payload = read_summary(out.render("json", SummaryMode.FULL))
    assert [e["status"] for e in payload["entries"]] == ["ok", "skip", "fail"]
    assert payload["counts"] == {"ok": 1, "fail": 1, "skip": 1} and payload["exit_code"] == 1
    assert [e["status"] for e in read_summary(out.render("json"))["entries"]] == ["skip", "fail"]
    text = out.render("text", SummaryMode.FULL)
    assert "unchanged" not in text and "written=" not in text and "ok=1 fail=1 skip=1 exit=1" in text
