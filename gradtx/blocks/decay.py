"""Decoupled weight decay: adds ``weight_decay * params`` to the updates
(`add_decayed_weights`), or shrinks the parameters by a factor (`shrink_weights`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx.base import (
    Context,
    Params,
    Transform,
    Updates,
    _count_of,
    require_params,
    safe_increment,
    zero_count,
)
from gradtx.blocks.masking import freeze_mask, mask_of
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.packed import Packed, broadcast_prefix


class AddDecayedWeightsState(NamedTuple):
    """State of `add_decayed_weights`: the step count, for a scheduled decay."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]


@pytree_dataclass
class add_decayed_weights(Transform):
    r"""Adds ``weight_decay * params`` to the updates (decoupled weight decay).

    .. math:: u_t = x_t + \lambda(t)\, p_t

    Placed before the learning rate in a chain (as in `adamw`), the decay is scaled by
    the learning rate, as in Loshchilov and Hutter's AdamW and ``torch.optim.AdamW``.

    Args:
      weight_decay: a number >= 0 or a schedule of the step count.
      mask: a pytree of booleans shaped like the parameters (or a prefix of them), or
        a function returning one from the parameters; only leaves marked True are
        decayed. As in optax, a tree of booleans is a mask even when it is callable
        (an equinox module).

    Returns:
      A transform whose state, `AddDecayedWeightsState`, counts the updates.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.add_decayed_weights(0.1)
      >>> p = jnp.full(2, 2.0)
      >>> tx.update(jnp.zeros(2), tx.init(p), p)[0]
      Array([0.2, 0.2], dtype=float32)

    References:
      Loshchilov and Hutter, 2019. ``optax.add_decayed_weights`` (same numbers).
    """

    elementwise = True

    weight_decay: Any = hyper(default=0.0, rule=_checks.nonnegative)
    mask: Any = static(default=None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mask is not None:
            object.__setattr__(self, "mask", freeze_mask(self.mask))

    def init(self, params: Params) -> AddDecayedWeightsState:
        del params
        return AddDecayedWeightsState(count=zero_count())

    def _update(self, updates: Updates, state: AddDecayedWeightsState, params: Params | None, ctx: Context):
        del ctx
        require_params("add_decayed_weights", params, updates)
        # optax's own tests pass a bare 0 as the state of a constant decay.
        count = _count_of(state)
        wd = self.at("weight_decay", count)
        new_state = state if count is None else AddDecayedWeightsState(count=safe_increment(count))
        if updates is None:
            return None, new_state

        def decay(g: jax.Array, p: jax.Array) -> jax.Array:
            return g + _tree.cast(wd, g.dtype) * _tree.to(p, g.dtype)

        if self.mask is None:
            return jax.tree.map(decay, updates, params), new_state
        if isinstance(params, Packed):
            # The mask speaks of the original leaves; the layout turns it into one flag
            # per buffer (or a per-element mask where a buffer mixes both).
            shapes = params.shapes()
            mask = broadcast_prefix(mask_of(self.mask, shapes), shapes)
            flags = params.layout.per_buffer(mask)
            buffers = [
                (decay(g, p) if flag else g) if isinstance(flag, bool) else jnp.where(flag, decay(g, p), g)
                for g, p, flag in zip(updates.buffers, params.buffers, flags, strict=True)
            ]
            return Packed(tuple(buffers), updates.layout), new_state
        mask = broadcast_prefix(mask_of(self.mask, params), params)
        # The mask leads, so a None parameter (with a mask entry or not) passes through.
        return jax.tree.map(
            lambda m, g, p: decay(g, p) if m and g is not None else g,
            mask,
            updates,
            params,
            is_leaf=lambda x: x is None,
        ), new_state


class ShrinkWeightsState(NamedTuple):
    """State of `shrink_weights`: the step count, for a scheduled multiplier."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]


@pytree_dataclass
class shrink_weights(Transform):
    r"""Multiplies the parameters by ``multiplier`` before the updates are added.

    .. math:: u_t = x_t + (c(t) - 1)\, p_t, \qquad
              p_t + u_t = c(t)\, p_t + x_t

    Weight decay spoken as the factor the parameters keep (``c = 1 - eta * lambda``
    in `add_decayed_weights`'s terms, placed after the learning rate) rather than the
    part they lose; `fromage` keeps its parameters' norm from growing with
    ``c = 1 / sqrt(1 + eta^2)``. ``c - 1`` is computed from the number given (in
    float64 for a Python float), so a ``c`` close to 1 loses nothing.

    Args:
      multiplier: the factor ``c``, a number in [0, 1] or a schedule of the step count.

    Returns:
      A transform whose state, `ShrinkWeightsState`, counts the updates.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.shrink_weights(0.75)
      >>> p = jnp.full(2, 2.0)
      >>> tx.update(jnp.ones(2), tx.init(p), p)[0]  # 1 - 0.25 * 2: p + u = 0.75 * p + 1
      Array([0.5, 0.5], dtype=float32)

    References:
      Bernstein et al., 2020, Fromage (the factor ``1 / sqrt(1 + eta^2)``).
    """

    multiplier: Any = hyper(complement=True, rule=_checks.decay)

    def init(self, params: Params) -> ShrinkWeightsState:
        del params
        return ShrinkWeightsState(count=zero_count())

    def _update(self, updates: Updates, state: ShrinkWeightsState, params: Params | None, ctx: Context):
        del ctx
        require_params("shrink_weights", params, updates)
        # c - 1: from the exact complement for a number, as add_decayed_weights adds it.
        if callable(self.multiplier):
            change = self.at("multiplier", state.count) - 1
        else:
            change = -self.one_minus("multiplier")

        def shrink(u: jax.Array, p: jax.Array) -> jax.Array:
            return u + _tree.cast(change, u.dtype) * _tree.to(p, u.dtype)

        return jax.tree.map(shrink, updates, params), ShrinkWeightsState(count=safe_increment(state.count))
