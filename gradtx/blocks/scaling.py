"""Scaling by a constant, a learning rate, or a schedule.

`scale_by_learning_rate` ends every optimizer: it is the one place the sign flips,
turning a descent direction into an update to add to the parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from gradtx import _checks, _tree
from gradtx.base import (
    Context,
    EmptyState,
    Params,
    Stateless,
    Transform,
    Updates,
    safe_increment,
    zero_count,
)
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.types import ScalarOrSchedule

ScaleState = EmptyState


def _times(factor: Any, g: jax.Array) -> jax.Array:
    """``factor * g`` computed in float32 (or wider) and rounded once to ``g``'s dtype:
    a learning rate is never rounded to bfloat16 (0.01 would become 0.010009766)."""
    dtype = _tree.compute_dtype(g.dtype)
    if dtype == g.dtype:
        return _tree.cast(factor, g.dtype) * g
    return (_tree.cast(factor, dtype) * _tree.to(g, dtype)).astype(g.dtype)


@pytree_dataclass
class scale(Stateless):
    """Multiplies the updates by ``step_size``.

    Args:
      step_size: the factor (any sign): one number, or a schedule of the step (an
        array of several is refused where it is used; see `scale_by_learning_rate`).

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.scale(-2.0).update(jnp.ones(2), gradtx.EmptyState())[0]
      Array([-2., -2.], dtype=float32)

    References:
      ``optax.scale`` (same numbers).
    """

    elementwise = True

    step_size: Any = hyper(rule=_checks.step_weight)

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del params
        step_size = self.at("step_size", count)
        return jax.tree.map(lambda g: _times(step_size, g), updates)


class ScaleByLearningRateState(NamedTuple):
    """State of `scale_by_learning_rate`: the step count, from 0."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]


@pytree_dataclass
class scale_by_learning_rate(Transform):
    r"""Multiplies the updates by ``-learning_rate`` (a number or a schedule of the step).

    .. math:: u_t = -\eta(t)\, g_t, \qquad t = 0, 1, \dots

    Args:
      learning_rate: a non-negative number, or a callable mapping the step count
        (from 0) to one. None means no scaling *and no sign flip* (optax's meaning):
        the updates pass unchanged.
      flip_sign: multiply by ``-learning_rate`` (True, the default) or by
        ``learning_rate``.

    Returns:
      A transform whose state, `ScaleByLearningRateState`, counts the updates; it is
      the step `gradtx.hyperparams` reports.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_learning_rate(0.1)
      >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0]
      Array([-0.1, -0.1], dtype=float32)

    References:
      ``optax.scale_by_learning_rate`` (same numbers; optax keeps no counter for a
      constant rate).
    """

    elementwise = True

    learning_rate: ScalarOrSchedule | None = hyper(default=None, rule=_checks.rate)
    flip_sign: bool = static(default=True, kw_only=True, rule=_checks.flag)

    def init(self, params: Params) -> ScaleByLearningRateState:
        del params
        return ScaleByLearningRateState(count=zero_count())

    def _update(self, updates: Updates, state: ScaleByLearningRateState, params: Params | None, ctx: Context):
        del params, ctx
        new_state = ScaleByLearningRateState(count=safe_increment(state.count))
        lr: Any = self.at("learning_rate", state.count)
        if lr is None:
            return updates, new_state
        step = -lr if self.flip_sign else lr
        return jax.tree.map(lambda g: _times(step, g), updates), new_state


class ScaleByScheduleState(NamedTuple):
    """State of `scale_by_schedule`: the step count, from 0."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]


@pytree_dataclass
class scale_by_schedule(Transform):
    """Multiplies the updates by ``step_size_fn(count)``, count from 0.

    Args:
      step_size_fn: a callable of the step count.

    Returns:
      A transform whose state is `ScaleByScheduleState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_schedule(lambda t: 1.0 / (1.0 + t.astype(jnp.float32)))
      >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0]
      Array([1., 1.], dtype=float32)

    References:
      ``optax.scale_by_schedule`` (same numbers).
    """

    elementwise = True

    step_size_fn: Callable[[jax.Array], Any] = hyper()

    def init(self, params: Params) -> ScaleByScheduleState:
        del params
        return ScaleByScheduleState(count=zero_count())

    def _update(self, updates: Updates, state: ScaleByScheduleState, params: Params | None, ctx: Context):
        del params, ctx
        step_size = self.step_size_fn(state.count)
        out = jax.tree.map(lambda g: _times(step_size, g), updates)
        return out, ScaleByScheduleState(count=safe_increment(state.count))
