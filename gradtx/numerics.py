"""Numerics helpers under optax's names: safe norms, moment updates over trees, counters.

These are the tree functions optax exports at its top level (``optax.update_moment``,
``optax.safe_norm``, ...), with optax's arguments and numbers. gradtx's own transforms
use the mixed-precision helpers of `gradtx.tree`; these are for code ported from optax.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _tree
from gradtx._checks import InputError
from gradtx.base import safe_increment

PyTree = Any

safe_int32_increment = safe_increment


def abs_sq(x: Any) -> jax.Array:
    """``|x|^2``: the squared magnitude, real also for complex ``x`` (``x * conj(x)``).

    Args:
      x: an array.

    Returns:
      A real array shaped like ``x``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.numerics.abs_sq(jnp.asarray([3 + 4j]))
      Array([25.], dtype=float32)

    References:
      ``optax._src.numerics.abs_sq``.
    """
    if not isinstance(x, (np.ndarray, jax.Array)):
        raise InputError("abs_sq", f"expected an array, got {x!r}")
    return _tree.abs_sq(jnp.asarray(x))


def safe_norm(
    x: Any,
    min_norm: Any,
    ord: int | float | str | None = None,
    axis: tuple[int, ...] | int | None = None,
    keepdims: bool = False,
) -> jax.Array:
    """``max(norm(x), min_norm)``, with a gradient that stays finite at ``x = 0``.

    Where the norm is at most ``min_norm``, ``x`` is replaced by ones before the norm
    that is differentiated, so ``jax.grad`` never divides by zero.

    Args:
      x: an array.
      min_norm: the smallest value returned.
      ord: the norm's order, as ``jnp.linalg.norm``.
      axis: the axes reduced, as ``jnp.linalg.norm``.
      keepdims: keep the reduced axes.

    Returns:
      The norm, at least ``min_norm``.

    Example:
      >>> import gradtx, jax, jax.numpy as jnp
      >>> jax.grad(lambda x: gradtx.safe_norm(x, 1e-6))(jnp.zeros(2))
      Array([0., 0.], dtype=float32)

    References:
      ``optax.safe_norm`` (same numbers and gradients).
    """
    norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=True)
    x = jnp.where(norm <= min_norm, jnp.ones_like(x), x)
    norm = norm if keepdims else jnp.squeeze(norm, axis=axis)
    masked_norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    return jnp.where(norm <= min_norm, jnp.asarray(min_norm, masked_norm.dtype), masked_norm)


def safe_root_mean_squares(x: Any, min_rms: Any) -> jax.Array:
    """``max(sqrt(mean(|x|^2)), min_rms)``, with a gradient that stays finite at 0.

    Args:
      x: an array.
      min_rms: the smallest value returned.

    Returns:
      The root mean square of ``x``, at least ``min_rms``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.safe_root_mean_squares(jnp.asarray([3.0, 4.0]), 1e-6)
      Array(3.535534, dtype=float32)

    References:
      ``optax.safe_root_mean_squares`` (same numbers and gradients).
    """
    rms = jnp.sqrt(jnp.mean(abs_sq(x)))
    x = jnp.where(rms <= min_rms, jnp.ones_like(x), x)
    return jnp.where(rms <= min_rms, jnp.asarray(min_rms, rms.dtype), jnp.sqrt(jnp.mean(abs_sq(x))))


def global_norm(updates: PyTree) -> jax.Array:
    """The L2 norm of all leaves of ``updates`` together (``|x|`` for complex leaves).

    Args:
      updates: a pytree of arrays.

    Returns:
      A scalar in the widest dtype of the leaves.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.global_norm({"a": jnp.asarray([3.0]), "b": jnp.asarray([4.0])})
      Array(5., dtype=float32)

    References:
      ``optax.global_norm`` (deprecated there for ``optax.tree.norm``; same numbers).
    """
    return _tree.global_norm(updates)


def _map_moment(fn: Any, updates: PyTree, moments: PyTree) -> PyTree:
    return jax.tree.map(
        lambda g, t: None if g is None else fn(g, t), updates, moments, is_leaf=lambda x: x is None
    )


def update_moment(updates: PyTree, moments: PyTree, decay: Any, order: int) -> PyTree:
    """``(1 - decay) * g**order + decay * m`` for every leaf: one EMA step of a moment.

    Args:
      updates: the gradients ``g``.
      moments: the moments ``m``, shaped like ``updates``.
      decay: the averaging coefficient.
      order: the power of ``g``.

    Returns:
      The new moments.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.update_moment(jnp.asarray([2.0]), jnp.asarray([1.0]), 0.5, 2)
      Array([2.5], dtype=float32)

    References:
      ``optax.update_moment`` (same expression; for complex ``g`` and order 2 use
      `update_moment_per_elem_norm`, which squares ``|g|``).
    """
    return _map_moment(lambda g, t: (1 - decay) * (g**order) + decay * t, updates, moments)


def update_moment_per_elem_norm(updates: PyTree, moments: PyTree, decay: Any, order: int) -> PyTree:
    """``(1 - decay) * |g|**order + decay * m``: `update_moment` of the elementwise norm.

    Args:
      updates: the gradients ``g`` (real or complex).
      moments: the moments ``m``.
      decay: the averaging coefficient.
      order: the power of ``|g|``.

    Returns:
      The new moments (real).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.update_moment_per_elem_norm(jnp.asarray([3 + 4j]), jnp.zeros(1), 0.5, 2)
      Array([12.5], dtype=float32)

    References:
      ``optax.update_moment_per_elem_norm`` (same numbers).
    """

    return _map_moment(lambda g, t: (1 - decay) * _tree.moment_power(g, order) + decay * t, updates, moments)


def update_infinity_moment(updates: PyTree, moments: PyTree, decay: Any, eps: Any) -> PyTree:
    """``max(|g| + eps, decay * m)`` for every leaf: Adamax's decaying maximum.

    Args:
      updates: the gradients ``g``.
      moments: the running maxima ``m``.
      decay: the decay of the maximum.
      eps: added to ``|g|``.

    Returns:
      The new maxima.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.update_infinity_moment(jnp.asarray([-2.0]), jnp.asarray([4.0]), 0.9, 0.0)
      Array([3.6], dtype=float32)

    References:
      ``optax.update_infinity_moment`` (same numbers).
    """
    return _map_moment(lambda g, t: jnp.maximum(jnp.abs(g) + eps, decay * t), updates, moments)
