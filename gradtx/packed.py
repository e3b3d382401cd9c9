"""The packed parameter layout: a pytree of a few flat buffers standing for many leaves.

With thousands of small leaves, every elementwise transform costs several kernels per
leaf, compile time grows faster than the number of kernels, and each jitted call pays
microseconds per buffer. `pack` stores the parameters in one flat buffer per group
(dtype, and an optional user label) across steps; the model reads them through
`Packed.unpack`, whose ``jnp.split`` has a single ``concatenate`` as its transpose, so
the gradient comes back packed. Every elementwise gradtx (or optax) transform then runs
on a handful of buffers, unchanged.

>>> import gradtx, jax, jax.numpy as jnp
>>> params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
>>> packed = gradtx.pack(params)
>>> [b.shape for b in packed.buffers]
[(9,)]
>>> loss = lambda p: jnp.sum(p.unpack()["w"] ** 2)
>>> grads = jax.grad(loss)(packed)            # a Packed, like the parameters
>>> opt = gradtx.adam(1e-3)
>>> updates, state = opt.update(grads, opt.init(packed), packed)
>>> new = gradtx.apply_updates(packed, updates)
>>> new.unpack()["w"].shape
(2, 3)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Slot:
    """Where one leaf lives: ``buffers[buffer][offset:offset + size]``, reshaped to
    ``shape`` (or the whole buffer, in its own shape, when ``alone``)."""

    buffer: int
    offset: int
    size: int
    shape: tuple[int, ...]
    dtype: Any
    alone: bool


@dataclasses.dataclass(frozen=True)
class PackLayout:
    """The static description of a packing: the original tree structure, one `Slot` per
    leaf, each buffer's size and dtype, and which leaves each buffer holds, in order.
    Hashable; part of `Packed`'s treedef."""

    treedef: Any
    slots: tuple[Slot, ...]
    buffer_sizes: tuple[int, ...]
    buffer_dtypes: tuple[Any, ...]
    members: tuple[tuple[int, ...], ...]

    def alone(self, b: int) -> bool:
        """Whether buffer ``b`` is one leaf kept in its own shape."""
        return self.slots[self.members[b][0]].alone

    def leaves_of(self, buffers: tuple[jax.Array, ...]) -> list[jax.Array]:
        """The original leaves, cut out of ``buffers``. A buffer masked out as a whole
        (`gradtx.masked` with one flag per buffer puts a node without leaves there)
        stands for each of its leaves, masked out."""
        leaves: list[Any] = [None] * len(self.slots)
        for b, buffer in enumerate(buffers):
            members = self.members[b]
            if _is_masked_out(buffer):
                for i in members:
                    leaves[i] = buffer
                continue
            if self.alone(b):
                leaves[members[0]] = buffer
                continue
            cuts = [self.slots[i].offset for i in members[1:]]
            pieces = jnp.split(buffer, cuts) if cuts else [buffer]
            for i, piece in zip(members, pieces, strict=True):
                leaves[i] = piece.reshape(self.slots[i].shape)
        return leaves

    def pack(self, tree: PyTree) -> Packed:
        """Packs ``tree`` (same structure and shapes as the packed parameters) with this
        layout: one concatenate per buffer."""
        leaves = self.treedef.flatten_up_to(tree)
        buffers = [
            leaves[members[0]]
            if _is_masked_out(leaves[members[0]])
            else jnp.asarray(leaves[members[0]])
            if self.alone(b)
            else jnp.concatenate([jnp.ravel(leaves[i]) for i in members])
            for b, members in enumerate(self.members)
        ]
        return Packed(tuple(buffers), self)

    def per_buffer(self, tree: PyTree) -> tuple[Any, ...]:
        """Per-leaf values (a tree of scalars, e.g. a weight-decay mask) as one value per
        buffer: the scalar itself where all the buffer's leaves agree, else an array
        repeating each leaf's value over its elements."""
        shapes = self.treedef.unflatten(list(self.slots))
        # A mask may hold a flag where a parameter is None; such flags are dropped.
        values = jax.tree.leaves(
            jax.tree.map(lambda s, v: None if s is None else v, shapes, tree, is_leaf=lambda x: x is None)
        )
        out = []
        for size, members in zip(self.buffer_sizes, self.members, strict=True):
            distinct = {np.asarray(values[i]).item() for i in members}
            if len(distinct) == 1:
                out.append(distinct.pop())
            else:
                repeats = np.array([self.slots[i].size for i in members])
                per_leaf = jnp.asarray([values[i] for i in members])
                out.append(jnp.repeat(per_leaf, repeats, total_repeat_length=size))
        return tuple(out)


def _is_masked_out(x: Any) -> bool:
    """Whether ``x`` is a node without leaves standing for a masked-out part of a tree
    (`gradtx.masked`'s ``MaskedNode``, optax's too), not an array."""
    return isinstance(x, tuple) and not jax.tree.leaves(x)


