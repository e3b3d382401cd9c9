"""Clipping: elementwise (`clip`) and by the global norm of all updates."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import tree
from gradtx.base import (
    Context,
    EmptyState,
    Params,
    ScheduleState,
    Transform,
    Updates,
    hyper,
    pytree_dataclass,
)


@pytree_dataclass
class clip(Transform):
    """Clips every coordinate of the updates to ``[-max_delta, max_delta]``.

    Args:
      max_delta: the largest magnitude kept, >= 0.

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.clip(1.0).update(jnp.array([-3.0, 0.5]), gradtx.EmptyState())[0]
      Array([-1. ,  0.5], dtype=float32)

    References:
      ``optax.clip`` (same numbers).
    """

    max_delta: Any = hyper()

    def init(self, params: Params) -> EmptyState | ScheduleState:
        del params
        return self._stateless_init()

    def _update(self, updates: Updates, state: Any, params: Params | None, ctx: Context):
        del params, ctx
        max_delta = self.at("max_delta", getattr(state, "count", None))

        def clip_one(g: jax.Array) -> jax.Array:
            bound = tree.cast(max_delta, g.dtype)
            return jnp.clip(g, -bound, bound)

        return jax.tree.map(clip_one, updates), self._stateless_next(state)


@pytree_dataclass
class clip_by_global_norm(Transform):
    r"""Scales all updates together so that their global L2 norm is at most ``max_norm``.

    .. math:: u = g \cdot \min(1, \text{max\_norm} / \lVert g \rVert_2)

    Written as one multiplication (not optax's ``select(norm < max, g, g / norm * max)``),
    so no second parameter-sized tree is kept alive; results agree with optax to the
    last bit or two.

    Args:
      max_norm: the largest global norm kept, >= 0.

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.clip_by_global_norm(1.0).update(jnp.array([3.0, 4.0]), gradtx.EmptyState())[0]
      Array([0.6, 0.8], dtype=float32)

    References:
      Pascanu et al., 2013. ``optax.clip_by_global_norm``.
    """

    max_norm: Any = hyper()

    def init(self, params: Params) -> EmptyState | ScheduleState:
        del params
        return self._stateless_init()

    def _update(self, updates: Updates, state: Any, params: Params | None, ctx: Context):
        del params, ctx
        max_norm = self.at("max_norm", getattr(state, "count", None))
        norm = tree.global_norm(updates)
        factor = jnp.minimum(1, tree.cast(max_norm, norm.dtype) / norm)
        out = jax.tree.map(lambda g: g * tree.to(factor, g.dtype), updates)
        return out, self._stateless_next(state)
