r"""Sophia (Liu et al., 2024): Adam's momentum over a clipped diagonal-Hessian
preconditioner, refreshed every few steps by an estimator such as Hutchinson's.

A composition on the chain's channel: ``chain(momentum(b1), scale_by_diag_hessian(...),
clip(clip_threshold), add_decayed_weights(...), scale_by_learning_rate(lr))``.
``update(..., obj_fn=loss_of_params)`` hands the estimator the function whose
Hessian it samples.
"""

from __future__ import annotations

from typing import Any, NamedTuple

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
from gradtx.blocks.clipping import clip
from gradtx.blocks.decay import add_decayed_weights
from gradtx.blocks.momentum import MomentumState, momentum
from gradtx.blocks.scaling import ScalarOrSchedule, scale_by_learning_rate
from gradtx.chains import Chain, labelled
from gradtx.contrib._common import find_state, lowest_dtype
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.tree_utils import tree_random_like


class HutchinsonState(NamedTuple):
    """State of `hutchinson_estimator_diag_hessian`: the random key."""

    key: jax.Array


@pytree_dataclass
class hutchinson_estimator_diag_hessian(Transform):
    r"""Hutchinson's estimate of the Hessian's diagonal: ``z * (H z)`` for random signs ``z``.

    .. math:: \hat h = z \odot \nabla^2 f(x)\, z, \qquad z_i \in \{-1, 1\}

    whose expectation is ``diag(H)``. ``update(updates, state, params, obj_fn=f)``
    ignores ``updates`` and returns the estimate at ``params``.

    Args:
      random_seed: a JAX random key (default ``jax.random.PRNGKey(0)``).

    Returns:
      A transform whose state is `HutchinsonState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> est = gradtx.contrib.hutchinson_estimator_diag_hessian()
      >>> p = jnp.asarray([1.0, 2.0])
      >>> f = lambda x: jnp.sum(x**3)  # diagonal Hessian 6 x: exact for any signs
      >>> est.update(p, est.init(p), p, obj_fn=f)[0]
      Array([ 6., 12.], dtype=float32)

    References:
      Hutchinson, 1989; Liu et al., 2024, Sophia (section 2.3).
      ``optax.contrib.hutchinson_estimator_diag_hessian`` (same numbers).
    """

    random_seed: Any = static(default=None)
    _check_buffers = False

    def init(self, params: Params) -> HutchinsonState:
        del params
        return HutchinsonState(
            key=self.random_seed if self.random_seed is not None else jax.random.PRNGKey(0)
        )

    def _update(self, updates: Updates, state: HutchinsonState, params: Params | None, ctx: Context):
        del updates
        if params is None:
            raise InputError("hutchinson_estimator_diag_hessian", "update needs the parameters.")
        obj_fn = ctx.extra.get("obj_fn")
        if obj_fn is None:
            raise InputError(
                "hutchinson_estimator_diag_hessian",
                "update needs the objective: call update(..., obj_fn=f), f a function of the parameters.",
            )
        key, subkey = jax.random.split(state.key)
        signs = tree_random_like(subkey, params, jax.random.rademacher, dtype=jnp.float32)
        signs = jax.tree.map(lambda s: s.astype(lowest_dtype(params, real=False)), signs)
        hvp = jax.jvp(jax.grad(obj_fn), (params,), (signs,))[1]
        return jax.tree.map(lambda h, r: h * r, hvp, signs), HutchinsonState(key=key)


