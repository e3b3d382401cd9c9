"""Blocks that PyTorch's and Keras's optimizers compute and optax's do not.

Each is the one place where a framework's numerics leave the shared blocks: PyTorch's
dampened momentum buffer (which starts at the first gradient), its AMSGrad (the
maximum of the raw second moment, bias-corrected afterwards), its RAdam (eps added
before the bias correction, the length of the average computed to float64 accuracy),
Dozat's NAdam with the momentum schedule (PyTorch's and Keras's), PyTorch's Adafactor,
the running average of the parameters (PyTorch's ASGD, Keras's ``use_ema``), Keras's
per-variable norm clipping and its FTRL. `gradtx.torch` and `gradtx.keras` export them;
the presets are chains of these and the shared blocks.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._checks import InputError
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
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.packed import map_leaves, repacked, unpacked
from gradtx.schedules.decay import Schedule, steps_of


def _f32(x: Any, like: jax.Array) -> jax.Array:
    return jnp.asarray(x, dtype=like.dtype)


class DampenedTraceState(NamedTuple):
    """State of `dampened_trace`: the step count and the momentum buffer."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    trace: Updates


@pytree_dataclass
class dampened_trace(Transform):
    r"""PyTorch SGD's momentum buffer with dampening.

    .. math:: b_1 = g_1, \qquad b_t = \mu\, b_{t-1} + (1 - d)\, g_t, \qquad
              u_t = b_t \ \text{(or } g_t + \mu\, b_t \text{ if nesterov)}

    The buffer starts at the first gradient, undampened (``torch.optim.SGD`` creates it
    as a copy of the gradient). With ``dampening=0`` it equals `gradtx.trace`, which the
    presets then use.

    Args:
      decay: the momentum ``mu``, >= 0.
      dampening: ``d``: the gradient is scaled by ``1 - d`` from the second step on.
      nesterov: use Nesterov's look-ahead form.

    Returns:
      A transform whose state is `DampenedTraceState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.torch.dampened_trace(0.9, dampening=0.5)
      >>> u, s = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))  # b_1 = g_1
      >>> tx.update(jnp.ones(2), s)[0]  # 0.9 * 1 + 0.5 * 1
      Array([1.4, 1.4], dtype=float32)

    References:
      ``torch.optim.SGD`` (momentum, dampening, nesterov).
    """

    decay: Any = hyper(rule=_checks.decay)
    dampening: Any = hyper(default=0.0)
    nesterov: bool = static(default=False, rule=_checks.flag)

    def init(self, params: Params) -> DampenedTraceState:
        return DampenedTraceState(count=zero_count(), trace=_tree.zeros_like(params))

    def _update(self, updates: Updates, state: DampenedTraceState, params: Params | None, ctx: Context):
        del params, ctx
        decay, dampening = self.at("decay", state.count), self.at("dampening", state.count)
        first = state.count == 0

        def step(g: jax.Array, b: jax.Array) -> jax.Array:
            later = _tree.cast(decay, b.dtype) * b + (1 - _tree.cast(dampening, b.dtype)) * g
            return jnp.where(first, g, later)

        new_trace = jax.tree.map(step, updates, state.trace)
        if self.nesterov:
            out = jax.tree.map(lambda g, b: g + _tree.cast(decay, b.dtype) * b, updates, new_trace)
        else:
            out = new_trace
        return out, DampenedTraceState(count=safe_increment(state.count), trace=new_trace)


