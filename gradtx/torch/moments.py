"""The moments PyTorch's optimizers compute and optax's do not, one block each.

PyTorch's dampened momentum buffer (`dampened_trace`, which starts at the first
gradient), its Adam step with AMSGrad taking the maximum of the raw second moment
(`adam_moments`), its RAdam (`rectified_rms`: eps added before the bias correction),
Dozat's NAdam with the momentum schedule (`nadam_moments`, PyTorch's and Keras's) and
PyTorch's Adafactor (`factored_relative_rms`). The presets of `gradtx.torch` are chains
of these and the shared blocks.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

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
from gradtx.packed import repacked, unpacked
from gradtx.torch.numerics import exact_correction, rectification_length, rounded


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

    lr: Any = hyper(default=1e-2, rule=_checks.rate)
    beta2_decay: Any = hyper(default=-0.8)
    eps1: Any = hyper(default=None)
    eps2: Any = hyper(default=1e-3)
    d: Any = hyper(default=1.0, rule=_checks.at_least_one)
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
        if any(jnp.iscomplexobj(p) for p in jax.tree.leaves(plain)):
            raise InputError(
                "factored_relative_rms",
                "PyTorch's Adafactor does not support complex parameters (torch raises too): its "
                "row and column statistics have no complex form. Optimize complex parameters "
                "with another preset (gradtx.torch.Adam, ... see them as pairs of reals), or "
                "split them with gradtx.partition.",
            )
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
