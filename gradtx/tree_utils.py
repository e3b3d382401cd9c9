"""optax's tree utilities: tree math (`tree_norm`, `tree_add`, `tree_vdot`, ...), dtypes
and random trees, and reading and changing optimizer states by field name.

`gradtx.tree` gives the same functions optax's short names (``gradtx.tree.norm``); the
moment helpers (`tree_update_moment`, `tree_bias_correction`, ...) are gradtx's
top-level ``update_moment``, ``bias_correction``, ... under optax's ``tree_utils`` names.

`tree_get`, `tree_set` and `tree_get_all_with_path` keep optax's semantics: they look
into NamedTuples (by field or by class name) and dicts (by key), wherever they sit in
the state. A gradtx optimizer's state is the tuple of its blocks' states, and each block
that needs a step counts (adam has three ``count`` fields), so ``tree_get(state,
"count")`` finds several and raises, as optax's does; the optimizer's step is one call:
`step`.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _tree
from gradtx.blocks.momentum import bias_correction as tree_bias_correction
from gradtx.numerics import update_infinity_moment as tree_update_infinity_moment
from gradtx.numerics import update_moment as tree_update_moment
from gradtx.numerics import update_moment_per_elem_norm as tree_update_moment_per_elem_norm
from gradtx.packed import Packed, unpacked

__all__ = [
    "NamedTupleKey",
    "step",
    "tree_add",
    "tree_add_scale",
    "tree_allclose",
    "tree_batch_shape",
    "tree_bias_correction",
    "tree_cast",
    "tree_cast_like",
    "tree_clip",
    "tree_conj",
    "tree_div",
    "tree_dtype",
    "tree_full_like",
    "tree_get",
    "tree_get_all_with_path",
    "tree_map_params",
    "tree_max",
    "tree_min",
    "tree_mul",
    "tree_norm",
    "tree_ones_like",
    "tree_random_like",
    "tree_real",
    "tree_scale",
    "tree_set",
    "tree_size",
    "tree_split_key_like",
    "tree_sub",
    "tree_sum",
    "tree_unwrap_random_key_data",
    "tree_update_infinity_moment",
    "tree_update_moment",
    "tree_update_moment_per_elem_norm",
    "tree_vdot",
    "tree_where",
    "tree_zeros_like",
]

PyTree = Any
KeyPath = tuple[Any, ...]


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """A path entry: field ``name`` of a NamedTuple of class ``tuple_name``."""

    tuple_name: str
    name: str

    def __str__(self) -> str:
        return f"{self.tuple_name}.{self.name}"


def _is_named_tuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _has_key(node: Any, key: Any) -> bool:
    if _is_named_tuple(node):
        return key in node._fields or type(node).__name__ == key
    return isinstance(node, dict) and key in node


def _children(path: KeyPath, node: Any) -> list[tuple[KeyPath, Any]]:
    """The children of a node, with paths; NamedTuples by field name."""
    if _is_named_tuple(node):
        name = type(node).__name__
        return [((*path, NamedTupleKey(name, f)), getattr(node, f)) for f in node._fields]
    if isinstance(node, dict):
        return [((*path, jax.tree_util.DictKey(k)), v) for k, v in node.items()]
    if isinstance(node, (tuple, list)):
        return [((*path, jax.tree_util.SequenceKey(i)), v) for i, v in enumerate(node)]
    children = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)[0]
    if len(children) == 1 and children[0][1] is node:
        return []  # a leaf
    return [((*path, *p), v) for p, v in children]


def tree_get_all_with_path(
    tree: PyTree, key: Any, filtering: Callable[[KeyPath, Any], bool] | None = None
) -> list[tuple[KeyPath, Any]]:
    """Every value found under ``key`` (a NamedTuple field or class name, or a dict key),
    with its path.

    Args:
      tree: e.g. an optimizer state.
      key: the name to look for.
      filtering: ``fn(path, value) -> bool`` keeping only some of the values found.

    Returns:
      ``[(path, value), ...]`` in tree order.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> state = gradtx.adam(1e-3).init({"w": jnp.zeros(2)})
      >>> [str(path[-1]) for path, _ in gradtx.tree_utils.tree_get_all_with_path(state, "mu")]
      ['MomentumState.mu']

    References:
      ``optax.tree_utils.tree_get_all_with_path`` (same search).
    """
    found: list[tuple[KeyPath, Any]] = []

    def visit(path: KeyPath, node: Any) -> None:
        if _is_named_tuple(node) and type(node).__name__ == key:
            found.append((path, node))
        elif _has_key(node, key):
            if _is_named_tuple(node):
                found.append(((*path, NamedTupleKey(type(node).__name__, key)), getattr(node, key)))
            else:
                found.append(((*path, jax.tree_util.DictKey(key)), node[key]))
        for child_path, child in _children(path, node):
            visit(child_path, child)

    visit((), tree)
    if filtering is not None:
        found = [(p, v) for p, v in found if filtering(p, v)]
    return found


def tree_get(
    tree: PyTree, key: Any, default: Any = None, filtering: Callable[[KeyPath, Any], bool] | None = None
) -> Any:
    """The one value found under ``key``, or ``default`` if none.

    Args:
      tree: e.g. an optimizer state.
      key: a NamedTuple field or class name, or a dict key.
      default: returned when nothing is found.
      filtering: ``fn(path, value) -> bool`` keeping only some of the values found.

    Returns:
      The value.

    Raises:
      KeyError: if several values are found (use `filtering`, or `step` for the step).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> state = gradtx.adam(1e-3).init({"w": jnp.zeros(2)})
      >>> gradtx.tree_utils.tree_get(state, "nu")
      {'w': Array([0., 0.], dtype=float32)}

    References:
      ``optax.tree_utils.tree_get`` (same semantics).
    """
    found = tree_get_all_with_path(tree, key, filtering)
    if len(found) > 1:
        paths = ", ".join(jax.tree_util.keystr(p) if p else "<root>" for p, _ in found[:4])
        hint = " For the optimizer's step use gradtx.tree_utils.step(state)." if key == "count" else ""
        raise KeyError(f"tree_get: found {len(found)} values for {key!r} (at {paths}).{hint}")
    return found[0][1] if found else default


def tree_set(
    tree: PyTree, filtering: Callable[[KeyPath, Any], bool] | None = None, /, **kwargs: Any
) -> PyTree:
    """A copy of ``tree`` with the values under the given keys replaced.

    Args:
      tree: e.g. an optimizer state.
      filtering: ``fn(path, value) -> bool`` limiting which values are replaced.
      **kwargs: ``key=new_value``, for NamedTuple fields or class names and dict keys.

    Returns:
      The new tree.

    Raises:
      KeyError: if a key is found nowhere.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1)
      >>> state = opt.init(jnp.zeros(1))
      >>> state = gradtx.tree_utils.tree_set(state, hyperparams={"learning_rate": jnp.asarray(0.5)})
      >>> opt.update(jnp.ones(1), state)[0]
      Array([-0.5], dtype=float32)

    References:
      ``optax.tree_utils.tree_set`` (same semantics).
    """
    for key in kwargs:
        if not tree_get_all_with_path(tree, key, filtering):
            raise KeyError(
                f"tree_set: found no value for {key!r}" + (" passing the filter" if filtering else "")
            )

    def replace(path: KeyPath, node: Any) -> Any:
        if _is_named_tuple(node):
            if type(node).__name__ in kwargs and (filtering is None or filtering(path, node)):
                return kwargs[type(node).__name__]
            values = {}
            for child_path, child in _children(path, node):
                name = child_path[-1].name
                if name in kwargs and (filtering is None or filtering(child_path, child)):
                    values[name] = kwargs[name]
                else:
                    values[name] = replace(child_path, child)
            return type(node)(**values)
        if isinstance(node, dict):
            return {
                k: kwargs[k]
                if k in kwargs and (filtering is None or filtering((*path, jax.tree_util.DictKey(k)), v))
                else replace((*path, jax.tree_util.DictKey(k)), v)
                for k, v in node.items()
            }
        if isinstance(node, (tuple, list)):
            return type(node)(replace((*path, jax.tree_util.SequenceKey(i)), v) for i, v in enumerate(node))
        return node

    return replace((), tree)


_STEP_FIELDS = ("count", "gradient_step", "step")


def step(state: PyTree) -> jax.Array | None:
    """The optimizer's step: how many updates it has applied.

    The first step counter met in the state, depth first: inside a wrapper the inner
    optimizer's (for `gradtx.MultiSteps`, the emitted updates, not micro-batches; for
    `gradtx.apply_if_finite`, the updates applied). A gradtx optimizer's blocks all count
    the same steps.

    Args:
      state: an optimizer state (gradtx or optax).

    Returns:
      An int32 scalar, or None if the state counts nothing.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.adam(1e-3)
      >>> state = opt.init(jnp.zeros(2))
      >>> _, state = opt.update(jnp.ones(2), state)
      >>> int(gradtx.tree_utils.step(state))
      1

    References:
      gradtx's own: ``optax.tree_utils.tree_get(state, "count")`` raises on a state
      with several counters.
    """
    if _is_named_tuple(state):
        for name in state._fields:
            value = getattr(state, name)
            if name not in _STEP_FIELDS and (
                _is_named_tuple(value) or isinstance(value, (tuple, list, dict))
            ):
                found = step(value)
                if found is not None:
                    return found
        for name in _STEP_FIELDS:
            if name in state._fields and getattr(state, name) is not None:
                return getattr(state, name)
        return None
    children = (
        state.values() if isinstance(state, dict) else state if isinstance(state, (tuple, list)) else ()
    )
    for child in children:
        found = step(child)
        if found is not None:
            return found
    return None


# --- optax's tree math (optax.tree_utils.tree_*, optax.tree.*) ------------------------
# Each function has optax's signature and numbers; `gradtx.tree` gives them optax's
# short names (``gradtx.tree.norm`` is `tree_norm`).


def tree_add(tree_x: PyTree, tree_y: PyTree, *other_trees: PyTree) -> PyTree:
    """Leafwise sum of two or more trees.

    Args:
      tree_x: a tree.
      tree_y: a tree of the same structure.
      *other_trees: more trees to add.

    Returns:
      The sum, shaped like ``tree_x``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_add({"a": jnp.ones(2)}, {"a": jnp.ones(2)}, {"a": jnp.ones(2)})
      {'a': Array([3., 3.], dtype=float32)}

    References:
      ``optax.tree.add`` (same numbers).
    """
    return jax.tree.map(lambda *leaves: sum(leaves[1:], leaves[0]), tree_x, tree_y, *other_trees)


def tree_sub(tree_x: PyTree, tree_y: PyTree) -> PyTree:
    """Leafwise ``tree_x - tree_y``.

    Args:
      tree_x: a tree.
      tree_y: a tree of the same structure.

    Returns:
      The difference.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_sub([jnp.ones(1)], [jnp.array([3.0])])
      [Array([-2.], dtype=float32)]

    References:
      ``optax.tree.sub``.
    """
    return jax.tree.map(operator.sub, tree_x, tree_y)


def tree_mul(tree_x: PyTree, tree_y: PyTree) -> PyTree:
    """Leafwise ``tree_x * tree_y``.

    Args:
      tree_x: a tree.
      tree_y: a tree of the same structure.

    Returns:
      The product.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_mul([jnp.array([2.0])], [jnp.array([3.0])])
      [Array([6.], dtype=float32)]

    References:
      ``optax.tree.mul``.
    """
    return jax.tree.map(operator.mul, tree_x, tree_y)


def tree_div(tree_x: PyTree, tree_y: PyTree) -> PyTree:
    """Leafwise ``tree_x / tree_y``.

    Args:
      tree_x: a tree.
      tree_y: a tree of the same structure.

    Returns:
      The quotient.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_div([jnp.array([3.0])], [jnp.array([2.0])])
      [Array([1.5], dtype=float32)]

    References:
      ``optax.tree.div``.
    """
    return jax.tree.map(operator.truediv, tree_x, tree_y)


def tree_scale(scalar: Any, tree: PyTree) -> PyTree:
    """``scalar * tree``, leaf by leaf.

    Args:
      scalar: a number or a 0-d array.
      tree: a tree.

    Returns:
      The scaled tree.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_scale(0.5, [jnp.array([3.0])])
      [Array([1.5], dtype=float32)]

    References:
      ``optax.tree.scale``.
    """
    return jax.tree.map(lambda x: scalar * x, tree)


def tree_add_scale(tree_x: PyTree, scalar: Any, tree_y: PyTree) -> PyTree:
    """``tree_x + scalar * tree_y``, leaf by leaf (a ``None`` leaf of ``tree_x`` stays).

    Args:
      tree_x: a tree.
      scalar: a number or a 0-d array.
      tree_y: a tree of the same structure.

    Returns:
      The tree ``tree_x + scalar * tree_y``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_add_scale([jnp.ones(1)], 2.0, [jnp.array([3.0])])
      [Array([7.], dtype=float32)]

    References:
      ``optax.tree.add_scale``.
    """
    scalar = jnp.asarray(scalar)
    return jax.tree.map(
        lambda x, y: None if x is None else x + scalar * y, tree_x, tree_y, is_leaf=lambda x: x is None
    )


def tree_vdot(tree_x: PyTree, tree_y: PyTree) -> Any:
    """The inner product of two trees, ``tree_x`` conjugated, at the highest precision.

    Args:
      tree_x: a tree.
      tree_y: a tree of the same structure.

    Returns:
      A scalar.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_vdot({"a": jnp.array([1.0, 2.0])}, {"a": jnp.array([3.0, 4.0])})
      Array(11., dtype=float32)

    References:
      ``optax.tree.vdot`` (same numbers).
    """
    return _tree.vdot(tree_x, tree_y) if jax.tree.leaves(tree_x) else 0


def tree_sum(tree: PyTree, associative_reduction: bool = False) -> Any:
    """The sum of every element of every leaf.

    Args:
      tree: a tree.
      associative_reduction: sum the leaves' sums as a balanced tree
        (``jax.tree.reduce_associative``; faster to compile for many leaves, a
        different order of additions).

    Returns:
      A scalar.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_sum({"a": jnp.ones(2), "b": jnp.ones(3)})
      Array(5., dtype=float32)

    References:
      ``optax.tree.sum`` (same numbers).
    """
    sums = jax.tree.map(jnp.sum, tree)
    if associative_reduction:
        return jax.tree.reduce_associative(operator.add, sums, identity=0)
    return jax.tree.reduce(operator.add, sums, initializer=0)


def _tree_extreme(tree: PyTree, reduce: Any, combine: Any, start: float) -> Any:
    parts = jax.tree.map(lambda x: None if jnp.size(x) == 0 else reduce(x), tree)
    return jax.tree.reduce(combine, parts, initializer=start)


def tree_max(tree: PyTree) -> Any:
    """The largest element of the tree (``-inf`` for a tree with no elements).

    Args:
      tree: a tree.

    Returns:
      A scalar.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_max({"a": jnp.array([1.0, 5.0]), "b": jnp.array([3.0])})
      Array(5., dtype=float32)

    References:
      ``optax.tree.max``.
    """
    return _tree_extreme(tree, jnp.max, jnp.maximum, -float("inf"))


def tree_min(tree: PyTree) -> Any:
    """The smallest element of the tree (``inf`` for a tree with no elements).

    Args:
      tree: a tree.

    Returns:
      A scalar.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_min({"a": jnp.array([1.0, 5.0]), "b": jnp.array([3.0])})
      Array(1., dtype=float32)

    References:
      ``optax.tree.min``.
    """
    return _tree_extreme(tree, jnp.min, jnp.minimum, float("inf"))


def tree_size(tree: PyTree) -> int:
    """The number of elements of all leaves.

    Args:
      tree: a tree.

    Returns:
      An int.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_size({"a": jnp.ones((2, 3)), "b": jnp.ones(4)})
      10

    References:
      ``optax.tree.size``.
    """
    return sum(int(jnp.size(leaf)) for leaf in jax.tree.leaves(tree))


def tree_conj(tree: PyTree) -> PyTree:
    """The complex conjugate of every leaf.

    Args:
      tree: a tree.

    Returns:
      The conjugated tree.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_conj([jnp.array([1 + 2j])])
      [Array([1.-2.j], dtype=complex64)]

    References:
      ``optax.tree.conj``.
    """
    return jax.tree.map(jnp.conj, tree)


def tree_real(tree: PyTree) -> PyTree:
    """The real part of every leaf.

    Args:
      tree: a tree.

    Returns:
      The tree of real parts.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_real([jnp.array([1 + 2j])])
      [Array([1.], dtype=float32)]

    References:
      ``optax.tree.real``.
    """
    return jax.tree.map(jnp.real, tree)


def tree_norm(tree: PyTree, ord: Any = None, squared: bool = False) -> jax.Array:
    """The vector norm of all leaves together: L2 (``ord=None`` or 2), L1 or L-infinity.

    Args:
      tree: a tree (complex leaves count ``|x|``).
      ord: ``None``, 2, 1, ``jnp.inf``, ``"inf"`` or ``"infinity"``.
      squared: return the norm squared.

    Returns:
      A scalar array.

    Raises:
      ValueError: for another ``ord``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_norm({"a": jnp.array([3.0]), "b": jnp.array([4.0])})
      Array(5., dtype=float32)

    References:
      ``optax.tree.norm`` (same numbers: the squares summed leaf by leaf in order).
    """
    square = lambda x: jnp.square(jnp.real(x)) + jnp.square(jnp.imag(x))  # noqa: E731
    if ord is None or ord == 2:
        total = tree_sum(jax.tree.map(square, tree))
        return jnp.array(total if squared else jnp.sqrt(total))
    if ord == 1:
        result = tree_sum(jax.tree.map(jnp.abs, tree))
    elif ord == jnp.inf or ord in ("inf", "infinity"):
        result = tree_max(jax.tree.map(jnp.abs, tree))
    else:
        raise ValueError(f"tree_norm: ord must be None, 1, 2 or inf, got {ord!r}")
    return jnp.array(square(result) if squared else result)


def tree_batch_shape(tree: PyTree, shape: tuple[int, ...] = ()) -> PyTree:
    """Every leaf broadcast to leading batch dimensions ``shape``.

    Args:
      tree: a tree.
      shape: the leading dimensions to add.

    Returns:
      The broadcast tree.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_batch_shape([jnp.ones(3)], (2,))[0].shape
      (2, 3)

    References:
      ``optax.tree.batch_shape``.
    """
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (*shape, *jnp.shape(x))), tree)


def tree_zeros_like(tree: PyTree, dtype: Any = None) -> PyTree:
    """Zeros shaped like every leaf (in ``dtype`` if given).

    Args:
      tree: a tree.
      dtype: the dtype of the zeros; the leaves' own if None.

    Returns:
      A tree of zeros.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_zeros_like([jnp.ones(2)])
      [Array([0., 0.], dtype=float32)]

    References:
      ``optax.tree.zeros_like``.
    """
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def tree_ones_like(tree: PyTree, dtype: Any = None) -> PyTree:
    """Ones shaped like every leaf (in ``dtype`` if given).

    Args:
      tree: a tree.
      dtype: the dtype of the ones; the leaves' own if None.

    Returns:
      A tree of ones.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_ones_like([jnp.zeros(2)])
      [Array([1., 1.], dtype=float32)]

    References:
      ``optax.tree.ones_like``.
    """
    return jax.tree.map(lambda x: jnp.ones_like(x, dtype=dtype), tree)


def tree_full_like(tree: PyTree, fill_value: Any, dtype: Any = None) -> PyTree:
    """``fill_value`` shaped like every leaf (in ``dtype`` if given).

    Args:
      tree: a tree.
      fill_value: the value.
      dtype: the dtype; the leaves' own if None.

    Returns:
      The filled tree.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_full_like([jnp.zeros(2)], 7.0)
      [Array([7., 7.], dtype=float32)]

    References:
      ``optax.tree.full_like``.
    """
    return jax.tree.map(lambda x: jnp.full_like(x, fill_value, dtype=dtype), tree)


def tree_clip(tree: PyTree, min_value: Any = None, max_value: Any = None) -> PyTree:
    """Every leaf clipped to ``[min_value, max_value]`` (a ``None`` bound: no bound).

    Args:
      tree: a tree.
      min_value: the lower bound, or None.
      max_value: the upper bound, or None.

    Returns:
      The clipped tree.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_clip([jnp.array([-2.0, 0.5, 2.0])], -1.0, 1.0)
      [Array([-1. ,  0.5,  1. ], dtype=float32)]

    References:
      ``optax.tree.clip``.
    """
    return jax.tree.map(lambda g: jnp.clip(g, min_value, max_value), tree)


def tree_where(condition: Any, tree_x: PyTree, tree_y: PyTree) -> PyTree:
    """``jnp.where(condition, x, y)`` leaf by leaf.

    Args:
      condition: a boolean (scalar or broadcastable to the leaves).
      tree_x: chosen where ``condition`` holds.
      tree_y: chosen elsewhere; the structure of ``tree_x``.

    Returns:
      The selected tree.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_where(False, [jnp.ones(1)], [jnp.zeros(1)])
      [Array([0.], dtype=float32)]

    References:
      ``optax.tree.where``.
    """
    return jax.tree.map(lambda x, y: jnp.where(condition, x, y), tree_x, tree_y)


def tree_allclose(a: PyTree, b: PyTree, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: bool = False) -> Any:
    """Whether every leaf of ``a`` is ``jnp.allclose`` to the matching leaf of ``b``.

    Args:
      a: a tree.
      b: a tree of the same structure.
      rtol: the relative tolerance.
      atol: the absolute tolerance.
      equal_nan: whether NaN equals NaN.

    Returns:
      A boolean (a boolean array for traced leaves).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> bool(gradtx.tree_utils.tree_allclose([jnp.ones(2)], [jnp.ones(2) + 1e-9]))
      True

    References:
      ``optax.tree.allclose``.
    """
    close = jax.tree.map(lambda x, y: jnp.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan), a, b)
    return functools.reduce(operator.and_, jax.tree.leaves(close), True)


def tree_cast(tree: PyTree, dtype: Any) -> PyTree:
    """Every leaf cast to ``dtype`` (the tree unchanged if ``dtype`` is None).

    Args:
      tree: a tree of arrays.
      dtype: the dtype, or None.

    Returns:
      The cast tree.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_cast([jnp.ones(1)], jnp.bfloat16)[0].dtype
      dtype(bfloat16)

    References:
      ``optax.tree.cast``.
    """
    return tree if dtype is None else jax.tree.map(lambda t: t.astype(dtype), tree)


def tree_cast_like(tree: PyTree, other_tree: PyTree) -> PyTree:
    """Every leaf cast to the dtype of the matching leaf of ``other_tree`` (a leaf with no
    dtype there is kept).

    Args:
      tree: a tree of arrays.
      other_tree: a tree of the same structure.

    Returns:
      The cast tree.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_cast_like([jnp.ones(1)], [jnp.ones(1, jnp.float16)])[0].dtype
      dtype('float16')

    References:
      ``optax.tree.cast_like``.
    """
    return jax.tree.map(lambda t, o: t.astype(o.dtype) if hasattr(o, "dtype") else t, tree, other_tree)


def _lower_dtype(a: Any, b: Any) -> Any:
    if jnp.promote_types(a, b) == a:
        return b
    if jnp.promote_types(a, b) == b:
        return a
    raise ValueError(f"tree_dtype: neither {a} nor {b} promotes to the other")


def tree_dtype(tree: PyTree, mixed_dtype_handler: str | None = None) -> Any:
    """The dtype of the tree's leaves.

    Args:
      tree: a tree (an empty one has JAX's default float dtype).
      mixed_dtype_handler: for leaves of several dtypes: None raises, ``"promote"``
        promotes them together, ``"highest"`` / ``"lowest"`` take the one every other
        promotes to / from (raising where two do not promote either way).

    Returns:
      A dtype.

    Raises:
      ValueError: mixed dtypes without a handler, or an unknown handler.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_dtype({"a": jnp.ones(1), "b": jnp.zeros((2, 2))})
      dtype('float32')

    References:
      ``optax.tree.dtype``.
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.asarray(0.0).dtype
    dtypes = [jnp.asarray(x).dtype for x in leaves]
    if mixed_dtype_handler is None:
        wrong = [
            f"Expected dtype={dtypes[0]} for {jax.tree_util.keystr(path)} but got {jnp.asarray(x).dtype}."
            for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]
            if jnp.asarray(x).dtype != dtypes[0]
        ]
        if wrong:
            raise ValueError("\n".join(wrong))
        return dtypes[0]
    if mixed_dtype_handler == "promote":
        return functools.reduce(jnp.promote_types, dtypes)
    if mixed_dtype_handler == "lowest":
        return functools.reduce(_lower_dtype, dtypes)
    if mixed_dtype_handler == "highest":
        return functools.reduce(lambda a, b: b if _lower_dtype(a, b) == a else a, dtypes)
    raise ValueError(
        f"tree_dtype: mixed_dtype_handler must be None, 'promote', 'highest' or 'lowest', "
        f"got {mixed_dtype_handler!r}"
    )


