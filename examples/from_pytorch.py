"""Port a PyTorch training script to JAX with gradtx.torch and get the same numbers.

The same small run is written twice, line for line: a two-layer MLP on scikit-learn's
digits, AdamW with PyTorch's defaults, OneCycleLR (learning rate and beta1 cycling)
and clip_grad_norm_. Both start from the same weights and see the same mini-batches;
the script prints the largest difference between the two loss curves and writes a
plot of both (and of their difference).

    python examples/from_pytorch.py            # 20 epochs, writes from_pytorch_output/
    python examples/from_pytorch.py --epochs 5 --out /tmp/port

What changes in the port:

    PyTorch                                          gradtx
    opt = torch.optim.AdamW(model.parameters(),      sched = gradtx.torch.OneCycleLR(
        lr=LR)                                           max_lr=LR, total_steps=STEPS)
    sched = OneCycleLR(opt, max_lr=LR,               opt = gradtx.chain(
        total_steps=STEPS)                               gradtx.torch.clip_grad_norm(1.0),
    loss.backward()                                      gradtx.torch.AdamW(lr=sched,
    clip_grad_norm_(model.parameters(), 1.0)                 betas=(sched.momentum, 0.999)))
    opt.step(); sched.step()                         updates, state = opt.update(grads, state, params)
                                                     params = gradtx.apply_updates(params, updates)
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits

import gradtx

SEED = 0
BATCH = 128
MAX_LR = 1e-2
HIDDEN = 64


def load_data() -> tuple[np.ndarray, np.ndarray]:
    """Digits (1,797 8x8 images), standardised, in a fixed shuffled order."""
    data, target = load_digits(return_X_y=True)
    x = np.asarray(data, np.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    order = np.random.default_rng(SEED).permutation(len(x))
    return x[order], np.asarray(target, np.int64)[order]


def initial_weights() -> dict[str, dict[str, np.ndarray]]:
    """He-initialised weights, zero biases, as (in, out) matrices."""
    rng = np.random.default_rng(SEED)

    def dense(n_in: int, n_out: int) -> dict[str, np.ndarray]:
        w = rng.normal(size=(n_in, n_out)) * np.sqrt(2.0 / n_in)
        return {"w": w.astype(np.float32), "b": np.zeros(n_out, np.float32)}

    return {"hidden": dense(64, HIDDEN), "out": dense(HIDDEN, 10)}


def batches(n: int, epochs: int) -> list[np.ndarray]:
    """The mini-batch indices of every step (both runs see the same ones)."""
    rng = np.random.default_rng(SEED + 1)
    out = []
    for _ in range(epochs):
        order = rng.permutation(n)
        out += [order[s : s + BATCH] for s in range(0, n - BATCH + 1, BATCH)]
    return out


def train_torch(x: np.ndarray, y: np.ndarray, steps: list[np.ndarray]) -> list[float]:
    """The PyTorch script."""
    import torch

    torch.set_num_threads(1)
    w = initial_weights()
    hidden, out = torch.nn.Linear(64, HIDDEN), torch.nn.Linear(HIDDEN, 10)
    with torch.no_grad():
        for layer, name in ((hidden, "hidden"), (out, "out")):
            layer.weight.copy_(torch.from_numpy(w[name]["w"].T.copy()))
            layer.bias.copy_(torch.from_numpy(w[name]["b"]))
    model = torch.nn.Sequential(hidden, torch.nn.ReLU(), out)
    opt = torch.optim.AdamW(model.parameters(), lr=MAX_LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=len(steps))
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    losses = []
    for idx in steps:
        i = torch.from_numpy(idx)
        loss = torch.nn.functional.cross_entropy(model(xs[i]), ys[i])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def forward(params: dict[str, Any], x: jax.Array) -> jax.Array:
    h = jax.nn.relu(x @ params["hidden"]["w"] + params["hidden"]["b"][None, :])
    return h @ params["out"]["w"] + params["out"]["b"][None, :]


def cross_entropy(params: dict[str, Any], x: jax.Array, y: jax.Array) -> jax.Array:
    logits = forward(params, x)
    picked = jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - picked)


def train_gradtx(x: np.ndarray, y: np.ndarray, steps: list[np.ndarray]) -> list[float]:
    """The same script with gradtx.torch."""
    params = jax.tree.map(jnp.asarray, initial_weights())
    sched = gradtx.torch.OneCycleLR(max_lr=MAX_LR, total_steps=len(steps))
    opt = gradtx.chain(
        gradtx.torch.clip_grad_norm(1.0),
        gradtx.torch.AdamW(lr=sched, betas=(sched.momentum, 0.999)),
    )
    state = opt.init(params)

    @jax.jit
    def step(params: Any, state: Any, xb: jax.Array, yb: jax.Array) -> tuple[Any, Any, jax.Array]:
        loss, grads = jax.value_and_grad(cross_entropy)(params, xb, yb)
        updates, state = opt.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state, loss

    losses = []
    y32 = y.astype(np.int32)
    for idx in steps:
        params, state, loss = step(params, state, x[idx], y32[idx])
        losses.append(float(loss))
    return losses


def run(epochs: int = 20, out: str | None = "from_pytorch_output", verbose: bool = True) -> dict[str, Any]:
    """Trains both; returns both loss curves and their largest difference."""
    x, y = load_data()
    steps = batches(len(x), epochs)
    theirs = train_torch(x, y, steps)
    ours = train_gradtx(x, y, steps)
    diff = np.abs(np.asarray(ours) - np.asarray(theirs))
    result = {"torch": theirs, "gradtx": ours, "max_difference": float(diff.max()), "steps": len(steps)}
    if verbose:
        print(f"{len(steps)} steps of AdamW + OneCycleLR + clip_grad_norm_ on digits")
        print(f"final loss: torch {theirs[-1]:.6f}, gradtx {ours[-1]:.6f}")
        print(f"largest difference between the loss curves: {diff.max():.2e}")
    if out is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        folder = pathlib.Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
        top.plot(theirs, label="torch.optim.AdamW + OneCycleLR", linewidth=3, alpha=0.5)
        top.plot(ours, label="gradtx.torch.AdamW + OneCycleLR", linewidth=1)
        top.set_ylabel("training loss")
        top.legend()
        bottom.plot(diff, color="black", linewidth=1)
        bottom.set_yscale("symlog", linthresh=1e-8)
        bottom.set_ylabel("|gradtx - torch|")
        bottom.set_xlabel("step")
        fig.tight_layout()
        path = folder / "from_pytorch.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        if verbose:
            print(f"wrote {path}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", default="from_pytorch_output")
    args = parser.parse_args()
    run(args.epochs, args.out)
