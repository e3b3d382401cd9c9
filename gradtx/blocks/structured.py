r"""Blocks of the optimizers newer than optax: SOAP's eigenbasis scaling, Adam-mini's
one second moment per block, MARS's variance-reduced gradient and the cautious mask.

Each reads the chain's ``gradient`` slot (`gradtx.channel`), so each composes after
`gradtx.momentum` the way `gradtx.scale_by_rms` does: SOAP is
``chain(momentum, scale_by_soap, ...)``, Adam-mini ``chain(momentum,
scale_by_block_rms, ...)``, C-AdamW ``chain(momentum, scale_by_rms, cautious_mask,
...)``; MARS's correction comes first and momentum averages what it returns.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._checks import InputError
from gradtx.base import (
    Context,
    Params,
    Stateless,
    Transform,
    Updates,
    Wrapper,
    _count_of,
    safe_increment,
    zero_count,
)
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.packed import repacked, unpacked

# --- the cautious mask ---------------------------------------------------------------


def _cautious(update: jax.Array, gradient: jax.Array, agree: bool, floor: Any) -> jax.Array:
    dtype = _tree.compute_dtype(update.dtype, gradient.dtype)
    u, g = _tree.to(update, dtype), _tree.to(gradient, dtype)
    keep = (u * g > 0) if agree else (u * g < 0)
    mask = keep.astype(dtype)
    mask = mask / jnp.maximum(jnp.mean(mask), _tree.cast(floor, dtype))
    return (u * mask).astype(update.dtype)


@pytree_dataclass
class cautious_mask(Stateless):
    r"""Zeroes the coordinates where the update disagrees in sign with the gradient,
    and rescales the rest so the mask averages to 1.

    .. math:: \phi = \mathbb 1[u \odot g > 0], \qquad
              u \leftarrow u \odot \phi / \max(\mathrm{mean}(\phi), \epsilon)

    per parameter, with ``g`` the ``gradient`` slot (the input of the `gradtx.momentum`
    before it: the mask must see the raw gradient, not the momentum it scales).
    Place it where the update still points uphill (before weight decay and the
    learning rate): ``chain(momentum, scale_by_rms, cautious_mask(), add_decayed_weights,
    scale_by_learning_rate)`` is the paper's C-AdamW, the decay unmasked.

    Args:
      eps: the floor of the mask's mean (1e-3 in the reference code).

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.chain(gradtx.momentum(0.5), gradtx.cautious_mask())
      >>> s = tx.init(jnp.zeros(2))
      >>> _, s = tx.update(jnp.asarray([1.0, 1.0]), s)
      >>> tx.update(jnp.asarray([1.0, -0.5]), s)[0].round(4)  # m_hat = [1, 1/3]: keeps 1 of 2
      Array([2., 0.], dtype=float32)

    References:
      Liang et al., 2024, Cautious optimizers: improving training with one line of
      code (algorithm 1).
    """

    eps: Any = hyper(default=1e-3, rule=_checks.nonnegative)

    slots_read = ("gradient",)

    def _update(self, updates: Updates, state: Any, params: Params | None, ctx: Context):
        del params
        gradient = ctx.read(self, "gradient")
        eps = self.at("eps", _count_of(state))
        out = jax.tree.map(lambda u, g: _cautious(u, g, True, eps), unpacked(updates), unpacked(gradient))
        return repacked(updates, out), self._stateless_next(state)


class CautiousState(NamedTuple):
    """State of `cautious`: the wrapped optimizer's state."""

    inner_state: Any