def tree_split_key_like(rng_key: jax.Array, target_tree: PyTree) -> PyTree:
    """One key per leaf of ``target_tree``, split from ``rng_key``.

    Args:
      rng_key: a JAX random key.
      target_tree: the tree whose structure the keys take.

    Returns:
      A tree of keys.

    Example:
      >>> import gradtx, jax, jax.numpy as jnp
      >>> tree = {"a": jnp.ones(2), "b": jnp.ones(3)}
      >>> sorted(gradtx.tree_utils.tree_split_key_like(jax.random.key(0), tree))
      ['a', 'b']

    References:
      ``optax.tree.split_key_like`` (the same keys).
    """
    treedef = jax.tree.structure(target_tree)
    return jax.tree.unflatten(treedef, list(jax.random.split(rng_key, treedef.num_leaves)))


def tree_random_like(
    rng_key: jax.Array,
    target_tree: PyTree,
    sampler: Callable[..., Any] = jax.random.normal,
    dtype: Any = None,
) -> PyTree:
    """Random values shaped like every leaf, one key per leaf (`tree_split_key_like`).

    Args:
      rng_key: a JAX random key.
      target_tree: the tree whose shapes (and dtypes) the values take.
      sampler: ``sampler(key, shape, dtype)``, ``jax.random.normal`` by default.
      dtype: the dtype of the values; the leaves' own if None.

    Returns:
      A tree of random arrays.

    Example:
      >>> import gradtx, jax, jax.numpy as jnp
      >>> gradtx.tree_utils.tree_random_like(jax.random.key(0), [jnp.ones((2, 3))])[0].shape
      (2, 3)

    References:
      ``optax.tree.random_like`` (the same values for the same key).
    """
    keys = tree_split_key_like(rng_key, target_tree)
    return jax.tree.map(lambda leaf, key: sampler(key, leaf.shape, dtype or leaf.dtype), target_tree, keys)


