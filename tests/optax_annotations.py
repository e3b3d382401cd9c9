"""optax-annotated code with the import switched to gradtx: pyright checks this file in
CI (it holds no tests), so the type names stay usable as optax code uses them."""

from typing import Any

import jax
import jax.numpy as jnp

import gradtx as optax


def make_optimizer(learning_rate: optax.ScalarOrSchedule) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(learning_rate))


def scale_by_two() -> optax.GradientTransformationExtraArgs:
    def init_fn(params: optax.Params) -> optax.OptState:
        del params
        return optax.EmptyState()

    def update_fn(
        updates: optax.Updates, state: optax.OptState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, optax.OptState]:
        del params
        return jax.tree.map(lambda u: 2 * u, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def step(
    tx: optax.GradientTransformation, params: optax.Params, state: optax.OptState, grads: optax.Updates
) -> tuple[optax.Params, optax.OptState]:
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state


def unpacked(tx: optax.GradientTransformation) -> tuple[Any, Any]:
    init_fn, update_fn = tx
    return init_fn, update_fn


def weight_decay_mask(params: optax.Params) -> optax.MaskOrFn:
    return jax.tree.map(lambda p: p.ndim > 1, params)


PARAMS = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
OPT: optax.GradientTransformation = optax.masked(scale_by_two(), weight_decay_mask)
STATE = make_optimizer(optax.cosine_decay_schedule(1e-3, 100)).init(PARAMS)
