"""Transforms applied only when a condition holds: at chosen steps, or when finite.

The inner transform runs under ``lax.cond``, so on a step it skips, its state is
returned unchanged, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import Context, Params, Transform, Updates, Wrapper, safe_increment, zero_count
from gradtx.data import hyper, pytree_dataclass, static


def negative_zeros_like(tree: Any) -> Any:
    """Zeros with the sign bit set: ``p + (-0.0)`` is ``p`` bit for bit, also for
    ``p = -0.0`` (where ``-0.0 + 0.0`` is ``+0.0``), so a skipped step changes nothing."""
    return jax.tree.map(
        lambda x: jnp.full_like(x, -0.0) if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.zeros_like(x), tree
    )


class ConditionallyTransformState(NamedTuple):
    """State of `conditionally_transform`: the inner state and the step count."""

    inner_state: Any
    step: jax.Array  # shape=(), dtype=int32: updates so far


class ConditionFn(Protocol):
    """``fn(step, **extra_args) -> bool scalar``: whether `conditionally_transform` (or
    `conditionally_mask`) applies its inner transform at this step."""

    def __call__(self, step: jax.Array, **extra_args: Any) -> jax.Array:
        """Returns a boolean scalar."""
        ...


@pytree_dataclass
class conditionally_transform(Wrapper):
    """Applies ``inner`` only at the steps where ``should_transform_fn(step)`` is True;
    elsewhere the updates pass through unchanged and the inner state is kept.

    Args:
      inner: the transform.
      should_transform_fn: ``fn(step, **extra) -> bool scalar``; ``step`` counts calls
        from 0.
      forward_extra_args: pass ``update``'s extra keyword arguments to the condition.

    Returns:
      A transform whose state is `ConditionallyTransformState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.conditionally_transform(gradtx.scale(10.0), lambda step: step >= 1)
      >>> state = tx.init(jnp.ones(1))
      >>> u0, state = tx.update(jnp.ones(1), state)
      >>> u1, state = tx.update(jnp.ones(1), state)
      >>> u0, u1
      (Array([1.], dtype=float32), Array([10.], dtype=float32))

    References:
      ``optax.conditionally_transform`` (same numbers and state).
    """

    inner: Transform = hyper()
    should_transform_fn: Callable[..., Any] = static()
    forward_extra_args: bool = static(default=False, rule=_checks.flag)

    def init(self, params: Params) -> ConditionallyTransformState:
        return ConditionallyTransformState(inner_state=self.inner.init(params), step=zero_count())

    def _update(
        self, updates: Updates, state: ConditionallyTransformState, params: Params | None, ctx: Context
    ):
        updates, inner_state = _when(self, updates, state, params, ctx, otherwise=updates)
        return updates, ConditionallyTransformState(inner_state, safe_increment(state.step))


class ConditionallyMaskState(NamedTuple):
    """State of `conditionally_mask`: the step count and the inner state."""

    step: jax.Array  # shape=(), dtype=int32: updates so far
    inner_state: Any


@pytree_dataclass
class conditionally_mask(Wrapper):
    """Applies ``inner`` only at the steps where ``should_transform_fn(step)`` is True;
    elsewhere the updates are zeros and the inner state is kept.

    Args:
      inner: the transform.
      should_transform_fn: ``fn(step, **extra) -> bool scalar``; ``step`` counts calls
        from 0.
      forward_extra_args: pass ``update``'s extra keyword arguments to the condition.

    Returns:
      A transform whose state is `ConditionallyMaskState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.conditionally_mask(gradtx.sgd(0.1), lambda step: step % 2 == 1)
      >>> tx.update(jnp.ones(1), tx.init(jnp.ones(1)))[0]
      Array([0.], dtype=float32)

    References:
      ``optax.conditionally_mask`` (same numbers and state).
    """

    inner: Transform = hyper()
    should_transform_fn: Callable[..., Any] = static()
    forward_extra_args: bool = static(default=False, rule=_checks.flag)

    def init(self, params: Params) -> ConditionallyMaskState:
        return ConditionallyMaskState(step=zero_count(), inner_state=self.inner.init(params))

    def _update(self, updates: Updates, state: ConditionallyMaskState, params: Params | None, ctx: Context):
        zeros = jax.tree.map(jnp.zeros_like, updates)
        updates, inner_state = _when(self, updates, state, params, ctx, otherwise=zeros)
        return updates, ConditionallyMaskState(step=safe_increment(state.step), inner_state=inner_state)


def _when(
    tx: conditionally_transform | conditionally_mask,
    updates: Updates,
    state: Any,
    params: Params | None,
    ctx: Context,
    otherwise: Updates,
) -> tuple[Updates, Any]:
    """The inner update where ``tx.should_transform_fn(state.step)`` holds, else
    ``otherwise`` and the inner state unchanged."""
    condition = tx.should_transform_fn(state.step, **(ctx.extra if tx.forward_extra_args else {}))
    return jax.lax.cond(
        condition,
        lambda: tx.inner._apply(updates, state.inner_state, params, ctx.inside()),
        lambda: (otherwise, state.inner_state),
    )


class ApplyIfFiniteState(NamedTuple):
    """State of `apply_if_finite`.

    Attributes:
      notfinite_count: consecutive non-finite steps so far (int32 scalar).
      last_finite: whether the last step's updates were finite (bool scalar).
      total_notfinite: non-finite steps in all (int32 scalar).
      inner_state: the inner transform's state, unchanged by a rejected step.
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    inner_state: Any


