"""Quantized optimizer state: accuracy, bytes per parameter and step time.

Parts (``--parts``, comma-separated):

- ``accuracy``: AdamW with float32, bfloat16, 8-bit and 4-bit moments (and the map
  ablations that chose the defaults: the dynamic second-moment map *with* zero, and the
  zero-free linear one) on two models trained here: the digits MLP (64-256-256-10,
  scikit-learn's digits, batches of 128) and a character-level language model (an MLP
  over the previous 16 characters' embeddings, on the text of Python's ``textwrap``,
  ``string`` and ``argparse`` modules: data that ships with Python). Final training
  loss (the mean of the last 20 steps), held-out loss, and the loss curves (a figure:
  ``--plot``).
- ``seeds``: final training and held-out loss over ``--seeds`` batch orders, float32,
  8-bit and 4-bit state (and each moment at 4 bits with the other at 8), and Li et
  al.'s (2023) rank-1 normalization of the 4-bit second moment (emulated: a float32
  AdamW whose moments are replaced by their 4-bit values after every step), which
  gradtx does not use: this part measures why.
- ``speed``: step time of AdamW (one jitted update + apply, parameters and state
  donated, the same gradient each
  step as an argument; median of ``--rounds`` rounds of ``--steps`` steps) and state bytes per
  parameter, on one 4M-value leaf, 1,000 leaves of 64x64 and the GPT-2-small tree:
  gradtx's float32, bfloat16, 8-bit and 4-bit moments (the quantized ones also run in
  tiles, ``gradtx.tiled``) against ``optax.adamw`` (float32,
  and bfloat16 ``mu_dtype``) and PyTorch's ``AdamW(fused=True)``, and torchao's 8-bit and
  4-bit AdamW when torchao imports (it is not a dependency; the table says when it is
  missing).
- ``peak``: what the same AdamW step holds at its peak, from XLA's buffer assignment of
  the compiled step (``memory_analysis()``, no timing, so no noise): the arguments
  (parameters, gradient, state), the temporaries XLA allocates for the step, and the
  outputs that do not reuse a donated argument, per parameter, on the same layouts.
  ``state_bytes`` is what the state holds between steps; this is what a step needs.

Run:  python benchmarks/quantized.py [--parts accuracy,seeds,speed,peak] [--json out.json] [--plot out.png]
"""

from __future__ import annotations

import argparse
import argparse as _argparse_module
import json
import os
import resource
import statistics
import string as _string_module
import sys
import textwrap as _textwrap_module
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import gradtx
from gradtx import _quantized

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stamp import stamp
from modern import gpt2

Q = gradtx.quantized


def with_zero_in_unsigned_maps() -> Callable[[], None]:
    """The ablation: unsigned dynamic maps with zero (bitsandbytes' table), by swapping
    the table gradtx builds; returns the function that restores it."""
    original = _quantized._dynamic

    def dynamic(bits: int, signed: bool) -> np.ndarray:
        values = original(bits, signed)
        if not signed:
            values = np.sort(np.concatenate([[0.0], values[:-1]]))  # 0 in place of the second 1
        return values

    _quantized._dynamic = dynamic
    _quantized.table.cache_clear()
    _quantized._encoder.cache_clear()

    def restore() -> None:
        _quantized._dynamic = original
        _quantized.table.cache_clear()
        _quantized._encoder.cache_clear()

    return restore


STATES: dict[str, dict[str, Any]] = {
    "float32": {},
    "bfloat16": {"mu_dtype": jnp.bfloat16, "nu_dtype": jnp.bfloat16},
    "8-bit": {"mu_dtype": "8bit", "nu_dtype": "8bit"},
    "4-bit": {"mu_dtype": "4bit", "nu_dtype": "4bit"},
}
ABLATIONS: dict[str, dict[str, Any]] = {
    "8-bit, v map with zero": {"mu_dtype": "8bit", "nu_dtype": "8bit", "_zero": True},
    "4-bit, v map with zero": {"mu_dtype": "4bit", "nu_dtype": "4bit", "_zero": True},
    "4-bit, linear v map": {"mu_dtype": "4bit", "nu_dtype": Q(4, map="linear")},
}


