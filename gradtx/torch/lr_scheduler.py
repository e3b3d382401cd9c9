"""``torch.optim.lr_scheduler`` as gradtx schedules: same names, arguments and values.

A PyTorch scheduler reads the learning rate from its optimizer; a gradtx schedule is
given it as its first argument (``lr``; ``max_lr`` for `OneCycleLR`, ``base_lr`` and
``max_lr`` for `CyclicLR`) and passed to the optimizer as its ``lr``::

    sched = gradtx.torch.OneCycleLR(max_lr=1e-2, total_steps=1000)
    opt = gradtx.torch.AdamW(lr=sched, betas=(sched.momentum, 0.999))

The value at step ``t`` (from 0) is the learning rate PyTorch's optimizer uses at its
``t + 1``-th ``step()`` when ``scheduler.step()`` follows each ``optimizer.step()``:
gradtx evaluates a schedule at the number of updates made so far, so nothing else is
needed. For schedulers stepped once per epoch, wrap the schedule in `per_epoch`.

Values are computed in float32 from closed forms; PyTorch computes in float64, mostly
by recursion. They agree to about 1e-7 of the largest learning rate (the tests compare
300 steps of each). Cosines use :math:`(1 + \\cos x)/2 = \\cos^2(x/2)`, which keeps
the values near the minimum accurate in float32.

Not provided: ``ReduceLROnPlateau`` (it reads a metric, not the step: keep the
learning rate as data and change it between jitted calls, which needs no recompile)
and ``MultiplicativeLR`` (a product over a user function's past values; write
its closed form as a `LambdaLR`).

`asgd_learning_rate` is PyTorch ASGD's own step size, kept here with the schedulers.
One file over 600 lines on purpose: it mirrors ``torch.optim.lr_scheduler``, one class
per scheduler in PyTorch's order, sharing the cosine and cycle helpers at the top.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._checks import InputError
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.schedules.compose import _as_schedule, join_schedules
from gradtx.schedules.decay import Schedule, steps_of

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "PolynomialLR",
    "SequentialLR",
    "StepLR",
    "asgd_learning_rate",
    "per_epoch",
]


def _cos_half(x: jax.Array) -> jax.Array:
    """``(1 + cos(pi x)) / 2`` as ``cos(pi x / 2)**2``: accurate where it is near 0."""
    return jnp.cos(jnp.pi * x / 2) ** 2


@pytree_dataclass
class StepLR(Schedule):
    """``lr * gamma ** (t // step_size)``.

    Args:
      lr: the optimizer's learning rate.
      step_size: steps between decays, an integer > 0.
      gamma: the factor of each decay (0.1).

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.torch.StepLR(1.0, step_size=2, gamma=0.5)(5))  # 0.5 ** 2
      0.25

    References:
      ``torch.optim.lr_scheduler.StepLR``.
    """

    lr: Any = hyper(rule=_checks.rate)
    step_size: int = static(rule=_checks.positive_int)
    gamma: Any = hyper(default=0.1)

    def __call__(self, count: Any) -> jax.Array:
        decays = (jnp.asarray(count) // self.step_size).astype(steps_of(count).dtype)
        return self.lr * self.gamma**decays


@pytree_dataclass
class MultiStepLR(Schedule):
    """``lr * gamma ** (number of milestones <= t)`` (a repeated milestone counts twice).

    Args:
      lr: the optimizer's learning rate.
      milestones: the steps of the decays.
      gamma: the factor of each decay (0.1).

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.torch.MultiStepLR(1.0, milestones=[2, 4], gamma=0.5)(4))
      0.25

    References:
      ``torch.optim.lr_scheduler.MultiStepLR``.
    """

    lr: Any = hyper(rule=_checks.rate)
    milestones: Sequence[int] = static()
    gamma: Any = hyper(default=0.1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(sorted(int(m) for m in self.milestones)))
        super().__post_init__()

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        passed = sum((t >= m).astype(t.dtype) for m in self.milestones) if self.milestones else 0.0
        return self.lr * self.gamma**passed


@pytree_dataclass
class ExponentialLR(Schedule):
    """``lr * gamma ** t``.

    Args:
      lr: the optimizer's learning rate.
      gamma: the factor of each step.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.torch.ExponentialLR(1.0, gamma=0.5)(3))
      0.125

    References:
      ``torch.optim.lr_scheduler.ExponentialLR``.
    """

    lr: Any = hyper(rule=_checks.rate)
    gamma: Any = hyper()

    def __call__(self, count: Any) -> jax.Array:
        return self.lr * self.gamma ** steps_of(count)


@pytree_dataclass
class CosineAnnealingLR(Schedule):
    r"""``eta_min + (lr - eta_min) * (1 + cos(pi t / T_max)) / 2``, periodic past ``T_max``
    (it rises again, as PyTorch's does).

    Args:
      lr: the optimizer's learning rate.
      T_max: half a period, an integer > 0.
      eta_min: the smallest rate (0).

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> round(float(gradtx.torch.CosineAnnealingLR(1.0, T_max=4)(2)), 6)
      0.5

    References:
      ``torch.optim.lr_scheduler.CosineAnnealingLR``.
    """

    lr: Any = hyper(rule=_checks.rate)
    T_max: int = static(rule=_checks.positive_int)
    eta_min: Any = hyper(default=0.0)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        # The phase in [0, 2): t / T_max modulo one period, exact for integer steps.
        phase = jnp.mod(t, 2 * self.T_max) / self.T_max
        return self.eta_min + (self.lr - self.eta_min) * _cos_half(phase)


@pytree_dataclass
class CosineAnnealingWarmRestarts(Schedule):
    r"""Cosine annealing restarted after ``T_0``, ``T_0 * T_mult``, ... steps (SGDR).

    Args:
      lr: the optimizer's learning rate.
      T_0: the first period, an integer > 0.
      T_mult: the growth of each period, an integer >= 1.
      eta_min: the smallest rate (0).

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> s = gradtx.torch.CosineAnnealingWarmRestarts(1.0, T_0=2, T_mult=2)
      >>> [round(float(s(t)), 3) for t in range(7)]
      [1.0, 0.5, 1.0, 0.854, 0.5, 0.146, 1.0]

    References:
      Loshchilov and Hutter, 2017; ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts``.
    """

    lr: Any = hyper(rule=_checks.rate)
    T_0: int = static(rule=_checks.positive_int)
    T_mult: int = static(default=1, rule=_checks.positive_int)
    eta_min: Any = hyper(default=0.0)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        if self.T_mult == 1:
            t_cur, t_i = jnp.mod(t, self.T_0), jnp.asarray(float(self.T_0), t.dtype)
        else:
            # Period k starts at T_0 (T_mult^k - 1) / (T_mult - 1); periods past 2^31 steps
            # are not needed.
            starts = [self.T_0 * (self.T_mult**k - 1) // (self.T_mult - 1) for k in range(64)]
            starts = [s for s in starts if s < 2**31]
            start = jnp.zeros_like(t)
            t_i = jnp.full_like(t, float(self.T_0))
            for k, s in enumerate(starts):
                reached = t >= s
                start = jnp.where(reached, float(s), start)
                t_i = jnp.where(reached, float(self.T_0 * self.T_mult**k), t_i)
            t_cur = t - start
        return self.eta_min + (self.lr - self.eta_min) * _cos_half(t_cur / t_i)


def _anneal(strategy: str, start: Any, end: Any, pct: jax.Array) -> jax.Array:
    if strategy == "cos":
        return end + (start - end) * _cos_half(pct)
    return (end - start) * pct + start


@pytree_dataclass
class OneCycleLR(Schedule):
    r"""The 1cycle policy: warm up to ``max_lr``, then anneal far below the start; the
    momentum (`momentum`) moves the opposite way.

    Phases end at steps ``pct_start * total_steps - 1`` and ``total_steps - 1``
    (three-phase: ``pct_start * total_steps - 1``, ``2 * pct_start * total_steps - 2``
    and ``total_steps - 1``), as PyTorch's; PyTorch raises past ``total_steps``, this
    schedule continues the last phase's formula.

    Args:
      max_lr: the peak learning rate.
      total_steps: the length of the cycle (or give ``epochs`` and ``steps_per_epoch``).
      epochs: with ``steps_per_epoch``, ``total_steps = epochs * steps_per_epoch``.
      steps_per_epoch: see ``epochs``.
      pct_start: the fraction of the cycle spent warming up (0.3).
      anneal_strategy: ``"cos"`` or ``"linear"``.
      cycle_momentum: whether `momentum` cycles (else it is ``max_momentum`` throughout).
      base_momentum: the momentum at the peak rate (0.85).
      max_momentum: the momentum at the start and end (0.95).
      div_factor: the starting rate is ``max_lr / div_factor`` (25).
      final_div_factor: the final rate is the starting rate / ``final_div_factor`` (1e4).
      three_phase: anneal back to the starting rate before the final decay.

    Returns:
      A schedule; its ``momentum`` attribute is the momentum schedule (pass it as SGD's
      ``momentum`` or as ``betas[0]`` of the Adam family, as PyTorch sets them).

    Example:
      >>> import gradtx
      >>> s = gradtx.torch.OneCycleLR(max_lr=1.0, total_steps=10)
      >>> round(float(s(0)), 6), round(float(s(2)), 6), round(float(s.momentum(2)), 6)
      (0.04, 1.0, 0.85)

    References:
      Smith and Topin, 2017; ``torch.optim.lr_scheduler.OneCycleLR``.
    """

    max_lr: Any = hyper()
    total_steps: int | None = static(default=None)
    epochs: int | None = static(default=None)
    steps_per_epoch: int | None = static(default=None)
    pct_start: float = static(default=0.3)
    anneal_strategy: str = static(default="cos")
    cycle_momentum: bool = static(default=True)
    base_momentum: Any = hyper(default=0.85)
    max_momentum: Any = hyper(default=0.95)
    div_factor: Any = hyper(default=25.0)
    final_div_factor: Any = hyper(default=1e4)
    three_phase: bool = static(default=False)

    def __post_init__(self) -> None:
        if self.total_steps is None:
            if self.epochs is None or self.steps_per_epoch is None:
                raise InputError("OneCycleLR", "give total_steps, or epochs and steps_per_epoch")
            _checks.positive_int.check("OneCycleLR", "epochs", self.epochs)
            _checks.positive_int.check("OneCycleLR", "steps_per_epoch", self.steps_per_epoch)
            object.__setattr__(self, "total_steps", self.epochs * self.steps_per_epoch)
        _checks.positive_int.check("OneCycleLR", "total_steps", self.total_steps)
        if not 0 <= self.pct_start <= 1:
            raise InputError("OneCycleLR", f"pct_start must be in [0, 1], got {self.pct_start!r}")
        if self.anneal_strategy not in ("cos", "linear"):
            raise InputError(
                "OneCycleLR", f"anneal_strategy must be 'cos' or 'linear', got {self.anneal_strategy!r}"
            )
        super().__post_init__()

    def _phases(self) -> list[tuple[float, str, str]]:
        total = float(self.total_steps)  # pyright: ignore[reportArgumentType]
        if self.three_phase:
            return [
                (self.pct_start * total - 1, "initial", "max"),
                (2 * self.pct_start * total - 2, "max", "initial"),
                (total - 1, "initial", "min"),
            ]
        return [(self.pct_start * total - 1, "initial", "max"), (total - 1, "max", "min")]

    def _values(self, count: Any, lrs: dict[str, Any]) -> jax.Array:
        t = steps_of(count)
        phases = self._phases()
        out = jnp.zeros_like(t)
        start_step = 0.0
        done = jnp.zeros(t.shape, bool)
        for i, (end_step, a, b) in enumerate(phases):
            last = i == len(phases) - 1
            here = ~done if last else (~done & (t <= end_step))
            pct = (t - start_step) / (end_step - start_step)
            out = jnp.where(here, _anneal(self.anneal_strategy, lrs[a], lrs[b], pct), out)
            done = done | here
            start_step = end_step
        return out

    def __call__(self, count: Any) -> jax.Array:
        initial = self.max_lr / self.div_factor
        lrs = {"initial": initial, "max": self.max_lr, "min": initial / self.final_div_factor}
        return self._values(count, lrs)

    @property
    def momentum(self) -> Schedule:
        """The momentum schedule (SGD's ``momentum``, the Adam family's ``betas[0]``)."""
        if not self.cycle_momentum:
            return _Constant(self.max_momentum)
        return _MomentumOf(self)

    def momentum_at(self, count: Any) -> jax.Array:
        """The momentum at step ``count``."""
        moms = {"initial": self.max_momentum, "max": self.base_momentum, "min": self.max_momentum}
        return self._values(count, moms)


@pytree_dataclass
class CyclicLR(Schedule):
    r"""Cyclical learning rates between ``base_lr`` and ``max_lr``; the momentum
    (`momentum`) cycles the opposite way.

    Args:
      base_lr: the lower rate.
      max_lr: the upper rate.
      step_size_up: steps rising in each cycle (2000).
      step_size_down: steps falling (default: ``step_size_up``).
      mode: ``"triangular"``, ``"triangular2"`` (amplitude halved each cycle) or
        ``"exp_range"`` (amplitude times ``gamma ** t``).
      gamma: see ``mode``.
      scale_fn: a function of the cycle (or of the step) replacing ``mode``; it must
        accept a JAX array.
      scale_mode: ``"cycle"`` or ``"iterations"``: what ``scale_fn`` receives.
      cycle_momentum: whether `momentum` cycles (else it is ``max_momentum``).
      base_momentum: the momentum at ``max_lr`` (0.8).
      max_momentum: the momentum at ``base_lr`` (0.9).

    Returns:
      A schedule; its ``momentum`` attribute is the momentum schedule.

    Example:
      >>> import gradtx
      >>> s = gradtx.torch.CyclicLR(0.0, 1.0, step_size_up=2)
      >>> [float(s(t)) for t in range(5)]
      [0.0, 0.5, 1.0, 0.5, 0.0]

    References:
      Smith, 2017; ``torch.optim.lr_scheduler.CyclicLR``.
    """

    base_lr: Any = hyper()
    max_lr: Any = hyper()
    step_size_up: int = static(default=2000, rule=_checks.positive_int)
    step_size_down: int | None = static(default=None, rule=_checks.positive_int)
    mode: str = static(default="triangular")
    gamma: Any = hyper(default=1.0)
    scale_fn: Callable[[Any], Any] | None = static(default=None)
    scale_mode: str = static(default="cycle")
    cycle_momentum: bool = static(default=True)
    base_momentum: Any = hyper(default=0.8)
    max_momentum: Any = hyper(default=0.9)

    def __post_init__(self) -> None:
        if self.scale_fn is None and self.mode not in ("triangular", "triangular2", "exp_range"):
            raise InputError(
                "CyclicLR", f"mode must be 'triangular', 'triangular2' or 'exp_range', got {self.mode!r}"
            )
        if self.scale_mode not in ("cycle", "iterations"):
            raise InputError(
                "CyclicLR", f"scale_mode must be 'cycle' or 'iterations', got {self.scale_mode!r}"
            )
        super().__post_init__()

    def _factor(self, count: Any) -> tuple[jax.Array, jax.Array]:
        t = steps_of(count)
        up = float(self.step_size_up)
        down = float(self.step_size_down) if self.step_size_down is not None else up
        total = up + down
        ratio = up / total
        cycle = jnp.floor(1 + t / total)
        x = 1.0 + t / total - cycle
        factor = jnp.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        if self.scale_fn is not None:
            scale = self.scale_fn(cycle if self.scale_mode == "cycle" else t)
        elif self.mode == "triangular":
            scale = jnp.ones_like(t)
        elif self.mode == "triangular2":
            scale = 1 / (2.0 ** (cycle - 1))
        else:
            scale = self.gamma**t
        return factor, scale

    def __call__(self, count: Any) -> jax.Array:
        factor, scale = self._factor(count)
        return self.base_lr + (self.max_lr - self.base_lr) * factor * scale

    @property
    def momentum(self) -> Schedule:
        """The momentum schedule (SGD's ``momentum``, the Adam family's ``betas[0]``)."""
        if not self.cycle_momentum:
            return _Constant(self.max_momentum)
        return _MomentumOf(self)

    def momentum_at(self, count: Any) -> jax.Array:
        """The momentum at step ``count``."""
        factor, scale = self._factor(count)
        return self.max_momentum - (self.max_momentum - self.base_momentum) * factor * scale


@pytree_dataclass
class _MomentumOf(Schedule):
    scheduler: Any = hyper()

    def __call__(self, count: Any) -> jax.Array:
        return self.scheduler.momentum_at(count)


@pytree_dataclass
class _Constant(Schedule):
    value: Any = hyper()

    def __call__(self, count: Any) -> jax.Array:
        return jnp.full(jnp.shape(count), self.value, dtype=steps_of(count).dtype)


@pytree_dataclass
class LinearLR(Schedule):
    """``lr`` times a factor moving linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` steps.

    Args:
      lr: the optimizer's learning rate.
      start_factor: the factor at step 0 (1/3).
      end_factor: the factor from ``total_iters`` on (1.0).
      total_iters: an integer > 0 (5).

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.torch.LinearLR(1.0, start_factor=0.5, total_iters=2)(1))
      0.75

    References:
      ``torch.optim.lr_scheduler.LinearLR``.
    """

    lr: Any = hyper(rule=_checks.rate)
    start_factor: Any = hyper(default=1.0 / 3)
    end_factor: Any = hyper(default=1.0)
    total_iters: int = static(default=5, rule=_checks.positive_int)

    def __call__(self, count: Any) -> jax.Array:
        t = jnp.minimum(steps_of(count), float(self.total_iters))
        return self.lr * (self.start_factor + (self.end_factor - self.start_factor) * t / self.total_iters)


@pytree_dataclass
class ConstantLR(Schedule):
    """``lr * factor`` for ``total_iters`` steps, then ``lr``.

    Args:
      lr: the optimizer's learning rate.
      factor: the factor (1/3).
      total_iters: an integer >= 0 (5).

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> s = gradtx.torch.ConstantLR(1.0, factor=0.5, total_iters=2)
      >>> float(s(1)), float(s(2))
      (0.5, 1.0)

    References:
      ``torch.optim.lr_scheduler.ConstantLR``.
    """

    lr: Any = hyper(rule=_checks.rate)
    factor: Any = hyper(default=1.0 / 3)
    total_iters: int = static(default=5)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        return self.lr * jnp.where(t < self.total_iters, self.factor, 1.0)


@pytree_dataclass
class PolynomialLR(Schedule):
    """``lr * (1 - min(t, total_iters) / total_iters) ** power``.

    Args:
      lr: the optimizer's learning rate.
      total_iters: an integer > 0 (5).
      power: the exponent (1.0).

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.torch.PolynomialLR(1.0, total_iters=4, power=2.0)(2))
      0.25

    References:
      ``torch.optim.lr_scheduler.PolynomialLR``.
    """

    lr: Any = hyper(rule=_checks.rate)
    total_iters: int = static(default=5, rule=_checks.positive_int)
    power: Any = hyper(default=1.0)

    def __call__(self, count: Any) -> jax.Array:
        t = jnp.minimum(steps_of(count), float(self.total_iters))
        # (T - t) / T, not 1 - t / T: under jit XLA divides by multiplying with 1 / T, so
        # 1 - T * (1 / T) can be -5e-8, and a fractional power of it NaN.
        return self.lr * ((self.total_iters - t) / self.total_iters) ** self.power


@pytree_dataclass
class LambdaLR(Schedule):
    """``lr * lr_lambda(t)``; ``lr_lambda`` must accept a JAX array (use ``jnp``).

    Args:
      lr: the optimizer's learning rate.
      lr_lambda: a function of the step.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.torch.LambdaLR(2.0, lambda t: 0.5**t)(2))
      0.5

    References:
      ``torch.optim.lr_scheduler.LambdaLR`` (one function; for parameter groups give
      each group its own schedule).
    """

    lr: Any = hyper(rule=_checks.rate)
    lr_lambda: Callable[[Any], Any] = static()

    def __call__(self, count: Any) -> jax.Array:
        return self.lr * jnp.asarray(self.lr_lambda(steps_of(count)))


@_checks.checked()
def SequentialLR(schedulers: Sequence[Any], milestones: Sequence[int]) -> Schedule:
    """``schedulers[i]`` from ``milestones[i - 1]`` on, each restarted at step 0.

    Args:
      schedulers: the schedules, each built with the optimizer's learning rate.
      milestones: one step per schedule after the first, increasing.

    Returns:
      ``gradtx.join_schedules(schedulers, milestones)``.

    Example:
      >>> import gradtx
      >>> warm = gradtx.torch.LinearLR(1.0, start_factor=0.5, total_iters=2)
      >>> decay = gradtx.torch.ExponentialLR(1.0, gamma=0.5)
      >>> s = gradtx.torch.SequentialLR([warm, decay], milestones=[2])
      >>> [float(s(t)) for t in range(4)]
      [0.5, 0.75, 1.0, 0.5]

    References:
      ``torch.optim.lr_scheduler.SequentialLR``.
    """
    return join_schedules(schedulers, milestones)


_CHAINABLE = ("StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "ConstantLR", "PolynomialLR")


@pytree_dataclass
class ChainedScheduler(Schedule):
    """Several schedulers stepped together: the product of their factors.

    PyTorch's chainable schedulers each multiply the current rate by a factor, so the
    chain is ``lr * prod_i (schedulers[i](t) / schedulers[i].lr)``. That holds for
    `StepLR`, `MultiStepLR`, `ExponentialLR`, `LinearLR`, `ConstantLR` and
    `PolynomialLR`. The others set the rate outright (or, `CosineAnnealingLR` at step
    ``T_max + 1``, add to it), so chaining them depends on their order in PyTorch, and
    this class refuses them: write the product as a `LambdaLR`, or join them in time
    with `SequentialLR`.

    Args:
      schedulers: the schedules, each built with the optimizer's learning rate.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> a = gradtx.torch.ConstantLR(1.0, factor=0.5, total_iters=2)
      >>> b = gradtx.torch.ExponentialLR(1.0, gamma=0.5)
      >>> [float(gradtx.torch.ChainedScheduler([a, b])(t)) for t in range(3)]
      [0.5, 0.25, 0.25]

    References:
      ``torch.optim.lr_scheduler.ChainedScheduler``.
    """

    schedulers: Sequence[Any] = hyper()

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedulers", tuple(self.schedulers))
        if not self.schedulers:
            raise InputError("ChainedScheduler", "schedulers must not be empty")
        for s in self.schedulers:
            name = type(s).__name__
            if name not in _CHAINABLE:
                raise InputError(
                    "ChainedScheduler",
                    f"{name} does not only multiply the rate, so its effect in a chain depends on the "
                    "order; chain only StepLR, MultiStepLR, ExponentialLR, LinearLR, ConstantLR and "
                    "PolynomialLR, or write the product as a LambdaLR",
                )
        super().__post_init__()

    def __call__(self, count: Any) -> jax.Array:
        value = self.schedulers[0](count)
        for s in self.schedulers[1:]:
            value = value * (s(count) / s.lr)
        return value


@pytree_dataclass
class per_epoch(Schedule):
    """A scheduler stepped once per epoch: ``schedule(t // steps_per_epoch)``.

    Args:
      schedule: any schedule of the epoch number.
      steps_per_epoch: optimizer steps per epoch, an integer > 0.

    Returns:
      A schedule of the optimizer step.

    Example:
      >>> import gradtx
      >>> s = gradtx.torch.per_epoch(gradtx.torch.StepLR(1.0, step_size=1, gamma=0.5), 10)
      >>> float(s(9)), float(s(10))
      (1.0, 0.5)

    References:
      PyTorch's ``scheduler.step()`` called once per epoch.
    """

    schedule: Any = hyper()
    steps_per_epoch: int = static(rule=_checks.positive_int)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", _as_schedule(self.schedule))
        super().__post_init__()

    def __call__(self, count: Any) -> jax.Array:
        return self.schedule(jnp.asarray(count) // self.steps_per_epoch)


@pytree_dataclass
class asgd_learning_rate(Schedule):
    r"""PyTorch ASGD's step size: :math:`\eta_t = \eta / (1 + \lambda \eta t)^\alpha`, t from 0.

    Args:
      lr: :math:`\eta`.
      lambd: :math:`\lambda`.
      alpha: :math:`\alpha`.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.torch.asgd_learning_rate(0.5, 1.0, 1.0)(2))  # 0.5 / (1 + 1)
      0.25

    References:
      ``torch.optim.ASGD`` (its ``eta``).
    """

    lr: Any = hyper(rule=_checks.rate)
    lambd: Any = hyper()
    alpha: Any = hyper()

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        return self.lr / (1 + self.lambd * self.lr * t) ** self.alpha
