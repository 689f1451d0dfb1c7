"""Fuzz the catalog loader (and the values/manifests reader) with generated files (not a test).

    .venv/bin/python benchmarks/fuzz_catalog.py [--count 10000] [--seed 14] [--timeout 5]

Each case is written to a file and read with `load_catalog`, the way the jobs read `--catalog`; the
same text also goes through `check`'s values and manifests reader. Cases come from five generators:
near-valid catalogs (secret-looking values in every field) with a few mutations, YAML token soup,
raw bytes, hostile templates (alias bombs, deep nesting, tags, huge numbers, Latin-1, oversized files)
and special files (a FIFO, /dev/zero, a directory). Prints outcome counts: valid, catalog error (exit 2),
other exception (a traceback: exit 1), timeout, plus secret-looking values echoed in a message, and
the slowest case. Failing inputs are kept under --keep for reproduction.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import random
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from jobs.checks.yamlsrc import iter_scalars, load_documents, read_text  # noqa: E402
from jobs.core.catalog import CatalogError, load_catalog  # noqa: E402
from jobs.core.errors import ConfigError  # noqa: E402

ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
TOKENS = [
    "\n", "\n  ", "\n    ", "  ", ": ", ":", "- ", "-", "[", "]", "{", "}", ",", "? ", "&a ", "*a", "&b ",
    "*b", "<<: *a", "!!int ", "!!float ", "!!bool ", "!!set ", "!!binary ", "!!python/name:os.system ",
    "!!python/object/apply:os.system ", "!custom ", "! ", "|", ">-", "'", '"', "#", "\t", "---\n", "...\n",
    "%YAML 1.1\n", "\\", "\x1b[31m", "\\e", "\\n", "\x00", "\x85", "\u2028", "\u202e", "\ufeff", "é",
    "2024-05-01", "2024-13-45", "1e999", "0x1F", "7" * 5000, "~", "null", "yes", ".nan", "environment",
    "secrets", "name", "origin", "external", "service-generated", "helm-generated", "keycloak", "realm",
    "clientId", "rotate", "runId", "fixture", "consumers", "namespace", "vault", "kvMount", "..",
    "azureKeyVault", "url", "https://kv.vault.azure.net/", "fixtures", "enabled", "true", "SECRET",
]  # fmt: skip


class Timeout(BaseException):
    """Raised by the alarm; a BaseException so no `except Exception` in the code under test eats it."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Timeout


def secret(rng: random.Random) -> str:
    head = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(8, 12)))
    tail = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(6, 10)))
    return f"ZQ9{head}+{tail}="


def entry(rng: random.Random, value: str, index: int, clean: bool) -> dict[str, Any]:
    """One entry; `clean` keeps every field valid (the secret-looking value only as a fixture)."""

    def pick(good: Any, *bad: Any) -> Any:
        return good if clean or rng.random() < 0.7 else rng.choice(bad)

    origin = rng.choice(["external", "service-generated", "helm-generated", "operator-reconciled"])
    item: dict[str, Any] = {
        "name": pick(f"entry-{index}", value, "bad name", "ok\nforged", "e\x1b[31m"),
        "origin": pick(origin, value, "bogus"),
    }
    if rng.random() < 0.5:
        item["fixture"] = pick(value, [value], {"nested": value}, "abc", 7)
    if origin == "service-generated" or (not clean and rng.random() < 0.2):
        item["keycloak"] = {
            "realm": pick("ameide", "..", "a/b", value, "r\n"),
            "clientId": pick(f"client-{index}", value, "c\x1b"),
        }
        if rng.random() < 0.5:
            item["keycloak"]["rotate"] = {"runId": pick(f"r{index}", value, dt.date(2024, 5, 1), True, 1.5)}
    if rng.random() < 0.3:
        consumers = [{"namespace": "ns", "name": f"consumer-{i}"} for i in range(rng.randint(1, 3))]
        item["consumers"] = pick(consumers, consumers * 2, [{"namespace": "ns", "name": value}])
    if not clean and rng.random() < 0.2:
        item[rng.choice(["requird", value])] = value
    return item