# --- models ---------------------------------------------------------------------------------


def digits_task() -> tuple[Any, Callable[..., Any], tuple[Any, ...], tuple[Any, ...]]:
    x, y = load_digits(return_X_y=True)
    x = jnp.asarray(x / 16.0, jnp.float32)
    y = jnp.asarray(y)
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    params = {
        "l1": {"w": jax.random.normal(k1, (64, 256)) / 8, "b": jnp.zeros(256)},
        "l2": {"w": jax.random.normal(k2, (256, 256)) / 16, "b": jnp.zeros(256)},
        "l3": {"w": jax.random.normal(k3, (256, 10)) / 16, "b": jnp.zeros(10)},
    }

    def loss(p: Any, xb: Any, yb: Any) -> Any:
        h = jax.nn.relu(xb @ p["l1"]["w"] + p["l1"]["b"])
        h = jax.nn.relu(h @ p["l2"]["w"] + p["l2"]["b"])
        return optax.softmax_cross_entropy_with_integer_labels(h @ p["l3"]["w"] + p["l3"]["b"], yb).mean()

    return params, loss, (x[:1500], y[:1500]), (x[1500:], y[1500:])


def text_task(context: int = 16) -> tuple[Any, Callable[..., Any], tuple[Any, ...], tuple[Any, ...]]:
    text = "".join(open(m.__file__).read() for m in (_textwrap_module, _string_module, _argparse_module))  # type: ignore[arg-type]
    chars = sorted(set(text))
    codes = np.asarray([chars.index(c) for c in text], np.int32)
    windows = np.lib.stride_tricks.sliding_window_view(codes, context + 1)
    split = int(0.9 * len(windows))
    vocab, d, hidden = len(chars), 32, 512
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    params = {
        "embed": jax.random.normal(k1, (vocab, d)) * 0.1,
        "l1": {
            "w": jax.random.normal(k2, (context * d, hidden)) / np.sqrt(context * d),
            "b": jnp.zeros(hidden),
        },
        "out": {"w": jax.random.normal(k3, (hidden, vocab)) / np.sqrt(hidden), "b": jnp.zeros(vocab)},
    }

    def loss(p: Any, xb: Any, yb: Any) -> Any:
        e = p["embed"][xb].reshape(xb.shape[0], -1)
        h = jax.nn.gelu(e @ p["l1"]["w"] + p["l1"]["b"])
        return optax.softmax_cross_entropy_with_integer_labels(h @ p["out"]["w"] + p["out"]["b"], yb).mean()

    train = (jnp.asarray(windows[:split, :-1]), jnp.asarray(windows[:split, -1]))
    test = (jnp.asarray(windows[split:, :-1][:4096]), jnp.asarray(windows[split:, -1][:4096]))
    return params, loss, train, test


def train(tx: Any, task: Any, steps: int, batch: int = 128, seed: int = 1) -> tuple[list[float], float]:
    """``steps`` steps of ``tx`` on ``task`` (batches drawn with ``seed``): the training
    loss curve and the held-out loss at the end."""
    params, loss, (x, y), (xt, yt) = task
    state = tx.init(params)

    @jax.jit
    def step(p: Any, s: Any, i: Any) -> Any:
        idx = jax.random.randint(jax.random.fold_in(jax.random.key(seed), i), (batch,), 0, x.shape[0])
        value, g = jax.value_and_grad(loss)(p, x[idx], y[idx])
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s, value

    curve = []
    for i in range(steps):
        params, state, value = step(params, state, i)
        curve.append(float(value))
    return curve, float(loss(params, xt, yt))


