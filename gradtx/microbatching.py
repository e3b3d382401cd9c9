"""optax's ``optax.microbatching`` module: run a function of a batch one microbatch at a
time and combine the results, so a large batch fits in memory.

`microbatch` is the general form: ``fun(*args)`` becomes a loop over microbatches of the
batch arguments, whose outputs an *accumulator* combines (sum, mean, running mean,
concatenation, or your own `Accumulator`). `micro_vmap` is ``jax.vmap`` evaluated a
microbatch at a time; `micro_grad` gives per-example gradients (summed, averaged or
kept), with per-example values and metrics, as differentially private training needs.

With ``microbatch_size`` examples per microbatch there are ``M = batch /
microbatch_size`` microbatches, and microbatch ``j`` holds the examples ``j, j + M, j +
2M, ...`` (the batch axis read as ``[M, microbatch_size]`` in column-major order), as
optax's does: results and the order of concatenated outputs are optax's, and a batch
sharded along its first axis gives each microbatch a slice of every shard.

Example:
  >>> import gradtx, jax.numpy as jnp
  >>> total = gradtx.microbatching.microbatch(jnp.sum, argnums=0, microbatch_size=2)
  >>> float(total(jnp.arange(8.0)))  # four microbatches of two, summed
  28.0
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "AccumulationType",
    "Aux",
    "Accumulator",
    "micro_grad",
    "micro_vmap",
    "microbatch",
    "reshape_batch_axis",
]

Aux = collections.namedtuple("Aux", ["values", "metrics", "aux"])
"""What `micro_grad`'s function returns beside the gradient: the per-example values of
the function, ``metrics_fn`` of each per-example gradient, and the function's aux."""


@dataclasses.dataclass(frozen=True)
class Accumulator:
    """How the outputs of the microbatches combine, leaf by leaf.

    Attributes:
      init: the carry from an output's shape (``jax.ShapeDtypeStruct`` leaves).
      update: ``update(carry, output, index)``: the carry after microbatch ``index``.
      finalize: the result from the last carry.
      aggregate: how `micro_vmap` combines the outputs inside one microbatch (its
        leading axis), before ``update``.
    """

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, int], Any]
    finalize: Callable[[Any], Any]
    aggregate: Callable[[Any], Any]


class AccumulationType(enum.Enum):
    """The built-in accumulators."""

    MEAN = enum.auto()
    """Average the microbatch outputs."""
    SUM = enum.auto()
    """Sum the microbatch outputs."""
    RUNNING_MEAN = enum.auto()
    """Average the microbatch outputs over `num_real_microbatches`."""
    CONCAT = enum.auto()
    """Concatenate the microbatch outputs along axis 0."""


def _explicit_sharding(x: Any) -> Any:
    """``x``'s sharding when every mesh axis is explicit, else None."""
    sharding = jax.typeof(x).sharding
    return sharding if sharding.mesh.are_all_axes_explicit else None


def reshape_batch_axis(tree: Any, microbatch_size: int, axis: int = 0) -> Any:
    """Splits the batch axis ``axis`` of every leaf into ``[M, microbatch_size]``,
    column-major, ``M = batch / microbatch_size``: index ``[j, i]`` is example ``j + i M``,
    so microbatch ``j`` (index ``j`` on axis ``axis``) takes every ``M``-th example.

    Args:
      tree: the batch, a tree of arrays with a batch axis.
      microbatch_size: the examples per microbatch; it must divide the batch.
      axis: the batch axis.

    Returns:
      The tree, each batch axis split in two.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.microbatching.reshape_batch_axis(jnp.arange(6), 3)  # two microbatches
      Array([[0, 2, 4],
             [1, 3, 5]], dtype=int32)

    References:
      optax ``microbatching.reshape_batch_axis`` (same layout).
    """

    def split(x: jax.Array) -> jax.Array:
        shape = (*x.shape[:axis], -1, microbatch_size, *x.shape[axis + 1 :])
        sharding = _explicit_sharding(x)
        if sharding is None:
            return x.reshape(shape, order="F")
        spec = sharding.spec
        if len(spec) >= axis:
            spec = jax.P(*spec[:axis], None, spec[axis], *spec[axis + 1 :])
        shards = x.shape[axis] // sharding.shard_shape(x.shape)[axis]
        if microbatch_size % shards:
            raise ValueError(f"reshape_batch_axis: nshards={shards} must evenly divide {microbatch_size=}")
        out = jax.sharding.NamedSharding(sharding.mesh, spec)
        return x.reshape(shape, order="F", out_sharding=out)

    return jax.tree.map(split, tree)