class AdamMomentsState(NamedTuple):
    """State of `adam_moments`: the step count, both moments and, with AMSGrad, the
    running maximum of the second."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    mu: Updates
    nu: Updates
    nu_max: Updates  # None unless amsgrad


@pytree_dataclass
class adam_moments(Transform):
    r"""PyTorch's Adam step: `gradtx.scale_by_adam` with PyTorch's rounding and AMSGrad.

    .. math:: m_t = b_1 m_{t-1} + (1 - b_1) g_t, \quad v_t = b_2 v_{t-1} + (1 - b_2) g_t^2,
              \quad u_t = \frac{m_t}{1 - b_1^t} \Big/ \Big(\frac{\sqrt{v_t}}{\sqrt{1 - b_2^t}}
              + \epsilon\Big)

    Two differences from the optax-named blocks, both PyTorch's: the corrections
    :math:`1 - b^t` are computed to float64 accuracy (`exact_correction`; optax raises
    the float32-rounded ``b2`` to the power t, 1.3e-5 off at t = 10 with b2 = 0.999), and
    with ``amsgrad`` the maximum is taken of the raw :math:`v_t`, then bias-corrected
    (:math:`\sqrt{\max_{s \le t} v_s} / \sqrt{1 - b_2^t}`), where optax's
    ``amsgrad`` takes the maximum of :math:`\hat v`.

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      amsgrad: PyTorch's AMSGrad.

    Returns:
      A transform whose state is `AdamMomentsState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.torch.adam_moments(0.5, 0.5, eps=0.0, amsgrad=True)
      >>> u, s = tx.update(jnp.full(2, 2.0), tx.init(jnp.zeros(2)))
      >>> tx.update(jnp.zeros(2), s)[1].nu_max  # max(0.5 * 4, 0.5 * 2) = 2
      Array([2., 2.], dtype=float32)

    References:
      Kingma and Ba, 2015; Reddi et al., 2018; ``torch.optim.Adam``.
    """

    b1: Any = hyper(default=0.9, complement=True, rule=_checks.beta)
    b2: Any = hyper(default=0.999, complement=True, rule=_checks.beta)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    amsgrad: bool = static(default=False, rule=_checks.flag)

    def init(self, params: Params) -> AdamMomentsState:
        return AdamMomentsState(
            count=zero_count(),
            mu=_tree.zeros_like(params),
            nu=_tree.zeros_like(params),
            nu_max=_tree.zeros_like(params) if self.amsgrad else None,
        )

    def _update(self, updates: Updates, state: AdamMomentsState, params: Params | None, ctx: Context):
        del params, ctx
        b1, one_minus_b1 = self.at("b1", state.count), self.one_minus_at("b1", state.count)
        b2, one_minus_b2 = self.at("b2", state.count), self.one_minus_at("b2", state.count)
        mu = jax.tree.map(lambda g, m: _tree.ema_step(g, m, b1, one_minus_b1, 1), updates, state.mu)
        nu = jax.tree.map(lambda g, n: _tree.ema_step(g, n, b2, one_minus_b2, 2), updates, state.nu)
        nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu) if self.amsgrad else None
        count = safe_increment(state.count)
        c1 = exact_correction(one_minus_b1, count)
        root_c2 = jnp.sqrt(exact_correction(one_minus_b2, count))
        eps = self.at("eps", state.count)

        def one(m: jax.Array, n: jax.Array) -> jax.Array:
            denom = jnp.sqrt(n) / _tree.to(root_c2, n.dtype) + _tree.cast(eps, n.dtype)
            return (m / _tree.to(c1, m.dtype)) / denom

        out = jax.tree.map(one, mu, nu_max if self.amsgrad else nu)
        return out, AdamMomentsState(count=count, mu=mu, nu=nu, nu_max=nu_max)


_SAME_WIDTH_INT = {1: jnp.int8, 2: jnp.int16, 4: jnp.int32, 8: jnp.int64}


def rounded(x: jax.Array, count: jax.Array) -> jax.Array:
    """``x``, rounded to its dtype before whatever uses it next.

    XLA's CPU and GPU compilers contract ``x * y + z`` into one fused multiply-add,
    which rounds once; PyTorch's in-place ``p.mul_(f)`` then ``p.add_(u)`` rounds twice.
    A round trip through the integers of the same width, adding a zero the compiler
    cannot prove (``min(count, 0)`` of the step count), makes the product a stored
    value, so the next addition rounds again, as PyTorch's does.
    """
    ints = _SAME_WIDTH_INT[x.dtype.itemsize]
    bits = jax.lax.bitcast_convert_type(x, ints) + jnp.minimum(count, 0).astype(ints)
    return jax.lax.bitcast_convert_type(bits, x.dtype)


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

    learning_rate: Any = hyper(rule=_checks.nonnegative)
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


def _g(x: jax.Array) -> jax.Array:
    """``1/x - 1/expm1(x)`` for x > 0 without cancellation (1/2 - x/12 + ... near 0)."""
    series = 0.5 - x / 12 + x**3 / 720 - x**5 / 30240
    safe = jnp.maximum(x, 0.5)
    return jnp.where(x < 0.5, series, 1 / safe - 1 / jnp.expm1(safe))


def rectification_length(one_minus_b2: Any, t: jax.Array) -> jax.Array:
    r"""RAdam's :math:`\rho_t = \rho_\infty - 2 t b_2^t / (1 - b_2^t)`, accurate in float32.

    The direct form subtracts two numbers near :math:`\rho_\infty` (1999 for
    b2 = 0.999), losing about 2e-4 in float32, which changes the rectification by up to
    5e-5 relative at t = 6. With :math:`l = -\log b_2` (from ``1 - b2``, given
    precisely) and :math:`g(x) = 1/x - 1/(e^x - 1)`,
    :math:`\rho_t = 1 - 2 g(l) + 2 t\, g(t l)`, which has no cancellation (PyTorch
    computes it in float64).

    Args:
      one_minus_b2: ``1 - b2`` (a Python number, or an array).
      t: the step, from 1, as a float array.

    Returns:
      :math:`\rho_t`, shaped like ``t``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> round(float(gradtx.torch.rectification_length(0.001, jnp.asarray(6.0))), 5)
      5.99416

    References:
      Liu et al., 2020, RAdam (eq. 6 and algorithm 2); ``torch.optim.RAdam``.
    """
    rate = -jnp.log1p(-jnp.asarray(one_minus_b2, dtype=t.dtype))  # l = -log(b2)
    return 1 - 2 * _g(rate) + 2 * t * _g(t * rate)


def exact_correction(one_minus_decay: Any, count: jax.Array) -> jax.Array:
    """``1 - decay**t`` to float64 accuracy in float32: ``-expm1(t * log1p(-(1 - decay)))``.

    optax (and the shared blocks) raise the float32-rounded decay to the power ``t``:
    0.999 is stored as 0.99900001, which puts ``1 - 0.999**10`` off by 1.3e-5 relative.
    PyTorch computes it in Python floats; this matches it to about 2e-7.

    Args:
      one_minus_decay: ``1 - decay``, given precisely (a Python number or an array).
      count: the step t, from 1 (an integer array).

    Returns:
      ``1 - decay**t`` as a float32 (or wider) scalar.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> float(gradtx.torch.exact_correction(0.5, jnp.asarray(2)))  # 1 - 0.5**2
      0.75

    References:
      ``torch.optim.Adam``'s ``bias_correction1``, ``bias_correction2``.
    """
    t = count.astype(_tree.float_dtype())
    return -jnp.expm1(t * jnp.log1p(-jnp.asarray(one_minus_decay, dtype=t.dtype)))


class RectifiedRmsState(NamedTuple):
    """State of `rectified_rms`: the step count and the second moment (not debiased)."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    nu: Updates


@pytree_dataclass
class rectified_rms(Transform):
    r"""PyTorch RAdam's rectified scaling: eps added before the bias correction.

    .. math:: u_t = r_t \sqrt{1 - b_2^t}\; x_t / (\sqrt{\nu_t} + \epsilon)
              \ \text{if}\ \rho_t > 5, \quad\text{else}\ u_t = x_t

    with :math:`\rho_t, r_t` as in `gradtx.scale_by_rectified_rms` (which adds eps to
    :math:`\sqrt{\hat\nu_t}` and uses the adaptive rate from :math:`\rho_t \ge 5`).
    :math:`\rho_t` is computed by `rectification_length`, as accurate as PyTorch's
    float64.

    Args:
      b2: decay of the second moment, in [0, 1).
      eps: added to :math:`\sqrt{\nu_t}`.

    Returns:
      A transform whose state is `RectifiedRmsState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.torch.rectified_rms()
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]  # rho_1 = 1: unchanged
      Array([3., 3.], dtype=float32)

    References:
      Liu et al., 2020; ``torch.optim.RAdam``.
    """

    b2: Any = hyper(default=0.999, complement=True, rule=_checks.beta)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)

    slots_read = ("gradient",)

    def init(self, params: Params) -> RectifiedRmsState:
        return RectifiedRmsState(count=zero_count(), nu=_tree.zeros_like(params))

    def _update(self, updates: Updates, state: RectifiedRmsState, params: Params | None, ctx: Context):
        del params
        gradient = ctx.read(self, "gradient", fallback=updates)
        b2, one_minus = self.at("b2", state.count), self.one_minus_at("b2", state.count)
        nu = jax.tree.map(lambda g, n: _tree.ema_step(g, n, b2, one_minus, 2), gradient, state.nu)
        count = safe_increment(state.count)
        t = count.astype(_tree.float_dtype())
        rho_inf = 2.0 / jnp.asarray(one_minus, t.dtype) - 1.0
        rho = rectification_length(one_minus, t)
        r = jnp.sqrt((rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho))
        factor = r * jnp.sqrt(exact_correction(one_minus, count))
        eps = self.at("eps", state.count)

        def rectify(x: jax.Array, n: jax.Array) -> jax.Array:
            scaled = _tree.to(factor, x.dtype) * x / (jnp.sqrt(n) + _tree.cast(eps, n.dtype))
            return jnp.where(rho > 5.0, scaled, x)

        return jax.tree.map(rectify, updates, nu), RectifiedRmsState(count=count, nu=nu)


class NadamMomentsState(NamedTuple):
    """State of `nadam_moments`: the step count, the product of the momentum schedule
    so far, and both moments."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    mu_product: jax.Array  # shape=(), dtype=float32: prod of mu_1 .. mu_t
    mu: Updates
    nu: Updates