def accuracy(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    tasks = {
        "digits MLP": (digits_task(), args.digits_steps, 1e-3),
        "char-level LM": (text_task(), args.lm_steps, 2e-3),
    }
    print(
        f"{'task':14s} {'state':24s} {'final loss':>10s} {'vs f32':>8s} {'held-out':>9s} {'bytes/param':>11s}"
    )
    for task_name, (task, steps, lr) in tasks.items():
        reference = None
        for name, kwargs in {**STATES, **ABLATIONS}.items():
            kwargs = dict(kwargs)
            restore = with_zero_in_unsigned_maps() if kwargs.pop("_zero", False) else None
            try:
                tx = gradtx.adamw(lr, **kwargs)
                curve, held_out = train(tx, task, steps)
                per_param = gradtx.state_bytes(tx, task[0]).per_parameter
            finally:
                if restore is not None:
                    restore()
            final = float(np.mean(curve[-20:]))
            if reference is None:
                reference = final
            change = final / reference - 1
            print(
                f"{task_name:14s} {name:24s} {final:10.4f} {change:+8.2%} {held_out:9.4f} {per_param:11.3f}"
            )
            rows.append(
                {
                    "task": task_name,
                    "state": name,
                    "steps": steps,
                    "lr": lr,
                    "final_loss": final,
                    "vs_float32": change,
                    "held_out_loss": held_out,
                    "bytes_per_parameter": per_param,
                    "curve": [float(f"{v:.5g}") for v in curve],
                }
            )
    return rows


# --- over seeds, and Li et al.'s rank-1 normalization (emulated) ----------------------------


def emulated_4bit(lr: float, nu_layout: str) -> gradtx.GradientTransformation:
    """float32 AdamW whose moments are replaced after every step by what a 4-bit state
    would decode to: the first moment in gradtx's blocks (signed dynamic map), the second
    in gradtx's blocks (``nu_layout="blocks"``, which should match gradtx's 4-bit AdamW up
    to rounding) or, for matrices of at least 4,096 values, with Li et al.'s (2023) rank-1
    normalization: each value scaled by the smaller of its row's and its column's largest
    value, then the nearest of a zero-free map, linear ``(i + 1) / 16`` (their choice,
    ``"rank-1 linear"``) or gradtx's dynamic one (``"rank-1 dynamic"``)."""
    base = gradtx.adamw(lr)
    signed, unsigned = Q(4, signed=True), Q(4, signed=False)

    def blocks(x: jax.Array, spec: gradtx.quantized) -> jax.Array:
        return x if x.size < spec.min_size else gradtx.QuantizedArray.encode(x, spec).decode()

    def second_moment(v: jax.Array) -> jax.Array:
        if v.ndim != 2 or v.size < unsigned.min_size or nu_layout == "blocks":
            return blocks(v, unsigned)
        scale = jnp.minimum(jnp.max(v, axis=1, keepdims=True), jnp.max(v, axis=0, keepdims=True))
        scale = jnp.where(scale > 0, scale, 1.0)
        normalized = v / scale
        if nu_layout == "rank-1 linear":
            values = (jnp.clip(jnp.round(normalized * 16 - 1), 0, 15) + 1) / 16
        else:
            table = jnp.asarray(_quantized.table(4, "dynamic", False))
            codes = _quantized._nearest(jnp.clip(normalized, 0.0, 1.0), 4, "dynamic", False)
            values = table[codes.astype(jnp.int32)]
        return values * scale

    def update(g: Any, state: Any, params: Any = None) -> Any:
        updates, (mu_state, nu_state, *rest) = base.update(g, state, params)
        mu_state = mu_state._replace(mu=jax.tree.map(lambda m: blocks(m, signed), mu_state.mu))
        nu_state = nu_state._replace(nu=jax.tree.map(second_moment, nu_state.nu))
        return updates, (mu_state, nu_state, *rest)

    return gradtx.GradientTransformation(base.init, update)


SEED_STATES: dict[str, Callable[[float], Any]] = {
    "float32": lambda lr: gradtx.adamw(lr),
    "8-bit": lambda lr: gradtx.adamw(lr, mu_dtype="8bit", nu_dtype="8bit"),
    "4-bit": lambda lr: gradtx.adamw(lr, mu_dtype="4bit", nu_dtype="4bit"),
    "8-bit mu, 4-bit nu": lambda lr: gradtx.adamw(lr, mu_dtype="8bit", nu_dtype="4bit"),
    "4-bit mu, 8-bit nu": lambda lr: gradtx.adamw(lr, mu_dtype="4bit", nu_dtype="8bit"),
    "4-bit emulated": lambda lr: emulated_4bit(lr, "blocks"),
    "4-bit emulated, rank-1 linear v": lambda lr: emulated_4bit(lr, "rank-1 linear"),
    "4-bit emulated, rank-1 dynamic v": lambda lr: emulated_4bit(lr, "rank-1 dynamic"),
}


def seeds(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Final training and held-out loss of each state over several batch orders (seeds),
    with Li et al.'s rank-1 normalization of the 4-bit second moment emulated beside
    gradtx's block-wise one."""
    rows = []
    tasks = {
        "digits MLP": (digits_task(), args.digits_steps, 1e-3),
        "char-level LM": (text_task(), args.lm_steps, 2e-3),
    }
    print(f"{'task':14s} {'state':34s} {'seed':>4s} {'final loss':>10s} {'held-out':>9s}")
    for task_name, (task, steps, lr) in tasks.items():
        for seed in range(1, args.seeds + 1):
            for name, make in SEED_STATES.items():
                curve, held_out = train(make(lr), task, steps, seed=seed)
                final = float(np.mean(curve[-20:]))
                print(f"{task_name:14s} {name:34s} {seed:4d} {final:10.4f} {held_out:9.4f}", flush=True)
                rows.append(
                    {
                        "task": task_name,
                        "state": name,
                        "seed": seed,
                        "steps": steps,
                        "final_loss": final,
                        "held_out_loss": held_out,
                    }
                )
    return rows


# --- speed ----------------------------------------------------------------------------------


def layouts() -> dict[str, Any]:
    return {
        "1 leaf (4M)": {"w": jnp.full((2048, 2048), 0.01)},
        "1,000 leaves (64x64)": {f"p{i:04d}": jnp.full((64, 64), 0.01) for i in range(1000)},
        "1,000 leaves packed": gradtx.pack({f"p{i:04d}": jnp.full((64, 64), 0.01) for i in range(1000)}),
        "GPT-2 small": gpt2(),
    }


FAULTS_PER_STEP = [0.0]  # the last median_step's minor page faults per step (the OS mapping fresh pages)


def median_step(run: Callable[[], Any], rounds: int, steps: int) -> float:
    times = []
    out: Any = None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            out = run()
        jax.block_until_ready(out)
        times.append((time.perf_counter() - start) / steps)
    FAULTS_PER_STEP[0] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (rounds * steps)
    return statistics.median(times)


def donated_step(tx: Any) -> Any:
    """``jax_step``'s step: one update and apply, parameters and state donated."""

    def step(p: Any, s: Any, g: Any) -> Any:
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    return jax.jit(step, donate_argnums=(0, 1))


COMPILE_SECONDS = [0.0]  # the last jax_step's first call: tracing, compiling, one step


def jax_step(tx: Any, params: Any, rounds: int, steps: int) -> float:
    grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-3), params)
    # In place, as a training loop runs. The gradient is an argument: closed over, it
    # would be a constant XLA folds into the program (measured 5x slower on one leaf).
    step = donated_step(tx)
    carry = [jax.tree.map(jnp.copy, params), tx.init(params)]

    def run() -> Any:
        carry[0], carry[1] = step(carry[0], carry[1], grads)
        return carry[0]

    start = time.perf_counter()
    jax.block_until_ready(run())  # compile
    COMPILE_SECONDS[0] = time.perf_counter() - start
    return median_step(run, rounds, steps)


