"""Blocks of PyTorch's optimizers that act on the parameters themselves.

Decoupled weight decay applied as PyTorch applies it (`multiply_weights`, rounded as
its in-place product), the running average of the parameters (`params_average`:
PyTorch's ASGD, Keras's ``use_ema``) and Rprop's per-coordinate steps (`rprop_steps`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._checks import InputError
from gradtx.base import (
    Context,
    Params,
    Transform,
    Updates,
    require_params,
    safe_increment,
    zero_count,
)
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.torch.numerics import rounded


class MultiplyWeightsState(NamedTuple):
    """State of `multiply_weights`: the step count (for scheduled values)."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]


@pytree_dataclass
class multiply_weights(Transform):
    r"""PyTorch's decoupled weight decay ``p *= 1 - lr * wd`` as an added update.

    Returns :math:`(f W + u) - W` for the incoming update :math:`u`, with
    :math:`f = 1 - \eta \lambda` rounded to the parameters' dtype: PyTorch multiplies
    in place by the rounded factor, then adds the step, rounding twice, and
    `gradtx.apply_updates` then lands on the same value. `gradtx.add_decayed_weights`
    before the learning rate adds :math:`-\eta\lambda W` unrounded; in float32 the two
    drift apart by up to 6e-8 of W per step (the rounding of :math:`f`), 9e-6 over 150
    steps. Place it last, after the learning rate.

    Args:
      learning_rate: :math:`\eta`, a number or a schedule.
      weight_decay: :math:`\lambda`, a number or a schedule.

    Returns:
      A transform whose state is `MultiplyWeightsState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.torch.multiply_weights(0.5, 0.5)
      >>> p = jnp.full(2, 2.0)
      >>> tx.update(jnp.zeros(2), tx.init(p), p)[0]  # 0.75 * 2 - 2
      Array([-0.5, -0.5], dtype=float32)

    References:
      ``torch.optim.AdamW`` (and the ``decoupled_weight_decay`` of Adam, NAdam, RAdam).
    """

    learning_rate: Any = hyper(rule=_checks.rate)
    weight_decay: Any = hyper(rule=_checks.nonnegative)

    def init(self, params: Params) -> MultiplyWeightsState:
        del params
        return MultiplyWeightsState(count=zero_count())

    def _decayed(self, p: jax.Array, lr: Any, wd: Any) -> jax.Array:
        """The decayed weights, before rounding: ``p * (1 - lr * wd)``, the factor
        computed in float32 and rounded to ``p``'s dtype as PyTorch rounds it."""
        factor = 1 - jnp.asarray(lr, jnp.float32) * jnp.asarray(wd, jnp.float32)
        return p * _tree.to(factor, p.dtype)

    def _update(self, updates: Updates, state: MultiplyWeightsState, params: Params | None, ctx: Context):
        del ctx
        require_params(type(self).__name__, params, updates)
        lr, wd = self.at("learning_rate", state.count), self.at("weight_decay", state.count)

        def one(u: jax.Array, p: jax.Array) -> jax.Array:
            # Two roundings, the decayed weights and then + u, as the frameworks' in-place
            # ops; the difference from p is exact (Sterbenz), so apply_updates lands on
            # the framework's value.
            return (rounded(self._decayed(p, lr, wd), state.count) + u) - p

        out = jax.tree.map(one, updates, params)
        return out, MultiplyWeightsState(count=safe_increment(state.count))


