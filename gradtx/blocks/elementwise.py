r"""Per-coordinate step rules that are not moment scalings: the sign (signSGD, Signum),
Lion's interpolated sign, Rprop's adaptive step sizes, and the optimistic gradient.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._checks import InputError
from gradtx.base import Context, Params, Stateless, Transform, Updates
from gradtx.blocks.momentum import momentum
from gradtx.chains import Chain, labelled
from gradtx.data import hyper, pytree_dataclass, static


@pytree_dataclass
class scale_by_sign(Stateless):
    r"""Replaces each update by its sign.

    .. math:: u_t = \mathrm{sign}(x_t)

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.scale_by_sign().update(jnp.asarray([-3.0, 0.0, 2.0]), gradtx.EmptyState())[0]
      Array([-1.,  0.,  1.], dtype=float32)

    References:
      Bernstein et al., 2018, signSGD. ``optax.scale_by_sign`` (same numbers).
    """

    elementwise = True

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del params, count
        return jax.tree.map(jnp.sign, updates)


class ScaleByLionState(NamedTuple):
    """optax's state of ``scale_by_lion`` (the step count and the momentum ``mu``).
    gradtx's `scale_by_lion` is a chain, whose `gradtx.MomentumState` holds the same
    ``count`` and ``mu``."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    mu: Updates