@pytree_dataclass
class nadam_moments(Transform):
    r"""Dozat's NAdam with the momentum schedule (PyTorch's ``NAdam``, Keras's ``Nadam``).

    .. math:: \mu_t = b_1 (1 - \tfrac12\, 0.96^{t \psi}), \quad
              m_t = b_1 m_{t-1} + (1 - b_1) g_t, \quad v_t = b_2 v_{t-1} + (1 - b_2) g_t^2

    .. math:: u_t = \Big(\frac{\mu_{t+1} m_t}{1 - \prod_{i \le t+1} \mu_i}
              + \frac{(1 - \mu_t) g_t}{1 - \prod_{i \le t} \mu_i}\Big)
              \Big/ \big(\sqrt{v_t / (1 - b_2^t)} + \epsilon\big)

    The product of the schedule is kept in float32, as both frameworks keep it.
    ``momentum_decay`` :math:`\psi` is PyTorch's (default 4e-3); Keras's ``Nadam`` is
    :math:`\psi = 1`. optax's `gradtx.nadam` has no schedule (:math:`\mu_t = b_1`).

    Args:
      b1: ``b1``, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      momentum_decay: :math:`\psi`, >= 0.
      exact_powers: compute :math:`1 - b_2^t` to float64 accuracy (PyTorch); False
        rounds ``b1`` and ``b2`` to float32 first, in the powers and in ``1 - b``
        (Keras: ``1 - 0.999`` is then 9.9998713e-4).

    Returns:
      A transform whose state is `NadamMomentsState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.torch.nadam_moments(eps=0.0)
      >>> u, _ = tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))
      >>> jnp.round(u, 6)  # 1 + mu_2 (1 - b1) / (1 - mu_1 mu_2), mu_1 = 0.450073, mu_2 = 0.450147
      Array([1.056452, 1.056452], dtype=float32)

    References:
      Dozat, 2016; ``torch.optim.NAdam``, ``keras.optimizers.Nadam``.
    """

    b1: Any = hyper(default=0.9, complement=True, rule=_checks.beta)
    b2: Any = hyper(default=0.999, complement=True, rule=_checks.beta)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    momentum_decay: Any = hyper(default=4e-3)
    exact_powers: bool = static(default=True, kw_only=True)

    _unchecked_fields: ClassVar[tuple[str, ...]] = ("mu_product",)

    def init(self, params: Params) -> NadamMomentsState:
        return NadamMomentsState(
            count=zero_count(),
            mu_product=jnp.ones([], jnp.float32),
            mu=_tree.zeros_like(params),
            nu=_tree.zeros_like(params),
        )

    def _update(self, updates: Updates, state: NadamMomentsState, params: Params | None, ctx: Context):
        del params, ctx
        b1, one_minus_b1 = self.at("b1", state.count), self.one_minus_at("b1", state.count)
        b2, one_minus_b2 = self.at("b2", state.count), self.one_minus_at("b2", state.count)
        if not self.exact_powers:  # Keras: 1 - b from b rounded to float32
            b1, b2 = jnp.asarray(b1, jnp.float32), jnp.asarray(b2, jnp.float32)
            one_minus_b1, one_minus_b2 = 1 - b1, 1 - b2
        psi = self.at("momentum_decay", state.count)
        count = safe_increment(state.count)
        t = count.astype(jnp.float32)
        b1_32 = jnp.asarray(b1, jnp.float32)
        mu_t = b1_32 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1_32 * (1.0 - 0.5 * 0.96 ** ((t + 1.0) * psi))
        product = state.mu_product * mu_t
        product_next = product * mu_next
        mu = jax.tree.map(lambda g, m: _tree.ema_step(g, m, b1, one_minus_b1, 1), updates, state.mu)
        nu = jax.tree.map(lambda g, n: _tree.ema_step(g, n, b2, one_minus_b2, 2), updates, state.nu)
        c2 = exact_correction(one_minus_b2, count) if self.exact_powers else _tree.correction(b2, count)
        eps = self.at("eps", state.count)
        grad_coef = (1.0 - mu_t) / (1.0 - product)
        mom_coef = mu_next / (1.0 - product_next)

        def one(g: jax.Array, m: jax.Array, v: jax.Array) -> jax.Array:
            denom = jnp.sqrt(v / _tree.to(c2, v.dtype)) + _tree.cast(eps, v.dtype)
            return _tree.to(grad_coef, g.dtype) * g / denom + _tree.to(mom_coef, m.dtype) * m / denom

        out = jax.tree.map(one, updates, mu, nu)
        return out, NadamMomentsState(count=count, mu_product=product, mu=mu, nu=nu)


