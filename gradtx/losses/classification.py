"""Classification losses: cross-entropies (softmax, sigmoid, integer labels, the one
safe at ``-inf`` logits), margins (hinge, perceptron, sparsemax), focal and poly
losses, the Kullback-Leibler divergences and Fenchel-Young losses.

Every loss returns one value per example (the class axis reduced, nothing averaged):
average or sum it yourself. ``where=`` masks out classes: a masked class counts as if
it were not there (its logit is left out of the softmax's normaliser, its label out
of the sum).
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp

from gradtx.losses import _inputs
from gradtx.projections import _simplex_projection

Axis = int | tuple[int, ...] | None


def sigmoid_binary_cross_entropy(logits: Any, labels: Any) -> jax.Array:
    r"""Binary cross-entropy of independent sigmoid outputs, elementwise.

    .. math:: \ell(x, y) = -y \log \sigma(x) - (1 - y) \log(1 - \sigma(x))

    written with ``log_sigmoid`` of ``x`` and ``-x`` so large logits stay finite.
    Labels may be soft (any value in [0, 1]).

    Args:
      logits: unnormalised scores, any shape, floating point.
      labels: targets of the same shape (cast to the logits' dtype).

    Returns:
      The loss per element, the logits' shape.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.sigmoid_binary_cross_entropy(jnp.array([0.0]), jnp.array([1.0]))
      Array([0.6931472], dtype=float32)

    References:
      optax ``sigmoid_binary_cross_entropy`` (same numbers); PyTorch
      ``binary_cross_entropy_with_logits(reduction="none")``.
    """
    _inputs.floating("sigmoid_binary_cross_entropy", logits=logits)
    labels = jnp.asarray(labels).astype(jnp.result_type(logits))
    return -labels * jax.nn.log_sigmoid(logits) - (1.0 - labels) * jax.nn.log_sigmoid(-logits)


def hinge_loss(predictor_outputs: Any, targets: Any) -> jax.Array:
    r"""Hinge loss of a binary classifier with targets in {-1, +1}:
    :math:`\max(0, 1 - f(x) y)`, elementwise.

    Args:
      predictor_outputs: the classifier's scores.
      targets: -1 or +1, the same shape.

    Returns:
      The loss per element.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.hinge_loss(jnp.array([0.5, 2.0]), jnp.array([1.0, 1.0]))
      Array([0.5, 0. ], dtype=float32)

    References:
      Cortes and Vapnik, "Support-vector networks" (Machine Learning, 1995).
    """
    return jnp.maximum(0, 1 - predictor_outputs * targets)


def perceptron_loss(predictor_outputs: Any, targets: Any) -> jax.Array:
    r"""Binary perceptron loss with targets in {-1, +1}: :math:`\max(0, -f(x) y)`.

    Args:
      predictor_outputs: the classifier's scores.
      targets: -1 or +1, the same shape.

    Returns:
      The loss per element.
    """
    _inputs.same_shape("perceptron_loss", predictor_outputs=predictor_outputs, targets=targets)
    return jnp.maximum(0, -predictor_outputs * targets)


def sparsemax_loss(logits: Any, labels: Any) -> jax.Array:
    r"""Binary sparsemax loss (Blondel et al., 2020): the Fenchel-Young loss of
    sparsemax for two classes, :math:`\operatorname{sparse\_plus}(\pm x)` with the sign
    of the label (``-x`` where ``labels`` is true).

    Args:
      logits: scores, any shape.
      labels: 0 or 1 (or booleans), the same shape.

    Returns:
      The loss per element.

    References:
      Blondel, Martins, Niculae, "Learning with Fenchel-Young losses" (JMLR 2020).
    """
    return jax.nn.sparse_plus(jnp.where(labels, -logits, logits))


@jax.custom_jvp
def _weighted_log_softmax(logits: jax.Array, weights: jax.Array) -> jax.Array:
    # weights * log_softmax(logits), and exactly 0 where a weight is 0 even if the
    # logit is -inf (where 0 * -inf would give nan).
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return jnp.where(weights != 0.0, weights * log_probs, jnp.zeros_like(log_probs))


@_weighted_log_softmax.defjvp
def _weighted_log_softmax_jvp(primals, tangents):
    logits, weights = primals
    logits_dot, weights_dot = tangents
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    out = jnp.where(weights != 0.0, weights * log_probs, jnp.zeros_like(log_probs))
    # d log_softmax = dx - <softmax, dx>; the weights' own term uses log_probs, which is
    # finite wherever the forward value is used.
    expected = jnp.sum(logits_dot * jax.nn.softmax(logits, axis=-1), axis=-1, keepdims=True)
    return out, weights * logits_dot - weights * expected + weights_dot * log_probs


def safe_softmax_cross_entropy(logits: Any, labels: Any) -> jax.Array:
    r"""Softmax cross-entropy that stays finite, gradient included, when some logits are
    ``-inf`` (classes ruled out) and their labels are 0.

    .. math:: \ell = -\sum_i y_i \log \operatorname{softmax}(x)_i,
       \quad 0 \cdot \log 0 := 0

    The plain `softmax_cross_entropy` gives ``nan`` there (``0 * -inf``); this one
    treats those terms as 0 and differentiates through a custom rule that does too.

    Args:
      logits: scores ``[..., num_classes]``; ``-inf`` allowed where the label is 0.
      labels: class probabilities of the same shape.

    Returns:
      The loss per example, ``logits.shape[:-1]``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.safe_softmax_cross_entropy(jnp.array([0.0, -jnp.inf]), jnp.array([1.0, 0.0]))
      Array(-0., dtype=float32)

    References:
      optax ``safe_softmax_cross_entropy`` (same numbers and gradient).
    """
    _inputs.floating("safe_softmax_cross_entropy", logits=logits)
    return -jnp.sum(_weighted_log_softmax(logits, labels), axis=-1)


def _expand_where(where: Any, logits: Any, axis: Axis) -> Any:
    # A mask without the class axis masks whole examples: broadcast it along that axis.
    if where is not None and jnp.ndim(where) != jnp.ndim(logits):
        return jnp.expand_dims(where, axis)  # type: ignore[arg-type]
    return where


def softmax_cross_entropy(logits: Any, labels: Any, axis: Axis = -1, where: Any = None) -> jax.Array:
    r"""Cross-entropy between ``labels`` (class probabilities) and ``softmax(logits)``.

    .. math:: \ell = -\sum_{i \in \text{axis}} y_i \log \operatorname{softmax}(x)_i

    Args:
      logits: unnormalised scores, floating point.
      labels: class probabilities (one-hot or soft), broadcastable to ``logits``.
      axis: the class axis or axes.
      where: optional boolean mask of the classes that count; a masked class is left
        out of the softmax and of the sum.

    Returns:
      The loss per example: ``logits`` without ``axis``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.softmax_cross_entropy(jnp.zeros((1, 4)), jnp.array([[0.0, 1.0, 0.0, 0.0]]))
      Array([1.3862944], dtype=float32)

    References:
      optax ``softmax_cross_entropy``; PyTorch ``cross_entropy`` with probability targets.
    """
    _inputs.floating("softmax_cross_entropy", logits=logits)
    where = _expand_where(where, logits, axis)
    log_probs = jax.nn.log_softmax(logits, axis, where=where)
    return -(labels * log_probs).sum(axis, where=where)


def _as_axis(owner: str, axis: Any, ndim: int) -> int:
    try:
        index = operator.index(axis)
    except TypeError:
        raise ValueError(
            f"{owner}: `axis` must be an int or a tuple of ints, got {type(axis).__name__}"
        ) from None
    if not -ndim <= index < ndim:
        raise ValueError(f"{owner}: axis {index} is out of bounds for logits of rank {ndim}")
    return index % ndim


def softmax_cross_entropy_with_integer_labels(
    logits: Any,
    labels: Any,
    axis: int | tuple[int, ...] = -1,
    where: Any = None,
) -> jax.Array:
    r"""Softmax cross-entropy with the true class given as an index.

    .. math:: \ell = \log \sum_i e^{x_i} - x_{y}

    It equals `softmax_cross_entropy` with one-hot labels, without building them.

    Args:
      logits: unnormalised scores, floating point.
      labels: integer class indices, ``logits`` without ``axis``.
      axis: the class axis; a tuple of axes is read as one flattened class axis (in
        the order the axes appear in ``logits``).
      where: optional boolean mask of the classes that count; an example whose classes
        are all masked gets 0.

    Returns:
      The loss per example, the shape of ``labels``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.softmax_cross_entropy_with_integer_labels(jnp.zeros((1, 4)), jnp.array([1]))
      Array([1.3862944], dtype=float32)

    References:
      optax ``softmax_cross_entropy_with_integer_labels``; PyTorch ``cross_entropy`` with
      class-index targets.
    """
    owner = "softmax_cross_entropy_with_integer_labels"
    _inputs.floating(owner, logits=logits)
    _inputs.integer(owner, labels=labels)
    logits = jnp.asarray(logits)
    where = _expand_where(where, logits, axis)
    if isinstance(axis, tuple):
        class_axes = tuple(_as_axis(owner, a, logits.ndim) for a in axis)
        batch_axes = tuple(a for a in range(logits.ndim) if a not in class_axes)

        def flat(x):
            x = jnp.transpose(x, batch_axes + class_axes)
            return x.reshape((*x.shape[: len(batch_axes)], -1))

        logits = flat(logits)
        where = None if where is None else flat(where)
        axis = len(batch_axes)
    else:
        axis = _as_axis(owner, axis, logits.ndim)
    label_logits = jnp.take_along_axis(logits, jnp.expand_dims(labels, axis), axis=axis).take(0, axis=axis)
    loss = jax.nn.logsumexp(logits, axis=axis, where=where) - label_logits
    if where is not None:
        loss = jnp.where(jnp.any(where, axis), loss, 0.0)
    return loss


def _one_hot(labels: Any, scores: Any) -> jax.Array:
    return jax.nn.one_hot(labels, scores.shape[-1], dtype=scores.dtype)


def multiclass_hinge_loss(scores: Any, labels: Any) -> jax.Array:
    r"""Multiclass hinge loss (Crammer and Singer):
    :math:`\max_i (s_i + 1 - [i = y]) - s_y`.

    Args:
      scores: ``[..., num_classes]``.
      labels: integer classes, ``scores.shape[:-1]``.

    Returns:
      The loss per example.
    """
    one_hot = _one_hot(labels, scores)
    return jnp.max(scores + 1.0 - one_hot, axis=-1) - jnp.sum(scores * one_hot, axis=-1)


def multiclass_perceptron_loss(scores: Any, labels: Any) -> jax.Array:
    r"""Multiclass perceptron loss: :math:`\max_i s_i - s_y`.

    Args:
      scores: ``[..., num_classes]``.
      labels: integer classes, ``scores.shape[:-1]``.

    Returns:
      The loss per example.
    """
    one_hot = _one_hot(labels, scores)
    return jnp.max(scores, axis=-1) - jnp.sum(scores * one_hot, axis=-1)


def _sparsemax_loss_one(scores: jax.Array, label: jax.Array) -> jax.Array:
    # Fenchel-Young loss of sparsemax: <p, s - s_y> + (1 - |p|^2) / 2 with p the
    # projection of the scores on the simplex, written so only the support enters.
    p = _simplex_projection(scores)
    shifted = (scores - scores[label]).at[label].set(0.0)
    return jnp.dot(p, jnp.where(p, shifted, 0.0)) + 0.5 * (1.0 - jnp.dot(p, p))


def multiclass_sparsemax_loss(scores: Any, labels: Any) -> jax.Array:
    r"""Multiclass sparsemax loss (Martins and Astudillo, 2016): the Fenchel-Young loss
    whose prediction is the Euclidean projection of the scores on the simplex.

    .. math:: \ell(s, y) = \langle p, s \rangle - s_y + \tfrac12 (1 - \lVert p \rVert^2),
       \quad p = \operatorname{sparsemax}(s)

    Args:
      scores: ``[batch, num_classes]``.
      labels: integer classes ``[batch]``.

    Returns:
      The loss per example.

    References:
      Martins and Astudillo, "From softmax to sparsemax" (ICML 2016).
    """
    return jax.vmap(_sparsemax_loss_one)(jnp.asarray(scores), labels)


def poly_loss_cross_entropy(
    logits: Any, labels: Any, *, epsilon: Any = 2.0, axis: Axis = -1, where: Any = None
) -> jax.Array:
    r"""PolyLoss (Leng et al., 2022): cross-entropy plus its first polynomial term.

    .. math:: \ell = \mathrm{CE}(x, y) + \epsilon \sum_i y_i (1 - \operatorname{softmax}(x)_i)

    Args:
      logits: unnormalised scores.
      labels: class probabilities, floating point.
      epsilon: the weight of the polynomial term (2.0 in the paper's ImageNet runs;
        0 gives the cross-entropy).
      axis: the class axis or axes.
      where: optional boolean mask of the classes that count.

    Returns:
      The loss per example.

    References:
      Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
      Functions" (ICLR 2022).
    """
    _inputs.floating("poly_loss_cross_entropy", logits=logits, labels=labels)
    p = jax.nn.softmax(logits, axis=axis, where=where)
    one_minus_pt = jnp.sum(labels * (1 - p), axis=axis, where=where)
    return softmax_cross_entropy(logits, labels, axis=axis, where=where) + epsilon * one_minus_pt


def kl_divergence(log_predictions: Any, targets: Any, axis: Axis = -1, where: Any = None) -> jax.Array:
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(t \,\|\, p) = \sum t (\log t - \log p)`,
    with :math:`0 \log 0 := 0`.

    Args:
      log_predictions: :math:`\log p`, floating point.
      targets: :math:`t`, probabilities, floating point.
      axis: the axis or axes summed over.
      where: optional boolean mask of the terms that count.

    Returns:
      The divergence per example.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.kl_divergence(jnp.log(jnp.array([0.5, 0.5])), jnp.array([1.0, 0.0]))
      Array(0.6931472, dtype=float32)

    References:
      Kullback and Leibler, "On Information and Sufficiency" (1951); optax
      ``kl_divergence``; PyTorch ``kl_div(reduction="none")`` summed over ``axis``.
    """
    _inputs.floating("kl_divergence", log_predictions=log_predictions, targets=targets)
    loss = targets * (jnp.where(targets == 0, 0, jnp.log(targets)) - log_predictions)
    return jnp.sum(loss, axis=axis, where=where)


def kl_divergence_with_log_targets(
    log_predictions: Any, log_targets: Any, axis: Axis = -1, where: Any = None
) -> jax.Array:
    r"""`kl_divergence` with the targets given as logarithms:
    :math:`\sum e^{\log t} (\log t - \log p)`.

    Args:
      log_predictions: :math:`\log p`.
      log_targets: :math:`\log t`.
      axis: the axis or axes summed over.
      where: optional boolean mask of the terms that count.

    Returns:
      The divergence per example.
    """
    _inputs.floating(
        "kl_divergence_with_log_targets", log_predictions=log_predictions, log_targets=log_targets
    )
    loss = jnp.exp(log_targets) * (log_targets - log_predictions)
    return jnp.sum(loss, axis=axis, where=where)


def generalized_kl_divergence(
    log_predictions: Any, targets: Any, axis: Axis = -1, where: Any = None
) -> jax.Array:
    r"""Generalized KL divergence for unnormalised measures:
    :math:`\sum t (\log t - \log p) + \sum (p - t)`.

    Convex in :math:`p`; equals `kl_divergence` when both sum to 1.

    Args:
      log_predictions: :math:`\log p`.
      targets: :math:`t`, nonnegative.
      axis: the axis or axes summed over.
      where: optional boolean mask of the terms that count.

    Returns:
      The divergence per example.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.generalized_kl_divergence(jnp.log(jnp.array([0.5, 0.5])), jnp.array([1.0, 1.0]))
      Array(0.38629436, dtype=float32)

    References:
      Lee and Seung, "Algorithms for Non-negative Matrix Factorization" (NeurIPS 2000),
      the divergence :math:`D(t \| p)`.
    """
    kl = kl_divergence(log_predictions, targets, axis=axis, where=where)
    return kl + jnp.sum(jnp.exp(log_predictions) - targets, axis=axis, where=where)


def convex_kl_divergence(log_predictions: Any, targets: Any, axis: Axis = -1, where: Any = None) -> jax.Array:
    """The former name of `generalized_kl_divergence`; deprecated, as in optax (it warns).
    Args:
      log_predictions: see `generalized_kl_divergence`.
      targets: see `generalized_kl_divergence`.
      axis: see `generalized_kl_divergence`.
      where: see `generalized_kl_divergence`.

    Returns:
      `generalized_kl_divergence` of the same arguments.

    Example:
      >>> import warnings, gradtx, jax.numpy as jnp
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore", DeprecationWarning)
      ...     gradtx.losses.convex_kl_divergence(jnp.log(jnp.array([0.5, 0.5])), jnp.array([1.0, 1.0]))
      Array(0.38629436, dtype=float32)

    References:
      optax ``convex_kl_divergence`` (deprecated there too).
    """
    warnings.warn(
        "convex_kl_divergence is deprecated: use generalized_kl_divergence (the same numbers)",
        category=DeprecationWarning,
        stacklevel=2,
    )
    return generalized_kl_divergence(log_predictions, targets, axis=axis, where=where)


def sigmoid_focal_loss(logits: Any, labels: Any, *, alpha: Any = None, gamma: Any = 2.0) -> jax.Array:
    r"""Focal loss (Lin et al., 2017): sigmoid cross-entropy scaled down on examples
    already classified well.

    .. math:: \ell = (1 - p_t)^\gamma \, \mathrm{BCE}(x, y),
       \quad p_t = y \sigma(x) + (1 - y)(1 - \sigma(x))

    and, with ``alpha``, weighted by :math:`\alpha y + (1 - \alpha)(1 - y)`.
    :math:`\log(1 - p_t)` is computed from ``log_sigmoid`` so the weight is accurate for
    confident logits.

    Args:
      logits: scores, floating point.
      labels: targets in [0, 1], the same shape.
      alpha: optional weight of the positive class, in [0, 1].
      gamma: the focusing exponent (0 gives the cross-entropy).

    Returns:
      The loss per element.

    References:
      Lin et al., "Focal Loss for Dense Object Detection" (ICCV 2017).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.sigmoid_focal_loss(jnp.array([0.0]), jnp.array([1.0]))  # log(2) / 4
      Array([0.1732868], dtype=float32)
    """
    _inputs.floating("sigmoid_focal_loss", logits=logits)
    labels = jnp.asarray(labels).astype(jnp.result_type(logits))
    ce = sigmoid_binary_cross_entropy(logits, labels)
    log_p, log_q = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
    # log(1 - p_t) = log((1 - y) p + y q)
    log_miss = jax.nn.logsumexp(
        jnp.stack([log_p, log_q], axis=-1), axis=-1, b=jnp.stack([1 - labels, labels], axis=-1)
    )
    loss = ce * jnp.exp(gamma * log_miss)
    if alpha is None:
        return loss
    return (alpha * labels + (1.0 - alpha) * (1.0 - labels)) * loss


class MaxFun(Protocol):
    """A regularised max: scores ``[n]`` (and extra arguments) to a scalar."""

    def __call__(self, scores: Any, *args: Any, **kwargs: Any) -> Any: ...


def make_fenchel_young_loss(max_fun: MaxFun) -> Callable[..., jax.Array]:
    r"""The Fenchel-Young loss of a regularised max function :math:`\Omega^*`:

    .. math:: \ell(s, t) = \Omega^*(s) - \langle t, s \rangle

    (the constant :math:`\Omega(t)` left out). ``logsumexp`` gives the softmax
    cross-entropy; its gradient in ``s`` is the prediction minus the target.

    Args:
      max_fun: scores ``[n]`` to a scalar; applied over the last axis.

    Returns:
      ``loss(scores, targets, *args, **kwargs)``, one value per row of the last axis.

    References:
      Blondel, Martins, Niculae, "Learning with Fenchel-Young losses" (JMLR 2020).
    """
    vdot_last = jnp.vectorize(jnp.vdot, signature="(n),(n)->()")
    max_last = jnp.vectorize(max_fun, signature="(n)->()")

    def fenchel_young_loss(scores: Any, targets: Any, *args: Any, **kwargs: Any) -> jax.Array:
        return max_last(scores, *args, **kwargs) - vdot_last(targets, scores)

    return fenchel_young_loss


def smooth_labels(labels: Any, alpha: Any, *, axis: Axis = -1, where: Any = None) -> jax.Array:
    r"""Label smoothing (Szegedy et al., 2016): mix the labels with the uniform
    distribution over the classes, :math:`(1 - \alpha) y + \alpha / K`.

    Args:
      labels: class probabilities (usually one-hot), floating point.
      alpha: the smoothing weight in [0, 1].
      axis: the class axis.
      where: optional boolean mask of the classes that count; :math:`K` is then the
        number of unmasked classes of each example.

    Returns:
      The smoothed labels, ``labels``' shape.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.losses.smooth_labels(jnp.array([0.0, 1.0]), 0.1)
      Array([0.05, 0.95], dtype=float32)

    References:
      Szegedy et al., "Rethinking the Inception Architecture for Computer Vision"
      (CVPR 2016).
    """
    _inputs.floating("smooth_labels", labels=labels)
    if where is None:
        classes = jnp.size(labels, axis)  # type: ignore[arg-type]
    else:
        classes = jnp.sum(where, axis, keepdims=True).astype(jnp.result_type(labels))
    return (1.0 - alpha) * labels + alpha / classes
