"""Learning-to-rank losses over lists of items (the last axis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtx.losses import _inputs


def ranking_softmax_loss(
    logits: Any,
    labels: Any,
    *,
    where: Any = None,
    weights: Any = None,
    reduce_fn: Callable[..., Any] | None = jnp.mean,
) -> jax.Array:
    r"""Listwise softmax ranking loss (Cao et al., 2007; Bruch et al., 2019): the
    cross-entropy between the softmax of the scores and the relevance labels, per list.

    .. math:: \ell = -\sum_i y_i \log \frac{e^{s_i}}{\sum_j e^{s_j}}

    Args:
      logits: ``[..., list_size]`` scores.
      labels: ``[..., list_size]`` relevance (graded or binary).
      where: optional boolean mask of the valid items; a list with none contributes 0.
      weights: optional per-item weights multiplying the labels.
      reduce_fn: how the per-list losses are reduced (``jnp.mean``, ``jnp.sum``, or
        None for the per-list values).

    Returns:
      The reduced loss, or one value per list.

    References:
      Bruch et al., "An Analysis of the Softmax Cross Entropy Loss for
      Learning-to-Rank with Binary Relevance" (ICTIR 2019).
    """
    _inputs.floating("ranking_softmax_loss", logits=logits)
    labels = labels.astype(logits.dtype)
    if where is not None:
        labels = jnp.where(where, labels, jnp.zeros_like(labels))
        logits = jnp.where(where, logits, -jnp.ones_like(logits) * jnp.inf)
    if weights is not None:
        labels *= weights
    loss = -jnp.sum(labels * jax.nn.log_softmax(logits, axis=-1), axis=-1, where=where)
    lists = None if where is None else jnp.any(where, axis=-1)
    return _reduce(loss, lists, reduce_fn)


def _reduce(loss: jax.Array, where: Any, reduce_fn: Callable[..., Any] | None) -> jax.Array:
    out = loss if reduce_fn is None else reduce_fn(loss, where=where)
    if reduce_fn is jnp.mean:
        # the mean over no valid list is 0, not nan (unless a loss itself is nan)
        out = jnp.where(jnp.isnan(out) & ~jnp.any(jnp.isnan(loss)), 0.0, out)
    if reduce_fn is None and where is not None:
        out = jnp.where(where, out, 0.0)
    return out
