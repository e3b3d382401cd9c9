"""Schedules of one formula: constant, polynomial, exponential, cosine, inverse time,
step decay, inverse square root.

A schedule is data: a frozen pytree dataclass whose numbers are leaves, callable on a
step count (from 0). Pass one as a learning rate (or any hyperparameter) and change its
numbers between calls of a jitted step without recompiling. Names, arguments, defaults
and values follow optax where optax has the schedule; bad arguments raise ``ValueError``
naming the schedule and the argument (optax only logs some of them).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.core import Tracer

from gradtx import _checks, _tree
from gradtx.data import PyTreeData, hyper, pytree_dataclass, static


class Schedule(PyTreeData):
    """Base of gradtx schedules: data that maps a step count to a value."""

    def __call__(self, count: Any) -> jax.Array:
        """The value at step ``count`` (an int or an integer array, from 0)."""
        raise NotImplementedError


def steps_of(count: Any) -> jax.Array:
    """A step count as a float array (float32, or float64 under x64)."""
    return jnp.asarray(count).astype(_tree.float_dtype())


def as_float(value: Any, like: jax.Array) -> jax.Array:
    """An integer argument (a number of steps, a boundary) as a float like ``like``.

    A Python int is converted directly, so a count beyond int32 (``decay_steps=10**10``)
    does not overflow on the way."""
    if isinstance(value, int):
        value = float(value)
    return jnp.asarray(value).astype(like.dtype)


def concrete(value: Any) -> bool:
    """Whether ``value`` is known now (not traced), so it can be checked."""
    return not isinstance(value, Tracer) and not callable(value)


@pytree_dataclass
class constant_schedule(Schedule):
    """The same value at every step.

    Args:
      value: the value.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.constant_schedule(0.1)(1000))
      0.1...

    References:
      ``optax.constant_schedule`` (same values).
    """

    value: Any = hyper()

    def __call__(self, count: Any) -> jax.Array:
        return jnp.full(jnp.shape(count), self.value, dtype=steps_of(count).dtype)


@pytree_dataclass
class polynomial_schedule(Schedule):
    r"""Polynomial decay from ``init_value`` to ``end_value`` over ``transition_steps``.

    .. math:: v(t) = (v_0 - v_1)\,(1 - \tau / T)^{p} + v_1, \qquad
              \tau = \operatorname{clip}(t - t_0, 0, T)

    The :doc:`study notes' </study_notes>` polynomial decay, ``lr0 * (1 - epoch / max_epochs)**power``, is
    ``polynomial_schedule(lr0, 0.0, power, max_epochs)``.

    Args:
      init_value: the value until ``transition_begin``.
      end_value: the value from ``transition_begin + transition_steps`` on.
      power: the exponent ``p``.
      transition_steps: ``T``, > 0.
      transition_begin: ``t0``, >= 0.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.polynomial_schedule(1.0, 0.0, 2, 10)(5))  # (1 - 0.5)**2
      0.25

    References:
      ``optax.polynomial_schedule`` (same values; optax turns a non-positive
      ``transition_steps`` into a constant schedule and a negative begin into 0, gradtx
      raises).
    """

    init_value: Any = hyper()
    end_value: Any = hyper()
    power: Any = hyper()
    transition_steps: Any = hyper(rule=_checks.positive_count)
    transition_begin: Any = hyper(default=0, rule=_checks.nonnegative_count)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        steps = as_float(self.transition_steps, t)
        t = jnp.clip(t - as_float(self.transition_begin, t), 0, steps)
        # Clipped at 0: under jit XLA divides by multiplying with 1 / T, so 1 - T * (1 / T)
        # can be -5e-8, and a fractional power of it NaN (optax's value at the end of
        # polynomial_schedule(power=0.5) under jit). Otherwise optax's numbers.
        frac = jnp.maximum(1 - t / steps, 0)
        return (self.init_value - self.end_value) * (frac**self.power) + self.end_value


@_checks.checked(transition_steps=_checks.positive_count, transition_begin=_checks.nonnegative_count)
def linear_schedule(
    init_value: Any, end_value: Any, transition_steps: Any, transition_begin: Any = 0
) -> Schedule:
    """Linear interpolation from ``init_value`` to ``end_value`` over ``transition_steps``.

    Args:
      init_value: the value until ``transition_begin``.
      end_value: the value from ``transition_begin + transition_steps`` on.
      transition_steps: > 0.
      transition_begin: >= 0.

    Returns:
      ``polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)``.

    Example:
      >>> import gradtx
      >>> float(gradtx.linear_schedule(0.0, 1.0, 4)(1))
      0.25

    References:
      ``optax.linear_schedule`` (same values).
    """
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


@pytree_dataclass
class exponential_decay(Schedule):
    r"""Exponential decay: ``init_value * decay_rate ** ((t - transition_begin) / transition_steps)``.

    .. math:: v(t) = v_0\, r^{(t - t_0) / T} \ (\lfloor\cdot\rfloor \text{ if staircase}),
              \quad v(t) = v_0 \text{ for } t \le t_0

    clipped at ``end_value`` if given. The :doc:`study notes' </study_notes>` ``lr0 * exp(-k * epoch)`` is
    ``exponential_decay(lr0, 1, math.exp(-k))``; their step decay
    ``lr0 * factor**floor(epoch / step_size)`` is
    ``exponential_decay(lr0, step_size, factor, staircase=True)`` (or `step_decay`).

    Args:
      init_value: ``v0``.
      transition_steps: ``T``, > 0.
      decay_rate: ``r``, > 0 (above 1 it grows).
      transition_begin: ``t0``, >= 0.
      staircase: decay in whole steps of ``T``.
      end_value: a floor (for ``r < 1``) or a ceiling (``r > 1``), or None.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.exponential_decay(1.0, 10, 0.5)(20))
      0.25

    References:
      ``optax.exponential_decay`` (same values; optax makes ``transition_steps <= 0``
      or ``decay_rate == 0`` a constant schedule, gradtx raises).
    """

    init_value: Any = hyper()
    transition_steps: Any = hyper(rule=_checks.positive_count)
    decay_rate: Any = hyper(rule=_checks.positive)
    transition_begin: Any = hyper(default=0, rule=_checks.nonnegative_count)
    staircase: bool = static(default=False, rule=_checks.flag)
    end_value: Any = hyper(default=None)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        elapsed = t - as_float(self.transition_begin, t)
        p = elapsed / as_float(self.transition_steps, t)
        if self.staircase:
            p = jnp.floor(p)
        decayed = jnp.where(elapsed <= 0, self.init_value, self.init_value * jnp.power(self.decay_rate, p))
        if self.end_value is None:
            return decayed
        return jnp.where(
            jnp.asarray(self.decay_rate) < 1,
            jnp.maximum(decayed, self.end_value),
            jnp.minimum(decayed, self.end_value),
        )


@pytree_dataclass
class cosine_decay_schedule(Schedule):
    r"""Cosine annealing from ``init_value`` to ``alpha * init_value`` over ``decay_steps``.

    .. math:: v(t) = v_0 \big((1 - \alpha)\, c(t)^{e} + \alpha\big), \qquad
              c(t) = \tfrac12 \big(1 + \cos(\pi \min(t, T) / T)\big)

    The :doc:`study notes' </study_notes>` cosine annealing (the schedule they call the most used).

    Args:
      init_value: ``v0``.
      decay_steps: ``T``, > 0.
      alpha: the final value as a fraction of ``v0``.
      exponent: ``e``.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> round(float(gradtx.cosine_decay_schedule(1.0, 100)(50)), 6)
      0.5

    References:
      Loshchilov and Hutter, 2017 (SGDR). ``optax.cosine_decay_schedule`` (same values);
      ``torch.optim.lr_scheduler.CosineAnnealingLR`` with ``eta_min = alpha * v0``.
    """

    init_value: Any = hyper()
    decay_steps: Any = hyper(rule=_checks.positive_count)
    alpha: Any = hyper(default=0.0)
    exponent: Any = hyper(default=1.0)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        steps = as_float(self.decay_steps, t)
        t = jnp.minimum(t, steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * t / steps))
        return self.init_value * ((1 - self.alpha) * cosine**self.exponent + self.alpha)


@pytree_dataclass
class inverse_time_decay(Schedule):
    r"""Inverse time decay: ``init_value / (1 + decay_rate * t / transition_steps)``.

    One of :ref:`the study notes' decays <learning-rate-decay>`.

    .. math:: v(t) = v_0 / (1 + k\, t / T) \ (\lfloor t / T \rfloor \text{ if staircase})

    Args:
      init_value: ``v0``.
      decay_rate: ``k``, >= 0.
      transition_steps: ``T``, > 0 (1: ``k`` per step).
      staircase: decay in whole steps of ``T``.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.inverse_time_decay(1.0, 0.5)(2))  # 1 / (1 + 0.5 * 2)
      0.5

    References:
      Not in optax. Keras' ``InverseTimeDecay`` (same formula).
    """

    init_value: Any = hyper()
    decay_rate: Any = hyper(rule=_checks.nonnegative)
    transition_steps: Any = hyper(default=1, rule=_checks.positive_count)
    staircase: bool = static(default=False, rule=_checks.flag)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        p = t / as_float(self.transition_steps, t)
        if self.staircase:
            p = jnp.floor(p)
        return self.init_value / (1 + self.decay_rate * p)


@pytree_dataclass
class step_decay(Schedule):
    r"""Step decay: ``init_value * factor ** floor(t / step_size)``.

    One of :ref:`the study notes' decays <learning-rate-decay>`.

    Args:
      init_value: the value for the first ``step_size`` steps.
      step_size: steps between two decays, > 0.
      factor: the multiplier at each decay, >= 0.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.step_decay(1.0, 10, 0.5)(25))
      0.25

    References:
      Not in optax under this name (``optax.exponential_decay(..., staircase=True)``
      computes it); ``torch.optim.lr_scheduler.StepLR(step_size, gamma=factor)``.
    """

    init_value: Any = hyper()
    step_size: Any = hyper(rule=_checks.positive)
    factor: Any = hyper(default=0.1, rule=_checks.nonnegative)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        return self.init_value * jnp.power(self.factor, jnp.floor(t / as_float(self.step_size, t)))


@pytree_dataclass
class inverse_sqrt_schedule(Schedule):
    r"""Linear warm-up, then decay with the inverse square root of the step (Transformer).

    .. math:: v(t) = v_0 + (v_p - v_0)\, t / w \ \ (t < w), \qquad v(t) = v_p \sqrt{w / t} \ \ (t \ge w)

    With ``init_value = 0`` this is Vaswani et al.'s ``d**-0.5 * min(t**-0.5, t * w**-1.5)``
    scaled to peak at ``peak_value``.

    Args:
      peak_value: the value at the end of the warm-up.
      warmup_steps: ``w``, > 0.
      init_value: the value at step 0.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> float(gradtx.inverse_sqrt_schedule(1.0, 100)(400))  # sqrt(100 / 400)
      0.5

    References:
      Vaswani et al., 2017, section 5.3. Not in optax.
    """

    peak_value: Any = hyper()
    warmup_steps: Any = hyper(rule=_checks.positive_count)
    init_value: Any = hyper(default=0.0)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        w = as_float(self.warmup_steps, t)
        warm = self.init_value + (self.peak_value - self.init_value) * t / w
        decay = self.peak_value * jnp.sqrt(w / jnp.maximum(t, w))
        return jnp.where(t < w, warm, decay)