@pytree_dataclass
class apply_if_finite(Wrapper):
    """Skips any step whose updates hold a NaN or an infinity, up to a limit.

    On a non-finite step the inner transform does not run: its state is kept bit for
    bit and the updates are (negative) zeros, so ``apply_updates`` leaves every
    parameter bit-identical, also on packed parameters. After more than
    ``max_consecutive_errors`` non-finite steps in a row, the step is applied anyway
    (as in optax), so a run that keeps failing shows it.

    Args:
      inner: the transform to protect (usually the whole optimizer).
      max_consecutive_errors: how many non-finite steps in a row are skipped.

    Returns:
      A transform whose state is `ApplyIfFiniteState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.apply_if_finite(gradtx.sgd(0.1), max_consecutive_errors=3)
      >>> u, state = tx.update(jnp.asarray([jnp.nan, 1.0]), tx.init(jnp.zeros(2)))
      >>> u, int(state.notfinite_count)
      (Array([-0., -0.], dtype=float32), 1)

    References:
      ``optax.apply_if_finite`` (same state and numbers; optax's zeros are +0.0, which
      turn a -0.0 parameter into +0.0).
    """

    inner: Transform = hyper()
    max_consecutive_errors: int = static(rule=_checks.nonnegative_int)

    def init(self, params: Params) -> ApplyIfFiniteState:
        return ApplyIfFiniteState(
            notfinite_count=zero_count(),
            last_finite=jnp.asarray(True),
            total_notfinite=zero_count(),
            inner_state=self.inner.init(params),
        )

    def _update(self, updates: Updates, state: ApplyIfFiniteState, params: Params | None, ctx: Context):
        leaves = jax.tree.leaves(updates)
        finite = (
            jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.asarray(True)
        )
        notfinite_count = jnp.where(finite, zero_count(), safe_increment(state.notfinite_count))
        apply = jnp.logical_or(finite, notfinite_count > self.max_consecutive_errors)
        new_updates, inner_state = jax.lax.cond(
            apply,
            lambda: self.inner._apply(updates, state.inner_state, params, ctx.inside()),
            lambda: (negative_zeros_like(updates), state.inner_state),
        )
        total = jnp.where(finite, state.total_notfinite, safe_increment(state.total_notfinite))
        return new_updates, ApplyIfFiniteState(notfinite_count, finite, total, inner_state)
