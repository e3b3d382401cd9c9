"""optax's ``optax.second_order`` module: curvature of a loss at the parameters, as
vectors over all parameters together (``jax.flatten_util.ravel_pytree`` order).

optax deprecates the module (removed in optax 0.2.9); these keep its names, signatures
and numbers, and warn as optax does. For new code, `jax.hessian`, ``jax.jvp`` of
``jax.grad`` and `gradtx.contrib`'s Hutchinson estimator are the tools.

Each function takes ``loss(params, inputs, targets) -> scalar``.

Example:
  >>> import warnings, gradtx, jax.numpy as jnp
  >>> loss = lambda w, x, y: jnp.sum((x @ w - y) ** 2)
  >>> with warnings.catch_warnings():
  ...     warnings.simplefilter("ignore", DeprecationWarning)
  ...     gradtx.second_order.hessian_diag(loss, jnp.ones(2), jnp.eye(2), jnp.zeros(2))
  Array([2., 2.], dtype=float32)
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
from jax import flatten_util

__all__ = ["LossFn", "fisher_diag", "hessian_diag", "hvp"]


class LossFn(Protocol):
    """A loss of the parameters on a batch: ``loss(params, inputs, targets) -> scalar``."""

    def __call__(self, params: Any, inputs: jax.Array, targets: jax.Array) -> jax.Array: ...


def _deprecated(fun: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fun)
    def warned(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            f"The function {fun.__name__} is deprecated. This function will be/was removed in optax 0.2.9.",
            DeprecationWarning,
            stacklevel=2,
        )
        return fun(*args, **kwargs)

    return warned


def _flat(tree: Any) -> jax.Array:
    return flatten_util.ravel_pytree(tree)[0]


def _hvp(loss: LossFn, v: jax.Array, params: Any, inputs: jax.Array, targets: jax.Array) -> Any:
    _, unravel = flatten_util.ravel_pytree(params)
    return jax.jvp(jax.grad(lambda p: loss(p, inputs, targets)), [params], [unravel(v)])[1]


@_deprecated
def hvp(loss: LossFn, v: jax.Array, params: Any, inputs: jax.Array, targets: jax.Array) -> jax.Array:
    r"""The Hessian of the loss times a vector, :math:`H v`, by forward-over-reverse
    differentiation (one gradient's cost, no Hessian built).

    Args:
      loss: ``loss(params, inputs, targets)``.
      v: a vector over all parameters (the raveled order).
      params: the parameters (any tree).
      inputs: the batch's inputs.
      targets: the batch's targets.

    Returns:
      :math:`H v`, shaped like ``params``.

    Example:
      >>> import warnings, gradtx, jax.numpy as jnp
      >>> loss = lambda w, x, y: jnp.sum(w**3)  # H = diag(6 w)
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore", DeprecationWarning)
      ...     gradtx.second_order.hvp(loss, jnp.array([1.0, 0.0]), jnp.array([1.0, 2.0]), None, None)
      Array([6., 0.], dtype=float32)

    References:
      Pearlmutter, "Fast Exact Multiplication by the Hessian" (1994); optax
      ``second_order.hvp`` (same numbers, deprecated there).
    """
    return _hvp(loss, v, params, inputs, targets)


@_deprecated
def hessian_diag(loss: LossFn, params: Any, inputs: jax.Array, targets: jax.Array) -> jax.Array:
    r"""The diagonal of the Hessian, :math:`H_{ii} = e_i^\top H e_i`, one Hessian-vector
    product per parameter (:math:`n` products for :math:`n` parameters: for small models).

    Args:
      loss: ``loss(params, inputs, targets)``.
      params: the parameters (any tree).
      inputs: the batch's inputs.
      targets: the batch's targets.

    Returns:
      The diagonal, a vector over all parameters (raveled order).

    Example:
      >>> import warnings, gradtx, jax.numpy as jnp
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore", DeprecationWarning)
      ...     cube = lambda w, x, y: jnp.sum(w**3)
      ...     gradtx.second_order.hessian_diag(cube, jnp.array([1.0, 2.0]), None, None)
      Array([ 6., 12.], dtype=float32)

    References:
      optax ``second_order.hessian_diag`` (same numbers, deprecated there).
    """
    basis = jnp.eye(_flat(params).size)
    return jax.vmap(lambda e: jnp.vdot(e, _flat(_hvp(loss, e, params, inputs, targets))))(basis)


@_deprecated
def fisher_diag(
    negative_log_likelihood: LossFn, params: Any, inputs: jax.Array, targets: jax.Array
) -> jax.Array:
    r"""The diagonal of the empirical Fisher information, :math:`(\nabla_\theta
    \ell)^2` of the negative log-likelihood :math:`\ell` on the batch given.

    Args:
      negative_log_likelihood: ``nll(params, inputs, targets)``.
      params: the parameters (any tree).
      inputs: the batch's inputs.
      targets: the batch's targets.

    Returns:
      The squared gradient, a vector over all parameters (raveled order).

    Example:
      >>> import warnings, gradtx, jax.numpy as jnp
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore", DeprecationWarning)
      ...     nll = lambda w, x, y: jnp.sum(x * w)
      ...     gradtx.second_order.fisher_diag(nll, jnp.ones(2), jnp.array([3.0, -1.0]), None)
      Array([9., 1.], dtype=float32)

    References:
      Kunstner et al., "Limitations of the Empirical Fisher Approximation" (NeurIPS
      2019), on what it is and is not; optax ``second_order.fisher_diag``.
    """
    return jnp.square(_flat(jax.grad(negative_log_likelihood)(params, inputs, targets)))
