"""``torch.optim``'s optimizers as labelled gradtx chains, with PyTorch's arguments,
defaults and numbers (see `gradtx.torch`).

One file over 600 lines on purpose: twelve presets in ``torch.optim``'s order, each a
short chain with the docstring that says how it differs from the optax-named
optimizer, sharing the helpers at the top (maximize, coupled and decoupled weight
decay, PyTorch's argument checks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradtx import _checks
from gradtx._checks import InputError
from gradtx.base import Transform
from gradtx.blocks.adaptive import scale_by_infinity_norm, scale_by_rms, scale_by_rss, scale_by_stddev
from gradtx.blocks.decay import add_decayed_weights
from gradtx.blocks.momentum import momentum as first_moment
from gradtx.blocks.momentum import trace
from gradtx.blocks.scaling import scale, scale_by_learning_rate
from gradtx.blocks.statistics import scale_by_adadelta
from gradtx.chains import Chain, labelled, present_readout_names
from gradtx.schedules.compose import multiply_schedules
from gradtx.schedules.decay import concrete, inverse_time_decay
from gradtx.torch.lr_scheduler import asgd_learning_rate
from gradtx.torch.moments import (
    adam_moments,
    dampened_trace,
    factored_relative_rms,
    nadam_moments,
    rectified_rms,
)
from gradtx.torch.parameters import multiply_weights, params_average, rprop_steps

_LR = {"scale_by_learning_rate.learning_rate": "lr", "multiply_weights.learning_rate": ""}


def _betas(owner: str, betas: Sequence[Any]) -> tuple[Any, Any]:
    if len(betas) != 2:
        raise InputError(owner, f"betas must be a pair (beta1, beta2), got {betas!r}")
    _checks.check(owner, _checks.beta, **{"betas[0]": betas[0], "betas[1]": betas[1]})
    return betas[0], betas[1]


def _nonzero(value: Any) -> bool:
    """Whether a block is needed: PyTorch skips it for exactly 0 (a schedule or a traced
    value may be anything)."""
    return not concrete(value) or value != 0


def _head(maximize: bool, weight_decay: Any = 0.0) -> list[Transform]:
    """PyTorch's first lines: negate the gradient to maximize, add ``wd * p`` (coupled)."""
    blocks: list[Transform] = []
    if maximize:
        blocks.append(scale(-1.0))
    if _nonzero(weight_decay):
        blocks.append(add_decayed_weights(weight_decay))
    return blocks


def _tail(lr: Any, decoupled_weight_decay: Any = 0.0, keep: bool = False) -> list[Transform]:
    """The learning rate, then decoupled weight decay (``p *= 1 - lr * wd``), kept even
    at 0 with ``keep`` (AdamW: its decay is then data, changed without a recompile)."""
    blocks: list[Transform] = [scale_by_learning_rate(lr)]
    if keep or _nonzero(decoupled_weight_decay):
        blocks.append(multiply_weights(lr, decoupled_weight_decay))
    return blocks


