"""Gradient accumulation: gradtx.MultiSteps against optax.MultiSteps, Adam inside.

For k micro-batches per update (k = 4 and 16) it measures, in one process and
interleaved round by round, the time per micro-step of a jitted step (``update`` +
``apply_updates``, parameters and state donated; the mean over k * rounds_len calls,
so one emitting call in k is included), the compile time of that step, and XLA's
temporary bytes. gradtx runs the inner Adam only on the emitting micro-step (under
``lax.cond``); optax runs it at every micro-step and selects.

Run:  python benchmarks/multisteps.py [--ks 4,16] [--leaves 10,1000] [--params 16777216]
      [--rounds 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

import gradtx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stamp import stamp

LIBRARIES: dict[str, Callable[[int], Any]] = {
    "optax": lambda k: optax.MultiSteps(optax.adam(1e-3), every_k_schedule=k),
    "gradtx": lambda k: gradtx.MultiSteps(gradtx.adam(1e-3), every_k_schedule=k),
    "packed": lambda k: gradtx.MultiSteps(gradtx.adam(1e-3), every_k_schedule=k),  # on gradtx.pack(params)
}


def layout(leaves: int, total: int) -> dict[str, jax.Array]:
    size = total // leaves
    key = jax.random.key(0)
    return {f"p{i:05d}": jax.random.normal(jax.random.fold_in(key, i), (size,)) * 0.02 for i in range(leaves)}


def build(opt: Any, params: Any, grads: Any) -> tuple[Any, float, int]:
    """The compiled step, its compile time, and XLA's temporary bytes."""

    def step(params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    jitted = jax.jit(step, donate_argnums=(0, 1))
    state = opt.init(params)
    start = time.perf_counter()
    compiled = jitted.lower(params, state, grads).compile()
    seconds = time.perf_counter() - start
    analysis = compiled.memory_analysis()
    temp = int(getattr(analysis, "temp_size_in_bytes", 0)) if analysis is not None else 0
    return compiled, seconds, temp


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ks", default="4,16")
    parser.add_argument("--leaves", default="10,1000")
    parser.add_argument("--params", type=int, default=16 * 2**20)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    device = jax.devices()[0].device_kind
    print(
        f"# {platform.processor() or platform.machine()}, {device}, jax {jax.__version__}, "
        f"optax {optax.__version__}; {args.params:,} float32 parameters; medians of {args.rounds} rounds"
    )
    print(
        "| leaves | k | optax per micro-step | gradtx | gradtx packed "
        "| compile optax / gradtx / packed | temp MiB optax / gradtx / packed |"
    )
    print("|---|---|---|---|---|---|---|")
    rows = []
    for leaves in [int(x) for x in args.leaves.split(",")]:
        for k in [int(x) for x in args.ks.split(",")]:
            plain = layout(leaves, args.params)
            runs: dict[str, dict[str, Any]] = {}
            for name, make in LIBRARIES.items():
                opt = make(k)
                params0 = gradtx.pack(plain) if name == "packed" else plain
                grads = jax.tree.map(lambda p: p * 0.1 + 0.01, params0)
                compiled, seconds, temp = build(opt, params0, grads)
                params = jax.tree.map(jnp.copy, params0)
                state = opt.init(params)
                params, state = compiled(params, state, grads)  # warm up
                jax.block_until_ready(params)
                runs[name] = {"fn": compiled, "p": params, "s": state, "g": grads, "times": []}
                runs[name].update(compile_s=seconds, temp_bytes=temp)
            for _ in range(args.rounds):
                for run in runs.values():
                    start = time.perf_counter()
                    for _ in range(k):
                        run["p"], run["s"] = run["fn"](run["p"], run["s"], run["g"])
                    jax.block_until_ready(run["p"])
                    run["times"].append((time.perf_counter() - start) / k)
            med = {n: statistics.median(r["times"]) for n, r in runs.items()}
            row: dict[str, Any] = {"leaves": leaves, "k": k}
            for n, r in runs.items():
                row.update({f"{n}_ms": med[n] * 1e3, f"{n}_ratio": med[n] / med["optax"]})
                row.update({f"{n}_compile_s": r["compile_s"], f"{n}_temp_bytes": r["temp_bytes"]})
            rows.append(row)
            cells = " | ".join(f"{row[n + '_ms']:.1f} ms ({row[n + '_ratio']:.2f}x)" for n in runs)
            compile_s = " / ".join(f"{row[n + '_compile_s']:.2f} s" for n in runs)
            temp = " / ".join(f"{row[n + '_temp_bytes'] / 2**20:.0f}" for n in runs)
            print(f"| {leaves} | {k} | {cells} | {compile_s} | {temp} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "stamp": stamp(),
                    "device": jax.devices()[0].device_kind,
                    "params": args.params,
                    "rounds": args.rounds,
                    "rows": rows,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
