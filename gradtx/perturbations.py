"""optax's ``optax.perturbations`` module: smooth a function that is flat almost
everywhere (an argmax, a ranking, a rounding) by averaging it under random
perturbations of its input, and differentiate the average.

.. math:: f_\\sigma(x) = \\mathbb{E}_Z\\,[f(x + \\sigma Z)], \\qquad
   \\nabla f_\\sigma(x) = \\mathbb{E}_Z\\,[f(x + \\sigma Z)\\,
   \\nabla_Z(-\\log p(Z))^\\top] / \\sigma

(Berthet et al., 2020). `make_perturbed_fun` estimates both with ``num_samples`` draws
of the noise: the value as a plain Monte Carlo mean, the gradient by the score function,
through a "magic box" (Foerster et al., 2018) that is 1 in the forward pass and carries
the log-density's gradient in the backward pass, so ``jax.grad`` of the estimate is the
estimator. ``use_baseline`` subtracts ``f(x)`` to lower the gradient's variance.

optax's names, signatures and numbers: the same key gives the same draws.

Example:
  >>> import gradtx, jax, jax.numpy as jnp
  >>> argmax = lambda x: jax.nn.one_hot(jnp.argmax(x), 3)
  >>> smooth = gradtx.perturbations.make_perturbed_fun(argmax, num_samples=2000, sigma=0.5)
  >>> p = smooth(jax.random.key(0), jnp.array([1.0, 0.9, -2.0]))
  >>> [round(float(v), 1) for v in p]  # close to a softmax, not one-hot
  [0.5, 0.5, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import tree_utils

__all__ = ["Gumbel", "Normal", "make_perturbed_fun"]


class Normal:
    """Standard normal noise: ``sample`` draws it, ``log_prob`` is its log-density up to
    a constant, :math:`-z^2 / 2`."""

    def sample(self, key: Any, sample_shape: tuple[int, ...] = (), dtype: Any = float) -> jax.Array:
        """Draws noise of ``sample_shape`` and ``dtype`` from ``key``."""
        return jax.random.normal(key, sample_shape, dtype)

    def log_prob(self, inputs: jax.Array) -> jax.Array:
        """The log-density up to a constant, elementwise."""
        return -0.5 * inputs**2


class Gumbel:
    """Standard Gumbel noise: ``log_prob`` is :math:`-z - e^{-z}`. With it, a perturbed
    argmax has the softmax as its mean (the Gumbel-max trick)."""

    def sample(self, key: Any, sample_shape: tuple[int, ...] = (), dtype: Any = float) -> jax.Array:
        """Draws noise of ``sample_shape`` and ``dtype`` from ``key``."""
        return jax.random.gumbel(key, sample_shape, dtype)

    def log_prob(self, inputs: jax.Array) -> jax.Array:
        """The log-density, elementwise."""
        return -inputs - jnp.exp(-inputs)


def _magic_box(x: jax.Array) -> jax.Array:
    # 1 in value; its gradient is the gradient of x
    return jnp.exp(x - jax.lax.stop_gradient(x))


def make_perturbed_fun(
    fun: Callable[[Any], Any],
    num_samples: int = 1000,
    sigma: Any = 0.1,
    noise: Any = Gumbel(),  # noqa: B008 (optax's default object; stateless)
    use_baseline: bool = True,
) -> Callable[[Any, Any], Any]:
    """A Monte Carlo estimate of ``fun`` smoothed by noise, differentiable in its input.

    Args:
      fun: a function of a tree to a tree (possibly flat almost everywhere).
      num_samples: draws per call.
      sigma: the noise's scale.
      noise: an object with ``sample(key, shape, dtype)`` and ``log_prob(z)``:
        `Gumbel` (optax's default) or `Normal`.
      use_baseline: subtract ``fun(x)`` in the gradient estimate (same mean, lower
        variance).

    Returns:
      ``perturbed(key, x)``: the mean of ``fun(x + sigma * z)`` over the draws, whose
      gradient in ``x`` is the score-function estimate of the smoothed gradient.

    Example:
      >>> import gradtx, jax, jax.numpy as jnp
      >>> normal = gradtx.perturbations.Normal()
      >>> smooth = gradtx.perturbations.make_perturbed_fun(jnp.sign, 4000, sigma=1.0, noise=normal)
      >>> value, grad = jax.value_and_grad(lambda x: smooth(jax.random.key(1), x))(jnp.float32(0.3))
      >>> round(float(value), 1), round(float(grad), 1)  # exact: 2 Phi(0.3) - 1 = 0.24, 2 phi(0.3) = 0.76
      (0.2, 0.8)

    References:
      Berthet et al., "Learning with Differentiable Perturbed Optimizers" (NeurIPS 2020);
      optax ``perturbations.make_perturbed_fun`` (same draws and numbers).
    """

    def one_draw(key: Any, x: Any, baseline: Any) -> Any:
        z = tree_utils.tree_random_like(key, x, sampler=noise.sample)
        shifted = jax.lax.stop_gradient(jax.tree.map(lambda xi, zi: xi + sigma * zi, x, z))
        # z again, as a function of x, so the box below carries d log p(z) / dx
        z = jax.tree.map(lambda xi, si: (si - xi) / sigma, x, shifted)
        box = _magic_box(tree_utils.tree_sum(jax.tree.map(noise.log_prob, z)))
        out = tree_utils.tree_scale(box, fun(shifted))
        if use_baseline:
            out = tree_utils.tree_add_scale(out, 1 - box, baseline)
        return out

    def perturbed(key: Any, x: Any) -> Any:
        baseline = fun(jax.lax.stop_gradient(x)) if use_baseline else None
        keys = jax.random.split(key, num_samples)
        draws = jax.vmap(one_draw, in_axes=(0, None, None))(keys, x, baseline)
        return jax.tree.map(lambda d: jnp.mean(d, axis=0), draws)

    return perturbed