@pytree_dataclass
class cautious(Wrapper):
    r"""Cautious updates for any optimizer: its update is kept only where it descends
    along the gradient, rescaled so the mask averages to 1 per parameter.

    .. math:: \phi = \mathbb 1[\Delta \odot g < 0], \qquad
              \Delta \leftarrow \Delta \odot \phi / \max(\mathrm{mean}(\phi), \epsilon)

    where ``Delta`` is the wrapped optimizer's update (the one `gradtx.apply_updates`
    adds) and ``g`` the gradient given to ``update``. Weight decay inside the wrapped
    optimizer is masked with the rest; for the paper's C-AdamW (decay unmasked) use
    `cautious_adamw`, or `cautious_mask` inside a chain.

    Args:
      optimizer: any optimizer.
      eps: the floor of the mask's mean.

    Returns:
      A transform whose state is `CautiousState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.cautious(gradtx.sgd(0.1, momentum=0.9))
      >>> s = opt.init(jnp.zeros(2))
      >>> _, s = opt.update(jnp.asarray([1.0, 1.0]), s)
      >>> opt.update(jnp.asarray([1.0, -0.5]), s)[0].round(4) + 0.0  # [-0.19, -0.04] x [1, 0] / 0.5
      Array([-0.38,  0.  ], dtype=float32)

    References:
      Liang et al., 2024, Cautious optimizers (algorithm 1, any base optimizer).
    """

    optimizer: Transform = hyper()
    eps: Any = hyper(default=1e-3, rule=_checks.nonnegative)

    _inner_field = "optimizer"

    def init(self, params: Params) -> CautiousState:
        return CautiousState(self.optimizer.init(params))

    def _update(self, updates: Updates, state: CautiousState, params: Params | None, ctx: Context):
        out, inner = self.optimizer._apply(updates, state.inner_state, params, ctx.carried(lambda tree: tree))
        eps = self.eps
        masked = jax.tree.map(lambda u, g: _cautious(u, g, False, eps), unpacked(out), unpacked(updates))
        return repacked(out, masked), CautiousState(inner)


# --- MARS ----------------------------------------------------------------------------


