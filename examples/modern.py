"""The optimizers people train with now, on the tour's MLP and digits: AdamW, Muon,
schedule-free AdamW, SOAP and Prodigy, then SAM and Sophia with the extra arguments
they need.

Each of the five trains the same MLP (64-64-10, the tour's) from the same weights and
batch order. Muon orthogonalises the hidden matrix and gives the input layer, output
layer and biases to AdamW (`gradtx.contrib.MatrixRule`, with the layer names as
overrides: it prints its choice per parameter). Schedule-free AdamW is evaluated at
its averaged parameters (`gradtx.contrib.schedule_free_eval_params`), as it must be;
Prodigy needs no learning rate. The script prints a table (final training loss, test
accuracy, wall time) and writes a figure of the loss against step and against wall
time.

Then two that need more than a gradient: SAM (``update(..., grad_fn=...)`` computes
the gradient at the adversarial point, two gradient evaluations a step) and Sophia
(``update(..., obj_fn=...)`` lets it estimate the Hessian's diagonal every 10 steps).

Run:  python examples/modern.py [--epochs 20] [--out modern_output]
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradtx

_spec = importlib.util.spec_from_file_location("tour", pathlib.Path(__file__).parent / "tour.py")
assert _spec is not None and _spec.loader is not None
tour = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tour)

# the MLP's layers: layer0 (64 -> 64) is the hidden matrix, layer1 (64 -> 10) the output
MATRICES = gradtx.contrib.MatrixRule(
    overrides={"layer0/w": gradtx.contrib.MuonDimensionNumbers(0, 1), "layer1/w": None}
)

OPTIMIZERS: list[tuple[str, Callable[[], Any]]] = [
    ("AdamW", lambda: gradtx.adamw(3e-3, weight_decay=1e-4)),
    (
        "Muon",
        lambda: gradtx.contrib.muon(0.02, adam_learning_rate=3e-3, muon_weight_dimension_numbers=MATRICES),
    ),
    ("schedule-free AdamW", lambda: gradtx.contrib.schedule_free_adamw(3e-3, warmup_steps=20)),
    ("SOAP", lambda: gradtx.soap(3e-3, b1=0.9, b2=0.95)),
    ("Prodigy", lambda: gradtx.contrib.prodigy()),
]


def train(
    opt: Any, params: Any, x: np.ndarray, y: np.ndarray, epochs: int
) -> tuple[Any, Any, list[float], list[float]]:
    """The tour's mini-batch loop; returns params, state, the loss and the wall time of every step."""

    @jax.jit
    def step(params: Any, state: Any, xb: jax.Array, yb: jax.Array) -> Any:
        loss, grads = jax.value_and_grad(tour.loss_fn)(params, xb, yb)
        updates, state = opt.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state, loss

    state = opt.init(params)
    losses, times = [], []
    rng = np.random.default_rng(tour.SEED)
    jax.block_until_ready(step(params, state, x[: tour.BATCH], y[: tour.BATCH]))  # compile first
    start = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for first in range(0, len(x) - tour.BATCH + 1, tour.BATCH):
            idx = order[first : first + tour.BATCH]
            params, state, loss = step(params, state, x[idx], y[idx])
            losses.append(float(loss))
            times.append(time.perf_counter() - start)
    return params, state, losses, times


def run(epochs: int = 20, verbose: bool = True) -> list[dict[str, Any]]:
    x_train, y_train, x_test, y_test = tour.load_data()
    params0 = tour.init_mlp(jax.random.key(tour.SEED))
    if verbose:
        print("Muon's choice per parameter:")
        print(gradtx.contrib.explain_matrices(MATRICES, params0), "\n")
    results = []
    for name, make in OPTIMIZERS:
        params, state, losses, times = train(make(), params0, x_train, y_train, epochs)
        if name.startswith("schedule-free"):
            params = gradtx.contrib.schedule_free_eval_params(state, params)  # evaluate at x, not y
        results.append(
            {
                "name": name,
                "loss": float(tour.loss_fn(params, jnp.asarray(x_train), jnp.asarray(y_train))),
                "accuracy": tour.accuracy(params, x_test, y_test),
                "seconds": times[-1],
                "losses": losses,
                "times": times,
            }
        )
        if verbose:
            r = results[-1]
            print(f"{name:20s} train loss {r['loss']:.4f}  test accuracy {r['accuracy']:.3f}  ", end="")
            print(f"{r['seconds']:.2f} s")
    return results


def sam_and_sophia(steps: int = 150, verbose: bool = True) -> dict[str, float]:
    """SAM and Sophia on the same MLP, each with the keyword its update needs."""
    x_train, y_train, _, _ = tour.load_data()
    params0 = tour.init_mlp(jax.random.key(tour.SEED))
    xb, yb = jnp.asarray(x_train[:512]), jnp.asarray(y_train[:512])
    loss = lambda p: tour.loss_fn(p, xb, yb)  # noqa: E731
    found = {}

    # SAM, opaque mode: one call takes an adversarial step of radius 0.05 (normalised
    # gradient), asks grad_fn for the gradient there, and steps from the original point.
    sam = gradtx.contrib.sam(
        gradtx.adam(3e-3),
        gradtx.chain(gradtx.contrib.normalize(), gradtx.sgd(0.05)),
        opaque_mode=True,
    )
    # Sophia: obj_fn is the loss as a function of the parameters; every 10 steps
    # Hutchinson's estimator takes a Hessian-vector product of it.
    sophia = gradtx.contrib.sophia(3e-3, gamma=0.01, weight_decay=1e-4)
    extra = {
        "SAM": lambda p: {"grad_fn": lambda q, i: jax.grad(loss)(q)},
        "Sophia": lambda p: {"obj_fn": loss},
    }
    for name, opt in (("SAM", sam), ("Sophia", sophia)):

        @jax.jit
        def step(params: Any, state: Any, opt: Any = opt, name: str = name) -> Any:
            grads = jax.grad(loss)(params)
            updates, state = opt.update(grads, state, params, **extra[name](params))
            return gradtx.apply_updates(params, updates), state

        params, state = params0, opt.init(params0)
        for _ in range(steps):
            params, state = step(params, state)
        found[name] = float(loss(params))
        if verbose:
            start = float(loss(params0))
            print(f"{name:20s} loss after {steps} full-batch steps: {found[name]:.4f} (from {start:.4f})")
    return found


def plot(results: list[dict[str, Any]], folder: pathlib.Path) -> pathlib.Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        smooth = np.convolve(r["losses"], np.ones(5) / 5, mode="valid")
        by_step.plot(smooth, label=r["name"])
        by_time.plot(np.asarray(r["times"])[4:], smooth, label=r["name"])
    for ax, label in ((by_step, "step"), (by_time, "wall time (s, after compiling)")):
        ax.set_xlabel(label)
        ax.set_ylabel("training loss (mean of 5 steps)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    by_step.legend()
    fig.suptitle("digits MLP: the optimizers people train with now")
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "modern.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", default="modern_output")
    args = parser.parse_args()
    results = run(args.epochs)
    print(f"figure: {plot(results, pathlib.Path(args.out))}\n")
    sam_and_sophia()


if __name__ == "__main__":
    main()
