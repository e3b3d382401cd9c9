"""The accuracy cost of low-precision optimizer state, measured on the tour's run.

Trains the tour's MLP on digits (25 epochs, batches of 128, the same initial weights and
batch order) with Adam keeping its moments in float32, or the first and/or second moment
in bfloat16, and prints final training loss, test accuracy, the largest parameter
difference from the float32-state run, and the state's size.

Run:  python benchmarks/state_dtypes.py [--epochs 25] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import sys

import jax
import jax.numpy as jnp

import gradtx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stamp import stamp

TOUR = pathlib.Path(__file__).parent.parent / "examples" / "tour.py"


def load_tour():
    spec = importlib.util.spec_from_file_location("tour", TOUR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    tour = load_tour()
    x_train, y_train, x_test, y_test = tour.load_data()
    params0 = tour.init_mlp(jax.random.key(tour.SEED))
    configs = [
        ("float32 mu, float32 nu", {}),
        ("bfloat16 mu", {"mu_dtype": jnp.bfloat16}),
        ("bfloat16 nu", {"nu_dtype": jnp.bfloat16}),
        ("bfloat16 mu and nu", {"mu_dtype": jnp.bfloat16, "nu_dtype": jnp.bfloat16}),
    ]
    reference = None
    print(f"Adam(lr={args.lr}) on digits, {args.epochs} epochs")
    print(f"{'state':24s} {'train loss':>10s} {'test acc':>9s} {'max |p - p_f32|':>16s} {'state bytes':>12s}")
    for name, kwargs in configs:
        opt = gradtx.adam(args.lr, **kwargs)
        params, _ = tour.train(opt, gradtx.apply_updates, params0, x_train, y_train, args.epochs)
        state_bytes = sum(x.nbytes for x in jax.tree.leaves(opt.init(params0)))
        loss = float(tour.loss_fn(params, jnp.asarray(x_train), jnp.asarray(y_train)))
        acc = tour.accuracy(params, x_test, y_test)
        if reference is None:
            reference = params
        diff = max(
            float(jnp.max(jnp.abs(a - b)))
            for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(reference), strict=True)
        )
        print(f"{name:24s} {loss:10.4f} {acc:9.3f} {diff:16.2e} {state_bytes:12d}")
        rows.append({"state": name, "loss": loss, "accuracy": acc, "max_diff": diff, "bytes": state_bytes})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"stamp": stamp(), "epochs": args.epochs, "lr": args.lr, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
