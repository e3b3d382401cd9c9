"""The optimizers of the :doc:`study notes </study_notes>`: SGD (with their momentum
forms), AdaGrad, RMSProp.

Each is one `chain` of building blocks ending with the learning rate.
"""

from __future__ import annotations

from typing import Any, Literal

from gradtx import _checks
from gradtx._checks import InputError
from gradtx.blocks.adaptive import scale_by_rms, scale_by_rss, scale_by_stddev
from gradtx.blocks.elementwise import scale_by_optimistic_gradient
from gradtx.blocks.momentum import trace
from gradtx.blocks.scaling import ScalarOrSchedule, scale, scale_by_learning_rate
from gradtx.blocks.trust import scale_by_polyak
from gradtx.blocks.utility import add_noise
from gradtx.chains import Chain, labelled


@_checks.checked(
    learning_rate=_checks.rate,
    momentum=_checks.decay,
    nesterov=_checks.flag,
    accumulator_dtype=_checks.state_dtype,
)
def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: Any = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    *,
    momentum_form: Literal["trace", "velocity", "alpha"] = "trace",
) -> Chain:
    r"""Stochastic gradient descent, optionally with heavy-ball or Nesterov momentum.

    Without momentum: :math:`W \leftarrow W - \eta g`. With momentum ``mu``, three
    conventions, equal under a constant learning rate:

    - ``"trace"`` (optax, PyTorch): :math:`v = \mu v + g;\ W \leftarrow W - \eta_t v`.
    - ``"velocity"`` (:ref:`the study notes <update-rules>`):
      :math:`v = \mu v + \eta_t g;\ W \leftarrow W - v`.
    - ``"alpha"`` (:ref:`the study notes <update-rules>`): :math:`v = \mu v - \eta_t g;\ W \leftarrow W + v`
      (the same steps as ``"velocity"``, with ``v`` stored negated).

    Under a schedule they differ: the study notes' forms fold each step's own rate into
    ``v``, so past gradients keep the rate they were taken with, whereas ``"trace"``
    multiplies the whole accumulated ``v`` by the current rate (a rate cut takes
    effect at once).

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      momentum: the momentum coefficient in [0, 1), or None for plain SGD.
      nesterov: use Nesterov's look-ahead (with momentum).
      accumulator_dtype: dtype of ``v``.
      momentum_form: ``"trace"``, ``"velocity"`` or ``"alpha"`` (see above).

    Returns:
      ``chain(trace(momentum), scale_by_learning_rate(lr))`` for ``"trace"``;
      ``chain(scale_by_learning_rate(lr, flip_sign=False), trace(momentum), scale(-1))``
      for ``"velocity"``; ``chain(scale_by_learning_rate(lr), trace(momentum))`` for
      ``"alpha"``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.sgd(0.1, momentum=0.9)
      >>> u, s = opt.update(jnp.ones(2), opt.init(jnp.zeros(2)))
      >>> u
      Array([-0.1, -0.1], dtype=float32)

    References:
      Robbins and Monro, 1951; Polyak, 1964; Sutskever et al., 2013. ``optax.sgd``
      (same numbers) and ``torch.optim.SGD`` (``"trace"``, dampening 0).
    """
    lr = scale_by_learning_rate(learning_rate)
    if momentum is None:
        return labelled("sgd", lr)
    velocity = trace(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
    names = {"trace.decay": "momentum"}
    if momentum_form == "trace":
        return labelled("sgd", velocity, lr, readout_names=names)
    if momentum_form == "velocity":
        lr_first = scale_by_learning_rate(learning_rate, flip_sign=False)
        return labelled("sgd", lr_first, velocity, scale(-1.0), readout_names=names)
    if momentum_form == "alpha":
        return labelled("sgd", lr, velocity, readout_names=names)
    raise InputError("sgd", f"momentum_form must be 'trace', 'velocity' or 'alpha', got {momentum_form!r}")


@_checks.checked(
    learning_rate=_checks.rate,
    initial_accumulator_value=_checks.nonnegative,
    eps=_checks.nonnegative,
    eps_in_sqrt=_checks.flag,
)
def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: Any = 0.1,
    eps: Any = 1e-7,
    *,
    eps_in_sqrt: bool = True,
) -> Chain:
    r"""AdaGrad: steps divided by the root of the sum of all past squared gradients.

    .. math:: h_t = h_{t-1} + g_t^2, \qquad W \leftarrow W - \eta\, g_t / \sqrt{h_t + \epsilon}

    With ``eps_in_sqrt=False`` the denominator is :math:`\sqrt{h_t} + \epsilon`. The
    code of the :doc:`study notes </study_notes>` (notes 001 and 003) is
    ``adagrad(lr, 0.0, 1e-7, eps_in_sqrt=False)``; note 003's formula is
    ``adagrad(lr, 0.0, eps)``.

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      initial_accumulator_value: the initial ``h``, >= 0.
      eps: added inside the root (default) or outside it.
      eps_in_sqrt: where ``eps`` goes.

    Returns:
      ``chain(scale_by_rss(...), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.adagrad(0.5, initial_accumulator_value=0.0, eps=0.0)
      >>> opt.update(jnp.full(2, 4.0), opt.init(jnp.zeros(2)))[0]
      Array([-0.5, -0.5], dtype=float32)

    References:
      Duchi et al., 2011. ``optax.adagrad`` (same numbers).
    """
    return labelled(
        "adagrad",
        scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt=eps_in_sqrt),
        scale_by_learning_rate(learning_rate),
    )


