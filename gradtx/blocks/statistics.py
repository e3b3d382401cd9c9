r"""Second-moment statistics beyond Adam's, one block each, and optax's scalings built
from them.

Each block reads what it needs from the enclosing chain's context: *the gradient*
(the input of the most recent `gradtx.momentum`, as `gradtx.scale_by_rms` does) and,
for AdaBelief, the first moment that momentum just computed. So every optimizer of the
Adam family is ``momentum, then one statistic, then the learning rate``:

- AdaBelief (`scale_by_belief_rms`): :math:`s_t = b_2 s_{t-1} + (1 - b_2)(g_t - m_t)^2 + \epsilon_{root}`.
- Yogi (`scale_by_yogi_rms`): :math:`v_t = v_{t-1} - (1 - b_2)\,\mathrm{sign}(v_{t-1} - g_t^2)\, g_t^2`.
- Adan (`scale_by_adan_rms`): moments of the gradient difference :math:`g_t - g_{t-1}`.
- NovoGrad (`scale_by_layerwise_rms`): one second moment per parameter leaf.
- AdaDelta (`scale_by_adadelta`): the RMS of past updates over the RMS of gradients.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx.base import Context, Params, Transform, Updates, safe_increment, zero_count
from gradtx.blocks.decay import add_decayed_weights
from gradtx.blocks.momentum import momentum, trace
from gradtx.chains import Chain, labelled
from gradtx.channel import REQUIRED
from gradtx.data import hyper, pytree_dataclass
from gradtx.packed import repacked, unpacked


class ScaleByBeliefState(NamedTuple):
    """State of `scale_by_belief_rms`: the step count and the belief ``nu``, the moving
    average of the squared prediction error (``eps_root`` included, not debiased)."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    nu: Updates


