"""Renders committed benchmark results as the Markdown tables of BENCHMARKS.md.

Every table in BENCHMARKS.md sits between two markers naming the kind of table and the
result files it comes from::

    <!-- report: step benchmarks/results/step_cpu.json -->
    ... generated ...
    <!-- /report -->

``--update BENCHMARKS.md`` regenerates every marked block from the committed results;
``--check BENCHMARKS.md`` fails if a block differs from what its results give (a test
runs it, so a figure cannot drift from its result). Without these flags it prints the
step tables of the JSON files given (the output of ``step.py --json``).

Run:  python benchmarks/report.py --update BENCHMARKS.md
      python benchmarks/report.py benchmarks/results/step_cpu.json [more.json ...]
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import statistics
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stamp import describe

ROOT = pathlib.Path(__file__).resolve().parent.parent
NONE = "-"
JAX = ("optax", "gradtx", "gradtx packed")
VARIANTS = (*JAX, "torch foreach", "torch fused")


def fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NONE
    return format(value, spec)


def load(path: str) -> dict[str, Any]:
    return json.loads((ROOT / path).read_text())


def caption(data: dict[str, Any], path: str) -> str:
    if "stamp" in data:
        extra = (
            f"; medians of {data['rounds']} rounds of {data['steps']} steps, compile figures medians of "
            f"{data['compile_samples']} fresh processes"
            if "steps" in data
            else ""
        )
        return f"`{path}`: {describe(data['stamp'])}{extra}."
    versions = ", ".join(f"{k} {data[k]}" for k in ("jax", "optax") if k in data)
    return f"`{path}`: recorded before results carried a revision stamp ({versions or 'no versions'})."


def groups(rows: list[dict[str, Any]]) -> list[tuple[tuple[str, str, str], dict[str, dict[str, Any]]]]:
    keys: list[tuple[str, str, str]] = []
    for r in rows:
        key = (r["layout"], r["optimizer"], r["mode"])
        if key not in keys:
            keys.append(key)
    return [
        (k, {r["variant"]: r for r in rows if (r["layout"], r["optimizer"], r["mode"]) == k}) for k in keys
    ]


def ratio(r: dict[str, Any]) -> str:
    iqr = r.get("step_vs_optax_iqr")
    if r["variant"] == "optax":
        return ""
    if iqr:
        return f" ({fmt(r['step_vs_optax'], '.2f')}x, {fmt(iqr[0], '.2f')}-{fmt(iqr[1], '.2f')})"
    return f" ({fmt(r['step_vs_optax'], '.2f')}x)"


Cells = Callable[[dict[str, dict[str, Any]]], list[str]]


def per_configuration(paths: list[str], columns: list[str], cells: Cells) -> str:
    """One table per result file: its caption, then a row per (layout, optimizer, step)
    whose cells ``cells`` makes from that configuration's rows keyed by variant."""
    out = []
    for path in paths:
        data = load(path)
        out += [caption(data, path), ""]
        out.append("| layout | optimizer | step | " + " | ".join(columns) + " |")
        out.append("|---|---|---|" + "---|" * len(columns))
        for key, by in groups(data["results"]):
            out.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells(by)) + " |")
        out.append("")
    return "\n".join(out).rstrip()


def joined(by: dict[str, dict[str, Any]], field: str, spec: str, variants: tuple[str, ...]) -> str:
    return " / ".join(fmt(by[v].get(field), spec) if v in by else NONE for v in variants)


def step_table(paths: list[str]) -> str:
    """Step time per variant: median, ratio to optax per round (median, interquartile
    range), and the optax row's noise (interquartile range / median of its rounds)."""

    def cells(by: dict[str, dict[str, Any]]) -> list[str]:
        out = []
        for v in VARIANTS:
            r = by.get(v)
            if r is None:
                out.append(NONE)
            elif v == "optax":
                noise = f" ({fmt(r['noise'], '.0%')})" if "noise" in r else ""
                out.append(f"{r['step_ms']:.1f} ms{noise}")
            else:
                out.append(f"{r['step_ms']:.1f} ms{ratio(r)}")
        return out

    return per_configuration(paths, ["optax (noise)", *VARIANTS[1:]], cells)


