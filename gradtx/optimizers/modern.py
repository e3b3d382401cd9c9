r"""Optimizers newer than optax, each a `chain` on the chain's channel: SOAP, Adam-mini,
MARS-AdamW and the cautious AdamW and Lion.

Each is checked against a float64 NumPy transcription of its paper's algorithm
(``tests/test_modern.py``).
"""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx.blocks.adaptive import scale_by_rms
from gradtx.blocks.decay import add_decayed_weights
from gradtx.blocks.elementwise import scale_by_lion
from gradtx.blocks.momentum import momentum
from gradtx.blocks.scaling import ScalarOrSchedule, scale_by_learning_rate
from gradtx.blocks.structured import (
    AdamMiniRule,
    cautious_mask,
    mars_correction,
    scale_by_block_rms,
    scale_by_soap,
)
from gradtx.chains import Chain, labelled


@_checks.checked(**_checks.ADAM_FAMILY, weight_decay=_checks.nonnegative)
def soap(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.95,
    b2: Any = 0.95,
    eps: Any = 1e-8,
    weight_decay: Any = 0.01,
    shampoo_beta: Any = None,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    mask: Any = None,
) -> Chain:
    r"""SOAP: Adam run in the eigenbasis of Shampoo's preconditioner.

    .. math:: W \leftarrow W - \eta\,\big(Q_L\,\frac{Q_L^T \hat M Q_R}{\sqrt{\hat V} + \epsilon}\,Q_R^T
              + \lambda W\big)

    (`scale_by_soap` has the whole rule.) The eigenbasis is recomputed every
    ``precondition_frequency`` steps; between refreshes a step costs two matrix
    products per side. The first step only measures (as in the reference code).
    Parameters that are not matrices get AdamW.

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator.
      weight_decay: decoupled weight decay, >= 0.
      shampoo_beta: decay of Shampoo's statistics (default ``b2``).
      precondition_frequency: steps between eigendecompositions.
      max_precond_dim: the largest side preconditioned.
      mask: which parameters to decay.

    Returns:
      ``chain(momentum(b1), scale_by_soap(...), add_decayed_weights(...),
      scale_by_learning_rate(learning_rate))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.soap(0.1, weight_decay=0.0)
      >>> p, g = jnp.zeros((2, 2)), jnp.asarray([[3.0, 0.0], [0.0, -2.0]])
      >>> _, s = opt.update(g, opt.init(p), p)  # the first step measures
      >>> jnp.sign(opt.update(g, s, p)[0]) + 0.0
      Array([[-1.,  0.],
             [ 0.,  1.]], dtype=float32)

    References:
      Vyas et al., 2024, SOAP: improving and stabilizing Shampoo using Adam
      (algorithm 3; defaults of the reference code).
    """
    return labelled(
        "soap",
        momentum(b1),
        scale_by_soap(b2, eps, shampoo_beta, precondition_frequency, max_precond_dim),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
        readout_names={"scale_by_soap.b2": "b2"},
    )


@_checks.checked(**_checks.ADAM_FAMILY, weight_decay=_checks.nonnegative)
def adam_mini(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    rule: Any = None,
    mask: Any = None,
) -> Chain:
    r"""Adam-mini: Adam with one second moment per block of parameters.

    .. math:: W \leftarrow W - \eta\,\big(\hat m / (\sqrt{\hat v_{b}} + \epsilon) + \lambda W\big),
              \qquad v_b = b_2 v_b + (1 - b_2)\,\mathrm{mean}_{i \in b} g_i^2

    The blocks (per head for queries and keys, per output neuron for other matrices,
    per coordinate for embeddings and the output layer, one per vector) come from
    ``rule`` (`AdamMiniRule`); `explain_blocks` shows each parameter's. The second
    moment takes about one number per output neuron instead of one per weight.

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moments, in [0, 1).
      eps: added to the denominator.
      weight_decay: decoupled weight decay, >= 0.
      rule: the partition (default ``AdamMiniRule()``).
      mask: which parameters to decay.

    Returns:
      ``chain(momentum(b1), scale_by_block_rms(b2, eps, rule), add_decayed_weights(...),
      scale_by_learning_rate(learning_rate))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.adam_mini(1.0, b1=0.5, b2=0.5, eps=0.0)
      >>> p = jnp.zeros(2)
      >>> opt.update(jnp.asarray([1.0, 7.0]), opt.init(p), p)[0]  # g / rms(g), one block
      Array([-0.2, -1.4], dtype=float32)

    References:
      Zhang et al., 2024, Adam-mini: use fewer learning rates to gain more
      (algorithm 1).
    """
    return labelled(
        "adam_mini",
        momentum(b1),
        scale_by_block_rms(b2, eps, rule if rule is not None else AdamMiniRule()),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
        readout_names={"scale_by_block_rms.b2": "b2"},
    )