def _leafwise(one: Accumulator) -> Accumulator:
    """An accumulator of arrays applied to every leaf of a tree."""
    return Accumulator(
        init=lambda value: jax.tree.map(one.init, value),
        update=lambda carry, value, i: jax.tree.map(lambda c, v: one.update(c, v, i), carry, value),
        finalize=lambda carry: jax.tree.map(one.finalize, carry),
        aggregate=lambda values: jax.tree.map(one.aggregate, values),
    )


def _floating(fn: Callable[..., Any]) -> Callable[..., Any]:
    def checked(*args: Any, **kwargs: Any) -> Any:
        dtypes = jax.tree.leaves(jax.tree.map(lambda x: x.dtype, (args, kwargs)))
        if not all(jnp.issubdtype(d, jnp.floating) for d in dtypes):
            raise ValueError("MEAN and RUNNING_MEAN Accumulators require floating-point values.")
        return fn(*args, **kwargs)

    return checked


def _positive(count: int | None) -> int:
    if count is None or count <= 0:
        raise ValueError(f"num_microbatches={count!r} must be positive.")
    return count


def _built_in(kind: AccumulationType, count: int | None) -> Accumulator:
    def add(carry: Any, value: Any, _: int) -> Any:
        return carry + value

    if kind is AccumulationType.SUM:
        one = Accumulator(jnp.zeros_like, add, lambda x: x, functools.partial(jnp.sum, axis=0))
    elif kind is AccumulationType.MEAN:
        n = _positive(count)
        one = Accumulator(
            _floating(jnp.zeros_like), add, lambda x: x / n, functools.partial(jnp.mean, axis=0)
        )
    elif kind is AccumulationType.RUNNING_MEAN:

        def running(carry: Any, value: Any, index: Any) -> Any:
            # the mean of the first index + 1 outputs, however many run
            kept = index / (index + 1)
            return carry * kept + value * (1 - kept)

        one = Accumulator(
            _floating(jnp.zeros_like), running, lambda x: x, functools.partial(jnp.mean, axis=0)
        )
    else:  # CONCAT
        n = _positive(count)

        def stacked(value: Any) -> jax.Array:
            return jnp.broadcast_to(jnp.zeros_like(value), (n, *value.shape))

        def interleaved(carry: jax.Array) -> jax.Array:
            # [K, m, ...] back to the batch order: example i + j K at position i + j K
            sharding = _explicit_sharding(carry)
            kwargs = {}
            if sharding is not None:
                rest = jax.P(*sharding.spec[1:]) if sharding.spec else jax.P()
                kwargs["out_sharding"] = jax.sharding.NamedSharding(sharding.mesh, rest)
            return carry.reshape(-1, *carry.shape[2:], order="F", **kwargs)

        one = Accumulator(stacked, lambda c, v, i: c.at[i].set(v), interleaved, lambda x: x)
    return _leafwise(one)


def _resolve(spec: Any, count: int | None) -> Accumulator:
    """One accumulator from a tree of accumulators and accumulation types (a tree
    matching the function's output, or one for all of it)."""

    def one(acc: Any) -> Accumulator:
        if isinstance(acc, Accumulator):
            return acc
        if isinstance(acc, AccumulationType):
            return _built_in(acc, count)
        if isinstance(acc, enum.Enum) and type(acc).__name__ == "AccumulationType":
            return _built_in(AccumulationType[acc.name], count)  # optax's own enum
        raise ValueError(f"Unknown accumulator: {acc}")

    parts = jax.tree.map(one, spec)
    return Accumulator(
        init=lambda values: jax.tree.map(lambda a, v: a.init(v), parts, values),
        update=lambda carry, value, i: jax.tree.map(lambda a, c, v: a.update(c, v, i), parts, carry, value),
        finalize=lambda carry: jax.tree.map(lambda a, c: a.finalize(c), parts, carry),
        aggregate=lambda values: jax.tree.map(lambda a, v: a.aggregate(v), parts, values),
    )