class Packed:
    """Parameters (or gradients, or a moment) stored as a few flat buffers.

    A pytree whose leaves are the buffers and whose static data is the `PackLayout`, so
    ``init``, ``update``, ``apply_updates``, ``jit``, donation and checkpointing see a
    handful of arrays. `unpack` returns the original tree.

    Attributes:
      buffers: the flat buffers (or whole leaves kept alone).
      layout: where each original leaf lives.
    """

    __slots__ = ("buffers", "layout")

    def __init__(self, buffers: tuple[jax.Array, ...], layout: PackLayout) -> None:
        self.buffers = tuple(buffers)
        self.layout = layout

    def unpack(self) -> PyTree:
        """The original tree (``jnp.split`` of each buffer, reshaped)."""
        return self.layout.treedef.unflatten(self.layout.leaves_of(self.buffers))

    def shapes(self) -> PyTree:
        """The original tree with `jax.ShapeDtypeStruct` leaves (for masks and labels)."""
        return self.layout.treedef.unflatten(
            [jax.ShapeDtypeStruct(s.shape, s.dtype) for s in self.layout.slots]
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{b.dtype}[{b.size}]" for b in self.buffers)
        return f"Packed({len(self.layout.slots)} leaves in {len(self.buffers)} buffers: {shown})"


jax.tree_util.register_pytree_with_keys(
    Packed,
    lambda p: ([(jax.tree_util.SequenceKey(i), b) for i, b in enumerate(p.buffers)], p.layout),
    lambda layout, buffers: Packed(tuple(buffers), layout),
)


def _replicated(x: Any) -> bool:
    sharding = getattr(x, "sharding", None)
    return sharding is None or sharding.is_fully_replicated


def pack(
    params: PyTree,
    *,
    group: Callable[[Any, Any], Any] | None = None,
    buffer_size: int = 2**20,
) -> Packed:
    """Packs ``params`` into flat buffers of up to ``buffer_size`` elements per
    (dtype, group label).

    Leaves keep their order. A leaf larger than ``buffer_size`` stays alone, in its own
    shape (its per-leaf overhead is already small), and so does a leaf whose sharding
    is not fully replicated, so nothing sharded is gathered.

    Why a size cap: on CPU, a freshly allocated buffer of tens of MiB is mapped anew by
    the allocator on every step, and each of its pages faults (``benchmarks/step.py``
    counts the faults per step, BENCHMARKS.md "Page faults and bandwidth"); a real
    model's gradient is such a buffer. 2**20 elements keeps both the kernel count and
    that cost small.

    Args:
      params: a pytree of arrays (``None`` leaves are kept as ``None``).
      group: ``group(path, leaf) -> label``: leaves with different labels go to
        different buffers (e.g. ``lambda path, x: x.ndim > 1`` separates the matrices
        to decay from the biases, so a weight-decay mask is one flag per buffer).
      buffer_size: the most elements in one buffer; larger leaves stay alone.

    Returns:
      A `Packed`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> p = gradtx.pack({"w": jnp.ones((2, 2)), "b": jnp.ones(2)}, group=lambda path, x: x.ndim)
      >>> [b.shape for b in p.buffers]
      [(2,), (4,)]

    References:
      PyTorch's multi-tensor ("foreach"/"fused") optimizers group tensors the same way.
    """
    path_leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    open_buffer: dict[Any, int] = {}  # group key -> the buffer still being filled
    filled: list[int] = []
    order: list[list[int]] = []
    alone: list[bool] = []
    for i, (path, leaf) in enumerate(path_leaves):
        leaf = jnp.asarray(leaf)
        if not _replicated(leaf) or leaf.size > buffer_size:
            order.append([i])
            alone.append(True)
            filled.append(int(leaf.size))
            continue
        key = (jnp.dtype(leaf.dtype).name, None if group is None else group(path, leaf))
        b = open_buffer.get(key)
        if b is None or filled[b] + leaf.size > buffer_size:
            b = open_buffer[key] = len(order)
            order.append([])
            alone.append(False)
            filled.append(0)
        order[b].append(i)
        filled[b] += int(leaf.size)
    slots: list[Slot | None] = [None] * len(path_leaves)
    sizes, dtypes = [], []
    for b, (members, is_alone) in enumerate(zip(order, alone, strict=True)):
        offset = 0
        for i in members:
            leaf = jnp.asarray(path_leaves[i][1])
            slots[i] = Slot(b, offset, int(leaf.size), tuple(leaf.shape), jnp.dtype(leaf.dtype), is_alone)
            offset += int(leaf.size)
        sizes.append(offset)
        dtypes.append(jnp.dtype(path_leaves[members[0]][1].dtype))
    members = tuple(tuple(m) for m in order)
    layout = PackLayout(
        treedef, tuple(s for s in slots if s is not None), tuple(sizes), tuple(dtypes), members
    )
    return layout.pack(params)


def map_leaves(fn: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree:
    """``jax.tree.map(fn, tree, *rest)`` over the original leaves, also for packed trees.

    For transforms that need each parameter's own shape (per-layer norms, centring): a
    `Packed` tree is unpacked, mapped leaf by leaf and packed again with its layout, so
    the result is the plain tree's, bit for bit.
    """
    if not isinstance(tree, Packed):
        return jax.tree.map(fn, tree, *rest)
    unpacked = [r.unpack() if isinstance(r, Packed) else r for r in rest]
    return tree.layout.pack(jax.tree.map(fn, tree.unpack(), *unpacked))


def unpacked(tree: PyTree) -> PyTree:
    """The tree of original leaves: a `Packed` tree unpacked, any other as it is."""
    return tree.unpack() if isinstance(tree, Packed) else tree


def repacked(like: PyTree, plain: PyTree) -> PyTree:
    """``plain`` (a tree of original leaves) packed with ``like``'s layout when ``like`` is
    `Packed`, else ``plain`` itself: the way back from `unpacked`."""
    return like.layout.pack(plain) if isinstance(like, Packed) else plain


def broadcast_prefix(prefix: PyTree, full: PyTree) -> PyTree:
    """A tree shaped like ``full`` with each leaf of ``prefix`` repeated over the subtree
    it stands for (a mask given for a whole sub-module, say)."""
    return jax.tree.map(lambda value, sub: jax.tree.map(lambda _: value, sub), prefix, full)