@_checks.checked(**_checks.ADAM_FAMILY, weight_decay=_checks.nonnegative, gamma=_checks.nonnegative)
def mars_adamw(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.95,
    b2: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    gamma: Any = 0.025,
    mask: Any = None,
) -> Chain:
    r"""MARS-AdamW: AdamW on a variance-reduced, clipped gradient.

    .. math:: c_t = \mathrm{clip}_1\big(g_t + \gamma\tfrac{b_1}{1 - b_1}(g_t - g_{t-1})\big),
              \quad W \leftarrow W - \eta\,\big(\hat m_t(c) / (\sqrt{\hat v_t(c)} + \epsilon) + \lambda W\big)

    The reference code keeps 1-D parameters on plain AdamW (its ``optimize_1d=False``);
    here every parameter gets the correction: use `gradtx.path_rules` to choose.

    Args:
      learning_rate: a number >= 0 or a schedule (3e-3 in the paper's GPT-2 runs).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator.
      weight_decay: decoupled weight decay, >= 0.
      gamma: the scale of the gradient correction.
      mask: which parameters to decay.

    Returns:
      ``chain(mars_correction(gamma, b1), momentum(b1), scale_by_rms(b2, eps,
      eps_in_sqrt=False, bias_correction=True), add_decayed_weights(...),
      scale_by_learning_rate(learning_rate))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.mars_adamw(0.1, eps=0.0)
      >>> p = jnp.zeros(2)
      >>> opt.update(jnp.asarray([0.3, -0.4]), opt.init(p), p)[0].round(3)  # Adam's first step
      Array([-0.1,  0.1], dtype=float32)

    References:
      Yuan et al., 2024, MARS: unleashing the power of variance reduction for training
      large models (algorithm 1).
    """
    return labelled(
        "mars_adamw",
        mars_correction(gamma, b1),
        momentum(b1),
        scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
        readout_names={"scale_by_rms.decay": "b2", "mars_correction.b1": ""},
    )


@_checks.checked(**_checks.ADAM_FAMILY, weight_decay=_checks.nonnegative)
def cautious_adamw(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-4,
    mask: Any = None,
) -> Chain:
    r"""C-AdamW: AdamW whose step keeps only the coordinates where it agrees with the
    gradient (rescaled), the weight decay applied unmasked.

    .. math:: u = \hat m / (\sqrt{\hat v} + \epsilon), \quad \phi = \mathbb 1[u \odot g > 0],
              \quad W \leftarrow W - \eta\,\big(u \odot \phi / \mathrm{mean}(\phi) + \lambda W\big)

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator.
      weight_decay: decoupled weight decay, >= 0.
      mask: which parameters to decay.

    Returns:
      ``chain(momentum(b1), scale_by_rms(...), cautious_mask(), add_decayed_weights(...),
      scale_by_learning_rate(learning_rate))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.cautious_adamw(0.1, eps=0.0, weight_decay=0.0)
      >>> p = jnp.zeros(2)
      >>> opt.update(jnp.asarray([3.0, -4.0]), opt.init(p), p)[0].round(3)  # agrees at step 1
      Array([-0.1,  0.1], dtype=float32)

    References:
      Liang et al., 2024, Cautious optimizers (C-AdamW, algorithm 1).
    """
    return labelled(
        "cautious_adamw",
        momentum(b1),
        scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True),
        cautious_mask(),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
        readout_names={"scale_by_rms.decay": "b2", "cautious_mask.eps": ""},
    )


@_checks.checked(
    learning_rate=_checks.rate, b1=_checks.beta, b2=_checks.beta, weight_decay=_checks.nonnegative
)
def cautious_lion(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.99,
    weight_decay: Any = 1e-3,
    mask: Any = None,
) -> Chain:
    r"""C-Lion: Lion's sign step kept only where it agrees with the gradient
    (rescaled), the weight decay applied unmasked.

    Args:
      learning_rate: a number >= 0 or a schedule.
      b1: the interpolation of the sign step.
      b2: decay of the momentum, in [0, 1).
      weight_decay: decoupled weight decay, >= 0.
      mask: which parameters to decay.

    Returns:
      ``chain(scale_by_lion(b1, b2), cautious_mask(), add_decayed_weights(...),
      scale_by_learning_rate(learning_rate))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.cautious_lion(0.1, weight_decay=0.0)
      >>> p = jnp.zeros(2)
      >>> opt.update(jnp.asarray([3.0, -4.0]), opt.init(p), p)[0]
      Array([-0.1,  0.1], dtype=float32)

    References:
      Liang et al., 2024, Cautious optimizers (C-Lion).
    """
    return labelled(
        "cautious_lion",
        scale_by_lion(b1, b2),
        cautious_mask(),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
        readout_names={"cautious_mask.eps": ""},
    )


__all__ = ["adam_mini", "cautious_adamw", "cautious_lion", "mars_adamw", "soap"]
