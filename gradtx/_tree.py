"""Tree helpers: the shared math of moments, bias correction and norms.

Every helper casts hyperparameters to the dtype of the buffer they meet, as optax's
Python-float hyperparameters are cast, so results match optax and nothing is promoted
silently (gradtx's tests run with ``jax_numpy_dtype_promotion="strict"``).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _quantized

PyTree = Any


def wider(a: Any, b: Any) -> Any:
    """The dtype both ``a`` and ``b`` convert to (JAX's standard promotion, asked for
    explicitly, so it also holds under strict promotion)."""
    with jax.numpy_dtype_promotion("standard"):
        return jnp.promote_types(a, b)


def float_dtype() -> Any:
    """JAX's default float dtype: float32, or float64 under ``jax_enable_x64``."""
    return jnp.asarray(1.0).dtype


def to(x: jax.Array, dtype: Any) -> jax.Array:
    """``x`` in ``dtype``; ``x`` itself when it already is (no operation to trace). A
    quantized buffer (`gradtx.QuantizedArray`) is decoded."""
    if isinstance(x, _quantized.QuantizedArray):
        x = x.decode()
    return x if x.dtype == dtype else x.astype(dtype)


def cast(value: Any, dtype: Any) -> Any:
    """``value`` as ``dtype`` (a hyperparameter meeting a buffer).

    A Python number is returned as is: JAX treats it as weakly typed, so it takes the
    buffer's dtype exactly as an explicit cast would, without an operation per leaf at
    trace time (with thousands of leaves that halves tracing).
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return jnp.asarray(value, dtype=dtype)


def zeros_like(tree: PyTree, dtype: Any = None) -> PyTree:
    """Zeros shaped like ``tree`` (in ``dtype`` if given: a dtype, or a
    `gradtx.quantized` storage with its sign set); ``None`` leaves stay
    ``None``."""
    if isinstance(dtype, _quantized.quantized):
        return full_like(tree, 0, dtype)
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def full_like(tree: PyTree, value: Any, dtype: Any = None) -> PyTree:
    """``value`` everywhere, shaped like ``tree`` (``dtype`` as in `zeros_like`)."""
    if isinstance(dtype, _quantized.quantized):
        return _quantized.full_tree(tree, value, dtype)
    if isinstance(dtype, str) and _quantized.is_quantized(dtype):
        raise TypeError(f"{dtype!r} storage needs its sign set first (gradtx._quantized.storage)")
    return jax.tree.map(lambda x: jnp.full_like(x, value, dtype=dtype), tree)


def cast_like(tree: PyTree, like: PyTree) -> PyTree:
    """Casts each leaf of ``tree`` to the dtype of the matching leaf of ``like`` (a
    Python number in ``like`` has no dtype: the leaf is left as computed, as in optax);
    where ``like`` holds a `gradtx.QuantizedArray`, the leaf is encoded as it is."""

    def one(x: Any, y: Any) -> Any:
        if isinstance(y, _quantized.QuantizedArray):
            return y.like(x)
        return to(x, y.dtype) if hasattr(y, "dtype") else x

    return jax.tree.map(one, tree, like)


def compute_dtype(*dtypes: Any) -> Any:
    """The dtype moment arithmetic runs in: the widest of ``dtypes`` and float32.

    So a hyperparameter is never rounded to bfloat16 (where 0.999 becomes 1.0 and 0.9
    becomes 0.8984); a bfloat16 buffer is rounded only when stored.
    """
    return functools.reduce(wider, dtypes, jnp.dtype(jnp.float32))


def moment_power(g: jax.Array, order: int) -> jax.Array:
    """``g`` for order 1, else ``|g|**order`` as optax's ``update_moment_per_elem_norm``
    takes it: ``g**order`` for real ``g``, ``(g * conj(g))**(order / 2)`` for complex."""
    if order == 1:
        return g
    if jnp.isrealobj(g):
        return abs_sq(g) ** (order // 2) if order % 2 == 0 else g**order
    half_order = order / 2
    return abs_sq(g) ** (int(half_order) if float(half_order).is_integer() else half_order)


def ema_step(g: jax.Array, m: jax.Array, decay: Any, one_minus_decay: Any, order: int) -> jax.Array:
    """One step of an exponential moving average of ``g`` (order 1) or ``|g|**order``.

    ``m_new = (1 - decay) * p + decay * m`` with ``p = moment_power(g, order)``, computed
    in `compute_dtype`; the caller casts the result to the buffer's dtype when it stores
    it.
    """
    if not hasattr(g, "dtype"):  # a Python number as a parameter (optax's tests use them)
        g, m = jnp.asarray(g), jnp.asarray(m)
    dtype = compute_dtype(g.dtype, m.dtype)
    power = to(moment_power(to(g, dtype), order), dtype)
    if isinstance(m, _quantized.QuantizedArray) and m.segments is None:
        # In the buffer's block layout, then reshaped once: XLA's CPU backend copies a
        # decoded buffer reshaped to the parameter's shape (3x slower on one 4M buffer).
        blocks = cast(one_minus_decay, dtype) * m.to_blocks(power) + cast(decay, dtype) * m.decode_blocks()
        return m.from_blocks(blocks)
    return cast(one_minus_decay, dtype) * power + cast(decay, dtype) * to(m, dtype)


def decay_power(decay: Any, count: jax.Array) -> jax.Array:
    """``decay**count`` in float32 (or wider), as optax evaluates ``b2**count``."""
    decay = jnp.asarray(decay)
    if not jnp.issubdtype(decay.dtype, jnp.floating):
        decay = decay.astype(float_dtype())
    return decay ** to(count, decay.dtype)


def correction(decay: Any, count: jax.Array) -> jax.Array:
    """``1 - decay**count``: the bias of a moving average started at zero, t from 1."""
    return 1 - decay_power(decay, count)


def debias(moment: PyTree, decay: Any, count: jax.Array) -> PyTree:
    """``moment / (1 - decay**count)``, the correction computed in float32 (or wider)
    and the division done in each leaf's dtype, as optax does."""
    c = correction(decay, count)
    return jax.tree.map(lambda m: m / to(c, m.dtype), moment)


