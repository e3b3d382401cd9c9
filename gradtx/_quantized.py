"""Optimizer state in 8 or 4 bits: block-wise quantized moments (`quantized`,
`QuantizedArray`).

A moment buffer is flattened and cut into blocks; each block keeps one float32 scale
(its largest magnitude) and one code per value, the index of the nearest entry of a
sorted map of ``2**bits`` numbers (Dettmers et al., 2022; Li et al., 2023). The maps,
the defaults and how they were chosen are on the documentation page "Optimizer state
that fits" (docs/api/memory.rst).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import math
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gradtx._checks import InputError

PyTree = Any

_SPELLINGS = {"8bit": 8, "4bit": 4}
_MAPS = ("dynamic", "linear")


@dataclasses.dataclass(frozen=True)
class quantized:
    """How a moment buffer is stored: ``bits`` (8 or 4) per value in blocks of
    ``block_size`` values, each block with one float32 scale.

    Pass it (or the spelling ``"8bit"`` / ``"4bit"``) as a moment's dtype:
    ``gradtx.adam(1e-3, mu_dtype=gradtx.quantized(8), nu_dtype=gradtx.quantized(8))``.
    Measured (BENCHMARKS.md): 8 bits for both moments keeps float32's held-out loss; 4
    bits for the first moment costs a few percent of it, so ``mu_dtype="8bit",
    nu_dtype="4bit"`` is the economical middle.

    Args:
      bits: 8 or 4 bits per value (4-bit codes are stored two to a byte).
      block_size: values per scale; 256 for 8 bits, 128 for 4 bits (torchao's defaults).
        Even, at least 2.
      map: ``"dynamic"`` (the default) or ``"linear"``; unsigned maps (second moments)
        never contain zero. See the documentation page "Optimizer state that fits".
      min_size: leaves with fewer values are stored unquantized (float32 or wider).
      signed: set by the block that owns the buffer (first moments are signed, second
        moments are not); leave it None.

    Returns:
      A hashable description used as a static field of the transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.adam(1e-3, mu_dtype="8bit", nu_dtype="8bit")
      >>> state = tx.init({"w": jnp.zeros((64, 128))})
      >>> state[0].mu["w"].codes.dtype, state[0].mu["w"].codes.size
      (dtype('uint8'), 8192)

    References:
      Dettmers et al., 2022, "8-bit Optimizers via Block-wise Quantization";
      Li et al., 2023, "Memory Efficient Optimizers with 4-bit States".
    """

    bits: int = 8
    block_size: int | None = None
    map: str | None = None
    min_size: int = 4096
    signed: bool | None = None

    def __post_init__(self) -> None:
        if self.bits not in (8, 4):
            raise InputError("quantized", f"bits must be 8 or 4, got {self.bits!r}")
        if self.block_size is not None and (
            not isinstance(self.block_size, int) or self.block_size < 2 or self.block_size % 2
        ):
            raise InputError("quantized", f"block_size must be an even integer >= 2, got {self.block_size!r}")
        if self.map is not None and self.map not in _MAPS:
            raise InputError("quantized", f"map must be one of {_MAPS} or None, got {self.map!r}")
        if not isinstance(self.min_size, int) or self.min_size < 0:
            raise InputError("quantized", f"min_size must be an integer >= 0, got {self.min_size!r}")

    @property
    def block(self) -> int:
        """The block size in effect."""
        return self.block_size if self.block_size is not None else (256 if self.bits == 8 else 128)

    @property
    def kind(self) -> str:
        """The map in effect."""
        return self.map if self.map is not None else "dynamic"

    def __repr__(self) -> str:
        fields = [f"{self.bits}"]
        if self.block_size is not None:
            fields.append(f"block_size={self.block_size}")
        if self.map is not None:
            fields.append(f"map={self.map!r}")
        if self.min_size != 4096:
            fields.append(f"min_size={self.min_size}")
        return f"quantized({', '.join(fields)})"


def is_quantized(dtype: Any) -> bool:
    """Whether a moment dtype asks for quantized storage (a `quantized` or its spelling)."""
    return isinstance(dtype, quantized) or (isinstance(dtype, str) and dtype in _SPELLINGS)


def storage(dtype: Any, signed: bool) -> Any:
    """The storage a block asks `gradtx._tree.zeros_like` for: ``dtype`` unchanged,
    or the `quantized` it names with ``signed`` set (True for a first moment)."""
    if isinstance(dtype, str) and dtype in _SPELLINGS:
        dtype = quantized(_SPELLINGS[dtype])
    if isinstance(dtype, quantized):
        return dataclasses.replace(dtype, signed=signed)
    return dtype


# --- the maps -----------------------------------------------------------------------------


def _dynamic(bits: int, signed: bool) -> np.ndarray:
    """The dynamic map (Dettmers et al., 2022): for each power of ten ``10**-(E-1-i)``
    the midpoints of an even grid on [0.1, 1], ``2**i`` of them (signed; ``2**(i+1)``
    unsigned, which has the sign bit to spend), then 0 and 1."""
    exponents = 7 if bits == 8 else 3
    values: list[float] = []
    for i in range(exponents):
        count = 2 ** (i + bits - 1 - exponents) if signed else 2 ** (i + bits - exponents)
        edges = np.linspace(0.1, 1.0, count + 1)
        mids = (edges[:-1] + edges[1:]) / 2 * 10.0 ** (i - (exponents - 1))
        values += list(mids)
        if signed:
            values += list(-mids)
    # Zero and one; an unsigned map (a second moment's) has no zero but one twice: a
    # second moment decoded as zero would turn m / (sqrt(v) + eps) into m / eps
    # (Li et al., 2023, section 4.1: their "DE-0" map).
    values += [0.0 if signed else 1.0, 1.0]
    assert len(values) == 2**bits, (bits, signed, len(values))
    ordered = np.sort(np.asarray(values, np.float64))
    if signed:
        # The other change from bitsandbytes' table: -1 in place of the most negative
        # midpoint, so a block whose largest magnitude is negative stores it exactly
        # (with 4 bits the table's -0.8875 would make that value 11% too small).
        ordered[0] = -1.0
    return ordered


def _linear(bits: int, signed: bool) -> np.ndarray:
    if signed:
        steps = np.linspace(-1.0, 1.0, 2**bits - 1)
        return np.concatenate([steps, [1.0]])  # 2**bits codes, the last repeated
    return (np.arange(2**bits, dtype=np.float64) + 1) / 2**bits


@functools.cache
def table(bits: int, kind: str, signed: bool) -> np.ndarray:
    """The sorted map: ``2**bits`` float32 values in [-1, 1] (or (0, 1])."""
    values = _dynamic(bits, signed) if kind == "dynamic" else _linear(bits, signed)
    return values.astype(np.float32)


@functools.cache
def _encoder(bits: int, kind: str, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(candidates, midpoints): for each of the 65,536 values of a float32's top 16 bits,
    the code of the interval's lower end; and the midpoints between successive map
    entries, padded with +inf."""
    values = table(bits, kind, signed).astype(np.float64)
    mids = (values[:-1] + values[1:]) / 2
    keys = np.arange(2**16, dtype=np.uint32) << 16
    with np.errstate(invalid="ignore"):  # the NaN keys: never reached (|x| <= 1)
        low = keys.view(np.float32).astype(np.float64)  # the interval's end nearer zero
        high = (keys | 0xFFFF).view(np.float32).astype(np.float64)
    lower = np.where(low < 0, high, low)  # the interval's lower end on the number line
    upper = np.where(low < 0, low, high)
    finite = np.isfinite(lower) & np.isfinite(upper)
    lower, upper = np.where(finite, lower, 0.0), np.where(finite, upper, 0.0)
    candidates = np.searchsorted(mids, lower, side="left")
    # At most one midpoint inside any interval of values that can occur (|x| <= 1):
    # then the candidate or the next code is the nearest.
    inside = np.searchsorted(mids, upper, side="left") - candidates
    relevant = np.maximum(np.abs(lower), np.abs(upper)) <= 1.0
    assert np.all(inside[relevant] <= 1), (bits, kind, signed)
    padded = np.concatenate([mids, [np.inf]]).astype(np.float32)
    return candidates.astype(np.uint8), padded


def _nearest(x: jax.Array, bits: int, kind: str, signed: bool) -> jax.Array:
    """The code (uint8) of the map entry nearest to each value of ``x`` (float32 in [-1, 1])."""
    candidates, mids = _encoder(bits, kind, signed)
    key = jax.lax.shift_right_logical(jax.lax.bitcast_convert_type(x, jnp.uint32), jnp.uint32(16))
    code = _lookup(candidates, key)
    step = x > _lookup(mids, code)
    return code + jax.lax.convert_element_type(step, jnp.uint8)


def _lookup(values: np.ndarray | jax.Array, index: jax.Array) -> jax.Array:
    """``values[index]``, sharded like ``index`` (a gather from a replicated table: a map,
    or the scales of a packed buffer's blocks)."""
    typed = _typed_spec(index)
    table_ = jnp.asarray(values)
    if typed is not None:
        return table_.at[index.astype(jnp.int32)].get(out_sharding=P(*typed[1]))
    # lax.gather itself: jnp's indexing costs about 0.5 ms of tracing a lookup, and the
    # indices are in range by construction.
    return jax.lax.gather(
        table_,
        _column(jax.lax.convert_element_type(index, jnp.int32)),
        _TABLE_LOOKUP,
        slice_sizes=(1,),
        mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    )


def _column(x: jax.Array) -> jax.Array:
    """``x[..., None]`` (lax's, without jnp's indexing: a tenth of a millisecond of tracing
    each, per leaf and step)."""
    return jax.lax.expand_dims(x, (jnp.ndim(x),))


_TABLE_LOOKUP = jax.lax.GatherDimensionNumbers(
    offset_dims=(), collapsed_slice_dims=(0,), start_index_map=(0,)
)


# --- the stored buffer --------------------------------------------------------------------


class QuantizedArray:
    """A moment buffer stored block-wise in 8 or 4 bits: what a quantized state holds in
    place of a float32 array (see `quantized`).

    ``codes`` (uint8) and ``scales`` (float32) are its pytree children, so it
    checkpoints, shards and donates like any state. Blocks run along the flattened array;
    when the last axis holds whole blocks, the codes keep the array's leading axes
    (``shape[:-1] + (shape[-1] // block, block)``, scales ``shape[:-1] + (shape[-1] //
    block,)``) so they shard like the array, otherwise ``(blocks, block)`` and
    ``(blocks,)``. 4-bit codes are two to a byte (the last axis halved). ``shape`` and
    ``dtype`` describe the array it stands for (float32); `decode` returns it. ``nbytes``
    is what it stores.
    """

    def __init__(
        self,
        codes: jax.Array,
        scales: jax.Array,
        shape: tuple[int, ...],
        spec: quantized,
        segments: tuple[int, ...] | None = None,
    ):
        self.codes = codes
        self.scales = scales
        self.shape = tuple(shape)
        self.spec = spec
        self.segments = segments

    dtype = jnp.dtype(jnp.float32)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(
            self.codes.size * self.codes.dtype.itemsize + self.scales.size * self.scales.dtype.itemsize
        )

    def tree_flatten(self) -> tuple[tuple[jax.Array, jax.Array], tuple[Any, ...]]:
        return (self.codes, self.scales), (self.shape, self.spec, self.segments)

    @classmethod
    def tree_unflatten(cls, aux: tuple[Any, ...], children: Any) -> QuantizedArray:
        codes, scales = children
        return cls(codes, scales, *aux)

    def __repr__(self) -> str:
        return f"QuantizedArray(shape={self.shape}, {self.spec!r}, signed={self.spec.signed})"

    @classmethod
    def encode(cls, x: jax.Array, spec: quantized, segments: tuple[int, ...] | None = None) -> QuantizedArray:
        """``x`` stored as ``spec`` says (``spec.signed`` set). ``segments``: the sizes of
        the leaves a packed buffer holds, in order; each is cut into its own blocks."""
        assert spec.signed is not None
        if segments is not None:
            return cls._encode_segments(x, spec, segments)
        blocks = _to_blocks(x.astype(jnp.float32), spec.block)
        scales = jnp.max(jnp.abs(blocks), axis=-1)
        safe = jnp.where(scales > 0, scales, 1.0)
        normalized = jnp.clip(blocks / _column(safe), -1.0, 1.0)
        codes = _nearest(normalized, spec.bits, spec.kind, spec.signed)
        return cls(_packed_codes(codes, spec), scales, x.shape, spec)

    def decode_blocks(self) -> jax.Array:
        """The decoded values in the block layout (``codes``' shape at 8 bits; the last
        block's padding included); plain (not packed) buffers only."""
        assert self.segments is None
        return self._values() * _column(self.scales)

    def to_blocks(self, x: jax.Array) -> jax.Array:
        """``x`` (shaped like the buffer) in the block layout of `decode_blocks`."""
        return _to_blocks(x, self.spec.block)

    def from_blocks(self, blocks: jax.Array) -> jax.Array:
        """The inverse of `to_blocks`."""
        return _from_blocks(blocks, self.shape, self.spec.block)

    def _values(self) -> jax.Array:
        spec = self.spec
        codes = self.codes
        if spec.bits == 4:
            codes = jnp.stack([codes & 0xF, codes >> 4], axis=-1).reshape((*codes.shape[:-1], -1))
        return _lookup(table(spec.bits, spec.kind, bool(spec.signed)), codes)

    def decode(self) -> jax.Array:
        """The float32 array the buffer stands for."""
        values = self._values()
        if self.segments is not None:
            flat_spec = _segments_spec(self.codes)
            ids = _block_ids(self.segments, self.spec.block, flat_spec)
            if flat_spec is None:
                flat = values.reshape(-1)[: self.size]
                return (flat * _lookup(self.scales, ids)).reshape(self.shape)
            # sharded: whole bytes of codes per device, so no padding code
            flat = jax.lax.reshape(values, (values.size,), out_sharding=P(*flat_spec))
            return flat * _lookup(self.scales, ids)
        return _from_blocks(values * _column(self.scales), self.shape, self.spec.block)

    @classmethod
    def _encode_segments(cls, x: jax.Array, spec: quantized, segments: tuple[int, ...]) -> QuantizedArray:
        # A packed buffer: blocks restart at every leaf, so a block never holds values of
        # two leaves. No padding between leaves: each value finds its block by index.
        # Under an explicit-sharding mesh the codes shard like the buffer where every
        # device holds whole bytes of codes (`_segments_local`), the block ids are sliced
        # like it and the scales (a few per leaf) are replicated; otherwise the buffer is
        # encoded replicated.
        flat = jnp.ravel(x).astype(jnp.float32)
        typed = _typed_spec(flat)
        flat_spec = None
        if typed is not None:
            if _segments_local(flat.shape[0], typed[1], typed[0], spec.bits):
                flat_spec = typed[1]
            else:
                flat = jax.sharding.reshard(flat, P())
        ids = _block_ids(segments, spec.block, flat_spec)
        blocks = _block_count(segments, spec.block)
        replicated = None if flat_spec is None else P()
        scales = jax.ops.segment_max(
            jnp.abs(flat), ids, blocks, indices_are_sorted=True, out_sharding=replicated
        )
        scales = jnp.maximum(scales, 0.0)  # an empty segment's -inf
        safe = jnp.where(scales > 0, scales, 1.0)
        normalized = jnp.clip(flat / _lookup(safe, ids), -1.0, 1.0)
        codes = _nearest(normalized, spec.bits, spec.kind, bool(spec.signed))
        if spec.bits == 4 and len(flat) % 2:  # two codes a byte: an odd count gets one padding code
            codes = jnp.pad(codes, (0, 1))
        row = None if flat_spec is None else P(None, *flat_spec)
        codes = jax.lax.reshape(codes, (1, codes.shape[0]), out_sharding=row)
        return cls(_packed_codes(codes, spec), scales, x.shape, spec, segments)

    def like(self, x: jax.Array) -> QuantizedArray:
        """``x`` stored as this buffer is (the block's new moment, re-encoded)."""
        return QuantizedArray.encode(x, self.spec, self.segments)

    def astype(self, dtype: Any) -> jax.Array:
        return self.decode().astype(dtype)


jax.tree_util.register_pytree_with_keys(
    QuantizedArray,
    lambda q: (
        ((jax.tree_util.GetAttrKey("codes"), q.codes), (jax.tree_util.GetAttrKey("scales"), q.scales)),
        (q.shape, q.spec, q.segments),
    ),
    QuantizedArray.tree_unflatten,
    QuantizedArray.tree_flatten,
)


# --- the block layout, and where its blocks live -------------------------------------------
#
# Blocks of ``block`` values run along the flattened array (row-major), the last one
# zero-padded. When the last axis holds whole blocks, no block crosses a row, and the block
# layout keeps the leading axes: ``shape[:-1] + (shape[-1] // block, block)``, the same
# values in the same order, shaped so that a sharding of the array is a sharding of its
# blocks. Under an explicit-sharding mesh every reshape names its output's sharding; a
# sharding that would cut a block goes through a replicated copy (`_blocks_spec`).


def _rows(shape: tuple[int, ...], block: int) -> bool:
    """Whether the block layout of an array of ``shape`` keeps its leading axes."""
    return len(shape) >= 1 and shape[-1] > 0 and shape[-1] % block == 0


def _block_shape(shape: tuple[int, ...], block: int) -> tuple[int, ...]:
    if _rows(shape, block):
        return (*shape[:-1], shape[-1] // block, block)
    size = math.prod(shape)
    return (-(-size // block) if size else 1, block)


def _mesh_axes(entry: Any) -> tuple[str, ...]:
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, tuple | list) else (entry,)


def _ways(mesh: Any, entry: Any) -> int:
    return math.prod(mesh.shape[a] for a in _mesh_axes(entry))


def _blocks_spec(
    shape: tuple[int, ...], spec: tuple[Any, ...], mesh: Any, block: int
) -> tuple[Any, ...] | None:
    """The sharding of the block layout of an array of ``shape`` sharded as ``spec`` that
    puts every block on one device, or None where there is none (a block would be cut)."""
    if all(e is None for e in spec):
        return (None,) * len(_block_shape(shape, block))
    if _rows(shape, block):
        last = spec[-1]
        if last is not None and (shape[-1] // _ways(mesh, last)) % block:
            return None
        return (*tuple(spec[:-1]), last, None)
    # The flat layout: each device must hold one contiguous run of whole blocks, so the
    # sharded axes are leading ones, all split to one index per device but the last.
    sharded = [i for i, e in enumerate(spec) if e is not None]
    j = sharded[-1]
    if any(spec[i] is None or shape[i] != _ways(mesh, spec[i]) for i in range(j)):
        return None
    if (math.prod(shape) // math.prod(_ways(mesh, spec[i]) for i in sharded)) % block:
        return None
    axes = tuple(a for i in range(j + 1) for a in _mesh_axes(spec[i]))
    return (axes[0] if len(axes) == 1 else axes, None)


def _array_spec(shape: tuple[int, ...], bspec: tuple[Any, ...], mesh: Any, block: int) -> tuple[Any, ...]:
    """The inverse of `_blocks_spec`: the array's sharding from its blocks'."""
    if _rows(shape, block):
        return (*tuple(bspec[:-2]), bspec[-2])
    remaining = list(_mesh_axes(bspec[0]))
    spec: list[Any] = []
    for n in shape:
        taken: list[str] = []
        while remaining and n % (_ways(mesh, tuple(taken)) * mesh.shape[remaining[0]]) == 0:
            taken.append(remaining.pop(0))
        spec.append(None if not taken else taken[0] if len(taken) == 1 else tuple(taken))
    return tuple(spec)


def _typed_spec(x: Any) -> tuple[Any, tuple[Any, ...]] | None:
    """(mesh, spec) of ``x``'s sharding type under an explicit-sharding mesh, when some
    axis is sharded; None otherwise (no mesh, or an automatic one: XLA propagates)."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    spec = tuple(getattr(sharding, "spec", None) or ())
    if sharding is None or not any(e is not None for e in spec):
        return None
    return sharding.mesh, spec + (None,) * (jnp.ndim(x) - len(spec))


def _to_blocks(x: jax.Array, block: int) -> jax.Array:
    """``x`` in the block layout (flattened and zero-padded unless the last axis holds
    whole blocks)."""
    shape = tuple(x.shape)
    typed = _typed_spec(x)
    if typed is not None:
        mesh, spec = typed
        bspec = _blocks_spec(shape, spec, mesh, block)
        if bspec is None:  # a block would span devices: the blocks are replicated
            x = jax.sharding.reshard(x, P())
        else:  # whole blocks per device, so no padding either
            return jax.lax.reshape(x, _block_shape(shape, block), out_sharding=P(*bspec))
    if _rows(shape, block):
        return x.reshape(_block_shape(shape, block))
    flat = jnp.ravel(x)
    pad = -flat.shape[0] % block if flat.shape[0] else block
    if pad:
        flat = jnp.pad(flat, (0, pad))
    return flat.reshape(-1, block)


def _from_blocks(blocks: jax.Array, shape: tuple[int, ...], block: int) -> jax.Array:
    """The inverse of `_to_blocks` for an array of ``shape``."""
    typed = _typed_spec(blocks)
    if typed is not None:
        mesh, bspec = typed
        return jax.lax.reshape(blocks, shape, out_sharding=P(*_array_spec(shape, bspec, mesh, block)))
    if _rows(shape, block):
        return blocks.reshape(shape)
    flat = blocks.reshape(-1)
    size = math.prod(shape)
    return (flat if flat.shape[0] == size else flat[:size]).reshape(shape)


def _placed(q: QuantizedArray, like: Any) -> QuantizedArray:
    """``q`` (a new buffer for the array ``like``) with its blocks on the devices that
    hold ``like``'s values: whole blocks per device where ``like``'s sharding allows it
    (`_blocks_spec`), replicated over its mesh otherwise."""
    typed = _typed_spec(like)
    # (A tracer's .sharding builds an error message: costly, and not wanted here.)
    concrete = isinstance(like, jax.Array) and not isinstance(like, Tracer)
    sharding = like.sharding if concrete else None
    if typed is None and not isinstance(sharding, NamedSharding):
        return q
    if typed is not None:
        mesh, spec = typed
    else:
        assert isinstance(sharding, NamedSharding)
        mesh, spec = sharding.mesh, tuple(sharding.spec) + (None,) * (jnp.ndim(like) - len(sharding.spec))
    if q.segments is not None:  # a packed buffer: codes in value order, scales replicated
        local = _segments_local(q.size, spec, mesh, q.spec.bits)
        bspec = (None, spec[0]) if local else (None, None)
        scales_spec: tuple[Any, ...] = (None,)
    else:
        bspec = _blocks_spec(q.shape, spec, mesh, q.spec.block) or (None,) * q.codes.ndim
        scales_spec = bspec[:-1]
    if typed is not None:
        codes = jax.sharding.reshard(q.codes, P(*bspec))
        scales = jax.sharding.reshard(q.scales, P(*scales_spec))
    else:
        codes = jax.device_put(q.codes, NamedSharding(mesh, P(*bspec)))
        scales = jax.device_put(q.scales, NamedSharding(mesh, P(*scales_spec)))
    return QuantizedArray(codes, scales, q.shape, q.spec, q.segments)


def _segments_local(size: int, spec: tuple[Any, ...], mesh: Any, bits: int) -> bool:
    """Whether a packed buffer of ``size`` values sharded as ``spec`` keeps its codes on
    the devices of its values: every device holds whole bytes of codes (at 4 bits, an
    even count of values)."""
    ways = _ways(mesh, spec[0]) if spec else 1
    return ways > 1 and size % (ways * (8 // bits)) == 0


def _segments_spec(codes: jax.Array) -> tuple[Any, ...] | None:
    """The sharding of a packed buffer's values, from its codes' (1, n) sharding type
    under an explicit-sharding mesh; None when its codes are not sharded."""
    typed = _typed_spec(codes)
    return None if typed is None else (typed[1][-1],)


def _packed_codes(codes: jax.Array, spec: quantized) -> jax.Array:
    """Codes as stored: one a byte at 8 bits, two a byte at 4 (rows of even length)."""
    if spec.bits == 8:
        return codes
    pairs = codes.reshape((*codes.shape[:-1], -1, 2))
    return pairs[..., 0] | (pairs[..., 1] << 4)


def _block_count(segments: tuple[int, ...], block: int) -> int:
    return sum(-(-n // block) for n in segments)


def _block_ids(segments: tuple[int, ...], block: int, spec: tuple[Any, ...] | None = None) -> jax.Array:
    """For each value of a packed buffer, the index of its block (blocks of ``block``
    values restarting at each leaf): computed from an iota and the leaves' offsets, so
    no buffer-sized constant enters the program. ``spec``: the buffer's sharding under
    an explicit-sharding mesh, the ids' (sliced from the replicated ids)."""
    if spec is not None:
        return jax.sharding.reshard(_block_ids(segments, block), P(*spec))
    sizes = np.asarray(segments, np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    first = np.concatenate([[0], np.cumsum(-(-sizes // block))[:-1]])
    i = jnp.arange(int(sizes.sum()), dtype=jnp.int32)
    if len(sizes) == 1:
        return i // block
    leaf = jnp.searchsorted(jnp.asarray(offsets[1:], jnp.int32), i, side="right", method="scan_unrolled")
    start = jnp.asarray(offsets, jnp.int32)[leaf]
    return jnp.asarray(first, jnp.int32)[leaf] + (i - start) // block


def _stored_dtype(x: Any) -> Any:
    """Where a leaf stays unquantized: float32, or the parameter's dtype if wider."""
    dtype = jnp.result_type(x)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return dtype
    return jnp.promote_types(dtype, jnp.float32) if jnp.issubdtype(dtype, jnp.floating) else jnp.float32


def full(x: Any, value: Any, spec: quantized, segments: tuple[int, ...] | None = None) -> Any:
    """``value`` everywhere, shaped like the leaf ``x``, stored as ``spec`` (leaves under
    ``spec.min_size`` values, and complex leaves, unquantized). ``segments``: the leaf
    sizes of a packed buffer (`QuantizedArray.encode`)."""
    shape = jnp.shape(x)
    dtype = _stored_dtype(x)
    if math.prod(shape) < max(spec.min_size, 1) or not jnp.issubdtype(dtype, jnp.floating):
        return jnp.full(shape, value, dtype)
    if spec.signed is None:
        raise InputError("quantized", "a quantized buffer needs signed=True or False (set by the block)")
    if segments is not None or not isinstance(value, int | float | np.number):
        return _placed(QuantizedArray.encode(jnp.full(shape, value, jnp.float32), spec, segments), x)
    # A constant: every block stores ``value`` as the code of +-1 (or of 0) times |value|,
    # the last block's padding as the code of 0; no float buffer is built or encoded.
    value = float(np.float32(value))
    blocks = _block_shape(shape, spec.block)
    code_of = functools.partial(_nearest_code, bits=spec.bits, kind=spec.kind, signed=bool(spec.signed))
    codes = jnp.full(blocks, code_of(np.sign(value)), jnp.uint8)
    pad = math.prod(blocks) - math.prod(shape)
    if pad:
        codes = codes.at[-1, blocks[-1] - pad :].set(code_of(0.0))
    scales = jnp.full(blocks[:-1], abs(value), jnp.float32)
    return _placed(QuantizedArray(_packed_codes(codes, spec), scales, shape, spec), x)


@functools.cache
def _nearest_code(x: float, bits: int, kind: str, signed: bool) -> int:
    """`_nearest` of one number in [-1, 1], as a Python int (evaluated now, also while
    tracing; cached: init asks for the codes of -1, 0 and 1)."""
    with jax.ensure_compile_time_eval():
        return int(_nearest(jnp.float32(x), bits, kind, signed))


def own_blocks(sizes: tuple[int, ...], block: int) -> tuple[int, ...] | None:
    """The ``segments`` that keep each of the concatenated leaves of ``sizes`` in blocks of
    its own; None where the plain layout already does (every leaf but the last fills whole
    blocks), the faster one."""
    return None if all(n % block == 0 for n in sizes[:-1]) else tuple(sizes)


_LEAF_SIZES: contextvars.ContextVar[tuple[int, ...] | None] = contextvars.ContextVar(
    "gradtx_concatenated_leaves", default=None
)


@contextlib.contextmanager
def concatenated_leaves(sizes: tuple[int, ...]) -> Iterator[None]:
    """While it is open, a quantized buffer allocated for a vector of ``sum(sizes)``
    values (leaves of these sizes, concatenated: `gradtx.flatten`) keeps every leaf in
    blocks of its own, as on packed parameters."""
    token = _LEAF_SIZES.set(tuple(sizes))
    try:
        yield
    finally:
        _LEAF_SIZES.reset(token)


def full_tree(tree: PyTree, value: Any, spec: quantized) -> PyTree:
    """`full` over a tree; a `gradtx.Packed` buffer, and the vector `concatenated_leaves`
    describes, are quantized leaf by leaf (each of their leaves in its own blocks) when
    they hold at least ``spec.min_size`` values."""
    from gradtx.packed import Packed

    concatenated = _LEAF_SIZES.get()

    def one(x: Any) -> Any:
        if not isinstance(x, Packed):
            if concatenated is not None and jnp.shape(x) == (sum(concatenated),):
                return full(x, value, spec, own_blocks(concatenated, spec.block))
            return full(x, value, spec)
        layout = x.layout
        buffers = []
        for b, buffer in enumerate(x.buffers):
            members = layout.members[b]
            if layout.alone(b) or not hasattr(buffer, "shape"):
                buffers.append(jax.tree.map(lambda y: full(y, value, spec), buffer))
            else:
                sizes = tuple(layout.slots[i].size for i in members)
                buffers.append(full(buffer, value, spec, own_blocks(sizes, spec.block)))
        return Packed(tuple(buffers), layout)

    return jax.tree.map(one, tree, is_leaf=lambda x: isinstance(x, Packed))


def is_stored(x: Any) -> bool:
    """Whether ``x`` is a `QuantizedArray` (an is_leaf for tree maps over states)."""
    return isinstance(x, QuantizedArray)


def decoded(tree: PyTree) -> PyTree:
    """``tree`` with every `QuantizedArray` decoded (the float32 arrays they stand for)."""
    return jax.tree.map(lambda x: x.decode() if isinstance(x, QuantizedArray) else x, tree, is_leaf=is_stored)