@pytree_dataclass
class scale_by_belief_rms(Transform):
    r"""Divides the updates by the root of AdaBelief's "belief": the moving average of
    the squared difference between the gradient and its first moment.

    .. math:: s_t = b_2 s_{t-1} + (1 - b_2)\, |g_t - m_t|^2 + \epsilon_{root}, \qquad
              u_t = x_t / (\sqrt{s_t / (1 - b_2^t)} + \epsilon)

    ``g`` is the gradient and ``m_t`` the first moment computed by the `gradtx.momentum`
    before this block in the chain (it needs one).

    Args:
      b2: decay of the belief, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added to the belief at every step (and so stored in it), as optax does.

    Returns:
      A transform whose state is `ScaleByBeliefState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.chain(gradtx.momentum(0.5), gradtx.scale_by_belief_rms(0.5, 0.0, 0.0))
      >>> tx.update(jnp.full(2, 4.0), tx.init(jnp.zeros(2)))[0]  # 4 / sqrt(0.5 * 2**2 / 0.5)
      Array([2., 2.], dtype=float32)

    References:
      Zhuang et al., 2020, AdaBelief (algorithm 2). The second half of
      ``optax.scale_by_belief``.
    """

    b2: Any = hyper(default=0.999, complement=True, rule=_checks.beta)
    eps: Any = hyper(default=1e-16, rule=_checks.nonnegative)
    eps_root: Any = hyper(default=1e-16, rule=_checks.nonnegative)

    slots_read = ("gradient", "first_moment")

    def init(self, params: Params) -> ScaleByBeliefState:
        return ScaleByBeliefState(count=zero_count(), nu=_tree.zeros_like(params))

    def _update(self, updates: Updates, state: ScaleByBeliefState, params: Params | None, ctx: Context):
        del params
        # An empty tree (every leaf masked out) needs no first moment.
        nothing = updates if not jax.tree.leaves(updates) else REQUIRED
        first_moment = ctx.read(self, "first_moment", fallback=nothing)
        gradient = ctx.read(self, "gradient", fallback=updates)
        b2, one_minus = self.at("b2", state.count), self.one_minus_at("b2", state.count)
        eps_root = self.at("eps_root", state.count)

        def belief(g: jax.Array, m: jax.Array, s: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(g.dtype, m.dtype, s.dtype)
            error = _tree.to(g, dtype) - _tree.to(m, dtype)
            return _tree.ema_step(error, s, b2, one_minus, 2) + _tree.cast(eps_root, dtype)

        nu = jax.tree.map(belief, gradient, first_moment, state.nu)
        count = safe_increment(state.count)
        nu_hat = _tree.debias(nu, b2, count)
        eps = self.at("eps", state.count)
        out = jax.tree.map(lambda x, n: _tree.divide_by_root(x, n, eps, 0.0), updates, nu_hat)
        return out, ScaleByBeliefState(count=count, nu=_tree.cast_like(nu, state.nu))


@_checks.checked(
    b1=_checks.beta,
    b2=_checks.beta,
    eps=_checks.nonnegative,
    eps_root=_checks.nonnegative,
    nesterov=_checks.flag,
)
def scale_by_belief(
    b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-16, eps_root: Any = 1e-16, *, nesterov: bool = False
) -> Chain:
    r"""AdaBelief's scaling: `momentum`, then `scale_by_belief_rms`.

    .. math:: \hat m_t / (\sqrt{\hat s_t} + \epsilon), \quad
              s_t = b_2 s_{t-1} + (1 - b_2)(g_t - m_t)^2 + \epsilon_{root}

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the belief, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added to the belief at every step.
      nesterov: use NAdam's look-ahead first moment.

    Returns:
      ``chain(momentum(b1, nesterov=...), scale_by_belief_rms(b2, eps, eps_root))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_belief(0.5, 0.5, 0.0, 0.0)
      >>> tx.update(jnp.full(2, 4.0), tx.init(jnp.zeros(2)))[0]
      Array([2., 2.], dtype=float32)

    References:
      Zhuang et al., 2020. ``optax.scale_by_belief`` (same numbers).
    """
    return labelled(
        "scale_by_belief", momentum(b1, nesterov=nesterov), scale_by_belief_rms(b2, eps, eps_root)
    )


class ScaleByYogiState(NamedTuple):
    """State of `scale_by_yogi_rms`: the step count and the second moment ``nu``."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    nu: Updates


@pytree_dataclass
class scale_by_yogi_rms(Transform):
    r"""Yogi's second moment: an additive update that moves ``v`` toward ``g^2`` by at
    most ``(1 - b2) g^2`` per step.

    .. math:: v_t = v_{t-1} - (1 - b_2)\, \mathrm{sign}(v_{t-1} - |g_t|^2)\, |g_t|^2, \qquad
              u_t = x_t / (\sqrt{v_t / (1 - b_2^t) + \epsilon_{root}} + \epsilon)

    Args:
      b2: the rate of the additive update, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      initial_accumulator_value: the value ``v_0`` starts from.

    Returns:
      A transform whose state is `ScaleByYogiState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_yogi_rms(0.5, 0.0, initial_accumulator_value=0.0)
      >>> tx.update(jnp.full(2, 2.0), tx.init(jnp.zeros(2)))[0]  # v = 0.5 * 4, v_hat = 4
      Array([1., 1.], dtype=float32)

    References:
      Zaheer et al., 2018, Yogi (algorithm 2). The second half of ``optax.scale_by_yogi``.
    """

    b2: Any = hyper(default=0.999, complement=True, rule=_checks.beta)
    eps: Any = hyper(default=1e-3, rule=_checks.nonnegative)
    eps_root: Any = hyper(default=0.0, rule=_checks.nonnegative)
    initial_accumulator_value: Any = hyper(default=1e-6, rule=_checks.nonnegative)

    slots_read = ("gradient",)

    def init(self, params: Params) -> ScaleByYogiState:
        return ScaleByYogiState(
            count=zero_count(), nu=_tree.full_like(params, self.initial_accumulator_value)
        )

    def _update(self, updates: Updates, state: ScaleByYogiState, params: Params | None, ctx: Context):
        del params
        gradient = ctx.read(self, "gradient", fallback=updates)
        b2, one_minus = self.at("b2", state.count), self.one_minus_at("b2", state.count)

        def yogi(g: jax.Array, v: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(g.dtype, v.dtype)
            g2, v = _tree.abs_sq(_tree.to(g, dtype)), _tree.to(v, dtype)
            g2 = _tree.to(g2, dtype)
            return v - _tree.cast(one_minus, dtype) * jnp.sign(v - g2) * g2

        nu = jax.tree.map(yogi, gradient, state.nu)
        count = safe_increment(state.count)
        nu_hat = _tree.debias(nu, b2, count)
        eps, eps_root = self.at("eps", state.count), self.at("eps_root", state.count)
        out = jax.tree.map(lambda x, n: _tree.divide_by_root(x, n, eps, eps_root), updates, nu_hat)
        return out, ScaleByYogiState(count=count, nu=_tree.cast_like(nu, state.nu))


@_checks.checked(
    b1=_checks.beta,
    b2=_checks.beta,
    eps=_checks.nonnegative,
    eps_root=_checks.nonnegative,
    initial_accumulator_value=_checks.nonnegative,
)
def scale_by_yogi(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-3,
    eps_root: Any = 0.0,
    initial_accumulator_value: Any = 1e-6,
) -> Chain:
    r"""Yogi's scaling: `momentum` (from ``initial_accumulator_value``), then
    `scale_by_yogi_rms`.

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: rate of the second moment's additive update, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      initial_accumulator_value: the value both moments start from.

    Returns:
      ``chain(momentum(b1, initial_value=...), scale_by_yogi_rms(b2, eps, eps_root, ...))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_yogi(0.5, 0.5)
      >>> u, s = tx.update(jnp.array([3.0]), tx.init(jnp.zeros(1)))
      >>> [round(float(x), 7) for x in u]  # as in `yogi`: 3.000001 / (sqrt(9.000002) + 1e-3)
      [0.999667]

    References:
      Zaheer et al., 2018. ``optax.scale_by_yogi`` (same numbers).
    """
    initial = initial_accumulator_value
    return labelled(
        "scale_by_yogi",
        momentum(b1, initial_value=float(initial)),
        scale_by_yogi_rms(b2, eps, eps_root, initial),
    )


class ScaleByAdanState(NamedTuple):
    """State of `scale_by_adan_rms`: the step count, the moment of the gradient
    difference ``v``, the second moment ``n`` and the previous gradient ``g``."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    v: Updates
    n: Updates
    g: Updates


@pytree_dataclass
class scale_by_adan_rms(Transform):
    r"""Adan's statistics of the gradient difference :math:`\Delta_t = g_t - g_{t-1}`
    (zero at the first step), applied to the debiased first moment before it.

    .. math:: v_t = b_2 v_{t-1} + (1 - b_2)\Delta_t, \quad
              n_t = b_3 n_{t-1} + (1 - b_3)\,|g_t + (1 - b_2)\Delta_t|^2

    .. math:: u_t = (x_t + (1 - b_2)\hat v_t) / (\sqrt{\hat n_t + \epsilon_{root}} + \epsilon)

    where ``x`` is the input (``m_hat`` after `gradtx.momentum`) and hats divide by
    ``1 - b**t``.

    One block, not three: the numerator's ``v`` and the denominator's ``n`` share the
    difference ``Delta_t`` (and the previous gradient it keeps), and ``n`` is the second
    moment of ``g_t + (1 - b2) Delta_t``, a tree no other block means. As separate
    blocks they would need channel slots (`gradtx.channel`) that only Adan reads.

    Args:
      b2: decay of the difference's moment, in [0, 1).
      b3: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.

    Returns:
      A transform whose state is `ScaleByAdanState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_adan_rms(0.5, 0.5, 0.0)
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]  # 3 / sqrt(9)
      Array([1., 1.], dtype=float32)

    References:
      Xie et al., 2022, Adan (algorithm 1). The part of ``optax.scale_by_adan`` after
      its first moment.
    """

    b2: Any = hyper(default=0.92, complement=True, rule=_checks.beta)
    b3: Any = hyper(default=0.99, complement=True)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    eps_root: Any = hyper(default=0.0, rule=_checks.nonnegative)

    slots_read = ("gradient",)

    def init(self, params: Params) -> ScaleByAdanState:
        zeros = _tree.zeros_like(params)
        return ScaleByAdanState(count=zero_count(), v=zeros, n=zeros, g=zeros)

    def _update(self, updates: Updates, state: ScaleByAdanState, params: Params | None, ctx: Context):
        del params
        gradient = ctx.read(self, "gradient", fallback=updates)
        b2, one_minus_b2 = self.at("b2", state.count), self.one_minus_at("b2", state.count)
        b3, one_minus_b3 = self.at("b3", state.count), self.one_minus_at("b3", state.count)
        first = state.count == 0

        def difference(g: jax.Array, prev: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(g.dtype, prev.dtype)
            diff = _tree.to(g, dtype) - _tree.to(prev, dtype)
            return jnp.where(first, jnp.zeros_like(diff), diff)

        diff = jax.tree.map(difference, gradient, state.g)
        v = jax.tree.map(lambda d, v: _tree.ema_step(d, v, b2, one_minus_b2, 1), diff, state.v)

        def second(g: jax.Array, d: jax.Array, n: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(g.dtype, d.dtype)
            mixed = _tree.to(g, dtype) + _tree.cast(one_minus_b2, dtype) * _tree.to(d, dtype)
            return _tree.ema_step(mixed, n, b3, one_minus_b3, 2)

        n = jax.tree.map(second, gradient, diff, state.n)
        count = safe_increment(state.count)
        v_hat, n_hat = _tree.debias(v, b2, count), _tree.debias(n, b3, count)
        eps, eps_root = self.at("eps", state.count), self.at("eps_root", state.count)

        def combine(x: jax.Array, v: jax.Array, n: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(x.dtype, v.dtype)
            numerator = _tree.to(x, dtype) + _tree.cast(one_minus_b2, dtype) * _tree.to(v, dtype)
            return _tree.divide_by_root(numerator, n, eps, eps_root).astype(x.dtype)

        out = jax.tree.map(combine, updates, v_hat, n_hat)
        new_state = ScaleByAdanState(
            count=count,
            v=_tree.cast_like(v, state.v),
            n=_tree.cast_like(n, state.n),
            g=_tree.cast_like(gradient, state.g),
        )
        return out, new_state


@_checks.checked(b1=_checks.beta, b2=_checks.beta, eps=_checks.nonnegative, eps_root=_checks.nonnegative)
def scale_by_adan(
    b1: Any = 0.98, b2: Any = 0.92, b3: Any = 0.99, eps: Any = 1e-8, eps_root: Any = 0.0
) -> Chain:
    r"""Adan's scaling: `momentum`, then `scale_by_adan_rms`.

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the gradient difference's moment, in [0, 1).
      b3: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.

    Returns:
      ``chain(momentum(b1), scale_by_adan_rms(b2, b3, eps, eps_root))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_adan(0.5, 0.5, 0.5)
      >>> u, s = tx.update(jnp.array([3.0, -4.0]), tx.init(jnp.zeros(2)))
      >>> [round(float(x), 7) for x in u]  # m_hat / sqrt(v_hat) = sign(g) at step 1
      [1.0, -1.0]

    References:
      Xie et al., 2022. ``optax.scale_by_adan`` (same numbers).
    """
    return labelled("scale_by_adan", momentum(b1), scale_by_adan_rms(b2, b3, eps, eps_root))


class ScaleByLayerwiseRmsState(NamedTuple):
    """State of `scale_by_layerwise_rms`: the step count and one second moment per
    parameter leaf (a scalar each)."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    nu: Updates