@_checks.checked(
    learning_rate=_checks.rate,
    decay=_checks.decay,
    eps=_checks.nonnegative,
    initial_scale=_checks.nonnegative,
    eps_in_sqrt=_checks.flag,
    centered=_checks.flag,
    momentum=_checks.decay,
    nesterov=_checks.flag,
    bias_correction=_checks.flag,
)
def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: Any = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> Chain:
    r"""RMSProp: steps divided by the root of a moving average of squared gradients.

    .. math:: r_t = \rho\, r_{t-1} + (1 - \rho)\, g_t^2, \qquad
              W \leftarrow W - \eta\, g_t / \sqrt{r_t + \epsilon}

    The :doc:`study notes' </study_notes>` form (notes 000 and 001) puts eps outside the root:
    ``rmsprop(lr, decay=0.9, eps=1e-7, eps_in_sqrt=False)``. ``centered`` divides by the
    estimated standard deviation instead; ``momentum`` adds a `trace` after the rate.

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      decay: the averaging coefficient ``rho``, in [0, 1).
      eps: added to the denominator.
      initial_scale: the initial ``r``.
      eps_in_sqrt: add ``eps`` inside the root (True) or outside.
      centered: use `scale_by_stddev` (Graves, 2013).
      momentum: coefficient of a heavy-ball `trace` applied after the rate, or None.
      nesterov: Nesterov form of that trace.
      bias_correction: divide the averages by ``1 - decay**t``.

    Returns:
      ``chain(scale_by_rms(...) or scale_by_stddev(...), scale_by_learning_rate(lr)[, trace(momentum)])``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.rmsprop(0.1, decay=0.75, eps=0.0)
      >>> opt.update(jnp.full(2, 2.0), opt.init(jnp.zeros(2)))[0]  # -0.1 * 2 / sqrt(1)
      Array([-0.2, -0.2], dtype=float32)

    References:
      Tieleman and Hinton, 2012. ``optax.rmsprop`` (same numbers);
      ``torch.optim.RMSprop`` puts eps outside the root.
    """
    if centered:
        scaling: Any = scale_by_stddev(decay, eps, initial_scale, eps_in_sqrt, bias_correction)
    else:
        scaling = scale_by_rms(decay, eps, initial_scale, eps_in_sqrt, bias_correction)
    lr = scale_by_learning_rate(learning_rate)
    if momentum is None:
        return labelled("rmsprop", scaling, lr)
    return labelled(
        "rmsprop",
        scaling,
        lr,
        trace(momentum, nesterov=nesterov),
        readout_names={"trace.decay": "momentum"},
    )


