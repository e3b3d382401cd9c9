"""Linear algebra optimizers are built from: the dominant eigenpair by power iteration,
the inverse p-th root of a symmetric positive definite matrix by the coupled Newton
iteration (Shampoo's preconditioner), and nonnegative least squares by accelerated
projected gradient. optax's ``power_iteration``, ``matrix_inverse_pth_root`` and
``nnls`` (top level), with their signatures and numbers.

Example:
  >>> import gradtx, jax.numpy as jnp
  >>> value, vector = gradtx.power_iteration(jnp.array([[2.0, 0.0], [0.0, 1.0]]))
  >>> round(float(value), 4)
  2.0
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from gradtx import tree_utils

__all__ = ["matrix_inverse_pth_root", "nnls", "power_iteration"]


def _unit(tree: Any) -> Any:
    return tree_utils.tree_scale(1.0 / tree_utils.tree_norm(tree), tree)


def power_iteration(
    matrix: Any,
    *,
    v0: Any = None,
    num_iters: Any = 100,
    error_tolerance: Any = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
    key: Any = None,
) -> tuple[Any, Any]:
    r"""The eigenvalue of largest magnitude and its eigenvector, by power iteration:
    :math:`v \leftarrow A v / \lVert A v \rVert`, :math:`\lambda = v^\top A v`, until
    :math:`\lVert A v - \lambda v \rVert < \text{tol}\,|\lambda|` or ``num_iters``.

    Args:
      matrix: a square array, or a function computing :math:`A v` for a tree ``v``
        (a Hessian-vector product, say; then ``v0`` is required).
      v0: the starting vector (default: uniform in [-1, 1] from ``key``).
      num_iters: the most iterations.
      error_tolerance: the relative residual that stops the iteration.
      precision: of the matrix products.
      key: for the default ``v0`` (default: ``PRNGKey(0)``).

    Returns:
      ``(eigenvalue, eigenvector)``, the eigenvector of unit norm (a tree like ``v0``
      for a function).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> value, vector = gradtx.power_iteration(jnp.array([[1.0, 2.0], [2.0, 1.0]]))
      >>> round(float(value), 4), [round(abs(float(x)), 4) for x in vector]
      (3.0, [0.7071, 0.7071])

    References:
      Golub and Van Loan, "Matrix Computations", 7.3.1; optax ``power_iteration``.
    """
    if callable(matrix):
        product: Callable[[Any], Any] = matrix
        if v0 is None:
            raise ValueError("power_iteration: v0 must be given when `matrix` is a function")
    else:
        product = functools.partial(jnp.matmul, matrix, precision=precision)
        if v0 is None:
            key = jax.random.PRNGKey(0) if key is None else key
            v0 = jax.random.uniform(key, matrix.shape[-1:], matrix.dtype, minval=-1.0, maxval=1.0)

    def unconverged(carry: Any) -> Any:
        vector, image, value, i = carry
        residual = tree_utils.tree_norm(tree_utils.tree_sub(image, tree_utils.tree_scale(value, vector)))
        return ~(jnp.abs(residual / value) < error_tolerance) & (i < num_iters)

    def step(carry: Any) -> Any:
        _, image, _, i = carry
        vector = _unit(image)
        image = product(vector)
        return vector, image, tree_utils.tree_vdot(vector, image), i + 1

    v0 = _unit(v0)
    _, image, value, _ = lax.while_loop(
        unconverged, step, (v0, product(v0), jnp.asarray(0.0), jnp.asarray(0))
    )
    return value, _unit(image)


def matrix_inverse_pth_root(
    matrix: Any,
    p: Any,
    num_iters: Any = 100,
    ridge_epsilon: Any = 1e-6,
    error_tolerance: Any = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
) -> tuple[jax.Array, Any]:
    r""":math:`(A + \epsilon \lambda_{\max} I)^{-1/p}` of a symmetric positive
    semidefinite matrix, by the coupled Newton iteration (Guo and Higham, 2006):

    .. math:: M_0 = z A, \quad H_0 = z^{1/p} I, \quad z = \frac{1 + p}{2 \lVert A \rVert_F}

    .. math:: T_k = \frac{(p + 1) I - M_k}{p}, \quad M_{k+1} = T_k^p M_k,
       \quad H_{k+1} = H_k T_k

    :math:`M_k \to I` and :math:`H_k \to A^{-1/p}`. The iteration stops when
    :math:`\max |M_k - I|` falls below the tolerance or stops falling (then the last
    iterate that improved is returned). The ridge is relative to the largest
    eigenvalue (by `power_iteration`).

    Args:
      matrix: a symmetric positive semidefinite ``[n, n]`` array.
      p: the root, a power of 2 up to 8 (Shampoo uses 2 and 4).
      num_iters: the most iterations.
      ridge_epsilon: the ridge, relative to the largest eigenvalue.
      error_tolerance: :math:`\max |M - I|` that stops the iteration.
      precision: of the matrix products.

    Returns:
      ``(root, error)``: the inverse p-th root and :math:`\max |M - I|` at the end.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> root, _ = gradtx.matrix_inverse_pth_root(jnp.diag(jnp.array([4.0, 16.0])), 2, ridge_epsilon=0.0)
      >>> [round(float(x), 4) for x in jnp.diag(root)]  # 4^(-1/2), 16^(-1/2)
      [0.5, 0.25]

    References:
      Guo and Higham, "A Schur-Newton method for the matrix p-th root and its inverse"
      (SIAM J. Matrix Anal. Appl., 2006); Anil et al., "Scalable Second Order
      Optimization for Deep Learning" (2020); optax ``matrix_inverse_pth_root``.
    """
    n = matrix.shape[0]
    alpha = jnp.asarray(-1.0 / p, jnp.float32)  # T = (1 - alpha) I + alpha M
    eye = jnp.eye(n, dtype=jnp.float32)
    largest, _ = power_iteration(matrix=matrix, num_iters=100, error_tolerance=1e-6, precision=precision)
    ridge = ridge_epsilon * jnp.maximum(largest, 1e-16)
    if n == 1:
        return (matrix + ridge) ** alpha, 0

    def squarings(m: jax.Array, times: int) -> jax.Array:
        for _ in range(times):
            m = jnp.matmul(m, m, precision=precision)
        return m

    def power(m: jax.Array) -> jax.Array:
        # m ** p for p in (1, 2, 4, 8): log2(p) squarings
        branches = [lambda x, k=k: squarings(x, k) for k in range(4)]
        return lax.switch(jnp.asarray(jnp.round(jnp.log2(p)), jnp.int32), branches, m)

    def going(state: Any) -> Any:
        i, _, _, _, error, improving = state
        return (i < num_iters) & (error > error_tolerance) & improving

    def step(state: Any) -> Any:
        i, m, h, _, error, _ = state
        t = (1 - alpha) * eye + alpha * m
        new_m = jnp.matmul(power(t), m, precision=precision)
        new_h = jnp.matmul(h, t, precision=precision)
        new_error = jnp.max(jnp.abs(new_m - eye))
        return i + 1, new_m, new_h, h, new_error, new_error < error * 1.2

    damped = matrix + ridge * eye
    z = (1 + p) / (2 * jnp.linalg.norm(damped))
    m0 = damped * z
    h0 = eye * jnp.power(z, 1.0 / p)
    start = (0, m0, h0, h0, jnp.max(jnp.abs(m0 - eye)), True)
    _, m, h, previous, _, improving = lax.while_loop(going, step, start)
    error = jnp.max(jnp.abs(m - eye))
    kept = jnp.asarray(improving, previous.dtype)
    return jnp.asarray(kept * h + (1 - kept) * previous, matrix.dtype), error


def nnls(A: jax.Array, b: jax.Array, iters: int, unroll: int | bool = 1, L: Any = None) -> jax.Array:  # noqa: N803
    r"""Nonnegative least squares, :math:`\min_{x \ge 0} \tfrac12 \lVert A x - b \rVert^2`,
    by FISTA: projected gradient steps of size :math:`1/L` on :math:`Q = A^\top A`,
    :math:`q = A^\top b`, with Nesterov's momentum.

    .. math:: x_{k+1} = \max(0, p_k - (Q p_k - q) / L), \quad
       p_{k+1} = x_{k+1} + \frac{c_k - 1}{c_{k+1}} (x_{k+1} - x_k), \quad
       c_{k+1} = \frac{1 + \sqrt{1 + 4 c_k^2}}{2}

    Args:
      A: ``[m, n]``.
      b: ``[m]`` or ``[m, k]`` (k problems at once).
      iters: the number of steps.
      unroll: ``lax.scan``'s unrolling.
      L: a bound on :math:`Q`'s largest eigenvalue (default: the smaller of its
        Frobenius and 1-norms).

    Returns:
      ``x``, ``[n]`` or ``[n, k]``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> x = gradtx.nnls(jnp.eye(2), jnp.array([1.0, -1.0]), iters=50)
      >>> [round(float(v), 4) for v in x]  # the negative entry clipped at 0
      [1.0, 0.0]

    References:
      Beck and Teboulle, "A Fast Iterative Shrinkage-Thresholding Algorithm" (SIAM J.
      Imaging Sci., 2009); optax ``nnls``.
    """
    if A.ndim != 2 or b.ndim not in (1, 2) or b.shape[0] != A.shape[0]:
        raise ValueError(f"nnls: A must be [m, n] and b [m] or [m, k]; got {A.shape} and {b.shape}")
    Q = A.mT @ A  # noqa: N806
    q = A.mT @ b
    if L is None:
        frobenius = jnp.linalg.matrix_norm(Q, ord="fro")
        L = jnp.minimum(frobenius, jnp.linalg.matrix_norm(Q, ord=1) if Q.size else 0)  # noqa: N806
    L = jnp.where(L == 0, 1, L)  # noqa: N806

    def step(carry: Any, _: Any) -> Any:
        x, p, c = carry
        c_next = (1 + jnp.sqrt(1 + 4 * c**2)) / 2
        x_next = (p - (Q @ p - q) / L).clip(0)
        return (x_next, x_next + (c - 1) / c_next * (x_next - x), c_next), None

    x = jnp.zeros_like(b, shape=A.shape[-1:] + b.shape[1:])
    (x, _, _), _ = lax.scan(step, (x, x, 0.0), length=iters, unroll=unroll)
    return x
