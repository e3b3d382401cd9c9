"""Per-coordinate scaling by statistics of past gradients: RMS, standard deviation,
root of the sum of squares (AdaGrad), infinity norm (Adamax); and Adam's scaling as
the composition ``momentum, then RMS``.

The statistics are computed from *the gradient*: the input of the most recent
`gradtx.momentum` in the enclosing chain, or the transform's own input when no
momentum precedes it (optax's behaviour). The transform then scales its own input.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._quantized import storage
from gradtx.base import Context, Params, Transform, Updates, safe_increment, zero_count
from gradtx.blocks.momentum import momentum
from gradtx.chains import Chain, labelled
from gradtx.data import hyper, pytree_dataclass, static


class ScaleByRmsState(NamedTuple):
    """State of `scale_by_rms`: the step count and the second moment ``nu`` (not debiased)."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    nu: Updates
    nu_max: Updates  # the running maximum of nu (AMSGrad), None unless amsgrad=True


@pytree_dataclass
class scale_by_rms(Transform):
    r"""Divides the updates by the root of a moving average of squared gradients.

    .. math:: \nu_t = (1 - \text{decay})\, g_t^2 + \text{decay}\, \nu_{t-1}, \qquad
              \hat\nu_t = \nu_t / (1 - \text{decay}^t) \ \text{(if bias_correction)}

    .. math:: u_t = x_t / \sqrt{\hat\nu_t + \epsilon}  \ \text{(eps_in_sqrt)} \quad\text{or}\quad
              u_t = x_t / (\sqrt{\hat\nu_t + \epsilon_{root}} + \epsilon)

    where ``x`` is the input and ``g`` the gradient (see the module docstring). With
    ``amsgrad=True``, ``nu_hat`` is replaced by its running maximum.

    Args:
      decay: the averaging coefficient, in [0, 1).
      eps: added to the denominator.
      initial_scale: the initial value of ``nu``.
      eps_in_sqrt: add ``eps`` inside the root (True) or outside (False).
      bias_correction: divide ``nu`` by ``1 - decay**t``.
      eps_root: added inside the root (only with ``eps_in_sqrt=False``); optax's
        ``scale_by_adam`` argument of that name.
      nu_dtype: dtype of ``nu`` (default: the parameters'), or ``"8bit"``, ``"4bit"``,
        `gradtx.quantized` (block-wise quantized, unsigned).
      amsgrad: divide by the running maximum of ``nu_hat`` (Reddi et al., 2018).

    Returns:
      A transform whose state is `ScaleByRmsState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_rms(decay=0.75, eps=0.0)
      >>> tx.update(jnp.full(2, 2.0), tx.init(jnp.zeros(2)))[0]  # 2 / sqrt(0.25 * 4)
      Array([2., 2.], dtype=float32)

    References:
      Tieleman and Hinton, 2012, RMSProp. ``optax.scale_by_rms`` (same numbers; the
      eps-outside form divides instead of multiplying by a reciprocal, as
      ``optax.scale_by_adam`` does, which can differ from ``optax.scale_by_rms`` in the
      last bit).
    """

    elementwise = True

    decay: Any = hyper(default=0.9, complement=True, rule=_checks.decay)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    initial_scale: Any = hyper(default=0.0, rule=_checks.nonnegative)
    eps_in_sqrt: bool = static(default=True, rule=_checks.flag)
    bias_correction: bool = static(default=False, rule=_checks.flag)
    eps_root: Any = hyper(default=0.0, kw_only=True, rule=_checks.nonnegative)
    nu_dtype: Any = static(default=None, kw_only=True, rule=_checks.state_dtype)
    amsgrad: bool = static(default=False, kw_only=True, rule=_checks.flag)

    slots_read = ("gradient",)

    def init(self, params: Params) -> ScaleByRmsState:
        dtype = storage(self.nu_dtype, signed=False)
        nu = _tree.full_like(params, self.initial_scale, dtype)
        nu_max = _tree.zeros_like(params, dtype) if self.amsgrad else None
        return ScaleByRmsState(count=zero_count(), nu=nu, nu_max=nu_max)

    def _update(self, updates: Updates, state: ScaleByRmsState, params: Params | None, ctx: Context):
        del params
        gradient = ctx.read(self, "gradient", fallback=updates)
        decay = self.at("decay", state.count)
        one_minus = self.one_minus_at("decay", state.count)
        nu = jax.tree.map(lambda g, n: _tree.ema_step(g, n, decay, one_minus, 2), gradient, state.nu)
        count = safe_increment(state.count)
        nu_hat = _tree.debias(nu, decay, count) if self.bias_correction else nu
        nu_max = None
        if self.amsgrad:
            nu_max = jax.tree.map(lambda b, a: jnp.maximum(_tree.to(a, b.dtype), b), nu_hat, state.nu_max)
            nu_hat = nu_max
        eps, eps_root = self.at("eps", state.count), self.at("eps_root", state.count)
        out = jax.tree.map(lambda x, n: self._scale(x, n, eps, eps_root), updates, nu_hat)
        new_state = ScaleByRmsState(
            count=count,
            nu=_tree.cast_like(nu, state.nu),
            nu_max=None if nu_max is None else _tree.cast_like(nu_max, state.nu_max),
        )
        return out, new_state

    def _scale(self, x: jax.Array, n: jax.Array, eps: Any, eps_root: Any) -> jax.Array:
        if not self.eps_in_sqrt:
            return _tree.divide_by_root(x, n, eps, eps_root)
        dtype = _tree.compute_dtype(x.dtype, n.dtype)
        return (_tree.to(x, dtype) * jax.lax.rsqrt(_tree.to(n, dtype) + _tree.cast(eps, dtype))).astype(
            x.dtype
        )


