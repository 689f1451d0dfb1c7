"""The stdlib schema checker reports exactly the errors the pydantic model would (location, type,
message, order), so a catalog refused without loading pydantic reads the same as before; checked on
thousands of generated catalogs, nearly valid ones and wild ones alike."""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from jobs.core.catalog_check import schema_errors
from jobs.core.catalog_model import Catalog
from jobs.core.safe_yaml import LineDict, LineList

SCALARS: list[Any] = [
    "", "x", "abc", "abcd", "a" * 300, "1" * 130, "external", "service-generated", "helm-generated",
    "operator-reconciled", "bogus", "https://kv.vault.azure.net", "http://kc:8080/", "https://", "secret",
    "a/b", "..", "/x", "ns", "Name", "\x1b", "a\u202eb", "yes", "No", "t", "2", 0, 1, 2, 7, -1, 1.5, 0.0,
    1.0, True, False, None, datetime.date(2024, 5, 1), "r", "platform", "c", "my-entry", "e1", "pre-",
    "pre_x", "15m", "1h30m", "2d", "8d", "30s", "90s", "m", "1x",
]  # fmt: skip
KEYS = {
    "top": ["environment", "fixtures", "vault", "azureKeyVault", "keycloak", "secrets", "extra"],
    "fixtures": ["enabled", "x"],
    "vault": ["kvMount", "field", "kv_mount"],
    "akv": ["url", "prefix", "u"],
    "kc": ["url", "authRealm", "auth_realm"],
    "entry": ["name", "origin", "azureKeyVault", "required", "keycloak", "fixture", "consumers", "requird"],
    "src": ["realm", "clientId", "rotate", "client_id"],
    "rot": ["runId", "grace", "hardCut", "x"],
    "cons": ["namespace", "name", "ns"],
}


def ld(data: dict[str, Any]) -> LineDict:
    found = LineDict(data)
    found.key_lines = dict.fromkeys(data, 1)
    return found


def ll(items: list[Any]) -> LineList:
    found = LineList(items)
    found.lines = [1] * len(items)
    return found


class Wild:
    """Catalogs with any value of any YAML type in any field."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def scalar(self) -> Any:
        return self.r.choice(SCALARS)

    def maybe(self, make: Callable[[], Any], p: float = 0.8) -> Any:
        return make() if self.r.random() < p else self.r.choice([self.scalar(), ll([self.scalar()]), ld({})])

    def obj(self, kind: str, value: Callable[[str], Any]) -> LineDict:
        return ld({k: value(k) for k in KEYS[kind] if self.r.random() < 0.7})

    def entry(self, key: str) -> Any:
        if key == "keycloak":
            rotate = lambda: self.obj("rot", lambda _: self.scalar())  # noqa: E731
            source = lambda k: self.maybe(rotate, 0.6) if k == "rotate" else self.scalar()  # noqa: E731
            return self.maybe(lambda: self.obj("src", source), 0.6)
        if key == "consumers":
            names = ["ns", "a", "x", "Bad_Name"]
            one = lambda: self.obj("cons", lambda _: self.r.choice([*names, self.scalar()]))  # noqa: E731
            return self.maybe(lambda: ll([self.maybe(one) for _ in range(self.r.randint(0, 3))]), 0.7)
        if key == "origin":
            return self.r.choice(["external", "service-generated", "helm-generated", "bogus", 1, None])
        return self.scalar()

    def top(self, key: str) -> Any:
        nested = {"fixtures": "fixtures", "vault": "vault", "azureKeyVault": "akv", "keycloak": "kc"}
        if key in nested:
            return self.maybe(lambda: self.obj(nested[key], lambda _: self.scalar()), 0.7)
        if key == "secrets":
            entry = lambda: self.maybe(lambda: self.obj("entry", self.entry), 0.9)  # noqa: E731
            return self.maybe(lambda: ll([entry() for _ in range(self.r.randint(0, 3))]), 0.9)
        return self.scalar()

    def catalog(self) -> LineDict:
        return self.obj("top", self.top)


class NearlyValid(Wild):
    """Catalogs close to valid: the origin rules, the validators and the valid path itself."""

    def one_entry(self, n: int) -> LineDict:
        r = self.r
        origin = r.choice(["external", "service-generated", "helm-generated", "operator-reconciled"])
        entry: dict[str, Any] = {"name": f"e{n}", "origin": origin}
        if origin == "service-generated" or r.random() < 0.3:
            grace = (
                {"grace": r.choice(["15m", "1h30m", "30s", "8d", 900, "", None])} if r.random() < 0.5 else {}
            )
            cut = {"hardCut": r.choice([True, "yes", 2])} if r.random() < 0.3 else {}
            run_id = {"runId": r.choice([7, "x", True, "a" * 129])}
            rotate = {"rotate": ld({**run_id, **grace, **cut})} if r.random() < 0.4 else {}
            entry["keycloak"] = ld({"realm": "r", "clientId": "c", **rotate})
        for key, values, p in (
            ("azureKeyVault", ["akv-name", "bad name", None], 0.3),
            ("required", [True, False, "yes", 0], 0.3),
            ("fixture", ["abcd", "abc", None], 0.3),
        ):
            if r.random() < p:
                entry[key] = r.choice(values)
        if r.random() < 0.4:
            pick = ["a", "b", "Bad"]
            entry["consumers"] = ll(
                [ld({"namespace": "ns", "name": r.choice(pick)}) for _ in range(r.randint(1, 3))]
            )
        if r.random() < 0.1:
            entry[r.choice(["name", "origin"])] = self.scalar()
        return ld(entry)

    def catalog(self) -> LineDict:
        r = self.r
        top: dict[str, Any] = {
            "environment": r.choice(["dev", "production", ""]),
            "secrets": ll([self.one_entry(n) for n in range(r.randint(1, 4))]),
        }
        if r.random() < 0.7:
            top["azureKeyVault"] = ld(
                {"url": r.choice(["https://kv.vault.azure.net", "https://x/", "http://x"])}
            )
        if r.random() < 0.7:
            top["keycloak"] = ld({"url": r.choice(["http://kc:8080/", "https://kc"]), "authRealm": "master"})
        if r.random() < 0.3:
            mount = r.choice(["secret", "kv/x", "/x", "a/../b"])
            top["vault"] = ld({"kvMount": mount, "field": r.choice(["value", "x" * 257])})
        if r.random() < 0.3:
            top["fixtures"] = ld({"enabled": r.choice([True, "no", 2])})
        return ld(top)


def pydantic_errors(raw: Any) -> list[tuple[Any, ...]]:
    try:
        Catalog.model_validate(raw)
    except ValidationError as exc:
        return [(tuple(e["loc"]), e["type"], e["msg"]) for e in exc.errors(include_url=False)]
    return []


@pytest.mark.parametrize("kind", [Wild, NearlyValid])
@pytest.mark.parametrize("seed", range(4))
def test_the_checker_reports_what_the_model_would(kind: type[Wild], seed: int) -> None:
    make = kind(seed)
    valid = 0
    for _ in range(500):
        raw = make.catalog()
        found = schema_errors(raw)
        assert found is not None, raw
        want = pydantic_errors(raw)
        assert [(tuple(e["loc"]), e["type"], e["msg"]) for e in found] == want, raw
        valid += not want
    assert kind is Wild or valid > 0


def test_a_value_no_yaml_reader_produces_is_left_to_the_model() -> None:
    assert schema_errors(ld({"environment": b"bytes", "secrets": ll([])})) is None