def microbatch(
    fun: Callable[..., Any],
    argnums: int | Sequence[int],
    microbatch_size: int | None,
    accumulator: Any = AccumulationType.SUM,
    *,
    argnames: str | Sequence[str] = (),
    in_axes: int | Sequence[int] = 0,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
    """``fun`` evaluated one microbatch at a time (a ``lax.fori_loop``), its outputs
    combined by ``accumulator``.

    Args:
      fun: a function whose batch arguments are split.
      argnums: the positions of the batch arguments.
      microbatch_size: the examples per microbatch (``M = batch / microbatch_size``
        microbatches, each taking every ``M``-th example); None returns ``fun``.
      accumulator: an `AccumulationType`, an `Accumulator`, or a tree of them matching
        ``fun``'s output.
      argnames: keyword batch arguments.
      in_axes: the batch axis of each batch argument (positions first, then names).
      num_real_microbatches: stop after this many (padding microbatches at the end of
        the batch are skipped; use ``RUNNING_MEAN`` for their mean).

    Returns:
      A function with ``fun``'s arguments.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> mean = gradtx.microbatching.microbatch(jnp.mean, 0, 4, gradtx.microbatching.AccumulationType.MEAN)
      >>> float(mean(jnp.arange(8.0)))
      3.5

    References:
      optax ``microbatching.microbatch`` (same semantics and numbers).
    """
    if microbatch_size is None:
        return fun
    positions = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    names = (argnames,) if isinstance(argnames, str) else tuple(argnames)
    axes = (in_axes,) * (len(positions) + len(names)) if isinstance(in_axes, int) else tuple(in_axes)
    name_axes = axes[len(positions) :]

    def microbatched(*args: Any, **kwargs: Any) -> Any:
        batch_args = [args[i] for i in positions] + [kwargs[n] for n in names]
        sizes = jax.tree.leaves(
            jax.tree.map(lambda ax, sub: jax.tree.map(lambda x: x.shape[ax], sub), axes, tuple(batch_args))
        )
        if len(set(sizes)) > 1:
            raise ValueError(f"Batch Arguments must have equal-size batch axes, found {sizes}.")
        if sizes[0] % microbatch_size:
            raise ValueError(f"batch_size={sizes[0]} must be divisible by {microbatch_size=}.")
        split_args = list(args)
        split_kwargs = dict(kwargs)
        for i, ax in zip(positions, axes, strict=False):
            split_args[i] = reshape_batch_axis(args[i], microbatch_size, ax)
        for name, ax in zip(names, name_axes, strict=True):
            split_kwargs[name] = reshape_batch_axis(kwargs[name], microbatch_size, ax)
        count = sizes[0] // microbatch_size
        acc = _resolve(accumulator, count)

        def on(index: Any) -> Any:
            take = lambda ax: functools.partial(jnp.take, indices=index, axis=ax)  # noqa: E731
            call_args = list(split_args)
            call_kwargs = dict(split_kwargs)
            for i, ax in zip(positions, axes, strict=False):
                call_args[i] = jax.tree.map(take(ax), split_args[i])
            for name, ax in zip(names, name_axes, strict=True):
                call_kwargs[name] = jax.tree.map(take(ax), split_kwargs[name])
            return fun(*call_args, **call_kwargs)

        steps = count if num_real_microbatches is None else num_real_microbatches
        carry = acc.init(jax.eval_shape(on, 0))
        carry = jax.lax.fori_loop(0, steps, lambda i, c: acc.update(c, on(i), i), carry)
        return acc.finalize(carry)

    return microbatched


def micro_vmap(
    fun: Callable[..., Any],
    in_axes: int | Sequence[int | None] = 0,
    out_axes: Any = 0,
    *,
    microbatch_size: int | None = None,
    vmap_fn: Callable[..., Any] = jax.vmap,
    accumulator: Any = AccumulationType.CONCAT,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
    """``vmap_fn(fun, in_axes)`` evaluated one microbatch at a time: the same outputs as
    ``jax.vmap`` with ``CONCAT``, in less memory; other accumulators reduce over the
    batch (each microbatch's outputs first by the accumulator's ``aggregate``).

    Args:
      fun: the per-example function.
      in_axes: as ``jax.vmap``'s (None for an argument shared by all examples).
      out_axes: 0 (the only value supported, as optax).
      microbatch_size: the examples per microbatch; None vmaps in one go.
      vmap_fn: the vectorising map (``jax.vmap``, or a sharded one).
      accumulator: see `microbatch`.
      num_real_microbatches: see `microbatch`.

    Returns:
      The mapped function.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> square = gradtx.microbatching.micro_vmap(lambda x: x**2, microbatch_size=2)
      >>> square(jnp.arange(4.0))
      Array([0., 1., 4., 9.], dtype=float32)

    References:
      optax ``microbatching.micro_vmap`` (same semantics and numbers).
    """
    if out_axes != 0:
        raise NotImplementedError("out_axis != 0 is not currently supported")
    axes = (in_axes,) if isinstance(in_axes, int) else tuple(in_axes)

    def mapped_then_aggregated(*args: Any, kwargs: Any) -> Any:
        output = vmap_fn(fun, axes, out_axes)(*args, **kwargs)
        size = jax.tree.leaves(output)[0].shape[0]
        return _resolve(accumulator, size).aggregate(output)

    looped = microbatch(
        mapped_then_aggregated,
        argnums=tuple(i for i, ax in enumerate(axes) if ax is not None),
        argnames="kwargs",
        microbatch_size=microbatch_size,
        accumulator=accumulator,
        in_axes=(*(ax for ax in axes if ax is not None), 0),
        num_real_microbatches=num_real_microbatches,
    )
    return lambda *args, **kwargs: looped(*args, kwargs=kwargs)


def micro_grad(
    fun: Callable[..., Any],
    has_aux: bool = False,
    argnums: int | Sequence[int] = 0,
    *,
    batch_argnums: int | Sequence[int] = 1,
    keep_batch_dim: bool = True,
    microbatch_size: int | None = None,
    accumulator: Any = AccumulationType.SUM,
    transform_fn: Callable[[Any], Any] = lambda x: x,
    metrics_fn: Callable[[Any], Any] = lambda x: None,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., tuple[Any, Aux]]:
    """Per-example gradients of ``fun``, transformed (clipped, say) and then combined.

    Each example of the batch arguments gets its own ``jax.value_and_grad``;
    ``transform_fn`` acts on each per-example gradient (DP-SGD clips it there), and
    ``accumulator`` combines them (summed by default). The per-example values,
    ``metrics_fn`` of each gradient and the aux are returned beside it, concatenated.

    Args:
      fun: ``fun(params, batch, ...) -> loss`` (or ``(loss, aux)`` with ``has_aux``).
      has_aux: whether ``fun`` returns ``(loss, aux)``.
      argnums: the arguments differentiated.
      batch_argnums: the batch arguments.
      keep_batch_dim: each example keeps a batch axis of 1 (``fun`` written for
        batches); False removes it.
      microbatch_size: see `microbatch`.
      accumulator: how the (transformed) per-example gradients combine.
      transform_fn: applied to each per-example gradient.
      metrics_fn: of each per-example gradient, returned in ``Aux.metrics``.
      num_real_microbatches: see `microbatch`.

    Returns:
      ``grad_fn(*args) -> (gradient, Aux(values, metrics, aux))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> loss = lambda w, x: jnp.sum(x @ w)
      >>> grad, aux = gradtx.microbatching.micro_grad(loss, microbatch_size=2)(jnp.ones(2), jnp.ones((4, 2)))
      >>> grad, aux.values.shape  # four examples' gradients (each x), summed
      (Array([4., 4.], dtype=float32), (4,))

    References:
      Abadi et al., "Deep Learning with Differential Privacy" (CCS 2016), per-example
      clipping; optax ``microbatching.micro_grad`` (same semantics and numbers).
    """
    batch = (batch_argnums,) if isinstance(batch_argnums, int) else tuple(batch_argnums)
    with_aux = fun if has_aux else (lambda *a, **k: (fun(*a, **k), None))
    value_and_grad = jax.value_and_grad(with_aux, argnums, has_aux=True)

    def one_example(*args: Any, **kwargs: Any) -> tuple[Any, Aux]:
        (value, aux), grad = value_and_grad(*args, **kwargs)
        return transform_fn(grad), Aux(values=value, metrics=metrics_fn(grad), aux=aux)

    in_axes: list[int | None] = [None] * (max(batch) + 1)
    for i in batch:
        in_axes[i] = 0
    per_example = micro_vmap(
        one_example,
        in_axes=in_axes,
        accumulator=(accumulator, AccumulationType.CONCAT),
        microbatch_size=microbatch_size,
        num_real_microbatches=num_real_microbatches,
    )
    if not keep_batch_dim:
        return per_example

    def with_batch_axis(*args: Any, **kwargs: Any) -> Any:
        expanded = list(args)
        for i in batch:
            expanded[i] = jax.tree.map(lambda x: jnp.expand_dims(x, axis=1), args[i])
        return per_example(*expanded, **kwargs)

    return with_batch_axis
