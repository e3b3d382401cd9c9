"""Reading and changing optimizer states by field name, as ``optax.tree_utils`` does.

`tree_get`, `tree_set` and `tree_get_all_with_path` keep optax's semantics: they look
into NamedTuples (by field or by class name) and dicts (by key), wherever they sit in
the state. A gradtx optimizer's state is the tuple of its blocks' states, and each block
that needs a step counts (adam has three ``count`` fields), so ``tree_get(state,
"count")`` finds several and raises, as optax's does; the optimizer's step is one call:
`step`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

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
