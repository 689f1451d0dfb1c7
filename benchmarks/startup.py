"""Startup cost of the three console scripts: CPU of `--help`, `--version` and every kind of exit-2
path, and which vendor SDKs their entrypoint modules import.

    .venv/bin/python benchmarks/startup.py [--repeat 5] [--json]

CPU time is the child's user + system time (`os.wait4` rusage of that process), the median of
`--repeat` runs, with `python -c pass` as the interpreter's own baseline; `--version` is measured only
where `--help` lists it. The exit-2 paths run in an environment without any Vault/Keycloak/
Kubernetes/Azure setting: no catalog, a catalog file that does not exist, one that is not YAML, one
with a schema error, a bad flag value, and a valid catalog with the settings missing (the one path
that needs the catalog model and the settings library).
Vendor SDKs: `python -X importtime -c "import jobs.<module>"`, and for each SDK whether any of its
modules was imported and their cumulative import time (µs, summed over the top-most imports of that SDK).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._measure import BIN, job_has_flag, run_job  # noqa: E402

EXAMPLE = str(ROOT / "examples" / "catalog.yaml")
BAD_YAML = "environment: dev\nsecrets: [\n"
SCHEMA_ERROR = "environment: dev\nsecrets:\n  - name: a\n    origin: nope\n    extra: 1\n"
# label -> arguments; {bad_yaml}, {schema} are files written at run time
JOB_PATHS = {
    "exit 2: no catalog": [],
    "exit 2: catalog file missing": ["--catalog", "/nonexistent/catalog.yaml"],
    "exit 2: catalog not YAML": ["--catalog", "{bad_yaml}"],
    "exit 2: catalog schema error": ["--catalog", "{schema}"],
    "exit 2: settings missing": ["--catalog", EXAMPLE],
}
SCRIPTS: dict[str, tuple[str, dict[str, list[str]]]] = {
    "vault-bootstrap": (
        "jobs.vault_bootstrap",
        {**JOB_PATHS, "exit 2: bad flag value": ["--concurrency", "0", "--catalog", EXAMPLE]},
    ),
    "client-patcher": (
        "jobs.client_patcher",
        {**JOB_PATHS, "exit 2: bad flag value": ["--deadline", "-1", "--catalog", EXAMPLE]},
    ),
    "secret-origin": (
        "jobs.secret_origin",
        {
            "check --help": ["check", "--help"],
            "smoke --help": ["smoke", "--help"],
            **{label: ["check", *args] for label, args in JOB_PATHS.items() if "settings" not in label},
            "exit 2: settings missing": ["smoke", "--catalog", EXAMPLE],
            "exit 2: bad flag value": ["policy", "--catalog", EXAMPLE],
        },
    ),
}
VENDOR_SDKS = (
    "hvac",
    "httpx",
    "azure",
    "kubernetes",
    "requests",
    "urllib3",
    "keycloak",
    "tenacity",
    "pydantic",
)
GOAL_CPU_S = 0.1
ENV_PREFIXES = ("VAULT_", "BAO_", "KEYCLOAK_", "KUBECONFIG", "KUBERNETES_", "SECRET_CATALOG", "AZURE_")
_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}


def cpu_median(command: Sequence[str], repeat: int) -> tuple[float, int]:
    """(median CPU seconds, exit code of the last run)."""
    samples, code = [], 0
    for _ in range(repeat):
        run = run_job(command, clean_env(), timeout=120)
        samples.append(run.cpu_s)
        code = run.returncode
    return statistics.median(samples), code


def vendor_imports(module: str) -> dict[str, int | None]:
    """SDK -> cumulative import time in µs of its top-level package, None when not imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
        check=False,
    )
    found: dict[str, int | None] = dict.fromkeys(VENDOR_SDKS)
    ancestors: list[tuple[int, str]] = []  # (depth, module) of the line's importers
    for line in reversed(done.stderr.splitlines()):  # an importer is printed after what it imports
        match = _IMPORTTIME.match(line)
        if not match:
            continue
        depth, name = len(match.group(3)), match.group(4)
        while ancestors and ancestors[-1][0] >= depth:
            ancestors.pop()
        sdk = name.split(".", 1)[0]
        if sdk in found and not any(a.split(".", 1)[0] == sdk for _, a in ancestors):
            found[sdk] = (found[sdk] or 0) + int(match.group(2))  # cumulative of its top-most imports
        ancestors.append((depth, name))
    return found


def measure(repeat: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        files = {"bad_yaml": Path(tmp) / "bad.yaml", "schema": Path(tmp) / "schema.yaml"}
        files["bad_yaml"].write_text(BAD_YAML)
        files["schema"].write_text(SCHEMA_ERROR)
        for script, (module, exit_paths) in SCRIPTS.items():
            paths: dict[str, list[str]] = {"--help": ["--help"]}
            if job_has_flag(script, "--version"):
                paths["--version"] = ["--version"]
            paths.update(exit_paths)
            cpu = {}
            for label, args in paths.items():
                argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
                seconds, code = cpu_median([str(BIN / script), *argv], repeat)
                cpu[label] = {"cpu_s": round(seconds, 3), "exit_code": code}
            results[script] = {"module": module, "cpu": cpu, "vendor_imports_us": vendor_imports(module)}
    baseline, _ = cpu_median([sys.executable, "-c", "pass"], repeat)
    return {
        "repeat": repeat,
        "goal_cpu_s": GOAL_CPU_S,
        "interpreter_baseline_cpu_s": round(baseline, 3),
        "load_1m": round(os.getloadavg()[0], 1),
        "scripts": results,
    }


def print_table(doc: dict[str, Any]) -> None:
    print(f"CPU seconds (user + system, median of {doc['repeat']}); goal <= {doc['goal_cpu_s']} s")
    print(f"(1-minute load average at the end: {doc.get('load_1m')})")
    print(f"{'script':<16} {'path':<30} {'exit':>4} {'CPU s':>6}")
    baseline = doc["interpreter_baseline_cpu_s"]
    print(f"{'(python -c pass)':<16} {'interpreter baseline':<30} {0:>4} {baseline:>6.3f}")
    for script, result in doc["scripts"].items():
        for label, figure in result["cpu"].items():
            print(f"{script:<16} {label:<30} {figure['exit_code']:>4} {figure['cpu_s']:>6.3f}")
    print("\nvendor SDKs imported by `import <entrypoint module>` (cumulative import time, ms)")
    print(f"{'module':<22} " + " ".join(f"{sdk:>10}" for sdk in VENDOR_SDKS))
    for result in doc["scripts"].values():
        cells = ["-" if us is None else f"{us / 1000:.0f}" for us in result["vendor_imports_us"].values()]
        print(f"{result['module']:<22} " + " ".join(f"{c:>10}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    doc = measure(args.repeat)
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print_table(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
