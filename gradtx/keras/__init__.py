"""Keras-exact presets: ``keras.optimizers`` as gradtx chains.

Each factory takes the arguments ``keras.optimizers`` takes, with its defaults
(``epsilon=1e-7``, Adam's "epsilon hat", AdamW's ``weight_decay=0.004``, ...), and
returns a labelled `gradtx.chain` whose updates equal Keras 3's steps (float32; the
tests run each 150 steps against ``keras`` on its JAX backend). The base optimizer's
arguments are there too, applied in Keras's order: ``loss_scale_factor`` (the gradient
divided by it), then one of ``clipnorm`` (each leaf's norm, `clip_by_norm`),
``global_clipnorm`` (`gradtx.clip_by_global_norm`) or ``clipvalue``, then the step,
then ``weight_decay`` (``w -= w * wd * lr`` before the step,
`subtract_decayed_weights`), then ``use_ema`` (`params_average`; read the average as
``state[-1].average``)::

    >>> import gradtx
    >>> print(gradtx.keras.Adam())
    keras.Adam = chain(
        momentum(b1=0.9, debias=False, nesterov=False, mu_dtype=None, initial_value=0.0),
        scale_by_rms(decay=0.999, eps=1e-07, initial_scale=0.0, eps_in_sqrt=False, bias_correction=False, eps_root=0.0, nu_dtype=None, amsgrad=False),
        scale_by_bias_correction(decay=0.9, power=1.0),
        scale_by_bias_correction(decay=0.999, power=-0.5),
        scale_by_learning_rate(learning_rate=0.001, flip_sign=True),
    )

Keras's Adam adds eps to :math:`\\sqrt{v_t}` before the bias correction ("epsilon
hat"), optax's after it: that is `gradtx.adam`'s ``debias_step_size=True``.
``gradient_accumulation_steps`` is `gradtx.MultiSteps`; ``exclude_from_weight_decay``
is a ``mask`` on `subtract_decayed_weights` or `gradtx.path_rules`. Keras's schedules
are `gradtx.keras.schedules`. Not provided: ``Adafactor``, ``Muon``,
``LossScaleOptimizer`` (gradtx does not scale losses).
"""  # noqa: E501

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx._checks import InputError
from gradtx.base import Transform
from gradtx.blocks.adaptive import scale_by_rms, scale_by_rss, scale_by_stddev
from gradtx.blocks.clipping import clip, clip_by_global_norm
from gradtx.blocks.elementwise import scale_by_lion
from gradtx.blocks.momentum import momentum, scale_by_bias_correction, trace
from gradtx.blocks.scaling import scale, scale_by_learning_rate
from gradtx.blocks.statistics import scale_by_adadelta
from gradtx.blocks.trust import scale_by_trust_ratio
from gradtx.chains import Chain, labelled, present_readout_names
from gradtx.keras import schedules
from gradtx.keras.blocks import clip_by_norm, ftrl, max_abs_scaling, subtract_decayed_weights
from gradtx.schedules.decay import concrete
from gradtx.torch.moments import nadam_moments
from gradtx.torch.parameters import params_average

__all__ = [
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Ftrl",
    "Lamb",
    "Lion",
    "Nadam",
    "RMSprop",
    "SGD",
    "clip_by_norm",
    "ftrl",
    "max_abs_scaling",
    "params_average",
    "schedules",
    "subtract_decayed_weights",
]

_LR = {"scale_by_learning_rate.learning_rate": "learning_rate"}


