r"""optax.contrib's Adam relatives: ADOPT, AdEMAMix (and its simplified form), AcProp,
MADGRAD.

AdEMAMix is a composition on the chain's channel (`gradtx.channel`): Adam's
``momentum`` publishes the gradient, `add_slow_momentum` adds a second, slower average
of it, and ``scale_by_rms`` divides by the root of the second moment of the same
gradient. The others keep one block each; each block's docstring says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._quantized import is_stored, storage
from gradtx.base import Context, Params, Transform, Updates, require_params, safe_increment, zero_count
from gradtx.blocks.adaptive import ScaleByRmsState, scale_by_rms
from gradtx.blocks.decay import add_decayed_weights
from gradtx.blocks.momentum import MomentumState, momentum
from gradtx.blocks.scaling import ScalarOrSchedule, scale_by_learning_rate
from gradtx.chains import Chain, labelled
from gradtx.contrib._common import find_state
from gradtx.data import hyper, pytree_dataclass, static

# --- ADOPT ---------------------------------------------------------------------------


def _quarter_power(count: jax.Array) -> jax.Array:
    return jnp.asarray(count).astype(_tree.float_dtype()) ** 0.25


class ScaleByAdoptState(NamedTuple):
    """State of `scale_by_adopt`: the step count and both moments (optax's
    ``ScaleByAdamState`` fields)."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    mu: Updates
    nu: Updates


