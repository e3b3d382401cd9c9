"""Averages of past gradients: heavy-ball `trace`, `ema`, Adam's `momentum`, and
`scale_by_bias_correction` on its own.

`momentum` and `ema` compute the same moving average; `momentum` also publishes its
input as the ``gradient`` slot of the chain's channel (`gradtx.channel`) for the
statistics blocks after it (`scale_by_rms`, `scale_by_rss`, ...), which is what makes
``chain(momentum, scale_by_rms, lr)`` Adam.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._quantized import decoded, storage
from gradtx.base import Context, Params, Transform, Updates, safe_increment, zero_count
from gradtx.data import hyper, pytree_dataclass, static


class TraceState(NamedTuple):
    """State of `trace`: the step count and the decayed sum of past updates."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    trace: Updates


@pytree_dataclass
class trace(Transform):
    r"""Heavy-ball momentum: the decayed sum of past updates.

    .. math:: v_t = g_t + \text{decay} \cdot v_{t-1}, \qquad
              u_t = v_t \ \text{(or } g_t + \text{decay} \cdot v_t \text{ if nesterov)}

    This is the momentum of ``torch.optim.SGD`` (without dampening) and of
    `gradtx.sgd`; unlike `momentum`, the gradient is not scaled by ``1 - decay``.

    Args:
      decay: the momentum coefficient, in [0, 1).
      nesterov: use Nesterov's look-ahead form.
      accumulator_dtype: dtype of the trace (default: the parameters'), or ``"8bit"``,
        ``"4bit"``, `gradtx.quantized` (block-wise quantized, signed).

    Returns:
      A transform whose state is `TraceState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.trace(0.9)
      >>> u, s = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
      >>> u, s = tx.update(jnp.ones(2), s)
      >>> u  # 1 + 0.9 * 1
      Array([1.9, 1.9], dtype=float32)

    References:
      Polyak, 1964; ``optax.trace`` (same numbers).
    """

    elementwise = True

    decay: Any = hyper(rule=_checks.decay)
    nesterov: bool = static(default=False, rule=_checks.flag)
    accumulator_dtype: Any = static(default=None, rule=_checks.state_dtype)

    def init(self, params: Params) -> TraceState:
        trace = _tree.zeros_like(params, storage(self.accumulator_dtype, signed=True))
        return TraceState(count=zero_count(), trace=trace)

    def _update(self, updates: Updates, state: TraceState, params: Params | None, ctx: Context):
        del params, ctx
        decay = self.at("decay", state.count)

        def step(g: jax.Array, t: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(g.dtype, t.dtype)
            return _tree.to(g, dtype) + _tree.cast(decay, dtype) * _tree.to(t, dtype)

        new_trace = jax.tree.map(step, updates, state.trace)
        out = jax.tree.map(step, updates, new_trace) if self.nesterov else new_trace
        new_state = TraceState(
            count=safe_increment(state.count), trace=_tree.cast_like(new_trace, state.trace)
        )
        return _tree.cast_like(out, updates), new_state


class EmaState(NamedTuple):
    """State of `ema`: the step count and the (undebiased) moving average."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    ema: Updates


@pytree_dataclass
class ema(Transform):
    r"""Exponential moving average of the updates, optionally bias-corrected.

    .. math:: e_t = (1 - \text{decay})\, g_t + \text{decay}\, e_{t-1}, \qquad
              u_t = e_t / (1 - \text{decay}^t) \ \text{(if debias)}

    The exponentially weighted average of the :doc:`study notes </study_notes>`,
    ``V_t = beta*V_{t-1} + (1-beta)*theta_t``, with its bias correction. Its output is
    what later transforms see, so ``chain(ema(b1), scale_by_rms(b2))`` is *not* Adam;
    use `momentum` for that.

    Args:
      decay: the averaging coefficient, in [0, 1).
      debias: divide by ``1 - decay**t`` (t counts from 1).
      accumulator_dtype: dtype of the average (default: the parameters'), or ``"8bit"``,
        ``"4bit"``, `gradtx.quantized` (block-wise quantized, signed).

    Returns:
      A transform whose state is `EmaState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.ema(0.5)
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]  # debiased: g at step 1
      Array([3., 3.], dtype=float32)

    References:
      ``optax.ema`` (same numbers).
    """

    elementwise = True

    decay: Any = hyper(complement=True, rule=_checks.decay)
    debias: bool = static(default=True, rule=_checks.flag)
    accumulator_dtype: Any = static(default=None, rule=_checks.state_dtype)

    def init(self, params: Params) -> EmaState:
        return EmaState(
            count=zero_count(), ema=_tree.zeros_like(params, storage(self.accumulator_dtype, signed=True))
        )

    def _update(self, updates: Updates, state: EmaState, params: Params | None, ctx: Context):
        del params, ctx
        decay = self.at("decay", state.count)
        one_minus = self.one_minus_at("decay", state.count)
        new_ema = jax.tree.map(lambda g, e: _tree.ema_step(g, e, decay, one_minus, 1), updates, state.ema)
        count = safe_increment(state.count)
        out = _tree.debias(new_ema, decay, count) if self.debias else new_ema
        return _tree.cast_like(out, updates), EmaState(count=count, ema=_tree.cast_like(new_ema, state.ema))


class MomentumState(NamedTuple):
    """State of `momentum`: the step count and the first moment ``mu`` (not debiased)."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    mu: Updates

    def __getattr__(self, name: str) -> Any:
        # optax code reads Adam's state[0].nu; gradtx keeps nu in the next block
        if name in ("nu", "nu_max"):
            raise AttributeError(
                f"MomentumState has no {name!r}: gradtx keeps the second moment in the "
                f"scale_by_rms block after momentum (state[1].{name} for gradtx.adam). "
                "gradtx.ScaleByAdamState.of(state) gives optax's layout (count, mu, nu); "
                f"gradtx.tree_utils.tree_get(state, {name!r}) finds it wherever it is."
            )
        raise AttributeError(f"'MomentumState' object has no attribute {name!r}")


@pytree_dataclass
class momentum(Transform):
    r"""Adam's first moment: a bias-corrected moving average of the gradient.

    .. math:: m_t = (1 - b_1)\, g_t + b_1 m_{t-1}, \qquad
              u_t = \hat m_t = m_t / (1 - b_1^t)

    With ``nesterov=True`` the output is Dozat's look-ahead
    ``b1 * m_t / (1 - b1**(t+1)) + (1 - b1) * g_t / (1 - b1**t)`` (NAdam).

    It publishes three slots of the chain's channel (`gradtx.channel`) for the blocks
    after it: ``gradient`` (its input ``g_t``), ``first_moment`` (``m_t``) and
    ``previous_first_moment`` (``m_{t-1}``). The statistics blocks (`scale_by_rms`,
    `scale_by_rss`, `scale_by_stddev`, `scale_by_infinity_norm`, ...) compute their
    second moment from ``gradient``, not from ``m``. That is the whole difference
    between Adam, ``chain(momentum(b1), scale_by_rms(b2, ...), lr)``, and the naive
    ``chain(ema(b1), scale_by_rms(b2, ...), lr)``.

    Args:
      b1: the averaging coefficient, in [0, 1).
      debias: divide by ``1 - b1**t`` (t counts from 1).
      nesterov: output Dozat's look-ahead average (implies debiasing).
      mu_dtype: dtype of the stored average (default: the parameters'); the update is
        computed before rounding to it. ``"8bit"``, ``"4bit"`` or a `gradtx.quantized`
        store it block-wise quantized.
      initial_value: the value ``m_0`` the average starts from (0). A property of any
        moving average, as Adagrad's initial accumulator is; optax's Yogi starts its
        first moment from 1e-6 (`scale_by_yogi`).

    Returns:
      A transform whose state is `MomentumState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.momentum(0.5)
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]  # m_hat_1 = g_1
      Array([3., 3.], dtype=float32)

    In float32, ``1 - b1`` and ``1 - b1**1`` round differently unless b1 is a power of
    two fraction (0.5, 0.75, ...), so with b1 = 0.9, ``m_hat_1`` is ``g_1`` to about 2e-7
    relative, exactly as in optax.

    References:
      Kingma and Ba, 2015, Adam (algorithm 1, lines for m); Dozat, 2016, NAdam.
      ``optax.scale_by_adam`` computes the same ``mu`` and ``mu_hat``.
    """

    elementwise = True

    b1: Any = hyper(default=0.9, complement=True, rule=_checks.beta)
    debias: bool = static(default=True, kw_only=True, rule=_checks.flag)
    nesterov: bool = static(default=False, kw_only=True, rule=_checks.flag)
    mu_dtype: Any = static(default=None, kw_only=True, rule=_checks.state_dtype)
    initial_value: float = static(default=0.0, kw_only=True)

    slots_published = ("gradient", "first_moment", "previous_first_moment")

    def init(self, params: Params) -> MomentumState:
        dtype = storage(self.mu_dtype, signed=True)
        if self.initial_value == 0:
            return MomentumState(count=zero_count(), mu=_tree.zeros_like(params, dtype))
        return MomentumState(count=zero_count(), mu=_tree.full_like(params, self.initial_value, dtype))

    def _update(self, updates: Updates, state: MomentumState, params: Params | None, ctx: Context):
        del params
        b1 = self.at("b1", state.count)
        one_minus = self.one_minus_at("b1", state.count)
        mu = jax.tree.map(lambda g, m: _tree.ema_step(g, m, b1, one_minus, 1), updates, state.mu)
        ctx.publish(self, gradient=updates, first_moment=mu, previous_first_moment=decoded(state.mu))
        count = safe_increment(state.count)
        if self.nesterov:
            look_ahead = _tree.debias(mu, b1, safe_increment(count))
            current = _tree.debias(updates, b1, count)
            out = jax.tree.map(
                lambda m, g: (
                    _tree.cast(b1, m.dtype) * m + _tree.cast(one_minus, m.dtype) * _tree.to(g, m.dtype)
                ),
                look_ahead,
                current,
            )
        elif self.debias:
            out = _tree.debias(mu, b1, count)
        else:
            out = mu
        return _tree.cast_like(out, updates), MomentumState(count=count, mu=_tree.cast_like(mu, state.mu))


def bias_correction(moment: Any, decay: Any, count: Any) -> Any:
    r"""``moment / (1 - decay**count)`` for every leaf: optax's ``bias_correction``.

    The tree function optax exports under this name (the correction is computed in
    float32 or wider, the division in each leaf's dtype). The transform that applies
    the same correction inside a chain is `scale_by_bias_correction`.

    Args:
      moment: a pytree of arrays, a moving average that started at zero.
      decay: the average's coefficient, in [0, 1).
      count: the number of updates the average has seen, from 1.

    Returns:
      A pytree like ``moment``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.bias_correction({"m": jnp.ones(2)}, 0.5, jnp.asarray(2))  # 1 / (1 - 0.25)
      {'m': Array([1.3333334, 1.3333334], dtype=float32)}

    References:
      Kingma and Ba, 2015, section 3. ``optax.bias_correction`` (same numbers).
    """
    return _bias_correction(moment, decay, count)


@functools.partial(jax.jit, inline=True)
def _bias_correction(moment: Any, decay: Any, count: Any) -> Any:
    # optax's expression, jitted as optax jits it: the same rounding of decay**count.
    correction = 1 - decay**count
    return jax.tree.map(lambda m: m / correction.astype(m.dtype), moment)


class BiasCorrectionState(NamedTuple):
    """State of `scale_by_bias_correction`: the step count t."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]


@pytree_dataclass
class scale_by_bias_correction(Transform):
    r"""Divides the updates by ``(1 - decay**t)**power``, t counting from 1.

    The bias correction of a moving average that started at zero, on its own:
    ``chain(ema(decay, debias=False), scale_by_bias_correction(decay))`` equals ``ema(decay)``.
    ``power=-0.5`` multiplies by ``sqrt(1 - decay**t)``, as in Adam's step-size form
    (``adam(..., debias_step_size=True)``).

    Args:
      decay: the coefficient of the average being corrected, in [0, 1).
      power: the exponent of the correction.

    Returns:
      A transform whose state is `BiasCorrectionState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_bias_correction(0.5)
      >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0]  # 1 / (1 - 0.5)
      Array([2., 2.], dtype=float32)

    References:
      Kingma and Ba, 2015, section 3.
    """

    elementwise = True

    decay: Any = hyper(rule=_checks.decay)
    power: float = static(default=1.0)

    def init(self, params: Params) -> BiasCorrectionState:
        del params
        return BiasCorrectionState(count=zero_count())

    def _update(self, updates: Updates, state: BiasCorrectionState, params: Params | None, ctx: Context):
        del params, ctx
        decay = self.at("decay", state.count)
        count = safe_increment(state.count)
        if self.power == 1:
            return _tree.debias(updates, decay, count), BiasCorrectionState(count=count)
        c = _tree.correction(decay, count)
        factor = c ** jnp.asarray(-self.power, dtype=c.dtype)
        out = jax.tree.map(lambda u: u * _tree.to(factor, u.dtype), updates)
        return out, BiasCorrectionState(count=count)
