"""Clipping: elementwise (`clip`) and by the global norm of all updates."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._checks import InputError
from gradtx.base import EmptyState, Params, Stateless, Updates, require_params
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.packed import map_leaves


@pytree_dataclass
class clip(Stateless):
    """Clips every coordinate of the updates to ``[-max_delta, max_delta]``.

    Args:
      max_delta: the largest magnitude kept, >= 0.

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.clip(1.0).update(jnp.array([-3.0, 0.5]), gradtx.EmptyState())[0]
      Array([-1. ,  0.5], dtype=float32)

    References:
      ``optax.clip`` (same numbers).
    """

    max_delta: Any = hyper(rule=_checks.nonnegative)

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del params
        max_delta = self.at("max_delta", count)

        def clip_one(g: jax.Array) -> jax.Array:
            bound = _tree.cast(max_delta, g.dtype)
            return jnp.clip(g, -bound, bound)

        return jax.tree.map(clip_one, updates)


@pytree_dataclass
class clip_by_global_norm(Stateless):
    r"""Scales all updates together so that their global L2 norm is at most ``max_norm``.

    .. math:: u = g \cdot \min(1, \text{max\_norm} / \lVert g \rVert_2)

    Written as one multiplication (not optax's ``select(norm < max, g, g / norm * max)``),
    so no second parameter-sized tree is kept alive; results agree with optax to the
    last bit or two. Unlike optax, ``max_norm = 0`` on all-zero updates gives zeros,
    not NaN.

    Args:
      max_norm: the largest global norm kept, >= 0.

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.clip_by_global_norm(1.0).update(jnp.array([3.0, 4.0]), gradtx.EmptyState())[0]
      Array([0.6, 0.8], dtype=float32)

    References:
      Pascanu et al., 2013. ``optax.clip_by_global_norm``.
    """

    max_norm: Any = hyper(rule=_checks.nonnegative)

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del params
        max_norm = self.at("max_norm", count)
        norm = _tree.global_norm(updates)
        bound = _tree.cast(max_norm, norm.dtype)
        # min(1, bound / norm), except that zero updates stay zero for a zero bound
        # (optax's 0 / 0 gives NaN there); the inner where keeps gradients finite.
        clipped = norm > bound
        factor = jnp.where(clipped, bound / jnp.where(clipped, norm, 1), 1)
        return jax.tree.map(lambda g: g * _tree.to(factor, g.dtype), updates)


ClipState = EmptyState
ClipByGlobalNormState = EmptyState
AdaptiveGradClipState = EmptyState


@pytree_dataclass
class clip_by_block_rms(Stateless):
    r"""Scales each leaf down so that its root mean square is at most ``threshold``.

    .. math:: u = g / \max(1, \sqrt{\text{mean}(|g|^2)} / \text{threshold})

    Args:
      threshold: the largest RMS kept per leaf, >= 0.

    Returns:
      A stateless transform (on packed parameters, each original leaf is clipped).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.clip_by_block_rms(1.0).update(jnp.asarray([3.0, 4.0]), gradtx.EmptyState())[0]
      Array([0.84852815, 1.1313709 ], dtype=float32)

    References:
      ``optax.clip_by_block_rms`` (same numbers).
    """

    threshold: Any = hyper()

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del params
        threshold = self.at("threshold", count)

        def clip_one(u: jax.Array) -> jax.Array:
            rms = jnp.sqrt(jnp.mean(_tree.abs_sq(u)))
            return u / jnp.maximum(1, rms / _tree.cast(threshold, rms.dtype)).astype(u.dtype)

        return map_leaves(clip_one, updates)


def unitwise_norm(x: jax.Array, axis: int | tuple[int, ...] | None = None) -> jax.Array:
    """The L2 norm of each unit of ``x``, broadcast to ``x``'s shape.

    A unit is a slice along ``axis``; without ``axis``, optax's rule by rank: a vector
    (or scalar) is one unit, a matrix or a rank-3 array is reduced over axis 0 (inputs of
    a linear layer, heads of attention), a rank-4 or rank-5 kernel over all axes but the
    last (convolutions' output channels).

    Args:
      x: an array (complex entries count ``|x|``).
      axis: the axes to reduce, or None for the rule above.

    Returns:
      An array shaped like ``x``.

    Raises:
      InputError: without ``axis``, for more than 5 dimensions.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.transforms.unitwise_norm(jnp.array([[3.0, 0.0], [4.0, 1.0]]))
      Array([[5., 1.],
             [5., 1.]], dtype=float32)

    References:
      Brock et al., 2021 (adaptive gradient clipping). ``optax.transforms.unitwise_norm``
      (same numbers).
    """
    if axis is not None:
        squared = jnp.sum(_tree.abs_sq(x), axis=axis, keepdims=True)
    elif jnp.squeeze(x).ndim <= 1:
        squared = jnp.sum(_tree.abs_sq(x), keepdims=True)
    elif x.ndim in (2, 3):
        squared = jnp.sum(_tree.abs_sq(x), axis=0, keepdims=True)
    elif x.ndim in (4, 5):
        squared = jnp.sum(_tree.abs_sq(x), axis=tuple(range(x.ndim - 1)), keepdims=True)
    else:
        raise InputError(
            "unitwise_norm",
            f"expected parameters of 1 to 5 dimensions, got shape {x.shape}; give axis= to say which axes "
            "to reduce.",
        )
    return jnp.broadcast_to(jnp.sqrt(squared), x.shape)


def unitwise_clip(g_norm: jax.Array, max_norm: jax.Array, grad: jax.Array, div_eps: Any = 1e-6) -> jax.Array:
    """``grad`` where its unit norm ``g_norm`` is below ``max_norm``, else ``grad`` scaled
    to ``max_norm``.

    Args:
      g_norm: the unit norms of ``grad`` (`unitwise_norm`), shaped like ``grad``.
      max_norm: the largest norm allowed per unit, shaped like ``grad``.
      grad: the gradient.
      div_eps: the smallest norm divided by (keeps a zero unit finite).

    Returns:
      The clipped gradient.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> g = jnp.array([3.0, 4.0])
      >>> gradtx.transforms.unitwise_clip(gradtx.transforms.unitwise_norm(g), jnp.full(2, 1.0), g)
      Array([0.6, 0.8], dtype=float32)

    References:
      ``optax.transforms.unitwise_clip`` (same numbers); used by `adaptive_grad_clip`.
    """
    clipped = grad * (max_norm / jnp.maximum(g_norm, _tree.cast(div_eps, g_norm.dtype)))
    return jnp.where(g_norm < max_norm, grad, clipped)


@pytree_dataclass
class adaptive_grad_clip(Stateless):
    r"""Adaptive gradient clipping: each unit's gradient norm is kept below
    ``clipping`` times its parameter norm.

    .. math:: g \leftarrow g \cdot \lambda \max(\lVert p \rVert, \epsilon) / \max(\lVert g \rVert, 10^{-6})
              \quad\text{where}\quad \lVert g \rVert \ge \lambda \max(\lVert p \rVert, \epsilon)

    Args:
      clipping: ``lambda``, the largest ratio of gradient to parameter norm.
      eps: the smallest parameter norm used.
      axis: the axes that make a unit (default: optax's rule by number of dimensions).

    Returns:
      A stateless transform; ``update`` needs the parameters.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> p = jnp.asarray([3.0, 4.0])
      >>> gradtx.adaptive_grad_clip(0.1).update(jnp.asarray([6.0, 8.0]), gradtx.EmptyState(), p)[0]
      Array([0.3, 0.4], dtype=float32)

    References:
      Brock et al., 2021, "High-performance large-scale image recognition without
      normalization". ``optax.adaptive_grad_clip`` (same numbers).
    """

    clipping: Any = hyper()
    eps: Any = hyper(default=1e-3, rule=_checks.nonnegative)
    axis: int | tuple[int, ...] | None = static(default=None)

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        require_params("adaptive_grad_clip", params, updates)
        clipping, eps = self.at("clipping", count), self.at("eps", count)

        def clip_one(g: jax.Array, p: jax.Array) -> jax.Array:
            g_norm, p_norm = unitwise_norm(g, self.axis), unitwise_norm(p, self.axis)
            max_norm = _tree.cast(clipping, p_norm.dtype) * jnp.maximum(p_norm, _tree.cast(eps, p_norm.dtype))
            return unitwise_clip(g_norm, max_norm, g)

        return map_leaves(clip_one, updates, params)


def _check_batch_dim(owner: str, grads: Any) -> None:
    leaves = jax.tree.leaves(grads)
    if not leaves or not all(g.ndim >= 1 and g.shape[0] == leaves[0].shape[0] for g in leaves):
        raise InputError(
            owner,
            "expects per-example gradients, every leaf with the same leading batch axis; got shapes "
            f"{jax.tree.map(jnp.shape, grads)}.",
        )


def per_example_global_norm_clip(grads: Any, l2_norm_clip: Any) -> tuple[Any, jax.Array]:
    """Clips each example's gradient to global norm ``l2_norm_clip`` and sums them
    (differentially private SGD).

    Args:
      grads: per-example gradients, each leaf with a leading batch axis.
      l2_norm_clip: the largest global norm of one example's gradient.

    Returns:
      ``(sum of the clipped gradients, number of examples clipped)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> g = jnp.asarray([[3.0, 4.0], [0.3, 0.4]])
      >>> total, n = gradtx.per_example_global_norm_clip(g, 1.0)
      >>> total, int(n)
      (Array([0.90000004, 1.2       ], dtype=float32), 1)

    References:
      Abadi et al., 2016, "Deep learning with differential privacy".
      ``optax.per_example_global_norm_clip`` (same numbers).
    """
    _check_batch_dim("per_example_global_norm_clip", grads)
    norms = jax.vmap(_tree.global_norm)(grads)
    multipliers = jnp.nan_to_num(jnp.minimum(l2_norm_clip / norms, 1.0), nan=1.0)
    num_clipped = jnp.sum(multipliers < 1.0)

    def weighted_sum(g: jax.Array) -> jax.Array:
        dtype = _tree.wider(g.dtype, multipliers.dtype)  # integer gradients sum as floats
        return jnp.tensordot(multipliers.astype(dtype), g.astype(dtype), axes=1)

    return jax.tree.map(weighted_sum, grads), num_clipped


def per_example_layer_norm_clip(
    grads: Any, global_l2_norm_clip: Any, uniform: bool = True
) -> tuple[Any, Any]:
    """Clips each example's gradient layer by layer, then sums over examples.

    Each leaf gets a share of ``global_l2_norm_clip``: equal shares (``uniform``) or in
    proportion to the root of its size, so the clipped global norm is at most the
    global bound.

    Args:
      grads: per-example gradients, each leaf with a leading batch axis.
      global_l2_norm_clip: the bound on the global norm of one example's gradient.
      uniform: equal shares (True) or shares by leaf size.

    Returns:
      ``(summed clipped gradients, number of examples clipped per leaf)``, two trees.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> g = {"a": jnp.asarray([[3.0, 4.0]]), "b": jnp.asarray([[0.1]])}
      >>> total, n = gradtx.per_example_layer_norm_clip(g, 2.0 ** 0.5)
      >>> total["a"], int(n["a"]), int(n["b"])
      (Array([0.6, 0.8], dtype=float32), 1, 0)

    References:
      ``optax.per_example_layer_norm_clip`` (same numbers).
    """
    _check_batch_dim("per_example_layer_norm_clip", grads)
    if uniform:
        n = len(jax.tree.leaves(grads))
        bounds = jax.tree.map(lambda _: global_l2_norm_clip * (1.0 / n) ** 0.5, grads)
    else:
        total = sum(g[0].size for g in jax.tree.leaves(grads))
        bounds = jax.tree.map(lambda g: global_l2_norm_clip * (g[0].size / total) ** 0.5, grads)
    result = jax.tree.map(per_example_global_norm_clip, grads, bounds)
    return _tree.unzip(grads, result, 2)