def step_memory(compiled: Any, parameters: int) -> dict[str, float]:
    """Bytes per parameter of a compiled step, from XLA's buffer assignment: its arguments,
    its temporaries, and its peak (arguments, temporaries and the outputs that do not
    reuse a donated argument's buffer)."""
    m = compiled.memory_analysis()
    extra_out = m.output_size_in_bytes - m.alias_size_in_bytes
    return {
        "arguments": m.argument_size_in_bytes / parameters,
        "temporaries": m.temp_size_in_bytes / parameters,
        "peak": (m.argument_size_in_bytes + m.temp_size_in_bytes + extra_out) / parameters,
    }


def peak(args: argparse.Namespace) -> list[dict[str, Any]]:
    lr = 1e-3
    contenders = jax_contenders(lr)
    rows = []
    for layout, params in layouts().items():
        if args.layouts and layout.split(" ")[0] not in args.layouts.split(","):
            continue
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
        count = sum(x.size for x in jax.tree.leaves(params))
        for name, tx in contenders.items():
            if isinstance(tx, gradtx.tiled) and isinstance(params, gradtx.Packed):
                continue
            state = jax.eval_shape(tx.init, abstract)
            compiled = donated_step(tx).lower(abstract, state, abstract).compile()
            memory = step_memory(compiled, count)
            between = gradtx.state_bytes(tx, abstract).per_parameter
            print(
                f"{layout:22s} {name:22s} state {between:6.3f}  arguments {memory['arguments']:6.3f}  "
                f"temporaries {memory['temporaries']:6.3f}  peak {memory['peak']:6.3f} B/param"
            )
            rows.append({"layout": layout, "name": name, "state_bytes_per_parameter": between, **memory})
    return rows


