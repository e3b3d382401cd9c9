r"""Step sizes from norms: layer-wise trust ratios (LARS, LAMB, Fromage), scaling by the
parameters' block norm or RMS (Adafactor), distance over gradients (DoG), and Polyak's
step size from the loss value.

Each per-layer norm is taken over one original parameter leaf, also for packed
parameters.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._checks import InputError
from gradtx.base import Context, EmptyState, Params, Stateless, Transform, Updates, require_params
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.numerics import safe_norm, safe_root_mean_squares
from gradtx.packed import map_leaves, repacked, unpacked

ScaleByTrustRatioState = EmptyState


def _times(u: jax.Array, factor: jax.Array) -> jax.Array:
    """``u * factor`` with a real factor, in ``u``'s dtype."""
    return u * _tree.to(factor, u.dtype)


@pytree_dataclass
class scale_by_trust_ratio(Stateless):
    r"""Scales each leaf's update by the ratio of the parameter's norm to the update's.

    .. math:: u = x \cdot c\, \frac{\max(\lVert W \rVert, n_{min})}{\max(\lVert x \rVert, n_{min}) + \epsilon}

    (the ratio is 1 where either norm is zero).

    Args:
      min_norm: the smallest norm used for either, >= 0.
      trust_coefficient: ``c``.
      eps: added to the update's norm.

    Returns:
      A stateless transform; ``update`` needs the parameters.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_trust_ratio()
      >>> tx.update(jnp.asarray([3.0, 4.0]), gradtx.EmptyState(), jnp.asarray([0.0, 10.0]))[0]
      Array([6., 8.], dtype=float32)

    References:
      You et al., 2017 (LARS) and 2020 (LAMB). ``optax.scale_by_trust_ratio`` (same numbers).
    """

    min_norm: Any = hyper(default=0.0)
    trust_coefficient: Any = hyper(default=1.0)
    eps: Any = hyper(default=0.0, rule=_checks.nonnegative)

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        require_params("scale_by_trust_ratio", params, updates)
        min_norm, coefficient = self.at("min_norm", count), self.at("trust_coefficient", count)
        eps = self.at("eps", count)

        def one(u: jax.Array, p: jax.Array) -> jax.Array:
            param_norm = safe_norm(p, min_norm)
            update_norm = safe_norm(u, min_norm)
            dtype = update_norm.dtype
            ratio = (
                _tree.cast(coefficient, dtype)
                * _tree.to(param_norm, dtype)
                / (update_norm + _tree.cast(eps, dtype))
            )
            zero = jnp.logical_or(param_norm == 0.0, update_norm == 0.0)
            return _times(u, jnp.where(zero, jnp.ones([], dtype), ratio))

        return map_leaves(one, updates, params)


@pytree_dataclass
class scale_by_param_block_norm(Stateless):
    r"""Multiplies each leaf's update by its parameter's norm, at least ``min_scale``.

    .. math:: u = x \cdot \max(\lVert W \rVert, s_{min})

    Args:
      min_scale: the smallest factor.

    Returns:
      A stateless transform; ``update`` needs the parameters.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_param_block_norm()
      >>> tx.update(jnp.ones(2), gradtx.EmptyState(), jnp.asarray([3.0, 4.0]))[0]
      Array([5., 5.], dtype=float32)

    References:
      ``optax.scale_by_param_block_norm`` (same numbers).
    """

    min_scale: Any = hyper(default=1e-3)

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        require_params("scale_by_param_block_norm", params, updates)
        min_scale = self.at("min_scale", count)
        return map_leaves(lambda u, p: _times(u, safe_norm(p, min_scale)), updates, params)


