r"""Muon (Jordan et al., 2024): momentum, then each weight matrix's update replaced by
its nearest semi-orthogonal matrix (Newton-Schulz iterations), the rest to AdamW.

A composition: ``muon = partition({"muon": chain(momentum(beta, nesterov=True),
orthogonalize(...), scale_by_shape(...), add_decayed_weights(...),
scale_by_learning_rate(lr)), "adam": adamw(...)}, labels)``.

Which leaves are matrices, and which axes are a matrix's rows and columns, is decided
by optax's ``MuonDimensionNumbers`` (given per leaf, or by a function of the
parameters). optax's default counts every 2-D leaf as a matrix and nothing else;
`MatrixRule` is gradtx's documented, overridable rule for real models (embeddings and
output heads to AdamW, scanned stacks of layers as batches of matrices, attention
kernels with head axes folded), and `explain_matrices` shows each leaf's choice.

Beyond optax: `orthogonalize` stacks the matrices of the same shape and runs one
batched Newton-Schulz per shape (``grouped=True``, the default), instead of one per
leaf, so a model with hundreds of same-shape matrices compiles one iteration.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax.core import Tracer

from gradtx import _checks
from gradtx._checks import InputError
from gradtx.base import Params, Stateless, Updates
from gradtx.blocks.decay import add_decayed_weights
from gradtx.blocks.masking import MaskedNode, partition
from gradtx.blocks.momentum import MomentumState, momentum
from gradtx.blocks.scaling import ScalarOrSchedule, scale_by_learning_rate
from gradtx.chains import Chain, labelled
from gradtx.contrib._common import find_state
from gradtx.data import FrozenTree, hyper, pytree_dataclass, static
from gradtx.optimizers.adam import adamw
from gradtx.packed import repacked, unpacked

_PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
DEFAULT_NS_COEFFS = (3.4445, -4.775, 2.0315)
DION_NS_COEFFS = (
    (4.0848, -6.8946, 2.927),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)
_NS_PRESETS: dict[str, Any] = {"standard": DEFAULT_NS_COEFFS, "dion": DION_NS_COEFFS}


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a parameter are a matrix's input (``reduction_axis``, rows) and
    output (``output_axis``, columns); every other axis is a batch of matrices.
    optax's type: ``MuonDimensionNumbers(0, 1)`` is a plain ``(in, out)`` kernel;
    ``MuonDimensionNumbers(1, 2)`` a scanned ``(layers, in, out)`` stack;
    ``MuonDimensionNumbers(0, (1, 2))`` an attention kernel ``(d_model, heads, d_head)``."""

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


def _is_dim_nums(x: Any) -> bool:
    return isinstance(x, MuonDimensionNumbers)


def _axes(x: Any, dim_nums: MuonDimensionNumbers) -> tuple[tuple[int, ...], tuple[int, ...]]:
    red = dim_nums.reduction_axis
    out = dim_nums.output_axis
    red = (red,) if isinstance(red, int) else tuple(red)
    out = (out,) if isinstance(out, int) else tuple(out)
    return tuple(a % x.ndim for a in red), tuple(a % x.ndim for a in out)


def _reshape(
    x: Any, dim_nums: MuonDimensionNumbers
) -> tuple[Callable[[Any], Any], Callable[[Any], Any], tuple[int, int, int]]:
    """``(to (batch, in, out), back, (batch, in, out))`` for ``x`` under ``dim_nums``."""
    if x.ndim < 2:
        raise InputError("muon", f"a matrix parameter must have rank >= 2, got shape {x.shape}")
    red, out = _axes(x, dim_nums)
    if set(red) & set(out):
        raise InputError(
            "muon", f"reduction and output axes must be disjoint, got {red} and {out} for shape {x.shape}"
        )
    batch = tuple(sorted(set(range(x.ndim)) - set(red) - set(out)))
    order = batch + red + out
    inverse = tuple(sorted(range(x.ndim), key=lambda i: order[i]))
    sizes = lambda axes: tuple(x.shape[a] for a in axes)  # noqa: E731
    flat = (math.prod(sizes(batch)), math.prod(sizes(red)), math.prod(sizes(out)))
    unflat = sizes(batch) + sizes(red) + sizes(out)
    return (
        lambda y: y.transpose(order).reshape(flat),
        lambda y: y.reshape(unflat).transpose(inverse),
        flat,
    )


def _fans(x: Any, dim_nums: MuonDimensionNumbers) -> tuple[int, int]:
    red, out = _axes(x, dim_nums)
    return math.prod(x.shape[a] for a in red), math.prod(x.shape[a] for a in out)


# --- Newton-Schulz -------------------------------------------------------------------


