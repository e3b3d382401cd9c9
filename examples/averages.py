"""Exponentially weighted averages, with and without bias correction.

``V_t = beta V_{t-1} + (1 - beta) theta_t`` from ``V_0 = 0`` averages roughly the last
``1 / (1 - beta)`` values: a larger beta gives a smoother, later curve. Starting from
zero pulls the first values towards zero; dividing by ``1 - beta^t`` removes that bias,
which matters only early on. Both are computed with ``gradtx.ema`` (``debias=False`` and
the default ``debias=True``) over a noisy daily-temperature-like series, for several betas.

Run:  python examples/averages.py [--days 365] [--out averages_output]
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import gradtx

BETAS = (0.5, 0.9, 0.98)


def noisy_series(days: int, seed: int = 0) -> np.ndarray:
    """A seasonal curve around 15 with day-to-day noise of 4."""
    t = np.arange(days)
    rng = np.random.default_rng(seed)
    return (15.0 - 10.0 * np.cos(2 * np.pi * t / 365.0) + 4.0 * rng.normal(size=days)).astype(np.float32)


def averages(series: np.ndarray, beta: float, debias: bool) -> np.ndarray:
    """``V_1 ... V_T`` of ``gradtx.ema(beta, debias)`` fed the series one value per step."""
    tx = gradtx.ema(beta, debias=debias)

    def step(state, theta):
        average, state = tx.update(theta, state)
        return state, average

    _, out = jax.lax.scan(step, tx.init(jnp.zeros(())), jnp.asarray(series))
    return np.asarray(out)


def run(days: int = 365, betas: tuple[float, ...] = BETAS, out: str = "averages_output") -> dict:
    """Computes every average, writes the figure; returns the averages and the figure's path."""
    series = noisy_series(days)
    result: dict = {"series": series}
    for beta in betas:
        result[beta, False] = averages(series, beta, debias=False)
        result[beta, True] = averages(series, beta, debias=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = pathlib.Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, debias in zip(axes, (False, True), strict=True):
        ax.plot(np.arange(1, days + 1), series, ".", color="0.6", ms=3, label="observations")
        for i, beta in enumerate(betas):
            ax.plot(np.arange(1, days + 1), result[beta, debias], f"C{i}", label=f"beta = {beta}")
        kind = "bias-corrected: V_t / (1 - beta^t)" if debias else "raw: V_t from V_0 = 0"
        ax.set(title=kind, xlabel="day t", ylabel="value")
        ax.legend(loc="upper left")
    fig.suptitle("Exponentially weighted averages (gradtx.ema)")
    fig.tight_layout()
    path = folder / "averages.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    result["figure"] = path
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--out", default="averages_output")
    args = parser.parse_args()
    result = run(args.days, out=args.out)
    for beta in BETAS:
        raw, corrected = result[beta, False][0], result[beta, True][0]
        print(
            f"beta {beta}: day 1 raw {raw:6.2f}, corrected {corrected:6.2f}"
            f" (observed {result['series'][0]:.2f})"
        )
    print(f"figure: {result['figure']}")


if __name__ == "__main__":
    main()
