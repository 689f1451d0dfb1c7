"""Plot wall time vs entries for both jobs as a hand-written SVG (no plotting library needed).

    .venv/bin/python benchmarks/plot.py RESULTS.json [...] [--out docs/performance-wall-vs-entries.svg]
    .venv/bin/python benchmarks/plot.py --run [--entries 100 500 1000 2000 5000] [--save-data DIR]

RESULTS.json are the `--json` outputs of bench_vault_bootstrap.py / bench_client_patcher.py (several
files of one job are merged). `--run` runs both benchmarks first at their default (the issue's)
latencies, first sync and no-op only. Solid lines are the measured wall time, dashed lines the latency
floor at the benchmark's concurrency, one colour per job and scenario.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "performance-wall-vs-entries.svg"
SCENARIOS = ("first sync", "no-op resync")
COLOURS = {
    ("vault-bootstrap", "first sync"): "#1f77b4",
    ("vault-bootstrap", "no-op resync"): "#6baed6",
    ("client-patcher", "first sync"): "#d62728",
    ("client-patcher", "no-op resync"): "#ff9896",
}
WIDTH, HEIGHT = 760, 460
LEFT, RIGHT, TOP, BOTTOM = 70, 230, 40, 60

Series = dict[tuple[str, str, str], list[tuple[int, float]]]  # (job, scenario, wall|floor) -> points


def series_of(documents: Iterable[Mapping[str, Any]]) -> Series:
    out: Series = {}
    for doc in documents:
        for run in doc["runs"]:
            if run["scenario"] not in SCENARIOS:
                continue
            for kind, value in (("wall", run["wall_s"]), ("floor", run["floor_s"])):
                out.setdefault((run["job"], run["scenario"], kind), []).append((run["entries"], value))
    return {key: sorted(points) for key, points in out.items()}


def nice_step(span: float, ticks: int = 6) -> float:
    raw = span / ticks
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 0.1
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def render(series: Series, title: str) -> str:
    xs = [x for points in series.values() for x, _ in points] or [1]
    ys = [y for points in series.values() for _, y in points] or [1.0]
    x_max = max(xs)
    y_step = nice_step(max(ys))
    y_max = y_step * (int(max(ys) / y_step) + 1)
    x_step = nice_step(x_max)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + plot_w * x / x_max

    def py(y: float) -> float:
        return TOP + plot_h * (1 - y / y_max)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    tick = 0.0
    while tick <= y_max + 1e-9:
        y = py(tick)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
        tick += y_step
    tick = 0.0
    while tick <= x_max + 1e-9:
        x = px(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP + plot_h}" x2="{x:.1f}" y2="{TOP + plot_h + 5}" stroke="#333"/>'
        )
        parts.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{tick:g}</text>')
        tick += x_step
    parts += [
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>',
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 18}" text-anchor="middle">entries</text>',
        f'<text x="18" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {TOP + plot_h / 2})">wall time, seconds</text>',
    ]
    legend_y = TOP + 8
    for (job, scenario), colour in COLOURS.items():
        for kind, dash in (("wall", ""), ("floor", ' stroke-dasharray="6 4"')):
            points = series.get((job, scenario, kind))
            if not points:
                continue
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
            if kind == "wall":
                parts += [
                    f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in points
                ]
            lx = LEFT + plot_w + 14
            parts.append(
                f'<line x1="{lx}" y1="{legend_y}" x2="{lx + 26}" y2="{legend_y}" stroke="{colour}" '
                f'stroke-width="2"{dash}/>'
            )
            label = f"{job} {scenario}" + (" (floor)" if kind == "floor" else "")
            parts.append(f'<text x="{lx + 32}" y="{legend_y + 4}" font-size="11">{escape(label)}</text>')
            legend_y += 18
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def run_benchmarks(entries: Sequence[int], save: Path | None) -> list[dict[str, Any]]:
    documents = []
    for script, extra in (("bench_vault_bootstrap.py", []), ("bench_client_patcher.py", ["--no-rotation"])):
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / script),
                "--json",
                "--entries",
                *map(str, entries),
                *extra,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if not done.stdout.strip():
            raise SystemExit(f"{script} printed nothing (exit {done.returncode}): {done.stderr[-2000:]}")
        doc = json.loads(done.stdout)
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            (save / f"{doc['benchmark']}.json").write_text(json.dumps(doc, indent=1) + "\n")
        documents.append(doc)
    return documents


def title_of(documents: Sequence[Mapping[str, Any]]) -> str:
    latencies: dict[str, float] = {}
    for doc in documents:
        used = {s for run in doc["runs"] for s in run["requests"]}
        latencies.update({s: ms for s, ms in doc["latency_ms"].items() if s in used and ms})
    named = ", ".join(f"{s} {ms:g} ms" for s, ms in sorted(latencies.items()))
    return f"wall time vs entries ({named})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("results", nargs="*", type=Path, help="--json outputs of the benchmark scripts")
    parser.add_argument("--run", action="store_true", help="run both benchmarks first")
    parser.add_argument("--entries", type=int, nargs="+", default=[100, 500, 1000, 2000, 5000])
    parser.add_argument("--save-data", type=Path, default=None, help="with --run: keep the JSON here")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    documents = [json.loads(path.read_text()) for path in args.results]
    if args.run:
        documents += run_benchmarks(args.entries, args.save_data)
    if not documents:
        parser.error("give result files or --run")
    args.out.write_text(render(series_of(documents), title_of(documents)))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
