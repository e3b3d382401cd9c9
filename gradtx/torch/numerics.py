"""PyTorch's rounding and its float64-accurate corrections, which its presets reproduce.

`rounded` makes a product a stored value so the next addition rounds again, as
PyTorch's in-place ``mul_`` then ``add_`` does; `exact_correction` and
`rectification_length` compute ``1 - decay**t`` and RAdam's length of the average to
float64 accuracy, as PyTorch does on the host.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _tree

_SAME_WIDTH_INT = {1: jnp.int8, 2: jnp.int16, 4: jnp.int32, 8: jnp.int64}


def rounded(x: jax.Array, count: jax.Array) -> jax.Array:
    """``x``, rounded to its dtype before whatever uses it next.

    XLA's CPU and GPU compilers contract ``x * y + z`` into one fused multiply-add,
    which rounds once; PyTorch's in-place ``p.mul_(f)`` then ``p.add_(u)`` rounds twice.
    A round trip through the integers of the same width, adding a zero the compiler
    cannot prove (``min(count, 0)`` of the step count), makes the product a stored
    value, so the next addition rounds again, as PyTorch's does.
    """
    ints = _SAME_WIDTH_INT[x.dtype.itemsize]
    bits = jax.lax.bitcast_convert_type(x, ints) + jnp.minimum(count, 0).astype(ints)
    return jax.lax.bitcast_convert_type(bits, x.dtype)


def _g(x: jax.Array) -> jax.Array:
    """``1/x - 1/expm1(x)`` for x > 0 without cancellation (1/2 - x/12 + ... near 0)."""
    series = 0.5 - x / 12 + x**3 / 720 - x**5 / 30240
    safe = jnp.maximum(x, 0.5)
    return jnp.where(x < 0.5, series, 1 / safe - 1 / jnp.expm1(safe))


def rectification_length(one_minus_b2: Any, t: jax.Array) -> jax.Array:
    r"""RAdam's :math:`\rho_t = \rho_\infty - 2 t b_2^t / (1 - b_2^t)`, accurate in float32.

    The direct form subtracts two numbers near :math:`\rho_\infty` (1999 for
    b2 = 0.999), losing about 2e-4 in float32, which changes the rectification by up to
    5e-5 relative at t = 6. With :math:`l = -\log b_2` (from ``1 - b2``, given
    precisely) and :math:`g(x) = 1/x - 1/(e^x - 1)`,
    :math:`\rho_t = 1 - 2 g(l) + 2 t\, g(t l)`, which has no cancellation (PyTorch
    computes it in float64).

    Args:
      one_minus_b2: ``1 - b2`` (a Python number, or an array).
      t: the step, from 1, as a float array.

    Returns:
      :math:`\rho_t`, shaped like ``t``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> round(float(gradtx.torch.rectification_length(0.001, jnp.asarray(6.0))), 5)
      5.99416

    References:
      Liu et al., 2020, RAdam (eq. 6 and algorithm 2); ``torch.optim.RAdam``.
    """
    rate = -jnp.log1p(-jnp.asarray(one_minus_b2, dtype=t.dtype))  # l = -log(b2)
    return 1 - 2 * _g(rate) + 2 * t * _g(t * rate)


def exact_correction(one_minus_decay: Any, count: jax.Array) -> jax.Array:
    """``1 - decay**t`` to float64 accuracy in float32: ``-expm1(t * log1p(-(1 - decay)))``.

    optax (and the shared blocks) raise the float32-rounded decay to the power ``t``:
    0.999 is stored as 0.99900001, which puts ``1 - 0.999**10`` off by 1.3e-5 relative.
    PyTorch computes it in Python floats; this matches it to about 2e-7.

    Args:
      one_minus_decay: ``1 - decay``, given precisely (a Python number or an array).
      count: the step t, from 1 (an integer array).

    Returns:
      ``1 - decay**t`` as a float32 (or wider) scalar.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> float(gradtx.torch.exact_correction(0.5, jnp.asarray(2)))  # 1 - 0.5**2
      0.75

    References:
      ``torch.optim.Adam``'s ``bias_correction1``, ``bias_correction2``.
    """
    t = count.astype(_tree.float_dtype())
    return -jnp.expm1(t * jnp.log1p(-jnp.asarray(one_minus_decay, dtype=t.dtype)))
