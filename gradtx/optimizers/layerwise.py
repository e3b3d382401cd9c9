r"""Layer-wise optimizers: each leaf's step scaled by the ratio of its parameter's norm
to its update's (LARS, LAMB), or kept at a fixed angle (Fromage).

``lamb = chain(momentum, scale_by_rms, add_decayed_weights, scale_by_trust_ratio, lr)``:
Adam's scaling, weight decay, the trust ratio, then the learning rate.
"""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx.blocks.adaptive import scale_by_adam
from gradtx.blocks.decay import add_decayed_weights, shrink_weights
from gradtx.blocks.masking import masked
from gradtx.blocks.momentum import trace
from gradtx.blocks.scaling import ScalarOrSchedule, scale_by_learning_rate
from gradtx.blocks.trust import scale_by_trust_ratio
from gradtx.chains import Chain, labelled
from gradtx.types import MaskOrFn


@_checks.checked(**_checks.ADAM_FAMILY, eps_root=_checks.nonnegative, weight_decay=_checks.nonnegative)
def lamb(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-6,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    mask: MaskOrFn = None,
) -> Chain:
    r"""LAMB: Adam's step plus weight decay, rescaled per layer by the trust ratio.

    .. math:: r_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon) + \lambda W, \qquad
              W \leftarrow W - \eta\, \frac{\lVert W \rVert}{\lVert r_t \rVert}\, r_t

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      weight_decay: ``lambda``, >= 0, or a schedule.
      mask: which parameters to decay.

    Returns:
      ``chain(momentum(b1), scale_by_rms(b2, ...), add_decayed_weights(weight_decay, mask),
      scale_by_trust_ratio(), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.lamb(1e-3, b1=0.5, b2=0.5)
      >>> p = jnp.array([3.0, 4.0])
      >>> u, s = opt.update(jnp.array([3.0, -4.0]), opt.init(p), p)  # Adam's step: sign(g)
      >>> [round(float(x), 7) for x in u]  # times |p| / |sign(g)| = 5 / sqrt(2)
      [-0.0035355, 0.0035355]

    References:
      You et al., 2020, "Large batch optimization for deep learning". ``optax.lamb``
      (same numbers).
    """
    return labelled(
        "lamb",
        *scale_by_adam(b1, b2, eps, eps_root).transforms,
        add_decayed_weights(weight_decay, mask),
        scale_by_trust_ratio(),
        scale_by_learning_rate(learning_rate),
        readout_names={"scale_by_rms.decay": "b2", "scale_by_trust_ratio.eps": ""},
    )


@_checks.checked(
    learning_rate=_checks.rate,
    weight_decay=_checks.nonnegative,
    eps=_checks.nonnegative,
    momentum=_checks.decay,
    nesterov=_checks.flag,
)
def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: Any = 0.0,
    weight_decay_mask: MaskOrFn = True,
    trust_coefficient: Any = 0.001,
    eps: Any = 0.0,
    trust_ratio_mask: MaskOrFn = True,
    momentum: Any = 0.9,
    nesterov: bool = False,
) -> Chain:
    r"""LARS: SGD with momentum whose per-layer step is scaled by the trust ratio.

    .. math:: r = g + \lambda W, \quad
              v_t = \mu v_{t-1} - \eta\, c\, \frac{\lVert W \rVert}{\lVert r \rVert + \epsilon}\, r,
              \quad W \leftarrow W + v_t

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      weight_decay: ``lambda``, >= 0, or a schedule.
      weight_decay_mask: which parameters to decay (all by default).
      trust_coefficient: ``c``.
      eps: added to the update's norm.
      trust_ratio_mask: which parameters get the trust ratio (all by default; often not
        biases and norms).
      momentum: ``mu``, in [0, 1].
      nesterov: Nesterov's look-ahead.

    Returns:
      ``chain(add_decayed_weights(weight_decay, weight_decay_mask),
      masked(scale_by_trust_ratio(trust_coefficient=c, eps=eps), trust_ratio_mask),
      scale_by_learning_rate(lr), trace(momentum, nesterov))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.lars(0.1)
      >>> p = jnp.array([3.0, 4.0])
      >>> u, s = opt.update(jnp.array([6.0, 8.0]), opt.init(p), p)
      >>> [round(float(x), 7) for x in u]  # -lr * 0.001 * |p| / |g| * g, the first momentum step
      [-0.0003, -0.0004]

    References:
      You et al., 2017, "Large batch training of convolutional networks". ``optax.lars``
      (same numbers).
    """
    return labelled(
        "lars",
        add_decayed_weights(weight_decay, weight_decay_mask),
        masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps), trust_ratio_mask),
        scale_by_learning_rate(learning_rate),
        trace(momentum, nesterov),
        readout_names={"trace.decay": "momentum"},
    )


@_checks.checked(learning_rate=_checks.rate)
def fromage(learning_rate: ScalarOrSchedule, min_norm: Any = 1e-6) -> Chain:
    r"""Fromage: a step of relative size ``learning_rate`` per layer, then a rescaling
    that keeps the parameters' norm from growing.

    .. math:: W \leftarrow \frac{1}{\sqrt{1 + \eta^2}}
              \Big(W - \eta\, \frac{\lVert W \rVert}{\lVert g \rVert}\, g\Big)

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      min_norm: the smallest norm used in the trust ratio.

    Returns:
      ``chain(scale_by_trust_ratio(min_norm), scale_by_learning_rate(lr / sqrt(1 + lr**2)),
      shrink_weights(1 / sqrt(1 + lr**2)))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.fromage(0.75)  # 1 / sqrt(1 + lr^2) = 0.8
      >>> p = jnp.array([3.0, 4.0])
      >>> u, s = opt.update(jnp.array([6.0, 8.0]), opt.init(p), p)
      >>> [round(float(x), 6) for x in u]  # -lr * 0.8 * g * |p| / |g| + (0.8 - 1) * p
      [-2.4, -3.2]

    References:
      Bernstein et al., 2020, "On the distance between two neural networks and the
      stability of learning". ``optax.fromage`` (same numbers).
    """
    if callable(learning_rate):
        lr = learning_rate

        def multiplier(count: Any) -> Any:
            return 1 / (1 + lr(count) ** 2) ** 0.5

        def scaled_rate(count: Any) -> Any:
            return multiplier(count) * lr(count)

        scaled: Any = scaled_rate
        kept: Any = multiplier
    else:
        kept = 1 / (1 + learning_rate**2) ** 0.5
        scaled = learning_rate * kept
    return labelled(
        "fromage", scale_by_trust_ratio(min_norm), scale_by_learning_rate(scaled), shrink_weights(kept)
    )