@pytree_dataclass
class scale_by_layerwise_rms(Transform):
    r"""NovoGrad's layer-wise scaling: one moving average of the squared norm per
    parameter leaf, started at the first squared norm.

    .. math:: \nu_1 = \lVert g_1 \rVert^2, \quad
              \nu_t = b_2 \nu_{t-1} + (1 - b_2) \lVert g_t \rVert^2, \qquad
              u_t = x_t / (\sqrt{\nu_t + \epsilon_{root}} + \epsilon)

    Norms are per original leaf also for packed parameters.

    Args:
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.

    Returns:
      A transform whose state is `ScaleByLayerwiseRmsState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_layerwise_rms(eps=0.0)
      >>> tx.update(jnp.asarray([3.0, 4.0]), tx.init(jnp.zeros(2)))[0]  # g / |g|
      Array([0.6, 0.8], dtype=float32)

    References:
      Ginsburg et al., 2019, NovoGrad (algorithm 1). The second moment of
      ``optax.scale_by_novograd``.
    """

    b2: Any = hyper(default=0.25, complement=True, rule=_checks.beta)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    eps_root: Any = hyper(default=0.0, rule=_checks.nonnegative)
    _check_buffers = False  # one scalar per leaf

    slots_read = ("gradient",)

    def init(self, params: Params) -> ScaleByLayerwiseRmsState:
        nu = jax.tree.map(lambda p: jnp.zeros([], p.dtype), unpacked(params))
        return ScaleByLayerwiseRmsState(count=zero_count(), nu=nu)

    def _update(self, updates: Updates, state: ScaleByLayerwiseRmsState, params: Params | None, ctx: Context):
        del params
        gradient = unpacked(ctx.read(self, "gradient", fallback=updates))
        b2, one_minus = self.at("b2", state.count), self.one_minus_at("b2", state.count)
        first = state.count == 0

        def layer(g: jax.Array, n: jax.Array) -> jax.Array:
            norm_sq = _tree.to(jnp.linalg.norm(g) ** 2, n.dtype)
            return jnp.where(first, norm_sq, _tree.ema_step(norm_sq, n, b2, one_minus, 1).astype(n.dtype))

        nu = jax.tree.map(layer, gradient, state.nu)
        eps, eps_root = self.at("eps", state.count), self.at("eps_root", state.count)
        out = jax.tree.map(lambda x, n: _tree.divide_by_root(x, n, eps, eps_root), unpacked(updates), nu)
        return repacked(updates, out), ScaleByLayerwiseRmsState(count=safe_increment(state.count), nu=nu)


