r"""GaLore (Zhao et al., 2024): a base optimizer run on the gradients of the weight
matrices projected to a low-rank subspace, refreshed from the gradient's SVD every
``update_proj_gap`` steps, so its state is low-rank too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._checks import InputError
from gradtx.base import Context, Params, Transform, Updates, Wrapper, safe_increment, zero_count
from gradtx.blocks.adaptive import scale_by_adam
from gradtx.blocks.decay import add_decayed_weights
from gradtx.blocks.scaling import ScalarOrSchedule, scale_by_learning_rate
from gradtx.chains import Chain, labelled
from gradtx.data import FrozenTree, hyper, pytree_dataclass, static
from gradtx.packed import repacked, unpacked


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a parameter are its matrix's rows (``reduction_axis``) and columns
    (``output_axis``); together they must name every axis. optax's type."""

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


class GaLoreState(NamedTuple):
    """State of `scale_by_galore`: the step count, the base optimizer's state (on the
    projected gradients) and each matrix's projector (``(0, 0)`` zeros elsewhere)."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    base_optimizer_state: Any
    projector: Updates


def _is_dims(x: Any) -> bool:
    return isinstance(x, GaLoreDimensionNumbers)


def _dims_of(treedef: Any, dims: Any) -> list[Any]:
    """The dimension numbers (or None) of each leaf of ``treedef`` (None leaves of the
    parameters are not leaves; a None in ``dims`` over a subtree covers it)."""
    return treedef.flatten_up_to(
        jax.tree.map(
            lambda d, sub: jax.tree.map(lambda _: d, sub),
            dims,
            treedef.unflatten([0] * treedef.num_leaves),
            is_leaf=lambda x: x is None or _is_dims(x),
        )
    )


def _matrix(x: Any, dims: GaLoreDimensionNumbers) -> tuple[Any, Any, tuple[int, int]]:
    if x.ndim < 2:
        raise InputError("galore", f"a matrix parameter must have rank >= 2, got shape {x.shape}")
    as_axes = lambda a: ((a % x.ndim),) if isinstance(a, int) else tuple(i % x.ndim for i in a)  # noqa: E731
    red, out = as_axes(dims.reduction_axis), as_axes(dims.output_axis)
    if set(red) & set(out):
        raise InputError(
            "galore", f"reduction axes {red} and output axes {out} must be disjoint (shape {x.shape})"
        )
    if len(set(red) | set(out)) != x.ndim:
        raise InputError(
            "galore", f"the dimension numbers must name every axis of shape {x.shape}: got {red}, {out}"
        )
    order = red + out
    inverse = tuple(sorted(range(x.ndim), key=lambda i: order[i]))
    m, n = math.prod(x.shape[a] for a in red), math.prod(x.shape[a] for a in out)
    unflat = tuple(x.shape[a] for a in order)
    return (
        (lambda y: y.transpose(order).reshape(m, n)),
        (lambda y: y.reshape(unflat).transpose(inverse)),
        (m, n),
    )


@pytree_dataclass
class scale_by_galore(Wrapper):
    r"""Runs ``base_optimizer`` on low-rank projections of the matrices' gradients.

    For a matrix gradient ``G`` (m x n) with ``m >= n``: ``P`` holds the first ``r``
    left singular vectors of ``G`` at the last refresh, the base optimizer sees
    ``P^T G`` (r x n) and its update ``U`` comes back as ``scale * P U``. With
    ``m < n``, right singular vectors: ``G P`` and ``U P^T``. Other leaves pass to the
    base optimizer unchanged.

    A wrapper whose inside is another space: the base optimizer sees projected
    gradients, so the chain's slots (full-size trees) are withheld from it; a block
    inside that reads one raises, naming it.

    Args:
      rank: ``r``, the projection's rank (an int > 0; capped at ``min(m, n)``).
      update_proj_gap: steps between refreshes of the projectors.
      scale: the multiplier of the projected-back update.
      base_optimizer: the optimizer of the projected gradients (default
        `gradtx.scale_by_adam`).
      weight_dimension_numbers: None (2-D leaves are matrices), one
        `GaLoreDimensionNumbers` for every leaf of rank >= 2, a tree of them (None:
        not a matrix), or a function of the parameters returning such a tree.

    Returns:
      A transform whose state is `GaLoreState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.scale_by_galore(rank=1, base_optimizer=gradtx.identity())
      >>> g = jnp.asarray([[3.0, 0.0], [0.0, 0.5]])  # keeps the top singular direction
      >>> jnp.abs(tx.update(g, tx.init(g))[0])
      Array([[3., 0.],
             [0., 0.]], dtype=float32)

    References:
      Zhao et al., 2024, GaLore: memory-efficient LLM training by gradient low-rank
      projection. ``optax.contrib.scale_by_galore`` (same numbers).
    """

    rank: int = static(default=128)
    update_proj_gap: int = static(default=200, rule=_checks.positive_int)
    scale: Any = hyper(default=1.0)
    base_optimizer: Any = hyper(default=None)
    weight_dimension_numbers: Any = static(default=None)

    _inner_field = "base_optimizer"
    _inner_state_field = "base_optimizer_state"

    def __post_init__(self) -> None:
        if self.base_optimizer is None:
            object.__setattr__(self, "base_optimizer", scale_by_adam())
        if not isinstance(self.rank, int) or isinstance(self.rank, bool):
            raise TypeError(f"scale_by_galore: rank must be an int, got {type(self.rank)}")
        if self.rank <= 0:
            raise InputError("scale_by_galore", f"rank must be > 0, got {self.rank}")
        spec = self.weight_dimension_numbers
        if (
            spec is not None
            and not callable(spec)
            and not _is_dims(spec)
            and not isinstance(spec, FrozenTree)
        ):
            object.__setattr__(self, "weight_dimension_numbers", FrozenTree(spec))
        super().__post_init__()

    def _dims(self, params: Params) -> Any:
        spec = self.weight_dimension_numbers
        if spec is None:
            return jax.tree.map(lambda p: GaLoreDimensionNumbers() if p.ndim == 2 else None, params)
        if isinstance(spec, FrozenTree):
            return spec.tree
        if _is_dims(spec):
            return jax.tree.map(lambda p: spec if p.ndim >= 2 else None, params)
        return spec(params)

    def _shapes(self, p: Any, dims: Any) -> tuple[Any, Any]:
        if dims is None:
            return jnp.zeros((0, 0), p.dtype), jnp.zeros_like(p)
        _, _, (m, n) = _matrix(p, dims)
        r = min(self.rank, m, n)
        if m >= n:
            return jnp.zeros((m, r), p.dtype), jnp.zeros((r, n), p.dtype)
        return jnp.zeros((n, r), p.dtype), jnp.zeros((m, r), p.dtype)

    def init(self, params: Params) -> GaLoreState:
        params = unpacked(params)
        if not jax.tree.leaves(params):
            return GaLoreState(zero_count(), self.base_optimizer.init(params), params)
        leaves, treedef = jax.tree.flatten(params)
        pairs = [
            self._shapes(p, d) for p, d in zip(leaves, _dims_of(treedef, self._dims(params)), strict=True)
        ]
        projectors = treedef.unflatten([a for a, _ in pairs])
        proxies = treedef.unflatten([b for _, b in pairs])
        return GaLoreState(zero_count(), self.base_optimizer.init(proxies), projectors)

    def _update(self, updates: Updates, state: GaLoreState, params: Params | None, ctx: Context):
        del params
        packed_like, updates = updates, unpacked(updates)
        refresh = state.count % self.update_proj_gap == 0
        dims = self._dims(updates)
        rank = self.rank

        def project(g: Any, projector: Any, d: Any) -> tuple[Any, Any]:
            if d is None:
                return g, projector
            to_2d, _, (m, n) = _matrix(g, d)
            g2 = to_2d(g)
            r = min(rank, m, n)
            left = m >= n

            def fresh() -> Any:
                u, _, vh = jnp.linalg.svd(g2.astype(jnp.float32), full_matrices=False)
                return (u[:, :r] if left else vh[:r, :].T).astype(g.dtype)

            p = jax.lax.cond(refresh, fresh, lambda: projector)
            return (p.T @ g2 if left else g2 @ p), p

        leaves, treedef = jax.tree.flatten(updates)
        dim_list = _dims_of(treedef, dims)
        pairs = [
            project(g, p, d)
            for g, p, d in zip(leaves, treedef.flatten_up_to(state.projector), dim_list, strict=True)
        ]
        low = treedef.unflatten([a for a, _ in pairs])
        projectors = treedef.unflatten([b for _, b in pairs])
        inner = ctx.withholding("galore's base optimizer sees low-rank projections, not the full-size trees")
        low_updates, base_state = self.base_optimizer._apply(low, state.base_optimizer_state, None, inner)
        scale = self.scale

        def back(u: Any, p: Any, g: Any, d: Any) -> Any:
            if d is None:
                return u
            _, from_2d, (m, n) = _matrix(g, d)
            full = p @ u if m >= n else u @ p.T
            return (scale * from_2d(full)).astype(g.dtype)

        out = treedef.unflatten(
            [
                back(u, p, g, d)
                for u, p, g, d in zip(
                    treedef.flatten_up_to(low_updates),
                    treedef.flatten_up_to(projectors),
                    leaves,
                    dim_list,
                    strict=True,
                )
            ]
        )
        return repacked(packed_like, out), GaLoreState(safe_increment(state.count), base_state, projectors)


@_checks.checked(learning_rate=_checks.rate, weight_decay=_checks.nonnegative)
def galore(
    learning_rate: ScalarOrSchedule,
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float = 1.0,
    base_optimizer: Transform | None = None,
    weight_decay: Any = 0.0,
    mask: Any = None,
    weight_dimension_numbers: Any = None,
) -> Chain:
    r"""GaLore: Adam (or ``base_optimizer``) on low-rank projections of the matrices'
    gradients, then weight decay and the learning rate.

    Args:
      learning_rate: a number >= 0 or a schedule.
      rank: the projection's rank.
      update_proj_gap: steps between refreshes of the projectors.
      scale: the multiplier of the projected-back update.
      base_optimizer: the optimizer of the projections (default `gradtx.scale_by_adam`).
      weight_decay: decoupled weight decay, >= 0.
      mask: which parameters to decay.
      weight_dimension_numbers: which leaves are matrices (see `scale_by_galore`).

    Returns:
      ``chain(scale_by_galore(...), add_decayed_weights(...), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.galore(0.1, rank=1, base_optimizer=gradtx.identity())
      >>> p = jnp.zeros((2, 2))
      >>> jnp.abs(opt.update(jnp.asarray([[3.0, 0.0], [0.0, 0.5]]), opt.init(p), p)[0])
      Array([[0.3, 0. ],
             [0. , 0. ]], dtype=float32)

    References:
      Zhao et al., 2024. ``optax.contrib.galore`` (same numbers).
    """
    return labelled(
        "galore",
        scale_by_galore(rank, update_proj_gap, scale, base_optimizer, weight_dimension_numbers),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


__all__ = ["GaLoreDimensionNumbers", "GaLoreState", "galore", "scale_by_galore"]
