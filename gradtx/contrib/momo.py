r"""MoMo: momentum with a Polyak-type step size from the loss value (Schaipp et al.,
2023), in its SGD and Adam forms.

``update(grads, state, params, value=loss)``: the step size is the smaller of the
learning rate and the step that would bring a model of the loss (built from the
averaged losses, gradients and their inner products with the parameters) down to a
lower bound. The model is one number for the whole tree, so each form is one block.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._checks import InputError
from gradtx.base import Context, Params, Transform, Updates, require_params, safe_increment, zero_count
from gradtx.blocks.scaling import ScalarOrSchedule
from gradtx.contrib._common import lowest_dtype
from gradtx.data import hyper, pytree_dataclass, static


def _loss(owner: str, ctx: Context) -> Any:
    value = ctx.extra.get("value")
    if value is None:
        raise InputError(
            owner,
            "update needs the loss: call update(grads, state, params, value=loss) "
            "(jax.value_and_grad gives both).",
        )
    return value


# float64's machine epsilon, as optax's jnp.finfo(float).eps
_EPS = float(jnp.finfo(float).eps)


class MomoState(NamedTuple):
    """State of `momo`: the averaged gradient, loss and ``<g, x>``, the lower bound
    and the step count."""

    exp_avg: Updates
    barf: jax.Array  # shape=(): the averaged loss
    gamma: jax.Array  # shape=(): the averaged <g, x>
    lb: jax.Array  # shape=(): the lower bound of the loss
    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]


@pytree_dataclass
class momo(Transform):
    r"""MoMo (SGD with momentum and a model-based step).

    .. math:: \bar f_t = \beta \bar f_{t-1} + (1 - \beta) f_t, \quad
              d_t = \beta d_{t-1} + (1 - \beta) g_t, \quad
              \gamma_t = \beta \gamma_{t-1} + (1 - \beta)\langle g_t, x_t\rangle,

    .. math:: \tau_t = \min\Big(\alpha_t, \frac{[(1 + \alpha_t\lambda)(\bar f_t - f_* - \gamma_t)
              + \langle d_t, x_t\rangle]_+}{\lVert d_t\rVert^2}\Big), \quad
              u_t = -\frac{\alpha_t \lambda}{1 + \alpha_t\lambda} x_t - \tau_t d_t

    (``beta`` is 0 at the first step.) With ``adapt_lower_bound`` the bound ``f_*``
    is estimated online.

    Args:
      learning_rate: ``alpha``, the largest step (a number or a schedule).
      beta: the averaging coefficient, in [0, 1).
      lower_bound: ``f_*``, a lower bound of the loss (0 for most losses).
      weight_decay: ``lambda``, >= 0.
      adapt_lower_bound: estimate ``f_*`` from the run.

    Returns:
      A transform whose state is `MomoState`; ``update`` needs ``value=loss``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.momo(1.0)
      >>> p = jnp.asarray([2.0])  # loss x^2 = 4, gradient 4: Polyak step 4 / 16
      >>> opt.update(jnp.asarray([4.0]), opt.init(p), p, value=4.0)[0]
      Array([-1.], dtype=float32)

    References:
      Schaipp et al., 2023, MoMo: momentum models for adaptive learning rates.
      ``optax.contrib.momo`` (same numbers).
    """

    learning_rate: ScalarOrSchedule = hyper(default=1.0, rule=_checks.rate)
    beta: Any = hyper(default=0.9, rule=_checks.beta)
    lower_bound: Any = hyper(default=0.0)
    weight_decay: Any = hyper(default=0.0, rule=_checks.nonnegative)
    adapt_lower_bound: bool = static(default=False, rule=_checks.flag)
    _unchecked_fields = ("barf", "gamma", "lb")

    def init(self, params: Params) -> MomoState:
        dtype = lowest_dtype(params)
        zero = jnp.zeros([], dtype)
        return MomoState(
            _tree.zeros_like(params), zero, zero, jnp.array(self.lower_bound, dtype=dtype), zero_count()
        )

    def _update(self, updates: Updates, state: MomoState, params: Params | None, ctx: Context):
        require_params("momo", params, updates)
        value = _loss("momo", ctx)
        wd, lower = self.weight_decay, self.lower_bound
        count = state.count
        bt = jnp.where(count == 0, 0.0, self.beta)
        barf = bt * state.barf + (1 - bt) * jnp.asarray(value, dtype=state.barf.dtype)

        def average(ea: jax.Array, g: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(ea.dtype, g.dtype)
            return (bt * _tree.to(ea, dtype) + (1 - bt) * _tree.to(g, dtype)).astype(ea.dtype)

        exp_avg = jax.tree.map(average, state.exp_avg, updates)
        gamma = bt * state.gamma + (1 - bt) * _tree.vdot(updates, params)
        norm = _tree.sq_norm(exp_avg)
        iprod = _tree.vdot(exp_avg, params)
        alpha = self.at("learning_rate", count)
        shrink = 1 + alpha * wd
        lb = state.lb
        if self.adapt_lower_bound:
            cap = shrink * (barf - gamma) + iprod
            lb = jnp.where(cap < shrink * state.lb, jnp.maximum(cap / (2 * shrink), lower), state.lb)
        t1 = jnp.maximum(shrink * (barf - lb - gamma) + iprod, 0.0) / norm
        t1 = jnp.where(norm <= _EPS, 0.0, t1)
        tau = jnp.minimum(alpha, t1)
        out = jax.tree.map(
            lambda ea, p: (-(alpha * wd) / shrink * p - tau * ea).astype(p.dtype), exp_avg, params
        )
        new_lb = state.lb
        if self.adapt_lower_bound:
            new_lb = jnp.maximum(barf + iprod - gamma - 1 / 2 * tau * norm, lower)
        return out, MomoState(
            exp_avg,
            barf.astype(state.barf.dtype),
            gamma.astype(state.gamma.dtype),
            jnp.asarray(new_lb).astype(state.lb.dtype),
            safe_increment(count),
        )


class MomoAdamState(NamedTuple):
    """State of `momo_adam`: both moments, the averaged loss and ``<g, x>``, the lower
    bound and the step count."""

    exp_avg: Updates
    exp_avg_sq: Updates
    barf: jax.Array  # shape=()
    gamma: jax.Array  # shape=()
    lb: jax.Array  # shape=()
    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]


@pytree_dataclass
class momo_adam(Transform):
    r"""MoMo-Adam: `momo`'s model-based step in Adam's preconditioned geometry.

    .. math:: D_t = \epsilon + \sqrt{\hat v_t}, \quad
              \tau_t = \min\Big(\frac{\alpha_t}{1 - b_1^t}, \frac{[(1 + \alpha_t\lambda)
              (\bar f_t - (1 - b_1^t) f_* - \gamma_t) + \langle d_t, x_t\rangle]_+}
              {\langle d_t, d_t / D_t\rangle}\Big), \quad
              u_t = -\frac{\alpha_t\lambda}{1 + \alpha_t\lambda} x_t - \tau_t d_t / D_t

    Args:
      learning_rate: ``alpha``, the largest step (a number or a schedule).
      b1: decay of the averages, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the preconditioner.
      lower_bound: ``f_*``, a lower bound of the loss.
      weight_decay: ``lambda``, >= 0.
      adapt_lower_bound: estimate ``f_*`` from the run.

    Returns:
      A transform whose state is `MomoAdamState`; ``update`` needs ``value=loss``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.momo_adam(10.0, eps=0.0)
      >>> p = jnp.asarray([2.0])  # loss 4, gradient 4, D = 4: step 4 / (0.1 * 4 * 0.1 * 4 / 4)
      >>> opt.update(jnp.asarray([4.0]), opt.init(p), p, value=4.0)[0]
      Array([-1.], dtype=float32)

    References:
      Schaipp et al., 2023. ``optax.contrib.momo_adam`` (same numbers).
    """

    learning_rate: ScalarOrSchedule = hyper(default=1e-2, rule=_checks.rate)
    b1: Any = hyper(default=0.9, complement=True, rule=_checks.beta)
    b2: Any = hyper(default=0.999, complement=True, rule=_checks.beta)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    lower_bound: Any = hyper(default=0.0)
    weight_decay: Any = hyper(default=0.0, rule=_checks.nonnegative)
    adapt_lower_bound: bool = static(default=False, rule=_checks.flag)
    _unchecked_fields = ("barf", "gamma", "lb")

    def init(self, params: Params) -> MomoAdamState:
        dtype = lowest_dtype(params)
        zero = jnp.zeros([], dtype)
        zeros = _tree.zeros_like(params)
        return MomoAdamState(zeros, zeros, zero, zero, jnp.array(self.lower_bound, dtype=dtype), zero_count())

    def _update(self, updates: Updates, state: MomoAdamState, params: Params | None, ctx: Context):
        require_params("momo_adam", params, updates)
        value = _loss("momo_adam", ctx)
        b1, b2, eps, wd, lower = self.b1, self.b2, self.eps, self.weight_decay, self.lower_bound
        c1, c2 = self.one_minus("b1"), self.one_minus("b2")
        count = state.count
        count_inc = safe_increment(count)
        barf = b1 * state.barf + c1 * jnp.asarray(value, dtype=state.barf.dtype)

        def moments(ea: jax.Array, eas: jax.Array, g: jax.Array) -> Any:
            dtype = _tree.compute_dtype(ea.dtype, g.dtype)
            ea32, eas32, g32 = _tree.to(ea, dtype), _tree.to(eas, dtype), _tree.to(g, dtype)
            return (
                (b1 * ea32 + c1 * g32).astype(ea.dtype),
                (b2 * eas32 + c2 * g32 * g32).astype(eas.dtype),
            )

        exp_avg, exp_avg_sq = _tree.unzip(
            updates, jax.tree.map(moments, state.exp_avg, state.exp_avg_sq, updates), 2
        )
        bc2 = jnp.asarray(_tree.correction(b2, count_inc), dtype=barf.dtype)
        precond = jax.tree.map(lambda eas: eps + jnp.sqrt(eas / bc2.astype(eas.dtype)), exp_avg_sq)
        weighted = jax.tree.map(lambda ea, prec: ea / prec, exp_avg, precond)
        norm = _tree.vdot(exp_avg, weighted)
        gamma = b1 * state.gamma + c1 * _tree.vdot(updates, params)
        iprod = _tree.vdot(exp_avg, params)
        alpha = self.at("learning_rate", count)
        bc1 = jnp.asarray(_tree.correction(b1, count_inc), dtype=barf.dtype)
        shrink = 1 + alpha * wd
        lb = state.lb
        if self.adapt_lower_bound:
            cap = shrink * (barf - gamma) + iprod
            lb = jnp.where(
                cap < shrink * bc1 * state.lb, jnp.maximum(cap / (2 * bc1 * shrink), lower), state.lb
            )
        t1 = jnp.maximum(shrink * (barf - bc1 * lb - gamma) + iprod, 0.0) / norm
        t1 = jnp.where(norm <= _EPS, 0.0, t1)
        tau = jnp.minimum(alpha / bc1, t1)
        out = jax.tree.map(
            lambda ea, prec, p: (-(alpha * wd) / shrink * p - tau * ea / prec).astype(p.dtype),
            exp_avg,
            precond,
            params,
        )
        new_lb = state.lb
        if self.adapt_lower_bound:
            new_lb = jnp.maximum((barf + iprod - gamma - 1 / 2 * tau * norm) / bc1, lower)
        return out, MomoAdamState(
            exp_avg,
            exp_avg_sq,
            barf.astype(state.barf.dtype),
            gamma.astype(state.gamma.dtype),
            jnp.asarray(new_lb).astype(state.lb.dtype),
            count_inc,
        )


__all__ = ["MomoAdamState", "MomoState", "momo", "momo_adam"]
