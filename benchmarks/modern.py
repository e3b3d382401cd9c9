"""Muon, SOAP and Adam-mini: step and compile time against optax and AdamW, and the
optimizer state's bytes per parameter.

Muon: gradtx's ``contrib.muon`` with Newton-Schulz grouped by shape (one batched
iteration per matrix shape, the default) and per leaf (``grouped=False``, optax's way),
against ``optax.contrib.muon`` with the same dimension numbers, on 1,000 small matrices
(four shapes) and on the GPT-2-small tree (12 layers, d_model 768; embeddings to AdamW).
SOAP and Adam-mini: step time relative to gradtx's AdamW on the same trees (SOAP on a
4-layer d_model-256 transformer: its eigendecompositions of 3072 x 3072 statistics make
GPT-2 small minutes per refresh on this CPU). Memory: bytes of state per parameter
(``jax.eval_shape`` of ``init``: nothing is allocated) on the GPT-2-small tree.

Step times are medians of ``--rounds`` rounds of ``--steps`` jitted steps (the updates
applied, the same gradient each step); compile times are the median of ``--compiles``
fresh ``jit(...).lower(...).compile()`` calls in this process.

Run:  python benchmarks/modern.py [--rounds 5 --steps 5 --json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
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


def small_matrices(n: int = 1000) -> dict[str, Any]:
    shapes = [(32, 32), (32, 64), (64, 32), (16, 48)]
    return {f"m{i:04d}": jnp.full(shapes[i % 4], 0.01, jnp.float32) for i in range(n)}


def gpt2(layers: int = 12, d: int = 768, vocab: int = 50257, context: int = 1024) -> dict[str, Any]:
    """GPT-2's parameter tree (flax's ``(in, out)`` kernels); values are placeholders."""

    def z(*shape: int) -> Any:
        return jnp.full(shape, 0.01, jnp.float32)

    block = lambda: {  # noqa: E731
        "ln_1": {"scale": z(d), "bias": z(d)},
        "attn": {
            "c_attn": {"kernel": z(d, 3 * d), "bias": z(3 * d)},
            "c_proj": {"kernel": z(d, d), "bias": z(d)},
        },
        "ln_2": {"scale": z(d), "bias": z(d)},
        "mlp": {
            "c_fc": {"kernel": z(d, 4 * d), "bias": z(4 * d)},
            "c_proj": {"kernel": z(4 * d, d), "bias": z(d)},
        },
    }
    return {
        "wte": z(vocab, d),
        "wpe": z(context, d),
        "h": {str(i): block() for i in range(layers)},
        "ln_f": {"scale": z(d), "bias": z(d)},
    }


def dims_2d(lib: Any, params: Any) -> Any:
    """Muon's matrices: the 2-D kernels, not the embeddings (the same tree for both libraries)."""

    def choose(path: Any, p: Any) -> Any:
        name = jax.tree_util.keystr(path)
        is_matrix = p.ndim == 2 and "wte" not in name and "wpe" not in name
        return lib.contrib.MuonDimensionNumbers(0, 1) if is_matrix else None

    return jax.tree_util.tree_map_with_path(choose, params)


def timed(opt: Any, params: Any, rounds: int, steps: int, compiles: int) -> dict[str, float]:
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.02), params)

    def run(carry: Any) -> Any:
        # the updates are applied (carried), so no part of the step is dead code
        def body(c: Any, _: Any) -> Any:
            p, s = c
            updates, s = opt.update(grads, s, p)
            return (gradtx.apply_updates(p, updates), s), None

        return jax.lax.scan(body, carry, None, steps)[0]

    compile_s = []
    compiled: Any = None
    for _ in range(max(1, compiles)):
        fresh = jax.jit(lambda s: run(s))
        t0 = time.perf_counter()
        compiled = fresh.lower((params, opt.init(params))).compile()
        compile_s.append(time.perf_counter() - t0)
    carry = (params, opt.init(params))
    carry = jax.block_until_ready(compiled(carry))  # warm
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        carry = jax.block_until_ready(compiled(carry))
        times.append((time.perf_counter() - t0) / steps)
    return {"step_ms": 1e3 * statistics.median(times), "compile_s": statistics.median(compile_s)}


