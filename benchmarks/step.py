"""Optimizer step and compile time: gradtx (plain and packed) against optax and PyTorch.

For each layout (N equal leaves holding P float32 parameters in all, or a GPT-2-small
tree) and each optimizer (Adam, AdamW + clip_by_global_norm, SGD with momentum), it
measures in one process, interleaved round by round, medians over rounds:

- the step time of an update-only step (``update`` + ``apply_updates``, parameters and
  state donated) and of a whole train step (loss, gradient, update);
- the compile time, XLA's ``memory_analysis`` (temporary bytes; parameter-sized
  temporaries show up here) and the peak RSS growth during compilation;
- PyTorch 2.13's ``torch.optim`` with ``foreach=True`` and ``fused=True`` on the same
  shapes and the same loss (each leaf times a fixed probe matrix: its gradient is a
  matrix product, materialised as in a real model), on the GPU when JAX runs on one.

How the numbers are made reproducible:

- the variants run interleaved and in a rotated order (round r starts with variant r),
  so no variant always runs first or right after another;
- each ratio against optax is taken per round (both measured in the same round) and
  reported as the median with its interquartile range over rounds, and each step time
  with its spread (interquartile range / median): the noise figure of the row;
- compile time, trace time and peak RSS growth come from ``--compile-samples`` fresh
  processes per variant (``--probe``), one compile each, medians reported: a process's
  second compile reuses what the first allocated, so in-process figures depend on order;
- minor page faults per step (``getrusage``) are recorded for every variant: a fresh
  temporary above glibc's mmap threshold is faulted in again at every step;
- ``bytes_per_step`` is the least memory traffic of an update step (each parameter,
  gradient and state buffer read once and each result written once) and ``gbps`` that
  divided by the step time; ``--peak-gbps`` (or a known device) gives the fraction of peak;
- the JSON records the git revision, library versions, machine, date and command.

Run:  python benchmarks/step.py [--leaves 1,100,1000] [--params 16777216] [--gpt2]
      [--optimizers adam,adamw_clip,sgd_momentum] [--modes update,train]
      [--rounds 7] [--steps 5] [--compile-samples 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stamp import describe, stamp

LR, WD, CLIP, MOMENTUM = 1e-3, 1e-2, 1.0, 0.9

# The least memory traffic of one update step, in float32 words per parameter: Adam reads
# p, g, m, v and writes p, m, v; clipping reads g once more for the norm; SGD with
# momentum reads p, g, m and writes p, m.
WORDS_PER_PARAM = {"adam": 7, "adamw_clip": 8, "sgd_momentum": 5}
# Peak memory bandwidth (GB/s) of devices this script may meet, from their data sheets.
PEAK_GBPS = {"NVIDIA H100 80GB HBM3": 3350.0, "NVIDIA H100 PCIe": 2000.0, "NVIDIA H200": 4800.0}

OPTIMIZERS: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "adam": (lambda: gradtx.adam(LR), lambda: optax.adam(LR)),
    "adamw_clip": (
        lambda: gradtx.chain(gradtx.clip_by_global_norm(CLIP), gradtx.adamw(LR, weight_decay=WD)),
        lambda: optax.chain(optax.clip_by_global_norm(CLIP), optax.adamw(LR, weight_decay=WD)),
    ),
    "sgd_momentum": (lambda: gradtx.sgd(LR, MOMENTUM), lambda: optax.sgd(LR, MOMENTUM)),
}


def peak_rss_mib() -> float:
    text = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


def rss_mib() -> float:
    text = open("/proc/self/status").read()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def layout(leaves: int, total: int) -> dict[str, jax.Array]:
    size = total // leaves // 64 * 64  # whole (rows, 64) matrices for the train-step loss
    key = jax.random.key(0)
    return {f"p{i:05d}": jax.random.normal(jax.random.fold_in(key, i), (size,)) * 0.02 for i in range(leaves)}


def gpt2_small() -> dict[str, Any]:
    """The parameter shapes of GPT-2 small (124M parameters, 148 leaves)."""
    d, ff, vocab, ctx = 768, 3072, 50257, 1024
    key = jax.random.key(0)
    counter = iter(range(10_000))

    def normal(*shape: int) -> jax.Array:
        return jax.random.normal(jax.random.fold_in(key, next(counter)), shape) * 0.02

    params: dict[str, Any] = {
        "wte": normal(vocab, d),
        "wpe": normal(ctx, d),
        "ln_f": {"g": jnp.ones(d), "b": jnp.zeros(d)},
    }
    for i in range(12):
        params[f"h{i:02d}"] = {
            "ln_1": {"g": jnp.ones(d), "b": jnp.zeros(d)},
            "attn": {
                "c_attn": {"w": normal(d, 3 * d), "b": jnp.zeros(3 * d)},
                "c_proj": {"w": normal(d, d), "b": jnp.zeros(d)},
            },
            "ln_2": {"g": jnp.ones(d), "b": jnp.zeros(d)},
            "mlp": {
                "c_fc": {"w": normal(d, ff), "b": jnp.zeros(ff)},
                "c_proj": {"w": normal(ff, d), "b": jnp.zeros(d)},
            },
        }
    return params


def _width(size: int) -> int:
    return next(c for c in (64, 32, 16, 8, 4, 2, 1) if size % c == 0)


PROBES = {c: np.cos(np.arange(c * 8, dtype=np.float32).reshape(c, 8)) / c for c in (64, 32, 16, 8, 4, 2, 1)}


def loss_fn(tree: Any) -> jax.Array:
    """Each leaf, as a (rows, c) matrix, meets a fixed (c, 8) probe: ``0.5 * |x A|^2``.

    Its gradient ``(x A) A^T`` is a matrix product, materialised as in a real model,
    not an elementwise expression XLA could fuse into the optimizer."""
    total = jnp.zeros([])
    for x in jax.tree.leaves(tree):
        c = _width(x.size)
        y = x.reshape(-1, c) @ jnp.asarray(PROBES[c])
        total = total + 0.5 * jnp.sum(y * y)
    return total


def torch_loss(tensors: list[Any]) -> Any:
    import torch

    total = torch.zeros(())
    for t in tensors:
        c = _width(t.numel())
        y = t.reshape(-1, c) @ torch.from_numpy(PROBES[c]).to(t.device)
        total = total + 0.5 * (y * y).sum()
    return total


class JaxVariant:
    """One jitted step of one optimizer on one parameter representation."""

    def __init__(self, name: str, opt: Any, params: Any, mode: str, packed: bool) -> None:
        self.name = name
        self.params = jax.tree.map(jnp.copy, params)
        self.state = opt.init(self.params)
        unpack = (lambda p: p.unpack()) if packed else (lambda p: p)
        grads = jax.tree.map(lambda x: x * 0.5 + 1e-3, self.params)

        def update_step(p: Any, s: Any, g: Any) -> tuple[Any, Any]:
            u, s = opt.update(g, s, p)
            return gradtx.apply_updates(p, u), s

        def train_step(p: Any, s: Any) -> tuple[Any, Any]:
            g = jax.grad(lambda q: loss_fn(unpack(q)))(p)
            return update_step(p, s, g)

        step: Callable[..., Any] = update_step if mode == "update" else train_step
        args: tuple[Any, ...] = (grads,) if mode == "update" else ()
        self.args = args
        jitted = jax.jit(step, donate_argnums=(0, 1), keep_unused=True)
        gc.collect()
        tracked = reset_peak_rss()
        before = rss_mib()
        start = time.perf_counter()
        lowered = jitted.lower(self.params, self.state, *args)
        self.trace_s = time.perf_counter() - start
        self.compiled = lowered.compile()
        self.compile_s = time.perf_counter() - start
        # Meaningful only in a fresh process (--probe): later compiles reuse memory.
        self.compile_rss_mib = peak_rss_mib() - before if tracked else float("nan")
        analysis = self.compiled.memory_analysis()
        self.temp_mib = getattr(analysis, "temp_size_in_bytes", 0) / 2**20
        self.alias_mib = getattr(analysis, "alias_size_in_bytes", 0) / 2**20
        self.run(2)

    def run(self, steps: int) -> tuple[float, float]:
        """Seconds and minor page faults per step."""
        faults = minor_faults()
        start = time.perf_counter()
        for _ in range(steps):
            self.params, self.state = self.compiled(self.params, self.state, *self.args)
        jax.block_until_ready(self.params)
        return (time.perf_counter() - start) / steps, (minor_faults() - faults) / steps


class TorchVariant:
    """``torch.optim`` on the same shapes (foreach or fused)."""

    def __init__(self, name: str, optimizer: str, params: Any, mode: str, impl: str) -> None:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        self.name = name
        # On the GPU when JAX runs on one, so both libraries use the same device.
        self.device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
        self.tensors = [
            torch.nn.Parameter(torch.from_numpy(np.array(x)).to(self.device)) for x in jax.tree.leaves(params)
        ]
        foreach, fused = (True, None) if impl == "foreach" else (None, True)
        if optimizer == "adam":
            self.opt = torch.optim.Adam(self.tensors, lr=LR, foreach=foreach, fused=fused)
        elif optimizer == "adamw_clip":
            self.opt = torch.optim.AdamW(self.tensors, lr=LR, weight_decay=WD, foreach=foreach, fused=fused)
        else:
            self.opt = torch.optim.SGD(self.tensors, lr=LR, momentum=MOMENTUM, foreach=foreach, fused=fused)
        self.clip = optimizer == "adamw_clip"
        self.mode = mode
        self.compile_s = self.trace_s = self.compile_rss_mib = self.temp_mib = self.alias_mib = float("nan")
        for t in self.tensors:
            t.grad = t.detach() * 0.5 + 1e-3
        self.run(2)

    def sync(self) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()

    def run(self, steps: int) -> tuple[float, float]:
        """Seconds and minor page faults per step."""
        import torch

        self.sync()
        faults = minor_faults()
        start = time.perf_counter()
        for _ in range(steps):
            if self.mode == "train":
                self.opt.zero_grad(set_to_none=True)
                torch_loss(self.tensors).backward()
            if self.clip:
                torch.nn.utils.clip_grad_norm_(self.tensors, CLIP, foreach=True)
            self.opt.step()
        self.sync()
        return (time.perf_counter() - start) / steps, (minor_faults() - faults) / steps


JAX_VARIANTS = ("optax", "gradtx", "gradtx packed")
VARIANTS = (*JAX_VARIANTS, "torch foreach", "torch fused")


def make_variant(name: str, optimizer: str, params: Any, mode: str) -> Any:
    ours, theirs = OPTIMIZERS[optimizer]
    if name == "optax":
        return JaxVariant(name, theirs(), params, mode, packed=False)
    if name == "gradtx":
        return JaxVariant(name, ours(), params, mode, packed=False)
    if name == "gradtx packed":
        return JaxVariant(name, ours(), gradtx.pack(params), mode, packed=True)
    return TorchVariant(name, optimizer, params, mode, name.split()[1])


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]


def measure(variants: list[Any], rounds: int, steps: int) -> dict[str, dict[str, Any]]:
    """Per variant: per-round step times and faults, the order rotated every round."""
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    faults: dict[str, list[float]] = {v.name: [] for v in variants}
    for r in range(rounds):
        shift = r % len(variants)
        for v in variants[shift:] + variants[:shift]:
            seconds, fault_count = v.run(steps)
            times[v.name].append(seconds)
            faults[v.name].append(fault_count)
    return {name: {"times": times[name], "faults": faults[name]} for name in times}


def probe(spec: dict[str, Any]) -> dict[str, float]:
    """One compile in this (fresh) process: trace and compile seconds, peak RSS growth."""
    params = gpt2_small() if spec["layout"] == "GPT-2 small" else layout(spec["leaves"], spec["params"])
    v = make_variant(spec["variant"], spec["optimizer"], params, spec["mode"])
    return {"trace_s": v.trace_s, "compile_s": v.compile_s, "compile_rss_mib": v.compile_rss_mib}


def probe_in_fresh_processes(
    spec: dict[str, Any], names: list[str], samples: int
) -> dict[str, dict[str, float]]:
    """Medians over ``samples`` fresh processes per variant, the variants' order rotated."""
    got: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for s in range(samples):
        shift = s % len(names)
        for name in names[shift:] + names[:shift]:
            done = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--probe", json.dumps(spec | {"variant": name})],
                capture_output=True,
                text=True,
                check=True,
            )
            got[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    out = {}
    for name, runs in got.items():
        out[name] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        out[name]["compile_s_runs"] = [r["compile_s"] for r in runs]  # type: ignore[assignment]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leaves", default="1,100,1000")
    parser.add_argument("--params", type=int, default=16 * 2**20)
    parser.add_argument("--gpt2", action="store_true", help="also the GPT-2 small tree (124M parameters)")
    parser.add_argument("--optimizers", default="adam,adamw_clip,sgd_momentum")
    parser.add_argument("--modes", default="update,train")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5, help="steps per round")
    parser.add_argument(
        "--compile-samples", type=int, default=3, help="fresh processes per variant (0: none)"
    )
    parser.add_argument(
        "--skip", default="", help="variants to leave out, e.g. 'optax,gradtx' at 10,000 leaves"
    )
    parser.add_argument("--peak-gbps", type=float, default=None, help="the device's peak memory bandwidth")
    parser.add_argument("--json", default=None)
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(json.loads(args.probe))))
        return

    layouts: list[tuple[str, int, Any]] = [
        (f"{n} leaves", n, layout(n, args.params)) for n in map(int, args.leaves.split(","))
    ]
    if args.gpt2:
        layouts.append(("GPT-2 small", 0, gpt2_small()))
    skip = set(filter(None, args.skip.split(",")))
    names = [n for n in VARIANTS if n not in skip]
    info = stamp()
    peak = args.peak_gbps or PEAK_GBPS.get(info["machine"]["device"])
    print(f"# {describe(info)}")
    header = (
        f"{'layout':12s} {'optimizer':13s} {'mode':6s} {'variant':15s} {'step ms':>9s} {'noise':>6s} "
        f"{'vs optax [IQR]':>19s} {'faults':>8s} {'GB/s':>7s} {'compile s':>10s} {'RSS MiB':>8s} "
        f"{'temp MiB':>9s}"
    )
    print(header)
    print("-" * len(header))
    results = []
    for lname, leaves, params in layouts:
        n_params = sum(x.size for x in jax.tree.leaves(params))
        for oname in args.optimizers.split(","):
            for mode in args.modes.split(","):
                spec = {
                    "layout": lname,
                    "leaves": leaves,
                    "params": args.params,
                    "optimizer": oname,
                    "mode": mode,
                }
                jax_names = [n for n in names if n in JAX_VARIANTS]
                fresh = (
                    probe_in_fresh_processes(spec, jax_names, args.compile_samples)
                    if args.compile_samples
                    else {}
                )
                variants = [make_variant(n, oname, params, mode) for n in names]
                measured = measure(variants, args.rounds, args.steps)
                base = measured.get("optax")
                for v in variants:
                    m = measured[v.name]
                    q1, med, q3 = quartiles(m["times"])
                    ratios = [t / b for t, b in zip(m["times"], base["times"], strict=True)] if base else []
                    r1, rmed, r3 = quartiles(ratios) if ratios else (float("nan"),) * 3
                    words = WORDS_PER_PARAM[oname] if mode == "update" else None
                    row = {
                        "layout": lname,
                        "params": int(n_params),
                        "optimizer": oname,
                        "mode": mode,
                        "variant": v.name,
                        "step_ms": med * 1e3,
                        "step_ms_rounds": [t * 1e3 for t in m["times"]],
                        "noise": (q3 - q1) / med,
                        "step_vs_optax": rmed,
                        "step_vs_optax_iqr": [r1, r3],
                        "faults_per_step": statistics.median(m["faults"]),
                        "bytes_per_step": 4 * words * int(n_params) if words else None,
                        "gbps": 4 * words * int(n_params) / med / 1e9 if words else None,
                        "peak_gbps": peak,
                        "temp_mib": v.temp_mib,
                        "alias_mib": v.alias_mib,
                        **{
                            k: fresh.get(v.name, {}).get(k, float("nan"))
                            for k in ("trace_s", "compile_s", "compile_rss_mib", "compile_s_runs")
                        },
                    }
                    results.append(row)
                    print(
                        f"{lname:12s} {oname:13s} {mode:6s} {v.name:15s} {row['step_ms']:9.2f} "
                        f"{row['noise']:6.0%} {rmed:6.2f}x [{r1:.2f}, {r3:.2f}] "
                        f"{row['faults_per_step']:8.0f} {row['gbps'] or float('nan'):7.1f} "
                        f"{row['compile_s']:10.2f} {row['compile_rss_mib']:8.0f} {row['temp_mib']:9.1f}",
                        flush=True,
                    )
                del variants
                gc.collect()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "stamp": info,
                    "rounds": args.rounds,
                    "steps": args.steps,
                    "compile_samples": args.compile_samples,
                    "results": results,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
