"""Euclidean projections of a parameter tree onto convex sets: the nonnegative orthant,
boxes, the simplex, L1, L2 and L-infinity balls and spheres, hyperplanes and
half-spaces. A projection returns the nearest point of the set,

.. math:: \\Pi_C(x) = \\arg\\min_{y \\in C} \\lVert y - x \\rVert_2,

where the whole tree is one vector (the balls and the simplex couple the leaves).
Projected gradient descent applies one after each update::

    params = gradtx.apply_updates(params, updates)
    params = gradtx.projections.projection_non_negative(params)

optax's ``optax.projections`` module, with its names, signatures and numbers.

Example:
  >>> import gradtx, jax.numpy as jnp
  >>> gradtx.projections.projection_simplex(jnp.array([0.75, 0.25, 1.0]))
  Array([0.375, 0.   , 0.625], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import flatten_util

from gradtx import tree_utils

__all__ = [
    "projection_box",
    "projection_halfspace",
    "projection_hypercube",
    "projection_hyperplane",
    "projection_l1_ball",
    "projection_l1_sphere",
    "projection_l2_ball",
    "projection_l2_sphere",
    "projection_linf_ball",
    "projection_non_negative",
    "projection_simplex",
    "projection_vector",
]


def projection_non_negative(tree: Any) -> Any:
    """Onto the nonnegative orthant: :math:`\\max(x, 0)` leaf by leaf.

    Args:
      tree: the point.

    Returns:
      The projected tree.
    """
    return jax.tree.map(jax.nn.relu, tree)


def projection_box(tree: Any, lower: Any, upper: Any) -> Any:
    """Onto the box :math:`\\{y : l \\le y \\le u\\}`: clip each leaf.

    Args:
      tree: the point.
      lower: the lower bounds: a tree like ``tree``, or one number for every entry
        (optax accepts a number only when ``tree`` is one array).
      upper: the upper bounds, likewise.

    Returns:
      The projected tree.
    """
    return jax.tree.map(jnp.clip, tree, _bound_like(tree, lower), _bound_like(tree, upper))


def _bound_like(tree: Any, bound: Any) -> Any:
    # a single number (or array) bounds every leaf; optax requires a tree of bounds
    # unless ``tree`` is itself one array
    if jax.tree.structure(bound) == jax.tree.structure(tree) or not isinstance(
        bound, (int, float, jax.Array, np.ndarray)
    ):
        return bound
    return jax.tree.map(lambda _: bound, tree)


def projection_hypercube(tree: Any, scale: Any = 1) -> Any:
    """Onto the hypercube :math:`[0, s]^n`.

    Args:
      tree: the point.
      scale: :math:`s`, a scalar or a tree like ``tree``.

    Returns:
      The projected tree.
    """
    return projection_box(tree, lower=0, upper=scale)


@jax.custom_jvp
def _simplex_projection(values: jax.Array) -> jax.Array:
    # Held, Wolfe and Crowder (1974); Duchi et al. (2008), Fig. 1: sort decreasingly,
    # find the support size rho = max{j : u_j + (1 - sum_{i<=j} u_i) / j > 0}, shift by
    # the threshold (sum_{i<=rho} u_i - 1) / rho and clip at 0.
    u = jnp.sort(values)[::-1]
    partial = jnp.cumsum(u)
    j = jnp.arange(1, values.shape[0] + 1, dtype=values.dtype)
    rho = jnp.count_nonzero(1 / j + (u - partial / j) > 0)
    size = rho.astype(values.dtype)
    return jax.nn.relu(1 / size + (values - partial[rho - 1] / size))


@_simplex_projection.defjvp
def _simplex_projection_jvp(primals, tangents):
    (values,), (values_dot,) = primals, tangents
    out = _simplex_projection(values)
    # On the support S the projection is x - mean_S(x) + const: its Jacobian is the
    # centring matrix restricted to S (Martins and Astudillo, 2016, Prop. 2).
    support = (out > 0).astype(values.dtype)
    tangent = support * values_dot - jnp.dot(support, values_dot) / jnp.sum(support) * support
    return out, tangent


def projection_simplex(tree: Any, scale: Any = 1) -> Any:
    """Onto the simplex :math:`\\{y : y \\ge 0, \\sum y = s\\}`, all leaves together.

    Exact, by sorting (Duchi et al., 2008), :math:`O(n \\log n)`; differentiable almost
    everywhere, with the Jacobian of sparsemax.

    Args:
      tree: the point.
      scale: :math:`s > 0`, the sum of the result.

    Returns:
      The projected tree.

    References:
      Duchi et al., "Efficient Projections onto the l1-Ball for Learning in High
      Dimensions" (ICML 2008).
    """
    values, unravel = flatten_util.ravel_pytree(tree)
    return unravel(scale * _simplex_projection(values / scale))


def projection_l1_sphere(tree: Any, scale: Any = 1) -> Any:
    """Onto the L1 sphere :math:`\\{y : \\lVert y \\rVert_1 = s\\}`: the simplex
    projection of :math:`|x|`, with the signs of :math:`x` put back.

    Args:
      tree: the point.
      scale: :math:`s`.

    Returns:
      The projected tree.
    """
    magnitudes = projection_simplex(jax.tree.map(jnp.abs, tree), scale)
    return tree_utils.tree_mul(jax.tree.map(jnp.sign, tree), magnitudes)


def projection_l1_ball(tree: Any, scale: Any = 1) -> Any:
    """Onto the L1 ball :math:`\\{y : \\lVert y \\rVert_1 \\le s\\}`: the point itself if
    inside, else its projection on the sphere.

    Args:
      tree: the point.
      scale: :math:`s`.

    Returns:
      The projected tree.
    """
    inside = tree_utils.tree_norm(tree, ord=1) <= scale
    return jax.lax.cond(inside, lambda t: t, lambda t: projection_l1_sphere(t, scale), tree)


def projection_l2_sphere(tree: Any, scale: Any = 1) -> Any:
    """Onto the L2 sphere :math:`\\{y : \\lVert y \\rVert_2 = s\\}`:
    :math:`s x / \\lVert x \\rVert_2`.

    Args:
      tree: the point (not 0).
      scale: :math:`s`.

    Returns:
      The projected tree.
    """
    return tree_utils.tree_scale(scale / tree_utils.tree_norm(tree), tree)


def projection_l2_ball(tree: Any, scale: Any = 1) -> Any:
    """Onto the L2 ball :math:`\\{y : \\lVert y \\rVert_2 \\le s\\}`:
    :math:`x \\cdot s / \\max(\\lVert x \\rVert_2, s)`.

    Args:
      tree: the point.
      scale: :math:`s`.

    Returns:
      The projected tree.
    """
    squared = tree_utils.tree_norm(tree, squared=True)
    return tree_utils.tree_scale(scale / jnp.sqrt(jnp.maximum(squared, scale**2)), tree)


def projection_linf_ball(tree: Any, scale: Any = 1) -> Any:
    """Onto the L-infinity ball :math:`[-s, s]^n`: clip each entry.

    Args:
      tree: the point.
      scale: :math:`s`.

    Returns:
      The projected tree.
    """
    lower = tree_utils.tree_full_like(tree, -scale)
    upper = tree_utils.tree_full_like(tree, scale)
    return projection_box(tree, lower=lower, upper=upper)


def projection_vector(x: Any, a: Any) -> Any:
    """Onto the line spanned by :math:`a`: :math:`(\\langle x, a\\rangle / \\langle a, a
    \\rangle)\\, a`.

    Args:
      x: the point.
      a: the direction, a tree like ``x``.

    Returns:
      The projected tree (shaped like ``a``).
    """
    return tree_utils.tree_scale(tree_utils.tree_vdot(x, a) / tree_utils.tree_vdot(a, a), a)


def projection_hyperplane(x: Any, a: Any, b: Any) -> Any:
    """Onto the hyperplane :math:`\\{y : \\langle a, y \\rangle = b\\}`:
    :math:`x + \\frac{b - \\langle a, x\\rangle}{\\langle a, a\\rangle} a`.

    Args:
      x: the point.
      a: the normal, a tree like ``x``.
      b: the offset, a scalar.

    Returns:
      The projected tree.
    """
    step = (b - tree_utils.tree_vdot(x, a)) / tree_utils.tree_vdot(a, a)
    return tree_utils.tree_add_scale(x, step, a)


def projection_halfspace(x: Any, a: Any, b: Any) -> Any:
    """Onto the half-space :math:`\\{y : \\langle a, y \\rangle \\le b\\}`: the point
    itself if inside, else its projection on the boundary hyperplane.

    Args:
      x: the point.
      a: the normal, a tree like ``x``.
      b: the offset, a scalar.

    Returns:
      The projected tree.
    """
    step = jnp.clip((b - tree_utils.tree_vdot(x, a)) / tree_utils.tree_vdot(a, a), max=0)
    return tree_utils.tree_add_scale(x, step, a)
