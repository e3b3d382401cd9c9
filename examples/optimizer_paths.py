"""Paths of eight optimizers on the anisotropic bowl f(x, y) = x^2/20 + y^2, one panel
each, from (-7, 2): the classic figure of the study notes gradtx started from.

The bowl is twenty times steeper along y than along x, so plain SGD with a rate large
enough to make progress along x overshoots along y at every step and zig-zags;
momentum damps the zig-zag, and the adaptive methods rescale each coordinate so both
move at a similar pace. The first four use the notes' settings: SGD at 0.95, momentum
0.9 at 0.1 (``v = 0.9 v - lr g; W = W + v``), AdaGrad at 1.5 (``h`` from 0, eps 1e-7
outside the root) and Adam at 0.3; RMSProp (decay 0.9, eps 1e-7 outside the root) and
three optimizers the notes do not cover, Lion, AdaBelief and Yogi, follow.

Run:  python examples/optimizer_paths.py [--steps 30] [--out optimizer_paths_output]
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import gradtx

START = (-7.0, 2.0)

# (title, optimizer)
OPTIMIZERS: list[tuple[str, gradtx.Transform]] = [
    ("SGD, lr 0.95", gradtx.sgd(0.95)),
    ("Momentum 0.9, lr 0.1", gradtx.sgd(0.1, 0.9, momentum_form="alpha")),
    ("AdaGrad, lr 1.5", gradtx.adagrad(1.5, initial_accumulator_value=0.0, eps=1e-7, eps_in_sqrt=False)),
    ("RMSProp, lr 0.15", gradtx.rmsprop(0.15, decay=0.9, eps=1e-7, eps_in_sqrt=False)),
    ("Adam, lr 0.3", gradtx.adam(0.3)),
    ("Lion, lr 0.3", gradtx.lion(0.3, weight_decay=0.0)),
    ("AdaBelief, lr 0.3", gradtx.adabelief(0.3)),
    ("Yogi, lr 0.3", gradtx.yogi(0.3)),
]


def bowl(w: jax.Array) -> jax.Array:
    """The notes' bowl: f(x, y) = x^2/20 + y^2."""
    return w[0] ** 2 / 20.0 + w[1] ** 2


def path(opt: gradtx.Transform, steps: int) -> np.ndarray:
    """The ``steps + 1`` points visited from `START`, in one jitted scan."""

    def step(carry, _):
        w, state = carry
        updates, state = opt.update(jax.grad(bowl)(w), state, w)
        w = gradtx.apply_updates(w, updates)
        return (w, state), w

    w0 = jnp.asarray(START)
    _, points = jax.jit(lambda w: jax.lax.scan(step, (w, opt.init(w)), None, steps))(w0)
    return np.concatenate([np.asarray(w0)[None], np.asarray(points)])


def paths(steps: int) -> dict[str, np.ndarray]:
    """Every optimizer's path, by title."""
    return {title: path(opt, steps) for title, opt in OPTIMIZERS}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30, help="steps per optimizer")
    parser.add_argument("--grid", type=int, default=200, help="contour grid points per axis")
    parser.add_argument("--out", default="optimizer_paths_output", help="folder for the figure")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = np.linspace(-10, 10, args.grid)
    ys = np.linspace(-5, 5, args.grid)
    gx, gy = np.meshgrid(xs, ys)
    levels = np.asarray(jax.vmap(bowl)(jnp.stack([gx.ravel(), gy.ravel()], axis=1))).reshape(gx.shape)

    found = paths(args.steps)
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, (title, points) in zip(axes.flat, found.items(), strict=True):
        ax.contour(gx, gy, levels, levels=20, colors="0.75", linewidths=0.6)
        ax.plot(points[:, 0], points[:, 1], "o-", color="tab:red", markersize=3, linewidth=1)
        ax.plot(0, 0, "+", color="black", markersize=10)
        ax.set_xlim(-10, 10)
        ax.set_ylim(-5, 5)
        ax.set_title(f"{title}: f = {float(bowl(jnp.asarray(points[-1]))):.2g}", fontsize=10)
    fig.suptitle(f"{args.steps} steps on f(x, y) = x^2/20 + y^2 from (-7, 2)")
    fig.tight_layout()
    folder = pathlib.Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "optimizer_paths.png"
    fig.savefig(out, dpi=100)
    for title, points in found.items():
        print(f"{title:24s} ends at ({points[-1, 0]:+.4f}, {points[-1, 1]:+.4f})")
    print(f"{len(found)} optimizer paths plotted to {out}")


if __name__ == "__main__":
    main()
