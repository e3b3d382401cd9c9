"""The Adam family, each one `chain`: momentum, then RMS scaling, then the learning rate.

``adam = chain(momentum(b1), scale_by_rms(b2, eps, eps_in_sqrt=False,
bias_correction=True), scale_by_learning_rate(lr))``: the second moment is computed
from the gradient the momentum saw (see `gradtx.momentum`), so the composition is
Adam exactly, not an RMS of the momentum.
"""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx._checks import InputError
from gradtx.base import Transform
from gradtx.blocks.adaptive import scale_by_adam, scale_by_adamax, scale_by_amsgrad, scale_by_rms
from gradtx.blocks.decay import add_decayed_weights
from gradtx.blocks.momentum import momentum, scale_by_bias_correction
from gradtx.blocks.scaling import ScalarOrSchedule, scale_by_learning_rate
from gradtx.chains import Chain, labelled

_B2 = {"scale_by_rms.decay": "b2"}


def _adam_scaling(
    name: str,
    b1: Any,
    b2: Any,
    eps: Any,
    eps_root: Any,
    mu_dtype: Any,
    nesterov: bool,
    nu_dtype: Any,
    debias_step_size: bool,
) -> list[Transform]:
    if not debias_step_size:
        return list(
            scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype).transforms
        )
    if nesterov:
        raise InputError(name, "debias_step_size=True is not defined with nesterov=True")
    return [
        momentum(b1, debias=False, mu_dtype=mu_dtype),
        scale_by_rms(b2, eps, eps_in_sqrt=False, eps_root=eps_root, nu_dtype=nu_dtype),
        scale_by_bias_correction(b1),
        scale_by_bias_correction(b2, power=-0.5),
    ]


@_checks.checked(
    **_checks.ADAM_FAMILY,
    eps_root=_checks.nonnegative,
    mu_dtype=_checks.state_dtype,
    nesterov=_checks.flag,
    nu_dtype=_checks.state_dtype,
    debias_step_size=_checks.flag,
)
def adam(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
    debias_step_size: bool = False,
) -> Chain:
    r"""Adam: momentum, then RMS scaling of the same gradient, then the learning rate.

    .. math::
        m_t = b_1 m_{t-1} + (1 - b_1) g_t, \quad v_t = b_2 v_{t-1} + (1 - b_2) g_t^2,

        \hat m_t = m_t / (1 - b_1^t), \quad \hat v_t = v_t / (1 - b_2^t), \quad
        W \leftarrow W - \eta\, \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)

    With ``debias_step_size=True``, the step-size form of :ref:`the study notes <update-rules>`:
    :math:`\eta_t = \eta \sqrt{1 - b_2^t} / (1 - b_1^t)`,
    :math:`W \leftarrow W - \eta_t\, m_t / (\sqrt{v_t} + \epsilon)`. It equals the default
    with ``eps`` replaced by ``eps / sqrt(1 - b2**t)``: early on its eps is larger
    (about 31.6 times at t = 1 with b2 = 0.999), later the same.

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      mu_dtype: dtype of the first moment (default: the parameters').
      nesterov: use NAdam's look-ahead first moment.
      nu_dtype: dtype of the second moment (default: the parameters'); not in optax.
      debias_step_size: the :doc:`study notes' </study_notes>` step-size form (see above).

    Returns:
      ``chain(momentum(b1), scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True),
      scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.adam(1e-3, b1=0.5, b2=0.5)
      >>> u, s = opt.update(jnp.full(2, 3.0), opt.init(jnp.zeros(2)))
      >>> u  # -lr * m_hat / sqrt(v_hat) = -lr * sign(g) at step 1
      Array([-0.001, -0.001], dtype=float32)

    References:
      Kingma and Ba, 2015. ``optax.adam`` (same numbers); ``torch.optim.Adam`` equals
      the default form.
    """
    return labelled(
        "nadam" if nesterov else "adam",
        *_adam_scaling("adam", b1, b2, eps, eps_root, mu_dtype, nesterov, nu_dtype, debias_step_size),
        scale_by_learning_rate(learning_rate),
        readout_names=_B2,
    )