class MarsCorrectionState(NamedTuple):
    """State of `mars_correction`: the step count and the previous gradient."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    previous_gradient: Updates


@pytree_dataclass
class mars_correction(Transform):
    r"""MARS's variance-reduced gradient, clipped to norm 1 per parameter.

    .. math:: c_t = g_t + \gamma\,\frac{b_1}{1 - b_1}\,(g_t - g_{t-1}), \qquad
              \tilde c_t = c_t / \max(1, \lVert c_t\rVert_2)

    with ``g_0 = 0`` before the first step (the reference code's). Put it first:
    ``chain(mars_correction(gamma, b1), momentum(b1), scale_by_rms(b2, ...), ...)`` is
    MARS-AdamW; the momentum publishes ``c`` as the gradient its second moment reads.

    Args:
      gamma: the scale of the correction (0.025 in the paper; 0 is AdamW).
      b1: the first moment's decay it anticipates, in [0, 1).
      clip: clip ``c_t`` to norm 1 (the paper's algorithm).

    Returns:
      A transform whose state is `MarsCorrectionState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.mars_correction(gamma=0.5, b1=0.5, clip=False)
      >>> u, s = tx.update(jnp.full(2, 1.0), tx.init(jnp.zeros(2)))
      >>> tx.update(jnp.full(2, 3.0), s)[0]  # 3 + 0.5 * 0.5 / (1 - 0.5) * (3 - 1)
      Array([4., 4.], dtype=float32)

    References:
      Yuan et al., 2024, MARS: unleashing the power of variance reduction for training
      large models (algorithm 1, MARS-AdamW, approximate form).
    """

    gamma: Any = hyper(default=0.025, rule=_checks.nonnegative)
    b1: Any = hyper(default=0.95, rule=_checks.beta)
    clip: bool = static(default=True, rule=_checks.flag)
    _check_buffers = False  # kept per original leaf, also for packed parameters

    def init(self, params: Params) -> MarsCorrectionState:
        return MarsCorrectionState(count=zero_count(), previous_gradient=_tree.zeros_like(unpacked(params)))

    def _update(self, updates: Updates, state: MarsCorrectionState, params: Params | None, ctx: Context):
        del params, ctx
        gamma, b1 = self.at("gamma", state.count), self.at("b1", state.count)

        def correct(g: jax.Array, prev: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(g.dtype, prev.dtype)
            g32, p32 = _tree.to(g, dtype), _tree.to(prev, dtype)
            scale = _tree.cast(gamma, dtype) * _tree.cast(b1, dtype) / (1 - _tree.cast(b1, dtype))
            c = g32 + scale * (g32 - p32)
            if self.clip:
                c = c / jnp.maximum(1.0, jnp.sqrt(jnp.sum(_tree.abs_sq(c)))).astype(dtype)
            return c.astype(g.dtype)

        plain = unpacked(updates)
        out = jax.tree.map(correct, plain, state.previous_gradient)
        return repacked(updates, out), MarsCorrectionState(
            count=safe_increment(state.count),
            previous_gradient=_tree.cast_like(plain, state.previous_gradient),
        )


# --- Adam-mini -----------------------------------------------------------------------


class BlockSpec(NamedTuple):
    """How one parameter is cut into blocks that share a second moment: the axes
    averaged over (``reduce``), after splitting axis ``split_axis`` into ``heads``
    (0: no split)."""

    reduce: tuple[int, ...]
    split_axis: int = -1
    heads: int = 0


@dataclasses.dataclass(frozen=True)
class AdamMiniRule:
    r"""Adam-mini's partition: which coordinates of each parameter share one second
    moment (the paper's "blocks by the Hessian's structure"), by path and shape.

    In order, for each parameter with its path (as `gradtx.path_rules` writes paths):

    1. ``embedding``/``output`` globs (``"*embed*"``, ``"*wte*"``, ``"*lm_head*"``,
       ...): every coordinate its own (Adam's), as the paper keeps them.
    2. ``query_key`` globs (``"*query*"``, ``"*key*"``, ``"*q_proj*"``, ``"*k_proj*"``,
       ...): one block per attention head. A ``(d_model, heads, d_head)`` kernel
       averages over axes 0 and 2; a 2-D ``(d_model, heads * d_head)`` kernel is split
       into ``n_heads`` along its output axis first.
    3. Other matrices (values, projections, MLPs): one block per output neuron.
       ``kernel_layout="in_out"`` (flax): average over every axis but the last;
       ``"out_in"`` (PyTorch, equinox): over every axis but the first.
    4. Vectors and scalars (norms, biases): one block for the whole parameter.

    Args:
      n_heads: attention heads, for 2-D query and key kernels.
      embedding: globs of per-coordinate parameters.
      query_key: globs of per-head parameters.
      kernel_layout: ``"in_out"`` or ``"out_in"``.
      overrides: ``{glob: BlockSpec}`` checked first.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> rule = gradtx.AdamMiniRule(n_heads=2)
      >>> rule.spec("block/query/kernel", jnp.ones((8, 8)))  # 2 heads of 4 outputs
      BlockSpec(reduce=(0, 2), split_axis=1, heads=2)

    References:
      Zhang et al., 2024, Adam-mini: use fewer learning rates to gain more (section 2.3,
      algorithm 3). gradtx's own.
    """

    n_heads: int = 1
    embedding: tuple[str, ...] = ("*embed*", "*wte*", "*wpe*", "*lm_head*", "*unembed*", "*output*")
    query_key: tuple[str, ...] = ("*query*", "*/key/*", "*q_proj*", "*k_proj*", "*wq*", "*wk*")
    kernel_layout: str = "in_out"
    overrides: tuple[tuple[str, BlockSpec], ...] | dict[str, BlockSpec] = ()

    def __post_init__(self) -> None:
        if isinstance(self.overrides, dict):
            object.__setattr__(self, "overrides", tuple(self.overrides.items()))
        if self.kernel_layout not in ("in_out", "out_in"):
            raise InputError(
                "AdamMiniRule", f"kernel_layout must be 'in_out' or 'out_in', got {self.kernel_layout!r}"
            )

    def choose(self, path: str, leaf: Any) -> tuple[Any, str]:
        """``(BlockSpec or None for per-coordinate, the reason)`` for one parameter."""
        low = path.lower()
        for pattern, spec in self.overrides:
            if fnmatch.fnmatchcase(path, pattern):
                return spec, f"override {pattern!r}"
        shape: tuple[int, ...] = tuple(jnp.shape(leaf))
        ndim = len(shape)
        if any(fnmatch.fnmatchcase(low, p) for p in self.embedding):
            return None, "embedding or output: per coordinate"
        if ndim <= 1:
            return BlockSpec(tuple(range(ndim))), "one block for the whole parameter"
        if any(fnmatch.fnmatchcase(low, p) for p in self.query_key):
            if ndim == 3:
                return BlockSpec((0, 2)), f"one block per head ({shape[1]})"
            if ndim == 2 and self.n_heads > 1:
                axis = 1 if self.kernel_layout == "in_out" else 0
                return BlockSpec(
                    (1 - axis, axis + 1), axis, self.n_heads
                ), f"one block per head ({self.n_heads})"
        keep = ndim - 1 if self.kernel_layout == "in_out" else 0
        reduce = tuple(i for i in range(ndim) if i != keep)
        return BlockSpec(reduce), f"one block per output neuron ({shape[keep]})"

    def spec(self, path: str, leaf: Any) -> BlockSpec | None:
        """The `BlockSpec` of one parameter (None: per coordinate)."""
        return self.choose(path, leaf)[0]


def _split(x: Any, spec: BlockSpec | None) -> Any:
    if spec is None or spec.heads == 0:
        return x
    axis = spec.split_axis % x.ndim
    shape = (*x.shape[:axis], spec.heads, x.shape[axis] // spec.heads, *x.shape[axis + 1 :])
    return x.reshape(shape)


def _block_mean_sq(g: Any, spec: BlockSpec | None) -> Any:
    sq = _tree.abs_sq(g)
    if spec is None:
        return sq
    return jnp.mean(_split(sq, spec), axis=spec.reduce, keepdims=True)


def explain_blocks(rule: Any, params: Params) -> str:
    """One line per parameter: its path, shape, the number of second moments Adam-mini
    keeps for it and why.

    Args:
      rule: an `AdamMiniRule` (or an `adam_mini` optimizer built with one).
      params: the parameters (or their shapes).

    Returns:
      The table, also printable.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> params = {"embed": jnp.ones((10, 4)), "mlp": {"kernel": jnp.ones((4, 8))}}
      >>> print(gradtx.explain_blocks(gradtx.AdamMiniRule(), params))
      embed       (10, 4)  40  embedding or output: per coordinate
      mlp/kernel  (4, 8)   8   one block per output neuron (8)

    References:
      gradtx's own; see `AdamMiniRule`.
    """
    from gradtx.rules import leaf_paths

    for block in getattr(rule, "transforms", ()):
        if isinstance(block, scale_by_block_rms):
            rule = block.rule
    if not isinstance(rule, AdamMiniRule):
        raise TypeError("explain_blocks: give an AdamMiniRule or an adam_mini optimizer")
    rows = []
    for path, leaf in leaf_paths(params)[0]:
        value = leaf.get_value() if hasattr(leaf, "get_value") else leaf
        spec, why = rule.choose(path, value)
        moments = (
            jnp.zeros(jnp.shape(value)).size
            if spec is None
            else _block_mean_sq(jnp.zeros(jnp.shape(value)), spec).size
        )
        rows.append((path, str(tuple(jnp.shape(value))), str(moments), why))
    rows.sort()
    widths = [max(len(r[i]) for r in rows) for i in range(3)] if rows else [0, 0, 0]
    return "\n".join(
        f"{p:<{widths[0]}}  {s:<{widths[1]}}  {n:<{widths[2]}}  {w}".rstrip() for p, s, n, w in rows
    )


class ScaleByBlockRmsState(NamedTuple):
    """State of `scale_by_block_rms`: the step count and one second moment per block
    (shaped like the parameter with the averaged axes of size 1)."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    nu: Updates


@pytree_dataclass
class scale_by_block_rms(Transform):
    r"""Adam's denominator with one second moment per block of coordinates.

    .. math:: v_{b,t} = b_2 v_{b,t-1} + (1 - b_2)\,\mathrm{mean}_{i \in b}\, g_{i,t}^2, \qquad
              u_i = x_i / (\sqrt{v_{b(i),t} / (1 - b_2^t)} + \epsilon)

    The blocks come from ``rule`` (an `AdamMiniRule`, or a function ``(path, leaf) ->
    BlockSpec | None``); ``g`` is the chain's ``gradient`` slot. The state holds one
    number per block: Adam-mini's memory saving.

    Args:
      b2: decay of the second moments, in [0, 1).
      eps: added to the denominator, outside the root.
      rule: the partition (default ``AdamMiniRule()``).

    Returns:
      A transform whose state is `ScaleByBlockRmsState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_block_rms(0.5, 0.0)
      >>> tx.update(jnp.asarray([1.0, 7.0]), tx.init(jnp.zeros(2)))[0]  # / sqrt((1 + 49) / 2)
      Array([0.2, 1.4], dtype=float32)

    References:
      Zhang et al., 2024, Adam-mini (algorithm 1).
    """

    b2: Any = hyper(default=0.999, complement=True, rule=_checks.beta)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    rule: Any = static(default=None)

    slots_read = ("gradient",)
    _check_buffers = False  # nu is smaller than the parameters

    def __post_init__(self) -> None:
        if self.rule is None:
            object.__setattr__(self, "rule", AdamMiniRule())
        super().__post_init__()

    def specs(self, tree: Any) -> list[BlockSpec | None]:
        """The block spec of each leaf of ``tree`` (parameters or updates), in order."""
        from gradtx.rules import leaf_paths

        choose = self.rule.spec if isinstance(self.rule, AdamMiniRule) else self.rule
        return [choose(path, leaf) for path, leaf in leaf_paths(tree)[0]]

    def init(self, params: Params) -> ScaleByBlockRmsState:
        params = unpacked(params)
        leaves, treedef = jax.tree.flatten(params)
        nus = [jnp.zeros_like(_block_mean_sq(p, s)) for p, s in zip(leaves, self.specs(params), strict=True)]
        return ScaleByBlockRmsState(count=zero_count(), nu=treedef.unflatten(nus))

    def _update(self, updates: Updates, state: ScaleByBlockRmsState, params: Params | None, ctx: Context):
        del params
        gradient = unpacked(ctx.read(self, "gradient", fallback=updates))
        packed_like, updates = updates, unpacked(updates)
        b2, one_minus = self.at("b2", state.count), self.one_minus_at("b2", state.count)
        eps = self.at("eps", state.count)
        count = safe_increment(state.count)
        correction = _tree.correction(b2, count)
        leaves, treedef = jax.tree.flatten(updates)
        specs = self.specs(updates)
        grads, nus = treedef.flatten_up_to(gradient), treedef.flatten_up_to(state.nu)
        out, new_nus = [], []
        for x, g, nu, spec in zip(leaves, grads, nus, specs, strict=True):
            dtype = _tree.compute_dtype(x.dtype, nu.dtype)
            stat = _block_mean_sq(_tree.to(g, dtype), spec)
            new = _tree.cast(one_minus, dtype) * stat + _tree.cast(b2, dtype) * _tree.to(nu, dtype)
            denom = jnp.sqrt(new / _tree.to(correction, dtype)) + _tree.cast(eps, dtype)
            scaled = _split(_tree.to(x, dtype), spec) / denom
            out.append(scaled.reshape(x.shape).astype(x.dtype))
            new_nus.append(new.astype(nu.dtype))
        return repacked(packed_like, treedef.unflatten(out)), ScaleByBlockRmsState(
            count=count, nu=treedef.unflatten(new_nus)
        )


# --- SOAP ----------------------------------------------------------------------------


def grouped_map(fn: Any, columns: list[list[Any]]) -> list[tuple[Any, ...]]:
    """``[fn(*row) for row in zip(*columns)]``, with the rows whose arrays have the same
    shapes and dtypes stacked and run as one ``jax.vmap(fn)``: one batched computation
    per shape instead of one per leaf (the per-matrix work of SOAP, Newton-Schulz)."""
    rows = list(zip(*columns, strict=True))
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(tuple((a.shape, a.dtype) for a in row), []).append(i)
    results: list[Any] = [None] * len(rows)
    for members in groups.values():
        if len(members) == 1:
            results[members[0]] = fn(*rows[members[0]])
            continue
        stacked = [jnp.stack([rows[i][k] for i in members]) for k in range(len(columns))]
        batched = jax.vmap(fn)(*stacked)
        for j, i in enumerate(members):
            results[i] = tuple(out[j] for out in batched)
    return results


class ScaleBySoapState(NamedTuple):
    """State of `scale_by_soap`: the step count, the second moment in the rotated
    basis ``nu``, Shampoo's statistics ``left`` (m x m) and ``right`` (n x n) and their
    eigenvectors ``q_left``, ``q_right`` (empty (0, 0) for a side that is not
    preconditioned)."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    nu: Updates
    left: Updates
    right: Updates
    q_left: Updates
    q_right: Updates


def _sides(p: Any, max_precond_dim: int) -> tuple[int, int]:
    """The sizes of the left and right preconditioners of ``p`` (0: none)."""
    if p.ndim != 2:
        return 0, 0
    m, n = p.shape
    return (m if m <= max_precond_dim else 0), (n if n <= max_precond_dim else 0)


def _eigenvectors(stat: Any) -> Any:
    return jnp.linalg.eigh(stat.astype(jnp.float32), symmetrize_input=True)[1].astype(stat.dtype)


def _refreshed(refresh: Any, stat: Any, q: Any) -> Any:
    """The eigenvectors of ``stat`` on a refresh step, else ``q``: a ``lax.cond``, so
    the eigendecomposition runs only every ``precondition_frequency`` steps."""
    return jax.lax.cond(refresh, lambda: _eigenvectors(stat).astype(q.dtype), lambda: q)


@pytree_dataclass
class scale_by_soap(Transform):
    r"""SOAP's scaling: Adam's second moment kept in the eigenbasis of Shampoo's
    preconditioner, refreshed every ``precondition_frequency`` steps.

    For a matrix with gradient ``G`` (the chain's ``gradient`` slot) and input ``M``
    (the debiased first moment after `gradtx.momentum`):

    .. math:: L_t = b_s L_{t-1} + (1 - b_s) G G^T, \quad R_t = b_s R_{t-1} + (1 - b_s) G^T G,

    .. math:: Q_L, Q_R = \mathrm{eigenvectors}(L_t), \mathrm{eigenvectors}(R_t)
              \ \text{at } t = 1 \text{ and every } k \text{ steps},

    .. math:: G' = Q_L^T G Q_R, \quad V_t = b_2 V_{t-1} + (1 - b_2) G'^2, \quad
              u = Q_L \big( Q_L^T M Q_R / (\sqrt{V_t / (1 - b_2^t)} + \epsilon) \big) Q_R^T

    A side larger than ``max_precond_dim`` stays the identity; a parameter that is not
    a matrix gets Adam's scaling. On a preconditioned matrix the first step only
    measures (its update is zero),
    as in the reference code: from one gradient, ``L`` or ``R`` lacks directions, and
    there float32's noise divided by ``eps`` would be of order 1. The statistics of a
    step include its gradient.

    Args:
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator.
      shampoo_beta: ``b_s``, decay of Shampoo's statistics (default ``b2``).
      precondition_frequency: ``k``, steps between eigendecompositions.
      max_precond_dim: the largest side preconditioned.

    Returns:
      A transform whose state is `ScaleBySoapState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_soap()
      >>> g = jnp.asarray([[3.0, 0.0], [0.0, -2.0]])  # its own eigenbasis: Adam's sign step
      >>> _, s = tx.update(g, tx.init(g))  # the first step measures
      >>> jnp.sign(tx.update(g, s)[0]) + 0.0
      Array([[ 1.,  0.],
             [ 0., -1.]], dtype=float32)

    References:
      Vyas et al., 2024, SOAP: improving and stabilizing Shampoo using Adam
      (algorithm 3).
    """

    b2: Any = hyper(default=0.95, complement=True, rule=_checks.beta)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    shampoo_beta: Any = hyper(default=None)
    precondition_frequency: int = static(default=10, rule=_checks.positive_int)
    max_precond_dim: int = static(default=10000, rule=_checks.positive_int)

    slots_read = ("gradient",)
    _check_buffers = False  # the statistics are not shaped like the parameters

    def init(self, params: Params) -> ScaleBySoapState:
        def sides(p: Any) -> tuple[Any, Any]:
            m, n = _sides(p, self.max_precond_dim)
            return jnp.zeros((m, m), p.dtype), jnp.zeros((n, n), p.dtype)

        params = unpacked(params)
        leaves, treedef = jax.tree.flatten(params)
        pairs = [sides(p) for p in leaves]
        left = treedef.unflatten([a for a, _ in pairs])
        right = treedef.unflatten([b for _, b in pairs])
        return ScaleBySoapState(zero_count(), _tree.zeros_like(params), left, right, left, right)

    def _update(self, updates: Updates, state: ScaleBySoapState, params: Params | None, ctx: Context):
        del params
        gradient = unpacked(ctx.read(self, "gradient", fallback=updates))
        packed_like, updates = updates, unpacked(updates)
        b2, one_minus = self.at("b2", state.count), self.one_minus_at("b2", state.count)
        bs = b2 if self.shampoo_beta is None else self.shampoo_beta
        one_minus_bs = one_minus if self.shampoo_beta is None else 1 - self.shampoo_beta
        eps = self.at("eps", state.count)
        count = safe_increment(state.count)
        refresh = (state.count % self.precondition_frequency) == 0
        correction = _tree.correction(b2, count)
        leaves, treedef = jax.tree.flatten(updates)
        columns = [
            treedef.flatten_up_to(t)
            for t in (gradient, state.nu, state.left, state.right, state.q_left, state.q_right)
        ]

        def one(x: Any, g: Any, nu: Any, left: Any, right: Any, ql: Any, qr: Any) -> tuple[Any, ...]:
            dtype = _tree.compute_dtype(x.dtype, nu.dtype)
            x32, g32 = _tree.to(x, dtype), _tree.to(g, dtype)

            def cast(v: Any, dtype: Any = dtype) -> Any:
                return _tree.cast(v, dtype)

            if left.shape[0]:
                stat = cast(bs) * _tree.to(left, dtype) + cast(one_minus_bs) * (g32 @ g32.T)
                ql = _refreshed(refresh, stat, ql)
                left = stat.astype(left.dtype)
            if right.shape[0]:
                stat = cast(bs) * _tree.to(right, dtype) + cast(one_minus_bs) * (g32.T @ g32)
                qr = _refreshed(refresh, stat, qr)
                right = stat.astype(right.dtype)
            ql32, qr32 = _tree.to(ql, dtype), _tree.to(qr, dtype)

            def rotate(a: Any) -> Any:
                a = ql32.T @ a if ql32.shape[0] else a
                return a @ qr32 if qr32.shape[0] else a

            def back(a: Any) -> Any:
                a = ql32 @ a if ql32.shape[0] else a
                return a @ qr32.T if qr32.shape[0] else a

            new_nu = cast(one_minus) * _tree.abs_sq(rotate(g32)) + cast(b2) * _tree.to(nu, dtype)
            denom = jnp.sqrt(new_nu / _tree.to(correction, dtype)) + cast(eps)
            out = back(rotate(x32) / denom)
            # The first step only measures: with one gradient, L or R has directions it
            # never saw (rank <= min(m, n)), where float32 noise over eps is O(1).
            if ql32.shape[0] or qr32.shape[0]:
                out = jnp.where(state.count == 0, jnp.zeros_like(out), out)
            return out.astype(x.dtype), new_nu.astype(nu.dtype), left, right, ql, qr

        # one batched computation (one eigendecomposition) per matrix shape, not per leaf
        results = grouped_map(one, [leaves, *columns])
        fields = [treedef.unflatten([r[i] for r in results]) for i in range(6)]
        return repacked(packed_like, fields[0]), ScaleBySoapState(count, *fields[1:])


__all__ = [
    "AdamMiniRule",
    "BlockSpec",
    "CautiousState",
    "MarsCorrectionState",
    "ScaleByBlockRmsState",
    "ScaleBySoapState",
    "cautious",
    "cautious_mask",
    "explain_blocks",
    "mars_correction",
    "scale_by_block_rms",
    "scale_by_soap",
]
