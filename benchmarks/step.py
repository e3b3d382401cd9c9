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
  matrix product, materialised as in a real model).

Run:  python benchmarks/step.py [--leaves 1,100,1000] [--params 16777216] [--gpt2]
      [--optimizers adam,adamw_clip,sgd_momentum] [--modes update,train] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtx

LR, WD, CLIP, MOMENTUM = 1e-3, 1e-2, 1.0, 0.9

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
        y = t.reshape(-1, c) @ torch.from_numpy(PROBES[c])
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
        before = peak_rss_mib()
        start = time.perf_counter()
        self.compiled = jitted.lower(self.params, self.state, *args).compile()
        self.compile_s = time.perf_counter() - start
        self.compile_rss_mib = peak_rss_mib() - before if tracked else float("nan")
        analysis = self.compiled.memory_analysis()
        self.temp_mib = getattr(analysis, "temp_size_in_bytes", 0) / 2**20
        self.alias_mib = getattr(analysis, "alias_size_in_bytes", 0) / 2**20
        self.run(2)

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            self.params, self.state = self.compiled(self.params, self.state, *self.args)
        jax.block_until_ready(self.params)
        return (time.perf_counter() - start) / steps


class TorchVariant:
    """``torch.optim`` on the same shapes (foreach or fused)."""

    def __init__(self, name: str, optimizer: str, params: Any, mode: str, impl: str) -> None:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        self.name = name
        self.tensors = [torch.nn.Parameter(torch.from_numpy(np.array(x))) for x in jax.tree.leaves(params)]
        foreach, fused = (True, None) if impl == "foreach" else (None, True)
        if optimizer == "adam":
            self.opt = torch.optim.Adam(self.tensors, lr=LR, foreach=foreach, fused=fused)
        elif optimizer == "adamw_clip":
            self.opt = torch.optim.AdamW(self.tensors, lr=LR, weight_decay=WD, foreach=foreach, fused=fused)
        else:
            self.opt = torch.optim.SGD(self.tensors, lr=LR, momentum=MOMENTUM, foreach=foreach, fused=fused)
        self.clip = optimizer == "adamw_clip"
        self.mode = mode
        self.compile_s = self.compile_rss_mib = self.temp_mib = self.alias_mib = float("nan")
        for t in self.tensors:
            t.grad = t.detach() * 0.5 + 1e-3
        self.run(2)

    def run(self, steps: int) -> float:
        import torch

        start = time.perf_counter()
        for _ in range(steps):
            if self.mode == "train":
                self.opt.zero_grad(set_to_none=True)
                torch_loss(self.tensors).backward()
            if self.clip:
                torch.nn.utils.clip_grad_norm_(self.tensors, CLIP, foreach=True)
            self.opt.step()
        return (time.perf_counter() - start) / steps


def build_variants(
    optimizer: str, ours: Any, theirs: Any, params: Any, mode: str, skip: set[str]
) -> list[Any]:
    """The five variants of one measurement, built one after the other."""
    makers: list[tuple[str, Callable[[], Any]]] = [
        ("optax", lambda: JaxVariant("optax", theirs, params, mode, packed=False)),
        ("gradtx", lambda: JaxVariant("gradtx", ours, params, mode, packed=False)),
        ("gradtx packed", lambda: JaxVariant("gradtx packed", ours, gradtx.pack(params), mode, packed=True)),
        ("torch foreach", lambda: TorchVariant("torch foreach", optimizer, params, mode, "foreach")),
        ("torch fused", lambda: TorchVariant("torch fused", optimizer, params, mode, "fused")),
    ]
    return [make() for name, make in makers if name not in skip]


def measure(variants: list[Any], rounds: int, steps: int) -> dict[str, float]:
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    for _ in range(rounds):
        for v in variants:
            times[v.name].append(v.run(steps))
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


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
        "--skip", default="", help="variants to leave out, e.g. 'optax,gradtx' at 10,000 leaves"
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    layouts: list[tuple[str, Any]] = [
        (f"{n} leaves", layout(n, args.params)) for n in map(int, args.leaves.split(","))
    ]
    if args.gpt2:
        layouts.append(("GPT-2 small", gpt2_small()))
    skip = set(filter(None, args.skip.split(",")))
    print(
        f"# {platform.node()} | {platform.processor() or platform.machine()} | {os.cpu_count()} cores | "
        f"jax {jax.__version__} | optax {optax.__version__} | {jax.devices()[0].device_kind}"
    )
    header = (
        f"{'layout':12s} {'optimizer':13s} {'mode':6s} {'variant':15s} {'step ms':>9s} {'vs optax':>9s} "
        f"{'compile s':>10s} {'vs optax':>9s} {'temp MiB':>9s} {'compile RSS MiB':>16s}"
    )
    print(header)
    print("-" * len(header))
    results = []
    for lname, params in layouts:
        n_params = sum(x.size for x in jax.tree.leaves(params))
        for oname in args.optimizers.split(","):
            ours, theirs = OPTIMIZERS[oname]
            for mode in args.modes.split(","):
                variants = build_variants(oname, ours(), theirs(), params, mode, skip)
                step_ms = measure(variants, args.rounds, args.steps)
                base = next((v for v in variants if v.name == "optax"), None)
                for v in variants:
                    row = {
                        "layout": lname,
                        "params": int(n_params),
                        "optimizer": oname,
                        "mode": mode,
                        "variant": v.name,
                        "step_ms": step_ms[v.name],
                        "compile_s": v.compile_s,
                        "temp_mib": v.temp_mib,
                        "alias_mib": v.alias_mib,
                        "compile_rss_mib": v.compile_rss_mib,
                        "step_vs_optax": step_ms[v.name] / step_ms["optax"] if base else float("nan"),
                        "compile_vs_optax": v.compile_s / base.compile_s if base else float("nan"),
                    }
                    results.append(row)
                    print(
                        f"{lname:12s} {oname:13s} {mode:6s} {v.name:15s} {row['step_ms']:9.2f} "
                        f"{row['step_vs_optax']:8.2f}x {row['compile_s']:10.2f} "
                        f"{row['compile_vs_optax']:8.3f}x "
                        f"{row['temp_mib']:9.1f} {row['compile_rss_mib']:16.0f}",
                        flush=True,
                    )
                del variants
                gc.collect()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"jax": jax.__version__, "optax": optax.__version__, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
