"""Blocks only Keras's optimizers compute: per-variable norm clipping (`clip_by_norm`),
FTRL (`ftrl`), Adamax's scaling by the decaying maximum (`max_abs_scaling`) and weight
decay subtracted before the step (`subtract_decayed_weights`).

`gradtx.keras` exports them; its presets are chains of these and the shared blocks.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx.base import (
    Context,
    EmptyState,
    Params,
    Transform,
    Updates,
    require_params,
    safe_increment,
    zero_count,
)
from gradtx.data import hyper, pytree_dataclass
from gradtx.packed import map_leaves
from gradtx.torch.parameters import multiply_weights


@pytree_dataclass
class clip_by_norm(Transform):
    r"""Keras's ``clipnorm``: each leaf scaled to a norm of at most ``clipnorm``, separately.

    .. math:: g \leftarrow g \cdot c / \max(\lVert g \rVert_2, c)

    Not the global norm (that is Keras's ``global_clipnorm``, `gradtx.clip_by_global_norm`).

    Args:
      clipnorm: the largest norm of each leaf, > 0.

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.keras.clip_by_norm(1.0)
      >>> tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))[0]
      Array([0.6, 0.8], dtype=float32)

    References:
      ``keras.optimizers.Optimizer(clipnorm=...)``.
    """

    clipnorm: Any = hyper()

    def init(self, params: Params) -> EmptyState:
        del params
        return EmptyState()

    def _update(self, updates: Updates, state: EmptyState, params: Params | None, ctx: Context):
        del params, ctx

        def one(g: jax.Array) -> jax.Array:
            c = _tree.cast(self.clipnorm, g.dtype)
            norm = jnp.sqrt(jnp.sum(g * g))
            return g * c / jnp.maximum(norm, c)

        return map_leaves(one, updates), state  # each original leaf, also when packed


class FtrlState(NamedTuple):
    """State of `ftrl`: the step count, the accumulated squared gradients and the linear term."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    accumulator: Updates
    linear: Updates


@pytree_dataclass
class ftrl(Transform):
    r"""FTRL-Proximal (Keras's ``Ftrl``): the parameters are *set* from the linear term.

    .. math:: n_t = n_{t-1} + g_t^2, \quad
              z_t = z_{t-1} + \tilde g_t - \frac{n_t^{-p} - n_{t-1}^{-p}}{\eta} w, \quad
              w \leftarrow \frac{\mathrm{clip}(z_t, -\ell_1, \ell_1) - z_t}
              {n_t^{-p} / \eta + 2 \ell_2'}

    with :math:`\tilde g = g + 2 \ell_{2s} w` (shrinkage), :math:`p` the
    ``learning_rate_power`` (-0.5) and :math:`\ell_2' = \ell_2 + \beta / (2\eta)`. The
    output is the new parameters minus the old. The learning rate is inside.

    Args:
      learning_rate: :math:`\eta` (a number or a schedule).
      learning_rate_power: :math:`p`, <= 0.
      initial_accumulator_value: :math:`n_0`, >= 0.
      l1_regularization_strength: :math:`\ell_1`, >= 0.
      l2_regularization_strength: :math:`\ell_2`, >= 0.
      l2_shrinkage_regularization_strength: :math:`\ell_{2s}`, >= 0.
      beta: :math:`\beta`, >= 0.

    Returns:
      A transform whose state is `FtrlState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.keras.ftrl(1.0, initial_accumulator_value=0.0)
      >>> p = jnp.zeros(2)
      >>> tx.update(jnp.full(2, 2.0), tx.init(p), p)[0]  # -z / sqrt(n) = -2 / 2
      Array([-1., -1.], dtype=float32)

    References:
      McMahan et al., 2013; ``keras.optimizers.Ftrl``.
    """

    learning_rate: Any = hyper(default=1e-3, rule=_checks.rate)
    learning_rate_power: Any = hyper(default=-0.5)
    initial_accumulator_value: Any = hyper(default=0.1, rule=_checks.nonnegative)
    l1_regularization_strength: Any = hyper(default=0.0)
    l2_regularization_strength: Any = hyper(default=0.0)
    l2_shrinkage_regularization_strength: Any = hyper(default=0.0)
    beta: Any = hyper(default=0.0)

    def init(self, params: Params) -> FtrlState:
        return FtrlState(
            count=zero_count(),
            accumulator=_tree.full_like(params, self.initial_accumulator_value),
            linear=_tree.zeros_like(params),
        )

    def _update(self, updates: Updates, state: FtrlState, params: Params | None, ctx: Context):
        del ctx
        require_params("ftrl", params, updates)
        # Read once (a schedule is evaluated once per step, not once per leaf).
        lr_t, power, beta, l1_t, l2_t, shrink_t = (
            self.at(name, state.count)
            for name in (
                "learning_rate",
                "learning_rate_power",
                "beta",
                "l1_regularization_strength",
                "l2_regularization_strength",
                "l2_shrinkage_regularization_strength",
            )
        )

        def one(g: jax.Array, w: jax.Array, n: jax.Array, z: jax.Array):
            lr = _tree.cast(lr_t, g.dtype)
            l2 = _tree.cast(l2_t, g.dtype) + _tree.cast(beta, g.dtype) / (2.0 * lr)
            l1 = _tree.cast(l1_t, g.dtype)
            shrink = _tree.cast(shrink_t, g.dtype)
            p = _tree.cast(power, g.dtype)
            g_used = g + 2 * shrink * w
            new_n = n + g * g
            z = z + (g_used - (new_n ** (-p) - n ** (-p)) / lr * w)
            quadratic = new_n ** (-p) / lr + 2 * l2
            new_w = (jnp.clip(z, -l1, l1) - z) / quadratic
            return new_w - w, new_n, z

        results = jax.tree.map(one, updates, params, state.accumulator, state.linear)
        out, n, z = _tree.unzip(updates, results, 3)
        return out, FtrlState(count=safe_increment(state.count), accumulator=n, linear=z)


