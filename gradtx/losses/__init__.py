"""optax's ``optax.losses`` module: the losses optax users train with, with optax's
names, signatures and numbers (custom gradients included: `safe_softmax_cross_entropy`
is finite at ``-inf`` logits, the sparsemax losses use sparsemax's Jacobian).

Every loss takes arrays and returns one value per example (or per element), never
averaged for you, except the ones defined as a mean (`ntxent`, `ranking_softmax_loss`
by default, `multiclass_generalized_dice_loss`). They live by kind:
`gradtx.losses.classification`, `.regression`, `.segmentation`, `.ranking`,
`.embeddings` and `.ctc`; this module gathers them where optax code imports them from.
The cross-entropies, regression losses, KL divergences, focal loss, NT-Xent, CTC and
label smoothing are also at gradtx's top level, as at optax's.

Example:
  >>> import gradtx, jax, jax.numpy as jnp
  >>> logits, labels = jnp.array([[2.0, 0.0, -1.0]]), jnp.array([0])
  >>> float(gradtx.losses.softmax_cross_entropy_with_integer_labels(logits, labels)[0])
  0.1698...
  >>> jax.grad(lambda x: gradtx.losses.l2_loss(x).sum())(jnp.array([3.0]))
  Array([3.], dtype=float32)
"""

from __future__ import annotations

from gradtx.losses.classification import (
    MaxFun,
    convex_kl_divergence,
    generalized_kl_divergence,
    hinge_loss,
    kl_divergence,
    kl_divergence_with_log_targets,
    make_fenchel_young_loss,
    multiclass_hinge_loss,
    multiclass_perceptron_loss,
    multiclass_sparsemax_loss,
    perceptron_loss,
    poly_loss_cross_entropy,
    safe_softmax_cross_entropy,
    sigmoid_binary_cross_entropy,
    sigmoid_focal_loss,
    smooth_labels,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
    sparsemax_loss,
)
from gradtx.losses.ctc import ctc_loss, ctc_loss_with_forward_probs
from gradtx.losses.embeddings import ntxent, triplet_margin_loss
from gradtx.losses.ranking import ranking_softmax_loss
from gradtx.losses.regression import (
    cosine_distance,
    cosine_similarity,
    huber_loss,
    l2_loss,
    log_cosh,
    squared_error,
)
from gradtx.losses.segmentation import binary_dice_loss, dice_loss, multiclass_generalized_dice_loss

__all__ = [
    "MaxFun",
    "binary_dice_loss",
    "convex_kl_divergence",
    "cosine_distance",
    "cosine_similarity",
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    "dice_loss",
    "generalized_kl_divergence",
    "hinge_loss",
    "huber_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "l2_loss",
    "log_cosh",
    "make_fenchel_young_loss",
    "multiclass_generalized_dice_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "ntxent",
    "perceptron_loss",
    "poly_loss_cross_entropy",
    "ranking_softmax_loss",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "sparsemax_loss",
    "squared_error",
    "triplet_margin_loss",
]
