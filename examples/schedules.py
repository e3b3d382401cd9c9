"""Every gradtx schedule on one figure grid, the study notes' six decays first.

Run:  python examples/schedules.py [--out schedules_output]
"""

from __future__ import annotations

import argparse
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import gradtx

STEPS = 300
LR = 0.1

# (title, schedule): the study notes' six first (note 002), then the rest.
SCHEDULES: list[tuple[str, gradtx.Schedule]] = [
    ("1. step decay (seed)", gradtx.step_decay(LR, 75, 0.5)),
    ("2. exponential decay (seed)", gradtx.exponential_decay(LR, 1, math.exp(-0.01))),
    ("3. inverse time decay (seed)", gradtx.inverse_time_decay(LR, 0.02)),
    ("4. polynomial decay (seed)", gradtx.polynomial_schedule(LR, 0.0, 2.0, STEPS)),
    ("5. cosine annealing (seed)", gradtx.cosine_decay_schedule(LR, STEPS)),
    ("6. warm-up then decay (seed)", gradtx.warmup_cosine_decay_schedule(0.0, LR, 30, STEPS)),
    ("constant", gradtx.constant_schedule(LR)),
    ("linear", gradtx.linear_schedule(LR, 0.01, 200, 50)),
    ("exponential, staircase", gradtx.exponential_decay(LR, 50, 0.6, staircase=True, end_value=0.02)),
    ("warmup constant", gradtx.warmup_constant_schedule(0.0, LR, 50)),
    ("warmup exponential", gradtx.warmup_exponential_decay_schedule(0.0, LR, 30, 20, 0.8)),
    ("piecewise constant", gradtx.piecewise_constant_schedule(LR, {100: 0.5, 200: 0.2})),
    (
        "piecewise interpolate (cosine)",
        gradtx.piecewise_interpolate_schedule("cosine", LR, {100: 0.2, 200: 3.0}),
    ),
    (
        "join (constant, linear)",
        gradtx.join_schedules([gradtx.constant_schedule(LR), gradtx.linear_schedule(LR, 0.0, 100)], [150]),
    ),
    (
        "SGDR",
        gradtx.sgdr_schedule([dict(init_value=0.0, peak_value=LR, warmup_steps=10, decay_steps=100)] * 3),
    ),
    ("linear one-cycle", gradtx.linear_onecycle_schedule(STEPS, LR)),
    ("cosine one-cycle", gradtx.cosine_onecycle_schedule(STEPS, LR)),
    ("inverse sqrt", gradtx.inverse_sqrt_schedule(LR, 30)),
    (
        "warmup-stable-decay (1-sqrt)",
        gradtx.warmup_stable_decay_schedule(LR, 30, 200, 70, decay_type="1-sqrt"),
    ),
    ("cyclic (triangular2)", gradtx.cyclic_schedule(0.01, LR, 40, mode="triangular2")),
    (
        "product (step x exponential)",
        gradtx.multiply_schedules([gradtx.step_decay(LR, 100, 0.5), gradtx.exponential_decay(1.0, 1, 0.997)]),
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="schedules_output", help="folder for the figure")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = jnp.arange(STEPS + 1)
    cols = 4
    rows = math.ceil(len(SCHEDULES) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), sharex=True)
    for ax, (title, schedule) in zip(axes.flat, SCHEDULES, strict=False):
        values = np.asarray(jax.jit(jax.vmap(schedule))(steps))
        ax.plot(np.asarray(steps), values, color="tab:red" if "seed" in title else "tab:blue")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(SCHEDULES) :]:
        ax.axis("off")
    fig.suptitle("gradtx schedules (red: the study notes' six decays); x: step, y: value")
    fig.tight_layout()
    folder = pathlib.Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "schedules.png"
    fig.savefig(path, dpi=100)
    print(f"{len(SCHEDULES)} schedules plotted to {path}")


if __name__ == "__main__":
    main()