def near_valid(rng: random.Random) -> tuple[bytes, list[str]]:
    """A catalog with a secret-looking value in every field, valid or slightly wrong, then mutations."""
    value = secret(rng)
    clean = rng.random() < 0.5

    def pick(good: Any, *bad: Any) -> Any:
        return good if clean or rng.random() < 0.7 else rng.choice(bad)

    catalog = {
        "environment": pick(rng.choice(["dev", "production", "staging"]), value, "dev\x1b[2K", True),
        "fixtures": {"enabled": rng.random() < 0.5},
        "vault": {"kvMount": pick("secret", "kv/../sys", value, "/secret"), "field": pick("value", "v\n")},
        "azureKeyVault": {"url": pick("https://kv.vault.azure.net/", "kv", value, "http://kv/")},
        "keycloak": {"url": pick("http://keycloak:8080", "https://", value, "keycloak:8080")},
        "secrets": [entry(rng, value, i, clean) for i in range(rng.randint(1, 30))],
    }
    data = yaml.safe_dump(catalog, default_flow_style=rng.choice([False, None, True])).encode()
    for _ in range(rng.choice([0, 0, 0, 1, 2, 4])):
        data = mutate(rng, data)
    return data, [value] if value.encode() in data else []


def mutate(rng: random.Random, data: bytes) -> bytes:
    at = rng.randint(0, len(data))
    kind = rng.randrange(8)
    if kind == 0:
        return data[:at] + rng.choice(TOKENS).encode("utf-8", "surrogatepass") + data[at:]
    if kind == 1:
        return data[:at] + data[at + rng.randint(1, 8) :]
    if kind == 2:
        lines = data.split(b"\n")
        index = at % len(lines)
        return b"\n".join([*lines[: index + 1], lines[index], *lines[index + 1 :]])
    if kind == 3:
        return data.replace(b"\n  ", b"\n\t", 1)
    if kind == 4:
        return data.replace(b": ", b": " + rng.choice([b"!!int ", b"!!bool ", b"!x ", b"!!float "]), 1)
    if kind == 5:
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 4))) + data[at:]
    if kind == 6:
        return data[:at]
    return data.decode("utf-8", "replace").replace("e", "é", 1).encode("latin-1", "replace")


def token_soup(rng: random.Random) -> tuple[bytes, list[str]]:
    values = [secret(rng) for _ in range(rng.randint(1, 3))]
    text = ""
    for _ in range(rng.randint(0, 80)):
        token = rng.choice(TOKENS)
        text += values[len(text) % len(values)] if token == "SECRET" else token
    return text.encode("utf-8", "surrogatepass"), values


def raw_bytes(rng: random.Random) -> tuple[bytes, list[str]]:
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 600))), []


def hostile(rng: random.Random, kind: int | None = None) -> tuple[bytes, list[str]]:
    value = secret(rng)
    kind = rng.randrange(7) if kind is None else kind
    if kind == 0:  # alias bomb, width w, depth d
        width, depth = rng.randint(2, 12), rng.randint(3, 12)
        lines = ["a0: &a0 [" + ",".join(['"lol"'] * width) + "]"]
        for level in range(1, depth):
            lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * width) + "]")
        lines += ["environment: dev", f"secrets: *a{depth - 1}"]
        return ("\n".join(lines) + "\n").encode(), []
    if kind == 1:  # deep nesting, flow or block
        depth = rng.randint(50, 20_000)
        if rng.random() < 0.5:
            return ("secrets: " + "[" * depth + "]" * depth + "\n").encode(), []
        return ("".join("  " * i + f"k{i}:\n" for i in range(min(depth, 1000))) + "  x: 1\n").encode(), []
    if kind == 2:  # tags carrying a secret
        tag = rng.choice(["!!int", "!!float", "!!bool", "!!python/name:", "!custom", "!!set", "!!binary"])
        return f"environment: {tag} {value}\nsecrets: []\n".encode(), [value]
    if kind == 3:  # numbers and dates YAML cannot convert
        return (
            f"environment: dev\nsecrets:\n  - {{name: a, runId: {'7' * rng.randint(4000, 9000)}}}\n".encode(),
            [],
        )
    if kind == 4:  # Latin-1
        return "environment: café\nsecrets:\n  - {name: crème, origin: external}\n".encode("latin-1"), []
    if kind == 5:  # many problems: the message stays bounded
        items = "".join(
            f"  - {{name: 'bad {i}', origin: nope, fixture: {value}}}\n" for i in range(rng.randint(60, 600))
        )
        return ("environment: dev\nsecrets:\n" + items).encode(), [value]
    return b"environment: dev\n" + b"# padding\n" * 450_000, []  # over 4 MiB


GENERATORS: list[tuple[str, float, Callable[[random.Random], tuple[bytes, list[str]]]]] = [
    ("near-valid", 0.55, near_valid),
    ("token-soup", 0.2, token_soup),
    ("raw-bytes", 0.1, raw_bytes),
    ("hostile", 0.15, hostile),
]