def _build(
    name: str,
    core: list[Transform],
    learning_rate: Any,
    base: dict[str, Any],
    *,
    lr_inside: bool = False,
    keep_decay: bool = False,
    names: dict[str, str] | None = None,
) -> Chain:
    """Keras's base optimizer around ``core``: scaling, clipping, the step, weight decay,
    EMA. ``keep_decay`` keeps the decay block at 0 (AdamW: its decay is then data)."""
    weight_decay = base.pop("weight_decay")
    clipnorm, clipvalue = base.pop("clipnorm"), base.pop("clipvalue")
    global_clipnorm = base.pop("global_clipnorm")
    use_ema, ema_momentum = base.pop("use_ema"), base.pop("ema_momentum")
    overwrite = base.pop("ema_overwrite_frequency")
    loss_scale_factor = base.pop("loss_scale_factor")
    accumulation = base.pop("gradient_accumulation_steps")
    base.pop("name", None)
    if base:
        raise TypeError(f"{name}: unexpected arguments {sorted(base)}")
    for arg, value in (
        ("clipnorm", clipnorm),
        ("clipvalue", clipvalue),
        ("global_clipnorm", global_clipnorm),
    ):
        _checks.positive_or_none.check(name, arg, value)
    if sum(v is not None for v in (clipnorm, clipvalue, global_clipnorm)) > 1:
        raise InputError(name, "give only one of clipnorm, clipvalue and global_clipnorm (as Keras)")
    if accumulation is not None:
        raise InputError(
            name, "gradient_accumulation_steps is gradtx.MultiSteps(optimizer, every_k_schedule=k)"
        )
    blocks: list[Transform] = []
    if loss_scale_factor is not None:
        blocks.append(scale(1.0 / loss_scale_factor))
    if clipnorm is not None:
        blocks.append(clip_by_norm(clipnorm))
    elif global_clipnorm is not None:
        blocks.append(clip_by_global_norm(global_clipnorm))
    elif clipvalue is not None:
        blocks.append(clip(clipvalue))
    blocks += core
    if not lr_inside:
        blocks.append(scale_by_learning_rate(learning_rate))
    if weight_decay is not None and (keep_decay or not concrete(weight_decay) or weight_decay != 0):
        blocks.append(subtract_decayed_weights(learning_rate, weight_decay))
    if use_ema:
        blocks.append(params_average(momentum=ema_momentum, overwrite_every=overwrite, form="ema"))
    readout = {
        **_LR,
        "subtract_decayed_weights.weight_decay": "weight_decay",
        "subtract_decayed_weights.learning_rate": "",
        "clip_by_global_norm.max_norm": "global_clipnorm",
        "clip.max_delta": "clipvalue",
        "params_average.momentum": "ema_momentum",
        # Keras's epsilon, whichever block adds it (LAMB's trust ratio has its own).
        **{f"{type(b).__name__}.eps": "epsilon" for b in core if "eps" in b._hyper_fields},
        "scale_by_trust_ratio.eps": "",
        "scale_by_bias_correction.decay": "",  # a copy of beta_1 or beta_2
        **(names or {}),
    }
    return labelled(f"keras.{name}", *blocks, readout_names=present_readout_names(readout, blocks))


