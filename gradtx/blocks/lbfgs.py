r"""L-BFGS's preconditioner: the inverse Hessian approximated from the last ``m``
differences of parameters and gradients, applied by the two-loop recursion.

With :math:`s_k = W_{k+1} - W_k`, :math:`y_k = g_{k+1} - g_k` and
:math:`\rho_k = 1 / \langle y_k, s_k \rangle`, the update is
:math:`u = H_k g_k` where :math:`H_k` is built from :math:`\gamma_k I`,
:math:`\gamma_k = \langle s, y \rangle / \lVert y \rVert^2` (the last pair), and the
``m`` stored pairs (Nocedal and Wright, 2006, algorithm 7.4).
"""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx.base import Context, Params, Transform, Updates, require_params, safe_increment
from gradtx.data import pytree_dataclass, static


class ScaleByLBFGSState(NamedTuple):
    """State of `scale_by_lbfgs`: the step count, the last parameters and gradients,
    the ``memory_size`` last differences of each (stacked on a leading axis) and their
    weights :math:`\\rho`."""

    count: jax.Array  # pyright: ignore[reportIncompatibleMethodOverride]
    params: Params
    updates: Updates
    diff_params_memory: Any
    diff_updates_memory: Any
    weights_memory: jax.Array


def _precondition(
    updates: Updates, dw: Any, du: Any, rhos: jax.Array, identity_scale: Any, memory_idx: jax.Array
) -> Updates:
    """The two-loop recursion: ``H u`` from the stored pairs, newest first then oldest."""
    memory_size = rhos.shape[0]
    indices = (memory_idx + jnp.arange(memory_size)) % memory_size

    def right(vec: Any, idx: jax.Array) -> tuple[Any, jax.Array]:
        dwi, dui = jax.tree.map(lambda x: x[idx], (dw, du))
        alpha = rhos[idx] * jnp.real(_tree.vdot(dwi, vec))
        return _tree.cast_like(_tree.add_scale(vec, -alpha, dui), vec), alpha

    out, alphas = jax.lax.scan(right, updates, indices, reverse=True)
    out = jax.tree.map(lambda x: _tree.to(jnp.asarray(identity_scale), x.dtype) * x, out)

    def left(vec: Any, idx_alpha: tuple[jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
        idx, alpha = idx_alpha
        dwi, dui = jax.tree.map(lambda x: x[idx], (dw, du))
        beta = rhos[idx] * jnp.real(_tree.vdot(dui, vec))
        return _tree.cast_like(_tree.add_scale(vec, alpha - beta, dwi), vec), beta

    out, _ = jax.lax.scan(left, out, (indices, alphas))
    return out


@pytree_dataclass
class scale_by_lbfgs(Transform):
    r"""Preconditions the updates by L-BFGS's approximation of the inverse Hessian.

    The memory is updated first, from the change since the previous call, then the
    current updates are preconditioned, so a line search after this block in a chain
    updates the memory only once a step has been taken. At the first step, with no
    pair stored, the updates are scaled by :math:`\min(1, 1 / \lVert g \rVert)`.

    Args:
      memory_size: the number of pairs kept, >= 1.
      scale_init_precond: start from :math:`\gamma_k I` (else from the identity).

    Returns:
      A transform whose state is `ScaleByLBFGSState`; ``update`` needs the parameters.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_lbfgs()
      >>> p = jnp.zeros(2)
      >>> tx.update(jnp.asarray([3.0, 4.0]), tx.init(p), p)[0]  # g / |g| at the first step
      Array([0.6, 0.8], dtype=float32)

    References:
      Nocedal and Wright, 2006, "Numerical optimization", algorithms 7.4 and 7.5.
      ``optax.scale_by_lbfgs`` (same numbers).
    """

    memory_size: int = static(default=10, rule=_checks.positive_int)
    scale_init_precond: bool = static(default=True, rule=_checks.flag)
    _check_buffers = False  # stacked memories

    def init(self, params: Params) -> ScaleByLBFGSState:
        stacked = jax.tree.map(lambda x: jnp.zeros((self.memory_size, *x.shape), x.dtype), params)
        return ScaleByLBFGSState(
            count=jnp.asarray(0, jnp.int32),
            params=_tree.zeros_like(params),
            updates=_tree.zeros_like(params),
            diff_params_memory=stacked,
            diff_updates_memory=stacked,
            weights_memory=jnp.zeros(self.memory_size),
        )

    def _update(self, updates: Updates, state: ScaleByLBFGSState, params: Params | None, ctx: Context):
        del ctx
        require_params("scale_by_lbfgs", params, updates)
        memory_idx = state.count % self.memory_size
        prev_idx = (state.count - 1) % self.memory_size

        diff_params = jax.tree.map(operator.sub, params, state.params)
        diff_updates = jax.tree.map(operator.sub, updates, state.updates)
        vdot = jnp.real(_tree.vdot(diff_updates, diff_params))
        weight = jnp.where(vdot == 0.0, jnp.zeros_like(vdot), 1.0 / vdot)
        started = state.count > 0
        diff_params, diff_updates, weight = jax.tree.map(
            lambda x: jnp.where(started, x, jnp.zeros_like(x)), (diff_params, diff_updates, weight)
        )
        dw, du, rhos = jax.tree.map(
            lambda memory, new: memory.at[prev_idx].set(_tree.to(new, memory.dtype)),
            (state.diff_params_memory, state.diff_updates_memory, state.weights_memory),
            (diff_params, diff_updates, weight),
        )

        if self.scale_init_precond:
            numerator = jnp.real(_tree.vdot(diff_updates, diff_params))
            denominator = _tree.sq_norm(diff_updates)
            scale = jnp.where(denominator > 0.0, numerator / denominator, jnp.ones_like(numerator))
            norm = jnp.sqrt(_tree.sq_norm(jax.lax.stop_gradient(updates)))
            capped = jnp.minimum(1.0, 1.0 / norm)
            identity_scale: Any = jnp.where(started, scale, _tree.to(capped, scale.dtype))
        else:
            identity_scale = 1.0

        out = _precondition(updates, dw, du, rhos, identity_scale, memory_idx)
        new_state = ScaleByLBFGSState(
            count=safe_increment(state.count),
            params=params,
            updates=updates,
            diff_params_memory=dw,
            diff_updates_memory=du,
            weights_memory=rhos,
        )
        return out, new_state