def torch_step(make: Callable[[list[Any]], Any], params: Any, rounds: int, steps: int) -> float:
    import torch

    tensors = [torch.full(tuple(p.shape), 0.01, requires_grad=True) for p in jax.tree.leaves(params)]
    for t in tensors:
        t.grad = torch.full_like(t, 1e-3)
    opt = make(tensors)
    opt.step()

    def run() -> None:
        opt.step()

    return median_step(run, rounds, steps)


def torch_state_bytes(make: Callable[[list[Any]], Any], params: Any) -> float:
    import torch

    tensors = [torch.full(tuple(p.shape), 0.01, requires_grad=True) for p in jax.tree.leaves(params)]
    for t in tensors:
        t.grad = torch.full_like(t, 1e-3)
    opt = make(tensors)
    opt.step()
    total = 0
    for state in opt.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                inner = getattr(value, "__tensor_flatten__", None)
                if inner is not None:  # torchao's quantized tensor subclasses
                    names, _ = inner()
                    total += sum(getattr(value, n).numel() * getattr(value, n).element_size() for n in names)
                else:
                    total += value.numel() * value.element_size()
    return total / sum(t.numel() for t in tensors)


def jax_contenders(lr: float) -> dict[str, Any]:
    """AdamW with each state dtype, the quantized ones also in tiles (`gradtx.tiled`),
    and optax's."""
    out: dict[str, Any] = {f"gradtx {name}": gradtx.adamw(lr, **kwargs) for name, kwargs in STATES.items()}
    for name in ("8-bit", "4-bit"):
        out[f"gradtx {name}, tiled"] = gradtx.tiled(gradtx.adamw(lr, **STATES[name]))
    out["optax float32"] = optax.adamw(lr)
    out["optax bfloat16 mu"] = optax.adamw(lr, mu_dtype=jnp.bfloat16)
    return out