def state_bytes(opt: Any, params: Any) -> float:
    shapes = jax.eval_shape(opt.init, params)
    total = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes))
    return total / sum(p.size for p in jax.tree.leaves(params))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--compiles", type=int, default=3)
    parser.add_argument("--gpt2-rounds", type=int, default=2)
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--parts",
        default="small,gpt2,transformer,memory",
        help="parts to run, comma-separated (with --json, the file keeps the rows of the others)",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    previous: dict[str, Any] = {}
    if args.json and os.path.exists(args.json):
        with open(args.json) as f:
            previous = json.load(f)
    rows: list[dict[str, Any]] = [r for r in previous.get("rows", []) if r.get("part") not in parts]
    memory: list[dict[str, Any]] = [] if "memory" in parts else previous.get("memory", [])

    def save() -> None:
        if args.json:
            out = {
                "stamp": stamp(),
                "rounds": args.rounds,
                "steps": args.steps,
                "compiles": args.compiles,
                "rows": rows,
                "memory": memory,
            }
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)

    part = ""

    def record(layout: str, name: str, make: Callable[[], Any], params: Any, rounds: int, steps: int) -> None:
        result = timed(make(), params, rounds, steps, args.compiles)
        rows.append({"part": part, "layout": layout, "optimizer": name, **result})
        save()
        print(
            f"{layout:22s} {name:28s} {result['step_ms']:10.2f} ms {result['compile_s']:8.2f} s", flush=True
        )

    print(f"{'layout':22s} {'optimizer':28s} {'step':>13s} {'compile':>10s}")
    for part, layout, params, rounds, steps in (
        ("small", "1,000 small matrices", small_matrices(), args.rounds, args.steps),
        ("gpt2", "GPT-2 small", gpt2(), args.gpt2_rounds, 1),
    ):
        if part not in parts:
            continue
        ours_dims, their_dims = dims_2d(gradtx, params), dims_2d(optax, params)
        record(
            layout,
            "optax.contrib.muon",
            lambda d=their_dims: optax.contrib.muon(1e-3, muon_weight_dimension_numbers=d),
            params,
            rounds,
            steps,
        )
        record(
            layout,
            "gradtx muon, per leaf",
            lambda d=ours_dims: _ungrouped(gradtx.contrib.muon(1e-3, muon_weight_dimension_numbers=d)),
            params,
            rounds,
            steps,
        )
        record(
            layout,
            "gradtx muon, grouped",
            lambda d=ours_dims: gradtx.contrib.muon(1e-3, muon_weight_dimension_numbers=d),
            params,
            rounds,
            steps,
        )
        record(layout, "gradtx adamw", lambda: gradtx.adamw(1e-3), params, rounds, steps)
        record(layout, "gradtx adam_mini", lambda: gradtx.adam_mini(1e-3), params, rounds, steps)
    part = "transformer"
    if part in parts:
        small = gpt2(layers=4, d=256, vocab=8192, context=256)
        layout = "transformer d256 x4"
        record(layout, "gradtx adamw", lambda: gradtx.adamw(1e-3), small, args.rounds, args.steps)
        record(layout, "gradtx adam_mini", lambda: gradtx.adam_mini(1e-3), small, args.rounds, args.steps)
        soap = lambda: gradtx.soap(1e-3, max_precond_dim=1024)  # noqa: E731
        record(layout, "gradtx soap", soap, small, args.rounds, args.steps)
        rule = gradtx.contrib.MatrixRule()
        muon = lambda: gradtx.contrib.muon(1e-3, muon_weight_dimension_numbers=rule)  # noqa: E731
        record(layout, "gradtx muon, grouped", muon, small, args.rounds, args.steps)

    if "memory" in parts:
        params = gpt2()
        builders = {
            "optax adamw": lambda: optax.adamw(1e-3),
            "gradtx adamw": lambda: gradtx.adamw(1e-3),
            "gradtx adamw, bfloat16 mu and nu": lambda: gradtx.adamw(
                1e-3, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16
            ),
            "gradtx adam_mini": lambda: gradtx.adam_mini(1e-3),
            "gradtx contrib.muon (MatrixRule)": lambda: gradtx.contrib.muon(
                1e-3, muon_weight_dimension_numbers=gradtx.contrib.MatrixRule()
            ),
            "gradtx soap (max_precond_dim 10000)": lambda: gradtx.soap(1e-3),
            "gradtx mars_adamw": lambda: gradtx.mars_adamw(1e-3),
            "gradtx cautious_adamw": lambda: gradtx.cautious_adamw(1e-3),
            "gradtx contrib.schedule_free_adamw": lambda: gradtx.contrib.schedule_free_adamw(1e-3),
            "gradtx contrib.prodigy": lambda: gradtx.contrib.prodigy(),
            "gradtx contrib.galore (rank 128)": lambda: gradtx.contrib.galore(1e-3, rank=128),
            "gradtx contrib.adopt": lambda: gradtx.contrib.adopt(1e-3),
            "gradtx contrib.ademamix": lambda: gradtx.contrib.ademamix(1e-3),
            "gradtx lion": lambda: gradtx.lion(1e-4),
            "gradtx sgd (momentum 0.9)": lambda: gradtx.sgd(1e-2, 0.9),
        }
        count = sum(p.size for p in jax.tree.leaves(params))
        print(f"\nstate bytes per parameter, GPT-2 small ({count:,} parameters)")
        for name, make in builders.items():
            b = state_bytes(make(), params)
            memory.append({"optimizer": name, "bytes_per_parameter": b})
            print(f"  {name:40s} {b:6.2f}")
        save()


def _ungrouped(opt: Any) -> Any:
    """The same optimizer with one Newton-Schulz per leaf (optax's way)."""
    muon_chain = opt.transforms["muon"]
    blocks = [
        gradtx.contrib.orthogonalize(
            b.ns_coeffs,
            b.ns_steps,
            b.eps,
            b.preconditioning,
            b.adaptive,
            b.weight_dimension_numbers,
            grouped=False,
        )
        if isinstance(b, gradtx.contrib.orthogonalize)
        else b
        for b in muon_chain.transforms
    ]
    return gradtx.partition({"muon": gradtx.chain(*blocks), "adam": opt.transforms["adam"]}, opt.param_labels)


if __name__ == "__main__":
    main()