def SGD(
    lr: Any = 1e-3,
    momentum: Any = 0.0,
    dampening: Any = 0.0,
    weight_decay: Any = 0.0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
    foreach: bool | None = None,
    differentiable: bool = False,
    fused: bool | None = None,
) -> Chain:
    r"""``torch.optim.SGD``: weight decay added to the gradient, then the momentum buffer.

    .. math:: g \leftarrow g + \lambda W, \quad b_1 = g_1,\ b_t = \mu b_{t-1} + (1 - d) g_t,
              \quad W \leftarrow W - \eta\, b_t \ (\text{or } g_t + \mu b_t)

    Args:
      lr: the learning rate (1e-3), or a schedule.
      momentum: ``mu`` (0: plain SGD), or a schedule.
      dampening: ``d``; from the second step the gradient is scaled by ``1 - d``.
      weight_decay: coupled L2 decay ``lambda`` (0).
      nesterov: Nesterov momentum (needs momentum > 0 and dampening 0).
      maximize: ascend instead of descend.
      foreach: ignored (PyTorch's kernel choice).
      differentiable: ignored.
      fused: ignored.

    Returns:
      ``torch.SGD = chain([scale(-1)], [add_decayed_weights(wd)], [trace(mu)], scale_by_learning_rate(lr))``.
      ``optax.sgd`` has no dampening and no weight decay; its momentum equals this one.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.torch.SGD(lr=0.1, momentum=0.9)
      >>> opt.update(jnp.ones(2), opt.init(jnp.zeros(2)))[0]
      Array([-0.1, -0.1], dtype=float32)

    References:
      ``torch.optim.SGD``.
    """
    del foreach, differentiable, fused
    _checks.check(
        "SGD", _checks.nonnegative, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay
    )
    if nesterov and (not _nonzero(momentum) or _nonzero(dampening)):
        raise InputError("SGD", "nesterov=True requires a momentum and zero dampening (as in PyTorch)")
    blocks = _head(maximize, weight_decay)
    if _nonzero(momentum):
        if _nonzero(dampening):
            blocks.append(dampened_trace(momentum, dampening, nesterov))
        else:
            blocks.append(trace(momentum, nesterov))
    names = {**_LR, "trace.decay": "momentum", "dampened_trace.decay": "momentum"}
    blocks += _tail(lr)
    return labelled("torch.SGD", *blocks, readout_names=present_readout_names(names, blocks))


def _adam_core(b1: Any, b2: Any, eps: Any, amsgrad: bool) -> list[Transform]:
    return [adam_moments(b1, b2, eps, amsgrad)]


_ADAM_NAMES = {
    **_LR,
    "adam_moments.b1": "beta1",
    "adam_moments.b2": "beta2",
    "add_decayed_weights.weight_decay": "weight_decay",
    "multiply_weights.weight_decay": "weight_decay",
}


def Adam(
    lr: Any = 1e-3,
    betas: Sequence[Any] = (0.9, 0.999),
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    amsgrad: bool = False,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
    decoupled_weight_decay: bool = False,
) -> Chain:
    r"""``torch.optim.Adam``: weight decay added to the gradient (coupled), then Adam.

    .. math:: W \leftarrow W - \eta\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    The step is `adam_moments`: `gradtx.adam`'s formula with PyTorch's rounding (bias
    corrections to float64 accuracy). With ``amsgrad=True`` the denominator is
    :math:`\sqrt{\max_{s \le t} v_s} / \sqrt{1 - b_2^t} + \epsilon`: the maximum
    of the raw :math:`v`, where optax's ``amsgrad`` takes the maximum of :math:`\hat v`.

    Args:
      lr: the learning rate (1e-3), or a schedule.
      betas: ``(b1, b2)``, each in [0, 1) or a schedule.
      eps: added to the denominator, outside the root.
      weight_decay: coupled L2 decay (0); decoupled with ``decoupled_weight_decay``.
      amsgrad: PyTorch's AMSGrad.
      foreach: ignored (PyTorch's kernel choice).
      maximize: ascend instead of descend.
      capturable: ignored.
      differentiable: ignored.
      fused: ignored.
      decoupled_weight_decay: AdamW's decay (then equal to `AdamW`).

    Returns:
      ``torch.Adam = chain([scale(-1)], [add_decayed_weights(wd)], adam_moments(b1, b2,
      eps, amsgrad), scale_by_learning_rate(lr))``: `gradtx.adam`'s numbers to float32
      rounding when ``weight_decay=0`` and ``amsgrad=False``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.torch.Adam(lr=0.1)
      >>> u, _ = opt.update(jnp.full(2, 3.0), opt.init(jnp.zeros(2)))
      >>> jnp.round(u, 6)  # -lr * sign(g) at step 1
      Array([-0.1, -0.1], dtype=float32)

    References:
      Kingma and Ba, 2015; ``torch.optim.Adam``.
    """
    del foreach, capturable, differentiable, fused
    b1, b2 = _betas("Adam", betas)
    _checks.check("Adam", _checks.nonnegative, lr=lr, eps=eps, weight_decay=weight_decay)
    if decoupled_weight_decay:
        blocks = [*_head(maximize), *_adam_core(b1, b2, eps, amsgrad), *_tail(lr, weight_decay)]
    else:
        blocks = [*_head(maximize, weight_decay), *_adam_core(b1, b2, eps, amsgrad), *_tail(lr)]
    return labelled(
        "torch.Adam", *blocks, readout_names=present_readout_names(_ADAM_NAMES, blocks), complex_as_real=True
    )


