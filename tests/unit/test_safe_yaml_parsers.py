"""jobs.core.safe_yaml reads with libyaml's parser when PyYAML has it, and with the pure-Python one
otherwise: both must give the same values, the same lines and the same refusals."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.core import safe_yaml
from jobs.core.safe_yaml import LineDict, LineList, YamlInputError

DOCUMENTS = [
    "environment: dev\nsecrets:\n  - name: a\n    origin: external\n  - {name: b, origin: fixture}\n",
    "base: &base\n  origin: external\n  owner: team-a\n"
    "secrets:\n  - <<: *base\n    name: x\n    owner: team-b\n",
    "text: |\n  two\n  lines\nfolded: >\n  one\n  line\nquoted: 'it''s'\nnull_value:\nlist: []\n",
    'unicode: "caf\\u00e9 \\U0001F511"\nplain: zażółć\n# a comment\nnumber: 0x1F\nwhen: 2026-11-29\n',
    "---\na: 1\n---\n---\nb: [1, {c: d}]\n",
]

REFUSED = [
    ("a: !!python/object:os.system x\n", "explicit YAML tags"),
    ("a: &x [*x]\n", "recursive"),
    ("a: 1\na: 2\n", "duplicate key `a` (first at line 1)"),
    ("a:\n\tb: 1\n", "tab character"),
    ("a: [1, 2\n", "not valid YAML"),
    ("a: \x07\n", "U+0007"),
    ("[" * 150 + "]" * 150 + "\n", "nested deeper than 100 levels"),
    (
        "a: &a [1,1,1,1,1,1,1,1,1,1]\n"
        + "".join(f"{c}: &{c} [" + f"*{p}," * 10 + "]\n" for p, c in zip("abcde", "bcdef", strict=True)),
        "alias bomb",
    ),
]


def lines(value: Any) -> Any:
    """The value with the line of every mapping key and sequence item, to compare both parsers."""
    if isinstance(value, LineDict):
        return {key: (value.line_of(key), lines(item)) for key, item in value.items()} | {"@": value.line}
    if isinstance(value, LineList):
        return [(value.line_of(index), lines(item)) for index, item in enumerate(value)] + [value.line]
    return value


def pure(text: str) -> list[Any]:
    return safe_yaml._parse(safe_yaml._Loader, text, construct=True)


def test_pyyaml_ships_libyaml_so_the_fast_parser_is_used() -> None:
    # PyYAML's wheels (the images install them) carry libyaml; without it every read is ~3x slower.
    assert safe_yaml._CParser is not None


@pytest.mark.parametrize("text", DOCUMENTS)
def test_both_parsers_read_the_same_values_on_the_same_lines(text: str) -> None:
    fast = safe_yaml.load_all(text)
    assert [lines(document) for document in fast] == [lines(document) for document in pure(text)]
    assert safe_yaml._parse(safe_yaml._FastLoader, text, construct=True) == fast


@pytest.mark.parametrize(("text", "said"), REFUSED)
def test_both_parsers_refuse_the_same_way(text: str, said: str) -> None:
    with pytest.raises(YamlInputError):  # libyaml alone refuses it too, maybe in other words
        safe_yaml._parse(safe_yaml._FastLoader, text, construct=True)
    with pytest.raises(YamlInputError) as fast:
        safe_yaml.load_all(text)
    with pytest.raises(YamlInputError) as reference:
        pure(text)
    assert [(p.line, p.message) for p in fast.value.problems] == [
        (p.line, p.message) for p in reference.value.problems
    ]
    assert said in fast.value.problems[0].message