def compile_table(paths: list[str]) -> str:
    """Trace and compile seconds and peak RSS growth (medians of fresh processes), and
    XLA's temporary bytes, for the three JAX variants."""
    columns = ["compile s: optax / gradtx / packed", "trace s", "compile peak RSS MiB", "temp MiB"]
    fields = [("compile_s", ".2f"), ("trace_s", ".2f"), ("compile_rss_mib", ".0f"), ("temp_mib", ".1f")]
    return per_configuration(paths, columns, lambda by: [joined(by, f, spec, JAX) for f, spec in fields])


def faults_table(paths: list[str]) -> str:
    """Minor page faults per step, and for update steps the least bytes moved per step
    divided by the step time."""
    names = " / ".join(VARIANTS)
    return per_configuration(
        paths,
        [f"page faults per step: {names}", f"GB/s: {names}"],
        lambda by: [joined(by, "faults_per_step", ",.0f", VARIANTS), joined(by, "gbps", ".1f", VARIANTS)],
    )


def history_table(paths: list[str]) -> str:
    """The 1,000-leaf update step across revisions: ratios to optax in each run."""
    out = [
        "| result | adam: gradtx / packed | adamw_clip: gradtx / packed | sgd_momentum: gradtx / packed "
        "| noise (optax) |",
        "|---|---|---|---|---|",
    ]
    for path in paths:
        data = load(path)
        rows = [r for r in data["results"] if r["layout"] == "1000 leaves" and r["mode"] == "update"]
        when = describe(data["stamp"]).split(",")[0:2] if "stamp" in data else ["no stamp"]
        cells = []
        noise = []
        for opt in ("adam", "adamw_clip", "sgd_momentum"):
            by = {r["variant"]: r for r in rows if r["optimizer"] == opt}
            cells.append(" / ".join(fmt(by[v]["step_vs_optax"], ".2f") if v in by else NONE for v in JAX[1:]))
            if "optax" in by and "noise" in by["optax"]:
                noise.append(fmt(by["optax"]["noise"], ".0%"))
        out.append(
            f"| `{pathlib.Path(path).name}` ({', '.join(w.strip() for w in when)}) | "
            + " | ".join(cells)
            + f" | {' / '.join(noise) or NONE} |"
        )
    return "\n".join(out)


