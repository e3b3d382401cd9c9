"""PyTorch's gradient clipping as blocks: ``torch.nn.utils.clip_grad_norm_`` (one norm
over all parameters, any ``norm_type``) and ``clip_grad_value_``."""

from __future__ import annotations

import math
from typing import Any

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
)
from gradtx.blocks.clipping import clip
from gradtx.data import hyper, pytree_dataclass, static


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


def clip_grad_value(clip_value: Any) -> Transform:
    """``torch.nn.utils.clip_grad_value_`` as a block: each coordinate clipped to
    ``[-clip_value, clip_value]`` (`gradtx.clip`).

    Args:
      clip_value: the bound, >= 0.

    Returns:
      ``clip(clip_value)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.torch.clip_grad_value(1.0)
      >>> tx.update(jnp.array([-3.0, 0.5]), tx.init(jnp.zeros(2)))[0]
      Array([-1. ,  0.5], dtype=float32)

    References:
      ``torch.nn.utils.clip_grad_value_``.
    """
    _checks.check("clip_grad_value", _checks.nonnegative, clip_value=clip_value)
    return clip(clip_value)