def AdamW(
    lr: Any = 1e-3,
    betas: Sequence[Any] = (0.9, 0.999),
    eps: Any = 1e-8,
    weight_decay: Any = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    foreach: bool | None = None,
    capturable: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
) -> Chain:
    r"""``torch.optim.AdamW``: Adam with decoupled weight decay, default 1e-2.

    .. math:: W \leftarrow W (1 - \eta \lambda) - \eta\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    Args:
      lr: the learning rate (1e-3), or a schedule.
      betas: ``(b1, b2)``, each in [0, 1) or a schedule.
      eps: added to the denominator, outside the root.
      weight_decay: ``lambda`` (1e-2; optax's default is 1e-4).
      amsgrad: PyTorch's AMSGrad (see `Adam`).
      maximize: ascend instead of descend.
      foreach: ignored (PyTorch's kernel choice).
      capturable: ignored.
      differentiable: ignored.
      fused: ignored.

    Returns:
      ``torch.AdamW = chain([scale(-1)], adam_moments(b1, b2, eps, amsgrad),
      scale_by_learning_rate(lr), multiply_weights(lr, wd))``: ``gradtx.adamw(lr, b1,
      b2, eps, weight_decay=wd)`` to float32 rounding.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.torch.AdamW(lr=0.1, weight_decay=0.5)
      >>> p = jnp.full(2, 2.0)
      >>> jnp.round(opt.update(jnp.full(2, 3.0), opt.init(p), p)[0], 6)  # -0.1 * (1 + 0.5 * 2)
      Array([-0.2, -0.2], dtype=float32)

    References:
      Loshchilov and Hutter, 2019; ``torch.optim.AdamW``.
    """
    del foreach, capturable, differentiable, fused
    b1, b2 = _betas("AdamW", betas)
    _checks.check("AdamW", _checks.nonnegative, lr=lr, eps=eps, weight_decay=weight_decay)
    blocks = [*_head(maximize), *_adam_core(b1, b2, eps, amsgrad), *_tail(lr, weight_decay, keep=True)]
    return labelled(
        "torch.AdamW", *blocks, readout_names=present_readout_names(_ADAM_NAMES, blocks), complex_as_real=True
    )