class ScaleByStddevState(NamedTuple):
    """State of `scale_by_stddev`: the step count and both moments, not debiased."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    mu: Updates
    nu: Updates


@pytree_dataclass
class scale_by_stddev(Transform):
    r"""Divides the updates by a moving estimate of the gradient's standard deviation.

    .. math:: \mu_t = (1 - d)\, g_t + d\, \mu_{t-1}, \quad
              \nu_t = (1 - d)\, g_t^2 + d\, \nu_{t-1}, \quad
              u_t = x_t / \sqrt{\nu_t - \mu_t^2 + \epsilon}

    (eps outside the root with ``eps_in_sqrt=False``; ``mu`` and ``nu`` divided by
    ``1 - d**t`` with ``bias_correction``). The centered RMSProp of Graves, 2013.

    Args:
      decay: the averaging coefficient ``d``, in [0, 1).
      eps: added to the denominator.
      initial_scale: the initial value of ``nu``.
      eps_in_sqrt: add ``eps`` inside the root (True) or outside (False).
      bias_correction: divide both moments by ``1 - decay**t``.

    Returns:
      A transform whose state is `ScaleByStddevState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_stddev(decay=0.5, eps=0.0)
      >>> tx.update(jnp.full(2, 2.0), tx.init(jnp.zeros(2)))[0]  # 2 / sqrt(2 - 1)
      Array([2., 2.], dtype=float32)

    References:
      Graves, 2013, "Generating sequences with recurrent neural networks", eq. 38-45.
      ``optax.scale_by_stddev`` (same numbers).
    """

    decay: Any = hyper(default=0.9, complement=True, rule=_checks.decay)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    initial_scale: Any = hyper(default=0.0, rule=_checks.nonnegative)
    eps_in_sqrt: bool = static(default=True, rule=_checks.flag)
    bias_correction: bool = static(default=False, rule=_checks.flag)

    slots_read = ("gradient",)

    def init(self, params: Params) -> ScaleByStddevState:
        return ScaleByStddevState(
            count=zero_count(),
            mu=_tree.zeros_like(params),
            nu=_tree.full_like(params, self.initial_scale),
        )

    def _update(self, updates: Updates, state: ScaleByStddevState, params: Params | None, ctx: Context):
        del params
        gradient = ctx.read(self, "gradient", fallback=updates)
        decay, eps_value = self.at("decay", state.count), self.at("eps", state.count)
        one_minus = self.one_minus_at("decay", state.count)
        mu = jax.tree.map(lambda g, m: _tree.ema_step(g, m, decay, one_minus, 1), gradient, state.mu)
        nu = jax.tree.map(lambda g, n: _tree.ema_step(g, n, decay, one_minus, 2), gradient, state.nu)
        count = safe_increment(state.count)
        mu_hat, nu_hat = mu, nu
        if self.bias_correction:
            mu_hat = _tree.debias(mu, decay, count)
            nu_hat = _tree.debias(nu, decay, count)

        def scale_one(x: jax.Array, m: jax.Array, n: jax.Array) -> jax.Array:
            eps = _tree.cast(eps_value, n.dtype)
            xs = _tree.to(x, n.dtype)
            if self.eps_in_sqrt:
                return (jax.lax.rsqrt(n - _tree.to(_tree.abs_sq(m), n.dtype) + eps) * xs).astype(x.dtype)
            return (1 / (jnp.sqrt(n - _tree.to(_tree.abs_sq(m), n.dtype)) + eps) * xs).astype(x.dtype)

        out = jax.tree.map(scale_one, updates, mu_hat, nu_hat)
        new_state = ScaleByStddevState(
            count=count, mu=_tree.cast_like(mu, state.mu), nu=_tree.cast_like(nu, state.nu)
        )
        return out, new_state


class ScaleByRssState(NamedTuple):
    """State of `scale_by_rss`: the step count and the running sum of squared gradients."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    sum_of_squares: Updates


@pytree_dataclass
class scale_by_rss(Transform):
    r"""Divides the updates by the root of the sum of all squared gradients (AdaGrad).

    .. math:: h_t = h_{t-1} + g_t^2, \qquad
              u_t = x_t / \sqrt{h_t + \epsilon} \ \text{(eps_in_sqrt)} \quad\text{or}\quad
              u_t = x_t / (\sqrt{h_t} + \epsilon)

    and ``u = 0`` where ``h = 0``. The :doc:`study notes' </study_notes>` AdaGrad code (notes 001 and 003) is
    ``eps_in_sqrt=False, initial_accumulator_value=0.0``; their formula (003) is the
    default form with ``initial_accumulator_value=0.0``.

    Args:
      initial_accumulator_value: the initial value of ``h``, >= 0.
      eps: added inside or outside the root.
      eps_in_sqrt: add ``eps`` inside the root (True, optax's form) or outside.

    Returns:
      A transform whose state is `ScaleByRssState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_rss(initial_accumulator_value=0.0, eps=0.0)
      >>> tx.update(jnp.full(2, -3.0), tx.init(jnp.zeros(2)))[0]
      Array([-1., -1.], dtype=float32)

    References:
      Duchi et al., 2011. ``optax.scale_by_rss`` (same numbers).
    """

    initial_accumulator_value: Any = hyper(default=0.1, rule=_checks.nonnegative)
    eps: Any = hyper(default=1e-7, rule=_checks.nonnegative)
    eps_in_sqrt: bool = static(default=True, kw_only=True, rule=_checks.flag)

    slots_read = ("gradient",)

    def init(self, params: Params) -> ScaleByRssState:
        return ScaleByRssState(
            count=zero_count(), sum_of_squares=_tree.full_like(params, self.initial_accumulator_value)
        )

    def _update(self, updates: Updates, state: ScaleByRssState, params: Params | None, ctx: Context):
        del params
        gradient = ctx.read(self, "gradient", fallback=updates)
        sum_of_squares = jax.tree.map(
            lambda g, h: _tree.to(_tree.abs_sq(g), h.dtype) + h, gradient, state.sum_of_squares
        )
        eps_value = self.at("eps", state.count)

        def scale_one(x: jax.Array, h: jax.Array) -> jax.Array:
            eps = _tree.cast(eps_value, h.dtype)
            zero = jnp.zeros([], h.dtype)
            if self.eps_in_sqrt:
                return jnp.where(h > 0, jax.lax.rsqrt(h + eps), zero) * x
            return jnp.where(h > 0, x / (jnp.sqrt(h) + eps), zero)

        out = jax.tree.map(scale_one, updates, sum_of_squares)
        return out, ScaleByRssState(count=safe_increment(state.count), sum_of_squares=sum_of_squares)


class ScaleByInfinityNormState(NamedTuple):
    """State of `scale_by_infinity_norm`: the step count and the decayed maximum of ``|g|``."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    nu: Updates


@pytree_dataclass
class scale_by_infinity_norm(Transform):
    r"""Divides the updates by a decaying maximum of absolute gradients (Adamax).

    .. math:: \nu_t = \max(|g_t| + \epsilon,\ \text{decay}\cdot\nu_{t-1}), \qquad u_t = x_t / \nu_t

    Args:
      decay: the decay of the maximum, in [0, 1).
      eps: added to ``|g|``.
      nu_dtype: dtype of ``nu`` (default: the parameters'), or ``"8bit"``, ``"4bit"``,
        `gradtx.quantized` (block-wise quantized, unsigned).

    Returns:
      A transform whose state is `ScaleByInfinityNormState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_infinity_norm(eps=0.0)
      >>> tx.update(jnp.full(2, -4.0), tx.init(jnp.zeros(2)))[0]
      Array([-1., -1.], dtype=float32)

    References:
      Kingma and Ba, 2015, section 7.1. The second half of ``optax.scale_by_adamax``.
    """

    decay: Any = hyper(default=0.999, rule=_checks.decay)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    nu_dtype: Any = static(default=None, kw_only=True, rule=_checks.state_dtype)

    slots_read = ("gradient",)

    def init(self, params: Params) -> ScaleByInfinityNormState:
        nu = _tree.zeros_like(params, storage(self.nu_dtype, signed=False))
        return ScaleByInfinityNormState(count=zero_count(), nu=nu)

    def _update(self, updates: Updates, state: ScaleByInfinityNormState, params: Params | None, ctx: Context):
        del params
        gradient = ctx.read(self, "gradient", fallback=updates)

        decay, eps = self.at("decay", state.count), self.at("eps", state.count)

        def infinity_moment(g: jax.Array, n: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(g.dtype, n.dtype)
            g, n = _tree.to(g, dtype), _tree.to(n, dtype)
            return jnp.maximum(
                _tree.to(jnp.abs(g), dtype) + _tree.cast(eps, dtype), _tree.cast(decay, dtype) * n
            )

        nu = jax.tree.map(infinity_moment, gradient, state.nu)
        out = jax.tree.map(
            lambda x, n: (_tree.to(x, _tree.compute_dtype(x.dtype, n.dtype)) / n).astype(x.dtype), updates, nu
        )
        new_state = ScaleByInfinityNormState(
            count=safe_increment(state.count), nu=_tree.cast_like(nu, state.nu)
        )
        return out, new_state


@_checks.checked(
    b1=_checks.beta,
    b2=_checks.beta,
    eps=_checks.nonnegative,
    eps_root=_checks.nonnegative,
    mu_dtype=_checks.state_dtype,
    nesterov=_checks.flag,
    nu_dtype=_checks.state_dtype,
)
def scale_by_adam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> Chain:
    r"""Adam's scaling: `momentum`, then `scale_by_rms` of the same gradient.

    .. math:: \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      mu_dtype: dtype of the first moment (default: the parameters').
      nesterov: use NAdam's look-ahead first moment.
      nu_dtype: dtype of the second moment (default: the parameters'); not in optax.

    Returns:
      ``chain(momentum(b1, ...), scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True, ...))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_adam(b1=0.5, b2=0.5)
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]  # m_hat / sqrt(v_hat) = 1
      Array([1., 1.], dtype=float32)

    References:
      Kingma and Ba, 2015. ``optax.scale_by_adam`` (same numbers).
    """
    return labelled(
        "scale_by_adam",
        momentum(b1, nesterov=nesterov, mu_dtype=mu_dtype),
        scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True, eps_root=eps_root, nu_dtype=nu_dtype),
        readout_names={"scale_by_rms.decay": "b2"},
    )


@_checks.checked(
    b1=_checks.beta,
    b2=_checks.beta,
    eps=_checks.nonnegative,
    eps_root=_checks.nonnegative,
    mu_dtype=_checks.state_dtype,
    bias_correction_mu=_checks.flag,
    bias_correction_nu=_checks.flag,
    nu_dtype=_checks.state_dtype,
)
def scale_by_amsgrad(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype: Any = None,
) -> Chain:
    r"""AMSGrad's scaling: Adam's, dividing by the running maximum of ``v_hat``.

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      mu_dtype: dtype of the first moment.
      bias_correction_mu: debias the first moment (False matches the paper).
      bias_correction_nu: debias the second moment before the maximum.
      nu_dtype: dtype of the second moment and its maximum; not in optax.

    Returns:
      ``chain(momentum(b1, ...), scale_by_rms(b2, ..., amsgrad=True))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_amsgrad(b1=0.5, b2=0.5)
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]
      Array([1., 1.], dtype=float32)

    References:
      Reddi et al., 2018. ``optax.scale_by_amsgrad`` (same numbers).
    """
    return labelled(
        "scale_by_amsgrad",
        momentum(b1, debias=bias_correction_mu, mu_dtype=mu_dtype),
        scale_by_rms(
            b2,
            eps,
            eps_in_sqrt=False,
            bias_correction=bias_correction_nu,
            eps_root=eps_root,
            nu_dtype=nu_dtype,
            amsgrad=True,
        ),
        readout_names={"scale_by_rms.decay": "b2"},
    )


@_checks.checked(
    b1=_checks.beta,
    b2=_checks.beta,
    eps=_checks.nonnegative,
    mu_dtype=_checks.state_dtype,
    nu_dtype=_checks.state_dtype,
)
def scale_by_adamax(
    b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8, *, mu_dtype: Any = None, nu_dtype: Any = None
) -> Chain:
    r"""Adamax's scaling: `momentum`, then `scale_by_infinity_norm` of the same gradient.

    .. math:: \hat m_t / \max(|g_t| + \epsilon, b_2 \nu_{t-1})

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the infinity norm, in [0, 1).
      eps: added to ``|g|``.
      mu_dtype: dtype of the first moment; not in optax.
      nu_dtype: dtype of the infinity norm; not in optax.

    Returns:
      ``chain(momentum(b1), scale_by_infinity_norm(b2, eps))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_adamax(b1=0.5, eps=0.0)
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]
      Array([1., 1.], dtype=float32)

    References:
      Kingma and Ba, 2015, section 7.1. ``optax.scale_by_adamax`` (same numbers).
    """
    return labelled(
        "scale_by_adamax",
        momentum(b1, mu_dtype=mu_dtype),
        scale_by_infinity_norm(b2, eps, nu_dtype=nu_dtype),
        readout_names={"scale_by_infinity_norm.decay": "b2"},
    )