class MaxAbsScalingState(NamedTuple):
    """State of `max_abs_scaling`: the step count and the decayed maximum of ``|g|``."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    nu: Updates


@pytree_dataclass
class max_abs_scaling(Transform):
    r"""Keras's Adamax scaling: eps added *outside* the maximum.

    .. math:: u_t = \max(b_2 u_{t-1}, |g_t|), \qquad x_t / (u_t + \epsilon)

    `gradtx.scale_by_infinity_norm` (optax's and PyTorch's form) adds eps inside:
    :math:`\max(b_2 u_{t-1}, |g_t| + \epsilon)`, and stores it.

    Args:
      b2: decay of the maximum, in [0, 1).
      eps: added to the maximum.

    Returns:
      A transform whose state is `MaxAbsScalingState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.keras.max_abs_scaling(0.5, eps=1.0)
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]  # 3 / (3 + 1)
      Array([0.75, 0.75], dtype=float32)

    References:
      ``keras.optimizers.Adamax``.
    """

    b2: Any = hyper(default=0.999, rule=_checks.beta)
    eps: Any = hyper(default=1e-7, rule=_checks.nonnegative)

    slots_read = ("gradient",)

    def init(self, params: Params) -> MaxAbsScalingState:
        return MaxAbsScalingState(count=zero_count(), nu=_tree.zeros_like(params))

    def _update(self, updates: Updates, state: MaxAbsScalingState, params: Params | None, ctx: Context):
        gradient = ctx.read(self, "gradient", fallback=updates)
        b2, eps = self.at("b2", state.count), self.at("eps", state.count)
        nu = jax.tree.map(
            lambda g, n: jnp.maximum(_tree.cast(b2, n.dtype) * n, jnp.abs(g)), gradient, state.nu
        )
        out = jax.tree.map(lambda x, n: x / (n + _tree.cast(eps, n.dtype)), updates, nu)
        return out, MaxAbsScalingState(count=safe_increment(state.count), nu=nu)


@pytree_dataclass
class subtract_decayed_weights(multiply_weights):
    r"""Keras's weight decay ``w -= w * wd * lr`` before the step, as an added update.

    Returns :math:`(W - W \lambda \eta) - W + u`, the first difference rounded as
    Keras rounds it (the decayed weights are stored before the step is subtracted).
    Place it last, after the learning rate.

    Args:
      learning_rate: :math:`\eta`, a number or a schedule.
      weight_decay: :math:`\lambda`.

    Returns:
      A transform whose state is `MultiplyWeightsState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.keras.subtract_decayed_weights(0.5, 0.5)
      >>> p = jnp.full(2, 2.0)
      >>> tx.update(jnp.zeros(2), tx.init(p), p)[0]  # -2 * 0.5 * 0.5
      Array([-0.5, -0.5], dtype=float32)

    References:
      ``keras.optimizers.Optimizer(weight_decay=...)``, ``keras.optimizers.AdamW``.
    """

    def _decayed(self, p: jax.Array, lr: Any, wd: Any) -> jax.Array:
        return p - p * _tree.cast(wd, p.dtype) * _tree.cast(lr, p.dtype)