def RMSprop(
    lr: Any = 1e-2,
    alpha: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    momentum: Any = 0.0,
    centered: bool = False,
    capturable: bool = False,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
) -> Chain:
    r"""``torch.optim.RMSprop``: eps *outside* the root, optional centring and momentum.

    .. math:: v_t = \alpha v_{t-1} + (1 - \alpha) g_t^2, \quad
              b_t = \mu b_{t-1} + g_t / (\sqrt{v_t - \bar g_t^2} + \epsilon), \quad
              W \leftarrow W - \eta\, b_t

    (:math:`\bar g_t` the average gradient, only when ``centered``).

    Args:
      lr: the learning rate (1e-2), or a schedule.
      alpha: the decay of the squared-gradient average (0.99).
      eps: added to the root (1e-8).
      weight_decay: coupled L2 decay (0).
      momentum: ``mu`` (0).
      centered: divide by the estimated standard deviation.
      capturable: ignored.
      foreach: ignored (PyTorch's kernel choice).
      maximize: ascend instead of descend.
      differentiable: ignored.

    Returns:
      ``torch.RMSprop = chain([scale(-1)], [add_decayed_weights(wd)],
      scale_by_rms(alpha, eps, eps_in_sqrt=False) or scale_by_stddev(...), [trace(mu)],
      scale_by_learning_rate(lr))``. ``optax.rmsprop`` puts eps inside the root.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.torch.RMSprop(lr=0.1, alpha=0.75, eps=0.0)
      >>> opt.update(jnp.full(2, 2.0), opt.init(jnp.zeros(2)))[0]  # -0.1 * 2 / sqrt(0.25 * 4)
      Array([-0.2, -0.2], dtype=float32)

    References:
      Tieleman and Hinton, 2012; Graves, 2013; ``torch.optim.RMSprop``.
    """
    del capturable, foreach, differentiable
    _checks.check(
        "RMSprop",
        _checks.nonnegative,
        lr=lr,
        alpha=alpha,
        eps=eps,
        weight_decay=weight_decay,
        momentum=momentum,
    )
    scaling = (
        scale_by_stddev(alpha, eps, eps_in_sqrt=False)
        if centered
        else scale_by_rms(alpha, eps, eps_in_sqrt=False)
    )
    blocks = [*_head(maximize, weight_decay), scaling]
    if _nonzero(momentum):
        blocks.append(trace(momentum))
    names = {
        **_LR,
        "scale_by_rms.decay": "alpha",
        "scale_by_stddev.decay": "alpha",
        "trace.decay": "momentum",
    }
    blocks += _tail(lr)
    return labelled(
        "torch.RMSprop", *blocks, readout_names=present_readout_names(names, blocks), complex_as_real=True
    )


def Adagrad(
    lr: Any = 1e-2,
    lr_decay: Any = 0.0,
    weight_decay: Any = 0.0,
    initial_accumulator_value: Any = 0.0,
    eps: Any = 1e-10,
    foreach: bool | None = None,
    *,
    maximize: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
) -> Chain:
    r"""``torch.optim.Adagrad``: eps outside the root, the rate decayed as ``1 / (1 + (t-1) k)``.

    .. math:: h_t = h_{t-1} + g_t^2, \quad
              W \leftarrow W - \frac{\eta}{1 + (t - 1) k}\, g_t / (\sqrt{h_t} + \epsilon)

    Args:
      lr: the learning rate (1e-2), or a schedule.
      lr_decay: ``k`` (0).
      weight_decay: coupled L2 decay (0).
      initial_accumulator_value: ``h_0`` (0; optax's is 0.1).
      eps: added to the root (1e-10; optax adds 1e-7 inside it).
      foreach: ignored (PyTorch's kernel choice).
      maximize: ascend instead of descend.
      differentiable: ignored.
      fused: ignored.

    Returns:
      ``torch.Adagrad = chain([scale(-1)], [add_decayed_weights(wd)],
      scale_by_rss(h0, eps, eps_in_sqrt=False), scale_by_learning_rate(lr / (1 + t k)))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.torch.Adagrad(lr=0.1, eps=0.0)
      >>> opt.update(jnp.full(2, -3.0), opt.init(jnp.zeros(2)))[0]
      Array([0.1, 0.1], dtype=float32)

    References:
      Duchi et al., 2011; ``torch.optim.Adagrad``.
    """
    del foreach, differentiable, fused
    _checks.check(
        "Adagrad",
        _checks.nonnegative,
        lr=lr,
        lr_decay=lr_decay,
        weight_decay=weight_decay,
        initial_accumulator_value=initial_accumulator_value,
        eps=eps,
    )
    rate: Any = lr
    if _nonzero(lr_decay):
        decay = inverse_time_decay(1.0 if callable(lr) else lr, lr_decay)
        rate = multiply_schedules([lr, decay]) if callable(lr) else decay
    blocks = [
        *_head(maximize, weight_decay),
        scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt=False),
        *_tail(rate),
    ]
    return labelled(
        "torch.Adagrad", *blocks, readout_names=present_readout_names(_LR, blocks), complex_as_real=True
    )