def _ns_step(x: Any, coeffs: Any) -> Any:
    a = x @ x.T.conj()
    b = coeffs[1] * a + coeffs[2] * a @ a
    return coeffs[0] * x + b @ x


def _aol_first(x: Any, coeffs: Any, eps: Any = 1e-8) -> Any:
    a = x @ x.T.conj()
    s = jnp.expand_dims(jax.lax.rsqrt(jnp.clip(jnp.abs(a).sum(axis=-1), min=eps)), -1)
    x, a = x * s, a * s * s.transpose(-1, -2)
    b = coeffs[1] * a + coeffs[2] * a @ a
    return coeffs[0] * x + b @ x


def _schatten_first(x: Any, coeffs: Any, eps: Any = 1e-8) -> Any:
    a = x @ x.T
    s = jnp.expand_dims(
        jax.lax.rsqrt(jnp.clip(jnp.linalg.norm(a, ord="fro", axis=(-2, -1)), min=eps)), (0, -1)
    )
    x, a = x * s, a * s**2
    b = coeffs[1] * a + coeffs[2] * a @ a
    return coeffs[0] * x + b @ x


def _iteration(preconditioning: str) -> Callable[[Any, Any, Any], Any]:
    if preconditioning == "aol":
        return lambda i, x, c: jax.lax.cond(i == 0, lambda y: _aol_first(y, c), lambda y: _ns_step(y, c), x)
    if preconditioning == "schatten":
        return lambda i, x, c: jax.lax.cond(
            i == 0, lambda y: _schatten_first(y, c), lambda y: _ns_step(y, c), x
        )
    return lambda i, x, c: _ns_step(x, c)


def _newton_schulz(x: Any, coeffs: Any, steps: int, preconditioning: str, eps: Any) -> Any:
    """The orthogonal factor of one matrix ``x`` (rows <= columns after a transpose)."""
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    if preconditioning == "frobenius":
        x = x / (jnp.linalg.norm(x, ord="fro") + eps)
    elif preconditioning == "spectral":
        x = x / (jnp.linalg.norm(x, ord=2) + eps)
    step = _iteration(preconditioning)
    coeffs = coeffs.astype(x.dtype)
    if coeffs.ndim == 1:
        x = jax.lax.fori_loop(0, steps, lambda i, y: step(i, y, coeffs), x, unroll=True)
    else:

        def body(carry: Any, c: Any) -> Any:
            i, y = carry
            return (i + 1, step(i, y, c)), None

        (_, x), _ = jax.lax.scan(body, (jnp.asarray(0, jnp.int32), x), coeffs)
    return x.T if transposed else x


def orthogonalize_via_newton_schulz(
    x: jax.Array,
    ns_coeffs: jax.Array,
    ns_steps: int = 5,
    preconditioning: Literal["frobenius", "spectral", "aol", "schatten"] = "frobenius",
    eps: Any = 1e-8,
    dimension_numbers: MuonDimensionNumbers | None = None,
) -> jax.Array:
    r"""The semi-orthogonal factor of ``x``'s matrices by Newton-Schulz iterations.

    .. math:: X_0 = G / (\lVert G\rVert_F + \epsilon), \quad A = X_k X_k^H, \quad
              X_{k+1} = a X_k + (b A + c A^2) X_k

    with ``(a, b, c) = ns_coeffs`` (one triple, or one per step). The iteration
    pushes every singular value towards 1 (to about 0.7 to 1.2 with the default
    quintic coefficients, which trade exactness for speed), so the result is close to
    ``U V^H`` of ``G = U S V^H``.

    Args:
      x: a matrix, or an array whose matrices ``dimension_numbers`` names.
      ns_coeffs: shape (3,) or (steps, 3).
      ns_steps: iterations (with one triple of coefficients).
      preconditioning: the first normalisation: ``"frobenius"`` (Muon's),
        ``"spectral"``, ``"aol"`` or ``"schatten"`` (in the first iteration).
      eps: added to the norm.
      dimension_numbers: which axes are rows and columns (needed unless ``x`` is 2-D).

    Returns:
      An array like ``x``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> g = jnp.asarray([[3.0, 0.0], [0.0, 0.1]])  # singular values 3 and 0.1
      >>> o = gradtx.contrib.orthogonalize_via_newton_schulz(g, jnp.asarray((2.0, -1.5, 0.5)), 20)
      >>> o.round(3)  # the cubic (2, -1.5, 0.5) converges: U V^T = I
      Array([[1., 0.],
             [0., 1.]], dtype=float32)

    References:
      Jordan et al., 2024, Muon; Bernstein and Newhouse, 2024, Old optimizer, new norm.
      ``optax.contrib``'s function of this name (same numbers).
    """
    if x.ndim != 2 and not _is_dim_nums(dimension_numbers):
        raise InputError(
            "orthogonalize_via_newton_schulz",
            f"give dimension_numbers for an array of shape {x.shape} "
            "(only a 2-D array is a matrix by default)",
        )
    if x.ndim == 2:
        dimension_numbers = MuonDimensionNumbers(0, 1)
    assert dimension_numbers is not None
    coeffs = jnp.asarray(ns_coeffs)
    if coeffs.ndim > 2 or coeffs.shape[-1] != 3:
        raise InputError(
            "orthogonalize_via_newton_schulz", f"ns_coeffs must have shape (3,) or (n, 3), got {coeffs.shape}"
        )
    if preconditioning not in _PRECONDITIONINGS:
        raise InputError("orthogonalize_via_newton_schulz", f"unknown preconditioning {preconditioning!r}")
    to_flat, back, _ = _reshape(x, dimension_numbers)
    return back(jax.vmap(lambda m: _newton_schulz(m, coeffs, ns_steps, preconditioning, eps))(to_flat(x)))