@pytree_dataclass
class interpolated_sign(Transform):
    r"""Lion's direction: the sign of an interpolation between the gradient and the
    first moment *before* this step, both read from the chain (`gradtx.channel`).

    .. math:: u_t = \mathrm{sign}\big((1 - b_1)\, g_t + b_1 m_{t-1}\big)

    ``g_t`` is the ``gradient`` slot and ``m_{t-1}`` the ``previous_first_moment`` slot
    that a `gradtx.momentum` before it publishes; its own input (that momentum's
    output) is replaced. ``mode="smooth"`` replaces the sign by
    :math:`\tanh(\beta\,\cdot)`; ``"refined"`` keeps values below 1 in magnitude as
    they are and takes the sign of the rest.

    Args:
      b1: the interpolation weight of the previous moment, in [0, 1).
      mode: ``"hard"`` (the sign), ``"smooth"`` or ``"refined"``.
      smooth_beta: the slope of ``tanh`` in ``"smooth"`` mode.

    Returns:
      A transform that keeps a step count only when ``b1`` is a schedule.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.chain(gradtx.momentum(0.99, debias=False), gradtx.interpolated_sign(0.9))
      >>> tx.update(jnp.asarray([-3.0, 2.0]), tx.init(jnp.zeros(2)))[0]  # sign(0.1 * g + 0.9 * 0)
      Array([-1.,  1.], dtype=float32)

    References:
      Chen et al., 2023, "Symbolic discovery of optimization algorithms" (program 1,
      the line of ``update``). The first half of ``optax.scale_by_lion``.
    """

    elementwise = True

    b1: Any = hyper(default=0.9, complement=True, rule=_checks.beta)
    mode: Literal["hard", "smooth", "refined"] = static(default="hard", kw_only=True)
    smooth_beta: Any = hyper(default=1.0, kw_only=True)

    slots_read = ("gradient", "previous_first_moment")

    def __post_init__(self) -> None:
        if self.mode not in ("hard", "smooth", "refined"):
            raise InputError(
                "interpolated_sign", f"mode must be 'hard', 'smooth' or 'refined', got {self.mode!r}"
            )
        super().__post_init__()

    def init(self, params: Params) -> Any:
        del params
        return self._stateless_init()

    def _update(self, updates: Updates, state: Any, params: Params | None, ctx: Context):
        del updates, params  # replaced: the direction comes from the slots
        gradient = ctx.read(self, "gradient")
        previous = ctx.read(self, "previous_first_moment")
        count = getattr(state, "count", None)
        b1, one_minus_b1 = self.at("b1", count), self.one_minus_at("b1", count)

        def direction(g: jax.Array, m: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(g.dtype, m.dtype)
            x = _tree.cast(one_minus_b1, dtype) * _tree.to(g, dtype) + _tree.cast(b1, dtype) * _tree.to(
                m, dtype
            )
            if self.mode == "smooth":
                out = jnp.tanh(_tree.cast(self.at("smooth_beta", count), dtype) * x)
            elif self.mode == "refined":
                out = jnp.where(jnp.abs(x) < 1.0, x, jnp.sign(x))
            else:
                out = jnp.sign(x)
            return out.astype(g.dtype)  # the updates' dtype: momentum returns its input's

        return jax.tree.map(direction, gradient, previous), self._stateless_next(state)


@_checks.checked(b1=_checks.beta, b2=_checks.beta, mu_dtype=_checks.state_dtype)
def scale_by_lion(
    b1: Any = 0.9,
    b2: Any = 0.99,
    mu_dtype: Any = None,
    *,
    mode: Literal["hard", "smooth", "refined"] = "hard",
    smooth_beta: float = 1.0,
) -> Chain:
    r"""Lion: the sign of an interpolation of the gradient and the momentum; the momentum
    then moves toward the gradient at its own rate.

    .. math:: u_t = \mathrm{sign}\big((1 - b_1) g_t + b_1 m_{t-1}\big), \qquad
              m_t = (1 - b_2) g_t + b_2 m_{t-1}

    A composition: `gradtx.momentum` (``b2``, not debiased) keeps ``m`` and publishes
    ``m_{t-1}`` and ``g_t`` on the chain's channel; `interpolated_sign` (``b1``) turns
    them into the direction.

    Args:
      b1: the interpolation weight of the momentum in the update, in [0, 1).
      b2: decay of the momentum, in [0, 1).
      mu_dtype: dtype of the momentum (default: the parameters').
      mode: ``"hard"`` (the sign), ``"smooth"`` or ``"refined"``.
      smooth_beta: the slope of ``tanh`` in ``"smooth"`` mode.

    Returns:
      ``chain(momentum(b2, debias=False, mu_dtype=mu_dtype), interpolated_sign(b1, ...))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_lion()
      >>> tx.update(jnp.asarray([-3.0, 2.0]), tx.init(jnp.zeros(2)))[0]
      Array([-1.,  1.], dtype=float32)

    References:
      Chen et al., 2023, "Symbolic discovery of optimization algorithms" (program 1).
      ``optax.scale_by_lion`` (same numbers; its one state is split in two here).
    """
    return labelled(
        "scale_by_lion",
        momentum(b2, debias=False, mu_dtype=mu_dtype),
        interpolated_sign(b1, mode=mode, smooth_beta=smooth_beta),
        readout_names={"momentum.b1": "b2", "interpolated_sign.b1": "b1"},
    )


class ScaleByRpropState(NamedTuple):
    """State of `scale_by_rprop`: each coordinate's step size and the previous update."""

    step_sizes: Updates
    prev_updates: Updates


@pytree_dataclass
class scale_by_rprop(Transform):
    r"""Rprop: each coordinate moves by its own step size in the direction of its
    gradient's sign; the step grows while the sign holds and shrinks when it flips.

    With :math:`s = g_t\, u_{t-1}`: the step size becomes
    :math:`\mathrm{clip}(\eta^{+}\Delta, \Delta_{min}, \Delta_{max})` where :math:`s > 0`,
    :math:`\mathrm{clip}(\eta^{-}\Delta, \dots)` where :math:`s < 0`, and stays where
    :math:`s = 0`. The new update is :math:`\Delta\, \mathrm{sign}(g_t)`, or 0 where the
    sign flipped; the output is the *previous* update where the sign did not flip, else
    0 (optax's form; the optimizer `gradtx.rprop` negates it).

    Args:
      learning_rate: the initial step size of every coordinate.
      eta_minus: the factor a step size shrinks by on a sign flip, in (0, 1).
      eta_plus: the factor it grows by otherwise, > 1.
      min_step_size: the smallest step size.
      max_step_size: the largest step size.

    Returns:
      A transform whose state is `ScaleByRpropState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_rprop(0.1)
      >>> u, s = tx.update(jnp.asarray([2.0, -3.0]), tx.init(jnp.zeros(2)))
      >>> s.prev_updates
      Array([ 0.1, -0.1], dtype=float32)

    References:
      Riedmiller and Braun, 1993. ``optax.scale_by_rprop`` (same numbers).
    """

    learning_rate: Any = hyper(rule=_checks.rate)
    eta_minus: Any = hyper(default=0.5)
    eta_plus: Any = hyper(default=1.2)
    min_step_size: Any = hyper(default=1e-6)
    max_step_size: Any = hyper(default=50.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.learning_rate is None:
            raise InputError(
                "scale_by_rprop",
                "learning_rate is the initial step size of every coordinate and must be a number >= 0, got "
                "None",
            )

    def init(self, params: Params) -> ScaleByRpropState:
        return ScaleByRpropState(
            _tree.full_like(params, self.at("learning_rate", None)), _tree.zeros_like(params)
        )

    def _update(self, updates: Updates, state: ScaleByRpropState, params: Params | None, ctx: Context):
        del params, ctx

        def one(g: jax.Array, prev: jax.Array, size: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            dtype = size.dtype
            g = _tree.to(g, dtype)
            s = g * prev
            factor = jnp.where(s > 0, _tree.cast(self.eta_plus, dtype), _tree.cast(self.eta_minus, dtype))
            grown = jnp.clip(
                size * factor,
                min=_tree.cast(self.min_step_size, dtype),
                max=_tree.cast(self.max_step_size, dtype),
            )
            new_size = jnp.where(s == 0, size, grown)
            zero = jnp.zeros_like(g)
            new_prev = jnp.where(s < 0, zero, new_size * jnp.sign(g))
            out = jnp.where(s < 0, zero, prev)
            return out, new_size, new_prev

        results = jax.tree.map(one, updates, state.prev_updates, state.step_sizes)
        out, sizes, prev = _tree.unzip(updates, results, 3)
        return _tree.cast_like(out, updates), ScaleByRpropState(step_sizes=sizes, prev_updates=prev)


class ScaleByOptimisticGradientState(NamedTuple):
    """State of `scale_by_optimistic_gradient`: whether no update was made yet, and the
    previous gradient."""

    is_initial_step: jax.Array
    previous_gradient: Updates


@pytree_dataclass
class scale_by_optimistic_gradient(Transform):
    r"""The optimistic gradient: the current gradient extrapolated by the last change.

    .. math:: u_t = (\alpha + \beta)\, g_t - \beta\, g_{t-1}, \qquad g_0 := g_1

    Args:
      alpha: the weight of the current gradient.
      beta: the weight of the change (the optimism).

    Returns:
      A transform whose state is `ScaleByOptimisticGradientState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_optimistic_gradient(1.0, 1.0)
      >>> u, s = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
      >>> tx.update(jnp.full(2, 3.0), s)[0]  # 2 * 3 - 1
      Array([5., 5.], dtype=float32)

    References:
      Mokhtari et al., 2019, optimistic gradient descent-ascent.
      ``optax.scale_by_optimistic_gradient`` (same numbers).
    """

    alpha: Any = hyper(default=1.0, rule=_checks.step_weight)
    beta: Any = hyper(default=1.0, rule=_checks.step_weight)
    _unchecked_fields = ("is_initial_step",)

    def init(self, params: Params) -> ScaleByOptimisticGradientState:
        return ScaleByOptimisticGradientState(
            is_initial_step=jnp.asarray(True), previous_gradient=_tree.zeros_like(params)
        )

    def _update(
        self, updates: Updates, state: ScaleByOptimisticGradientState, params: Params | None, ctx: Context
    ):
        del params, ctx
        alpha_t, beta_t = self.at("alpha", None), self.at("beta", None)

        def one(g: jax.Array, prev: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(g.dtype, prev.dtype)
            g_, prev = _tree.to(g, dtype), _tree.to(prev, dtype)
            prev = jnp.where(state.is_initial_step, g_, prev)
            alpha, beta = _tree.cast(alpha_t, dtype), _tree.cast(beta_t, dtype)
            return ((alpha + beta) * g_ - beta * prev).astype(g.dtype)

        out = jax.tree.map(one, updates, state.previous_gradient)
        new_state = ScaleByOptimisticGradientState(
            is_initial_step=jnp.asarray(False),
            previous_gradient=_tree.cast_like(updates, state.previous_gradient),
        )
        return out, new_state