def Adadelta(
    lr: Any = 1.0,
    rho: Any = 0.9,
    eps: Any = 1e-6,
    weight_decay: Any = 0.0,
    foreach: bool | None = None,
    *,
    capturable: bool = False,
    maximize: bool = False,
    differentiable: bool = False,
) -> Chain:
    r"""``torch.optim.Adadelta``: `gradtx.adadelta` with coupled weight decay.

    .. math:: \Delta_t = \sqrt{u_{t-1} + \epsilon} / \sqrt{v_t + \epsilon}\; g_t, \quad
              W \leftarrow W - \eta \Delta_t

    Args:
      lr: the learning rate (1.0), or a schedule.
      rho: the decay of both averages (0.9), in [0, 1] as PyTorch requires.
      eps: inside both roots (1e-6).
      weight_decay: coupled L2 decay (0).
      foreach: ignored (PyTorch's kernel choice).
      capturable: ignored.
      maximize: ascend instead of descend.
      differentiable: ignored.

    Returns:
      ``torch.Adadelta = chain([scale(-1)], [add_decayed_weights(wd)],
      scale_by_adadelta(rho, eps), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.torch.Adadelta(rho=0.5, eps=1.0)
      >>> opt.update(jnp.full(2, 2.0), opt.init(jnp.zeros(2)))[0]  # -sqrt(1) / sqrt(2 + 1) * 2
      Array([-1.1547005, -1.1547005], dtype=float32)

    References:
      Zeiler, 2012; ``torch.optim.Adadelta``.
    """
    del foreach, capturable, differentiable
    _checks.check("Adadelta", _checks.nonnegative, lr=lr, eps=eps, weight_decay=weight_decay)
    _checks.check("Adadelta", _checks.decay, rho=rho)  # PyTorch: "Invalid rho value"
    blocks = [*_head(maximize, weight_decay), scale_by_adadelta(rho, eps), *_tail(lr)]
    return labelled(
        "torch.Adadelta", *blocks, readout_names=present_readout_names(_LR, blocks), complex_as_real=True
    )


def Adamax(
    lr: Any = 2e-3,
    betas: Sequence[Any] = (0.9, 0.999),
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    foreach: bool | None = None,
    *,
    maximize: bool = False,
    differentiable: bool = False,
    capturable: bool = False,
) -> Chain:
    r"""``torch.optim.Adamax``: `gradtx.adamax` with coupled weight decay.

    .. math:: u_t = \max(b_2 u_{t-1}, |g_t| + \epsilon), \quad
              W \leftarrow W - \eta\, \hat m_t / u_t

    Args:
      lr: the learning rate (2e-3), or a schedule.
      betas: ``(b1, b2)``.
      eps: added to ``|g|`` inside the maximum.
      weight_decay: coupled L2 decay (0).
      foreach: ignored (PyTorch's kernel choice).
      maximize: ascend instead of descend.
      differentiable: ignored.
      capturable: ignored.

    Returns:
      ``torch.Adamax = chain([scale(-1)], [add_decayed_weights(wd)], momentum(b1),
      scale_by_infinity_norm(b2, eps), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.torch.Adamax(lr=0.1, eps=0.0)
      >>> jnp.round(opt.update(jnp.full(2, 3.0), opt.init(jnp.zeros(2)))[0], 6)  # -lr m_hat / |g|
      Array([-0.1, -0.1], dtype=float32)

    References:
      Kingma and Ba, 2015, section 7.1; ``torch.optim.Adamax``.
    """
    del foreach, differentiable, capturable
    b1, b2 = _betas("Adamax", betas)
    _checks.check("Adamax", _checks.nonnegative, lr=lr, eps=eps, weight_decay=weight_decay)
    blocks = [*_head(maximize, weight_decay), first_moment(b1), scale_by_infinity_norm(b2, eps), *_tail(lr)]
    names = {**_LR, "momentum.b1": "beta1", "scale_by_infinity_norm.decay": "beta2"}
    return labelled(
        "torch.Adamax", *blocks, readout_names=present_readout_names(names, blocks), complex_as_real=True
    )