class ScaleByDiagHessianState(NamedTuple):
    """State of `scale_by_diag_hessian`: the step count, the moving average ``nu`` of
    the Hessian's diagonal and the estimator's state."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    nu: Updates
    hessian_fn_state: Any


@pytree_dataclass
class scale_by_diag_hessian(Wrapper):
    r"""Divides the updates by a moving average of the Hessian's diagonal, floored.

    .. math:: u_t = x_t / \max(\gamma h_{t-1}, \epsilon), \qquad
              h_t = b_2 h_{t-1} + (1 - b_2)\hat h_t \ \text{every } k \text{ steps}

    where ``hat h_t`` is ``hessian_diagonal_fn``'s estimate (it reads the chain's
    ``gradient`` slot as its updates, and ``obj_fn`` from ``update``'s keyword
    arguments), taken at steps 0, k, 2k, ... after the division.

    Args:
      b2: decay of the Hessian average, in [0, 1).
      eps: the floor of the denominator.
      gamma: the scale of the Hessian in the denominator.
      update_interval: ``k``, the steps between estimates.
      hessian_diagonal_fn: the estimator (None: `hutchinson_estimator_diag_hessian()`).
      verbose: print the fraction of coordinates not clipped (``clip_threshold``)
        every ``print_win_rate_every_n_steps`` steps.
      clip_threshold: the clipping bound the win rate refers to (None: no print).
      print_win_rate_every_n_steps: see ``verbose``.

    Returns:
      A transform whose state is `ScaleByDiagHessianState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.scale_by_diag_hessian(gamma=1.0, eps=0.5)
      >>> p = jnp.ones(1)
      >>> tx.update(jnp.full(1, 2.0), tx.init(p), p, obj_fn=lambda x: jnp.sum(x**2))[0]  # 2 / 0.5
      Array([4.], dtype=float32)

    References:
      Liu et al., 2024, Sophia (algorithm 3). The part of ``optax.contrib``'s
      ``scale_by_sophia`` after its first moment.
    """

    b2: Any = hyper(default=0.99, complement=True, rule=_checks.beta)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    gamma: Any = hyper(default=0.01, rule=_checks.nonnegative)
    update_interval: int = static(default=10, rule=_checks.positive_int)
    hessian_diagonal_fn: Any = hyper(default=None)
    verbose: bool = static(default=False, kw_only=True, rule=_checks.flag)
    clip_threshold: Any = static(default=None, kw_only=True)
    print_win_rate_every_n_steps: int = static(default=0, kw_only=True)

    slots_read = ("gradient",)
    _inner_field = "hessian_diagonal_fn"
    _inner_state_field = "hessian_fn_state"

    def __post_init__(self) -> None:
        if self.hessian_diagonal_fn is None:
            object.__setattr__(self, "hessian_diagonal_fn", hutchinson_estimator_diag_hessian())
        super().__post_init__()

    def init(self, params: Params) -> ScaleByDiagHessianState:
        return ScaleByDiagHessianState(
            count=zero_count(),
            nu=_tree.zeros_like(params),
            hessian_fn_state=self.hessian_diagonal_fn.init(params),
        )

    def _update(self, updates: Updates, state: ScaleByDiagHessianState, params: Params | None, ctx: Context):
        require_params("sophia", params, updates)
        gradient = ctx.read(self, "gradient", fallback=updates)
        gamma, eps, b2, one_minus_b2 = self.gamma, self.eps, self.b2, self.one_minus("b2")
        out = jax.tree.map(lambda m, h: m / jnp.maximum(gamma * h, eps).astype(m.dtype), updates, state.nu)
        count = safe_increment(state.count)
        if self.verbose and self.clip_threshold is not None:
            kept = sum(jnp.sum(jnp.abs(u) < self.clip_threshold) for u in jax.tree.leaves(out))
            rate = kept / sum(u.size for u in jax.tree.leaves(out))
            jax.lax.cond(
                count % self.print_win_rate_every_n_steps == 0,
                lambda: jax.debug.print("Sophia optimizer win rate: {}", rate),
                lambda: None,
            )
        inner = ctx.inside()

        def refresh(fn_state: Any, nu: Any) -> tuple[Any, Any]:
            estimate, fn_state = self.hessian_diagonal_fn._apply(gradient, fn_state, params, inner)
            nu = jax.tree.map(
                lambda h, n: _tree.ema_step(h, n, b2, one_minus_b2, 1).astype(n.dtype), estimate, nu
            )
            return fn_state, nu

        fn_state, nu = jax.lax.cond(
            state.count % self.update_interval == 0,
            refresh,
            lambda h, n: (h, n),
            state.hessian_fn_state,
            state.nu,
        )
        return out, ScaleByDiagHessianState(count=count, nu=nu, hessian_fn_state=fn_state)


class SophiaState(NamedTuple):
    """optax's Sophia state: the step count, the first moment, the Hessian average
    and the estimator's state. gradtx keeps them in the blocks of `sophia`
    (`gradtx.momentum`'s ``mu``, `scale_by_diag_hessian`'s ``nu``); build optax's
    layout with ``SophiaState.of(state)``.

    Attributes:
      count: the number of steps taken (int32).
      mu: the first moment.
      nu: the average of the Hessian's diagonal.
      hessian_fn_state: the estimator's state.
    """

    count: Any  # shape=(), dtype=int32
    mu: Any
    nu: Any
    hessian_fn_state: Any

    @classmethod
    def of(cls, state: Any) -> SophiaState:
        """The optax layout of a gradtx Sophia state."""

        moment = find_state("SophiaState", state, MomentumState, "a sophia optimizer")
        hessian = find_state("SophiaState", state, ScaleByDiagHessianState, "a sophia optimizer")
        return cls(moment.count, moment.mu, hessian.nu, hessian.hessian_fn_state)


@_checks.checked(learning_rate=_checks.rate, b1=_checks.beta, weight_decay=_checks.nonnegative)
def sophia(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.965,
    b2: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-4,
    weight_decay_mask: Any = None,
    gamma: Any = 0.01,
    clip_threshold: Any = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: Transform | None = None,
    mu_dtype: Any = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> Chain:
    r"""Sophia: a clipped, Hessian-preconditioned momentum.

    .. math:: W \leftarrow W - \eta\,\big(\mathrm{clip}(\hat m_t / \max(\gamma h_t, \epsilon),
              \pm\rho) + \lambda W\big)

    Pass the loss as a function of the parameters: ``update(grads, state, params,
    obj_fn=lambda p: loss(p, batch))``; the Hessian is estimated every
    ``update_interval`` steps.

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1: decay of the first moment, in [0, 1).
      b2: decay of the Hessian average.
      eps: the floor of the denominator.
      weight_decay: decoupled weight decay, >= 0.
      weight_decay_mask: which parameters to decay.
      gamma: the scale of the Hessian.
      clip_threshold: ``rho`` (None: no clipping).
      update_interval: steps between Hessian estimates.
      hessian_diagonal_fn: the estimator (default: `hutchinson_estimator_diag_hessian`
        with key 0, as optax's).
      mu_dtype: dtype of the first moment.
      verbose: print the fraction of coordinates not clipped.
      print_win_rate_every_n_steps: how often to print it.

    Returns:
      ``chain(momentum(b1), scale_by_diag_hessian(...), clip(clip_threshold),
      add_decayed_weights(...), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.sophia(0.1, weight_decay=0.0)
      >>> p = jnp.ones(1)
      >>> opt.update(jnp.full(1, 2.0), opt.init(p), p, obj_fn=lambda x: jnp.sum(x**2))[0]
      Array([-0.1], dtype=float32)

    References:
      Liu et al., 2024, Sophia: a scalable stochastic second-order optimizer for
      language model pre-training. ``optax.contrib.sophia`` (same numbers).
    """
    return labelled(
        "sophia",
        momentum(b1, mu_dtype=mu_dtype),
        scale_by_diag_hessian(
            b2,
            eps,
            gamma,
            update_interval,
            hutchinson_estimator_diag_hessian() if hessian_diagonal_fn is None else hessian_diagonal_fn,
            verbose=verbose,
            clip_threshold=clip_threshold,
            print_win_rate_every_n_steps=print_win_rate_every_n_steps,
        ),
        identity() if clip_threshold is None else clip(clip_threshold),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )


__all__ = [
    "HutchinsonState",
    "ScaleByDiagHessianState",
    "SophiaState",
    "hutchinson_estimator_diag_hessian",
    "scale_by_diag_hessian",
    "sophia",
]
