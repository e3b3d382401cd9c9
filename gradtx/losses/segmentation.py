"""Overlap losses for segmentation: Dice and its Tversky and generalized forms.

Predictions and targets are ``[batch, *spatial, classes]``; the overlap of each class
is summed over the spatial axes, so the loss is ``1 - overlap`` per example and class,
then reduced over the classes.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.core import Tracer

from gradtx.losses import _inputs

_REDUCTIONS = ("mean", "sum", "none")


def dice_loss(
    predictions: Any,
    targets: Any,
    *,
    class_weights: Any = None,
    smooth: Any = 1.0,
    alpha: Any = 0.5,
    beta: Any = 0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    ignore_background: bool = False,
    axis: Any = None,
) -> jax.Array:
    r"""Dice loss (Milletari et al., 2016) in its Tversky form (Salehi et al., 2017).

    With :math:`p` the predicted probabilities and :math:`t` the targets, summed over
    the spatial axes, :math:`I = \sum p t`:

    .. math:: \ell = 1 - \frac{I + s}{I + \alpha(\sum p - I) + \beta(\sum t - I) + s}

    :math:`\alpha = \beta = \tfrac12` is the Dice coefficient; other values weigh
    false positives (:math:`\alpha`) against false negatives (:math:`\beta`).

    Args:
      predictions: logits ``[batch, *spatial, classes]`` (or probabilities with
        ``apply_softmax=False``); a single class (or predictions without the class
        axis) is read as binary, through a sigmoid.
      targets: one-hot or soft targets, the same shape.
      class_weights: optional ``[classes]`` weights of each class's loss.
      smooth: :math:`s`, which keeps empty classes finite.
      alpha, beta: the Tversky weights.
      apply_softmax: turn logits into probabilities (softmax, or sigmoid for one
        class); False requires probabilities that sum to 1 over the classes
        (checked outside ``jit``; under ``jit`` they are used as given).
      reduction: "mean", "sum" or "none" over the classes.
      ignore_background: leave class 0 out.
      axis: the axes summed for the overlap (default: every axis but the first and
        the last).

    Returns:
      The loss per example (``[batch]``), or per example and class with "none".

    References:
      Milletari et al., "V-Net" (3DV 2016); Salehi et al., "Tversky loss function for
      image segmentation using 3D fully convolutional deep networks" (MLMI 2017).
    """
    owner = "dice_loss"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{owner}: unsupported reduction {reduction!r}; use one of {_REDUCTIONS}")
    if predictions.ndim == targets.ndim - 1:
        predictions = predictions[..., None]
    if targets.ndim == predictions.ndim - 1:
        targets = targets[..., None]
    _inputs.same_shape(owner, predictions=predictions, targets=targets)
    if apply_softmax:
        single = predictions.shape[-1] == 1
        probs = jax.nn.sigmoid(predictions) if single else jax.nn.softmax(predictions, axis=-1)
    else:
        totals = jnp.sum(predictions, axis=-1)
        # checked on concrete values only: under jit the loss is computed as given
        # (optax's check raises a concretization error there)
        if not isinstance(totals, Tracer) and not jnp.allclose(totals, 1.0, rtol=1e-5):
            raise ValueError(
                f"{owner}: with apply_softmax=False, predictions must be valid probability "
                "distributions that sum to 1 over the class axis; their sums range over "
                f"[{jnp.min(totals):.6f}, {jnp.max(totals):.6f}]"
            )
        probs = predictions
    axis = tuple(range(1, probs.ndim - 1)) if axis is None else axis
    overlap = jnp.sum(probs * targets, axis=axis)
    predicted = jnp.sum(probs, axis=axis)
    actual = jnp.sum(targets, axis=axis)
    denominator = overlap + alpha * (predicted - overlap) + beta * (actual - overlap) + smooth
    loss = 1.0 - (overlap + smooth) / denominator
    if class_weights is not None:
        _inputs.rank(owner, "class_weights", class_weights, 1)
        loss = loss * jnp.broadcast_to(class_weights, loss.shape)
    if ignore_background and probs.shape[-1] > 1:
        loss = loss[..., 1:]
    if reduction == "mean":
        return jnp.mean(loss, axis=-1)
    if reduction == "sum":
        return jnp.sum(loss, axis=-1)
    return loss


def multiclass_generalized_dice_loss(
    predictions: Any,
    targets: Any,
    *,
    smooth: Any = 1.0,
    apply_softmax: bool = True,
    ignore_background: bool = False,
) -> jax.Array:
    r"""Generalized Dice loss (Sudre et al., 2017): `dice_loss` with each class weighted
    by the inverse square of its frequency in the batch, :math:`w_c \propto 1 / (f_c^2
    + 10^{-7})`, normalised to sum to the number of classes, so rare classes count.

    Args:
      predictions: logits ``[batch, *spatial, classes]``.
      targets: one-hot targets, the same shape.
      smooth: see `dice_loss`.
      apply_softmax: see `dice_loss`.
      ignore_background: leave class 0 out.

    Returns:
      The mean loss over examples and classes, a scalar.

    References:
      Sudre et al., "Generalised Dice overlap as a deep learning loss function for
      highly unbalanced segmentations" (DLMIA 2017).
    """
    _inputs.same_shape("multiclass_generalized_dice_loss", predictions=predictions, targets=targets)
    frequencies = jnp.sum(targets, axis=tuple(range(targets.ndim - 1)))
    weights = 1.0 / (frequencies**2 + 1e-7)
    weights = weights / jnp.sum(weights) * len(weights)
    loss = dice_loss(
        predictions,
        targets,
        class_weights=weights,
        smooth=smooth,
        apply_softmax=apply_softmax,
        reduction="none",
        ignore_background=ignore_background,
    )
    return jnp.mean(loss)


def binary_dice_loss(
    predictions: Any, targets: Any, *, smooth: Any = 1.0, apply_sigmoid: bool = True
) -> jax.Array:
    """Dice loss of a binary segmentation (one foreground channel, through a sigmoid).

    Args:
      predictions: logits ``[batch, *spatial]`` or ``[batch, *spatial, 1]``.
      targets: 0/1 targets of the same shape.
      smooth: see `dice_loss`.
      apply_sigmoid: turn logits into probabilities.

    Returns:
      The loss per example.
    """
    if predictions.ndim == targets.ndim and predictions.shape[-1] != 1:
        predictions, targets = predictions[..., None], targets[..., None]
    return dice_loss(predictions, targets, smooth=smooth, apply_softmax=apply_sigmoid, reduction="mean")