def goals_table(paths: list[str]) -> str:
    """The step-time goals, each computed from the step results."""
    rows = [r for p in paths for r in load(p)["results"]]

    def get(layout: str, opt: str, mode: str, variant: str, field: str = "step_vs_optax") -> Any:
        for r in rows:
            if (r["layout"], r["optimizer"], r["mode"], r["variant"]) == (layout, opt, mode, variant):
                return r[field]
        return None

    def pair(layout: str, opt: str, mode: str = "update") -> str:
        plain, packed = get(layout, opt, mode, "gradtx"), get(layout, opt, mode, "gradtx packed")
        return f"{fmt(plain, '.2f')}x / {fmt(packed, '.2f')}x"

    compile_ratio = [
        get("1000 leaves", o, m, "gradtx packed", "compile_s")
        / get("1000 leaves", o, m, "optax", "compile_s")
        for o in ("adam", "adamw_clip", "sgd_momentum")
        for m in ("update", "train")
        if get("1000 leaves", o, m, "optax", "compile_s")
    ]
    goals = [
        (
            "1 to 150 leaves: Adam update <= 1.0x optax (stretch 0.75x)",
            f"1 leaf {pair('1 leaves', 'adam')}; 100 leaves {pair('100 leaves', 'adam')}",
        ),
        (
            "1 to 150 leaves: clip + AdamW update <= 0.6x",
            f"1 leaf {pair('1 leaves', 'adamw_clip')}; 100 leaves {pair('100 leaves', 'adamw_clip')}; "
            f"GPT-2 {pair('GPT-2 small', 'adamw_clip')}",
        ),
        (
            "1,000 leaves: update step <= 0.5x",
            f"Adam {pair('1000 leaves', 'adam')}; clip + AdamW {pair('1000 leaves', 'adamw_clip')}; "
            f"SGD {pair('1000 leaves', 'sgd_momentum')}",
        ),
        (
            "1,000 leaves: train step <= 0.5x",
            f"Adam {pair('1000 leaves', 'adam', 'train')}; "
            f"clip + AdamW {pair('1000 leaves', 'adamw_clip', 'train')}; "
            f"SGD {pair('1000 leaves', 'sgd_momentum', 'train')}",
        ),
        (
            "1,000 leaves: compile never slower than optax",
            f"packed / optax: {fmt(min(compile_ratio, default=None), '.3f')}x to "
            f"{fmt(max(compile_ratio, default=None), '.3f')}x",
        ),
    ]
    big = [
        r
        for r in rows
        if r["layout"] == "10000 leaves" and r["optimizer"] == "adam" and r["mode"] == "update"
    ]
    if big:
        by = {r["variant"]: r for r in big}
        packed, optax_row = by["gradtx packed"], by["optax"]
        step = packed["step_ms"] / optax_row["step_ms"]
        comp = packed["compile_s"] / optax_row["compile_s"]
        goals.append(
            (
                "10,000 leaves: Adam update step <= 0.2x, compile <= 0.1x",
                f"packed: step {step:.2f}x ({packed['step_ms']:.1f} against {optax_row['step_ms']:.1f} ms), "
                f"compile {comp:.3f}x ({packed['compile_s']:.2f} against {optax_row['compile_s']:.0f} s); "
                f"plain gradtx: step {by['gradtx']['step_vs_optax']:.2f}x",
            )
        )
    out = ["| goal | measured (ratio to optax: gradtx / packed) |", "|---|---|"]
    out += [f"| {goal} | {measured} |" for goal, measured in goals]
    return "\n".join(out)


def multisteps_table(paths: list[str]) -> str:
    out = []
    for path in paths:
        data = load(path)
        out.append(
            caption(data, path)
            if "stamp" in data
            else f"`{path}` ({data.get('device', '')}, before results carried a revision stamp)."
        )
        out.append("")
        out.append(
            "| leaves | k | optax per micro-step | gradtx | gradtx packed | compile optax / gradtx / packed "
            "| temp MiB optax / gradtx / packed |"
        )
        out.append("|---|---|---|---|---|---|---|")
        for r in data["rows"]:
            names = ("optax", "gradtx", "packed")
            cells = " | ".join(f"{r[n + '_ms']:.1f} ms ({r[n + '_ratio']:.2f}x)" for n in names)
            compile_s = " / ".join(f"{r[n + '_compile_s']:.2f} s" for n in names)
            temp = " / ".join(f"{r[n + '_temp_bytes'] / 2**20:.0f}" for n in names)
            out.append(f"| {r['leaves']} | {r['k']} | {cells} | {compile_s} | {temp} |")
    return "\n".join(out)


