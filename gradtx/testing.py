"""Public test helpers: run a transform over a gradient sequence, compare trees.

Useful to check a transform against a reference (an optax twin, a NumPy
transcription) the way gradtx's own conformance suite does.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any


def run_updates(transform: Any, params: PyTree, grads: PyTree) -> tuple[PyTree, PyTree]:
    """Applies ``transform`` to a sequence of gradients in one jitted ``lax.scan``.

    Args:
      transform: anything with ``init`` and ``update`` (gradtx or optax).
      params: the parameters, passed to ``update`` unchanged at every step.
      grads: a pytree like ``params`` whose leaves have a leading step axis.

    Returns:
      ``(updates, final_state)``: the updates of every step (leading step axis) and
      the state after the last step.
    """

    def step(state: Any, g: PyTree) -> tuple[Any, PyTree]:
        updates, state = transform.update(g, state, params)
        return state, updates

    @jax.jit
    def run(params: PyTree, grads: PyTree) -> tuple[PyTree, Any]:
        final, updates = jax.lax.scan(step, transform.init(params), grads)
        return updates, final

    return run(params, grads)


def named_buffers(state: Any) -> dict[str, list[np.ndarray]]:
    """The leaves of every named state field, keyed by field name, in tree order.

    Two optimizers that split their state differently (gradtx's ``adam`` keeps
    ``mu`` in `gradtx.MomentumState` and ``nu`` in `gradtx.ScaleByRmsState`, optax's in
    one ``ScaleByAdamState``) can be compared field by field.
    """
    found: dict[str, list[np.ndarray]] = {}

    def visit(node: Any) -> None:
        if hasattr(node, "_fields"):
            for name in node._fields:
                value = getattr(node, name)
                if value is None:
                    continue
                if _holds_state(value):  # a nested state (a wrapper's), not a buffer
                    visit(value)
                    continue
                found.setdefault(name, []).append(
                    np.concatenate([np.ravel(_numbers(x)) for x in jax.tree.leaves(value)] or [np.zeros(0)])
                )
        elif isinstance(node, dict):
            for key in node:
                visit(node[key])
        elif isinstance(node, (tuple, list)):
            for item in node:
                visit(item)

    visit(state)
    return found


def _holds_state(value: Any) -> bool:
    if hasattr(value, "_fields"):
        return True
    if not isinstance(value, (tuple, list, dict)):
        return False
    nodes = jax.tree.leaves(value, is_leaf=lambda x: hasattr(x, "_fields"))
    return any(hasattr(x, "_fields") and type(x).__name__ != "MaskedNode" for x in nodes)


def _numbers(x: Any) -> np.ndarray:
    if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return _as_numbers(x)


def _as_numbers(x: Any) -> np.ndarray:
    """``x`` in float64, or complex128 for complex ``x`` (the imaginary part kept)."""
    x = np.asarray(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def scaled_difference(actual: PyTree, expected: PyTree, step_axis: int | None = None) -> float:
    """The largest ``max |a - e| / max |e|`` over the leaves: the difference relative to
    each leaf's scale.

    Not elementwise: an Adam update whose moment cancels to near zero has a tiny
    denominator in an elementwise ratio, however exact the computation. With
    ``step_axis``, each step along that axis (the leading axis of `run_updates`'s
    updates, say) is measured against its own scale, so one wrong step among large
    ones is not diluted by the run's largest value; a step below the leaf's median
    step scale (a scalar leaf whose Adam step cancels to near zero) is measured
    against that median instead.

    Example:
      >>> import numpy as np
      >>> expected = np.array([[100.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
      >>> actual = expected + np.array([[0.0, 0.0], [0.0, 0.5], [0.0, 0.0], [0.0, 0.0]])
      >>> round(scaled_difference(actual, expected), 4)
      0.005
      >>> scaled_difference(actual, expected, step_axis=0)
      0.5
    """
    worst = 0.0
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        a, e = _as_numbers(a), _as_numbers(e)
        if not a.size:
            continue
        if step_axis is None or a.ndim == 0:
            a, e = a.reshape(1, -1), e.reshape(1, -1)
        else:
            a = np.moveaxis(a, step_axis, 0).reshape(a.shape[step_axis], -1)
            e = np.moveaxis(e, step_axis, 0).reshape(e.shape[step_axis], -1)
        error = np.max(np.abs(a - e), axis=1)
        scale = np.max(np.abs(e), axis=1)
        scale = np.maximum(np.maximum(scale, np.median(scale)), 1e-30)
        worst = max(worst, float(np.max(error / scale)))
    return worst


def assert_close_to_scale(
    actual: PyTree, expected: PyTree, rtol: float, what: str = "", step_axis: int | None = None
) -> None:
    """Asserts equal structures, finite values, and per leaf ``max |a - e| <= rtol * max |e|``.

    With ``step_axis``, per leaf and per step along that axis (see `scaled_difference`).
    Raises AssertionError naming the first leaf path that differs.

    Example:
      >>> import numpy as np
      >>> assert_close_to_scale({"w": np.ones(3)}, {"w": np.ones(3) + 1e-8}, rtol=1e-6)
      >>> assert_close_to_scale({"w": np.ones(3)}, {"w": np.full(3, 2.0)}, rtol=1e-6, what="step")
      Traceback (most recent call last):
      ...
      AssertionError: step['w']: 0.5 of the leaf's scale > 1e-06
    """
    a_leaves, a_def = jax.tree_util.tree_flatten_with_path(actual)
    e_leaves, e_def = jax.tree_util.tree_flatten_with_path(expected)
    assert a_def == e_def, f"{what}: structures differ\n{a_def}\n{e_def}"
    for (path, a), (_, e) in zip(a_leaves, e_leaves, strict=True):
        where = f"{what}{jax.tree_util.keystr(path)}"
        assert np.all(np.isfinite(_as_numbers(a))), f"{where} has non-finite values"
        worst = scaled_difference(a, e, step_axis)
        assert worst <= rtol, f"{where}: {worst:.3g} of the leaf's scale > {rtol:g}"


def tree_random_normal(key: jax.Array, like: PyTree, leading: tuple[int, ...] = ()) -> PyTree:
    """Normal samples shaped like ``like`` (with ``leading`` axes); ``None`` stays ``None``."""
    leaves, treedef = jax.tree.flatten(like)
    keys = list(jax.random.split(key, len(leaves))) if leaves else []
    samples = [
        jax.random.normal(k, leading + jnp.shape(x), jnp.asarray(x).dtype)
        for k, x in zip(keys, leaves, strict=True)
    ]
    return jax.tree.unflatten(treedef, samples)
