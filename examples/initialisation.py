"""Weight initialisation: activation histograms of a 5-layer network, layer by layer.

A batch of standard-normal inputs goes through 5 dense layers of 100 units, sigmoid or
ReLU, with no training. Each initialisation (from ``jax.nn.initializers``) gives each
layer's activations a shape:

- zeros: every unit of a layer computes the same value (sigmoid 0.5, ReLU 0), so every
  unit would receive the same update and they would stay alike;
- a small normal (std 0.01): sigmoid activations collapse to 0.5 and ReLU ones to 0,
  layer after layer;
- a normal with std 1: sigmoid activations pile up at 0 and 1, where its slope vanishes;
- Xavier (Glorot, variance 1 / fan_in here, as the usual sigmoid variant) keeps sigmoid
  activations spread across layers;
- He (variance 2 / fan_in) keeps ReLU activations from shrinking, making up for ReLU
  zeroing half its inputs.

Run:  python examples/initialisation.py [--examples 1000] [--width 100] [--out initialisation_output]
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

LAYERS = 5
INITIALISERS: dict[str, Callable] = {
    "zeros": jax.nn.initializers.zeros,
    "normal, std 0.01": jax.nn.initializers.normal(0.01),
    "normal, std 1": jax.nn.initializers.normal(1.0),
    "Xavier": jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal"),
    "He": jax.nn.initializers.he_normal(),
}
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"sigmoid": jax.nn.sigmoid, "ReLU": jax.nn.relu}


def activations(
    init: Callable, activation: Callable, examples: int, width: int, seed: int = 0
) -> list[np.ndarray]:
    """Each layer's activations for one batch of standard-normal inputs."""
    key = jax.random.key(seed)
    key, sub = jax.random.split(key)
    h = jax.random.normal(sub, (examples, width))
    out = []
    for _ in range(LAYERS):
        key, sub = jax.random.split(key)
        h = activation(h @ init(sub, (width, width), jnp.float32))
        out.append(np.asarray(h))
    return out


def run(examples: int = 1000, width: int = 100, out: str = "initialisation_output") -> dict:
    """Computes every activation, writes one histogram grid per activation function."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = pathlib.Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    result: dict = {}
    for act_name, activation in ACTIVATIONS.items():
        fig, axes = plt.subplots(
            len(INITIALISERS), LAYERS, figsize=(13, 2.1 * len(INITIALISERS)), squeeze=False
        )
        for row, (init_name, init) in enumerate(INITIALISERS.items()):
            layers = activations(init, activation, examples, width)
            result[act_name, init_name] = layers
            for col, h in enumerate(layers):
                ax = axes[row, col]
                value_range = (0.0, 1.0) if act_name == "sigmoid" else (0.0, max(float(h.max()), 1e-3))
                ax.hist(h.ravel(), bins=30, range=value_range, color=f"C{row}")
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(f"layer {col + 1}")
                if col == 0:
                    ax.set_ylabel(init_name, fontsize=9)
        fig.suptitle(
            f"{act_name} activations of a {LAYERS}-layer network, {width} units each, per initialisation"
        )
        fig.tight_layout()
        path = folder / f"initialisation_{act_name.lower()}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        result[act_name, "figure"] = path
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--out", default="initialisation_output")
    args = parser.parse_args()
    result = run(args.examples, args.width, args.out)
    print(f"{'activation':10s} {'initialisation':18s} std of each layer's activations")
    for (act_name, init_name), layers in result.items():
        if init_name != "figure":
            print(f"{act_name:10s} {init_name:18s} " + " ".join(f"{h.std():7.4f}" for h in layers))
    print("figures:", ", ".join(str(result[a, "figure"]) for a in ACTIVATIONS))


if __name__ == "__main__":
    main()
