"""``keras.optimizers.schedules`` as gradtx schedules: same names, arguments and values.

Keras evaluates a schedule at the optimizer's ``iterations`` (the updates made so far,
from 0), as gradtx does, so a schedule passes straight to a `gradtx.keras` optimizer's
``learning_rate``. Values are float32, as Keras computes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._checks import InputError
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.schedules.decay import Schedule, exponential_decay, inverse_time_decay, steps_of

__all__ = [
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "InverseTimeDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
]


def ExponentialDecay(
    initial_learning_rate: Any, decay_steps: Any, decay_rate: Any, staircase: bool = False
) -> Schedule:
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (floored if staircase).

    Args:
      initial_learning_rate: the rate at step 0.
      decay_steps: steps per factor of ``decay_rate``, > 0.
      decay_rate: the factor.
      staircase: decay in whole steps of ``decay_steps``.

    Returns:
      ``gradtx.exponential_decay(initial_learning_rate, decay_steps, decay_rate, staircase=staircase)``.

    Example:
      >>> import gradtx
      >>> float(gradtx.keras.schedules.ExponentialDecay(1.0, 10, 0.5)(20))
      0.25

    References:
      ``keras.optimizers.schedules.ExponentialDecay``.
    """
    return exponential_decay(initial_learning_rate, decay_steps, decay_rate, staircase=staircase)


def InverseTimeDecay(
    initial_learning_rate: Any, decay_steps: Any, decay_rate: Any, staircase: bool = False
) -> Schedule:
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    Args:
      initial_learning_rate: the rate at step 0.
      decay_steps: > 0.
      decay_rate: >= 0.
      staircase: decay in whole steps of ``decay_steps``.

    Returns:
      ``gradtx.inverse_time_decay(initial_learning_rate, decay_rate, decay_steps, staircase)``.

    Example:
      >>> import gradtx
      >>> float(gradtx.keras.schedules.InverseTimeDecay(1.0, 10, 1.0)(10))
      0.5

    References:
      ``keras.optimizers.schedules.InverseTimeDecay``.
    """
    return inverse_time_decay(initial_learning_rate, decay_rate, decay_steps, staircase)


@pytree_dataclass
class PiecewiseConstantDecay(Schedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[1]`` while ``step <=
    boundaries[1]``, ..., then ``values[-1]``.

    The boundary step itself still has the earlier value (optax's
    ``piecewise_constant_schedule`` switches at the boundary).

    Args:
      boundaries: increasing steps.
      values: one more value than boundaries.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> s = gradtx.keras.schedules.PiecewiseConstantDecay([2], [1.0, 0.5])
      >>> float(s(2)), float(s(3))
      (1.0, 0.5)

    References:
      ``keras.optimizers.schedules.PiecewiseConstantDecay``.
    """

    boundaries: Sequence[Any] = static()
    values: Sequence[Any] = hyper()

    def __post_init__(self) -> None:
        object.__setattr__(self, "boundaries", tuple(self.boundaries))
        object.__setattr__(self, "values", tuple(self.values))
        if len(self.values) != len(self.boundaries) + 1:
            raise InputError(
                "PiecewiseConstantDecay",
                f"values needs one more entry than boundaries, got {len(self.values)} values and "
                f"{len(self.boundaries)} boundaries",
            )
        super().__post_init__()

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        out = jnp.full(t.shape, self.values[-1], t.dtype)
        for boundary, value in reversed(list(zip(self.boundaries, self.values[:-1], strict=True))):
            out = jnp.where(t <= boundary, jnp.asarray(value, t.dtype), out)
        return out


