r"""Second moments with sub-linear memory: Adafactor's factored RMS and SM3's cover of
per-axis accumulators.

Both keep statistics shaped by each parameter's own axes, so on packed parameters they
work on the original leaves (`gradtx.PackLayout` keeps every leaf's shape) and give the
plain-tree numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks, _tree
from gradtx._checks import InputError
from gradtx.base import Context, Params, Transform, Updates, require_params, safe_increment, zero_count
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.packed import repacked, unpacked


def decay_rate_pow(i: Any, exponent: Any = 0.8) -> jax.Array:
    r"""Adafactor's increasing decay: :math:`1 - (i + 1)^{-\text{exponent}}`.

    Args:
      i: the step (from 0).
      exponent: how fast the decay approaches 1.

    Returns:
      The decay rate at step ``i``, in float32. ``i + 1`` is formed in float32, so a
      step counter saturated at 2**31 - 1 gives a decay of 1 (optax adds 1 in int32,
      which wraps to -2**31 there and gives NaN).

    Example:
      >>> import gradtx
      >>> gradtx.blocks.factored.decay_rate_pow(0)  # 1 - 1
      Array(0., dtype=float32)
    """
    t = jnp.asarray(i, jnp.float32) + 1.0
    return 1.0 - t ** (-exponent)


def factored_dims(
    shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int
) -> tuple[int, int] | None:
    """The two largest axes of ``shape`` (second largest first), or None when the leaf is
    not factored: fewer than two axes, or the second largest below the minimum size."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


