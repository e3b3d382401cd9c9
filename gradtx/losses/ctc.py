"""Connectionist temporal classification (Graves et al., 2006): the loss of a label
sequence under every alignment of it to the frames, by the forward algorithm.

The forward variables are kept in two arrays per frame, as in Lingvo's and optax's
formulation: ``phi[n]`` is the log-probability of having emitted the first ``n``
labels and now sitting on a blank, ``emit[n]`` of having just emitted label ``n`` (so
``phi`` has one more entry than there are labels). Padded frames carry the previous
frame's variables over unchanged.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx.losses import _inputs


def ctc_loss_with_forward_probs(
    logits: Any,
    logit_paddings: Any,
    labels: Any,
    label_paddings: Any,
    *,
    blank_id: int = 0,
    log_epsilon: Any = -1e5,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""CTC loss per sequence, with the forward log-probabilities it was computed from.

    .. math:: \ell = -\log \sum_{\pi \in \mathcal{B}^{-1}(y)} \prod_t p_t(\pi_t)

    where :math:`\mathcal{B}` removes repeats and then blanks. Two equal labels in a
    row need a blank between them, as the definition requires.

    Args:
      logits: ``[batch, frames, classes]`` unnormalised scores.
      logit_paddings: ``[batch, frames]``, 1.0 on padded frames, 0.0 on real ones.
      labels: ``[batch, max_labels]`` integer labels (never ``blank_id``).
      label_paddings: ``[batch, max_labels]``, 1.0 on padded labels; padding must
        come after the real labels.
      blank_id: the class index of the blank.
      log_epsilon: the log-probability that stands for "impossible" (a large
        negative number rather than ``-inf``, so gradients stay finite).

    Returns:
      ``(loss, logalpha_phi, logalpha_emit)``: the loss ``[batch]``, and the forward
      variables ``[frames, batch, max_labels + 1]`` and ``[frames, batch, max_labels]``.

    References:
      Graves et al., "Connectionist Temporal Classification: Labelling Unsegmented
      Sequence Data with Recurrent Neural Networks" (ICML 2006); optax ``ctc_loss``
      (same numbers).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> # two frames, uniform over 3 classes, label [1]: the paths 11, b1 and 1b, each 1/9
      >>> loss, phi, emit = gradtx.losses.ctc_loss_with_forward_probs(
      ...     jnp.zeros((1, 2, 3)), jnp.zeros((1, 2)), jnp.array([[1]]), jnp.zeros((1, 1)))
      >>> loss  # -log(3/9)
      Array([1.0986123], dtype=float32)
    """
    owner = "ctc_loss"
    _inputs.rank(owner, "logits", logits, 3)
    _inputs.rank(owner, "labels", labels, 2)
    _inputs.same_shape(owner, labels=labels, label_paddings=label_paddings)
    _inputs.same_shape(owner, **{"logits[..., 0]": logits[..., 0], "logit_paddings": logit_paddings})
    batch, _, classes = logits.shape
    if labels.shape[0] != batch:
        raise ValueError(
            f"{owner}: `labels` must have batch size {batch} (as `logits`), got {labels.shape[0]}"
        )
    max_labels = labels.shape[1]

    log_probs = jax.nn.log_softmax(logits)
    label_lengths = max_labels - jnp.sum(label_paddings, axis=1).astype(jnp.int32)
    # repeat[n] = 1 where label n+1 equals label n: no direct step from emit[n] to emit[n+1]
    repeat = jnp.pad((labels[:, :-1] == labels[:, 1:]).astype(jnp.float32), ((0, 0), (0, 1)))

    # per frame, time-major: the blank's log-probability and each label's
    log_blank = jnp.transpose(log_probs[:, :, blank_id : blank_id + 1], (1, 0, 2))
    per_label = jnp.einsum("btk,bnk->btn", log_probs, jax.nn.one_hot(labels, classes))
    log_emit = jnp.transpose(per_label, (1, 0, 2))

    phi0 = jnp.full((batch, max_labels + 1), log_epsilon).at[:, 0].set(0.0)
    emit0 = jnp.full((batch, max_labels), log_epsilon)

    def into_phi(phi, score):
        # reach phi[n + 1] also from emit[n] (phi[0] has no predecessor)
        return jnp.concatenate([phi[:, :1], jnp.logaddexp(phi[:, 1:], score)], axis=-1)

    def frame(carry, inputs):
        phi, emit = carry
        log_emit_t, log_blank_t, pad = inputs
        # phi enriched with "just emitted label n" (not allowed between equal labels)
        reach = into_phi(phi, emit + log_epsilon * repeat)
        next_emit = jnp.logaddexp(reach[:, :-1] + log_emit_t, emit + log_emit_t)
        next_phi = into_phi(reach + log_blank_t, emit + log_blank_t + log_epsilon * (1.0 - repeat))
        pad = pad.reshape((batch, 1))
        next_emit = pad * emit + (1.0 - pad) * next_emit
        next_phi = pad * phi + (1.0 - pad) * next_phi
        return (next_phi, next_emit), (next_phi, next_emit)

    frames = (log_emit, log_blank, jnp.transpose(logit_paddings, (1, 0)))
    _, (logalpha_phi, logalpha_emit) = jax.lax.scan(frame, (phi0, emit0), frames)
    last_phi = into_phi(logalpha_phi[-1], logalpha_emit[-1])
    logalpha_phi = logalpha_phi.at[-1].set(last_phi)
    loss = -jnp.einsum("bn,bn->b", last_phi, jax.nn.one_hot(label_lengths, max_labels + 1))
    return loss, logalpha_phi, logalpha_emit


def ctc_loss(
    logits: Any,
    logit_paddings: Any,
    labels: Any,
    label_paddings: Any,
    *,
    blank_id: int = 0,
    log_epsilon: Any = -1e5,
) -> jax.Array:
    """CTC loss per sequence; `ctc_loss_with_forward_probs` without the forward
    variables (see it for the definition).

    Args:
      logits: ``[batch, frames, classes]`` unnormalised scores.
      logit_paddings: ``[batch, frames]``, 1.0 on padded frames.
      labels: ``[batch, max_labels]`` integer labels.
      label_paddings: ``[batch, max_labels]``, 1.0 on padded labels.
      blank_id: the class index of the blank.
      log_epsilon: the log-probability that stands for "impossible".

    Returns:
      The loss per sequence, ``[batch]``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> logits = jnp.zeros((1, 3, 4))
      >>> loss = gradtx.losses.ctc_loss(logits, jnp.zeros((1, 3)), jnp.array([[1, 2]]), jnp.zeros((1, 2)))
      >>> loss.shape
      (1,)

    References:
      Graves et al. (ICML 2006); optax ``ctc_loss``; PyTorch ``ctc_loss`` (which takes
      log-probabilities and lengths instead of paddings).
    """
    loss, _, _ = ctc_loss_with_forward_probs(
        logits, logit_paddings, labels, label_paddings, blank_id=blank_id, log_epsilon=log_epsilon
    )
    return loss