@_checks.checked(
    b1=_checks.beta,
    b2=_checks.beta,
    eps=_checks.nonnegative,
    eps_root=_checks.nonnegative,
    weight_decay=_checks.nonnegative,
    mu_dtype=_checks.state_dtype,
)
def scale_by_novograd(
    b1: Any = 0.9,
    b2: Any = 0.25,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    mu_dtype: Any = None,
) -> Chain:
    r"""NovoGrad's scaling: `scale_by_layerwise_rms`, then weight decay, then heavy-ball
    momentum.

    .. math:: m_t = b_1 m_{t-1} + g_t / (\sqrt{\nu_t + \epsilon_{root}} + \epsilon) + \lambda W

    Args:
      b1: the momentum coefficient, in [0, 1).
      b2: decay of the layer-wise second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      weight_decay: ``lambda``, >= 0.
      mu_dtype: dtype of the momentum.

    Returns:
      ``chain(scale_by_layerwise_rms(b2, eps, eps_root), add_decayed_weights(weight_decay),
      trace(b1))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_novograd()
      >>> u, s = tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)), jnp.zeros(2))
      >>> [round(float(x), 7) for x in u]  # g / |g| per layer at step 1
      [0.6, 0.8]

    References:
      Ginsburg et al., 2019. ``optax.scale_by_novograd`` (same numbers).
    """
    return labelled(
        "scale_by_novograd",
        scale_by_layerwise_rms(b2, eps, eps_root),
        add_decayed_weights(weight_decay),
        trace(b1, accumulator_dtype=mu_dtype),
        readout_names={"trace.decay": "b1"},
    )