def NAdam(
    lr: Any = 2e-3,
    betas: Sequence[Any] = (0.9, 0.999),
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    momentum_decay: Any = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
) -> Chain:
    r"""``torch.optim.NAdam``: Dozat's NAdam with the momentum schedule (`nadam_moments`).

    Args:
      lr: the learning rate (2e-3), or a schedule.
      betas: ``(b1, b2)``.
      eps: added to the denominator, outside the root.
      weight_decay: L2 decay (0), coupled unless ``decoupled_weight_decay``.
      momentum_decay: :math:`\psi` of the schedule :math:`\mu_t = b_1 (1 - 0.5 \cdot
        0.96^{t \psi})` (4e-3).
      decoupled_weight_decay: NAdamW's decay ``p *= 1 - lr * wd``.
      foreach: ignored (PyTorch's kernel choice).
      maximize: ascend instead of descend.
      capturable: ignored.
      differentiable: ignored.

    Returns:
      ``torch.NAdam = chain([scale(-1)], [add_decayed_weights(wd)], nadam_moments(b1, b2,
      eps, momentum_decay), scale_by_learning_rate(lr), [multiply_weights(lr, wd)])``. ``optax.nadam`` has no
      momentum schedule.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.torch.NAdam(lr=0.1, eps=0.0)
      >>> u, _ = opt.update(jnp.full(2, 3.0), opt.init(jnp.zeros(2)))
      >>> jnp.round(u, 6)  # -lr (1 + mu_2 (1 - b1) / (1 - mu_1 mu_2)), mu_t near 0.45
      Array([-0.105645, -0.105645], dtype=float32)

    References:
      Dozat, 2016; ``torch.optim.NAdam``.
    """
    del foreach, capturable, differentiable
    b1, b2 = _betas("NAdam", betas)
    _checks.check(
        "NAdam", _checks.nonnegative, lr=lr, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay
    )
    coupled = 0.0 if decoupled_weight_decay else weight_decay
    decoupled = weight_decay if decoupled_weight_decay else 0.0
    blocks = [*_head(maximize, coupled), nadam_moments(b1, b2, eps, momentum_decay), *_tail(lr, decoupled)]
    names = {**_LR, "nadam_moments.b1": "beta1", "nadam_moments.b2": "beta2"}
    return labelled(
        "torch.NAdam", *blocks, readout_names=present_readout_names(names, blocks), complex_as_real=True
    )


def RAdam(
    lr: Any = 1e-3,
    betas: Sequence[Any] = (0.9, 0.999),
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    decoupled_weight_decay: bool = False,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
) -> Chain:
    r"""``torch.optim.RAdam``: rectified Adam, eps added before the bias correction.

    .. math:: W \leftarrow W - \eta\, \hat m_t\, r_t \sqrt{1 - b_2^t} / (\sqrt{v_t} + \epsilon)
              \ \ (\rho_t > 5), \qquad W \leftarrow W - \eta\, \hat m_t \ \ \text{otherwise}

    Args:
      lr: the learning rate (1e-3), or a schedule.
      betas: ``(b1, b2)``.
      eps: added to :math:`\sqrt{v_t}` (optax adds it to :math:`\sqrt{\hat v_t}`).
      weight_decay: L2 decay (0), coupled unless ``decoupled_weight_decay``.
      decoupled_weight_decay: AdamW-style decay ``p *= 1 - lr * wd``.
      foreach: ignored (PyTorch's kernel choice).
      maximize: ascend instead of descend.
      capturable: ignored.
      differentiable: ignored.

    Returns:
      ``torch.RAdam = chain([scale(-1)], [add_decayed_weights(wd)], momentum(b1),
      rectified_rms(b2, eps), scale_by_learning_rate(lr), [multiply_weights(lr, wd)])``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.torch.RAdam(lr=0.1)
      >>> u, _ = opt.update(jnp.full(2, 3.0), opt.init(jnp.zeros(2)))
      >>> jnp.round(u, 6)  # rho_1 < 5: -lr * m_hat
      Array([-0.3, -0.3], dtype=float32)

    References:
      Liu et al., 2020; ``torch.optim.RAdam``.
    """
    del foreach, capturable, differentiable
    b1, b2 = _betas("RAdam", betas)
    _checks.check("RAdam", _checks.nonnegative, lr=lr, eps=eps, weight_decay=weight_decay)
    coupled = 0.0 if decoupled_weight_decay else weight_decay
    decoupled = weight_decay if decoupled_weight_decay else 0.0
    blocks = [*_head(maximize, coupled), first_moment(b1), rectified_rms(b2, eps), *_tail(lr, decoupled)]
    names = {**_LR, "momentum.b1": "beta1", "rectified_rms.b2": "beta2"}
    return labelled(
        "torch.RAdam", *blocks, readout_names=present_readout_names(names, blocks), complex_as_real=True
    )