@pytree_dataclass
class scale_by_adopt(Transform):
    r"""ADOPT's scaling: the momentum of the gradient normalised by the *previous*
    second moment.

    .. math:: n_t = \mathrm{clip}\big(g_t / \max(\sqrt{\nu_{t-1}}, \epsilon), \pm c(t)\big),
              \quad m_t = b_1 m_{t-1} + (1 - b_1) n_t, \quad
              \nu_t = b_2 \nu_{t-1} + (1 - b_2) g_t^2, \quad u_t = m_t

    At the first step (t = 0) ``nu`` is set to ``g_0^2`` and ``m`` stays 0, so the first
    update is zero. ``c(t) = clip_value_fn(t)`` (``t**0.25`` by default).

    One block: the first moment averages the gradient divided by the second moment of
    the step *before*, and both skip the first step; no slot of the channel carries the
    previous second moment, and only ADOPT would read it.

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: the floor of ``sqrt(nu)``.
      mu_dtype: dtype of the first moment (default: the parameters'; ``"8bit"``,
        ``"4bit"`` or a `gradtx.quantized` stores it quantized).
      nesterov: output ``b1 m_t + (1 - b1) n_t`` (the look-ahead).
      use_clipping: clip the normalised gradient at ``clip_value_fn(t)``.
      clip_value_fn: the clipping bound as a function of the step count.
      nu_dtype: dtype of the second moment (as ``mu_dtype``); not in optax.

    Returns:
      A transform whose state is `ScaleByAdoptState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.scale_by_adopt(b1=0.5, eps=0.0)
      >>> u, s = tx.update(jnp.full(2, 2.0), tx.init(jnp.zeros(2)))  # step 0: zero
      >>> tx.update(jnp.full(2, 4.0), s)[0]  # 0.5 * clip(4 / 2, 1**0.25)
      Array([0.5, 0.5], dtype=float32)

    References:
      Taniguchi et al., 2024, ADOPT (algorithm 2, with clipping). ``optax.contrib.scale_by_adopt``
      (same numbers).
    """

    b1: Any = hyper(default=0.9, rule=_checks.beta)
    b2: Any = hyper(default=0.9999, rule=_checks.beta)
    eps: Any = hyper(default=1e-6, rule=_checks.nonnegative)
    mu_dtype: Any = static(default=None, rule=_checks.state_dtype)
    nesterov: bool = static(default=False, kw_only=True, rule=_checks.flag)
    use_clipping: bool = static(default=True, kw_only=True, rule=_checks.flag)
    clip_value_fn: Callable[[jax.Array], jax.Array] = static(default=_quarter_power, kw_only=True)
    nu_dtype: Any = static(default=None, kw_only=True, rule=_checks.state_dtype)

    def init(self, params: Params) -> ScaleByAdoptState:
        return ScaleByAdoptState(
            count=zero_count(),
            mu=_tree.zeros_like(params, storage(self.mu_dtype, signed=True)),
            nu=_tree.zeros_like(params, storage(self.nu_dtype, signed=False)),
        )

    def _update(self, updates: Updates, state: ScaleByAdoptState, params: Params | None, ctx: Context):
        del params, ctx
        started = state.count > 0
        b1, b2, eps = self.at("b1", state.count), self.at("b2", state.count), self.at("eps", state.count)
        clip_value = self.clip_value_fn(state.count) if self.use_clipping else None

        def moments(g: jax.Array, m: jax.Array, n: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            dtype = _tree.compute_dtype(g.dtype, m.dtype, n.dtype)
            g32, m32, n32 = _tree.to(g, dtype), _tree.to(m, dtype), _tree.to(n, dtype)
            beta1 = jnp.where(started, _tree.cast(b1, dtype), jnp.ones([], dtype))
            beta2 = jnp.where(started, _tree.cast(b2, dtype), jnp.zeros([], dtype))
            new_n = (1 - beta2) * _tree.abs_sq(g32) + beta2 * n32
            normal = g32 / jnp.maximum(jnp.sqrt(n32), _tree.cast(eps, dtype))
            if clip_value is not None:
                bound = jnp.asarray(clip_value).astype(dtype)
                normal = jnp.clip(normal, -bound, bound)
            new_m = (1 - beta1) * normal + beta1 * m32
            out = (1 - beta1) * normal + beta1 * new_m if self.nesterov else new_m
            return out.astype(g.dtype), new_m, new_n

        moments_tree = jax.tree.map(moments, updates, state.mu, state.nu, is_leaf=is_stored)
        out, mu, nu = _tree.unzip(updates, moments_tree, 3)
        mu, nu = _tree.cast_like(mu, state.mu), _tree.cast_like(nu, state.nu)
        return out, ScaleByAdoptState(count=safe_increment(state.count), mu=mu, nu=nu)


@_checks.checked(**_checks.ADAM_FAMILY, mu_dtype=_checks.state_dtype, nu_dtype=_checks.state_dtype)
def adopt(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.9999,
    eps: Any = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = _quarter_power,
    nu_dtype: Any = None,
) -> Chain:
    r"""ADOPT: Adam whose second moment lags one step, so any ``b2`` converges.

    .. math:: W \leftarrow W - \eta\, m_t, \quad m_t = b_1 m_{t-1} + (1 - b_1)\,
              \mathrm{clip}(g_t / \max(\sqrt{\nu_{t-1}}, \epsilon), \pm t^{1/4})

    (`scale_by_adopt` has the whole rule.) The first step only measures ``nu``: the
    parameters move from the second step on.

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: the floor of ``sqrt(nu)``.
      mu_dtype: dtype of the first moment (``"8bit"``, ``"4bit"`` or a
        `gradtx.quantized` stores it quantized).
      nesterov: the look-ahead form.
      use_clipping: clip the normalised gradient (recommended from scratch).
      clip_value_fn: the clipping bound as a function of the step count.
      nu_dtype: dtype of the second moment (as ``mu_dtype``); not in optax.

    Returns:
      ``chain(scale_by_adopt(...), scale_by_learning_rate(learning_rate))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.adopt(0.1, b1=0.5, eps=0.0)
      >>> u, s = opt.update(jnp.full(2, 2.0), opt.init(jnp.zeros(2)))
      >>> opt.update(jnp.full(2, 4.0), s)[0]
      Array([-0.05, -0.05], dtype=float32)

    References:
      Taniguchi et al., 2024, ADOPT: Modified Adam can converge with any beta2.
      ``optax.contrib.adopt`` (same numbers).
    """
    return labelled(
        "adopt",
        scale_by_adopt(
            b1,
            b2,
            eps,
            mu_dtype,
            nesterov=nesterov,
            use_clipping=use_clipping,
            clip_value_fn=clip_value_fn,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


# --- AdEMAMix ------------------------------------------------------------------------


class AddSlowMomentumState(NamedTuple):
    """State of `add_slow_momentum`: the step count and the slow average ``m2``."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    m2: Updates


@pytree_dataclass
class add_slow_momentum(Transform):
    r"""Adds ``alpha`` times a slow moving average of the chain's gradient.

    .. math:: m^{(2)}_t = b_3 m^{(2)}_{t-1} + (1 - b_3) g_t, \qquad
              u_t = x_t + \alpha\, m^{(2)}_t

    ``g`` is the ``gradient`` slot of the channel (the input of the
    `gradtx.momentum` before it), or the block's own input where no momentum precedes
    it. ``m2`` is not debiased (AdEMAMix's choice: a slow average would be dominated by
    its first steps). ``b3`` and ``alpha`` may be schedules of the step (the paper warms
    both up).

    Args:
      b3: decay of the slow average, in [0, 1].
      alpha: the weight of the slow average.
      mu_dtype: dtype of ``m2`` (default: the parameters'; ``"8bit"``, ``"4bit"`` or a
        `gradtx.quantized` stores it quantized).

    Returns:
      A transform whose state is `AddSlowMomentumState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.add_slow_momentum(0.5, alpha=2.0)
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]  # 3 + 2 * 0.5 * 3
      Array([6., 6.], dtype=float32)

    References:
      Pagliardini et al., 2024, The AdEMAMix optimizer (algorithm 1, m2).
    """

    b3: Any = hyper(default=0.9999, complement=True, rule=_checks.decay)
    alpha: Any = hyper(default=5.0, rule=_checks.nonnegative)
    mu_dtype: Any = static(default=None, kw_only=True, rule=_checks.state_dtype)

    slots_read = ("gradient",)

    def init(self, params: Params) -> AddSlowMomentumState:
        m2 = _tree.zeros_like(params, storage(self.mu_dtype, signed=True))
        return AddSlowMomentumState(count=zero_count(), m2=m2)

    def _update(self, updates: Updates, state: AddSlowMomentumState, params: Params | None, ctx: Context):
        del params
        gradient = ctx.read(self, "gradient", fallback=updates)
        b3, alpha = self.at("b3", state.count), self.at("alpha", state.count)
        one_minus_b3 = self.one_minus_at("b3", state.count)
        m2 = jax.tree.map(
            lambda g, m: _tree.ema_step(g, m, b3, one_minus_b3, 1), gradient, state.m2, is_leaf=is_stored
        )

        def mix(x: jax.Array, m: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(x.dtype, m.dtype)
            return (_tree.to(x, dtype) + _tree.cast(alpha, dtype) * m).astype(x.dtype)

        out = jax.tree.map(mix, updates, m2)
        return out, AddSlowMomentumState(count=safe_increment(state.count), m2=_tree.cast_like(m2, state.m2))


class ScaleByAdemamixState(NamedTuple):
    """optax's AdEMAMix state: the step counts and the three moments.

    gradtx keeps them in the blocks of `scale_by_ademamix` (``m1`` is `gradtx.momentum`'s
    ``mu``, ``m2`` is `add_slow_momentum`'s, ``nu`` is `gradtx.scale_by_rms`'s); build
    optax's layout from a gradtx state with ``ScaleByAdemamixState.of(state)``.

    Attributes:
      count: the number of steps taken (int32).
      count_m2: the slow moment's step count (int32).
      m1: the fast first moment.
      m2: the slow first moment.
      nu: the second moment.
    """

    count: Any  # shape=(), dtype=int32
    count_m2: Any  # shape=(), dtype=int32
    m1: Any
    m2: Any
    nu: Any

    @classmethod
    def of(cls, state: Any) -> ScaleByAdemamixState:
        """The optax layout of a gradtx AdEMAMix state."""
        moment, slow, rms = (
            find_state(cls.__name__, state, kind, "an AdEMAMix optimizer")
            for kind in (MomentumState, AddSlowMomentumState, ScaleByRmsState)
        )
        return cls(count=moment.count, count_m2=slow.count, m1=moment.mu, m2=slow.m2, nu=rms.nu)


@_checks.checked(
    b1=_checks.beta,
    b2=_checks.beta,
    eps=_checks.nonnegative,
    eps_root=_checks.nonnegative,
    mu_dtype=_checks.state_dtype,
)
def scale_by_ademamix(
    b1: Any = 0.9,
    b2: Any = 0.999,
    b3: Any = 0.9999,
    alpha: Any = 6.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
) -> Chain:
    r"""AdEMAMix's scaling: Adam's debiased momentum plus ``alpha`` times a slow
    average, over Adam's denominator.

    .. math:: u_t = (\hat m^{(1)}_t + \alpha\, m^{(2)}_t) / (\sqrt{\hat\nu_t + \epsilon_{root}} + \epsilon)

    A composition: ``chain(momentum(b1), add_slow_momentum(b3, alpha),
    scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True))``; the slow average
    and the second moment both read the gradient ``momentum`` publishes.

    Args:
      b1: decay of the fast first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      b3: decay of the slow first moment (a number or a schedule).
      alpha: weight of the slow first moment (a number or a schedule).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      mu_dtype: dtype of all three moments (optax keeps ``nu`` in it too); ``"8bit"``,
        ``"4bit"`` or a `gradtx.quantized` stores them quantized.

    Returns:
      The chain above.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.scale_by_ademamix(b3=0.5, alpha=2.0, eps=0.0)
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0].round(4)  # (3 + 2 * 1.5) / 3
      Array([2., 2.], dtype=float32)

    References:
      Pagliardini et al., 2024, The AdEMAMix optimizer. ``optax.contrib.scale_by_ademamix``
      (same numbers).
    """
    return labelled(
        "scale_by_ademamix",
        momentum(b1, mu_dtype=mu_dtype),
        add_slow_momentum(b3, alpha, mu_dtype=mu_dtype),
        scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True, eps_root=eps_root, nu_dtype=mu_dtype),
    )


@_checks.checked(
    **_checks.ADAM_FAMILY,
    eps_root=_checks.nonnegative,
    mu_dtype=_checks.state_dtype,
    weight_decay=_checks.nonnegative,
)
def ademamix(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    b3: Any = 0.9999,
    alpha: Any = 5.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Chain:
    r"""AdEMAMix: Adam with a second, slow momentum that remembers old gradients.

    .. math:: W \leftarrow W - \eta\,\big((\hat m^{(1)}_t + \alpha m^{(2)}_t)
              / (\sqrt{\hat\nu_t + \epsilon_{root}} + \epsilon) + \lambda W\big)

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1: decay of the fast first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      b3: decay of the slow first moment (a number or a schedule; the paper warms it up).
      alpha: weight of the slow moment (a number or a schedule).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      mu_dtype: dtype of the moments.
      weight_decay: decoupled weight decay, >= 0.
      mask: which parameters to decay.

    Returns:
      ``chain(momentum(b1), add_slow_momentum(b3, alpha), scale_by_rms(b2, ...),
      add_decayed_weights(weight_decay, mask), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.ademamix(1.0, b3=0.5, alpha=2.0, eps=0.0)
      >>> p = jnp.zeros(2)
      >>> opt.update(jnp.full(2, 3.0), opt.init(p), p)[0].round(4)
      Array([-2., -2.], dtype=float32)

    References:
      Pagliardini et al., 2024, The AdEMAMix optimizer: better, faster, older.
      ``optax.contrib.ademamix`` (same numbers).
    """
    return labelled(
        "ademamix",
        *scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype).transforms,
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
        readout_names={"scale_by_rms.decay": "b2"},
    )


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """State of `scale_by_simplified_ademamix`: optax's fields, the step ``t``, the
    accumulated momentum ``m`` and the second moment ``n``."""

    t: jax.Array  # shape=(), dtype=int32: updates so far
    m: Updates
    n: Updates


@pytree_dataclass
class scale_by_simplified_ademamix(Transform):
    r"""Simplified AdEMAMix's scaling: a heavy-ball sum plus ``alpha`` times the gradient.

    .. math:: m_t = b_1 m_{t-1} + g_t, \quad n_t = b_2 n_{t-1} + (1 - b_2) g_t^2, \quad
              u_t = (m_t + \alpha g_t) / (\sqrt{\hat n_t + \epsilon_{root}} + \epsilon)

    One block: the numerator adds the raw gradient to a *sum* of past gradients (no
    average, no ``1 - b1``), a combination no other block computes.

    Args:
      b1: decay of the momentum sum, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      alpha: weight of the current gradient (a number or a schedule).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.

    Returns:
      A transform whose state is `ScaleBySimplifiedAdEMAMixState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.scale_by_simplified_ademamix(0.5, 0.5, alpha=1.0, eps=0.0)
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]  # (3 + 3) / 3
      Array([2., 2.], dtype=float32)

    References:
      Morwani et al., 2025, Connections between schedule-free optimizers, AdEMAMix and
      accelerated SGD variants. ``optax.contrib.scale_by_simplified_ademamix`` (same numbers).
    """

    b1: Any = hyper(default=0.99, rule=_checks.beta)
    b2: Any = hyper(default=0.95, rule=_checks.beta)
    alpha: Any = hyper(default=0.0)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    eps_root: Any = hyper(default=0.0, rule=_checks.nonnegative)
    _unchecked_fields = ("t",)

    def init(self, params: Params) -> ScaleBySimplifiedAdEMAMixState:
        zeros = _tree.zeros_like(params)
        return ScaleBySimplifiedAdEMAMixState(t=zero_count(), m=zeros, n=zeros)

    def _update(
        self, updates: Updates, state: ScaleBySimplifiedAdEMAMixState, params: Params | None, ctx: Context
    ):
        del params, ctx
        b1, b2, alpha = self.at("b1", state.t), self.at("b2", state.t), self.at("alpha", state.t)
        eps, eps_root = self.at("eps", state.t), self.at("eps_root", state.t)
        t = safe_increment(state.t)
        c2 = _tree.correction(b2, t)

        def step(g: jax.Array, m: jax.Array, n: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            dtype = _tree.compute_dtype(g.dtype, m.dtype)
            g32, m32, n32 = _tree.to(g, dtype), _tree.to(m, dtype), _tree.to(n, dtype)
            new_m = g32 + _tree.cast(b1, dtype) * m32
            sq = g32 * g32
            new_n = sq + _tree.cast(b2, dtype) * (n32 - sq)  # optax's lerp
            n_hat = new_n / _tree.to(c2, dtype)
            num = new_m + _tree.cast(alpha, dtype) * g32
            out = num / (jnp.sqrt(n_hat + _tree.cast(eps_root, dtype)) + _tree.cast(eps, dtype))
            return out.astype(g.dtype), new_m.astype(m.dtype), new_n.astype(n.dtype)

        out, m, n = _tree.unzip(updates, jax.tree.map(step, updates, state.m, state.n), 3)
        return out, ScaleBySimplifiedAdEMAMixState(t=t, m=m, n=n)


@_checks.checked(
    learning_rate=_checks.rate,
    b2=_checks.beta,
    eps=_checks.nonnegative,
    eps_root=_checks.nonnegative,
    weight_decay=_checks.nonnegative,
)
def simplified_ademamix(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.99,
    b2: Any = 0.95,
    alpha: Any = 0.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Chain:
    r"""Simplified AdEMAMix: one momentum sum plus ``alpha`` times the gradient, over
    Adam's denominator.

    .. math:: W \leftarrow W - \eta\,\big((m_t + \alpha g_t) / (\sqrt{\hat n_t + \epsilon_{root}}
              + \epsilon) + \lambda W\big), \quad m_t = b_1 m_{t-1} + g_t

    Args:
      learning_rate: a number >= 0 or a schedule (the paper scales it by ``1 - b1``).
      b1: decay of the momentum sum.
      b2: decay of the second moment, in [0, 1).
      alpha: weight of the current gradient (a number or a schedule).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      weight_decay: decoupled weight decay, >= 0.
      mask: which parameters to decay.

    Returns:
      ``chain(scale_by_simplified_ademamix(...), add_decayed_weights(...),
      scale_by_learning_rate(learning_rate))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.simplified_ademamix(0.1, 0.5, 0.5, alpha=1.0, eps=0.0)
      >>> p = jnp.zeros(2)
      >>> opt.update(jnp.full(2, 3.0), opt.init(p), p)[0]
      Array([-0.2, -0.2], dtype=float32)

    References:
      Morwani et al., 2025. ``optax.contrib.simplified_ademamix`` (same numbers).
    """
    return labelled(
        "simplified_ademamix",
        scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


# --- AcProp --------------------------------------------------------------------------


class ScaleByAcpropState(NamedTuple):
    """State of `scale_by_acprop`: optax's ``ScaleByBeliefState`` fields."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    mu: Updates
    nu: Updates


@pytree_dataclass
class scale_by_acprop(Transform):
    r"""AcProp's scaling: the gradient over the root of the *previous* belief
    second moment.

    .. math:: m_t = b_1 m_{t-1} + (1 - b_1) g_t, \quad
              s_t = b_2 s_{t-1} + (1 - b_2)(g_t - m_{t-1})^2 + \epsilon_{root}, \quad
              u_t = g_t / (\sqrt{\hat s_{t-1}} + \epsilon)

    with ``hat s_{t-1} = s_{t-1} / (1 - b2**(t-1))``, taken as 1 at the first step.

    One block: the update divides the raw gradient by the statistic of the step before,
    and the statistic measures the gradient against the *previous* first moment.

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added to the second moment at every step.

    Returns:
      A transform whose state is `ScaleByAcpropState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.scale_by_acprop(eps=0.0)
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]  # the first step: g
      Array([3., 3.], dtype=float32)

    References:
      Zhuang et al., 2021, Momentum centering and asynchronous update for adaptive
      gradient methods. ``optax.contrib.scale_by_acprop`` (same numbers).
    """

    b1: Any = hyper(default=0.9, complement=True, rule=_checks.beta)
    b2: Any = hyper(default=0.999, complement=True, rule=_checks.beta)
    eps: Any = hyper(default=1e-16, rule=_checks.nonnegative)
    eps_root: Any = hyper(default=1e-16, rule=_checks.nonnegative)

    def init(self, params: Params) -> ScaleByAcpropState:
        zeros = _tree.zeros_like(params)
        return ScaleByAcpropState(count=zero_count(), mu=zeros, nu=zeros)

    def _update(self, updates: Updates, state: ScaleByAcpropState, params: Params | None, ctx: Context):
        del params, ctx
        b1, b2 = self.at("b1", state.count), self.at("b2", state.count)
        one_minus_b1, one_minus_b2 = (
            self.one_minus_at("b1", state.count),
            self.one_minus_at("b2", state.count),
        )
        eps, eps_root = self.at("eps", state.count), self.at("eps_root", state.count)
        count = safe_increment(state.count)
        initial = state.count == 0
        c2 = _tree.correction(b2, jnp.where(initial, count, state.count))

        def step(g: jax.Array, m: jax.Array, s: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            dtype = _tree.compute_dtype(g.dtype, m.dtype)
            g32, m32, s32 = _tree.to(g, dtype), _tree.to(m, dtype), _tree.to(s, dtype)
            new_m = _tree.cast(one_minus_b1, dtype) * g32 + _tree.cast(b1, dtype) * m32
            error = g32 - m32
            new_s = _tree.cast(one_minus_b2, dtype) * _tree.abs_sq(error) + _tree.cast(b2, dtype) * s32
            new_s = new_s + _tree.cast(eps_root, dtype)
            s_hat = jnp.where(initial, jnp.ones([], dtype), s32 / _tree.to(c2, dtype))
            out = g32 / (jnp.sqrt(s_hat) + _tree.cast(eps, dtype))
            return out.astype(g.dtype), new_m.astype(m.dtype), new_s.astype(s.dtype)

        out, mu, nu = _tree.unzip(updates, jax.tree.map(step, updates, state.mu, state.nu), 3)
        return out, ScaleByAcpropState(count=count, mu=mu, nu=nu)


@_checks.checked(**_checks.ADAM_FAMILY, eps_root=_checks.nonnegative, weight_decay=_checks.nonnegative)
def acprop(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Chain:
    r"""AcProp: the gradient over the root of the previous step's belief (the variance
    of the gradient around its momentum).

    .. math:: W \leftarrow W - \eta\,\big(g_t / (\sqrt{\hat s_{t-1}} + \epsilon) + \lambda W\big)

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added to the second moment at every step.
      weight_decay: decoupled weight decay, >= 0.
      mask: which parameters to decay.

    Returns:
      ``chain(scale_by_acprop(...), add_decayed_weights(...), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.acprop(0.1, eps=0.0)
      >>> p = jnp.zeros(2)
      >>> opt.update(jnp.full(2, 3.0), opt.init(p), p)[0]
      Array([-0.3, -0.3], dtype=float32)

    References:
      Zhuang et al., 2021. ``optax.contrib.acprop`` (same numbers).
    """
    return labelled(
        "acprop",
        scale_by_acprop(b1, b2, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


# --- MADGRAD -------------------------------------------------------------------------


class MadgradState(NamedTuple):
    """State of `scale_by_madgrad`: the step count, the weighted sums of squared
    gradients and of gradients, and the starting point ``x0``."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    grad_sum_sq: Updates
    s: Updates
    x0: Params


@pytree_dataclass
class scale_by_madgrad(Transform):
    r"""MADGRAD's update: dual averaging with a cube-root denominator, averaged with
    the current point (momentum as in MADGRAD's paper).

    .. math:: \lambda_t = (\eta + \epsilon)\sqrt{t + 1}, \quad
              \nu_t = \nu_{t-1} + \lambda_t g_t^2, \quad s_t = s_{t-1} + \lambda_t g_t,

    .. math:: z_t = x_0 - s_t / (\nu_t^{1/3} + \epsilon), \quad
              u_t = (1 - c)\, z_t + c\, x_t - x_t

    A block with its learning rate inside (as optax's): the rate weighs every
    gradient in the sums, not the step, so it cannot be a final
    `gradtx.scale_by_learning_rate`; and it needs the parameters.

    Args:
      learning_rate: a number >= 0 or a schedule.
      momentum: ``c``, the weight of the current point, in [0, 1].
      eps: added to the rate and to the cube root.

    Returns:
      A transform whose state is `MadgradState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.scale_by_madgrad(1.0, momentum=0.0, eps=0.0)
      >>> p = jnp.zeros(2)
      >>> tx.update(jnp.full(2, 8.0), tx.init(p), p)[0]  # -8 / cbrt(64)
      Array([-2., -2.], dtype=float32)

    References:
      Defazio and Jelassi, 2022, Adaptivity without compromise (algorithm 1).
      ``optax.contrib.scale_by_madgrad`` (same numbers).
    """

    learning_rate: Any = hyper(rule=_checks.rate)
    momentum: Any = hyper(default=0.9, complement=True, rule=_checks.decay)
    eps: Any = hyper(default=1e-6, rule=_checks.nonnegative)

    def init(self, params: Params) -> MadgradState:
        zeros = _tree.zeros_like(params)
        return MadgradState(count=zero_count(), grad_sum_sq=zeros, s=zeros, x0=params)

    def _update(self, updates: Updates, state: MadgradState, params: Params | None, ctx: Context):
        del ctx
        require_params("scale_by_madgrad", params, updates)
        lr, c, eps = (self.at(f, state.count) for f in ("learning_rate", "momentum", "eps"))
        one_minus_c = self.one_minus_at("momentum", state.count)
        lamb = (lr + eps) * jnp.sqrt(safe_increment(state.count))

        def step(g: jax.Array, v: jax.Array, s: jax.Array, x0: jax.Array, x: jax.Array) -> Any:
            dtype = _tree.compute_dtype(g.dtype)
            g32 = _tree.to(g, dtype)
            lam = _tree.to(jnp.asarray(lamb), dtype)
            new_v = v + (lam * (g32 * g32)).astype(g.dtype)
            new_s = s + (lam * g32).astype(g.dtype)
            sigma = jnp.cbrt(_tree.to(new_v, dtype)) + _tree.cast(eps, dtype)
            z = _tree.to(x0, dtype) - _tree.to(new_s, dtype) / sigma
            x32 = _tree.to(x, dtype)
            new_x = _tree.cast(one_minus_c, dtype) * z + _tree.cast(c, dtype) * x32
            return (new_x - x32).astype(g.dtype), new_v, new_s

        out, v, s = _tree.unzip(
            updates, jax.tree.map(step, updates, state.grad_sum_sq, state.s, state.x0, params), 3
        )
        return out, MadgradState(count=safe_increment(state.count), grad_sum_sq=v, s=s, x0=state.x0)


@_checks.checked(
    learning_rate=_checks.rate,
    momentum=_checks.decay,
    weight_decay=_checks.nonnegative,
    eps=_checks.nonnegative,
)
def madgrad(
    learning_rate: ScalarOrSchedule,
    momentum: Any = 0.9,
    weight_decay: Any = 0.0,
    eps: Any = 1e-6,
) -> Chain:
    r"""MADGRAD: momentumized, adaptive, dual averaged gradient.

    Weight decay is added to the gradient first (coupled, as in optax), then
    `scale_by_madgrad`, which holds the learning rate.

    Args:
      learning_rate: a number >= 0 or a schedule.
      momentum: the weight of the current point, in [0, 1].
      weight_decay: L2 penalty added to the gradient, >= 0.
      eps: added to the rate and to the cube root.

    Returns:
      ``chain(add_decayed_weights(weight_decay), scale_by_madgrad(learning_rate, momentum, eps))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.madgrad(1.0, momentum=0.0, eps=0.0)
      >>> p = jnp.zeros(2)
      >>> opt.update(jnp.full(2, 8.0), opt.init(p), p)[0]
      Array([-2., -2.], dtype=float32)

    References:
      Defazio and Jelassi, 2022. ``optax.contrib.madgrad`` (same numbers).
    """
    return labelled(
        "madgrad",
        add_decayed_weights(weight_decay),
        scale_by_madgrad(learning_rate, momentum, eps),
        readout_names={"scale_by_madgrad.learning_rate": "learning_rate"},
    )


__all__ = [
    "AddSlowMomentumState",
    "MadgradState",
    "ScaleByAcpropState",
    "ScaleByAdemamixState",
    "ScaleByAdoptState",
    "ScaleBySimplifiedAdEMAMixState",
    "acprop",
    "add_slow_momentum",
    "ademamix",
    "adopt",
    "madgrad",
    "scale_by_acprop",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_madgrad",
    "scale_by_simplified_ademamix",
    "simplified_ademamix",
]
