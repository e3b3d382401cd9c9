"""A prototype, not gradtx's code path: AdamW with 8-bit moments on one 4M-value leaf, run
tile by tile under ``lax.fori_loop`` (decode, update, block maxima and encode for a tile of
whole blocks, then the next tile), against gradtx's own 8-bit AdamW and float32 AdamW.

Why: gradtx's 8-bit step materializes both new moments in float32 for the whole leaf
(XLA will not recompute them for their three readers), 33.6 MB of temporaries that XLA's
CPU runtime allocates afresh every call, above glibc's mmap threshold, so every step maps
about 8,200 new pages (BENCHMARKS.md, "Quantized optimizer state"). Tiles keep those
temporaries a tile long. This measures what that would buy, and checks the prototype
computes gradtx's numbers (parameters to float32 rounding, the same codes).

Run:  python benchmarks/quantized_tiled.py [--tiles 1,4,16,64] [--rounds 7] [--steps 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx import _quantized

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stamp import stamp
from quantized import FAULTS_PER_STEP, jax_step, median_step

SIZE = 4 * 1024 * 1024
LR, B1, B2, EPS, WD = 1e-3, 0.9, 0.999, 1e-8, 1e-4
SIGNED = _quantized.quantized(8, signed=True)
UNSIGNED = _quantized.quantized(8, signed=False)
BLOCK = SIGNED.block


def tile_update(p: Any, g: Any, mu: Any, nu: Any, count: Any) -> tuple[Any, Any, Any]:
    """AdamW on a tile (``p``, ``g`` of whole blocks; ``mu``, ``nu`` their QuantizedArrays):
    gradtx's arithmetic, in its order."""
    g = mu.to_blocks(g)
    m = (1 - B1) * g + B1 * mu.decode_blocks()
    v = (1 - B2) * (g * g) + B2 * nu.decode_blocks()
    t = count.astype(jnp.float32)
    m_hat = m / (1 - B1**t)
    v_hat = v / (1 - B2**t)
    u = m_hat / (jnp.sqrt(v_hat) + EPS)
    u = -LR * (u + WD * mu.to_blocks(p))
    new_p = mu.from_blocks(mu.to_blocks(p) + u)
    return (
        new_p,
        _quantized.QuantizedArray.encode(m.reshape(-1), SIGNED),
        _quantized.QuantizedArray.encode(v.reshape(-1), UNSIGNED),
    )


def tiled_step(tiles: int) -> Callable[..., Any]:
    per_tile = SIZE // tiles
    blocks = per_tile // BLOCK

    def step(p: Any, g: Any, codes_m: Any, scales_m: Any, codes_v: Any, scales_v: Any, count: Any) -> Any:
        count = count + 1

        def body(i: Any, carry: Any) -> Any:
            p, cm, sm, cv, sv = carry

            def part(x: Any, n: int) -> Any:
                return jax.lax.dynamic_slice_in_dim(x, i * n, n)

            mu = _quantized.QuantizedArray(part(cm, blocks), part(sm, blocks), (per_tile,), SIGNED)
            nu = _quantized.QuantizedArray(part(cv, blocks), part(sv, blocks), (per_tile,), UNSIGNED)
            new_p, m, v = tile_update(part(p, per_tile), part(g, per_tile), mu, nu, count)

            def put(x: Any, y: Any, n: int) -> Any:
                return jax.lax.dynamic_update_slice_in_dim(x, y, i * n, 0)

            return (
                put(p, new_p, per_tile),
                put(cm, m.codes, blocks),
                put(sm, m.scales, blocks),
                put(cv, v.codes, blocks),
                put(sv, v.scales, blocks),
            )

        out = jax.lax.fori_loop(0, tiles, body, (p, codes_m, scales_m, codes_v, scales_v))
        return (*out, count)

    return jax.jit(step, donate_argnums=(0, 2, 3, 4, 5, 6))


def library_step(tx: Any) -> Callable[..., Any]:
    def step(p: Any, s: Any, g: Any) -> Any:
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    return jax.jit(step, donate_argnums=(0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiles", default="1,4,16,64")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    p0 = jax.random.normal(jax.random.key(0), (SIZE,))
    g = jax.random.normal(jax.random.key(1), (SIZE,)) * 1e-2
    timing_grads = jnp.full_like(p0, 1e-3)  # the gradient jax_step times gradtx's steps with
    rows: list[dict[str, Any]] = []

    def record(name: str, seconds: float, faults: float) -> None:
        rows.append({"name": name, "seconds": seconds, "faults_per_step": faults})

    # gradtx float32 and 8-bit AdamW, parameters and state donated (benchmarks/quantized.py's step)
    for name, tx in (
        ("gradtx float32", gradtx.adamw(LR, B1, B2, EPS, weight_decay=WD)),
        ("gradtx 8-bit", gradtx.adamw(LR, B1, B2, EPS, weight_decay=WD, mu_dtype="8bit", nu_dtype="8bit")),
    ):
        record(name, jax_step(tx, {"w": p0}, args.rounds, args.steps), FAULTS_PER_STEP[0])

    # The prototype: its numbers first (three steps against gradtx's 8-bit AdamW), then time.
    tx8 = gradtx.adamw(LR, B1, B2, EPS, weight_decay=WD, mu_dtype="8bit", nu_dtype="8bit")
    for tiles in [int(t) for t in args.tiles.split(",")]:
        state = tx8.init({"w": p0})
        mu, nu = state[0].mu["w"], state[1].nu["w"]
        buffers = [jnp.copy(b) for b in (mu.codes, mu.scales, nu.codes, nu.scales)]  # donated below
        carry = (p0 + 0, *buffers, jnp.zeros((), jnp.int32))
        step = tiled_step(tiles)
        library, params = library_step(tx8), {"w": p0 + 0}
        for _ in range(3):
            carry = step(carry[0], g, *carry[1:])
            params, state = library(params, state, {"w": g})
        np.testing.assert_allclose(np.asarray(carry[0]), np.asarray(params["w"]), rtol=1e-6, atol=0)
        np.testing.assert_array_equal(np.asarray(carry[1]), np.asarray(state[0].mu["w"].codes))
        np.testing.assert_array_equal(np.asarray(carry[3]), np.asarray(state[1].nu["w"].codes))
        box = [carry]

        def run(step: Any = step, box: list[Any] = box) -> Any:
            c = box[0]
            box[0] = step(c[0], timing_grads, *c[1:])
            return box[0]

        jax.block_until_ready(run())
        name = f"8-bit, {tiles} tile{'s' if tiles > 1 else ''} (prototype)"
        record(name, median_step(run, args.rounds, args.steps), FAULTS_PER_STEP[0])

    base = rows[0]["seconds"]
    print(f"{'AdamW on one 4M leaf':34s} {'step (ms)':>9s} {'vs float32':>10s} {'page faults/step':>16s}")
    for r in rows:
        r["vs_float32"] = r["seconds"] / base
        ms, ratio, faults = r["seconds"] * 1e3, r["vs_float32"], r["faults_per_step"]
        print(f"{r['name']:34s} {ms:9.2f} {ratio:9.2f}x {faults:16.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"stamp": stamp(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
