"""optax's ``optax.assignment`` module: the linear assignment problem, jit-compiled and
vmappable. Given an ``[n, m]`` cost matrix, pick ``min(n, m)`` entries, at most one per
row and per column, of least total cost (what DETR-style set losses match predictions
to targets with).

One solver serves both names: the Hungarian method with potentials (Kuhn, 1955;
Munkres, 1957), adding one row at a time and finding the cheapest augmenting path by
a Dijkstra-like sweep over the columns, :math:`O(n^2 m)` for ``n <= m`` (the matrix is
transposed otherwise). The two names differ only in the order of the pairs they
return, which is optax's for each.

Example:
  >>> import gradtx, jax.numpy as jnp
  >>> costs = jnp.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
  >>> rows, cols = gradtx.assignment.hungarian_algorithm(costs)
  >>> float(costs[rows, cols].sum())  # 1 + 2 + 2: rows 0, 1, 2 to columns 1, 0, 2
  5.0
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["base_hungarian_algorithm", "hungarian_algorithm"]


def _row_of_column(costs: jax.Array) -> jax.Array:
    """For an ``[n, m]`` matrix with ``n <= m``: the row matched to each column in a
    least-cost assignment of every row, -1 for the ``m - n`` columns left unmatched."""
    n, m = costs.shape
    costs = costs.astype(float)
    # 1-based rows and columns; column 0 is the virtual start of each augmenting path,
    # and row index n + 1 a sink for potential updates of unmatched columns.
    inf = jnp.asarray(jnp.inf, costs.dtype)

    def add_row(carry: Any, row: jax.Array) -> Any:
        u, v, match = carry  # potentials of rows [n + 2], of columns [m + 1]; match[j] = row of j
        match = match.at[0].set(row + 1)

        def not_free(state: Any) -> Any:
            *_, column = state
            return match[column] != 0

        def grow(state: Any) -> Any:
            u, v, used, slack, way, column = state
            used = used.at[column].set(True)
            free = ~used[1:]
            i = match[column]
            # reduced costs of the columns not yet in the tree, reached through row i
            reduced = jnp.where(free, costs[i - 1, :] - u[i] - v[1:], inf)
            closer = reduced < slack
            way = jnp.where(closer, column, way)
            slack = jnp.where(closer, reduced, slack)
            delta = slack.min(where=free, initial=inf)
            nearest = jnp.argmin(jnp.where(free, slack, inf)) + 1
            # shift the potentials: tree rows up, tree columns down, slacks by delta
            u = u.at[jnp.where(used, match, n + 1)].add(delta)
            v = jnp.where(used, v - delta, v)
            slack = jnp.where(free, slack - delta, slack)
            return u, v, used, slack, way, nearest

        start = (u, v, jnp.zeros(m + 1, bool), jnp.full(m, inf), jnp.zeros(m, int), 0)
        u, v, _, _, way, column = lax.while_loop(not_free, grow, start)

        def flip(state: Any) -> Any:
            # walk the path back, shifting each column's row to the next column
            match, column = state
            previous = way[column - 1]
            return match.at[column].set(match[previous]), previous

        match, _ = lax.while_loop(lambda s: s[1] != 0, flip, (match, column))
        return (u, v, match), None

    start = (jnp.zeros(n + 2, costs.dtype), jnp.zeros(m + 1, costs.dtype), jnp.zeros(m + 1, int))
    (_, _, match), _ = lax.scan(add_row, start, jnp.arange(n))
    return match[1:] - 1


def hungarian_algorithm(cost_matrix: Any) -> tuple[jax.Array, jax.Array]:
    """A least-cost assignment of the rows and columns of ``cost_matrix``.

    Args:
      cost_matrix: ``[n, m]`` costs.

    Returns:
      ``(i, j)``, each of ``min(n, m)`` integers: ``cost_matrix[i, j].sum()`` is the least
      total cost. In optax's order: for a square matrix ``j`` is ``0, 1, ..., m - 1``;
      with fewer rows than columns ``i`` runs from the last row down, with more the
      pairs come by column from the last one down.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.assignment.hungarian_algorithm(jnp.array([[1.0, 0.0], [0.0, 1.0]]))
      (Array([1, 0], dtype=int32), Array([0, 1], dtype=int32))

    References:
      Kuhn, "The Hungarian method for the assignment problem" (1955); optax
      ``assignment.hungarian_algorithm`` (same pairs, same order); SciPy
      ``linear_sum_assignment`` (the same least cost).
    """
    costs = jnp.asarray(cost_matrix)
    if costs.shape[0] == 0 or costs.shape[1] == 0:
        return jnp.zeros(0, int), jnp.zeros(0, int)
    transpose = costs.shape[0] > costs.shape[1]
    if transpose:
        costs = costs.T
    n, m = costs.shape
    rows = _row_of_column(costs)
    if n == m:
        i, j = rows, jnp.arange(m)
    else:
        # the matched columns, by row from the last one down (optax's top_k order)
        shifted, j = lax.top_k(rows + 1, n)
        i = shifted - 1
    return (j, i) if transpose else (i, j)


def base_hungarian_algorithm(cost_matrix: Any) -> tuple[jax.Array, jax.Array]:
    """A least-cost assignment, as `hungarian_algorithm`, with the pairs ordered by row.

    Args:
      cost_matrix: ``[n, m]`` costs.

    Returns:
      ``(i, j)``, each of ``min(n, m)`` integers, ``i`` increasing.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.assignment.base_hungarian_algorithm(jnp.array([[5.0, 1.0], [2.0, 9.0], [0.0, 3.0]]))
      (Array([0, 2], dtype=int32), Array([1, 0], dtype=int32))

    References:
      Crouse, "On implementing 2D rectangular assignment algorithms" (IEEE TAES, 2016);
      optax ``assignment.base_hungarian_algorithm`` (same pairs, same order).
    """
    costs = jnp.asarray(cost_matrix)
    if costs.shape[0] == 0 or costs.shape[1] == 0:
        return jnp.zeros(0, int), jnp.zeros(0, int)
    if costs.shape[1] < costs.shape[0]:
        # solve by columns: each column's row, then the pairs sorted by row
        row_of_col = _column_of_row(costs.T)
        order = row_of_col.argsort()
        return row_of_col[order], order
    return jnp.arange(costs.shape[0]), _column_of_row(costs)


def _column_of_row(costs: jax.Array) -> jax.Array:
    """For ``n <= m``: the column matched to each row."""
    rows = _row_of_column(costs)
    n, m = costs.shape
    # invert: row_of_col[j] = r  ->  col_of_row[r] = j (unmatched columns dropped)
    return jnp.zeros(n + 1, int).at[jnp.where(rows >= 0, rows, n)].set(jnp.arange(m))[:n]