@_checks.checked(
    **_checks.ADAM_FAMILY,
    eps_root=_checks.nonnegative,
    mu_dtype=_checks.state_dtype,
    weight_decay=_checks.nonnegative,
    nesterov=_checks.flag,
    nu_dtype=_checks.state_dtype,
    debias_step_size=_checks.flag,
)
def adamw(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: Any = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
    debias_step_size: bool = False,
) -> Chain:
    r"""AdamW: Adam with decoupled weight decay, scaled by the learning rate.

    .. math::
        W \leftarrow W - \eta\, \big(\hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)
        + \lambda W\big)

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      mu_dtype: dtype of the first moment.
      weight_decay: ``lambda``, >= 0, or a schedule.
      mask: which parameters to decay (a boolean pytree, or a callable of the params).
      nesterov: use NAdam's look-ahead first moment (NAdamW).
      nu_dtype: dtype of the second moment; not in optax.
      debias_step_size: the step-size form of the bias corrections of the
        :doc:`study notes </study_notes>` (see `adam`).

    Returns:
      ``chain(momentum(b1), scale_by_rms(b2, ...), add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.adamw(1e-3, b1=0.5, b2=0.5, weight_decay=0.5)
      >>> p = jnp.full(2, 2.0)
      >>> opt.update(jnp.full(2, 3.0), opt.init(p), p)[0]  # -lr * (1 + 0.5 * 2)
      Array([-0.002, -0.002], dtype=float32)

    References:
      Loshchilov and Hutter, 2019. ``optax.adamw`` (same numbers);
      ``torch.optim.AdamW`` equals it.
    """
    return labelled(
        "nadamw" if nesterov else "adamw",
        *_adam_scaling("adamw", b1, b2, eps, eps_root, mu_dtype, nesterov, nu_dtype, debias_step_size),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
        readout_names=_B2,
    )


@_checks.checked(
    **_checks.ADAM_FAMILY,
    eps_root=_checks.nonnegative,
    mu_dtype=_checks.state_dtype,
    nesterov=_checks.flag,
    nu_dtype=_checks.state_dtype,
)
def nadam(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> Chain:
    r"""NAdam: `adam` with Dozat's Nesterov look-ahead first moment.

    .. math:: \bar m_t = b_1 m_t / (1 - b_1^{t+1}) + (1 - b_1)\, g_t / (1 - b_1^t), \quad
              W \leftarrow W - \eta\, \bar m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      mu_dtype: dtype of the first moment.
      nesterov: True (optax's ``nadam`` is ``adam`` with this default).
      nu_dtype: dtype of the second moment; not in optax.

    Returns:
      ``chain(momentum(b1, nesterov=True), scale_by_rms(b2, ...), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.nadam(1e-3, b1=0.5, b2=0.5)
      >>> u, s = opt.update(jnp.array([3.0]), opt.init(jnp.zeros(1)))
      >>> [round(float(x), 7) for x in u]  # m_hat = 0.5 * 1.5 / 0.75 + 0.5 * 3 / 0.5, v_hat = 9
      [-0.0013333]

    References:
      Dozat, 2016. ``optax.nadam`` (same numbers).
    """
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype)