@_checks.checked(learning_rate=_checks.rate)
def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: Any = 0.01,
    gamma: Any = 0.55,
    key: Any = None,
    *,
    seed: int | None = None,
) -> Chain:
    r"""SGD with annealed Gaussian gradient noise.

    .. math:: W \leftarrow W - \eta_{lr}\,\big(g_t + \mathcal N(0, \eta / (1 + t)^\gamma)\big)

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      eta: the initial noise variance.
      gamma: the variance's decay exponent.
      key: a PRNG key or an integer seed for the noise.
      seed: deprecated spelling of ``key`` (as in optax).

    Returns:
      ``chain(add_noise(eta, gamma, key), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.noisy_sgd(1.0, eta=0.01, key=0)
      >>> u, s = opt.update(jnp.zeros(10_000), opt.init(jnp.zeros(10_000)))
      >>> round(float(jnp.std(u)), 2)  # sqrt(eta / (1 + 0)^gamma) at the first step
      0.1

    References:
      Neelakantan et al., 2015, "Adding gradient noise improves learning for very deep
      networks". ``optax.noisy_sgd`` (same numbers and noise).
    """
    return labelled("noisy_sgd", add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))


@_checks.checked(learning_rate=_checks.rate)
def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule, alpha: ScalarOrSchedule = 1.0, beta: ScalarOrSchedule = 1.0
) -> Chain:
    r"""Optimistic gradient descent: the gradient extrapolated by its last change, for
    min-max games.

    .. math:: W \leftarrow W - \eta\,\big((\alpha + \beta) g_t - \beta g_{t-1}\big)

    Args:
      learning_rate: a number >= 0, a schedule, or None. None is optax's meaning: no
        learning rate *and no sign flip*, so the update points uphill (scale it yourself).
      alpha: the weight of the current gradient (a number or a schedule).
      beta: the weight of its change, the optimism (a number or a schedule).

    Returns:
      ``chain(scale_by_optimistic_gradient(alpha, beta), scale_by_learning_rate(lr))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.optimistic_gradient_descent(0.5)
      >>> u, s = opt.update(jnp.array([3.0]), opt.init(jnp.zeros(1)))
      >>> u  # -lr * alpha * g: no previous gradient at step 1 (optax's rule)
      Array([-1.5], dtype=float32)
      >>> opt.update(jnp.array([1.0]), s)[0]  # -lr * (2 * 1 - 1 * 3)
      Array([0.5], dtype=float32)

    References:
      Mokhtari et al., 2019. ``optax.optimistic_gradient_descent`` (same numbers).
    """
    return labelled(
        "optimistic_gradient_descent",
        scale_by_optimistic_gradient(alpha, beta),
        scale_by_learning_rate(learning_rate),
    )


@_checks.checked(eps=_checks.nonnegative)
def polyak_sgd(
    max_learning_rate: Any = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: Any = 0.0,
    eps: Any = 0.0,
    variant: str = "sps",
) -> Chain:
    r"""SGD with Polyak's step size: the loss gap over the squared gradient norm, capped.

    .. math:: W \leftarrow W - s\,\min\!\Big(\frac{f(W) - f^*}{\lVert g \rVert^2 + \epsilon},
              \eta_{max}\Big)\, g

    ``update`` needs the loss: ``update(grads, state, params, value=loss)``.

    Args:
      max_learning_rate: :math:`\eta_{max}`.
      scaling: ``s``, a number or a schedule (the learning rate of the SGD inside).
      f_min: a lower bound of the loss.
      eps: added to the squared norm.
      variant: ``"sps"`` or ``"sps+"`` (a negative gap clipped to 0).

    Returns:
      ``chain(sgd(scaling), scale_by_polyak(f_min, max_learning_rate, eps, variant))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.polyak_sgd()
      >>> opt.update(jnp.ones(2), opt.init(jnp.zeros(2)), value=1.0)[0]  # -(1 / 2) * g
      Array([-0.5, -0.5], dtype=float32)

    References:
      Loizou et al., 2021. ``optax.polyak_sgd`` (same numbers).
    """
    return labelled(
        "polyak_sgd",
        *sgd(scaling).transforms,
        scale_by_polyak(f_min, max_learning_rate, eps, variant),  # pyright: ignore[reportArgumentType]
        readout_names={"scale_by_learning_rate.learning_rate": "scaling"},
    )