def ASGD(
    lr: Any = 1e-2,
    lambd: Any = 1e-4,
    alpha: Any = 0.75,
    t0: Any = 1e6,
    weight_decay: Any = 0.0,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
    capturable: bool = False,
) -> Chain:
    r"""``torch.optim.ASGD``: SGD with a decaying step and a running average of the weights.

    .. math:: \eta_t = \eta / (1 + \lambda \eta (t - 1))^\alpha, \quad
              W \leftarrow W (1 - \lambda \eta_t) - \eta_t g_t

    and the average :math:`\bar W` (PyTorch's ``ax``) kept by `params_average`; read it
    as ``state[-1].average``.

    Args:
      lr: :math:`\eta` (1e-2), a number.
      lambd: :math:`\lambda` (1e-4).
      alpha: :math:`\alpha` (0.75).
      t0: the step averaging starts (1e6).
      weight_decay: coupled L2 decay (0).
      foreach: ignored (PyTorch's kernel choice).
      maximize: ascend instead of descend.
      differentiable: ignored.
      capturable: ignored.

    Returns:
      ``torch.ASGD = chain([scale(-1)], [add_decayed_weights(wd)], scale_by_learning_rate(eta),
      multiply_weights(eta, lambd), params_average(t0))`` with
      ``eta = asgd_learning_rate(lr, lambd, alpha)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.torch.ASGD(lr=0.1, lambd=0.0)
      >>> p = jnp.zeros(2)
      >>> opt.update(jnp.ones(2), opt.init(p), p)[0]
      Array([-0.1, -0.1], dtype=float32)

    References:
      Polyak and Juditsky, 1992; ``torch.optim.ASGD``.
    """
    del foreach, differentiable, capturable
    _checks.check(
        "ASGD", _checks.nonnegative, lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay
    )
    if callable(lr):
        raise TypeError("ASGD: lr must be a number (its step size is already a schedule of lr)")
    eta = asgd_learning_rate(lr, lambd, alpha)
    blocks = [
        *_head(maximize, weight_decay),
        scale_by_learning_rate(eta),
        multiply_weights(eta, lambd),
        params_average(t0=t0),
    ]
    names = {
        **_LR,
        "multiply_weights.weight_decay": "lambd",
        "add_decayed_weights.weight_decay": "weight_decay",
    }
    return labelled(
        "torch.ASGD", *blocks, readout_names=present_readout_names(names, blocks), complex_as_real=True
    )