class FactoredRelativeRmsState(NamedTuple):
    """State of `factored_relative_rms`: the step count and, per leaf, the row and
    column averages of squared gradients (matrices) or the full average (the rest)."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    row_var: Updates  # shape (..., m, 1) for a leaf of ndim >= 2, else () placeholder
    col_var: Updates  # shape (..., 1, n) for a leaf of ndim >= 2, else () placeholder
    variance: Updates  # the leaf's shape for ndim < 2, else () placeholder


@pytree_dataclass
class factored_relative_rms(Transform):
    r"""PyTorch's Adafactor: factored second moments and a relative step size.

    .. math:: \beta_{2,t} = 1 - t^{c}, \quad \rho_t = \min(\eta, 1/\sqrt t), \quad
              \alpha_t = \max(\epsilon_2, \mathrm{RMS}(W))\, \rho_t

    For a matrix (the last two axes) the row and column means of :math:`g^2` are
    averaged with weight :math:`t^c` and :math:`V = R C / \mathrm{mean}(R)` (clamped at
    :math:`\epsilon_1`); for other leaves the full average of :math:`g^2`. Then
    :math:`U = g / \sqrt{\max(V, \epsilon_1^2)}` and the output is
    :math:`-\alpha_t U / \max(1, \mathrm{RMS}(U) / d)`: the learning rate is inside, as
    in PyTorch (no `scale_by_learning_rate` after it). Differs from optax's
    `gradtx.adafactor` in the decay schedule, the relative step size and the clipping.

    Args:
      lr: :math:`\eta`, the cap of the relative step size.
      beta2_decay: :math:`c` (-0.8).
      eps1: floor of the variance estimate (None: the dtype's machine epsilon).
      eps2: floor of the parameters' RMS (1e-3).
      d: the clipping threshold of the update's RMS (1.0).
      weight_decay: decoupled, scaled by ``lr``: :math:`-\eta \lambda W` is added.

    Returns:
      A transform whose state is `FactoredRelativeRmsState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.torch.factored_relative_rms(lr=0.01)
      >>> p = jnp.ones(2)
      >>> jnp.round(tx.update(jnp.full(2, 3.0), tx.init(p), p)[0], 6)  # -max(1e-3, 1) min(0.01, 1)
      Array([-0.01, -0.01], dtype=float32)

    References:
      Shazeer and Stern, 2018; ``torch.optim.Adafactor``.
    """

    lr: Any = hyper(default=1e-2)
    beta2_decay: Any = hyper(default=-0.8)
    eps1: Any = hyper(default=None)
    eps2: Any = hyper(default=1e-3)
    d: Any = hyper(default=1.0)
    weight_decay: Any = hyper(default=0.0, rule=_checks.nonnegative)

    # Shaped by rows and columns, not like the parameters.
    _unchecked_fields: ClassVar[tuple[str, ...]] = ("row_var", "col_var", "variance")

    def init(self, params: Params) -> FactoredRelativeRmsState:
        def rows(p: jax.Array) -> jax.Array:
            return jnp.zeros((*p.shape[:-1], 1), p.dtype) if p.ndim >= 2 else jnp.zeros([], p.dtype)

        def cols(p: jax.Array) -> jax.Array:
            return (
                jnp.zeros((*p.shape[:-2], 1, p.shape[-1]), p.dtype) if p.ndim >= 2 else jnp.zeros([], p.dtype)
            )

        def full(p: jax.Array) -> jax.Array:
            return jnp.zeros_like(p) if p.ndim < 2 else jnp.zeros([], p.dtype)

        plain = unpacked(params)  # packed parameters: the statistics of the original leaves
        return FactoredRelativeRmsState(
            count=zero_count(),
            row_var=jax.tree.map(rows, plain),
            col_var=jax.tree.map(cols, plain),
            variance=jax.tree.map(full, plain),
        )

    def _update(self, updates: Updates, state: FactoredRelativeRmsState, params: Params | None, ctx: Context):
        del ctx
        require_params("factored_relative_rms", params, updates)
        count = safe_increment(state.count)
        t = count.astype(_tree.float_dtype())
        # Read once (a schedule is evaluated once per step, not once per leaf).
        lr, beta2_decay, eps1_t, eps2, d, wd = (
            self.at(name, state.count) for name in ("lr", "beta2_decay", "eps1", "eps2", "d", "weight_decay")
        )
        weight = t ** jnp.asarray(beta2_decay, t.dtype)
        rho = jnp.minimum(jnp.asarray(lr, t.dtype), 1 / jnp.sqrt(t))
        # PyTorch's p *= 1 - lr * wd, its factor rounded as PyTorch rounds it.
        f = 1 - jnp.asarray(lr, jnp.float32) * jnp.asarray(wd, jnp.float32)

        def one(g: jax.Array, p: jax.Array, r: jax.Array, c: jax.Array, v: jax.Array):
            eps1 = jnp.finfo(g.dtype).eps if eps1_t is None else jnp.asarray(eps1_t, g.dtype)
            alpha = jnp.maximum(jnp.asarray(eps2, g.dtype), jnp.sqrt(jnp.mean(p * p))) * rho
            w = _tree.to(weight, g.dtype)
            if g.ndim >= 2:
                r = r + w * (jnp.mean(g * g, axis=-1, keepdims=True) - r)
                c = c + w * (jnp.mean(g * g, axis=-2, keepdims=True) - c)
                estimate = (r @ c) / jnp.maximum(jnp.mean(r, axis=-2, keepdims=True), eps1)
            else:
                v = v + w * (g * g - v)
                estimate = v
            u = g * jax.lax.rsqrt(jnp.maximum(estimate, eps1 * eps1))
            denom = jnp.maximum(1.0, jnp.sqrt(jnp.mean(u * u)) / jnp.asarray(d, g.dtype))
            return (rounded(p * f.astype(p.dtype), state.count) - (alpha / denom) * u) - p, r, c, v

        plain = unpacked(updates)
        results = jax.tree.map(one, plain, unpacked(params), state.row_var, state.col_var, state.variance)
        out, r, c, v = _tree.unzip(plain, results, 4)
        return repacked(updates, out), FactoredRelativeRmsState(count=count, row_var=r, col_var=c, variance=v)


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


@pytree_dataclass
class asgd_learning_rate(Schedule):
    r"""PyTorch ASGD's step size: :math:`\eta_t = \eta / (1 + \lambda \eta t)^\alpha`, t from 0.

    Args:
      lr: :math:`\eta`.
      lambd: :math:`\lambda`.
      alpha: :math:`\alpha`.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.torch.asgd_learning_rate(0.5, 1.0, 1.0)(2))  # 0.5 / (1 + 1)
      0.25

    References:
      ``torch.optim.ASGD`` (its ``eta``).
    """

    lr: Any = hyper()
    lambd: Any = hyper()
    alpha: Any = hyper()

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        return self.lr / (1 + self.lambd * self.lr * t) ** self.alpha


@pytree_dataclass
class clip_grad_norm(Transform):
    r"""``torch.nn.utils.clip_grad_norm_`` as a block: scale by
    :math:`\min(1, \text{max\_norm} / (\lVert g \rVert + 10^{-6}))`.

    The norm is the ``norm_type``-norm of the leaves' norms (2: the global norm;
    ``inf``: the largest absolute value). The factor is applied at every step, also
    when it is 1, and the 1e-6 makes it slightly below 1 for a norm just under
    ``max_norm``: `gradtx.clip_by_global_norm` (optax's) leaves such gradients unchanged.

    Args:
      max_norm: the largest norm, >= 0.
      norm_type: p of the p-norm (> 0, or ``math.inf``).

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.torch.clip_grad_norm(1.0)
      >>> jnp.round(tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))[0], 6)  # / (5 + 1e-6)
      Array([0.6, 0.8], dtype=float32)

    References:
      ``torch.nn.utils.clip_grad_norm_`` (``error_if_nonfinite`` has no equivalent:
      wrap the optimizer in `gradtx.apply_if_finite` instead).
    """

    max_norm: Any = hyper(rule=_checks.nonnegative)
    norm_type: float = static(default=2.0)

    def __post_init__(self) -> None:
        if not (self.norm_type == math.inf or self.norm_type > 0):
            raise InputError("clip_grad_norm", f"norm_type must be > 0 or math.inf, got {self.norm_type!r}")
        super().__post_init__()

    def init(self, params: Params) -> EmptyState:
        del params
        return EmptyState()

    def _update(self, updates: Updates, state: EmptyState, params: Params | None, ctx: Context):
        del params, ctx
        leaves = jax.tree.leaves(updates)
        if not leaves:
            return updates, state
        p = self.norm_type
        if p == math.inf:
            norms = jnp.stack([jnp.max(jnp.abs(x)).astype(jnp.float32) for x in leaves])
            total = jnp.max(norms)
        elif p == 2:
            norms = jnp.stack([jnp.sqrt(jnp.sum(_tree.abs_sq(x).astype(jnp.float32))) for x in leaves])
            total = jnp.sqrt(jnp.sum(norms * norms))
        else:
            norms = jnp.stack([jnp.sum(jnp.abs(x).astype(jnp.float32) ** p) ** (1.0 / p) for x in leaves])
            total = jnp.sum(norms**p) ** (1.0 / p)
        # PyTorch's ``max_norm / (total + 1e-6)`` divides a number by a tensor, which it
        # computes as a reciprocal times the number: two roundings.
        coef = jnp.minimum(jnp.asarray(self.max_norm, jnp.float32) * (1 / (total + 1e-6)), 1.0)
        return jax.tree.map(lambda x: x * coef.astype(x.dtype), updates), state


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

    learning_rate: Any = hyper(default=1e-3, rule=_checks.nonnegative)
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

    learning_rate: Any = hyper(default=1e-2, rule=_checks.nonnegative)
    eta_minus: Any = hyper(default=0.5)
    eta_plus: Any = hyper(default=1.2)
    min_step_size: Any = hyper(default=1e-6)
    max_step_size: Any = hyper(default=50.0)

    def init(self, params: Params) -> RpropStepsState:
        return RpropStepsState(
            step_sizes=_tree.full_like(params, self.learning_rate), prev=_tree.zeros_like(params)
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