def unzip(like: PyTree, results: PyTree, n: int) -> tuple[PyTree, ...]:
    """``n`` trees shaped like ``like`` from ``results``, a tree like ``like`` whose leaves
    are ``n``-tuples (what a per-leaf function returning several arrays gives)."""
    structure = jax.tree.structure(like)
    if structure.num_leaves == 0:
        return (like,) * n  # nothing to split: n copies of the empty structure
    return tuple(jax.tree.transpose(structure, jax.tree.structure((0,) * n), results))


def divide_by_root(x: jax.Array, n: jax.Array, eps: Any, eps_root: Any) -> jax.Array:
    """``x / (sqrt(n + eps_root) + eps)`` in the wider dtype of the two, returned in
    ``x``'s: Adam's denominator, shared by every eps-outside scaling."""
    dtype = compute_dtype(x.dtype, n.dtype)
    xs, n = to(x, dtype), to(n, dtype)
    return (xs / (jnp.sqrt(n + cast(eps_root, dtype)) + cast(eps, dtype))).astype(x.dtype)


def vdot(x: PyTree, y: PyTree) -> jax.Array:
    """``<x, y>`` over all leaves (``x`` conjugated), at the highest matmul precision,
    summed in leaf order as optax's ``tree.vdot``."""
    total: Any = 0
    for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True):
        total = total + jnp.vdot(a, b, precision=jax.lax.Precision.HIGHEST)
    return jnp.asarray(total)


def add_scale(x: PyTree, scalar: Any, y: PyTree) -> PyTree:
    """``x + scalar * y`` leaf by leaf."""
    scalar = jnp.asarray(scalar)
    return jax.tree.map(lambda a, b: a + to(scalar, a.dtype) * b, x, y)


def sq_norm(x: PyTree) -> jax.Array:
    """``sum |x|^2`` over all leaves, each as ``real^2 + imag^2`` (optax's ``tree.norm``
    squared, summed in the same order)."""
    leaves = jax.tree.leaves(x)
    if not leaves:
        return jnp.zeros([])
    total: Any = 0
    for a in leaves:
        total = total + jnp.sum(jnp.square(a.real) + jnp.square(a.imag))
    return jnp.asarray(total)


def global_norm(tree: PyTree) -> jax.Array:
    """The L2 norm of all leaves together."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros([])
    dtype = functools.reduce(wider, [real_dtype(leaf.dtype) for leaf in leaves])
    total = sum(jnp.sum(abs_sq(leaf)).astype(dtype) for leaf in leaves)
    return jnp.sqrt(jnp.asarray(total))


def real_dtype(dtype: Any) -> Any:
    """The real dtype of ``dtype``'s magnitudes: float32 for complex64, else ``dtype``."""
    return jnp.finfo(dtype).dtype if jnp.issubdtype(dtype, jnp.complexfloating) else jnp.dtype(dtype)


def abs_sq(x: jax.Array) -> jax.Array:
    """``|x|^2``, real also for complex ``x`` (``x * conj(x)``); ``x**2`` for real ``x``."""
    if jnp.iscomplexobj(x):
        return (x.conj() * x).real
    return jnp.square(x)


def state_owners(state: PyTree, params: PyTree) -> tuple[list[tuple[Any, Any]], list[int | None]]:
    """The state's leaves (quantized buffers as leaves) with their paths, and for each the
    index of the parameter leaf it mirrors, or None (step counts, tree-wide scalars).

    A state buffer mirrors the parameter leaf whose path ends its own path (a block's
    state holds trees shaped like the parameters under its fields); where the parameters
    are a bare array (path ``()``), a buffer mirrors it when it has its shape.
    """
    param_leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    paths = [tuple(path) for path, _ in param_leaves]
    by_length = sorted(range(len(paths)), key=lambda k: len(paths[k]), reverse=True)
    leaves = jax.tree_util.tree_flatten_with_path(state, is_leaf=_quantized.is_stored)[0]
    owners: list[int | None] = []
    for path, x in leaves:
        path = tuple(path)
        owners.append(
            next(
                (
                    k
                    for k in by_length
                    if len(paths[k]) <= len(path)
                    and path[len(path) - len(paths[k]) :] == paths[k]
                    and (paths[k] or jnp.shape(x) == jnp.shape(param_leaves[k][1]))
                ),
                None,
            )
        )
    return leaves, owners