class ParamsAverageState(NamedTuple):
    """State of `params_average`: the step count and the running average of the parameters."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    average: Params


@pytree_dataclass
class params_average(Transform):
    r"""Keeps an average of the parameters *after* each update; the last block of a chain.

    ``form="asgd"`` (PyTorch's ``ASGD``): :math:`\bar w_t = \bar w_{t-1} + \mu_t (w_t -
    \bar w_{t-1})` with :math:`\mu_t = 1 / \max(1, t - 1 - t_0)`, so :math:`\bar w` is
    the current parameters until step :math:`t_0 + 2`, then their running mean.

    ``form="ema"`` (Keras's ``use_ema``): :math:`\bar w_t = m \bar w_{t-1} + (1 - m) w_t`
    (:math:`\bar w_1 = w_1`), and every ``overwrite_every`` steps the parameters are
    replaced by the average (Keras's ``ema_overwrite_frequency``).

    The updates pass unchanged except on overwrite steps, where they are
    ``average - params``. Read the average from the state (``state[-1].average`` of the
    preset's chain).

    Args:
      t0: PyTorch's ``t0`` (the step averaging starts), for ``form="asgd"``.
      momentum: Keras's ``ema_momentum`` (0.99), for ``form="ema"``.
      overwrite_every: Keras's ``ema_overwrite_frequency``, or None.
      form: ``"asgd"`` or ``"ema"``.

    Returns:
      A transform whose state is `ParamsAverageState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.keras.params_average(momentum=0.5, form="ema")
      >>> p = jnp.zeros(2)
      >>> u, s = tx.update(jnp.full(2, 2.0), tx.init(p), p)
      >>> tx.update(jnp.full(2, 2.0), s, p + u)[1].average  # 0.5 * 2 + 0.5 * 4
      Array([3., 3.], dtype=float32)

    References:
      Polyak and Juditsky, 1992; ``torch.optim.ASGD``; Keras ``Optimizer(use_ema=True)``.
    """

    t0: Any = hyper(default=1e6)
    momentum: Any = hyper(default=0.99, rule=_checks.decay)
    overwrite_every: int | None = static(default=None)
    form: str = static(default="asgd")

    def __post_init__(self) -> None:
        if self.form not in ("asgd", "ema"):
            raise InputError("params_average", f"form must be 'asgd' or 'ema', got {self.form!r}")
        if self.overwrite_every is not None and (
            not isinstance(self.overwrite_every, int) or self.overwrite_every < 1
        ):
            raise InputError(
                "params_average",
                f"overwrite_every must be an integer >= 1 or None, got {self.overwrite_every!r}",
            )
        super().__post_init__()

    def init(self, params: Params) -> ParamsAverageState:
        return ParamsAverageState(count=zero_count(), average=jax.tree.map(jnp.array, params))

    def _update(self, updates: Updates, state: ParamsAverageState, params: Params | None, ctx: Context):
        del ctx
        require_params("params_average", params, updates)
        new_params = jax.tree.map(lambda p, u: p + u, params, updates)
        if self.form == "asgd":
            mu = 1.0 / jnp.maximum(1.0, state.count.astype(jnp.float32) - jnp.asarray(self.t0, jnp.float32))
            average = jax.tree.map(
                lambda a, w: jnp.where(mu == 1.0, w, a + (w - a) * _tree.to(mu, a.dtype)),
                state.average,
                new_params,
            )
        else:
            m = jnp.where(state.count == 0, 0.0, jnp.asarray(self.momentum, jnp.float32))

            def ema(a: jax.Array, w: jax.Array) -> jax.Array:
                # Keras's eager ops round each product; keep XLA from fusing them.
                m_a = _tree.to(m, a.dtype)
                return rounded(m_a * a, state.count) + rounded((1 - m_a) * w, state.count)

            average = jax.tree.map(ema, state.average, new_params)
        count = safe_increment(state.count)
        if self.overwrite_every is not None:
            overwrite = count % self.overwrite_every == 0
            updates = jax.tree.map(lambda u, a, p: jnp.where(overwrite, a - p, u), updates, average, params)
        return updates, ParamsAverageState(count=count, average=average)


class RpropStepsState(NamedTuple):
    """State of `rprop_steps`: each coordinate's step size and its previous gradient
    (zero where the sign flipped)."""

    step_sizes: Updates
    prev: Updates


@pytree_dataclass
class rprop_steps(Transform):
    r"""PyTorch's Rprop: ``sign(g) * step``, each coordinate's step adapted by its sign.

    .. math:: s_t = \mathrm{clip}(s_{t-1} \cdot f_t, s_{min}, s_{max}), \quad
              f_t = \eta_+ \ (g_t g_{t-1} > 0),\ \eta_- \ (< 0),\ 1 \ (= 0)

    and the output is :math:`\mathrm{sign}(g_t)\, s_t`, 0 where the sign flipped (that
    gradient is then forgotten: :math:`g_t` is stored as 0). Chain a ``scale(-1)`` after
    it to descend. optax's ``scale_by_rprop`` (and `gradtx.rprop`, which matches it)
    outputs each step one step late, so the two differ.

    Args:
      learning_rate: the initial step size, clipped into ``[min_step_size, max_step_size]``.
      eta_minus: the shrink factor, in (0, 1).
      eta_plus: the growth factor, > 1.
      min_step_size: the smallest step.
      max_step_size: the largest step.

    Returns:
      A transform whose state is `RpropStepsState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.torch.rprop_steps(0.1)
      >>> u, s = tx.update(jnp.array([3.0, -3.0]), tx.init(jnp.zeros(2)))
      >>> tx.update(jnp.array([3.0, 3.0]), s)[0]  # grown; flipped (skipped)
      Array([0.12, 0.  ], dtype=float32)

    References:
      Riedmiller and Braun, 1993; ``torch.optim.Rprop``.
    """

    learning_rate: Any = hyper(default=1e-2, rule=_checks.rate)
    eta_minus: Any = hyper(default=0.5)
    eta_plus: Any = hyper(default=1.2)
    min_step_size: Any = hyper(default=1e-6)
    max_step_size: Any = hyper(default=50.0)

    def init(self, params: Params) -> RpropStepsState:
        return RpropStepsState(
            step_sizes=_tree.full_like(params, self.at("learning_rate", None)), prev=_tree.zeros_like(params)
        )

    def _update(self, updates: Updates, state: RpropStepsState, params: Params | None, ctx: Context):
        del params, ctx

        def one(g: jax.Array, prev: jax.Array, size: jax.Array):
            dtype = size.dtype
            s = g * prev
            factor = jnp.where(
                s > 0,
                _tree.cast(self.eta_plus, dtype),
                jnp.where(s < 0, _tree.cast(self.eta_minus, dtype), jnp.ones([], dtype)),
            )
            size = jnp.clip(
                size * factor, _tree.cast(self.min_step_size, dtype), _tree.cast(self.max_step_size, dtype)
            )
            g = jnp.where(s < 0, jnp.zeros_like(g), g)
            return jnp.sign(g) * size, size, g

        results = jax.tree.map(one, updates, state.prev, state.step_sizes)
        out, sizes, prev = _tree.unzip(updates, results, 3)
        return out, RpropStepsState(step_sizes=sizes, prev=prev)
