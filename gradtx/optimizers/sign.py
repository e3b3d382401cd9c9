r"""Sign-based optimizers: signSGD, Signum, Lion, and Rprop's per-coordinate steps.

``signum = chain(ema(beta, debias=False), scale_by_sign(), lr)``: momentum, then the
sign, then the learning rate.
"""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx.blocks.decay import add_decayed_weights
from gradtx.blocks.elementwise import scale_by_lion, scale_by_rprop, scale_by_sign
from gradtx.blocks.momentum import ema
from gradtx.blocks.scaling import ScalarOrSchedule, scale, scale_by_learning_rate
from gradtx.chains import Chain, labelled
from gradtx.types import MaskOrFn


@_checks.checked(learning_rate=_checks.rate)
def sign_sgd(learning_rate: ScalarOrSchedule) -> Chain:
    r"""signSGD: a step of the learning rate against each gradient's sign.

    .. math:: W \leftarrow W - \eta\, \mathrm{sign}(g)

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).

    Returns:
      ``chain(scale_by_sign(), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.sign_sgd(0.1)
      >>> opt.update(jnp.asarray([-3.0, 2.0]), opt.init(jnp.zeros(2)))[0]
      Array([ 0.1, -0.1], dtype=float32)

    References:
      Bernstein et al., 2018. ``optax.sign_sgd`` (same numbers).
    """
    return labelled("sign_sgd", scale_by_sign(), scale_by_learning_rate(learning_rate))


@_checks.checked(learning_rate=_checks.rate, accumulator_dtype=_checks.state_dtype)
def signum(learning_rate: ScalarOrSchedule, beta: Any = 0.9, accumulator_dtype: Any = None) -> Chain:
    r"""Signum: the sign of the gradient's moving average.

    .. math:: m_t = \beta m_{t-1} + (1 - \beta) g_t, \qquad W \leftarrow W - \eta\, \mathrm{sign}(m_t)

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      beta: decay of the average, in [0, 1].
      accumulator_dtype: dtype of the average.

    Returns:
      ``chain(ema(beta, debias=False), scale_by_sign(), scale_by_learning_rate(lr))``
      (the sign needs no bias correction).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.signum(1e-2)
      >>> opt.update(jnp.array([3.0, -4.0]), opt.init(jnp.zeros(2)))[0]  # -lr * sign(momentum)
      Array([-0.01,  0.01], dtype=float32)

    References:
      Bernstein et al., 2018. ``optax.signum`` (same numbers).
    """
    return labelled(
        "signum",
        ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
        scale_by_sign(),
        scale_by_learning_rate(learning_rate),
        readout_names={"ema.decay": "beta"},
    )


@_checks.checked(
    learning_rate=_checks.rate,
    b1=_checks.beta,
    b2=_checks.beta,
    mu_dtype=_checks.state_dtype,
    weight_decay=_checks.nonnegative,
)
def lion(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.99,
    mu_dtype: Any = None,
    weight_decay: Any = 1e-3,
    mask: MaskOrFn = None,
) -> Chain:
    r"""Lion: the sign of an interpolation of gradient and momentum, with decoupled
    weight decay.

    .. math:: W \leftarrow W - \eta\,\big(\mathrm{sign}((1 - b_1) g_t + b_1 m_{t-1}) + \lambda W\big),
              \qquad m_t = b_2 m_{t-1} + (1 - b_2) g_t

    Args:
      learning_rate: a number >= 0 or a schedule (Lion wants one 3 to 10 times smaller
        than AdamW's).
      b1: the interpolation weight of the momentum, in [0, 1).
      b2: decay of the momentum, in [0, 1).
      mu_dtype: dtype of the momentum.
      weight_decay: ``lambda``, >= 0, or a schedule.
      mask: which parameters to decay.

    Returns:
      ``chain(scale_by_lion(b1, b2), add_decayed_weights(weight_decay, mask), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.lion(0.1, weight_decay=0.0)
      >>> p = jnp.zeros(2)
      >>> opt.update(jnp.asarray([-3.0, 2.0]), opt.init(p), p)[0]
      Array([ 0.1, -0.1], dtype=float32)

    References:
      Chen et al., 2023. ``optax.lion`` (same numbers).
    """
    return labelled(
        "lion",
        scale_by_lion(b1, b2, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@_checks.checked(learning_rate=_checks.rate)
def rprop(
    learning_rate: Any,
    eta_minus: Any = 0.5,
    eta_plus: Any = 1.2,
    min_step_size: Any = 1e-6,
    max_step_size: Any = 50.0,
) -> Chain:
    r"""Rprop: per-coordinate step sizes that grow while the gradient's sign holds and
    shrink when it flips (a full-batch method).

    Args:
      learning_rate: the initial step size, >= 0.
      eta_minus: the shrink factor on a sign flip.
      eta_plus: the growth factor otherwise.
      min_step_size: the smallest step size.
      max_step_size: the largest step size.

    Returns:
      ``chain(scale_by_rprop(...), scale(-1))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.rprop(0.1)
      >>> u, s = opt.update(jnp.array([2.0, -3.0]), opt.init(jnp.zeros(2)))
      >>> u  # optax's form: each step returns the previous step's move, so the first is 0
      Array([-0., -0.], dtype=float32)
      >>> opt.update(jnp.array([1.0, 1.0]), s, jnp.zeros(2))[0]  # the second sign flipped: 0
      Array([-0.1, -0. ], dtype=float32)

    References:
      Riedmiller and Braun, 1993. ``optax.rprop`` (same numbers).
    """
    return labelled(
        "rprop",
        scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size),
        scale(-1.0),
    )
