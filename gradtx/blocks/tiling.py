"""`tiled`: an elementwise optimizer run over each large leaf one tile at a time.

Why: a quantized moment (``mu_dtype="8bit"``) is stored in 8 bits but computed in float32;
each new moment is needed whole by three readers (its block maxima, its encoding and the
blocks after it), so XLA keeps it whole, for every leaf at once: on the CPU 8 bytes per
parameter of temporaries for AdamW's two moments, more than the 6 the 8-bit state saves
(``benchmarks/quantized.py --parts peak``). Run tile by tile, a new moment exists one
tile at a time; the step reads and writes each value once, in cache.

The optimizer must be elementwise (each output value depends on the same position's
gradient, parameter and state values, and on shared scalars: step counts, schedules);
its blocks say so (``Transform.elementwise``), and `tiled` refuses any other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks, _quantized, _tree
from gradtx._checks import InputError
from gradtx.base import Context, Params, Transform, Updates, Wrapper
from gradtx.blocks.masking import MaskedNode, pieces_of
from gradtx.chains import Chain
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.packed import Packed

PyTree = Any


_tile_rule = _checks.Rule(
    "must be an integer >= 2 (values per tile)",
    lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 2,
    numeric=False,
)


def not_elementwise(tx: Transform) -> list[str]:
    """The names of the blocks in ``tx`` (through chains) that do not declare themselves
    elementwise."""
    if isinstance(tx, Chain):
        return [name for block in tx.transforms for name in not_elementwise(block)]
    return [] if type(tx).elementwise else [type(tx).__name__]


@pytree_dataclass
class tiled(Wrapper):
    """Runs an elementwise optimizer over each leaf of more than ``tile`` values one tile
    at a time (a ``lax.fori_loop``), so the float32 values a step computes exist one tile
    at a time; the numbers are ``inner``'s.

    For quantized state (``mu_dtype="8bit"``, ``"4bit"``): its moments are computed in
    float32, and XLA keeps each new moment whole for every leaf at once (on the CPU, 8
    bytes per parameter of temporaries for AdamW's two moments: more than the state
    saves). In tiles, a step's temporaries are a tile's, and on the CPU the step runs
    about twice as fast (BENCHMARKS.md, "Quantized optimizer state").

    Leaves whose state is not all quantized (XLA computes their step in one pass without
    temporaries), leaves of ``tile`` values or fewer, complex leaves and leaves sharded by
    an explicit-sharding mesh run whole, in one call of ``inner`` with the tails of the
    tiled leaves. Under a classic mesh a sharded leaf cannot be told apart while tracing
    and is cut into tiles, which makes XLA gather it: use `tiled` where the quantized
    leaves live on one device. Mask functions inside ``inner`` see the whole tree. The
    state is ``inner``'s, unchanged: a checkpoint of one restores into the other.

    Args:
      inner: the optimizer; every block of it must be elementwise (each output value
        depends on the same position's gradient, parameter and state values, and on
        step counts and schedules): momentum, scale_by_rms, add_decayed_weights,
        scale_by_learning_rate, ... (``Transform.elementwise``). A block that reads the
        whole tree (``clip_by_global_norm``, a per-layer trust ratio) is refused: chain
        it outside, ``chain(clip_by_global_norm(1.0), tiled(adamw(...)))``.
      tile: values per tile; a multiple of the quantized state's block size (256 at
        8 bits, 128 at 4). The default, 65,536 (256 KiB of float32), was chosen on a
        CPU (16,384 to 1,048,576 measured: within 15% of each other); it has not been
        measured on a GPU, where each tile is a few kernel launches.

    Returns:
      A transform whose state is ``inner``'s.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> adamw8 = gradtx.adamw(1e-3, mu_dtype="8bit", nu_dtype="8bit")
      >>> tx = gradtx.tiled(adamw8, tile=4096)
      >>> p = {"w": jnp.ones((64, 256)), "b": jnp.zeros(256)}
      >>> u, state = tx.update(p, tx.init(p), p)  # "w" in 4 tiles, "b" whole
      >>> bool(jnp.all(u["w"] == adamw8.update(p, adamw8.init(p), p)[0]["w"]))
      True

    Raises:
      InputError: when a block of ``inner`` is not elementwise (at construction), for
        packed parameters, or when ``tile`` is not a multiple of a quantized buffer's
        block size.

    References:
      Not in optax. A fused 8-bit optimizer kernel (bitsandbytes; Dettmers et al.,
      2022) walks a buffer block by block in the same way, so no whole-leaf float32
      moment ever exists.
    """

    inner: Transform = hyper()
    tile: int = static(default=65536, kw_only=True, rule=_tile_rule)

    _inner_state_field = None  # the state is the inner transform's

    def __post_init__(self) -> None:
        super().__post_init__()
        refused = not_elementwise(self.inner)
        if refused:
            raise InputError(
                "tiled",
                f"{', '.join(sorted(set(refused)))} is not elementwise (it reads more of the tree "
                "than the values at one position), so it cannot run one tile at a time. Chain it "
                "outside: chain(clip_by_global_norm(1.0), tiled(adamw(...))).",
            )

    def init(self, params: Params) -> Any:
        return self.inner.init(params)

    def _tiles(self, u: Any) -> int:
        """How many whole tiles leaf ``u`` runs in (0: it runs whole)."""
        if not hasattr(u, "dtype") or jnp.issubdtype(u.dtype, jnp.complexfloating) or u.size <= self.tile:
            return 0
        if _quantized._typed_spec(u) is not None:
            return 0  # sharded by an explicit mesh: cutting it would gather it
        return u.size // self.tile

    def _update(self, updates: Updates, state: Any, params: Params | None, ctx: Context):
        if isinstance(updates, Packed):
            raise InputError(
                "tiled",
                "packed parameters hold many leaves in one buffer; tiled is for trees of "
                "large leaves (pack the small leaves, or leave tiled out).",
            )
        u_leaves, treedef = jax.tree.flatten(updates)
        s_paths, owners = _tree.state_owners(state, updates)
        s_leaves = [x for _, x in s_paths]
        # Only leaves whose state buffers are all quantized run in tiles. XLA computes the
        # step of a leaf with none in one pass, without temporaries; and a float buffer
        # read and written in place by the loop, beside the updates, would be copied by
        # XLA every iteration to order its reads and writes (measured: 13x slower).
        mine = {k: [i for i, owner in enumerate(owners) if owner == k] for k in range(len(u_leaves))}
        tiles = [
            self._tiles(u) if mine[k] and all(_quantized.is_stored(s_leaves[i]) for i in mine[k]) else 0
            for k, u in enumerate(u_leaves)
        ]
        if not any(tiles):
            return self.inner._apply(updates, state, params, ctx)
        s_treedef = jax.tree.structure(state, is_leaf=_quantized.is_stored)
        for x, owner in zip(s_leaves, owners, strict=True):
            if owner is not None and tiles[owner] and _quantized.is_stored(x):
                if self.tile % x.spec.block or x.segments is not None:
                    raise InputError(
                        "tiled",
                        f"tile={self.tile} is not a multiple of the quantized state's block "
                        f"size {x.spec.block}: a tile must hold whole blocks.",
                    )
        shared = [i for i, owner in enumerate(owners) if owner is None]

        def run(u: dict[int, Any], s: dict[int, Any], cut: Callable[[Any, int], Any]) -> tuple[Any, Any, Any]:
            """``inner`` on the tree of the pieces ``u`` (leaf index -> piece; the other
            leaves masked out), the state's pieces ``s`` (state leaf index -> piece) and
            the shared state leaves; ``cut(x, k)`` cuts leaf k's piece out of a parameter
            or slot leaf. Returns the pieces of the updates and of the per-parameter
            state, and the new shared state leaves."""

            def tree_of(pieces: dict[int, Any]) -> Any:
                return treedef.unflatten([pieces.get(k, MaskedNode()) for k in range(len(u_leaves))])

            def cut_tree(whole: Any) -> Any:
                leaves = treedef.flatten_up_to(whole)
                return tree_of({k: cut(leaves[k], k) for k in u})

            sub_state = s_treedef.unflatten(
                [
                    s.get(i, MaskedNode()) if owners[i] is not None else s_leaves[i]
                    for i in range(len(s_leaves))
                ]
            )
            with pieces_of(updates):
                out, new_state = self.inner._apply(
                    tree_of(u), sub_state, None if params is None else cut_tree(params), ctx.carried(cut_tree)
                )
            new_leaves = jax.tree.leaves(new_state, is_leaf=_quantized.is_stored)
            kept = [i for i, owner in enumerate(owners) if owner is None or i in s]
            by_index = dict(zip(kept, new_leaves, strict=True))
            out_pieces = dict(zip(sorted(u), jax.tree.leaves(out), strict=True))
            return out_pieces, {i: by_index[i] for i in s}, [by_index[i] for i in shared]

        out_leaves = list(u_leaves)
        new_leaves = list(s_leaves)
        new_shared: list[Any] | None = None
        flat: dict[int, tuple[Any, list[Any]]] = {}  # tiled leaf -> (updates, state buffers), flat

        # 1. Each tiled leaf's whole tiles; its state is read from and written to the
        # loop's carry (so in place).
        for k, count in enumerate(tiles):
            if not count:
                continue

            def body(t: Any, carry: Any, k: int = k) -> Any:
                u_flat, buffers, _ = carry
                start = t * self.tile
                u, s, shared_out = run(
                    {k: _cut(u_flat, start, self.tile)},
                    {
                        i: _cut_flat(b, s_leaves[i], start, self.tile)
                        for b, i in zip(buffers, mine[k], strict=True)
                    },
                    lambda x, j: _cut(x, start, self.tile),
                )
                u_flat = _put(u_flat, u[k], start)
                buffers = [_put(b, s[i], start) for b, i in zip(buffers, mine[k], strict=True)]
                return u_flat, buffers, shared_out

            dtype = jax.eval_shape(
                lambda k=k: run(
                    {k: _cut(u_leaves[k], 0, self.tile)},
                    {i: _cut(s_leaves[i], 0, self.tile) for i in mine[k]},
                    lambda x, j: _cut(x, 0, self.tile),
                )[0][k]
            ).dtype
            # The carry: the updates, written over the gradient (in place where the
            # gradient is computed in the same program), and the quantized buffers.
            carry = (
                jnp.ravel(u_leaves[k]).astype(dtype),
                [_flat_buffer(s_leaves[i]) for i in mine[k]],
                [s_leaves[i] for i in shared],
            )
            u_flat, buffers, loop_shared = jax.lax.fori_loop(0, count, body, carry)
            new_shared = loop_shared if new_shared is None else new_shared
            flat[k] = (u_flat, buffers)

        # 2. The whole leaves, and the tiled leaves' tails (read from the loops' results),
        # in one call.
        whole_u: dict[int, Any] = {}
        whole_s: dict[int, Any] = {}
        for k, u in enumerate(u_leaves):
            if not tiles[k]:
                whole_u[k] = u
                whole_s.update({i: s_leaves[i] for i in mine[k]})
            elif u.size > tiles[k] * self.tile:
                start, size = tiles[k] * self.tile, u.size - tiles[k] * self.tile
                u_flat, buffers = flat[k]
                whole_u[k] = _cut(u_flat, start, size)
                whole_s.update(
                    {i: _cut_flat(b, s_leaves[i], start, size) for b, i in zip(buffers, mine[k], strict=True)}
                )

        def cut_whole(x: Any, k: int) -> Any:
            if not tiles[k]:
                return x
            start = tiles[k] * self.tile
            return _cut(x, start, u_leaves[k].size - start)

        if whole_u:
            u, s, whole_shared = run(whole_u, whole_s, cut_whole)
            new_shared = whole_shared  # the same values each call computes: any
            for k, piece in u.items():
                if tiles[k]:
                    u_flat, buffers = flat[k]
                    start = tiles[k] * self.tile
                    flat[k] = (
                        _put(u_flat, piece, start),
                        [_put(b, s[i], start) for b, i in zip(buffers, mine[k], strict=True)],
                    )
                else:
                    out_leaves[k] = piece
            for i, x in s.items():
                if not tiles[owners[i]]:  # pyright: ignore[reportArgumentType, reportCallIssue]
                    new_leaves[i] = x
        for k, (u_flat, buffers) in flat.items():
            out_leaves[k] = u_flat.reshape(u_leaves[k].shape)
            for b, i in zip(buffers, mine[k], strict=True):
                new_leaves[i] = _unflat_buffer(b, s_leaves[i])
        assert new_shared is not None
        for i, x in zip(shared, new_shared, strict=True):
            new_leaves[i] = x
        return treedef.unflatten(out_leaves), s_treedef.unflatten(new_leaves)


def _cut(x: Any, start: Any, size: int) -> Any:
    """Values ``start`` to ``start + size`` of ``x`` (flattened): an array's, or a
    quantized buffer's whole blocks (``start`` a multiple of its block size)."""
    return _cut_flat(_flat_buffer(x), x, start, size)