def _frozen_spec(spec: Any) -> Any:
    """Dimension numbers as static data: a tree of them as a hashable `FrozenTree`."""
    if spec is None or callable(spec) or isinstance(spec, FrozenTree):
        return spec
    if _is_dim_nums(spec):
        as_tuple = lambda a: a if isinstance(a, int) else tuple(a)  # noqa: E731
        return MuonDimensionNumbers(as_tuple(spec.reduction_axis), as_tuple(spec.output_axis))
    return FrozenTree(spec)


def _resolve(spec: Any, updates: Updates) -> Any:
    if isinstance(spec, FrozenTree):
        return spec.tree
    return spec(updates) if callable(spec) and not _is_dim_nums(spec) else spec


@pytree_dataclass
class orthogonalize(Stateless):
    r"""Replaces each matrix of the updates by its Newton-Schulz orthogonal factor
    (`orthogonalize_via_newton_schulz`).

    With ``adaptive=True`` the result ``O`` is scaled by ``<G, O>`` (``G`` the input),
    so the step keeps the input's size along ``O``.

    ``grouped=True`` (default) stacks the matrices of the same shape and dtype and runs
    one batched iteration per shape; ``False`` runs one per leaf as optax does. The
    arithmetic per matrix is the same.

    Args:
      ns_coeffs: shape (3,) or (steps, 3) coefficients.
      ns_steps: iterations (with one triple of coefficients).
      eps: added to the first normalisation.
      preconditioning: ``"frobenius"``, ``"spectral"``, ``"aol"`` or ``"schatten"``.
      adaptive: scale by ``<G, O>``.
      weight_dimension_numbers: a `MuonDimensionNumbers` for every leaf, a tree of
        them (None for a leaf that is not a matrix), or a function of the updates
        returning such a tree; None: every leaf is a 2-D matrix.
      grouped: one batched iteration per shape.

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.orthogonalize((2.0, -1.5, 0.5), ns_steps=20)
      >>> tx.update(jnp.asarray([[3.0, 0.0], [0.0, 0.1]]), tx.init(None))[0].round(3)
      Array([[1., 0.],
             [0., 1.]], dtype=float32)

    References:
      Jordan et al., 2024, Muon. The part of ``optax.contrib.scale_by_muon`` after its
      momentum (same numbers).
    """

    ns_coeffs: Any = hyper(default=DEFAULT_NS_COEFFS)
    ns_steps: int = static(default=5, rule=_checks.positive_int)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    preconditioning: str = static(default="frobenius")
    adaptive: bool = static(default=False, rule=_checks.flag)
    weight_dimension_numbers: Any = static(default=None)
    grouped: bool = static(default=True, kw_only=True, rule=_checks.flag)

    def __post_init__(self) -> None:
        super().__post_init__()
        coeffs = jnp.asarray(self.ns_coeffs) if not isinstance(self.ns_coeffs, Tracer) else None
        if coeffs is not None:
            if coeffs.ndim > 2 or coeffs.shape[-1] != 3:
                raise InputError(
                    "orthogonalize", f"ns_coeffs must have shape (3,) or (n, 3), got {coeffs.shape}"
                )
            if coeffs.ndim == 2 and coeffs.shape[0] > self.ns_steps:
                raise InputError(
                    "orthogonalize", f"{coeffs.shape[0]} rows of ns_coeffs but ns_steps={self.ns_steps}"
                )
        object.__setattr__(self, "weight_dimension_numbers", _frozen_spec(self.weight_dimension_numbers))
        if self.preconditioning not in _PRECONDITIONINGS:
            raise InputError(
                "orthogonalize",
                f"preconditioning must be one of {_PRECONDITIONINGS}, got {self.preconditioning!r}",
            )

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del params, count
        return repacked(updates, self._orthogonalize(unpacked(updates)))

    def _orthogonalize(self, updates: Updates) -> Updates:
        spec = _resolve(self.weight_dimension_numbers, updates)
        coeffs = jnp.asarray(self.ns_coeffs)
        if coeffs.ndim == 2:
            coeffs = coeffs[-self.ns_steps :]
        leaves, treedef = jax.tree.flatten(updates)
        if spec is None or _is_dim_nums(spec):
            dims = [spec or MuonDimensionNumbers(0, 1)] * len(leaves)
        else:
            dims = treedef.flatten_up_to(spec)
        run = lambda m: _newton_schulz(m, coeffs, self.ns_steps, self.preconditioning, self.eps)  # noqa: E731
        shaped = [_reshape(x, d) for x, d in zip(leaves, dims, strict=True)]
        flats = [to_flat(x) for x, (to_flat, _, _) in zip(leaves, shaped, strict=True)]
        if self.grouped:
            results = _grouped(jax.vmap(run), flats)
        else:
            results = [jax.vmap(run)(f) for f in flats]
        out = [back(r) for r, (_, back, _) in zip(results, shaped, strict=True)]
        if self.adaptive:
            out = [jnp.sum(g.conj() * o) * o for g, o in zip(leaves, out, strict=True)]
        return jax.tree.unflatten(treedef, out)