@_checks.checked(
    **_checks.ADAM_FAMILY,
    eps_root=_checks.nonnegative,
    mu_dtype=_checks.state_dtype,
    weight_decay=_checks.nonnegative,
    nesterov=_checks.flag,
    nu_dtype=_checks.state_dtype,
)
def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: Any = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> Chain:
    r"""NAdamW: `adamw` with Dozat's Nesterov look-ahead first moment.

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      mu_dtype: dtype of the first moment.
      weight_decay: >= 0, or a schedule.
      mask: which parameters to decay.
      nesterov: True (optax's ``nadamw`` is ``adamw`` with this default).
      nu_dtype: dtype of the second moment; not in optax.

    Returns:
      ``chain(momentum(b1, nesterov=True), scale_by_rms(b2, ...), add_decayed_weights(...),
      scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.nadamw(1e-3, b1=0.5, b2=0.5, weight_decay=0.5)
      >>> p = jnp.array([2.0])
      >>> u, s = opt.update(jnp.array([3.0]), opt.init(p), p)
      >>> [round(float(x), 7) for x in u]  # -lr * (4 / 3 + 0.5 * 2), NAdam's step as in `nadam`
      [-0.0023333]

    References:
      Dozat, 2016; Loshchilov and Hutter, 2019. ``optax.nadamw`` (same numbers).
    """
    return adamw(
        learning_rate,
        b1,
        b2,
        eps,
        eps_root,
        mu_dtype,
        weight_decay,
        mask,
        nesterov=nesterov,
        nu_dtype=nu_dtype,
    )


@_checks.checked(**_checks.ADAM_FAMILY, mu_dtype=_checks.state_dtype, nu_dtype=_checks.state_dtype)
def adamax(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> Chain:
    r"""Adamax: Adam with the infinity norm in place of the RMS.

    .. math:: \nu_t = \max(|g_t| + \epsilon, b_2 \nu_{t-1}), \qquad
              W \leftarrow W - \eta\, \hat m_t / \nu_t

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the infinity norm, in [0, 1).
      eps: added to ``|g|``.
      mu_dtype: dtype of the first moment; not in optax's ``adamax``.
      nu_dtype: dtype of the infinity norm; not in optax.

    Returns:
      ``chain(momentum(b1), scale_by_infinity_norm(b2, eps), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.adamax(2e-3, b1=0.5)
      >>> opt.update(jnp.array([3.0, -4.0]), opt.init(jnp.zeros(2)))[0]  # -lr * m_hat / max|g|
      Array([-0.002,  0.002], dtype=float32)

    References:
      Kingma and Ba, 2015, section 7.1. ``optax.adamax`` (same numbers).
    """
    return labelled(
        "adamax",
        *scale_by_adamax(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype).transforms,
        scale_by_learning_rate(learning_rate),
        readout_names={"scale_by_infinity_norm.decay": "b2"},
    )


@_checks.checked(
    **_checks.ADAM_FAMILY,
    eps_root=_checks.nonnegative,
    mu_dtype=_checks.state_dtype,
    bias_correction_mu=_checks.flag,
    bias_correction_nu=_checks.flag,
    nu_dtype=_checks.state_dtype,
)
def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype: Any = None,
) -> Chain:
    r"""AMSGrad: Adam dividing by the running maximum of the second moment.

    .. math:: \tilde v_t = \max(\tilde v_{t-1}, \hat v_t), \qquad
              W \leftarrow W - \eta\, \hat m_t / (\sqrt{\tilde v_t + \epsilon_{root}} + \epsilon)

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      mu_dtype: dtype of the first moment.
      bias_correction_mu: debias the first moment (False matches the paper).
      bias_correction_nu: debias the second moment before the maximum.
      nu_dtype: dtype of the second moment and its maximum; not in optax.

    Returns:
      ``chain(momentum(b1), scale_by_rms(b2, ..., amsgrad=True), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.amsgrad(1e-3, b1=0.5, b2=0.5)
      >>> s = opt.init(jnp.zeros(1))
      >>> u, s = opt.update(jnp.array([4.0]), s)
      >>> u, s = opt.update(jnp.array([0.0]), s)  # m_hat = 1 / 0.75, max(v_hat) = max(16, 4 / 0.75)
      >>> [round(float(x), 7) for x in u]  # -lr * (4 / 3) / 4 (Adam: -5.774e-4)
      [-0.0003333]

    References:
      Reddi et al., 2018. ``optax.amsgrad`` (same numbers).
    """
    return labelled(
        "amsgrad",
        *scale_by_amsgrad(
            b1, b2, eps, eps_root, mu_dtype, bias_correction_mu, bias_correction_nu, nu_dtype=nu_dtype
        ).transforms,
        scale_by_learning_rate(learning_rate),
        readout_names=_B2,
    )