def _base(
    weight_decay: Any = None,
    clipnorm: Any = None,
    clipvalue: Any = None,
    global_clipnorm: Any = None,
    use_ema: bool = False,
    ema_momentum: Any = 0.99,
    ema_overwrite_frequency: int | None = None,
    loss_scale_factor: Any = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    return dict(locals())


def SGD(learning_rate: Any = 0.01, momentum: Any = 0.0, nesterov: bool = False, **kwargs: Any) -> Chain:
    r"""``keras.optimizers.SGD``: the velocity holds the learning rate.

    .. math:: v_t = \mu v_{t-1} - \eta g_t, \quad W \leftarrow W + v_t
              \ (\text{or } W + \mu v_t - \eta g_t)

    Equal to PyTorch's for a constant rate; with a schedule, past steps keep the rate
    they were taken with.

    Args:
      learning_rate: the rate (0.01), or a schedule.
      momentum: ``mu`` (0).
      nesterov: Nesterov momentum.
      **kwargs: Keras's base optimizer arguments (see the module).

    Returns:
      ``keras.SGD = chain(scale_by_learning_rate(lr), [trace(momentum, nesterov)])``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.keras.SGD(0.5, momentum=0.5)
      >>> u, s = opt.update(jnp.ones(2), opt.init(jnp.zeros(2)))
      >>> opt.update(jnp.ones(2), s)[0]  # 0.5 * -0.5 - 0.5
      Array([-0.75, -0.75], dtype=float32)

    References:
      ``keras.optimizers.SGD``.
    """
    core: list[Transform] = [scale_by_learning_rate(learning_rate)]
    if not concrete(momentum) or momentum != 0:
        core.append(trace(momentum, nesterov))
    return _build(
        "SGD", core, learning_rate, _base(**kwargs), lr_inside=True, names={"trace.decay": "momentum"}
    )


def _adam_core(beta_1: Any, beta_2: Any, epsilon: Any, amsgrad: bool) -> list[Transform]:
    return [
        momentum(beta_1, debias=False),
        scale_by_rms(beta_2, epsilon, eps_in_sqrt=False, amsgrad=amsgrad),
        scale_by_bias_correction(beta_1),
        scale_by_bias_correction(beta_2, power=-0.5),
    ]


_ADAM_NAMES = {"momentum.b1": "beta_1", "scale_by_rms.decay": "beta_2"}


def Adam(
    learning_rate: Any = 0.001,
    beta_1: Any = 0.9,
    beta_2: Any = 0.999,
    epsilon: Any = 1e-7,
    amsgrad: bool = False,
    **kwargs: Any,
) -> Chain:
    r"""``keras.optimizers.Adam``: eps added before the bias correction ("epsilon hat").

    .. math:: W \leftarrow W - \eta \frac{\sqrt{1 - b_2^t}}{1 - b_1^t}\,
              \frac{m_t}{\sqrt{v_t} + \epsilon}

    With ``amsgrad`` the maximum of the raw :math:`v_t` is used.

    Args:
      learning_rate: the rate (1e-3), or a schedule.
      beta_1: decay of the first moment (0.9).
      beta_2: decay of the second moment (0.999).
      epsilon: added to :math:`\sqrt{v_t}` (1e-7).
      amsgrad: AMSGrad.
      **kwargs: Keras's base optimizer arguments (see the module).

    Returns:
      ``keras.Adam = chain(momentum(b1, debias=False), scale_by_rms(b2, eps,
      eps_in_sqrt=False), scale_by_bias_correction(b1), scale_by_bias_correction(b2, power=-0.5),
      scale_by_learning_rate(lr))``: ``gradtx.adam(lr, b1, b2, eps,
      debias_step_size=True)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.keras.Adam(0.5, beta_1=0.5, beta_2=0.5, epsilon=0.0)
      >>> opt.update(jnp.full(2, 3.0), opt.init(jnp.zeros(2)))[0]  # -lr * sign(g)
      Array([-0.5, -0.5], dtype=float32)

    References:
      Kingma and Ba, 2015 (the "epsilon hat" of section 2); ``keras.optimizers.Adam``.
    """
    core = _adam_core(beta_1, beta_2, epsilon, amsgrad)
    return _build("Adam", core, learning_rate, _base(**kwargs), names=_ADAM_NAMES)


def AdamW(
    learning_rate: Any = 0.001,
    weight_decay: Any = 0.004,
    beta_1: Any = 0.9,
    beta_2: Any = 0.999,
    epsilon: Any = 1e-7,
    amsgrad: bool = False,
    **kwargs: Any,
) -> Chain:
    r"""``keras.optimizers.AdamW``: `Adam` with weight decay 0.004 (``w -= w * wd * lr``).

    Args:
      learning_rate: the rate (1e-3), or a schedule.
      weight_decay: 0.004 (optax 1e-4, PyTorch 1e-2).
      beta_1: decay of the first moment (0.9).
      beta_2: decay of the second moment (0.999).
      epsilon: added to :math:`\sqrt{v_t}` (1e-7).
      amsgrad: AMSGrad.
      **kwargs: Keras's base optimizer arguments (see the module).

    Returns:
      ``keras.AdamW = chain(<Adam's blocks>, scale_by_learning_rate(lr),
      subtract_decayed_weights(lr, wd))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.keras.AdamW(0.5, weight_decay=0.5, beta_1=0.5, beta_2=0.5, epsilon=0.0)
      >>> p = jnp.full(2, 2.0)
      >>> opt.update(jnp.full(2, 3.0), opt.init(p), p)[0]  # -0.5 - 2 * 0.5 * 0.5
      Array([-1., -1.], dtype=float32)

    References:
      Loshchilov and Hutter, 2019; ``keras.optimizers.AdamW``.
    """
    core = _adam_core(beta_1, beta_2, epsilon, amsgrad)
    base = _base(weight_decay=weight_decay, **kwargs)
    return _build("AdamW", core, learning_rate, base, keep_decay=True, names=_ADAM_NAMES)


def RMSprop(
    learning_rate: Any = 0.001,
    rho: Any = 0.9,
    momentum: Any = 0.0,
    epsilon: Any = 1e-7,
    centered: bool = False,
    **kwargs: Any,
) -> Chain:
    r"""``keras.optimizers.RMSprop``: eps inside the root, the rate inside the momentum.

    .. math:: v_t = \rho v_{t-1} + (1 - \rho) g_t^2, \quad
              b_t = \mu b_{t-1} + \eta\, g_t / \sqrt{v_t - \bar g_t^2 + \epsilon}, \quad
              W \leftarrow W - b_t

    Args:
      learning_rate: the rate (1e-3), or a schedule.
      rho: the decay (0.9).
      momentum: ``mu`` (0).
      epsilon: inside the root (1e-7).
      centered: subtract the squared mean gradient.
      **kwargs: Keras's base optimizer arguments (see the module).

    Returns:
      ``keras.RMSprop = chain(scale_by_rms(rho, eps) or scale_by_stddev(rho, eps),
      scale_by_learning_rate(lr), [trace(momentum)])``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.keras.RMSprop(0.5, rho=0.75, epsilon=0.0)
      >>> opt.update(jnp.full(2, 2.0), opt.init(jnp.zeros(2)))[0]  # -0.5 * 2 / sqrt(0.25 * 4)
      Array([-1., -1.], dtype=float32)

    References:
      Tieleman and Hinton, 2012; ``keras.optimizers.RMSprop``.
    """
    scaling = scale_by_stddev(rho, epsilon) if centered else scale_by_rms(rho, epsilon)
    core: list[Transform] = [scaling, scale_by_learning_rate(learning_rate)]
    if not concrete(momentum) or momentum != 0:
        core.append(trace(momentum))
    names = {"scale_by_rms.decay": "rho", "scale_by_stddev.decay": "rho", "trace.decay": "momentum"}
    return _build("RMSprop", core, learning_rate, _base(**kwargs), lr_inside=True, names=names)


def Adagrad(
    learning_rate: Any = 0.001, initial_accumulator_value: Any = 0.1, epsilon: Any = 1e-7, **kwargs: Any
) -> Chain:
    r"""``keras.optimizers.Adagrad``: `gradtx.adagrad`'s formula (eps inside the root).

    Args:
      learning_rate: the rate (1e-3), or a schedule.
      initial_accumulator_value: the accumulator's start (0.1).
      epsilon: inside the root (1e-7).
      **kwargs: Keras's base optimizer arguments (see the module).

    Returns:
      ``keras.Adagrad = chain(scale_by_rss(initial_accumulator_value, eps),
      scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.keras.Adagrad(0.5, initial_accumulator_value=0.0, epsilon=0.0)
      >>> opt.update(jnp.full(2, -3.0), opt.init(jnp.zeros(2)))[0]
      Array([0.5, 0.5], dtype=float32)

    References:
      Duchi et al., 2011; ``keras.optimizers.Adagrad``.
    """
    core: list[Transform] = [scale_by_rss(initial_accumulator_value, epsilon)]
    return _build("Adagrad", core, learning_rate, _base(**kwargs))


def Adadelta(learning_rate: Any = 0.001, rho: Any = 0.95, epsilon: Any = 1e-7, **kwargs: Any) -> Chain:
    r"""``keras.optimizers.Adadelta``: `gradtx.adadelta`'s formula, Keras's defaults.

    Args:
      learning_rate: the rate (1e-3; PyTorch's is 1.0), or a schedule.
      rho: the decay of both averages (0.95).
      epsilon: inside both roots (1e-7).
      **kwargs: Keras's base optimizer arguments (see the module).

    Returns:
      ``keras.Adadelta = chain(scale_by_adadelta(rho, eps), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.keras.Adadelta(1.0, rho=0.5, epsilon=1.0)
      >>> opt.update(jnp.full(2, 2.0), opt.init(jnp.zeros(2)))[0]  # -sqrt(1) / sqrt(2 + 1) * 2
      Array([-1.1547005, -1.1547005], dtype=float32)

    References:
      Zeiler, 2012; ``keras.optimizers.Adadelta``.
    """
    return _build("Adadelta", [scale_by_adadelta(rho, epsilon)], learning_rate, _base(**kwargs))


def Adamax(
    learning_rate: Any = 0.001, beta_1: Any = 0.9, beta_2: Any = 0.999, epsilon: Any = 1e-7, **kwargs: Any
) -> Chain:
    r"""``keras.optimizers.Adamax``: eps added outside the maximum (`max_abs_scaling`).

    .. math:: u_t = \max(b_2 u_{t-1}, |g_t|), \quad
              W \leftarrow W - \eta\, \hat m_t / (u_t + \epsilon)

    Args:
      learning_rate: the rate (1e-3), or a schedule.
      beta_1: decay of the first moment (0.9).
      beta_2: decay of the maximum (0.999).
      epsilon: added to the maximum (1e-7).
      **kwargs: Keras's base optimizer arguments (see the module).

    Returns:
      ``keras.Adamax = chain(momentum(b1), max_abs_scaling(b2, eps), scale_by_learning_rate(lr))``.
      optax and PyTorch put eps inside the maximum.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.keras.Adamax(0.5, beta_1=0.5, epsilon=0.0)
      >>> opt.update(jnp.full(2, 3.0), opt.init(jnp.zeros(2)))[0]
      Array([-0.5, -0.5], dtype=float32)

    References:
      Kingma and Ba, 2015, section 7.1; ``keras.optimizers.Adamax``.
    """
    core: list[Transform] = [momentum(beta_1), max_abs_scaling(beta_2, epsilon)]
    names = {"momentum.b1": "beta_1", "max_abs_scaling.b2": "beta_2"}
    return _build("Adamax", core, learning_rate, _base(**kwargs), names=names)


def Nadam(
    learning_rate: Any = 0.001, beta_1: Any = 0.9, beta_2: Any = 0.999, epsilon: Any = 1e-7, **kwargs: Any
) -> Chain:
    r"""``keras.optimizers.Nadam``: Dozat's momentum schedule :math:`\mu_t = b_1 (1 -
    \frac12 0.96^t)` (`nadam_moments` with ``momentum_decay=1``, float32 powers).

    Args:
      learning_rate: the rate (1e-3), or a schedule.
      beta_1: ``b1`` (0.9).
      beta_2: decay of the second moment (0.999).
      epsilon: added to the root (1e-7).
      **kwargs: Keras's base optimizer arguments (see the module).

    Returns:
      ``keras.Nadam = chain(nadam_moments(b1, b2, eps, momentum_decay=1.0,
      exact_powers=False), scale_by_learning_rate(lr))``. PyTorch's NAdam decays the
      schedule 250 times slower (``momentum_decay=4e-3``).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.keras.Nadam(0.5, epsilon=0.0)
      >>> u, _ = opt.update(jnp.full(2, 3.0), opt.init(jnp.zeros(2)))
      >>> jnp.round(u, 5)  # -lr (1 + mu_2 (1 - b1) / (1 - mu_1 mu_2)), mu = 0.468, 0.48528
      Array([-0.53139, -0.53139], dtype=float32)

    References:
      Dozat, 2016; ``keras.optimizers.Nadam``.
    """
    core: list[Transform] = [nadam_moments(beta_1, beta_2, epsilon, 1.0, exact_powers=False)]
    names = {"nadam_moments.b1": "beta_1", "nadam_moments.b2": "beta_2"}
    return _build("Nadam", core, learning_rate, _base(**kwargs), names=names)


def Lion(learning_rate: Any = 0.001, beta_1: Any = 0.9, beta_2: Any = 0.99, **kwargs: Any) -> Chain:
    r"""``keras.optimizers.Lion``: `gradtx.lion` without its default weight decay.

    Args:
      learning_rate: the rate (1e-3), or a schedule.
      beta_1: the interpolation of the sign (0.9).
      beta_2: the decay of the momentum (0.99).
      **kwargs: Keras's base optimizer arguments (see the module).

    Returns:
      ``keras.Lion = chain(scale_by_lion(b1, b2), scale_by_learning_rate(lr))``
      (optax's ``lion`` decays weights by 1e-3 unless told otherwise).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.keras.Lion(0.5)
      >>> opt.update(jnp.full(2, 3.0), opt.init(jnp.zeros(2)))[0]
      Array([-0.5, -0.5], dtype=float32)

    References:
      Chen et al., 2023; ``keras.optimizers.Lion``.
    """
    core: list[Transform] = [scale_by_lion(beta_1, beta_2)]
    names = {"scale_by_lion.b1": "beta_1", "scale_by_lion.b2": "beta_2"}
    return _build("Lion", core, learning_rate, _base(**kwargs), names=names)


def Lamb(
    learning_rate: Any = 0.001, beta_1: Any = 0.9, beta_2: Any = 0.999, epsilon: Any = 1e-7, **kwargs: Any
) -> Chain:
    r"""``keras.optimizers.Lamb``: Adam's direction scaled by the layer's trust ratio.

    .. math:: u = \hat m_t / (\sqrt{\hat v_t} + \epsilon), \quad
              W \leftarrow W - \eta \frac{\lVert W \rVert}{\lVert u \rVert} u

    Args:
      learning_rate: the rate (1e-3), or a schedule.
      beta_1: decay of the first moment (0.9).
      beta_2: decay of the second moment (0.999).
      epsilon: added to the root (1e-7).
      **kwargs: Keras's base optimizer arguments (see the module); ``weight_decay`` is
        refused: Keras decays the weights before the trust ratio reads them.

    Returns:
      ``keras.Lamb = chain(momentum(b1), scale_by_rms(b2, eps, eps_in_sqrt=False,
      bias_correction=True), scale_by_trust_ratio(), scale_by_learning_rate(lr))``:
      ``gradtx.lamb(lr, b1, b2, eps, weight_decay=0.0)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.keras.Lamb(0.5, beta_1=0.5, beta_2=0.5, epsilon=0.0)
      >>> p = jnp.full(2, 2.0)
      >>> opt.update(jnp.full(2, 3.0), opt.init(p), p)[0]  # -lr * |p| / |u| * u
      Array([-1., -1.], dtype=float32)

    References:
      You et al., 2020; ``keras.optimizers.Lamb``.
    """
    if kwargs.get("weight_decay") is not None:
        raise InputError(
            "Lamb",
            "weight_decay is not provided: Keras decays the weights before its trust ratio reads their "
            "norm; use gradtx.lamb(..., weight_decay=...) for LAMB's own decoupled decay",
        )
    core: list[Transform] = [
        momentum(beta_1),
        scale_by_rms(beta_2, epsilon, eps_in_sqrt=False, bias_correction=True),
        scale_by_trust_ratio(),
    ]
    return _build("Lamb", core, learning_rate, _base(**kwargs), names=_ADAM_NAMES)


def Ftrl(
    learning_rate: Any = 0.001,
    learning_rate_power: Any = -0.5,
    initial_accumulator_value: Any = 0.1,
    l1_regularization_strength: Any = 0.0,
    l2_regularization_strength: Any = 0.0,
    l2_shrinkage_regularization_strength: Any = 0.0,
    beta: Any = 0.0,
    **kwargs: Any,
) -> Chain:
    r"""``keras.optimizers.Ftrl``: FTRL-Proximal (`ftrl`).

    Args:
      learning_rate: the rate (1e-3), or a schedule.
      learning_rate_power: <= 0 (-0.5).
      initial_accumulator_value: >= 0 (0.1).
      l1_regularization_strength: >= 0.
      l2_regularization_strength: >= 0.
      l2_shrinkage_regularization_strength: >= 0.
      beta: >= 0.
      **kwargs: Keras's base optimizer arguments (see the module); ``weight_decay`` is
        refused: FTRL sets the weights from its own state.

    Returns:
      ``keras.Ftrl = chain(ftrl(...))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.keras.Ftrl(1.0, initial_accumulator_value=0.0)
      >>> p = jnp.zeros(2)
      >>> opt.update(jnp.full(2, 2.0), opt.init(p), p)[0]
      Array([-1., -1.], dtype=float32)

    References:
      McMahan et al., 2013; ``keras.optimizers.Ftrl``.
    """
    if kwargs.get("weight_decay") is not None:
        raise InputError("Ftrl", "weight_decay is not provided: FTRL sets the weights from its own state")
    _checks.nonpositive.check("Ftrl", "learning_rate_power", learning_rate_power)
    core: list[Transform] = [
        ftrl(
            learning_rate,
            learning_rate_power,
            initial_accumulator_value,
            l1_regularization_strength,
            l2_regularization_strength,
            l2_shrinkage_regularization_strength,
            beta,
        )
    ]
    return _build(
        "Ftrl",
        core,
        learning_rate,
        _base(**kwargs),
        lr_inside=True,
        names={"ftrl.learning_rate": "learning_rate"},
    )
