r"""optax.contrib's learning-rate-free methods: Prodigy, D-Adaptation (AdamW), DoG,
DoWG, COCOB and Mechanic.

Each estimates the step size from the run itself (the distance travelled from the
start, the gradients' correlation with it, a betting wealth). That estimate is one
number for the whole parameter tree, computed from every leaf together and fed back
into the moments of every leaf, so each method is one block (plus optax's weight
decay and learning-rate blocks around it); no slot of the channel carries a
tree-wide scalar that only its own method reads.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._checks import InputError
from gradtx.base import (
    Context,
    Params,
    Transform,
    Updates,
    Wrapper,
    identity,
    require_params,
    safe_increment,
    zero_count,
)
from gradtx.blocks.decay import add_decayed_weights
from gradtx.blocks.scaling import ScalarOrSchedule, scale_by_learning_rate
from gradtx.chains import Chain, labelled
from gradtx.contrib._common import lowest_dtype
from gradtx.data import hyper, pytree_dataclass, static


def _f32(*arrays: jax.Array) -> Any:
    return _tree.compute_dtype(*(a.dtype for a in arrays))


def _sum_abs(tree: Any) -> jax.Array:
    total: Any = 0
    for leaf in jax.tree.leaves(tree):
        total = total + jnp.sum(jnp.abs(leaf))
    return jnp.asarray(total)


# --- Prodigy -------------------------------------------------------------------------


class ProdigyState(NamedTuple):
    """State of `prodigy`: Adam's moments of the D-scaled gradient, the weighted sum of
    gradients, the starting point, the estimate ``d`` (``estim_lr``) and its numerator."""

    exp_avg: Updates
    exp_avg_sq: Updates
    grad_sum: Updates
    params0: Params
    estim_lr: jax.Array  # shape=(): d, the distance estimate
    numerator_weighted: jax.Array  # shape=()
    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]


@pytree_dataclass
class prodigy(Transform):
    r"""Prodigy: Adam whose step size ``d`` is estimated from the run (no tuning).

    .. math:: \eta_t = d_t\, \gamma_t \sqrt{1 - b_2^t} / (1 - b_1^t), \quad
              m_t = b_1 m_{t-1} + (1 - b_1) d_t g_t, \quad
              v_t = b_2 v_{t-1} + (1 - b_2) d_t^2 g_t^2,

    .. math:: r_t = b_3 r_{t-1} + (d_t / d_0)\, \eta_t \langle g_t, x_0 - x_t\rangle, \quad
              s_t = b_3 s_{t-1} + (\eta_t / d_0)\, d_t g_t, \quad
              d_{t+1} = \max(d_t, c\, r_t / \lVert s_t \rVert_1),

    .. math:: u_t = -\eta_t\, m_t / (\sqrt{v_t} + d_t \epsilon) - \lambda \eta_t x_t

    with ``gamma`` the learning rate (a multiplier, 1 by default). One block: ``d`` is
    one number for the whole tree (module docstring), and it scales the moments, the
    step and the weight decay together.

    Args:
      learning_rate: ``gamma``, a multiplier of the estimated step (a number or a schedule).
      betas: ``(b1, b2)``, Adam's decays.
      beta3: decay of the estimate's sums (default ``sqrt(b2)``).
      eps: added to the denominator (times ``d``).
      estim_lr0: ``d_0``, the initial estimate.
      estim_lr_coef: ``c``, a multiplier of the estimate.
      weight_decay: decoupled weight decay, >= 0.
      safeguard_warmup: leave the learning rate out of ``s`` (for warm-up schedules).

    Returns:
      A transform whose state is `ProdigyState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.prodigy(estim_lr0=0.5, eps=0.0)
      >>> p = jnp.zeros(2)
      >>> opt.update(jnp.ones(2), opt.init(p), p)[0].round(4)  # -d_0 * sign(g) at the first step
      Array([-0.5, -0.5], dtype=float32)

    References:
      Mishchenko and Defazio, 2024, Prodigy: an expeditiously adaptive parameter-free
      learner (algorithm 4). ``optax.contrib.prodigy`` (same numbers).
    """

    learning_rate: ScalarOrSchedule = hyper(default=1.0, rule=_checks.rate)
    betas: Any = hyper(default=(0.9, 0.999))
    beta3: Any = hyper(default=None)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    estim_lr0: Any = hyper(default=1e-6, rule=_checks.positive)
    estim_lr_coef: Any = hyper(default=1.0, rule=_checks.nonnegative)
    weight_decay: Any = hyper(default=0.0, rule=_checks.nonnegative)
    safeguard_warmup: bool = static(default=False, rule=_checks.flag)
    _unchecked_fields = ("estim_lr", "numerator_weighted")

    def __post_init__(self) -> None:
        super().__post_init__()
        b1, b2 = self.betas
        _checks.check("prodigy", _checks.beta, b1=b1, b2=b2)

    def init(self, params: Params) -> ProdigyState:
        dtype = lowest_dtype(params)
        zeros = _tree.zeros_like(params)
        return ProdigyState(
            exp_avg=zeros,
            exp_avg_sq=zeros,
            grad_sum=zeros,
            params0=params,
            estim_lr=jnp.asarray(self.estim_lr0, dtype=dtype),
            numerator_weighted=jnp.zeros([], dtype),
            count=zero_count(),
        )

    def _update(self, updates: Updates, state: ProdigyState, params: Params | None, ctx: Context):
        del ctx
        require_params("prodigy", params, updates)
        beta1, beta2 = self.betas
        beta3 = beta2**0.5 if self.beta3 is None else self.beta3
        d0, coef, eps, wd = self.estim_lr0, self.estim_lr_coef, self.eps, self.weight_decay
        count_inc = safe_increment(state.count)
        sched = self.at("learning_rate", state.count)
        d = state.estim_lr
        bc = _tree.correction(beta2, count_inc) ** 0.5 / _tree.correction(beta1, count_inc)
        dlr = jnp.asarray(d.astype(bc.dtype) * sched * bc, dtype=d.dtype)
        dg = jax.tree.map(lambda g: _tree.to(d, g.dtype) * g, updates)
        numerator_acum = _tree.vdot(updates, jax.tree.map(lambda p0, p: p0 - p, state.params0, params))

        def moments(ea: jax.Array, eas: jax.Array, s: jax.Array, g: jax.Array) -> Any:
            dtype = _f32(ea, g)
            dgk = _tree.to(g, dtype)
            new_ea = beta1 * _tree.to(ea, dtype) + (1 - beta1) * dgk
            new_eas = beta2 * _tree.to(eas, dtype) + (1 - beta2) * dgk * dgk
            scale = (_tree.to(d, dtype) if self.safeguard_warmup else _tree.to(dlr, dtype)) * dgk / d0
            new_s = beta3 * _tree.to(s, dtype) + scale
            return new_ea.astype(ea.dtype), new_eas.astype(eas.dtype), new_s.astype(s.dtype)

        exp_avg, exp_avg_sq, grad_sum = _tree.unzip(
            updates, jax.tree.map(moments, state.exp_avg, state.exp_avg_sq, state.grad_sum, dg), 3
        )
        numerator = beta3 * state.numerator_weighted
        numerator = numerator + d / d0 * dlr * numerator_acum.astype(d.dtype)
        numerator = numerator.astype(state.numerator_weighted.dtype)
        estimate = coef * numerator / _sum_abs(grad_sum)
        new_d = jnp.maximum(d, estimate).astype(d.dtype)

        def step(ea: jax.Array, eas: jax.Array, p: jax.Array) -> jax.Array:
            dtype = _f32(ea, p)
            ea32, eas32, p32 = _tree.to(ea, dtype), _tree.to(eas, dtype), _tree.to(p, dtype)
            lr, d32 = _tree.to(dlr, dtype), _tree.to(d, dtype)
            return (-wd * lr * p32 - lr * ea32 / (jnp.sqrt(eas32) + d32 * eps)).astype(p.dtype)

        out = jax.tree.map(step, exp_avg, exp_avg_sq, params)
        return out, ProdigyState(exp_avg, exp_avg_sq, grad_sum, state.params0, new_d, numerator, count_inc)


# --- D-Adaptation --------------------------------------------------------------------


class DAdaptAdamWState(NamedTuple):
    """State of `dadapt_adamw`: Adam's moments, the weighted sum of gradients, the
    estimate ``d`` (``estim_lr``) and its numerator."""

    exp_avg: Updates
    exp_avg_sq: Updates
    grad_sum: Updates
    estim_lr: jax.Array  # shape=(): d
    numerator_weighted: jax.Array  # shape=()
    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]


@pytree_dataclass
class dadapt_adamw(Transform):
    r"""D-Adaptation's AdamW: Adam whose step ``d`` is a lower bound of the distance to
    the solution, estimated from the run.

    .. math:: \eta_t = d_t \gamma_t \sqrt{1 - b_2^t} / (1 - b_1^t), \quad
              m_t = b_1 m_{t-1} + (1 - b_1)\eta_t g_t, \quad
              v_t = b_2 v_{t-1} + (1 - b_2) g_t^2,

    .. math:: s_t = \sqrt{b_2} s_{t-1} + (1 - \sqrt{b_2})\eta_t g_t, \quad
              d_{t+1} = \max\Big(d_t, \frac{r_t}{(1 - \sqrt{b_2})\lVert s_t\rVert_1}\Big),
              \quad u_t = -m_t / (\sqrt{v_t} + \epsilon) - \lambda \eta_t x_t

    where ``r_t`` is the decayed sum of ``eta_t <g_t, s_{t-1} / (sqrt(v_{t-1}) + eps)>``.
    One block (see the module docstring).

    Args:
      learning_rate: ``gamma``, a multiplier of the estimated step (a number or a schedule).
      betas: ``(b1, b2)``, Adam's decays.
      eps: added to the denominator.
      estim_lr0: ``d_0``, the initial estimate.
      weight_decay: decoupled weight decay, >= 0.

    Returns:
      A transform whose state is `DAdaptAdamWState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.dadapt_adamw(estim_lr0=0.5, eps=0.0)
      >>> p = jnp.zeros(2)
      >>> opt.update(jnp.ones(2), opt.init(p), p)[0].round(4)  # -d_0 * sign(g) at the first step
      Array([-0.5, -0.5], dtype=float32)

    References:
      Defazio and Mishchenko, 2023, Learning-rate-free learning by D-Adaptation.
      ``optax.contrib.dadapt_adamw`` (same numbers).
    """

    learning_rate: ScalarOrSchedule = hyper(default=1.0, rule=_checks.rate)
    betas: Any = hyper(default=(0.9, 0.999))
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    estim_lr0: Any = hyper(default=1e-6, rule=_checks.positive)
    weight_decay: Any = hyper(default=0.0, rule=_checks.nonnegative)
    _unchecked_fields = ("estim_lr", "numerator_weighted")

    def __post_init__(self) -> None:
        super().__post_init__()
        b1, b2 = self.betas
        _checks.check("dadapt_adamw", _checks.beta, b1=b1, b2=b2)

    def init(self, params: Params) -> DAdaptAdamWState:
        dtype = lowest_dtype(params)
        zeros = _tree.zeros_like(params)
        return DAdaptAdamWState(
            exp_avg=zeros,
            exp_avg_sq=zeros,
            grad_sum=zeros,
            estim_lr=jnp.asarray(self.estim_lr0, dtype=dtype),
            numerator_weighted=jnp.zeros([], dtype),
            count=zero_count(),
        )

    def _update(self, updates: Updates, state: DAdaptAdamWState, params: Params | None, ctx: Context):
        del ctx
        require_params("dadapt_adamw", params, updates)
        beta1, beta2 = self.betas
        eps, wd = self.eps, self.weight_decay
        sb2 = beta2**0.5
        sched = self.at("learning_rate", state.count)
        count_inc = safe_increment(state.count)
        bc = _tree.correction(beta2, count_inc) ** 0.5 / _tree.correction(beta1, count_inc)
        dlr = (state.estim_lr.astype(bc.dtype) * sched * bc).astype(state.numerator_weighted.dtype)
        s_weighted = jax.tree.map(
            lambda sk, eas: sk / (jnp.sqrt(eas) + eps), state.grad_sum, state.exp_avg_sq
        )
        numerator_acum = _tree.vdot(updates, s_weighted)

        def moments(ea: jax.Array, eas: jax.Array, s: jax.Array, g: jax.Array) -> Any:
            dtype = _f32(ea, g)
            g32 = _tree.to(g, dtype)
            lr = _tree.to(dlr, dtype)
            new_ea = beta1 * _tree.to(ea, dtype) + (1 - beta1) * lr * g32
            new_eas = beta2 * _tree.to(eas, dtype) + (1 - beta2) * g32 * g32
            new_s = sb2 * _tree.to(s, dtype) + (1 - sb2) * lr * g32
            return new_ea.astype(ea.dtype), new_eas.astype(eas.dtype), new_s.astype(s.dtype)

        exp_avg, exp_avg_sq, grad_sum = _tree.unzip(
            updates, jax.tree.map(moments, state.exp_avg, state.exp_avg_sq, state.grad_sum, updates), 3
        )
        numerator = (
            sb2 * state.numerator_weighted + (1 - sb2) * dlr * numerator_acum.astype(dlr.dtype)
        ).astype(state.numerator_weighted.dtype)
        estimate = numerator / ((1 - sb2) * _sum_abs(grad_sum))
        new_d = jnp.maximum(state.estim_lr, estimate).astype(state.estim_lr.dtype)

        def step(ea: jax.Array, eas: jax.Array, p: jax.Array) -> jax.Array:
            dtype = _f32(ea, p)
            ea32, eas32, p32 = _tree.to(ea, dtype), _tree.to(eas, dtype), _tree.to(p, dtype)
            return (-wd * _tree.to(dlr, dtype) * p32 - ea32 / (jnp.sqrt(eas32) + eps)).astype(p.dtype)

        out = jax.tree.map(step, exp_avg, exp_avg_sq, params)
        return out, DAdaptAdamWState(exp_avg, exp_avg_sq, grad_sum, new_d, numerator, count_inc)


# --- DoG and DoWG --------------------------------------------------------------------


class DoGState(NamedTuple):
    """State of `scale_by_dog`: whether the next step is the first, the starting point,
    the largest distance from it so far and the sum of squared gradient norms."""

    is_init_step: jax.Array  # shape=(), dtype=bool
    init_params: Params
    max_dist: jax.Array  # shape=()
    sum_sq_norm_grads: jax.Array  # shape=()


@pytree_dataclass
class scale_by_dog(Transform):
    r"""DoG's step size: the largest distance travelled over the root of the summed
    squared gradient norms.

    .. math:: \bar r_t = \max(\bar r_{t-1}, \lVert x_t - x_0\rVert), \quad
              G_t = G_{t-1} + \lVert g_t\rVert^2, \quad u_t = \bar r_t g_t / \sqrt{G_t + \epsilon}

    ``init_step`` gives ``r_0``: ``("distance", r)`` uses ``r``; ``("heuristic", a)``
    uses ``a (1 + ||x_0||)``; ``("learning_rate", lr)`` takes ``lr`` as the first step's
    size instead.

    Args:
      init_step: how the first step's size is set (see above).
      eps: added under the root.

    Returns:
      A transform whose state is `DoGState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.scale_by_dog(("distance", 2.0), eps=0.0)
      >>> p = jnp.zeros(1)
      >>> tx.update(jnp.full(1, 4.0), tx.init(p), p)[0]  # 2 * 4 / 4
      Array([2.], dtype=float32)

    References:
      Ivgi et al., 2023, DoG is SGD's best friend. The block inside ``optax.contrib.dog``
      (same numbers).
    """

    init_step: Any = static(default=("heuristic", 1e-6))
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    _unchecked_fields = ("is_init_step", "max_dist", "sum_sq_norm_grads")

    def __post_init__(self) -> None:
        super().__post_init__()
        kind = self.init_step[0]
        if kind not in ("distance", "learning_rate", "heuristic"):
            raise InputError(
                "scale_by_dog",
                "init_step must be ('distance' | 'learning_rate' | 'heuristic', value), "
                f"got {self.init_step!r}",
            )

    def init(self, params: Params) -> DoGState:
        kind, value = self.init_step
        dtype = lowest_dtype(params)
        if kind == "distance":
            r = value
        elif kind == "heuristic":
            r = value * (1 + _tree.global_norm(params))
        else:
            r = 0.0
        return DoGState(
            is_init_step=jnp.asarray(True),
            init_params=params,
            max_dist=jnp.asarray(r, dtype=dtype),
            sum_sq_norm_grads=jnp.asarray(0.0, dtype=dtype),
        )

    def _update(self, updates: Updates, state: DoGState, params: Params | None, ctx: Context):
        del ctx
        require_params("scale_by_dog", params, updates)
        dist = _tree.global_norm(jax.tree.map(lambda a, b: a - b, state.init_params, params))
        max_dist = jnp.maximum(state.max_dist, dist).astype(state.max_dist.dtype)
        sum_sq = (state.sum_sq_norm_grads + _tree.sq_norm(updates)).astype(state.sum_sq_norm_grads.dtype)
        lr = max_dist / jnp.sqrt(sum_sq + self.eps)
        kind, value = self.init_step
        if kind == "learning_rate":
            lr = jnp.where(state.is_init_step, value, lr)
        out = jax.tree.map(lambda u: (lr * u).astype(u.dtype), updates)
        return out, DoGState(jnp.asarray(False), state.init_params, max_dist, sum_sq)


@_checks.checked(learning_rate=_checks.rate, eps=_checks.nonnegative)
def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: tuple[Literal["distance", "learning_rate", "heuristic"], Any] = ("heuristic", 1e-6),
    eps: Any = 1e-8,
    weight_decay: Any = None,
    mask: Any = None,
) -> Chain:
    r"""DoG (distance over gradients): SGD whose step is the distance travelled from the
    start over the root of the summed squared gradient norms.

    Args:
      learning_rate: a multiplier of DoG's step (1: the method as published).
      init_step: how the first step is set (see `scale_by_dog`).
      eps: added under the root.
      weight_decay: weight decay added to the gradient (None: none).
      mask: which parameters to decay.

    Returns:
      ``chain(add_decayed_weights(...) or identity(), scale_by_dog(...),
      scale_by_learning_rate(learning_rate))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.dog(init_step=("distance", 2.0), eps=0.0)
      >>> p = jnp.zeros(1)
      >>> opt.update(jnp.full(1, 4.0), opt.init(p), p)[0]
      Array([-2.], dtype=float32)

    References:
      Ivgi et al., 2023. ``optax.contrib.dog`` (same numbers).
    """
    return labelled(
        "dog",
        identity() if weight_decay is None else add_decayed_weights(weight_decay, mask),
        scale_by_dog(init_step, eps),
        scale_by_learning_rate(learning_rate),
    )


class DoWGState(NamedTuple):
    """State of `scale_by_dowg`: the starting point, the weighted sum of squared
    gradient norms and the estimated squared distance."""

    init_params: Params
    weighted_sq_norm_grads: jax.Array  # shape=()
    estim_sq_dist: jax.Array  # shape=()


@pytree_dataclass
class scale_by_dowg(Transform):
    r"""DoWG's step size: distance over *weighted* gradients.

    .. math:: \bar r^2_t = \max(\bar r^2_{t-1}, \lVert x_t - x_0\rVert^2), \quad
              v_t = v_{t-1} + \bar r^2_t \lVert g_t\rVert^2, \quad
              u_t = \bar r^2_t g_t / (\sqrt{v_t} + \epsilon)

    Args:
      init_estim_sq_dist: the initial squared distance (default: ``eps``).
      eps: added to the denominator.

    Returns:
      A transform whose state is `DoWGState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.scale_by_dowg(4.0, eps=0.0)
      >>> p = jnp.zeros(1)
      >>> tx.update(jnp.full(1, 3.0), tx.init(p), p)[0]  # 4 * 3 / sqrt(4 * 9)
      Array([2.], dtype=float32)

    References:
      Khaled et al., 2023, DoWG unleashed. The block inside ``optax.contrib.dowg``
      (same numbers).
    """

    init_estim_sq_dist: Any = hyper(default=None)
    eps: Any = hyper(default=1e-4, rule=_checks.nonnegative)
    _unchecked_fields = ("weighted_sq_norm_grads", "estim_sq_dist")

    def init(self, params: Params) -> DoWGState:
        dtype = lowest_dtype(params)
        start = self.eps if self.init_estim_sq_dist is None else self.init_estim_sq_dist
        return DoWGState(
            init_params=params,
            weighted_sq_norm_grads=jnp.asarray(0.0, dtype=dtype),
            estim_sq_dist=jnp.asarray(start, dtype=dtype),
        )

    def _update(self, updates: Updates, state: DoWGState, params: Params | None, ctx: Context):
        del ctx
        require_params("scale_by_dowg", params, updates)
        current = _tree.sq_norm(jax.tree.map(lambda a, b: a - b, state.init_params, params))
        estim = jnp.maximum(state.estim_sq_dist, current).astype(state.estim_sq_dist.dtype)
        weighted = (estim * _tree.sq_norm(updates) + state.weighted_sq_norm_grads).astype(estim.dtype)
        lr = estim / (jnp.sqrt(weighted) + self.eps)
        out = jax.tree.map(lambda u: (lr * u).astype(u.dtype), updates)
        return out, DoWGState(state.init_params, weighted, estim)


@_checks.checked(learning_rate=_checks.rate, eps=_checks.nonnegative)
def dowg(
    learning_rate: ScalarOrSchedule = 1.0,
    init_estim_sq_dist: Any = None,
    eps: Any = 1e-4,
    weight_decay: Any = None,
    mask: Any = None,
) -> Chain:
    r"""DoWG (distance over weighted gradients): a parameter-free SGD step size.

    Args:
      learning_rate: a multiplier of DoWG's step (1: the method as published).
      init_estim_sq_dist: the initial squared distance (default: ``eps``).
      eps: added to the denominator.
      weight_decay: weight decay added to the gradient (None: none).
      mask: which parameters to decay.

    Returns:
      ``chain(add_decayed_weights(...) or identity(), scale_by_dowg(...),
      scale_by_learning_rate(learning_rate))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.dowg(init_estim_sq_dist=4.0, eps=0.0)
      >>> p = jnp.zeros(1)
      >>> opt.update(jnp.full(1, 3.0), opt.init(p), p)[0]
      Array([-2.], dtype=float32)

    References:
      Khaled et al., 2023. ``optax.contrib.dowg`` (same numbers).
    """
    return labelled(
        "dowg",
        identity() if weight_decay is None else add_decayed_weights(weight_decay, mask),
        scale_by_dowg(init_estim_sq_dist, eps),
        scale_by_learning_rate(learning_rate),
    )


# --- COCOB ---------------------------------------------------------------------------


class COCOBState(NamedTuple):
    """State of `scale_by_cocob`: the starting point, the negated sum of gradients, the
    largest gradient magnitude, the sum of magnitudes and the reward, per coordinate."""

    init_particles: Params
    cumulative_gradients: Updates
    scale: Updates
    subgradients: Updates
    reward: Updates


@pytree_dataclass
class scale_by_cocob(Transform):
    r"""COCOB-Backprop: each coordinate bets a fraction of its wealth on the sign of
    the negated gradients' sum.

    .. math:: L_t = \max(L_{t-1}, |g_t|), \quad G_t = G_{t-1} + |g_t|, \quad
              R_t = \max(R_{t-1} - g_t (x_t - x_0), 0), \quad \theta_t = \theta_{t-1} - g_t,

    .. math:: x_{t+1} = x_0 + \frac{\theta_t}{L_t \max(G_t + L_t, \alpha L_t)}(L_t + R_t),
              \quad u_t = x_{t+1} - x_t

    The update already points downhill (it moves the parameters): optax's `cocob`
    scales the gradient by the learning rate *before* this block, without a sign flip.

    Args:
      alpha: bounds the first steps' bets (100 in the paper).
      eps: the initial ``L`` (avoids dividing by zero).

    Returns:
      A transform whose state is `COCOBState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.scale_by_cocob(alpha=1.0, eps=1e-8)
      >>> p = jnp.zeros(1)
      >>> tx.update(jnp.full(1, 2.0), tx.init(p), p)[0]  # -2 / (2 * 4) * 2
      Array([-0.5], dtype=float32)

    References:
      Orabona and Tommasi, 2017, Training deep networks without learning rates through
      coin betting (algorithm 2). ``optax.contrib.scale_by_cocob`` (same numbers).
    """

    alpha: Any = hyper(default=100.0, rule=_checks.positive)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)

    def init(self, params: Params) -> COCOBState:
        zeros = _tree.zeros_like(params)
        return COCOBState(
            init_particles=params,
            cumulative_gradients=zeros,
            scale=_tree.full_like(params, self.eps),
            subgradients=zeros,
            reward=zeros,
        )

    def _update(self, updates: Updates, state: COCOBState, params: Params | None, ctx: Context):
        del ctx
        require_params("scale_by_cocob", params, updates)
        alpha = self.alpha

        def step(c: jax.Array, p: jax.Array, p0: jax.Array, *stats: jax.Array) -> Any:
            cum, lmax, gsum, reward = stats  # the paper's theta, L, G and R
            out_dtype, dtype = c.dtype, _f32(c, p)
            c, p, p0 = _tree.to(c, dtype), _tree.to(p, dtype), _tree.to(p0, dtype)
            new_l = jnp.maximum(_tree.to(lmax, dtype), jnp.abs(c))
            new_g = _tree.to(gsum, dtype) + jnp.abs(c)
            new_r = jnp.maximum(_tree.to(reward, dtype) - c * (p - p0), 0)
            new_c = _tree.to(cum, dtype) - c
            out = -p + (p0 + new_c / (new_l * jnp.maximum(new_g + new_l, alpha * new_l)) * (new_l + new_r))
            return (
                out.astype(out_dtype),
                new_c.astype(cum.dtype),
                new_l.astype(lmax.dtype),
                new_g.astype(gsum.dtype),
                new_r.astype(reward.dtype),
            )

        results = jax.tree.map(
            step,
            updates,
            params,
            state.init_particles,
            state.cumulative_gradients,
            state.scale,
            state.subgradients,
            state.reward,
        )
        out, cumulative, scale, sub, reward = _tree.unzip(updates, results, 5)
        return out, COCOBState(state.init_particles, cumulative, scale, sub, reward)


@_checks.checked(learning_rate=_checks.rate, weight_decay=_checks.nonnegative)
def cocob(
    learning_rate: ScalarOrSchedule = 1.0,
    alpha: Any = 100.0,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Chain:
    r"""COCOB-Backprop: learning-rate-free SGD by coin betting.

    Args:
      learning_rate: scales the gradient before the bets (1: the method as published).
      alpha: bounds the first steps' bets.
      eps: the initial magnitude estimate.
      weight_decay: weight decay added to the gradient, >= 0.
      mask: which parameters to decay.

    Returns:
      ``chain(add_decayed_weights(...), scale_by_learning_rate(learning_rate,
      flip_sign=False), scale_by_cocob(alpha, eps))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.cocob(alpha=1.0)
      >>> p = jnp.zeros(1)
      >>> opt.update(jnp.full(1, 2.0), opt.init(p), p)[0]
      Array([-0.5], dtype=float32)

    References:
      Orabona and Tommasi, 2017. ``optax.contrib.cocob`` (same numbers).
    """
    return labelled(
        "cocob",
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate, flip_sign=False),
        scale_by_cocob(alpha, eps),
    )


# --- Mechanic ------------------------------------------------------------------------


class MechanicState(NamedTuple):
    """State of `mechanize`: the base optimizer's state, the step count, the per-beta
    statistics ``r, m, v, s`` of the scale's betting and the starting point ``x0``."""

    base_optimizer_state: Any
    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    r: jax.Array  # shape=(num_betas,)
    m: jax.Array  # shape=(num_betas,)
    v: jax.Array  # shape=(num_betas,)
    s: jax.Array  # shape=(num_betas,)
    x0: Params


@pytree_dataclass
class mechanize(Wrapper):
    r"""Mechanic: learns one scale ``s`` of a base optimizer's steps by online betting.

    The parameters are ``x_t = x_0 + s_t \Delta_t`` where ``\Delta_t`` sums the base
    optimizer's updates (divided by the scale). Each of ``num_betas`` bettors, with
    decays ``beta_i = 1 - 0.1^i``, bets on the correlation
    ``h_t = <g_t + \lambda ..., \Delta_{t-1}>``; ``s`` is the sum of their bets.

    A wrapper: the base optimizer sees the chain's slots as it would outside.

    Args:
      base_optimizer: the optimizer whose steps are scaled.
      weight_decay: Mechanic's weight decay on the correlation, >= 0.
      eps: numerical stability.
      s_init: the initial scale (split among the bettors).
      num_betas: the number of bettors (>= 1).

    Returns:
      A transform whose state is `MechanicState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.mechanize(gradtx.sgd(1.0), s_init=0.5, num_betas=1)
      >>> p = jnp.ones(2)
      >>> opt.update(jnp.ones(2), opt.init(p), p)[0]  # -s_init * g at the first step
      Array([-0.5, -0.5], dtype=float32)

    References:
      Cutkosky et al., 2023, Mechanic: a learning rate tuner. ``optax.contrib.mechanize``
      (same numbers).
    """

    base_optimizer: Transform = hyper()
    weight_decay: Any = hyper(default=0.01, rule=_checks.nonnegative)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    s_init: Any = hyper(default=1e-6, rule=_checks.positive)
    num_betas: int = static(default=6, rule=_checks.positive_int)

    _inner_field = "base_optimizer"
    _inner_state_field = "base_optimizer_state"

    def init(self, params: Params) -> MechanicState:
        dtype = lowest_dtype(params)
        n = self.num_betas
        return MechanicState(
            base_optimizer_state=self.base_optimizer.init(params),
            count=zero_count(),
            r=jnp.zeros([n], dtype),
            m=jnp.zeros([n], dtype),
            v=jnp.zeros([n], dtype),
            s=jnp.ones([n], dtype) * self.s_init,
            x0=params,
        )

    def _update(self, updates: Updates, state: MechanicState, params: Params | None, ctx: Context):
        require_params("mechanize", params, updates)
        wd, eps, s_init = self.weight_decay, self.eps, self.s_init
        base_updates, base_state = self.base_optimizer._apply(
            updates, state.base_optimizer_state, params, ctx.carried(lambda tree: tree)
        )
        x0 = jax.tree.map(lambda p, x: jnp.where(state.count == 0, p, x), params, state.x0)
        s_sum = jnp.sum(state.s)
        grad_norm = _tree.global_norm(updates)
        param_norm = _tree.global_norm(params)
        factor = wd * s_sum * grad_norm / (param_norm + eps)
        decayed = jax.tree.map(lambda g, p: g + (factor * p).astype(g.dtype), updates, params)
        delta_prev = jax.tree.map(lambda x, a: ((a - x) / (s_sum + eps)).astype(x.dtype), params, x0)
        delta = jax.tree.map(lambda d, u: d - u, delta_prev, base_updates)
        h = _tree.vdot(decayed, delta_prev).astype(state.m.dtype)
        clipped_h = jax.lax.clamp(-state.m, jnp.ones_like(state.m) * h, state.m)
        betas = jnp.array([1.0 - 0.1**i for i in range(1, self.num_betas + 1)], dtype=state.s.dtype)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = betas**2 * state.v + h**2
        r = betas * state.r + clipped_h * state.s
        wealth = s_init / self.num_betas * m + jnp.maximum(0.0, r)
        s = wealth / (jnp.sqrt(v) + eps)
        s_total = jnp.sum(s)

        def step(a: jax.Array, d: jax.Array, p: jax.Array) -> jax.Array:
            new = a - (s_total * d).astype(a.dtype)
            return new - p

        out = jax.tree.map(step, x0, delta, params)
        return out, MechanicState(base_state, safe_increment(state.count), r, m, v, s, x0)


__all__ = [
    "COCOBState",
    "DAdaptAdamWState",
    "DoGState",
    "DoWGState",
    "MechanicState",
    "ProdigyState",
    "cocob",
    "dadapt_adamw",
    "dog",
    "dowg",
    "mechanize",
    "prodigy",
    "scale_by_cocob",
    "scale_by_dog",
    "scale_by_dowg",
]