def rows_table(path: str, header: list[str], cells: Callable[[dict[str, Any]], list[str]]) -> str:
    """A result file's caption, then a table with ``header`` and one row of ``cells(r)``
    for each of its "rows"."""
    data = load(path)
    out = [caption(data, path), "", f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
    out += [f"| {' | '.join(cells(r))} |" for r in data["rows"]]
    return "\n".join(out)


def state_dtypes_table(paths: list[str]) -> str:
    return rows_table(
        paths[0],
        ["state", "train loss", "test accuracy", "max abs(p - p with float32 state)", "state bytes"],
        lambda r: [
            r["state"],
            f"{r['loss']:.4f}",
            f"{r['accuracy']:.3f}",
            "0" if r["max_diff"] == 0 else format(r["max_diff"], ".1e"),
            f"{r['bytes']:,}",
        ],
    )


def zero1_table(paths: list[str]) -> str:
    """Bytes per device, replicated optimizer state against ZeRO-1 (benchmarks/zero1_memory.py)."""
    data = load(paths[0])
    out = [
        caption(data, paths[0]),
        "",
        f"{data['parameters']:,} float32 parameters in {data['leaves']} leaves on {data['devices']} devices;"
        " bytes per device.",
        "",
        "| optimizer | layout | params | state | update temporaries | update collectives | same parameters |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        same = {True: "yes, bit for bit", False: "**no**"}.get(
            r.get("same_params_as_replicated"), "reference"
        )
        out.append(
            f"| {r['optimizer']} | {r['layout']} | {r['params_bytes'] / 2**20:.1f} MiB | "
            f"{r['state_bytes'] / 2**20:.2f} MiB | {r['temp_bytes'] / 2**20:.2f} MiB | "
            f"{r['collectives']} | {same} |"
        )
    return "\n".join(out)


def mutants_table(paths: list[str]) -> str:
    """Planted bugs before and after: one column per result file."""
    runs = [load(p) for p in paths]
    out = [
        "| mutant | what | " + " | ".join(f"`{r['rev'] or 'working tree'}`" for r in runs) + " |",
        "|---|---|" + "---|" * len(runs),
    ]
    for row in runs[-1]["rows"]:
        cells = []
        for run in runs:
            match = next((x for x in run["rows"] if x["id"] == row["id"]), None)
            if match is None or match["result"] == "n/a":
                cells.append("n/a")
            elif match["result"] == "caught":
                cells.append(f"caught: `{match['caught_by']}`")
            else:
                cells.append("**survives**")
        out.append(f"| {row['id']} | {row['what']} | " + " | ".join(cells) + " |")
    totals = []
    for run in runs:
        applied = [x for x in run["rows"] if x["result"] != "n/a"]
        caught = [x for x in applied if x["result"] == "caught"]
        totals.append(f"{len(caught)} of {len(applied)}")
    out.append("| caught | | " + " | ".join(totals) + " |")
    return "\n".join(out)


def conformance_table(paths: list[str]) -> str:
    """The catalogue against its references: how many cases agree bit for bit, and the
    largest difference of the others (per step, relative to the step's scale)."""
    data = load(paths[0])
    rows = data["rows"]
    exact = [r for r in rows if r["per_step"] == 0.0]
    bf16 = [r for r in rows if r["bf16"] or r["bound"] >= 1e-3]
    rest = [r for r in rows if r not in exact and r not in bf16]
    worst = max(rest, key=lambda r: r["per_step"]) if rest else None
    out = [
        caption(data, paths[0]),
        "",
        "| cases | bit for bit | float32 rounding (largest, per step) | bfloat16 buffers (largest / bound) |",
        "|---|---|---|---|",
        f"| {len(rows)} | {len(exact)} | {len(rest)} (`{worst['id']}`: {worst['per_step']:.2g}) | "
        + ", ".join(f"`{r['id']}` {r['per_step']:.2g} / {r['bound']:g}" for r in bf16)
        + " |"
        if worst
        else f"| {len(rows)} | {len(exact)} | 0 | {len(bf16)} |",
    ]
    return "\n".join(out)


def optax_modules_table(paths: list[str]) -> str:
    """optax's own test modules against gradtx, from the committed output of
    ``optax_test_modules.py``."""
    out = ["| optax test module | tests | optax passes | gradtx passes |", "|---|---|---|---|"]
    for line in (ROOT / paths[0]).read_text().splitlines():
        m = re.match(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)$", line)
        if m:
            name = m.group(1) if m.group(1) != "total" else "**total**"
            out.append(f"| {name} | {int(m.group(2)):,} | {int(m.group(3)):,} | {int(m.group(4)):,} |")
    return "\n".join(out)


def _rows(path: str) -> list[dict[str, Any]]:
    return load(path)["results"]


def _find(rows: list[dict[str, Any]], layout: str, opt: str, mode: str, variant: str) -> dict[str, Any]:
    return next(
        r
        for r in rows
        if (r["layout"], r["optimizer"], r["mode"], r["variant"]) == (layout, opt, mode, variant)
    )


def claim(args: list[str]) -> str:
    """A sentence of the README whose figures come from a result: ``claim NAME FILE``."""
    name, path = args
    if name == "packed-1000":
        rows = _rows(path)
        packed = _find(rows, "1000 leaves", "adamw_clip", "update", "gradtx packed")
        optax_row = _find(rows, "1000 leaves", "adamw_clip", "update", "optax")
        low, high = packed["step_vs_optax_iqr"]
        return (
            f"an AdamW + clip update takes {packed['step_vs_optax']:.2f}x optax's time (interquartile "
            f"range over rounds {low:.2f}-{high:.2f}) and compiles in "
            f"{packed['compile_s'] / optax_row['compile_s']:.3f}x its time"
        )
    if name == "clip-plain":
        ratios = [
            r["step_vs_optax"]
            for r in _rows(path)
            if r["optimizer"] == "adamw_clip" and r["mode"] == "update" and r["variant"] == "gradtx"
        ]
        return f"runs in {min(ratios):.2f}x to {max(ratios):.2f}x optax's time (update steps, every layout)"
    if name == "multisteps":
        rows = load(path)["rows"]
        plain = [r["gradtx_ratio"] for r in rows]
        packed = [r["packed_ratio"] for r in rows]
        return (
            f"{min(plain):.2f}x to {max(plain):.2f}x optax's time per micro-step on CPU, "
            f"{min(packed):.2f}x to {max(packed):.2f}x packed"
        )
    if name == "conformance":
        rows = load(path)["rows"]
        exact = sum(r["per_step"] == 0.0 for r in rows)
        bf16 = [r for r in rows if r["bf16"] or r["bound"] >= 1e-3]
        rest = [r["per_step"] for r in rows if r["per_step"] != 0.0 and r not in bf16]
        return (
            f"{exact} agree bit for bit; {len(rest)} agree to {max(rest):.2g} of each step's scale"
            if rest
            else f"{exact} agree bit for bit"
        )
    if name == "quantized-seeds":
        held_out = seed_changes(load(path)["seeds"], "held_out_loss")
        eight = max(abs(c) for task in ("digits MLP", "char-level LM") for c in held_out[(task, "8-bit")])
        four = held_out[("char-level LM", "4-bit")]
        mixed = statistics.mean(held_out[("char-level LM", "8-bit mu, 4-bit nu")])
        return (
            f"8-bit state ends within {eight:.2%} of float32's held-out loss on "
            f"both; 4-bit costs {min(four):+.1%} to {max(four):+.1%} held-out on the character-level "
            'model, mostly from its first moment: `mu_dtype="8bit", nu_dtype="4bit"` (about 1.6 bytes '
            f"per parameter) costs {mixed:+.1%} on average there"
        )
    if name == "quantized-speed":
        rows = [r for r in load(path)["speed"] if "seconds" in r]
        eight = [r["vs_gradtx_float32"] for r in rows if r["name"] == "gradtx 8-bit"]
        torchao = [r["vs_gradtx_float32"] for r in rows if r["name"] == "torchao AdamW8bit"]
        return (
            f"the 8-bit AdamW step takes {min(eight):.1f}x to {max(eight):.1f}x float32's; "
            f"torchao's 8-bit AdamW takes {min(torchao):.0f}x to {max(torchao):.0f}x there"
        )
    if name == "quantized-peak":
        # the layouts with leaves larger than a tile (`tiled` runs smaller leaves whole)
        rows = [r for r in load(path)["peak"] if r["layout"] in ("1 leaf (4M)", "GPT-2 small")]

        def span(state: str) -> str:
            values = [r["peak"] for r in rows if r["name"] == state]
            low, high = f"{min(values):.1f}", f"{max(values):.1f}"
            return low if low == high else f"{low} to {high}"

        return (
            f"at its peak an 8-bit AdamW step on one 4M-value leaf or GPT-2 small holds "
            f"{span('gradtx 8-bit')} bytes per parameter "
            f"(parameters, gradient, state and the step's temporaries; 4-bit {span('gradtx 4-bit')}), "
            f"more than float32 AdamW's {span('gradtx float32')}: XLA keeps both new moments whole in "
            f'float32. In tiles, `gradtx.tiled(adamw(..., mu_dtype="8bit", nu_dtype="8bit"))` holds '
            f"{span('gradtx 8-bit, tiled')} (4-bit {span('gradtx 4-bit, tiled')})"
        )
    raise ValueError(f"unknown claim {name!r}")


def modern_table(paths: list[str]) -> str:
    """Muon, SOAP and Adam-mini step and compile times, and state bytes per parameter
    (benchmarks/modern.py)."""
    data = load(paths[0])
    stamp = {"stamp": data["stamp"]}  # its own rounds and compiles, said below
    out = [
        caption(stamp, paths[0]),
        "",
        f"Steps: medians of {data['rounds']} rounds of {data['steps']} steps (GPT-2 small: 2 rounds of 1); "
        f"compile: {data['compiles']} fresh compile(s) in one process.",
        "",
    ]
    out.append("| layout | optimizer | step | vs optax.contrib.muon | vs gradtx adamw | compile | vs optax |")
    out.append("|---|---|---|---|---|---|---|")
    by_layout: dict[str, dict[str, Any]] = {}
    for r in data["rows"]:
        by_layout.setdefault(r["layout"], {})[r["optimizer"]] = r
    for layout, rows in by_layout.items():
        optax_row, adamw_row = rows.get("optax.contrib.muon"), rows.get("gradtx adamw")
        for name, r in rows.items():
            vs_optax = f"{r['step_ms'] / optax_row['step_ms']:.2f}x" if optax_row and "muon" in name else NONE
            vs_adamw = f"{r['step_ms'] / adamw_row['step_ms']:.2f}x" if adamw_row else NONE
            compile_vs = (
                f"{r['compile_s'] / optax_row['compile_s']:.2f}x" if optax_row and "muon" in name else NONE
            )
            out.append(
                f"| {layout} | {name} | {r['step_ms']:.2f} ms | {vs_optax} | {vs_adamw} | "
                f"{r['compile_s']:.2f} s | {compile_vs} |"
            )
    out += ["", "| optimizer | state bytes per parameter (GPT-2 small) |", "|---|---|"]
    for r in data["memory"]:
        out.append(f"| {r['optimizer']} | {r['bytes_per_parameter']:.2f} |")
    return "\n".join(out)


def seed_changes(rows: list[dict[str, Any]], field: str) -> dict[tuple[str, str], list[float]]:
    """Per (task, state), in order of appearance: ``field`` relative to float32's with the
    same seed, minus one, for each seed (benchmarks/quantized.py --parts seeds)."""
    reference = {(r["task"], r["seed"]): r[field] for r in rows if r["state"] == "float32"}
    changes: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        change = r[field] / reference[(r["task"], r["seed"])] - 1
        changes.setdefault((r["task"], r["state"]), []).append(change)
    return changes


def seeds_rows(rows: list[dict[str, Any]]) -> list[str]:
    """Per task and state, over seeds: the final training and held-out loss against
    float32's with the same seed (mean change, and the range)."""
    final, held_out = seed_changes(rows, "final_loss"), seed_changes(rows, "held_out_loss")
    out = [
        "| task | state | seeds | final training loss vs float32: mean (range) "
        "| held-out loss vs float32: mean (range) |",
        "|---|---|---|---|---|",
    ]
    for (task, state), changes in final.items():
        cells = [
            f"{statistics.mean(c):+.1%} ({min(c):+.1%} to {max(c):+.1%})"
            for c in (changes, held_out[(task, state)])
        ]
        out.append(f"| {task} | {state} | {len(changes)} | {cells[0]} | {cells[1]} |")
    return out


def quantized_table(paths: list[str]) -> str:
    """Quantized optimizer state: accuracy per state dtype and map, then step time and
    bytes per parameter, then what a step holds at its peak, in bytes per parameter
    (benchmarks/quantized.py). ``load`` reads paths from the root."""
    path = paths[0]
    data = json.loads(
        (ROOT / path).read_text() if not os.path.isabs(path) else pathlib.Path(path).read_text()
    )
    out = [f"`{path}`: {describe(data['stamp'])}.", ""]
    if "accuracy" in data:
        out += [
            "| task | state | steps | final training loss (last 20 steps) | vs float32 | held-out loss "
            "| state bytes per parameter |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in data["accuracy"]:
            diverged = not math.isfinite(r["final_loss"]) or r["final_loss"] > 1e3
            loss = "diverged" if diverged else f"{r['final_loss']:.4f}"
            change = NONE if diverged else f"{r['vs_float32']:+.1%}"
            held = NONE if diverged else f"{r['held_out_loss']:.4f}"
            out.append(
                f"| {r['task']} | {r['state']} | {r['steps']} | {loss} | {change} | {held} "
                f"| {r['bytes_per_parameter']:.3f} |"
            )
        out.append("")
    if "seeds" in data:
        out += [*seeds_rows(data["seeds"]), ""]
    if "speed" in data:
        out += [
            "| layout | optimizer state | step (ms) | vs gradtx float32 | first call (s) "
            "| state bytes per parameter | page faults per step |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in data["speed"]:
            if "seconds" not in r:
                error = r["error"][:120]
                out.append(f"| {r['layout']} | {r['name']} | {NONE} | {NONE} | {NONE} | {error} | {NONE} |")
                continue
            out.append(
                f"| {r['layout']} | {r['name']} | {r['seconds'] * 1e3:.2f} | {r['vs_gradtx_float32']:.2f}x "
                f"| {fmt(r.get('first_call_seconds'), '.1f')} | {r['bytes_per_parameter']:.3f} "
                f"| {fmt(r.get('faults_per_step'), '.0f')} |"
            )
        out.append("")
    if "peak" in data:
        out += [
            "| layout | optimizer state | state between steps | step's arguments | step's temporaries "
            "| step's peak |",
            "|---|---|---|---|---|---|",
        ]
        out += [
            f"| {r['layout']} | {r['name']} | {r['state_bytes_per_parameter']:.3f} | {r['arguments']:.3f} "
            f"| {r['temporaries']:.3f} | {r['peak']:.3f} |"
            for r in data["peak"]
        ]
    return "\n".join(out).rstrip()


KINDS: dict[str, Callable[[list[str]], str]] = {
    "claim": claim,
    "conformance": conformance_table,
    "optax-modules": optax_modules_table,
    "step": step_table,
    "compile": compile_table,
    "faults": faults_table,
    "history": history_table,
    "goals": goals_table,
    "multisteps": multisteps_table,
    "state-dtypes": state_dtypes_table,
    "mutants": mutants_table,
    "zero1": zero1_table,
    "modern": modern_table,
    "quantized": quantized_table,
}
BLOCK = re.compile(r"^([ \t]*)(<!-- report: (\S+)((?: \S+)*) -->\n)(.*?)^[ \t]*<!-- /report -->", re.S | re.M)


def regenerate(text: str) -> str:
    def render(m: re.Match[str]) -> str:
        indent, kind, paths = m.group(1), m.group(3), m.group(4).split()
        body = "\n".join(indent + line if line else line for line in KINDS[kind](paths).splitlines())
        return f"{indent}{m.group(2)}{body}\n{indent}<!-- /report -->"

    return BLOCK.sub(render, text)


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] in ("--update", "--check"):
        path = ROOT / args[1] if not os.path.isabs(args[1]) else pathlib.Path(args[1])
        text = path.read_text()
        new = regenerate(text)
        if args[0] == "--update":
            path.write_text(new)
            print(f"{path.name}: {len(BLOCK.findall(text))} tables regenerated")
        elif new != text:
            print(f"{path.name} differs from what its committed results give: run report.py --update")
            sys.exit(1)
        return
    if args and args[0] == "--kind":  # one table of the named kind
        print(KINDS[args[1]]([os.path.abspath(p) for p in args[2:]]))
        return
    paths = [os.path.relpath(os.path.abspath(p), ROOT) for p in args]
    print(step_table(paths))
    print()
    print(compile_table(paths))


if __name__ == "__main__":
    main()
