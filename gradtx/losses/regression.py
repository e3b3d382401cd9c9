"""Regression and similarity losses: squared error, L2, Huber, log-cosh, cosine
similarity and distance. The elementwise ones return one value per element; the
cosine ones reduce ``axis``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx.losses import _inputs

Axis = int | tuple[int, ...] | None


def _errors(owner: str, predictions: Any, targets: Any) -> Any:
    _inputs.floating(owner, predictions=predictions)
    return predictions if targets is None else predictions - targets


def squared_error(predictions: Any, targets: Any = None) -> jax.Array:
    r"""Elementwise squared error :math:`(\hat y - y)^2` (with no targets, :math:`\hat y^2`).

    Args:
      predictions: floating point.
      targets: the same shape, or None for 0.

    Returns:
      The loss per element.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.squared_error(jnp.array([3.0]), jnp.array([1.0]))
      Array([4.], dtype=float32)

    References:
      optax ``squared_error``; PyTorch ``mse_loss(reduction="none")``.
    """
    if targets is not None:
        _inputs.same_shape("squared_error", predictions=predictions, targets=targets)
    return _errors("squared_error", predictions, targets) ** 2


def l2_loss(predictions: Any, targets: Any = None) -> jax.Array:
    r"""Half the squared error, :math:`\tfrac12 (\hat y - y)^2`, whose gradient is the
    error itself.

    Args:
      predictions: floating point.
      targets: the same shape, or None for 0.

    Returns:
      The loss per element.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.l2_loss(jnp.array([3.0]), jnp.array([1.0]))
      Array([2.], dtype=float32)

    References:
      optax ``l2_loss`` (half of ``squared_error``, unlike PyTorch's ``mse_loss``).
    """
    return 0.5 * squared_error(jnp.asarray(predictions), targets)


def huber_loss(predictions: Any, targets: Any = None, *, delta: Any = 1.0) -> jax.Array:
    r"""Huber loss (Huber, 1964): quadratic for small errors, linear beyond ``delta``.

    .. math:: \ell(e) = \begin{cases} \tfrac12 e^2 & |e| \le \delta \\
       \delta (|e| - \tfrac12 \delta) & |e| > \delta \end{cases}

    Args:
      predictions: floating point.
      targets: the same shape, or None for 0.
      delta: where the loss turns linear.

    Returns:
      The loss per element.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.huber_loss(jnp.array([0.5, 3.0]))
      Array([0.125, 2.5  ], dtype=float32)

    References:
      Huber, "Robust Estimation of a Location Parameter" (1964); PyTorch
      ``huber_loss(reduction="none")``.
    """
    errors = jnp.abs(_errors("huber_loss", predictions, targets))
    quadratic = jnp.minimum(errors, delta)
    return 0.5 * quadratic**2 + delta * (errors - quadratic)


def log_cosh(predictions: Any, targets: Any = None) -> jax.Array:
    r"""Log-cosh loss :math:`\log\cosh(\hat y - y)`, computed as
    :math:`\operatorname{logaddexp}(e, -e) - \log 2` so large errors do not overflow.

    Args:
      predictions: floating point.
      targets: the same shape, or None for 0.

    Returns:
      The loss per element.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.log_cosh(jnp.array([0.0, 1.0]))
      Array([0.       , 0.4337808], dtype=float32)

    References:
      Chen et al., "Log Hyperbolic Cosine Loss Improves Variational Auto-Encoder" (2019).
    """
    errors = _errors("log_cosh", predictions, targets)
    return jnp.logaddexp(errors, -errors) - jnp.log(2.0).astype(errors.dtype)


def cosine_similarity(
    predictions: Any, targets: Any, *, epsilon: Any = 0.0, axis: Axis = -1, where: Any = None
) -> jax.Array:
    r"""Cosine similarity :math:`\langle a, b \rangle / (\lVert a \rVert \lVert b \rVert)`
    along ``axis``, each squared norm clipped from below at ``epsilon``.

    Args:
      predictions: floating point.
      targets: floating point, the same shape.
      epsilon: the smallest squared norm used (0 divides by zero for zero vectors).
      axis: the axis or axes of the vectors.
      where: optional boolean mask of the entries that count.

    Returns:
      The similarity per vector, in [-1, 1].

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.cosine_similarity(jnp.array([1.0, 0.0]), jnp.array([1.0, 1.0]))
      Array(0.70710677, dtype=float32)

    References:
      optax ``cosine_similarity``; PyTorch ``cosine_similarity`` (which clips each norm at
      ``eps`` rather than each squared norm).
    """
    _inputs.floating("cosine_similarity", predictions=predictions, targets=targets)

    def unit(x):
        squared = jnp.square(x).sum(axis=axis, where=where, keepdims=True)
        return x / jnp.sqrt(squared.clip(epsilon))

    return (unit(predictions) * unit(targets)).sum(axis=axis, where=where)


def cosine_distance(
    predictions: Any, targets: Any, *, epsilon: Any = 0.0, axis: Axis = -1, where: Any = None
) -> jax.Array:
    r"""Cosine distance, :math:`1 -` `cosine_similarity`.

    Args:
      predictions: floating point.
      targets: floating point, the same shape.
      epsilon: the smallest squared norm used.
      axis: the axis or axes of the vectors.
      where: optional boolean mask of the entries that count.

    Returns:
      The distance per vector, in [0, 2].

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.cosine_distance(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]))
      Array(1., dtype=float32)

    References:
      optax ``cosine_distance``.
    """
    _inputs.floating("cosine_distance", predictions=predictions, targets=targets)
    return 1.0 - cosine_similarity(predictions, targets, epsilon=epsilon, axis=axis, where=where)