def _flat_buffer(x: Any) -> Any:
    """A state buffer in the flat form `_cut_flat` and `_put` work on: an array
    raveled; a quantized buffer's codes as (blocks, bytes per block) and scales as (blocks,)."""
    if _quantized.is_stored(x):
        return (x.codes.reshape(-1, x.codes.shape[-1]), x.scales.reshape(-1))
    return jnp.ravel(x)


def _cut_flat(flat: Any, like: Any, start: Any, size: int) -> Any:
    """`_cut` of a `_flat_buffer` of ``like``."""
    if isinstance(flat, tuple):
        codes, scales = flat
        block = like.spec.block
        first, blocks = start // block, math.ceil(size / block)
        return _quantized.QuantizedArray(
            jax.lax.dynamic_slice_in_dim(codes, first, blocks, 0),
            jax.lax.dynamic_slice_in_dim(scales, first, blocks, 0),
            (size,),
            like.spec,
        )
    return jax.lax.dynamic_slice_in_dim(flat, start, size, 0)


def _unflat_buffer(flat: Any, like: Any) -> Any:
    """The inverse of `_flat_buffer` (``like``: the buffer it came from)."""
    if _quantized.is_stored(like):
        codes, scales = flat
        return _quantized.QuantizedArray(
            codes.reshape(like.codes.shape), scales.reshape(like.scales.shape), like.shape, like.spec
        )
    return flat.reshape(like.shape)


def _put(flat: Any, piece: Any, start: Any) -> Any:
    """``flat`` (a `_flat_buffer`) with ``piece`` written from value ``start`` on."""
    if isinstance(flat, tuple):
        codes, scales = flat
        first = start // piece.spec.block
        return (
            jax.lax.dynamic_update_slice_in_dim(codes, piece.codes.reshape(-1, codes.shape[-1]), first, 0),
            jax.lax.dynamic_update_slice_in_dim(scales, piece.scales.reshape(-1), first, 0),
        )
    return jax.lax.dynamic_update_slice_in_dim(flat, piece.astype(flat.dtype), start, 0)