def speed(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    lr = 1e-3
    contenders: dict[str, tuple[str, Any]] = {name: ("jax", tx) for name, tx in jax_contenders(lr).items()}
    contenders["torch AdamW fused"] = ("torch", lambda ts: torch.optim.AdamW(ts, lr=lr, fused=True))
    try:
        from torchao.optim import AdamW4bit, AdamW8bit  # pyright: ignore

        contenders["torchao AdamW8bit"] = ("torch", lambda ts: AdamW8bit(ts, lr=lr))
        contenders["torchao AdamW4bit"] = ("torch", lambda ts: AdamW4bit(ts, lr=lr))
        missing = None
    except Exception as error:  # not a dependency
        missing = f"torchao: {type(error).__name__}: {error}"
        print(f"(no torchao rows: {missing})")
    rows = []
    for layout, params in layouts().items():
        if args.layouts and layout.split(" ")[0] not in args.layouts.split(","):
            continue
        # Untimed: the first program of a layout pays for fresh pages and thread start-up.
        jax_step(optax.adamw(lr), params, 1, args.steps)
        base = None
        for name, (kind, tx) in contenders.items():
            if kind == "torch" and isinstance(params, gradtx.Packed):
                continue  # PyTorch has no packed layout: its rows are the plain tree's
            if name.endswith(", tiled") and isinstance(params, gradtx.Packed):
                continue  # tiled is for trees of large leaves; it refuses packed ones
            try:
                compile_s = None
                if kind == "jax":
                    seconds = jax_step(tx, params, args.rounds, args.steps)
                    compile_s = COMPILE_SECONDS[0]
                    per_param = gradtx.state_bytes(tx, params).per_parameter
                else:
                    seconds = torch_step(tx, params, args.rounds, args.steps)
                    per_param = torch_state_bytes(tx, params)
            except Exception as error:
                print(f"{layout:22s} {name:22s} failed: {type(error).__name__}: {str(error)[:200]}")
                rows.append(
                    {"layout": layout, "name": name, "error": f"{type(error).__name__}: {error}"[:300]}
                )
                continue
            if base is None:
                base = seconds
            ratio = seconds / base
            faults = FAULTS_PER_STEP[0]
            print(
                f"{layout:22s} {name:22s} {seconds * 1e3:10.2f} ms {ratio:6.2f}x {per_param:7.3f} B/param "
                f"{faults:8.0f} page faults/step"
            )
            rows.append(
                {"layout": layout, "name": name, "seconds": seconds, "vs_gradtx_float32": seconds / base,
                 "bytes_per_parameter": per_param, "first_call_seconds": compile_s, "faults_per_step": faults}
            )  # fmt: skip
    if missing:
        rows.append({"layout": "-", "name": "torchao", "error": missing})
    return rows


def plot(rows: list[dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4))
    for ax, task in zip(np.atleast_1d(axes), tasks, strict=True):
        for r in rows:
            if r["task"] != task or r["state"] not in STATES:
                continue
            curve = np.convolve(r["curve"], np.ones(10) / 10, mode="valid")
            ax.plot(curve, label=f"{r['state']} ({r['bytes_per_parameter']:.2f} B/param)")
        ax.set_title(f"AdamW on the {task}")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (mean of 10 steps)")
        ax.set_yscale("log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="accuracy,speed")
    parser.add_argument("--layouts", default="", help="1,1000,GPT-2 (first words); all by default")
    parser.add_argument("--digits-steps", type=int, default=300)
    parser.add_argument("--lm-steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, default=4, help="batch orders for the seeds part")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--json", default=None)
    parser.add_argument("--plot", default=None)
    args = parser.parse_args()
    out: dict[str, Any] = {"stamp": stamp()}
    parts = args.parts.split(",")
    if "accuracy" in parts:
        out["accuracy"] = accuracy(args)
        if args.plot:
            plot(out["accuracy"], args.plot)
    if "seeds" in parts:
        out["seeds"] = seeds(args)
    if "speed" in parts:
        out["speed"] = speed(args)
    if "peak" in parts:
        out["peak"] = peak(args)
    if args.json:  # compact: the loss curves are most of it
        with open(args.json, "w") as f:
            json.dump(out, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