def Rprop(
    lr: Any = 1e-2,
    etas: Sequence[Any] = (0.5, 1.2),
    step_sizes: Sequence[Any] = (1e-6, 50.0),
    *,
    capturable: bool = False,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
) -> Chain:
    r"""``torch.optim.Rprop``: sign steps adapted per coordinate (`rprop_steps`).

    Each coordinate's step grows by ``etas[1]`` while its gradient keeps its sign and
    shrinks by ``etas[0]`` when it flips (that step is skipped), within ``step_sizes``.

    Args:
      lr: the initial step size (1e-2), clamped into ``step_sizes`` as PyTorch does.
      etas: ``(eta_minus, eta_plus)``, with 0 < eta_minus < 1 < eta_plus.
      step_sizes: ``(min, max)`` step size.
      capturable: ignored.
      foreach: ignored (PyTorch's kernel choice).
      maximize: ascend instead of descend.
      differentiable: ignored.

    Returns:
      ``torch.Rprop = chain([scale(-1)], rprop_steps(lr, *etas, *step_sizes), scale(-1))``.
      ``optax.rprop`` (and `gradtx.rprop`) applies each step one step late.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.torch.Rprop(lr=0.1)
      >>> opt.update(jnp.full(2, 3.0), opt.init(jnp.zeros(2)))[0]
      Array([-0.1, -0.1], dtype=float32)

    References:
      Riedmiller and Braun, 1993; ``torch.optim.Rprop``.
    """
    del capturable, foreach, differentiable
    _checks.check("Rprop", _checks.nonnegative, lr=lr)
    eta_minus, eta_plus = etas
    low, high = step_sizes
    if not 0.0 < eta_minus < 1.0 < eta_plus:
        raise InputError("Rprop", f"etas must satisfy 0 < etas[0] < 1 < etas[1], got {tuple(etas)!r}")
    blocks = [*_head(maximize), rprop_steps(lr, eta_minus, eta_plus, low, high), scale(-1.0)]
    names = {
        "rprop_steps.learning_rate": "lr",
        # The elements of a tuple argument, by their own names (as Adam's beta1, beta2).
        "rprop_steps.eta_minus": "eta_minus",
        "rprop_steps.eta_plus": "eta_plus",
        "rprop_steps.min_step_size": "min_step_size",
        "rprop_steps.max_step_size": "max_step_size",
        "scale.step_size": "",
    }
    return labelled(
        "torch.Rprop", *blocks, readout_names=present_readout_names(names, blocks), complex_as_real=True
    )


def Adafactor(
    lr: Any = 1e-2,
    beta2_decay: Any = -0.8,
    eps: Sequence[Any] = (None, 1e-3),
    d: Any = 1.0,
    weight_decay: Any = 0.0,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
) -> Chain:
    r"""``torch.optim.Adafactor``: factored second moments and a relative step size
    (`factored_relative_rms`).

    Args:
      lr: the cap of the relative step size (1e-2), or a schedule.
      beta2_decay: the exponent of ``1 - beta2_t = t ** beta2_decay`` (-0.8).
      eps: ``(eps1, eps2)``: the variance floor (None: the dtype's epsilon) and the
        floor of the parameters' RMS (1e-3).
      d: the clipping threshold of the update's RMS (1.0), >= 1 as PyTorch requires (below
        1 it would shrink every update, not clip the large ones).
      weight_decay: decoupled, ``p *= 1 - lr * wd`` (0).
      foreach: ignored (PyTorch's kernel choice).
      maximize: ascend instead of descend.

    Returns:
      ``torch.Adafactor = chain([scale(-1)], factored_relative_rms(lr, beta2_decay, eps1,
      eps2, d, weight_decay))``. Not optax's ``adafactor`` (another decay, no relative
      step, other clipping).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.torch.Adafactor(lr=0.01)
      >>> p = jnp.ones(2)
      >>> jnp.round(opt.update(jnp.full(2, 3.0), opt.init(p), p)[0], 6)  # -RMS(p) min(lr, 1)
      Array([-0.01, -0.01], dtype=float32)

    References:
      Shazeer and Stern, 2018; ``torch.optim.Adafactor``.
    """
    del foreach
    _checks.nonpositive.check("Adafactor", "beta2_decay", beta2_decay)
    eps1, eps2 = eps
    _checks.check("Adafactor", _checks.nonnegative, lr=lr, eps1=eps1, eps2=eps2, weight_decay=weight_decay)
    _checks.check("Adafactor", _checks.at_least_one, d=d)  # PyTorch: "d should be >= 1"
    block = factored_relative_rms(lr, beta2_decay, eps1, eps2, d, weight_decay)
    return labelled(
        "torch.Adafactor", *_head(maximize), block, readout_names={"factored_relative_rms.lr": "lr"}
    )