@pytree_dataclass
class scale_by_param_block_rms(Stateless):
    r"""Multiplies each leaf's update by its parameter's root mean square, at least
    ``min_scale`` (Adafactor's relative step size).

    .. math:: u = x \cdot \max(\mathrm{RMS}(W), s_{min})

    Args:
      min_scale: the smallest factor.

    Returns:
      A stateless transform; ``update`` needs the parameters.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_param_block_rms()
      >>> tx.update(jnp.ones(2), gradtx.EmptyState(), jnp.asarray([1.0, 7.0]))[0]
      Array([5., 5.], dtype=float32)

    References:
      Shazeer and Stern, 2018, Adafactor. ``optax.scale_by_param_block_rms`` (same numbers).
    """

    min_scale: Any = hyper(default=1e-3)

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        require_params("scale_by_param_block_rms", params, updates)
        min_scale = self.at("min_scale", count)
        return map_leaves(lambda u, p: _times(u, safe_root_mean_squares(p, min_scale)), updates, params)


class ScaleByDistanceOverGradientsState(NamedTuple):
    """State of `scale_by_distance_over_gradients`: per leaf, the largest distance from
    the initial parameters, the sum of squared gradient norms; and the initial parameters."""

    max_dist: Any
    grad_sum_of_squares: Any
    init_params: Params


def _l2(x: jax.Array, y: Any = 0.0) -> jax.Array:
    return jnp.sqrt(jnp.square(x - y).sum())