def special_files(workdir: Path) -> list[Path]:
    fifo = workdir / "fifo.yaml"
    os.mkfifo(fifo)
    directory = workdir / "dir.yaml"
    directory.mkdir()
    return [fifo, Path("/dev/zero"), directory]


def run_one(call: Callable[[], object], timeout: float) -> tuple[str, str, float]:
    """(outcome, message, seconds): outcome is valid, error, other:<Type> or timeout."""
    started = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        call()
        outcome, message = "valid", ""
    except (CatalogError, ConfigError) as exc:
        outcome, message = "error", str(exc)
    except Timeout:
        outcome, message = "timeout", ""
    except Exception as exc:  # the finding this script exists for
        outcome, message = f"other:{type(exc).__name__}", ""
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return outcome, message, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before a case counts as a hang")
    parser.add_argument("--keep", type=Path, default=None, help="directory for inputs that failed")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    signal.signal(signal.SIGALRM, _alarm)
    catalog_counts: collections.Counter[str] = collections.Counter()
    checks_counts: collections.Counter[str] = collections.Counter()
    by_generator: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    echoed = 0
    longest_message = 0
    slowest = (0.0, "")
    slowest_checks = (0.0, "")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fuzz-catalog-") as tmp:
        workdir = Path(tmp)
        specials = special_files(workdir)
        path = workdir / "catalog.yaml"
        for index in range(args.count):
            if index < len(specials):
                name, target, data, values = "special-file", specials[index], b"", []
            else:
                name, _, generate = rng.choices(GENERATORS, weights=[w for _, w, _ in GENERATORS])[0]
                data, values = generate(rng)
                path.write_bytes(data)
                target = path
            outcome, message, seconds = run_one(lambda target=target: load_catalog(target), args.timeout)
            catalog_counts[outcome] += 1
            by_generator[name][outcome] += 1
            longest_message = max(longest_message, len(message))
            if seconds > slowest[0]:
                slowest = (seconds, f"case {index} ({name}, {len(data)} bytes, {outcome})")
            leaked = any(v in message or v[:11] in message or v[-8:] in message for v in values)
            echoed += leaked
            if (leaked or outcome.startswith("other") or outcome == "timeout") and args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                (args.keep / f"case-{index}-{outcome.replace(':', '-')}.yaml").write_bytes(data)
            if target is path:  # as `check --values` and `--manifests` read them
                for read in (
                    lambda: list(iter_scalars(read_text(path), "v.yaml")),
                    lambda: load_documents(read_text(path), "m.yaml"),
                ):
                    outcome, message, seconds = run_one(read, args.timeout)
                    checks_counts[outcome] += 1
                    leaked = any(v in message for v in values)
                    echoed += leaked
                    if seconds > slowest_checks[0]:
                        slowest_checks = (seconds, f"case {index} ({name}, {len(data)} bytes, {outcome})")
                    if (leaked or outcome not in {"valid", "error"}) and args.keep:
                        args.keep.mkdir(parents=True, exist_ok=True)
                        (args.keep / f"checks-{index}-{outcome.replace(':', '-')}.yaml").write_bytes(data)
    total = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "cases": args.count,
        "seed": args.seed,
        "catalog": {
            "valid": catalog_counts["valid"],
            "catalog-error": catalog_counts["error"],
            "other-exception": sum(v for k, v in catalog_counts.items() if k.startswith("other")),
            "timeouts": catalog_counts["timeout"],
        },
        "values-and-manifests": dict(sorted(checks_counts.items())),
        "by-generator": {k: dict(sorted(v.items())) for k, v in sorted(by_generator.items())},
        "other-exception-types": {k: v for k, v in catalog_counts.items() if k.startswith("other")},
        "secret-looking-values-echoed": echoed,
        "longest-message-chars": longest_message,
        "slowest-case-seconds": round(slowest[0], 3),
        "slowest-case": slowest[1],
        "slowest-values-or-manifests-seconds": round(slowest_checks[0], 3),
        "slowest-values-or-manifests-case": slowest_checks[1],
        "total-seconds": round(total, 1),
        "peak-rss-mib": round(peak_mib, 1),
    }
    print(json.dumps(report, indent=2))
    bad = report["catalog"]["other-exception"] + report["catalog"]["timeouts"] + echoed  # type: ignore[operator]
    bad += sum(v for k, v in checks_counts.items() if k != "valid" and k != "error")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
