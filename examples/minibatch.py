"""Mini-batch against full-batch gradient descent on scikit-learn's digits.

Softmax regression (64 inputs, 10 classes) trained with plain SGD, once on the whole
training set per step (batch gradient descent) and once on shuffled mini-batches of 128
(mini-batch gradient descent), both with ``gradtx.sgd``. The figure shows the training
loss on the whole set after every step, against steps and against epochs, and each
mini-batch's own loss: noisy, but trending down. Per step the two are alike; per pass
over the data mini-batches take many steps where batch gradient descent takes one.

Run:  python examples/minibatch.py [--epochs 30] [--out minibatch_output]
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import gradtx

SEED = 0


def load_data() -> tuple[np.ndarray, np.ndarray]:
    """Digits (1,797 8x8 images), standardised."""
    data, target = load_digits(return_X_y=True)
    x = np.asarray(data, np.float32)
    return (x - x.mean(0)) / (x.std(0) + 1e-6), np.asarray(target, np.int32)


def loss_fn(params: dict[str, jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    logits = x @ params["w"] + params["b"][None, :]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def train(
    batch_size: int | None, epochs: int, lr: float, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per step: the loss on the step's batch, and on the whole set after the step.

    ``batch_size=None`` is batch gradient descent (the batch is the whole set).
    """
    opt = gradtx.sgd(lr)
    params = {"w": jnp.zeros((x.shape[1], 10)), "b": jnp.zeros(10)}
    state = opt.init(params)
    xs, ys = jnp.asarray(x), jnp.asarray(y)

    @jax.jit
    def step(params, state, xb, yb):
        batch_loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
        updates, state = opt.update(grads, state, params)
        params = gradtx.apply_updates(params, updates)
        return params, state, batch_loss, loss_fn(params, xs, ys)

    size = batch_size or len(x)
    rng = np.random.default_rng(SEED)
    batch_losses, losses = [], []
    for _ in range(epochs):
        order = rng.permutation(len(x)) if batch_size else np.arange(len(x))
        for start in range(0, len(x) - size + 1, size):
            idx = order[start : start + size]
            params, state, batch_loss, loss = step(params, state, xs[idx], ys[idx])
            batch_losses.append(float(batch_loss))
            losses.append(float(loss))
    return np.asarray(batch_losses), np.asarray(losses)


def run(epochs: int = 30, batch_size: int = 128, lr: float = 0.1, out: str = "minibatch_output") -> dict:
    """Trains both ways, writes the figure; returns the loss curves and the figure's path."""
    x, y = load_data()
    _, full = train(None, epochs, lr, x, y)
    mini_batches, mini = train(batch_size, epochs, lr, x, y)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = pathlib.Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    fig, (by_step, by_epoch) = plt.subplots(1, 2, figsize=(11, 4))
    per_epoch = len(mini) // epochs
    steps = np.arange(1, len(mini) + 1)
    by_step.plot(steps, mini_batches, "C0", lw=0.6, alpha=0.4, label="mini-batch: loss on its own batch")
    by_step.plot(steps, mini, "C0", lw=1.2, label=f"mini-batch ({batch_size})")
    by_step.plot(np.arange(1, len(full) + 1), full, "C1", lw=2, label="full batch")
    by_step.set(xlabel="step", ylabel="training loss on the whole set", yscale="log", title="per step")
    by_epoch.plot(steps / per_epoch, mini, "C0", lw=1.2, label=f"mini-batch ({batch_size})")
    by_epoch.plot(np.arange(1, len(full) + 1), full, "C1", lw=2, label="full batch")
    by_epoch.set(xlabel="epoch", yscale="log", title=f"per epoch ({per_epoch} mini-batch steps each)")
    for ax in (by_step, by_epoch):
        ax.legend()
    fig.suptitle(f"Softmax regression on digits, gradtx.sgd({lr})")
    fig.tight_layout()
    path = folder / "minibatch.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return {"full": full, "mini": mini, "mini_batches": mini_batches, "figure": path}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--out", default="minibatch_output")
    args = parser.parse_args()
    result = run(args.epochs, args.batch_size, out=args.out)
    print(
        f"after {args.epochs} epochs: full batch {result['full'][-1]:.4f},"
        f" mini-batch {result['mini'][-1]:.4f}"
    )
    print(f"figure: {result['figure']}")


if __name__ == "__main__":
    main()
