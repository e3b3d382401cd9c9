"""A diagonal Gaussian parameterised by its log-scale, for evolution strategies and
variational tests: optax's ``multi_normal`` and its distribution class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

__all__ = ["MultiNormalDiagFromLogScale", "multi_normal"]


class MultiNormalDiagFromLogScale:
    """A Gaussian with independent coordinates, mean ``loc`` and standard deviation
    ``exp(log_scale)`` (broadcast together)."""

    def __init__(self, loc: Any, log_scale: Any):
        self._log_scale = jnp.asarray(log_scale)
        self._scale = jnp.exp(log_scale)
        self._mean = jnp.asarray(loc)
        self._param_shape = jax.lax.broadcast_shapes(self._mean.shape, self._scale.shape)

    def sample(self, shape: Sequence[int], key: Any) -> jax.Array:
        """``shape`` draws: an array of ``shape + param_shape``."""
        draws = jax.random.normal(key, shape=(*shape, *self._param_shape))
        # broadcast explicitly: the draws have more axes than loc and scale
        return draws * jnp.broadcast_to(self._scale, draws.shape) + jnp.broadcast_to(self._mean, draws.shape)

    def log_prob(self, x: Any) -> jax.Array:
        """The log-density of ``x``, summed over the parameter axes."""
        x = jnp.asarray(x)
        shape = jnp.broadcast_shapes(x.shape, self._param_shape)
        log_prob = norm.logpdf(
            jnp.broadcast_to(x, shape),
            loc=jnp.broadcast_to(self._mean, shape),
            scale=jnp.broadcast_to(self._scale, shape),
        )
        return jnp.sum(log_prob, axis=[-(i + 1) for i in range(len(self._param_shape))])

    @property
    def log_scale(self) -> jax.Array:
        """The log of the standard deviation."""
        return self._log_scale

    @property
    def params(self) -> Sequence[jax.Array]:
        """``[loc, log_scale]``, the arrays a gradient is taken of."""
        return [self._mean, self._log_scale]


def multi_normal(loc: Any, log_scale: Any) -> MultiNormalDiagFromLogScale:
    """A diagonal Gaussian with mean ``loc`` and standard deviation ``exp(log_scale)``.

    Args:
      loc: the mean.
      log_scale: the log of the standard deviation, broadcastable to ``loc``.

    Returns:
      A `MultiNormalDiagFromLogScale`, with ``sample(shape, key)`` and ``log_prob(x)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> dist = gradtx.multi_normal(jnp.zeros(2), jnp.zeros(2))
      >>> round(float(dist.log_prob(jnp.zeros(2))), 4)  # -log(2 pi)
      -1.8379

    References:
      optax ``multi_normal`` (same numbers and draws).
    """
    return MultiNormalDiagFromLogScale(loc=loc, log_scale=log_scale)
