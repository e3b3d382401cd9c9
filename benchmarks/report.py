"""Renders the JSON of `step.py` as the Markdown tables of BENCHMARKS.md.

Run:  python benchmarks/report.py benchmarks/results/step_cpu.json [more.json ...]
"""

from __future__ import annotations

import json
import math
import sys

NONE = "-"


def fmt(value: float, spec: str) -> str:
    return NONE if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def main() -> None:
    rows = []
    for path in sys.argv[1:]:
        with open(path) as f:
            rows += json.load(f)["results"]
    keys = []
    for r in rows:
        key = (r["layout"], r["optimizer"], r["mode"])
        if key not in keys:
            keys.append(key)
    variants = ["optax", "gradtx", "gradtx packed", "torch foreach", "torch fused"]
    print("| layout | optimizer | step | " + " | ".join(variants) + " | compile: optax / gradtx / packed |")
    print("|---|---|---|" + "---|" * len(variants) + "---|")
    for key in keys:
        by = {r["variant"]: r for r in rows if (r["layout"], r["optimizer"], r["mode"]) == key}
        cells = []
        for v in variants:
            r = by.get(v)
            cells.append(NONE if r is None else f"{r['step_ms']:.1f} ms ({fmt(r['step_vs_optax'], '.2f')}x)")
        compile_cells = " / ".join(
            NONE if v not in by else f"{by[v]['compile_s']:.2f} s"
            for v in ("optax", "gradtx", "gradtx packed")
        )
        print(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + f" | {compile_cells} |")
    print()
    print(
        "| layout | optimizer | step | temp MiB: optax / gradtx / packed "
        "| compile peak RSS MiB: optax / gradtx / packed |"
    )
    print("|---|---|---|---|---|")
    for key in keys:
        by = {r["variant"]: r for r in rows if (r["layout"], r["optimizer"], r["mode"]) == key}
        temps = " / ".join(
            NONE if v not in by else fmt(by[v]["temp_mib"], ".1f")
            for v in ("optax", "gradtx", "gradtx packed")
        )
        rss = " / ".join(
            NONE if v not in by else fmt(by[v]["compile_rss_mib"], ".0f")
            for v in ("optax", "gradtx", "gradtx packed")
        )
        print(f"| {key[0]} | {key[1]} | {key[2]} | {temps} | {rss} |")


if __name__ == "__main__":
    main()