@pytree_dataclass
class scale_by_distance_over_gradients(Transform):
    r"""Distance over gradients (layer-wise DoG): each leaf's step size is the largest
    distance travelled from the initial parameters over the root of the summed squared
    gradient norms.

    .. math:: \bar r_t = \max(\bar r_{t-1}, \lVert W_t - W_0 \rVert), \quad
              G_t = G_{t-1} + \lVert g_t \rVert^2, \quad
              u_t = s\, \bar r_t / \sqrt{G_t + \epsilon}\ g_t

    with :math:`\bar r_0 = r_\epsilon (1 + \lVert W_0 \rVert)`.

    Args:
      reps_rel: :math:`r_\epsilon`, the initial distance relative to the parameters' norm.
      eps: added inside the root.
      param_dtype: dtype of the stored initial parameters.
      global_scale: ``s``, a factor on every step size.

    Returns:
      A transform whose state is `ScaleByDistanceOverGradientsState`; ``update`` needs the
      parameters. Unlike optax's, a scalar parameter gets a scalar update (optax's has
      shape ``(1,)``).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_distance_over_gradients(reps_rel=0.5, eps=0.0)
      >>> p = jnp.asarray([3.0, 4.0])
      >>> tx.update(jnp.asarray([0.0, 2.0]), tx.init(p), p)[0]  # 0.5 * (1 + 5) / 2 * g
      Array([0., 3.], dtype=float32)

    References:
      Ivgi et al., 2023, "DoG is SGD's best friend". ``optax.scale_by_distance_over_gradients``
      (same numbers).
    """

    reps_rel: Any = hyper(default=1e-6)
    eps: Any = hyper(default=1e-8, rule=_checks.nonnegative)
    param_dtype: Any = static(default=jnp.float32, rule=_checks.dtype)
    global_scale: Any = hyper(default=1.0)
    _check_buffers = False  # scalars per leaf

    def init(self, params: Params) -> ScaleByDistanceOverGradientsState:
        plain = unpacked(params)
        return ScaleByDistanceOverGradientsState(
            # At least float32: in float16 the distance (about reps_rel) would be subnormal.
            max_dist=jax.tree.map(
                lambda x: self.reps_rel * (1 + _l2(_tree.to(x, _tree.compute_dtype(x.dtype)))), plain
            ),
            grad_sum_of_squares=jax.tree.map(lambda x: jnp.zeros(1), plain),
            init_params=jax.tree.map(lambda x: x.astype(self.param_dtype), plain),
        )

    def _update(
        self, updates: Updates, state: ScaleByDistanceOverGradientsState, params: Params | None, ctx: Context
    ):
        del ctx
        require_params("scale_by_distance_over_gradients", params, updates)
        plain, plain_params = unpacked(updates), unpacked(params)

        def distance(d: jax.Array, x: jax.Array, x0: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(x.dtype, x0.dtype)
            return jnp.maximum(d, _tree.to(_l2(_tree.to(x, dtype), _tree.to(x0, dtype)), d.dtype))

        max_dist = jax.tree.map(distance, state.max_dist, plain_params, state.init_params)
        g_sos = jax.tree.map(
            lambda s, g: (
                s + _tree.abs_sq(_tree.to(g, _tree.compute_dtype(s.dtype, g.dtype))).sum().astype(s.dtype)
            ),
            state.grad_sum_of_squares,
            plain,
        )
        eps, scale = self.eps, self.global_scale

        def step(g: jax.Array, d: jax.Array, s: jax.Array) -> jax.Array:
            dtype = _tree.compute_dtype(d.dtype, s.dtype)
            eta = scale * (_tree.to(d, dtype) / jnp.sqrt(_tree.to(s, dtype) + eps))
            dtype = _tree.compute_dtype(dtype, g.dtype)
            return (_tree.to(eta.reshape(()), dtype) * _tree.to(g, dtype)).astype(g.dtype)

        out = jax.tree.map(step, plain, max_dist, g_sos)
        new_state = ScaleByDistanceOverGradientsState(max_dist, g_sos, state.init_params)
        return repacked(updates, out), new_state


@pytree_dataclass
class scale_by_polyak(Transform):
    r"""Polyak's step size: the gap between the loss and its minimum over the squared
    gradient norm, capped.

    .. math:: u = \min\!\Big(\frac{f(W) - f^*}{\lVert g \rVert^2 + \epsilon}, \eta_{max}\Big)\, g

    (0 where :math:`\lVert g \rVert^2 + \epsilon` is at most float64's machine epsilon;
    ``variant="sps+"`` clips a negative gap to 0). ``update`` takes the loss as
    ``value=``.

    Args:
      f_min: a lower bound of the loss, :math:`f^*`.
      max_learning_rate: :math:`\eta_{max}`.
      eps: added to the squared norm.
      variant: ``"sps"`` or ``"sps+"``.

    Returns:
      A stateless transform whose ``update`` needs ``value=loss``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_polyak()
      >>> tx.update(jnp.asarray([1.0, 1.0]), tx.init(None), value=1.0)[0]  # 1 / 2 * g
      Array([0.5, 0.5], dtype=float32)

    References:
      Loizou et al., 2021, "Stochastic Polyak step-size". ``optax.scale_by_polyak``
      (same numbers).
    """

    f_min: Any = hyper(default=0.0)
    max_learning_rate: Any = hyper(default=1.0)
    eps: Any = hyper(default=0.0, rule=_checks.nonnegative)
    variant: Literal["sps", "sps+"] = static(default="sps")

    def __post_init__(self) -> None:
        if self.variant not in ("sps", "sps+"):
            raise InputError("scale_by_polyak", f"variant must be 'sps' or 'sps+', got {self.variant!r}")
        super().__post_init__()

    def init(self, params: Params) -> EmptyState:
        del params
        return EmptyState()

    def _update(self, updates: Updates, state: EmptyState, params: Params | None, ctx: Context):
        del params
        if "value" not in ctx.extra:
            raise TypeError(
                "scale_by_polyak: update needs the loss: call update(updates, state, params, value=loss)."
            )
        grad_sq_norm = _tree.sq_norm(updates)
        with jax.numpy_dtype_promotion("standard"):
            gap = jnp.asarray(ctx.extra["value"] - self.f_min).astype(grad_sq_norm.dtype)
        if self.variant == "sps+":
            gap = jax.nn.relu(gap)
        denominator = grad_sq_norm + _tree.cast(self.eps, grad_sq_norm.dtype)
        step = jnp.where(
            denominator <= jnp.finfo(float).eps,
            jnp.zeros([], grad_sq_norm.dtype),
            jnp.minimum(gap / denominator, _tree.cast(self.max_learning_rate, grad_sq_norm.dtype)),
        )
        return jax.tree.map(lambda u: _times(u, step), updates), state