def _grouped(batched: Callable[[Any], Any], flats: list[Any]) -> list[Any]:
    """``batched`` on every (batch, m, n) array, run once per (m, n, dtype) group."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, f in enumerate(flats):
        groups.setdefault((f.shape[1:], f.dtype), []).append(i)
    results: list[Any] = [None] * len(flats)
    for members in groups.values():
        if len(members) == 1:
            results[members[0]] = batched(flats[members[0]])
            continue
        stacked = batched(jnp.concatenate([flats[i] for i in members]))
        start = 0
        for i in members:
            size = flats[i].shape[0]
            results[i] = stacked[start : start + size]
            start += size
    return results


@pytree_dataclass
class scale_by_shape(Stateless):
    r"""Scales each matrix's update by a function of its shape.

    .. math:: u = \sqrt{\max(1, \text{fan\_out} / \text{fan\_in})}\; x \quad\text{or, with
              consistent\_rms } r: \quad u = r\sqrt{\max(\text{fan\_in}, \text{fan\_out})}\; x

    The first keeps the step's spectral norm right as the width grows (Muon's); the
    second gives every matrix the update RMS ``r`` of AdamW's (0.2 in Moonshot's
    recipe), so AdamW's learning rate and weight decay carry over.

    Args:
      weight_dimension_numbers: as in `orthogonalize`.
      consistent_rms: ``r`` (None: the width-transfer scaling).

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.scale_by_shape()
      >>> tx.update(jnp.ones((1, 4)), tx.init(None))[0]  # sqrt(4 / 1)
      Array([[2., 2., 2., 2.]], dtype=float32)

    References:
      Jordan et al., 2024; Liu et al., 2025, Muon is scalable for LLM training.
      ``optax.contrib._muon.scale_by_shape`` (same numbers).
    """

    weight_dimension_numbers: Any = static(default=None)
    consistent_rms: Any = hyper(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight_dimension_numbers", _frozen_spec(self.weight_dimension_numbers))
        super().__post_init__()

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del params, count
        return repacked(updates, self._scaled(unpacked(updates)))

    def _scaled(self, updates: Updates) -> Updates:
        spec = _resolve(self.weight_dimension_numbers, updates)
        rms = self.consistent_rms

        def scale(x: Any, dims: Any) -> Any:
            fan_in, fan_out = _fans(x, dims or MuonDimensionNumbers(0, 1))
            if rms is not None:
                return jnp.sqrt(jnp.maximum(fan_in, fan_out)) * rms * x
            return jnp.sqrt(jnp.maximum(1, fan_out / fan_in)) * x

        if spec is None or _is_dim_nums(spec):
            return jax.tree.map(lambda x: scale(x, spec), updates)
        return jax.tree.map(scale, updates, spec, is_leaf=_is_dim_nums)


class MuonState(NamedTuple):
    """optax's Muon state: the step count, the momentum and the Newton-Schulz
    coefficients. gradtx keeps the momentum in `gradtx.momentum`'s state and the
    coefficients in the optimizer (they are settings); build optax's layout with
    ``MuonState.of(state, ns_coeffs)``.

    Attributes:
      count: the number of steps taken (int32).
      mu: the momentum.
      ns_coeffs: the coefficients.
    """

    count: Any  # shape=(), dtype=int32
    mu: Any
    ns_coeffs: Any

    @classmethod
    def of(cls, state: Any, ns_coeffs: Any = DEFAULT_NS_COEFFS) -> MuonState:
        """The optax layout of a gradtx Muon state (the momentum's ``count`` and ``mu``)."""
        moment = find_state("MuonState", state, MomentumState, "a muon optimizer")
        return cls(moment.count, moment.mu, jnp.asarray(ns_coeffs))


def _coefficients(ns_coeffs: Any) -> Any:
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in _NS_PRESETS:
            raise InputError(
                "muon", f"ns_coeffs must be one of {sorted(_NS_PRESETS)} or numbers, got {ns_coeffs!r}"
            )
        return _NS_PRESETS[ns_coeffs]
    return ns_coeffs


def scale_by_muon(
    ns_coeffs: Any = DEFAULT_NS_COEFFS,
    ns_steps: int = 5,
    beta: Any = 0.95,
    eps: Any = 1e-8,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: Literal["frobenius", "spectral", "aol", "schatten"] = "frobenius",
    weight_dimension_numbers: Any = None,
) -> Chain:
    r"""Muon's scaling: Nesterov momentum, then each matrix orthogonalised.

    .. math:: m_t = \beta m_{t-1} + (1 - \beta) g_t, \qquad u_t = \mathrm{NS}(\hat m^{nes}_t)

    A composition: ``chain(momentum(beta, nesterov=nesterov, mu_dtype=mu_dtype),
    orthogonalize(ns_coeffs, ns_steps, eps, preconditioning, adaptive,
    weight_dimension_numbers))``.

    Args:
      ns_coeffs: Newton-Schulz coefficients, (3,) or (steps, 3).
      ns_steps: iterations.
      beta: the momentum's decay, in [0, 1).
      eps: added to the first normalisation.
      mu_dtype: dtype of the momentum.
      nesterov: Nesterov's look-ahead momentum (Muon's default).
      adaptive: scale each result by ``<m, O>``.
      preconditioning: the first normalisation (see `orthogonalize`).
      weight_dimension_numbers: see `orthogonalize`.

    Returns:
      The chain above.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.scale_by_muon((2.0, -1.5, 0.5), ns_steps=20)
      >>> tx.update(jnp.asarray([[3.0, 0.0], [0.0, 0.1]]), tx.init(jnp.zeros((2, 2))))[0].round(3)
      Array([[1., 0.],
             [0., 1.]], dtype=float32)

    References:
      Jordan et al., 2024. ``optax.contrib.scale_by_muon`` (same numbers).
    """
    return labelled(
        "scale_by_muon",
        momentum(beta, nesterov=nesterov, mu_dtype=mu_dtype),
        orthogonalize(
            _coefficients(ns_coeffs), ns_steps, eps, preconditioning, adaptive, weight_dimension_numbers
        ),
    )


# --- which leaves are matrices -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MatrixRule:
    r"""Decides, per parameter, whether Muon treats it as a matrix (and how) or hands it
    to AdamW: the rule practitioners configure by hand, written down once.

    Called on the parameters, it returns a tree of `MuonDimensionNumbers` (a matrix)
    and None (AdamW), for ``muon(..., muon_weight_dimension_numbers=MatrixRule())``.
    The rule, in order, for each leaf with its path (``"encoder/layers/0/kernel"``,
    as `gradtx.path_rules` writes paths):

    1. ``overrides``: ``{glob: MuonDimensionNumbers or None}``; the first pattern that
       matches decides.
    2. Paths matching ``fallback`` (embeddings, output heads, norms, biases by default)
       go to AdamW: an embedding's rows are looked up, not multiplied, and the output
       head's update is usually kept Adam-like (Jordan et al.; Liu et al., 2025).
    3. Rank < 2 (biases, scales, scalars) goes to AdamW.
    4. Rank 2: a plain kernel: ``MuonDimensionNumbers(0, 1)`` for flax's and haiku's
       ``(in, out)`` (``kernel_layout="in_out"``), ``(1, 0)`` for equinox's and
       PyTorch's ``(out, in)`` (``kernel_layout="out_in"``).
    5. Rank >= 3 whose path matches ``stacked`` (scanned layers: ``"*layers*"``,
       ``"*blocks*"``, ``"*scan*"``, ``"*stack*"``): the leading axis counts layers
       (a batch of matrices) and each layer follows rules 4, 6 and 7.
    6. Rank 3 whose path matches ``attention_out`` (``"*out*"``, ``"*o_proj*"``): an
       output projection ``(heads, d_head, d_model)``, ``MuonDimensionNumbers((0, 1), 2)``.
    7. Other rank 3: a query, key or value kernel ``(d_model, heads, d_head)``,
       ``MuonDimensionNumbers(0, (1, 2))``; rank >= 4 (a convolution's
       ``(h, w, in, out)``): the last axis is the output, the others the input.

    Newton-Schulz is symmetric in a matrix's two sides (the factor of ``G^T`` is the
    transpose of ``G``'s); the choice of input and output axes decides the shape
    scaling (`scale_by_shape`) and which axes are folded together.

    Args:
      fallback: globs of paths that go to AdamW whatever their rank.
      stacked: globs of paths whose leading axes stack layers.
      attention_out: globs of rank-3 paths whose two leading axes are the input.
      overrides: ``{glob: MuonDimensionNumbers | None}`` checked first.
      kernel_layout: ``"in_out"`` (flax, haiku) or ``"out_in"`` (equinox, PyTorch).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> params = {"embed": jnp.ones((10, 4)), "dense": {"kernel": jnp.ones((4, 4)), "bias": jnp.ones(4)}}
      >>> rule = gradtx.contrib.MatrixRule()
      >>> rule(params)["dense"]["kernel"], rule(params)["embed"]
      (MuonDimensionNumbers(reduction_axis=0, output_axis=1), None)

    References:
      Jordan et al., 2024, Muon (hidden matrices only); Liu et al., 2025, Muon is
      scalable for LLM training. gradtx's own rule; optax takes the tree by hand.
    """

    fallback: tuple[str, ...] = (
        "*embed*",
        "*wte*",
        "*wpe*",
        "*lm_head*",
        "head/*",
        "*/head/*",
        "*unembed*",
        "*logits*",
        "*norm*",
        "*ln_*",
        "*bias*",
        "*scale*",
    )
    stacked: tuple[str, ...] = ("*layers*", "*blocks*", "*scan*", "*stack*")
    attention_out: tuple[str, ...] = ("*out*", "*o_proj*", "*attn/proj*")
    overrides: tuple[tuple[str, Any], ...] | dict[str, Any] = ()
    kernel_layout: str = "in_out"

    def __post_init__(self) -> None:
        if isinstance(self.overrides, dict):
            object.__setattr__(self, "overrides", tuple(self.overrides.items()))
        if self.kernel_layout not in ("in_out", "out_in"):
            raise InputError(
                "MatrixRule", f"kernel_layout must be 'in_out' or 'out_in', got {self.kernel_layout!r}"
            )

    def choose(self, path: str, leaf: Any) -> tuple[Any, str]:
        """``(dimension numbers or None, the reason)`` for one parameter."""
        low = path.lower()
        for pattern, choice in self.overrides:
            if fnmatch.fnmatchcase(path, pattern):
                return choice, f"override {pattern!r}"
        ndim = len(getattr(leaf, "shape", ()))
        for pattern in self.fallback:
            if fnmatch.fnmatchcase(low, pattern):
                return None, f"fallback {pattern!r}"
        if ndim < 2:
            return None, f"rank {ndim}"
        if ndim >= 3 and any(fnmatch.fnmatchcase(low, p) for p in self.stacked):
            # a scanned stack: the leading axis counts layers; each layer by the rule
            inner, why = self._by_shape(low, ndim - 1)
            shift = lambda a: a + 1 if isinstance(a, int) else tuple(i + 1 for i in a)  # noqa: E731
            dims = MuonDimensionNumbers(shift(inner.reduction_axis), shift(inner.output_axis))
            return dims, f"stack of layers, each {why}"
        return self._by_shape(low, ndim)

    def _by_shape(self, low: str, ndim: int) -> tuple[MuonDimensionNumbers, str]:
        if ndim == 2:
            if self.kernel_layout == "out_in":
                return MuonDimensionNumbers(1, 0), "matrix (out, in)"
            return MuonDimensionNumbers(0, 1), "matrix (in, out)"
        if ndim == 3 and any(fnmatch.fnmatchcase(low, p) for p in self.attention_out):
            return MuonDimensionNumbers((0, 1), 2), "attention output (heads, d_head) -> out"
        if ndim == 3:
            return MuonDimensionNumbers(0, (1, 2)), "attention (d_model, heads, d_head)"
        return MuonDimensionNumbers(tuple(range(ndim - 1)), ndim - 1), f"rank {ndim}: leading axes -> last"

    def __call__(self, params: Params) -> Any:
        from gradtx.rules import _is_variable, _key_name

        def pick(path: Any, leaf: Any) -> Any:
            if leaf is None or isinstance(leaf, MaskedNode):
                return None
            value = _array(leaf)
            return self.choose("/".join(_key_name(k) for k in path), value)[0]

        return jax.tree_util.tree_map_with_path(pick, params, is_leaf=_is_variable)


def _array(leaf: Any) -> Any:
    """The array of a parameter (a flax nnx Variable's value)."""
    return leaf.get_value() if hasattr(leaf, "get_value") else leaf


def explain_matrices(rule: Any, params: Params) -> str:
    """One line per parameter: its path, shape, and Muon's choice for it (the matrix
    shape ``batch x in x out`` it is orthogonalised as, or AdamW), with the reason.

    Args:
      rule: a `MatrixRule`, dimension numbers (a tree or a function of the parameters),
        a `muon` optimizer built with either, or None (optax's default: every 2-D leaf).
      params: the parameters (or their shapes).

    Returns:
      The table, also printable.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> params = {"embed": jnp.ones((10, 4)), "layers": {"kernel": jnp.ones((2, 4, 4))}}
      >>> print(gradtx.contrib.explain_matrices(gradtx.contrib.MatrixRule(), params))
      embed          (10, 4)    adamw  fallback '*embed*'
      layers/kernel  (2, 4, 4)  muon   2 x 4 x 4  stack of layers, each matrix (in, out)

    References:
      gradtx's own; see `MatrixRule`.
    """
    from gradtx.rules import leaf_paths

    if isinstance(rule, partition) and isinstance(rule.param_labels, _MuonLabels):
        rule = rule.param_labels.spec
    given: list[Any] | None = None
    if not isinstance(rule, MatrixRule) and rule is not None:  # a tree or a function of the params
        from gradtx.rules import _is_variable

        plain = jax.tree.map(_array, params, is_leaf=_is_variable)
        spec = _resolve(rule, plain)
        spec = jax.tree.map(lambda _: spec, plain) if _is_dim_nums(spec) else spec
        given = jax.tree.structure(plain).flatten_up_to(spec)
    rows = []
    for i, (path, leaf) in enumerate(leaf_paths(params)[0]):
        value = _array(leaf)
        shape = tuple(getattr(value, "shape", ()))
        if isinstance(rule, MatrixRule):
            dims, why = rule.choose(path, value)
        elif given is not None:
            dims, why = given[i], "given"
        else:
            dims, why = (
                (MuonDimensionNumbers(0, 1), "2-D") if len(shape) == 2 else (None, f"rank {len(shape)}")
            )
        if dims is None:
            rows.append((path, str(shape), "adamw", why))
        else:
            _, _, (b, m, n) = _reshape(jnp.zeros(shape), dims)
            batch = f"{b} x " if b > 1 else ""
            rows.append((path, str(shape), "muon", f"{batch}{m} x {n}  {why}"))
    rows.sort()
    widths = [max(len(r[i]) for r in rows) for i in range(3)] if rows else [0, 0, 0]
    return "\n".join(
        f"{p:<{widths[0]}}  {s:<{widths[1]}}  {c:<{widths[2]}}  {w}".rstrip() for p, s, c, w in rows
    )


# --- muon ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _MuonLabels:
    """The partition labels of `muon`: "muon" where the dimension numbers name a
    matrix, "adam" elsewhere (a hashable function of the parameters)."""

    spec: Any

    def dims(self, params: Params) -> Any:
        if self.spec is None:
            return jax.tree.map(lambda x: MuonDimensionNumbers(0, 1) if x.ndim == 2 else None, params)
        found = _resolve(self.spec, params)
        if _is_dim_nums(found):
            return jax.tree.map(lambda x: found, params)
        return found

    def __call__(self, params: Params) -> Any:
        dims = self.dims(params)
        return jax.tree.map(
            lambda d, sub: jax.tree.map(lambda _: "adam" if d is None else "muon", sub),
            dims,
            params,
            is_leaf=lambda x: x is None or _is_dim_nums(x),
        )


@dataclasses.dataclass(frozen=True)
class _MuonDims:
    """The dimension numbers inside the "muon" group: the matrices', MaskedNode
    elsewhere (the partition's masked tree)."""

    labels: _MuonLabels

    def __call__(self, updates: Updates) -> Any:
        dims = self.labels.dims(updates)
        is_masked = lambda x: isinstance(x, MaskedNode)  # noqa: E731

        def fill(d: Any, sub: Any) -> Any:
            # a prefix of the tree: the same choice for every leaf under it
            if d is None:
                return jax.tree.map(lambda _: MaskedNode(), sub, is_leaf=is_masked)
            return jax.tree.map(lambda x: MaskedNode() if is_masked(x) else d, sub, is_leaf=is_masked)

        return jax.tree.map(
            fill, dims, updates, is_leaf=lambda x: x is None or _is_dim_nums(x) or is_masked(x)
        )


@_checks.checked(learning_rate=_checks.rate, beta=_checks.beta, weight_decay=_checks.nonnegative)
def muon(
    learning_rate: ScalarOrSchedule,
    ns_coeffs: Any = DEFAULT_NS_COEFFS,
    ns_steps: int = 5,
    beta: Any = 0.95,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: Literal["frobenius", "spectral", "aol", "schatten"] = "frobenius",
    adam_b1: Any = 0.9,
    adam_b2: Any = 0.999,
    adam_eps_root: Any = 0.0,
    adam_weight_decay: Any = 0.0,
    adam_learning_rate: ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: Any = None,
    consistent_rms: Any = None,
) -> partition:
    r"""Muon: orthogonalised momentum for the weight matrices, AdamW for the rest.

    .. math:: W \leftarrow W - \eta\,\big(s(W)\, \mathrm{NS}(\hat m^{nes}_t) + \lambda W\big)

    with ``s`` the shape scaling of `scale_by_shape`. Which leaves are matrices:
    ``muon_weight_dimension_numbers`` (a `MuonDimensionNumbers`, a tree of them with
    None for AdamW leaves, or a function of the parameters such as `MatrixRule`); by
    default, optax's rule: every 2-D leaf, nothing else. ``MatrixRule()`` is the rule
    for real models (see it; `explain_matrices` shows its choices).

    Args:
      learning_rate: a number >= 0 or a schedule.
      ns_coeffs: Newton-Schulz coefficients, (3,), (steps, 3), or a preset:
        ``"standard"`` or ``"dion"``.
      ns_steps: iterations.
      beta: the momentum's decay, in [0, 1).
      eps: added to the normalisation (and AdamW's eps).
      weight_decay: decoupled weight decay of the matrices.
      weight_decay_mask: which matrices to decay.
      mu_dtype: dtype of the momenta.
      nesterov: Nesterov momentum (both groups).
      adaptive: scale each orthogonalised update by ``<m, O>``.
      preconditioning: the first normalisation (see `orthogonalize`).
      adam_b1: AdamW's ``b1``.
      adam_b2: AdamW's ``b2``.
      adam_eps_root: AdamW's ``eps_root``.
      adam_weight_decay: AdamW's weight decay.
      adam_learning_rate: AdamW's learning rate (default: ``learning_rate``).
      muon_weight_dimension_numbers: which leaves are matrices, and their axes.
      consistent_rms: match AdamW's update RMS (see `scale_by_shape`).

    Returns:
      ``partition({"muon": chain(scale_by_muon(...), scale_by_shape(...),
      add_decayed_weights(...), scale_by_learning_rate(lr)), "adam": adamw(...)}, labels)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.muon(0.1, ns_coeffs=(2.0, -1.5, 0.5), ns_steps=20)
      >>> p = {"w": jnp.zeros((2, 2)), "b": jnp.zeros(2)}
      >>> u, _ = opt.update({"w": jnp.asarray([[3.0, 0.0], [0.0, 0.1]]), "b": jnp.ones(2)}, opt.init(p), p)
      >>> u["w"].round(3), u["b"].round(3)  # -lr * U V^T; b: NAdamW's first step (Nesterov)
      (Array([[-0.1, -0. ],
             [-0. , -0.1]], dtype=float32), Array([-0.147, -0.147], dtype=float32))

    References:
      Jordan et al., 2024, Muon: an optimizer for hidden layers in neural networks;
      Liu et al., 2025 (consistent RMS). ``optax.contrib.muon`` (same numbers).
    """
    labels = _MuonLabels(_frozen_spec(muon_weight_dimension_numbers))
    dims = _MuonDims(labels)
    matrices = labelled(
        "muon",
        *scale_by_muon(
            ns_coeffs,
            ns_steps,
            beta,
            eps,
            mu_dtype,
            nesterov=nesterov,
            adaptive=adaptive,
            preconditioning=preconditioning,
            weight_dimension_numbers=dims,
        ).transforms,
        scale_by_shape(dims, consistent_rms),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )
    rest = adamw(
        learning_rate if adam_learning_rate is None else adam_learning_rate,
        adam_b1,
        adam_b2,
        eps,
        adam_eps_root,
        mu_dtype,
        adam_weight_decay,
        nesterov=nesterov,
    )
    return partition({"muon": matrices, "adam": rest}, labels)


__all__ = [
    "MatrixRule",
    "MuonDimensionNumbers",
    "MuonState",
    "explain_matrices",
    "muon",
    "orthogonalize",
    "orthogonalize_via_newton_schulz",
    "scale_by_muon",
    "scale_by_shape",
]