@pytree_dataclass
class PolynomialDecay(Schedule):
    """``(initial - end) * (1 - step / decay_steps) ** power + end``, the step capped at
    ``decay_steps`` (or, with ``cycle``, ``decay_steps`` stretched to the next multiple
    of itself past the step).

    Args:
      initial_learning_rate: the rate at step 0.
      decay_steps: > 0.
      end_learning_rate: the final rate (1e-4).
      power: the exponent (1.0).
      cycle: restart the decay after ``decay_steps``, each cycle longer.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> round(float(gradtx.keras.schedules.PolynomialDecay(1.0, 4, 0.0, 2.0)(2)), 6)
      0.25

    References:
      ``keras.optimizers.schedules.PolynomialDecay``.
    """

    initial_learning_rate: Any = hyper()
    decay_steps: Any = hyper(rule=_checks.positive_count)
    end_learning_rate: Any = hyper(default=1e-4)
    power: Any = hyper(default=1.0)
    cycle: bool = static(default=False)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        steps = jnp.asarray(self.decay_steps, t.dtype)
        if self.cycle:
            multiplier = jnp.where(t == 0, 1.0, jnp.ceil(t / steps))
            steps = steps * multiplier
        else:
            t = jnp.minimum(t, steps)
        frac = jnp.maximum(1 - t / steps, 0)
        return (
            self.initial_learning_rate - self.end_learning_rate
        ) * frac**self.power + self.end_learning_rate


@pytree_dataclass
class CosineDecay(Schedule):
    """A cosine decay over ``decay_steps`` to ``alpha`` times its start, after an
    optional linear warm-up from ``initial_learning_rate`` to ``warmup_target``.

    Args:
      initial_learning_rate: the rate at step 0.
      decay_steps: steps of the decay, > 0.
      alpha: the final fraction of the peak (0).
      warmup_target: the peak after the warm-up (None: no warm-up).
      warmup_steps: steps of the warm-up (0).

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> round(float(gradtx.keras.schedules.CosineDecay(1.0, 10)(5)), 6)
      0.5

    References:
      Loshchilov and Hutter, 2017; ``keras.optimizers.schedules.CosineDecay``.
    """

    initial_learning_rate: Any = hyper()
    decay_steps: Any = hyper(rule=_checks.positive_count)
    alpha: Any = hyper(default=0.0)
    warmup_target: Any = hyper(default=None)
    warmup_steps: Any = hyper(default=0, rule=_checks.nonnegative_count)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        steps = jnp.asarray(self.decay_steps, t.dtype)
        warmup = jnp.asarray(self.warmup_steps, t.dtype)
        peak = self.initial_learning_rate if self.warmup_target is None else self.warmup_target
        progress = jnp.minimum(t - warmup, steps) / steps
        cosine = 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
        decayed = peak * ((1 - self.alpha) * cosine + self.alpha)
        if self.warmup_target is None:
            return decayed
        rising = (self.warmup_target - self.initial_learning_rate) * (t / jnp.maximum(warmup, 1.0))
        return jnp.where(t < warmup, rising + self.initial_learning_rate, decayed)


@pytree_dataclass
class CosineDecayRestarts(Schedule):
    """Cosine decay with warm restarts (SGDR): periods of ``first_decay_steps *
    t_mul ** i`` steps, each starting at ``m_mul ** i`` of the first rate.

    Args:
      initial_learning_rate: the rate at step 0.
      first_decay_steps: the first period, > 0.
      t_mul: the growth of each period (2.0).
      m_mul: the factor of each restart's rate (1.0).
      alpha: the final fraction of each period's start (0).

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> s = gradtx.keras.schedules.CosineDecayRestarts(1.0, 2, t_mul=1.0)
      >>> [round(float(s(t)), 6) for t in range(4)]
      [1.0, 0.5, 1.0, 0.5]

    References:
      Loshchilov and Hutter, 2017; ``keras.optimizers.schedules.CosineDecayRestarts``.
    """

    initial_learning_rate: Any = hyper()
    first_decay_steps: Any = hyper()
    t_mul: Any = hyper(default=2.0)
    m_mul: Any = hyper(default=1.0)
    alpha: Any = hyper(default=0.0)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        fraction = t / jnp.asarray(self.first_decay_steps, t.dtype)
        t_mul = jnp.asarray(self.t_mul, t.dtype)
        if isinstance(self.t_mul, (int, float)) and self.t_mul == 1.0:
            restart = jnp.floor(fraction)
            fraction = fraction - restart
        else:
            restart = jnp.floor(jnp.log(1.0 - fraction * (1.0 - t_mul)) / jnp.log(t_mul))
            done = (1.0 - t_mul**restart) / (1.0 - t_mul)
            fraction = (fraction - done) / t_mul**restart
        m = jnp.asarray(self.m_mul, t.dtype) ** restart
        cosine = 0.5 * m * (1.0 + jnp.cos(jnp.pi * fraction))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)