class FactoredState(NamedTuple):
    """State of `scale_by_factored_rms`: the step count, the row and column statistics of
    factored leaves, and the full second moment of the others (placeholders of shape
    ``(1,)`` where a field does not apply)."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    v_row: Any
    v_col: Any
    v: Any


@pytree_dataclass
class scale_by_factored_rms(Transform):
    r"""Adafactor's scaling: divides by the root of a second moment that, for a matrix,
    is stored as its row and column means.

    For a factored leaf (two largest axes ``d1`` < ``d0`` in size order, the second
    largest at least ``min_dim_size_to_factor``), with :math:`G = |g|^2 + \epsilon` and
    :math:`\beta_t = 1 - (t + 1)^{-0.8}` (``decay_rate_fn``):

    .. math:: R_t = \beta_t R_{t-1} + (1 - \beta_t)\,\mathrm{mean}_{d_0} G, \quad
              C_t = \beta_t C_{t-1} + (1 - \beta_t)\,\mathrm{mean}_{d_1} G, \quad
              u = g \,/\, \sqrt{R_t / \mathrm{mean}(R_t)}\,/\,\sqrt{C_t}

    Other leaves keep the full :math:`v_t = \beta_t v_{t-1} + (1 - \beta_t) G` and get
    :math:`u = g / \sqrt{v_t}`.

    Args:
      factored: factor the second moment of leaves with two or more axes.
      decay_rate: the exponent of ``decay_rate_fn`` (0.8).
      step_offset: subtracted from the step before the decay is computed.
      min_dim_size_to_factor: the smallest second-largest axis that is factored.
      epsilon: added to the squared gradient.
      decay_rate_fn: ``(step, decay_rate) -> decay``.

    Returns:
      A transform whose state is `FactoredState`; ``update`` needs the parameters.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_factored_rms(epsilon=0.0)
      >>> p = jnp.zeros(2)
      >>> tx.update(jnp.asarray([2.0, -3.0]), tx.init(p), p)[0]  # beta_0 = 0: g / |g|
      Array([ 1., -1.], dtype=float32)

    References:
      Shazeer and Stern, 2018, Adafactor (algorithm 4). ``optax.scale_by_factored_rms``
      (same numbers).
    """

    factored: bool = static(default=True, rule=_checks.flag)
    decay_rate: Any = hyper(default=0.8)
    step_offset: Any = hyper(default=0, rule=_checks.nonnegative_count)
    min_dim_size_to_factor: int = static(default=128, rule=_checks.nonnegative_count)
    epsilon: Any = hyper(default=1e-30)
    decay_rate_fn: Callable[[Any, Any], Any] = static(default=decay_rate_pow)
    _check_buffers = False  # factored statistics

    def _dims(self, shape: tuple[int, ...]) -> tuple[int, int] | None:
        return factored_dims(shape, self.factored, self.min_dim_size_to_factor)

    def init(self, params: Params) -> FactoredState:
        plain = unpacked(params)

        def one(p: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
            placeholder = jnp.zeros((1,), p.dtype)
            dims = self._dims(p.shape)
            if dims is None:
                return placeholder, placeholder, jnp.zeros_like(p)
            d1, d0 = dims
            row = jnp.zeros(p.shape[:d0] + p.shape[d0 + 1 :], p.dtype)
            col = jnp.zeros(p.shape[:d1] + p.shape[d1 + 1 :], p.dtype)
            return row, col, placeholder

        rows, cols, full = _tree.unzip(plain, jax.tree.map(one, plain), 3)
        return FactoredState(count=zero_count(), v_row=rows, v_col=cols, v=full)

    def _update(self, updates: Updates, state: FactoredState, params: Params | None, ctx: Context):
        del ctx
        require_params("scale_by_factored_rms", params, updates)
        plain = unpacked(updates)
        decay = self.decay_rate_fn(state.count - self.step_offset, self.decay_rate)
        epsilon = self.epsilon

        def one(g: jax.Array, v_row: jax.Array, v_col: jax.Array, v: jax.Array):
            dtype = v.dtype
            compute = _tree.compute_dtype(g.dtype, dtype)
            beta = _tree.to(jnp.asarray(decay), compute)
            squared = _tree.to(_tree.abs_sq(_tree.to(g, compute)), compute) + _tree.cast(epsilon, compute)
            placeholder = jnp.zeros((1,), dtype)
            dims = self._dims(g.shape)
            if dims is None:
                new_v = (beta * _tree.to(v, compute) + (1.0 - beta) * squared).astype(dtype)
                out = _tree.to(g, compute) * _tree.to(new_v, compute) ** -0.5
                return out.astype(g.dtype), placeholder, placeholder, new_v
            d1, d0 = dims
            row = beta * _tree.to(v_row, compute) + (1.0 - beta) * jnp.mean(squared, axis=d0)
            col = beta * _tree.to(v_col, compute) + (1.0 - beta) * jnp.mean(squared, axis=d1)
            row, col = row.astype(dtype), col.astype(dtype)
            reduced_d1 = d1 - 1 if d1 > d0 else d1
            row_c, col_c = _tree.to(row, compute), _tree.to(col, compute)
            row_factor = (row_c / jnp.mean(row_c, axis=reduced_d1, keepdims=True)) ** -0.5
            col_factor = col_c**-0.5
            out = (
                _tree.to(g, compute)
                * jnp.expand_dims(row_factor, axis=d0)
                * jnp.expand_dims(col_factor, axis=d1)
            )
            return out.astype(g.dtype), row, col, placeholder

        results = jax.tree.map(one, plain, state.v_row, state.v_col, state.v)
        out, rows, cols, full = _tree.unzip(plain, results, 4)
        new_state = FactoredState(count=safe_increment(state.count), v_row=rows, v_col=cols, v=full)
        return repacked(updates, out), new_state


class ScaleBySM3State(NamedTuple):
    """State of `scale_by_sm3`: per leaf, one accumulator per axis (``mu``, a list), and
    the momentum of the scaled updates (``nu``)."""

    mu: Updates
    nu: Updates


@pytree_dataclass
class scale_by_sm3(Transform):
    r"""SM3: AdaGrad whose accumulator for a tensor is covered by one vector per axis,
    each keeping the maximum over the other axes; then momentum.

    For a leaf with axes :math:`i = 1..k` and accumulators :math:`\mu^{(i)}`:

    .. math:: \nu = (1 - b_2)' g^2 + b_2 \min_i \mu^{(i)}, \quad
              \mu^{(i)} \leftarrow \max_{\neg i} \nu, \quad
              m_t = b_1 m_{t-1} + (1 - b_1)\, g / \sqrt{\nu + \epsilon}

    (:math:`(1 - b_2)'` is 1 when :math:`b_2 = 1`, the default: plain accumulation.)
    The output is :math:`m_t`. Real parameters only, as optax.

    Args:
      b1: decay of the momentum, in [0, 1].
      b2: decay of the accumulators, in [0, 1] (1: AdaGrad's sum).
      eps: added inside the root.

    Returns:
      A transform whose state is `ScaleBySM3State`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_sm3(b1=0.0, eps=0.0)
      >>> tx.update(jnp.asarray([2.0, -4.0]), tx.init(jnp.zeros(2)))[0]
      Array([ 1., -1.], dtype=float32)

    References:
      Anil et al., 2019, "Memory-efficient adaptive optimization". ``optax.scale_by_sm3``
      (same numbers; gradtx also takes scalar parameters, each its own accumulator, where
      optax raises an IndexError).
    """

    b1: Any = hyper(default=0.9, rule=_checks.decay)
    b2: Any = hyper(default=1.0, rule=_checks.decay)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    _check_buffers = False  # per-axis accumulators

    def init(self, params: Params) -> ScaleBySM3State:
        plain = unpacked(params)
        for leaf in jax.tree.leaves(plain):
            if jnp.iscomplexobj(leaf):
                raise InputError("scale_by_sm3", "complex parameters are not supported (as in optax).")

        def per_axis(p: jax.Array) -> list[jax.Array]:
            if p.ndim == 0:  # a scalar is its own accumulator
                return [jnp.zeros([], p.dtype)]
            return [jnp.zeros((p.shape[i],), p.dtype) for i in range(p.ndim)]

        return ScaleBySM3State(mu=jax.tree.map(per_axis, plain), nu=_tree.zeros_like(plain))

    def _update(self, updates: Updates, state: ScaleBySM3State, params: Params | None, ctx: Context):
        del params, ctx
        plain = unpacked(updates)
        b1, b2, eps = self.b1, self.b2, self.eps
        if isinstance(b2, (int, float)):
            new_weight: Any = (1.0 - b2) if b2 != 1.0 else 1.0
        else:
            new_weight = jnp.where(jnp.asarray(b2) == 1.0, 1.0, 1.0 - jnp.asarray(b2))

        def one(g: jax.Array, mu: list[jax.Array], m: jax.Array):
            dtype = m.dtype
            g = _tree.to(g, dtype)
            if g.ndim == 0:
                previous = mu[0]
            else:
                shaped = [
                    jnp.reshape(mu[i], [1] * i + [g.shape[i]] + [1] * (g.ndim - i - 1)) for i in range(g.ndim)
                ]
                previous = functools.reduce(jnp.minimum, shaped)
            accum = _tree.cast(new_weight, dtype) * g**2 + _tree.cast(b2, dtype) * previous
            inv = jnp.where(accum > 0, jax.lax.rsqrt(accum + _tree.cast(eps, dtype)), jnp.zeros([], dtype))
            nu = _tree.cast(1 - b1, dtype) * (g * inv) + _tree.cast(b1, dtype) * m
            if g.ndim < 2:
                new_mu = [accum]
            else:
                # accum >= 0, so an initial 0 changes nothing but lets a zero-size leaf
                # through (optax's max raises on it).
                new_mu = [
                    jnp.max(accum, axis=[a for a in range(g.ndim) if a != i], initial=0.0)
                    for i in range(g.ndim)
                ]
            return nu, new_mu

        results = jax.tree.map(one, plain, state.mu, state.nu)

        def pair(x: Any) -> bool:
            return isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], list)

        nu = jax.tree.map(lambda r: r[0], results, is_leaf=pair)
        mu = jax.tree.map(lambda r: r[1], results, is_leaf=pair)
        return _tree.cast_like(repacked(updates, nu), updates), ScaleBySM3State(mu=mu, nu=nu)
