r"""Second-moment statistics beyond Adam's, one block each, and optax's scalings built
from them.

Each block reads what it needs from the enclosing chain's context: *the gradient*
(the input of the most recent `gradtx.momentum`, as `gradtx.scale_by_rms` does) and,
for AdaBelief, the first moment that momentum just computed. So every optimizer of the
Adam family is ``momentum, then one statistic, then the learning rate``:

- AdaBelief (`scale_by_belief_rms`): :math:`s_t = b_2 s_{t-1} + (1 - b_2)(g_t - m_t)^2 + \epsilon_{root}`.
- Yogi (`scale_by_yogi_rms`): :math:`v_t = v_{t-1} - (1 - b_2)\,\mathrm{sign}(v_{t-1} - g_t^2)\, g_t^2`.
- RAdam (`scale_by_rectified_rms`): Adam's RMS scaling, `rectified`: used times
  :math:`r_t` only once the variance of the adaptive rate is tractable.
- Adan (`scale_by_adan_rms`): moments of the gradient difference :math:`g_t - g_{t-1}`.
- NovoGrad (`scale_by_layerwise_rms`): one second moment per parameter leaf.
- AdaDelta (`scale_by_adadelta`): the RMS of past updates over the RMS of gradients.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._checks import InputError
from gradtx.base import Context, Params, Transform, Updates, Wrapper, safe_increment, zero_count
from gradtx.blocks.adaptive import scale_by_rms
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


@pytree_dataclass
class rectified(Wrapper):
    r"""RAdam's rectification around an adaptive scaling: ``inner`` of the input times
    :math:`r_t` once the approximated length of the moving average :math:`\rho_t`
    reaches ``threshold``; before that the input passes unchanged.

    .. math:: \rho_\infty = \frac{2}{1 - b_2} - 1, \quad
              \rho_t = \rho_\infty - \frac{2 t b_2^t}{1 - b_2^t}, \quad
              r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
              {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}

    .. math:: u_t = \text{inner}(r_t\, x_t) \ \text{if}\ \rho_t \ge \text{threshold},
              \quad\text{else}\ u_t = x_t

    A selection, not a new statistic: ``inner`` runs at every step, so its state (the
    second moment) advances on both branches, and one of the two outputs is chosen.
    ``inner`` reads the chain's slots as it would outside (`gradtx.channel`): with
    ``inner = scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True)`` after a
    `gradtx.momentum`, this is RAdam (`scale_by_rectified_rms`). :math:`b_2` is the
    ``decay`` of ``inner``, read from it (one number, not two that could disagree).

    Args:
      inner: the adaptive scaling to rectify: a `gradtx.scale_by_rms`.
      threshold: the smallest :math:`\rho_t` for which ``inner`` is used (5); at least
        4, since below it :math:`r_t` is the root of a negative number (NaN).

    Returns:
      A transform whose state is ``inner``'s (`gradtx.ScaleByRmsState`): its step count
      is the one :math:`\rho_t` needs.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.rectified(gradtx.scale_by_rms(0.999))
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]  # rho_1 = 1 < 5: unchanged
      Array([3., 3.], dtype=float32)

    References:
      Liu et al., 2020, RAdam (algorithm 2).
    """

    inner: scale_by_rms = hyper()
    threshold: Any = hyper(default=5.0)

    def __post_init__(self) -> None:
        if not isinstance(self.inner, scale_by_rms):
            raise TypeError(
                f"rectified: inner must be a gradtx.scale_by_rms (its decay sets rho), got {self.inner!r}"
            )
        if isinstance(self.threshold, (int, float)) and not self.threshold >= 4:
            raise InputError(
                "rectified",
                f"threshold must be >= 4, got {self.threshold!r}: below 4 the rectification is the root of "
                "a negative number and the updates are NaN.",
            )
        super().__post_init__()

    _inner_state_field = None  # the state is the inner scale_by_rms's

    def init(self, params: Params) -> Any:
        return self.inner.init(params)

    def _update(self, updates: Updates, state: Any, params: Params | None, ctx: Context):
        b2 = self.inner.at("decay", state.count)
        one_minus = self.inner.one_minus_at("decay", state.count)
        count = safe_increment(state.count)
        # As optax: rho_inf from the Python number where b2 is one (in float64), the rest
        # in float32.
        rho_inf = 2.0 / one_minus - 1.0
        b2t = _tree.decay_power(b2, count)
        t = count.astype(b2t.dtype)
        rho = rho_inf - 2 * t * b2t / (1 - b2t)
        r = jnp.sqrt((rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho))
        use_rate = rho >= self.at("threshold", state.count)
        scaled_input = jax.tree.map(lambda x: _tree.to(r, x.dtype) * x, updates)
        scaled, state = self.inner._apply(scaled_input, state, params, ctx.inside())
        return jax.tree.map(lambda a, x: jnp.where(use_rate, a, x), scaled, updates), state


@_checks.checked(b2=_checks.beta, eps=_checks.nonnegative, eps_root=_checks.nonnegative)
def scale_by_rectified_rms(
    b2: Any = 0.999, eps: Any = 1e-8, eps_root: Any = 0.0, threshold: Any = 5.0
) -> rectified:
    r"""RAdam's rectified RMS scaling: Adam's division by :math:`\sqrt{\hat v_t}`, times
    the rectification :math:`r_t`, once :math:`\rho_t` reaches ``threshold``; before
    that the input passes unchanged (SGD with momentum).

    .. math:: u_t = r_t\, x_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)
              \ \text{if}\ \rho_t \ge \text{threshold}, \quad\text{else}\ u_t = x_t

    with :math:`\rho_t, r_t` as in `rectified`.

    Args:
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      threshold: the smallest :math:`\rho_t` for which the adaptive rate is used (5);
        at least 4.

    Returns:
      ``rectified(scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True,
      eps_root=eps_root), threshold)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_rectified_rms()
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]  # rho_1 = 1 < 5: unchanged
      Array([3., 3.], dtype=float32)

    References:
      Liu et al., 2020, RAdam (algorithm 2). The second half of ``optax.scale_by_radam``.
    """
    rms = scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True, eps_root=eps_root)
    return rectified(rms, threshold)


@_checks.checked(
    b1=_checks.beta,
    b2=_checks.beta,
    eps=_checks.nonnegative,
    eps_root=_checks.nonnegative,
    nesterov=_checks.flag,
)
def scale_by_radam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    threshold: Any = 5.0,
    *,
    nesterov: bool = False,
) -> Chain:
    r"""RAdam's scaling: `momentum`, then `scale_by_rectified_rms`.

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      threshold: the smallest :math:`\rho_t` for which the adaptive rate is used.
      nesterov: use NAdam's look-ahead first moment.

    Returns:
      ``chain(momentum(b1, nesterov=...), scale_by_rectified_rms(b2, eps, eps_root, threshold))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_radam(b1=0.5)
      >>> tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))[0]  # rho_1 = 1 < 5: m_hat = g
      Array([3., 4.], dtype=float32)

    References:
      Liu et al., 2020. ``optax.scale_by_radam`` (same numbers).
    """
    return labelled(
        "scale_by_radam",
        momentum(b1, nesterov=nesterov),
        scale_by_rectified_rms(b2, eps, eps_root, threshold),
        readout_names={"scale_by_rms.decay": "b2"},
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
    mu_dtype=_checks.dtype,
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