def tree_unwrap_random_key_data(input_tree: PyTree) -> PyTree:
    """Typed random keys replaced by their raw data (so they compare as numbers).

    Args:
      input_tree: a tree that may hold ``jax.random.key`` arrays.

    Returns:
      The tree with each key array as ``jax.random.key_data`` of it.

    Example:
      >>> import gradtx, jax
      >>> gradtx.tree_utils.tree_unwrap_random_key_data([jax.random.key(0)])[0].dtype
      dtype('uint32')

    References:
      ``optax.tree.unwrap_random_key_data``.
    """

    def unwrap(x: Any) -> Any:
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.key_data(x)
        return x

    return jax.tree.map(unwrap, input_tree)


@jax.tree_util.register_pytree_node_class
class _ParamsPlaceholder:
    """A tree with no leaves, given to ``init`` in place of the parameters: every buffer
    the optimizer builds from the parameters comes back as this placeholder."""

    def tree_flatten(self) -> tuple[tuple[()], None]:
        return (), None

    @classmethod
    def tree_unflatten(cls, aux: Any, children: Any) -> _ParamsPlaceholder:
        del aux, children
        return cls()


def _map_packed(f: Callable[..., Any], value: Packed, rest: tuple[Any, ...], is_leaf: Any) -> Any:
    """``f`` over each original leaf of a packed buffer (``rest`` given like the original
    parameters, or packed), packed again when ``f`` kept every leaf's shape and dtype,
    else the tree of its results (shapes, sharding specs, ...)."""
    out = jax.tree.map(f, value.unpack(), *(unpacked(r) for r in rest), is_leaf=is_leaf)
    kept = [
        isinstance(o, jax.Array) and o.shape == s.shape and o.dtype == s.dtype
        for o, s in zip(jax.tree.leaves(out), value.layout.slots, strict=False)
    ]
    if len(kept) == len(value.layout.slots) and all(kept):
        return value.layout.pack(out)
    return out


