r"""Adaptive optimizers beyond Adam, each one `chain`: a first moment, one statistic
block, optional weight decay, then the learning rate.

``adabelief = chain(momentum(b1), scale_by_belief_rms(b2, ...), lr)``,
``yogi = chain(momentum(b1), scale_by_yogi_rms(b2, ...), lr)``,
``radam = chain(momentum(b1), rectified(scale_by_rms(b2, ...)), lr)`` and
``adan = chain(momentum(b1), scale_by_adan_rms(b2, b3, ...), add_decayed_weights, lr)``
differ from ``adam`` in their second block only.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax.numpy as jnp

from gradtx import _checks
from gradtx._checks import InputError
from gradtx.blocks.adaptive import scale_by_adam, scale_by_adamax
from gradtx.blocks.clipping import clip_by_block_rms
from gradtx.blocks.decay import add_decayed_weights
from gradtx.blocks.elementwise import scale_by_optimistic_gradient
from gradtx.blocks.factored import scale_by_factored_rms, scale_by_sm3
from gradtx.blocks.momentum import ema
from gradtx.blocks.rectified import scale_by_radam
from gradtx.blocks.scaling import ScalarOrSchedule, scale, scale_by_learning_rate
from gradtx.blocks.statistics import (
    scale_by_adadelta,
    scale_by_adan,
    scale_by_belief,
    scale_by_novograd,
    scale_by_yogi,
)
from gradtx.blocks.trust import scale_by_param_block_rms
from gradtx.chains import Chain, labelled, present_readout_names
from gradtx.types import MaskOrFn


@_checks.checked(**_checks.ADAM_FAMILY, eps_root=_checks.nonnegative, nesterov=_checks.flag)
def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    *,
    nesterov: bool = False,
) -> Chain:
    r"""AdaBelief: Adam whose second moment is the "belief" :math:`(g - m)^2`.

    .. math:: s_t = b_2 s_{t-1} + (1 - b_2)(g_t - m_t)^2 + \epsilon_{root}, \qquad
              W \leftarrow W - \eta\, \hat m_t / (\sqrt{\hat s_t} + \epsilon)

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the belief, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added to the belief at every step.
      nesterov: use NAdam's look-ahead first moment.

    Returns:
      ``chain(momentum(b1), scale_by_belief_rms(b2, eps, eps_root), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.adabelief(1e-3, b1=0.5, b2=0.5)
      >>> s = opt.init(jnp.zeros(1))
      >>> u, s = opt.update(jnp.array([3.0]), s)  # m = 1.5, s = 0.5 * (3 - 1.5)^2: -lr * 3 / 1.5
      >>> u, s = opt.update(jnp.array([3.0]), s)  # m = 2.25, s = 0.5625 + 0.5 * 0.75^2
      >>> [round(float(x), 7) for x in u]  # -lr * 3 / sqrt(1.125): Adam's is -lr for a steady g
      [-0.0028284]

    References:
      Zhuang et al., 2020. ``optax.adabelief`` (same numbers).
    """
    return labelled(
        "adabelief",
        *scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov).transforms,
        scale_by_learning_rate(learning_rate),
    )


@_checks.checked(**_checks.ADAM_FAMILY)
def yogi(learning_rate: ScalarOrSchedule, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-3) -> Chain:
    r"""Yogi: Adam with an additive second moment that cannot grow too fast.

    .. math:: v_t = v_{t-1} - (1 - b_2)\,\mathrm{sign}(v_{t-1} - g_t^2)\, g_t^2, \qquad
              W \leftarrow W - \eta\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    Both moments start at 1e-6 (optax's ``initial_accumulator_value``).

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      b1: decay of the first moment, in [0, 1).
      b2: rate of the second moment's update, in [0, 1).
      eps: added to the denominator, outside the root.

    Returns:
      ``chain(momentum(b1, initial_value=1e-6), scale_by_yogi_rms(b2, eps), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.yogi(1e-2, b1=0.5, b2=0.5)
      >>> u, s = opt.update(jnp.array([3.0]), opt.init(jnp.zeros(1)))
      >>> [round(float(x), 7) for x in u]  # m, v start at 1e-6: -lr * 3.000001 / (sqrt(9.000002) + 1e-3)
      [-0.0099967]

    References:
      Zaheer et al., 2018. ``optax.yogi`` (same numbers).
    """
    return labelled("yogi", *scale_by_yogi(b1, b2, eps).transforms, scale_by_learning_rate(learning_rate))


@_checks.checked(**_checks.ADAM_FAMILY, eps_root=_checks.nonnegative, nesterov=_checks.flag)
def radam(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    threshold: Any = 5.0,
    *,
    nesterov: bool = False,
) -> Chain:
    r"""RAdam: Adam whose adaptive rate is rectified, and off while its variance is
    intractable (the first steps: SGD with momentum).

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      threshold: the smallest :math:`\rho_t` for which the adaptive rate is used.
      nesterov: use NAdam's look-ahead first moment.

    Returns:
      ``chain(momentum(b1), scale_by_rectified_rms(b2, eps, eps_root, threshold),
      scale_by_learning_rate(lr))``, the middle block being
      ``rectified(scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.radam(1e-3)
      >>> u, s = opt.update(jnp.array([3.0, 4.0]), opt.init(jnp.zeros(2)))
      >>> [round(float(x), 7) for x in u]  # rho_1 = 1 < 5: unrectified, -lr * m_hat = -lr * g
      [-0.003, -0.004]

    References:
      Liu et al., 2020. ``optax.radam`` (same numbers).
    """
    return labelled(
        "radam",
        *scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov).transforms,
        scale_by_learning_rate(learning_rate),
        readout_names={"scale_by_rms.decay": "b2"},
    )


@_checks.checked(**_checks.ADAM_FAMILY, eps_root=_checks.nonnegative, weight_decay=_checks.nonnegative)
def adan(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.98,
    b2: Any = 0.92,
    b3: Any = 0.99,
    eps: Any = 1e-8,
    eps_root: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: MaskOrFn = None,
) -> Chain:
    r"""Adan: Nesterov-style momentum through moments of the gradient difference.

    .. math:: W \leftarrow W - \eta\,\big((\hat m_t + (1 - b_2)\hat v_t) /
              (\sqrt{\hat n_t + \epsilon_{root}} + \epsilon) + \lambda W\big)

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the gradient difference's moment, in [0, 1).
      b3: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      weight_decay: ``lambda``, >= 0, or a schedule.
      mask: which parameters to decay.

    Returns:
      ``chain(momentum(b1), scale_by_adan_rms(b2, b3, eps, eps_root),
      add_decayed_weights(weight_decay, mask), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.adan(1e-3)
      >>> u, s = opt.update(jnp.array([3.0, -4.0]), opt.init(jnp.zeros(2)), jnp.zeros(2))
      >>> [round(float(x), 7) for x in u]  # no gradient change at step 1: -lr * sign(g)
      [-0.001, 0.001]

    References:
      Xie et al., 2022. ``optax.adan`` (same numbers).
    """
    return labelled(
        "adan",
        *scale_by_adan(b1, b2, b3, eps, eps_root).transforms,
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@_checks.checked(**_checks.ADAM_FAMILY, weight_decay=_checks.nonnegative)
def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-4,
    mask: MaskOrFn = None,
) -> Chain:
    r"""AdamaxW: Adamax with decoupled weight decay.

    .. math:: W \leftarrow W - \eta\,(\hat m_t / \nu_t + \lambda W)

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the infinity norm, in [0, 1).
      eps: added to ``|g|``.
      weight_decay: ``lambda``, >= 0, or a schedule.
      mask: which parameters to decay.

    Returns:
      ``chain(momentum(b1), scale_by_infinity_norm(b2, eps), add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.adamaxw(1e-3, b1=0.5, weight_decay=0.5)
      >>> p = jnp.array([2.0])
      >>> u, s = opt.update(jnp.array([3.0]), opt.init(p), p)
      >>> [round(float(x), 7) for x in u]  # -lr * (3 / 3 + 0.5 * 2)
      [-0.002]

    References:
      Loshchilov and Hutter, 2019. ``optax.adamaxw`` (same numbers).
    """
    return labelled(
        "adamaxw",
        *scale_by_adamax(b1, b2, eps).transforms,
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
        readout_names={"scale_by_infinity_norm.decay": "b2"},
    )


@_checks.checked(**_checks.ADAM_FAMILY, eps_root=_checks.nonnegative, weight_decay=_checks.nonnegative)
def novograd(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.25,
    eps: Any = 1e-6,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
) -> Chain:
    r"""NovoGrad: a layer-wise second moment, weight decay, then heavy-ball momentum.

    .. math:: \nu_t = b_2 \nu_{t-1} + (1 - b_2)\lVert g_t \rVert^2, \quad
              m_t = b_1 m_{t-1} + g_t / (\sqrt{\nu_t + \epsilon_{root}} + \epsilon) + \lambda W,
              \quad W \leftarrow W - \eta\, m_t

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      b1: the momentum coefficient, in [0, 1).
      b2: decay of the layer-wise second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      weight_decay: ``lambda``, >= 0.

    Returns:
      ``chain(scale_by_layerwise_rms(b2, eps, eps_root), add_decayed_weights(weight_decay),
      trace(b1), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.novograd(1e-3)
      >>> u, s = opt.update(jnp.array([3.0, 4.0]), opt.init(jnp.zeros(2)), jnp.zeros(2))
      >>> [round(float(x), 7) for x in u]  # the layer's gradient over its norm, 5, at step 1
      [-0.0006, -0.0008]

    References:
      Ginsburg et al., 2019. ``optax.novograd`` (same numbers).
    """
    return labelled(
        "novograd",
        *scale_by_novograd(b1, b2, eps, eps_root, weight_decay).transforms,
        scale_by_learning_rate(learning_rate),
        readout_names={"trace.decay": "b1", "add_decayed_weights.weight_decay": "weight_decay"},
    )


@_checks.checked(learning_rate=_checks.rate, eps=_checks.nonnegative, weight_decay=_checks.nonnegative)
def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: Any = 0.9,
    eps: Any = 1e-6,
    weight_decay: Any = 0.0,
    weight_decay_mask: MaskOrFn = None,
) -> Chain:
    r"""AdaDelta: step sizes from the ratio of past update and gradient RMS.

    Args:
      learning_rate: a number >= 0, a schedule, or None. None means no scaling *and no
        sign flip*, optax's meaning: the update is then AdaDelta's ``+u``, uphill; pass
        1.0 for the paper's step.
      rho: the averaging coefficient.
      eps: added inside both roots.
      weight_decay: added to the gradient before the statistics (coupled), >= 0.
      weight_decay_mask: which parameters to decay.

    Returns:
      ``chain(add_decayed_weights(weight_decay, weight_decay_mask), scale_by_adadelta(rho, eps),
      scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.adadelta(1.0, rho=0.5)
      >>> u, s = opt.update(jnp.array([3.0]), opt.init(jnp.zeros(1)), jnp.zeros(1))
      >>> [round(float(x), 7) for x in u]  # -sqrt(0 + 1e-6) / sqrt(0.5 * 9 + 1e-6) * 3
      [-0.0014142]

    References:
      Zeiler, 2012. ``optax.adadelta`` (same numbers).
    """
    return labelled(
        "adadelta",
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps),
        scale_by_learning_rate(learning_rate),
    )


@_checks.checked(
    learning_rate=_checks.rate,
    min_dim_size_to_factor=_checks.nonnegative_count,
    decay_offset=_checks.nonnegative_count,
    multiply_by_parameter_scale=_checks.flag,
    momentum=_checks.decay,
    dtype_momentum=_checks.state_dtype,
    eps=_checks.nonnegative,
    factored=_checks.flag,
)
def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: Any = 0.8,
    decay_offset: Any = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: Any = 1.0,
    momentum: Any = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate: Any = None,
    eps: Any = 1e-30,
    factored: bool = True,
    weight_decay_mask: MaskOrFn = None,
) -> Chain:
    r"""Adafactor: a factored second moment, update clipping, a step relative to the
    parameters' scale, optional momentum and weight decay.

    .. math:: u = \mathrm{clip}_{RMS \le d}\big(g / \sqrt{\hat V_t}\big)\cdot \eta
              \cdot \max(\mathrm{RMS}(W), 10^{-3}), \qquad W \leftarrow W - u

    Args:
      learning_rate: a number >= 0, a schedule, or None (no scaling).
      min_dim_size_to_factor: the smallest second-largest axis whose moment is factored.
      decay_rate: the exponent of the increasing decay :math:`1 - (t + 1)^{-0.8}`.
      decay_offset: subtracted from the step in that decay.
      multiply_by_parameter_scale: scale the step by the parameters' RMS.
      clipping_threshold: the largest RMS of the scaled update per leaf, or None.
      momentum: an EMA coefficient for the update (not debiased), or None.
      dtype_momentum: dtype of that EMA (``"8bit"``, ``"4bit"`` or a `gradtx.quantized`
        stores it quantized).
      weight_decay_rate: added as ``rate * W`` after the rest, or None.
      eps: added to the squared gradient.
      factored: factor the second moment of matrices.
      weight_decay_mask: which parameters to decay.

    Returns:
      ``chain(scale_by_factored_rms(...), clip_by_block_rms(...), scale_by_learning_rate(lr,
      flip_sign=False), scale_by_param_block_rms(), ema(momentum, debias=False),
      add_decayed_weights(...), scale(-1))``, each optional block present when enabled.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.adafactor(0.1)
      >>> p = jnp.array([2.0, -2.0])  # too small to factor: one v per element
      >>> opt.update(jnp.array([3.0, 4.0]), opt.init(p), p)[0]  # v = g^2 at step 1: -lr * rms(p) * sign(g)
      Array([-0.2, -0.2], dtype=float32)

    References:
      Shazeer and Stern, 2018. ``optax.adafactor`` (same numbers).
    """
    blocks: list[Any] = [
        scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)
    ]
    if clipping_threshold is not None:
        blocks.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        blocks.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        blocks.append(scale_by_param_block_rms())
    if momentum is not None:
        blocks.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        blocks.append(add_decayed_weights(weight_decay_rate, weight_decay_mask))
    blocks.append(scale(-1))
    names = {
        "scale_by_factored_rms.step_offset": "decay_offset",
        "scale_by_factored_rms.epsilon": "eps",
        "clip_by_block_rms.threshold": "clipping_threshold",
        "ema.decay": "momentum",
        "add_decayed_weights.weight_decay": "weight_decay_rate",
    }
    return labelled("adafactor", *blocks, readout_names=present_readout_names(names, blocks))


@_checks.checked(learning_rate=_checks.rate, momentum=_checks.decay)
def sm3(learning_rate: Any, momentum: Any = 0.9) -> Chain:
    r"""SM3: AdaGrad with per-axis accumulators (sub-linear memory), then momentum.

    Args:
      learning_rate: a number >= 0 (optax takes no schedule here; gradtx's ``scale``
        accepts one).
      momentum: decay of the momentum, in [0, 1].

    Returns:
      ``chain(scale_by_sm3(momentum), scale(-learning_rate))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.sm3(1.0, momentum=0.5)
      >>> opt.update(jnp.array([3.0, -4.0]), opt.init(jnp.zeros(2)))[0]  # -(1 - 0.5) * g / sqrt(g^2)
      Array([-0.5,  0.5], dtype=float32)

    References:
      Anil et al., 2019. ``optax.sm3`` (same numbers).
    """
    lr: Any = learning_rate
    if callable(lr):
        schedule: Any = lr

        def step(count: Any) -> Any:
            return -schedule(count)

        return labelled("sm3", scale_by_sm3(momentum), scale(step), readout_names=_SM3)
    return labelled("sm3", scale_by_sm3(momentum), scale(-lr), readout_names=_SM3)


# sm3's learning rate is the negated step size of its ``scale`` block: not reported.
_SM3 = {"scale_by_sm3.b1": "momentum"}


@_checks.checked(
    **_checks.ADAM_FAMILY, eps_root=_checks.nonnegative, mu_dtype=_checks.state_dtype, nesterov=_checks.flag
)
def optimistic_adam_v2(
    learning_rate: ScalarOrSchedule,
    *,
    alpha: Any = 1.0,
    beta: Any = 1.0,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
) -> Chain:
    r"""Optimistic Adam: Adam's scaled step, extrapolated by its last change.

    .. math:: s_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon), \qquad
              W \leftarrow W - \eta\,\big((\alpha + \beta) s_t - \beta s_{t-1}\big)

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      alpha: the weight of the current step.
      beta: the weight of its change (the optimism).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      mu_dtype: dtype of the first moment.
      nesterov: use NAdam's look-ahead first moment (True, as optax).

    Returns:
      ``chain(scale_by_adam(...), scale_by_optimistic_gradient(alpha, beta), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.optimistic_adam_v2(1e-3, b1=0.5, b2=0.5)
      >>> u, s = opt.update(jnp.array([3.0]), opt.init(jnp.zeros(1)))
      >>> [round(float(x), 7) for x in u]  # -lr * alpha * NAdam's 4 / 3 (see `nadam`) at step 1
      [-0.0013333]

    References:
      Daskalakis et al., 2018, "Training GANs with optimism". ``optax.optimistic_adam_v2``
      (same numbers).
    """
    return labelled(
        "optimistic_adam_v2",
        *scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov).transforms,
        scale_by_optimistic_gradient(alpha, beta),
        scale_by_learning_rate(learning_rate),
        readout_names={"scale_by_rms.decay": "b2"},
    )


@_checks.checked(
    **_checks.ADAM_FAMILY, eps_root=_checks.nonnegative, mu_dtype=_checks.state_dtype, nesterov=_checks.flag
)
def optimistic_adam(
    learning_rate: float,
    optimism: Any = None,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
) -> Chain:
    r"""Optimistic Adam, optax's first form (deprecated there in favour of
    `optimistic_adam_v2`, and here too: it warns, as optax's does).

    ``learning_rate`` and ``optimism`` are the optimistic gradient's ``alpha`` and
    ``beta``, followed by a sign flip: the step is
    ``-((lr + optimism) s_t - optimism s_{t-1})``.

    Args:
      learning_rate: a number >= 0 (no schedule, as optax).
      optimism: ``beta`` (default: ``learning_rate``).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      mu_dtype: dtype of the first moment.
      nesterov: use NAdam's look-ahead first moment.

    Returns:
      ``chain(scale_by_adam(...), scale_by_optimistic_gradient(lr, optimism), scale_by_learning_rate(1.0))``.

    Example:
      >>> import gradtx, jax.numpy as jnp, warnings
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore", DeprecationWarning)
      ...     opt = gradtx.optimistic_adam(1e-3, b1=0.5, b2=0.5)
      >>> u, s = opt.update(jnp.array([3.0]), opt.init(jnp.zeros(1)))
      >>> [round(float(x), 7) for x in u]  # -lr * NAdam's 4 / 3 (the optimism starts at step 2)
      [-0.0013333]

    References:
      ``optax.optimistic_adam`` (same numbers and warning).
    """
    warnings.warn(
        "`optimistic_adam` is deprecated, please use `optimistic_adam_v2` instead.",
        category=DeprecationWarning,
        stacklevel=2,
    )
    if callable(learning_rate):
        raise InputError(
            "optimistic_adam",
            "learning_rate cannot be a schedule here (as in optax); optimistic_adam_v2 takes one.",
        )
    if optimism is None:
        optimism = learning_rate
    return labelled(
        "optimistic_adam",
        *scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov).transforms,
        scale_by_optimistic_gradient(learning_rate, optimism),
        scale_by_learning_rate(1.0),
        readout_names={"scale_by_rms.decay": "b2"},
    )