class ScaleByAdaDeltaState(NamedTuple):
    """State of `scale_by_adadelta`: the step count and the moving averages of squared
    gradients ``e_g`` and of squared updates ``e_x``."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    e_g: Updates
    e_x: Updates


@pytree_dataclass
class scale_by_adadelta(Transform):
    r"""AdaDelta: the RMS of past updates over the RMS of gradients.

    .. math:: E[g^2]_t = \rho E[g^2]_{t-1} + (1 - \rho) g_t^2, \quad
              u_t = \frac{\sqrt{E[u^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t, \quad
              E[u^2]_t = \rho E[u^2]_{t-1} + (1 - \rho) u_t^2

    Args:
      rho: the averaging coefficient, in [0, 1].
      eps: added inside both roots.

    Returns:
      A transform whose state is `ScaleByAdaDeltaState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_adadelta(rho=0.5, eps=1.0)
      >>> tx.update(jnp.full(2, 2.0), tx.init(jnp.zeros(2)))[0]  # sqrt(1) / sqrt(2 + 1) * 2
      Array([1.1547005, 1.1547005], dtype=float32)

    References:
      Zeiler, 2012, ADADELTA (algorithm 1). ``optax.scale_by_adadelta`` (same numbers).
    """

    rho: Any = hyper(default=0.9, complement=True)
    eps: Any = hyper(default=1e-6, rule=_checks.nonnegative)

    def init(self, params: Params) -> ScaleByAdaDeltaState:
        zeros = _tree.zeros_like(params)
        return ScaleByAdaDeltaState(count=zero_count(), e_g=zeros, e_x=zeros)

    def _update(self, updates: Updates, state: ScaleByAdaDeltaState, params: Params | None, ctx: Context):
        del params, ctx
        rho, one_minus = self.at("rho", state.count), self.one_minus_at("rho", state.count)
        eps = self.at("eps", state.count)
        e_g = jax.tree.map(lambda g, e: _tree.ema_step(g, e, rho, one_minus, 2), updates, state.e_g)

        def step(g: jax.Array, eg: jax.Array, ex: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(g.dtype, eg.dtype, ex.dtype)
            e = _tree.cast(eps, dtype)
            ratio = jnp.sqrt(_tree.to(ex, dtype) + e) / jnp.sqrt(_tree.to(eg, dtype) + e)
            return (ratio * _tree.to(g, dtype)).astype(g.dtype)

        out = jax.tree.map(step, updates, e_g, state.e_x)
        e_x = jax.tree.map(lambda u, e: _tree.ema_step(u, e, rho, one_minus, 2), out, state.e_x)
        new_state = ScaleByAdaDeltaState(
            count=safe_increment(state.count),
            e_g=_tree.cast_like(e_g, state.e_g),
            e_x=_tree.cast_like(e_x, state.e_x),
        )
        return out, new_state