def tree_map_params(
    initable: Any,
    f: Callable[..., Any],
    state: PyTree,
    /,
    *rest: Any,
    transform_non_params: Callable[..., Any] | None = None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> PyTree:
    """Applies ``f`` to every parameter-shaped buffer of an optimizer state (moments,
    accumulators, a slow copy of the parameters), leaving counters and the like alone.

    Which buffers are parameter-shaped is found as optax finds it: ``initable`` is called
    on a placeholder with no leaves in place of the parameters, and every place of the
    state where the placeholder comes back holds a tree shaped like the parameters.
    So it works on any gradtx state that ``init`` builds from the parameters by mapping
    over them, wrappers' states included (`MultiSteps`, `lookahead`, chains). As with
    optax, a wrapper whose mask or labels are a tree shaped like the parameters
    (`masked`, `partition` with a tree of labels) cannot be initialised on the
    placeholder and raises; pass a function of the parameters as the mask instead.

    On packed parameters (`gradtx.pack`), each buffer of the state stands for many
    parameters: ``f`` is applied to each original parameter's part (``rest`` given like
    the original parameters), and the results are packed again when ``f`` keeps every
    shape and dtype (a scaling, a clip), else returned as a tree like the original
    parameters (shapes, sharding specs).

    Args:
      initable: the optimizer (anything with ``init``) or its ``init`` function.
      f: the function applied to each leaf of each parameter-shaped buffer.
      state: the optimizer state.
      *rest: trees shaped like the parameters, passed to ``f`` beside each buffer leaf.
      transform_non_params: applied to every other part of the state, if given.
      is_leaf: passed to ``jax.tree.map`` over each parameter-shaped buffer.

    Returns:
      The state with ``f`` applied.

    Example:
      >>> import gradtx, jax, jax.numpy as jnp
      >>> opt = gradtx.adam(1e-3)
      >>> state = opt.init({"w": jnp.ones(3)})
      >>> shapes = gradtx.tree_utils.tree_map_params(opt, lambda x: x.shape, state)
      >>> shapes[0].mu
      {'w': (3,)}

    References:
      ``optax.tree_utils.tree_map_params`` (same semantics); used to shard optimizer
      states like their parameters.
    """
    placeholder = _ParamsPlaceholder()
    init = initable.init if hasattr(initable, "init") else initable
    with_placeholders = init(placeholder)

    def visit(marker: Any, value: Any) -> Any:
        if isinstance(marker, _ParamsPlaceholder):
            if isinstance(value, Packed):
                return _map_packed(f, value, rest, is_leaf)
            return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
        return value if transform_non_params is None else transform_non_params(value)

    return jax.tree.map(visit, with_placeholders, state, is_leaf=lambda v: isinstance(v, _ParamsPlaceholder))
