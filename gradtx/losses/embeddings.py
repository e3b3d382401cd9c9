"""Losses on embeddings, for contrastive and metric learning: NT-Xent (SimCLR) and the
triplet margin loss."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx.losses import _inputs
from gradtx.losses.regression import cosine_similarity


def ntxent(embeddings: Any, labels: Any, temperature: Any = 0.07) -> jax.Array:
    r"""Normalized temperature-scaled cross-entropy (NT-Xent; Chen et al., 2020).

    For every pair :math:`(i, j)` of distinct embeddings with the same label, the loss
    of picking :math:`j` among :math:`j` and every embedding of another label:

    .. math:: \ell_{ij} = -\log \frac{e^{s_{ij}/\tau}}
       {e^{s_{ij}/\tau} + \sum_{k: y_k \ne y_i} e^{s_{ik}/\tau}}

    with :math:`s` the cosine similarity, averaged over the positive pairs.

    Args:
      embeddings: ``[batch, dim]``, floating point.
      labels: ``[batch]`` integers; equal labels mark positive pairs.
      temperature: :math:`\tau`.

    Returns:
      The mean loss, a scalar.

    References:
      Chen et al., "A Simple Framework for Contrastive Learning of Visual
      Representations" (ICML 2020).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> embeddings = jnp.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
      >>> loss = gradtx.losses.ntxent(embeddings, jnp.array([0, 0, 1]), temperature=1.0)
      >>> round(float(loss), 4)  # log(1 + e^-2): similarity 1 to the positive, -1 to the negative
      0.1269
    """
    _inputs.floating("ntxent", embeddings=embeddings)
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            "ntxent: `labels` and `embeddings` must have the same leading dimension, found "
            f"{labels.shape[0]} for labels and {embeddings.shape[0]} for embeddings"
        )
    eps = jnp.finfo(embeddings.dtype).eps
    sims = cosine_similarity(embeddings[None, :, :], embeddings[:, None, :], epsilon=eps) / temperature
    same = labels[:, None] == labels[None, :]
    positive = same & ~jnp.eye(same.shape[0], dtype=bool)
    negatives = jnp.where(~same, sims, -jnp.inf)
    positives = jnp.where(positive, sims, -jnp.inf)
    # shift by each row's largest similarity (held constant) so the exponentials are safe
    both = jnp.concatenate((negatives, positives), axis=-1)
    top = jax.lax.stop_gradient(jnp.max(both, axis=1, keepdims=True))
    negatives, positives = negatives - top, positives - top
    denominator = jnp.sum(jnp.exp(negatives), axis=1, keepdims=True) + jnp.exp(positives)
    log_softmax = positives - jnp.log(denominator)
    return -jnp.where(positive, log_softmax, 0.0).sum() / positive.sum().astype(log_softmax.dtype)


def triplet_margin_loss(
    anchors: Any,
    positives: Any,
    negatives: Any,
    axis: int = -1,
    norm_degree: Any = 2,
    margin: Any = 1.0,
    eps: Any = 1e-6,
) -> jax.Array:
    r"""Triplet margin loss (Schroff et al., 2015): the anchor should be nearer its
    positive than its negative by ``margin``.

    .. math:: \ell = \max(0, d(a, p) - d(a, n) + m), \quad
       d(x, y) = \Big(\sum (x - y)^q + \epsilon\Big)^{1/q}

    Args:
      anchors, positives, negatives: embeddings of one shape, floating point.
      axis: the embedding axis.
      norm_degree: :math:`q` (2 is the Euclidean distance).
      margin: :math:`m`.
      eps: added inside the root so the gradient is finite at distance 0.

    Returns:
      The loss per triplet.

    References:
      Schroff et al., "FaceNet" (CVPR 2015); PyTorch ``triplet_margin_loss``.
    """
    _inputs.floating("triplet_margin_loss", anchors=anchors, positives=positives, negatives=negatives)

    def distance(other):
        return jnp.power(jnp.power(anchors - other, norm_degree).sum(axis) + eps, 1 / norm_degree)

    return jnp.maximum(distance(positives) - distance(negatives) + margin, 0)
