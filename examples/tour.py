"""A tour of gradtx: the optimizers of the study notes (docs page "The study notes")
train a small MLP on handwritten digits.

Each of SGD, Momentum, AdaGrad, RMSProp and Adam trains the same MLP (64-64-10) on
scikit-learn's bundled digits set with mini-batches of 128, once with gradtx and once
with optax, from the same initial weights and batch order. The tour prints progress and
a table (final loss, test accuracy, the largest parameter difference from optax) and
writes a figure: the loss curves, and the difference between gradtx's and optax's loss at
every step (zero where they agree bit for bit). Step times at this size measure Python
dispatch, not the optimizer, so the tour does not time them: see BENCHMARKS.md.

Run:  python examples/tour.py [--epochs 25] [--out tour_output]
"""

from __future__ import annotations

import argparse
import itertools
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import gradtx

BATCH = 128
SEED = 0

# (name, gradtx optimizer, optax optimizer): the study notes' five, with the same settings.
OPTIMIZERS: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
    ("SGD", lambda: gradtx.sgd(0.1), lambda: optax.sgd(0.1)),
    ("Momentum", lambda: gradtx.sgd(0.05, momentum=0.9), lambda: optax.sgd(0.05, momentum=0.9)),
    ("AdaGrad", lambda: gradtx.adagrad(0.05), lambda: optax.adagrad(0.05)),
    ("RMSProp", lambda: gradtx.rmsprop(1e-3), lambda: optax.rmsprop(1e-3)),
    ("Adam", lambda: gradtx.adam(1e-3), lambda: optax.adam(1e-3)),
]


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits (1,797 8x8 images), standardised, split 80/20 with a fixed seed."""
    data, target = load_digits(return_X_y=True)
    x = np.asarray(data, np.float32)
    y = np.asarray(target, np.int32)
    order = np.random.default_rng(SEED).permutation(len(x))
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    mean, std = x[:split].mean(0), x[:split].std(0) + 1e-6
    x = (x - mean) / std
    return x[:split], y[:split], x[split:], y[split:]


def init_mlp(key: jax.Array, sizes: tuple[int, ...] = (64, 64, 10)) -> dict[str, Any]:
    """He-initialised weights, zero biases."""
    params = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        key, sub = jax.random.split(key)
        params[f"layer{i}"] = {
            "w": jax.random.normal(sub, (n_in, n_out)) * jnp.sqrt(2.0 / n_in),
            "b": jnp.zeros(n_out),
        }
    return params


def logits(params: dict[str, Any], x: jax.Array) -> jax.Array:
    h = x
    layers = [params[k] for k in sorted(params)]
    for layer in layers[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"][None, :])
    return h @ layers[-1]["w"] + layers[-1]["b"][None, :]


def loss_fn(params: dict[str, Any], x: jax.Array, y: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits(params, x), y).mean()


def train(
    opt: Any, apply_updates: Callable[[Any, Any], Any], params: Any, x: np.ndarray, y: np.ndarray, epochs: int
) -> tuple[Any, list[float]]:
    """Mini-batch training; returns the final params and the loss of every step."""

    @jax.jit
    def step(params: Any, state: Any, xb: jax.Array, yb: jax.Array) -> tuple[Any, Any, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
        updates, state = opt.update(grads, state, params)
        return apply_updates(params, updates), state, loss

    state = opt.init(params)
    losses = []
    rng = np.random.default_rng(SEED)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x) - BATCH + 1, BATCH):
            idx = order[start : start + BATCH]
            params, state, loss = step(params, state, x[idx], y[idx])
            losses.append(float(loss))
    return params, losses


def accuracy(params: Any, x: np.ndarray, y: np.ndarray) -> float:
    return float(jnp.mean(jnp.argmax(logits(params, jnp.asarray(x)), -1) == y))


def run(epochs: int = 25, out: str = "tour_output", verbose: bool = True) -> list[dict[str, Any]]:
    """Trains every optimizer with gradtx and optax; returns one result dict per optimizer."""
    x_train, y_train, x_test, y_test = load_data()
    params0 = init_mlp(jax.random.key(SEED))
    results = []
    for i, (name, ours, theirs) in enumerate(OPTIMIZERS, start=1):
        if verbose:
            print(f"[{i}/{len(OPTIMIZERS)}] {name:9s} training with gradtx and optax ...", flush=True)
        p_ours, loss_ours = train(ours(), gradtx.apply_updates, params0, x_train, y_train, epochs)
        p_theirs, loss_theirs = train(theirs(), optax.apply_updates, params0, x_train, y_train, epochs)
        diff = max(
            float(jnp.max(jnp.abs(a - b)))
            for a, b in zip(jax.tree.leaves(p_ours), jax.tree.leaves(p_theirs), strict=True)
        )
        results.append(
            {
                "name": name,
                "optimizer": repr(ours()),
                "loss": loss_ours,
                "optax_loss": loss_theirs,
                "final_loss": float(loss_fn(p_ours, jnp.asarray(x_train), jnp.asarray(y_train))),
                "accuracy": accuracy(p_ours, x_test, y_test),
                "optax_accuracy": accuracy(p_theirs, x_test, y_test),
                "max_param_diff": diff,
                "max_loss_diff": max(abs(a - b) for a, b in zip(loss_ours, loss_theirs, strict=True)),
            }
        )
        if verbose:
            r = results[-1]
            print(f"      loss {r['final_loss']:.4f}  test accuracy {r['accuracy']:.3f}", flush=True)
    figure = plot(results, pathlib.Path(out))
    if verbose:
        print_table(results)
        print(f"\nLoss curves written to {figure}")
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    header = (
        f"{'optimizer':10s} {'train loss':>10s} {'test acc':>9s} {'optax acc':>9s} "
        f"{'max |gradtx - optax|':>21s} {'loss difference':>16s}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for r in results:
        print(
            f"{r['name']:10s} {r['final_loss']:10.4f} {r['accuracy']:9.3f} {r['optax_accuracy']:9.3f} "
            f"{r['max_param_diff']:21.2e} {r['max_loss_diff']:16.2e}"
        )


def plot(results: list[dict[str, Any]], folder: pathlib.Path) -> pathlib.Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, (ax, diff_ax) = plt.subplots(
        2, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    for i, r in enumerate(results):
        steps = np.arange(1, len(r["loss"]) + 1)
        smooth = np.convolve(r["loss"], np.ones(5) / 5, mode="valid")
        ax.plot(steps[4:], smooth, f"C{i}", label=f"{r['name']} (gradtx)")
        ax.plot(steps, r["optax_loss"], f"C{i}", alpha=0.25, linestyle="--")
        difference = np.asarray(r["loss"]) - np.asarray(r["optax_loss"])
        diff_ax.plot(steps, difference, f"C{i}", label=f"{r['name']}: max {np.abs(difference).max():.1e}")
    ax.set_yscale("log")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title("MLP on digits: gradtx (solid, 5-step mean) and optax (dashed)")
    ax.legend()
    diff_ax.set_yscale("symlog", linthresh=1e-7)
    diff_ax.set_ylim(-1e-5, 1e-5)
    diff_ax.axhline(0.0, color="0.5", lw=0.5)
    diff_ax.set_xlabel(f"step (mini-batches of {BATCH})")
    diff_ax.set_ylabel("gradtx - optax loss")
    diff_ax.legend(fontsize=7, ncol=3, loc="upper left")
    fig.tight_layout()
    path = folder / "loss_curves.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=25, help="passes over the training set")
    parser.add_argument("--out", default="tour_output", help="folder for the figure")
    args = parser.parse_args()
    start = time.perf_counter()
    run(args.epochs, args.out)
    print(f"Done in {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
