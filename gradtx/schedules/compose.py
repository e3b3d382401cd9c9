"""Schedules built from pieces: joins, piecewise schedules, products, warm-ups, restarts,
one-cycle, warmup-stable-decay, and PyTorch's cyclic schedule.

Composite schedules are data made of data: ``warmup_cosine_decay_schedule`` returns a
`join_schedules` of a `polynomial_schedule` and a `cosine_decay_schedule`, every number
a leaf.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._checks import InputError
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.schedules.decay import (
    Schedule,
    as_float,
    concrete,
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    linear_schedule,
    steps_of,
)


@pytree_dataclass
class function_schedule(Schedule):
    """A plain Python callable of the step, held as static data inside a composite.

    Args:
      fn: the callable (an optax schedule, say).

    Returns:
      A schedule whose ``__call__`` is ``fn``.

    Example:
      >>> import gradtx
      >>> float(gradtx.function_schedule(lambda t: 0.5)(3))
      0.5

    References:
      Used by `join_schedules` and `multiply_schedules` for optax schedules.
    """

    fn: Callable[[Any], Any] = static()

    def __call__(self, count: Any) -> jax.Array:
        return jnp.asarray(self.fn(count))


def _as_schedule(value: Any) -> Schedule:
    return value if isinstance(value, Schedule) else function_schedule(value)


def _increasing(owner: str, boundaries: Sequence[Any]) -> None:
    values = [b for b in boundaries if concrete(b)]
    for b in values:
        _checks.nonnegative.check(owner, "boundaries", b)
    if len(values) == len(boundaries):
        _checks.require(
            owner,
            "boundaries",
            list(boundaries),
            all(a < b for a, b in itertools.pairwise(values)),
            "must be strictly increasing",
        )


@pytree_dataclass
class join_schedules(Schedule):
    """Runs ``schedules[i]`` from ``boundaries[i - 1]`` on, restarting its step at 0.

    Args:
      schedules: the schedules (gradtx schedules or plain callables).
      boundaries: one step per schedule after the first, strictly increasing.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> decay = gradtx.linear_schedule(1.0, 0.0, 10)
      >>> s = gradtx.join_schedules([gradtx.constant_schedule(1.0), decay], [5])
      >>> float(s(4)), float(s(10))
      (1.0, 0.5)

    References:
      ``optax.join_schedules`` (same values).
    """

    schedules: Sequence[Any] = hyper()
    boundaries: Sequence[Any] = hyper()

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedules", tuple(_as_schedule(s) for s in self.schedules))
        object.__setattr__(self, "boundaries", tuple(self.boundaries))
        super().__post_init__()
        name = type(self).__name__
        if len(self.boundaries) != len(self.schedules) - 1:
            raise InputError(
                name,
                f"boundaries needs one step per schedule after the first: {len(self.schedules)} schedules, "
                f"got {len(self.boundaries)} boundaries",
            )
        _increasing(name, self.boundaries)

    def __call__(self, count: Any) -> jax.Array:
        step = jnp.asarray(count)
        output = self.schedules[0](step)
        for boundary, schedule in zip(self.boundaries, self.schedules[1:], strict=True):
            output = jnp.where(step < boundary, output, schedule(step - boundary))
        return output


@pytree_dataclass
class piecewise_constant_schedule(Schedule):
    """``init_value`` multiplied by ``scale`` at each boundary step.

    Args:
      init_value: the value before the first boundary.
      boundaries_and_scales: ``{step: scale}``, scales >= 0, steps >= 0.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> s = gradtx.piecewise_constant_schedule(1.0, {10: 0.5, 20: 0.1})
      >>> [round(float(s(t)), 6) for t in (9, 10, 20)]
      [1.0, 0.5, 0.05]

    References:
      ``optax.piecewise_constant_schedule`` (same values);
      ``torch.optim.lr_scheduler.MultiStepLR`` with one shared factor.
    """

    init_value: Any = hyper()
    boundaries_and_scales: dict[int, Any] | None = hyper(default=None)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        for boundary, scale in (self.boundaries_and_scales or {}).items():
            _checks.nonnegative.check(name, "boundaries_and_scales (a scale)", scale)
            _checks.nonnegative.check(name, "boundaries_and_scales (a boundary)", boundary)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        v = jnp.asarray(self.init_value, t.dtype) * jnp.ones_like(t)
        for threshold, scale in sorted((self.boundaries_and_scales or {}).items()):
            indicator = jnp.maximum(0.0, jnp.sign(as_float(threshold, t) - t))
            v = v * indicator + (1 - indicator) * scale * v
        return v


def _linear_interpolate(start: jax.Array, end: jax.Array, pct: jax.Array) -> jax.Array:
    return (end - start) * pct + start


def _cosine_interpolate(start: jax.Array, end: jax.Array, pct: jax.Array) -> jax.Array:
    return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1)


@pytree_dataclass
class piecewise_interpolate_schedule(Schedule):
    """Linear or cosine interpolation between values set at boundary steps.

    The value at each boundary is ``init_value`` times the product of the scales up to
    it; between boundaries it is interpolated.

    Args:
      interpolate_type: ``"linear"`` or ``"cosine"``.
      init_value: the value at step 0.
      boundaries_and_scales: ``{step: scale}``, scales >= 0, steps >= 0.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> s = gradtx.piecewise_interpolate_schedule("linear", 1.0, {10: 0.5})
      >>> float(s(5))
      0.75

    References:
      ``optax.piecewise_interpolate_schedule`` (same values).
    """

    interpolate_type: Literal["linear", "cosine"] = static()
    init_value: Any = hyper()
    boundaries_and_scales: dict[int, Any] | None = hyper(default=None)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.interpolate_type not in ("linear", "cosine"):
            raise InputError(
                name, f"interpolate_type must be 'linear' or 'cosine', got {self.interpolate_type!r}"
            )
        for boundary, scale in (self.boundaries_and_scales or {}).items():
            _checks.nonnegative.check(name, "boundaries_and_scales (a scale)", scale)
            _checks.nonnegative.check(name, "boundaries_and_scales (a boundary)", boundary)

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        items = sorted((self.boundaries_and_scales or {}).items())
        bounds = jnp.stack([as_float(b, t) for b in [0, *(b for b, _ in items)]])
        values = jnp.cumprod(
            jnp.stack([jnp.asarray(v, t.dtype) for v in [self.init_value, *(s for _, s in items)]])
        )
        if not items:
            return values[0] * jnp.ones_like(t)
        sizes = jnp.maximum(bounds[1:] - bounds[:-1], 1)
        inside = jnp.logical_and(bounds[:-1] <= t, t < bounds[1:]).astype(t.dtype)
        pct = (t - bounds[:-1]) / sizes
        interpolate = _linear_interpolate if self.interpolate_type == "linear" else _cosine_interpolate
        return (
            inside.dot(interpolate(values[:-1], values[1:], pct))
            + (bounds[-1] <= t).astype(t.dtype) * values[-1]
        )


@pytree_dataclass
class multiply_schedules(Schedule):
    """The product of several schedules (PyTorch's ``ChainedScheduler``).

    Args:
      schedules: the factors (gradtx schedules or plain callables).

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> s = gradtx.multiply_schedules([gradtx.constant_schedule(0.1), gradtx.step_decay(1.0, 10, 0.5)])
      >>> round(float(s(10)), 6)
      0.05

    References:
      ``torch.optim.lr_scheduler.ChainedScheduler`` of multiplicative schedulers
      (``StepLR``, ``ExponentialLR``, ...). Not in optax.
    """

    schedules: Sequence[Any] = hyper()

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedules", tuple(_as_schedule(s) for s in self.schedules))
        super().__post_init__()
        if not self.schedules:
            raise InputError("multiply_schedules", "schedules must not be empty")

    def __call__(self, count: Any) -> jax.Array:
        value = self.schedules[0](count)
        for schedule in self.schedules[1:]:
            value = value * schedule(count)
        return value


def _warmup(name: str, init_value: Any, peak_value: Any, warmup_steps: Any) -> Schedule:
    if concrete(warmup_steps) and warmup_steps == 0:
        return constant_schedule(init_value)  # never used: the join starts past it
    return linear_schedule(init_value, peak_value, warmup_steps)


@_checks.checked(warmup_steps=_checks.nonnegative_count)
def warmup_constant_schedule(init_value: Any, peak_value: Any, warmup_steps: Any) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value``, then constant.

    Args:
      init_value: the value at step 0.
      peak_value: the value from ``warmup_steps`` on.
      warmup_steps: > 0.

    Returns:
      ``linear_schedule(init_value, peak_value, warmup_steps)``.

    Example:
      >>> import gradtx
      >>> float(gradtx.warmup_constant_schedule(0.0, 1.0, 10)(5))
      0.5

    References:
      ``optax.warmup_constant_schedule`` (same values for ``warmup_steps > 0``; for 0,
      optax's schedule stays at ``init_value`` for ever, gradtx raises).
    """
    _checks.require(
        "warmup_constant_schedule",
        "warmup_steps",
        warmup_steps,
        not concrete(warmup_steps) or bool(warmup_steps != 0),
        "must be an integer > 0 (at 0 optax's schedule stays at init_value for ever; for no "
        "warm-up use constant_schedule(peak_value))",
    )
    return linear_schedule(init_value, peak_value, warmup_steps)


@_checks.checked(warmup_steps=_checks.nonnegative_count, decay_steps=_checks.positive_count)
def warmup_cosine_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: Any,
    decay_steps: Any,
    end_value: Any = 0.0,
    exponent: Any = 1.0,
) -> Schedule:
    """Linear warm-up to ``peak_value``, then cosine decay to ``end_value``.

    The :doc:`study notes' </study_notes>` warm-up-then-decay.

    Args:
      init_value: the value at step 0.
      peak_value: the value at the end of the warm-up.
      warmup_steps: >= 0.
      decay_steps: the total length, warm-up included; > ``warmup_steps``.
      end_value: the value from ``decay_steps`` on.
      exponent: the cosine's exponent.

    Returns:
      A `join_schedules` of the warm-up and a `cosine_decay_schedule`.

    Example:
      >>> import gradtx
      >>> s = gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 10, 110)
      >>> float(s(5)), round(float(s(60)), 6)
      (0.5, 0.5)

    References:
      Goyal et al., 2017 (warm-up); Loshchilov and Hutter, 2017.
      ``optax.warmup_cosine_decay_schedule`` (same values).
    """
    name = "warmup_cosine_decay_schedule"
    if concrete(decay_steps) and concrete(warmup_steps):
        _checks.require(
            name,
            "warmup_steps",
            warmup_steps,
            warmup_steps < decay_steps,
            f"must be smaller than decay_steps ({decay_steps}), the total length",
        )
    alpha = _ratio(end_value, peak_value)
    return join_schedules(
        [
            _warmup(name, init_value, peak_value, warmup_steps),
            cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent),
        ],
        [warmup_steps],
    )


def _ratio(end_value: Any, peak_value: Any) -> Any:
    if concrete(peak_value) and concrete(end_value):
        return 0.0 if peak_value == 0.0 else end_value / peak_value
    return jnp.where(jnp.asarray(peak_value) == 0, 0.0, end_value / peak_value)


@_checks.checked(
    warmup_steps=_checks.nonnegative_count,
    transition_steps=_checks.positive_count,
    transition_begin=_checks.nonnegative_count,
    staircase=_checks.flag,
)
def warmup_exponential_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: Any,
    transition_steps: Any,
    decay_rate: Any,
    transition_begin: Any = 0,
    staircase: bool = False,
    end_value: Any = None,
) -> Schedule:
    """Linear warm-up to ``peak_value``, then `exponential_decay`.

    Args:
      init_value: the value at step 0.
      peak_value: the value at the end of the warm-up.
      warmup_steps: >= 0.
      transition_steps: of the decay, > 0.
      decay_rate: of the decay, > 0.
      transition_begin: of the decay, counted after the warm-up.
      staircase: decay in whole steps.
      end_value: a floor (or ceiling) of the decay.

    Returns:
      A `join_schedules` of the warm-up and an `exponential_decay`.

    Example:
      >>> import gradtx
      >>> float(gradtx.warmup_exponential_decay_schedule(0.0, 1.0, 10, 10, 0.5)(20))
      0.5

    References:
      ``optax.warmup_exponential_decay_schedule`` (same values).
    """
    return join_schedules(
        [
            _warmup("warmup_exponential_decay_schedule", init_value, peak_value, warmup_steps),
            exponential_decay(
                peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
            ),
        ],
        [warmup_steps],
    )


def sgdr_schedule(cosine_kwargs: Sequence[dict[str, Any]]) -> Schedule:
    """Warm restarts: one `warmup_cosine_decay_schedule` per dict, one after the other.

    Args:
      cosine_kwargs: arguments of each `warmup_cosine_decay_schedule`.

    Returns:
      A `join_schedules`.

    Example:
      >>> import gradtx
      >>> period = dict(init_value=1.0, peak_value=1.0, warmup_steps=0, decay_steps=10)
      >>> s = gradtx.sgdr_schedule([period, period])
      >>> round(float(s(5)), 6), float(s(10))
      (0.5, 1.0)

    References:
      Loshchilov and Hutter, 2017. ``optax.sgdr_schedule`` (same values);
      ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`` (equal periods, no warm-up).
    """
    schedules, boundaries, step = [], [], 0
    for kwargs in cosine_kwargs:
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        step += kwargs["decay_steps"]
        boundaries.append(step)
    if not schedules:
        raise InputError("sgdr_schedule", "cosine_kwargs must not be empty")
    return join_schedules(schedules, boundaries[:-1])


@_checks.checked(transition_steps=_checks.positive_count)
def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: Any,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    """One cycle of linear warm-up to ``peak_value``, linear decay, then annealing.

    Args:
      transition_steps: the cycle's length, > 0 (a Python int: the phase boundaries
        are computed from it when built).
      peak_value: the maximum.
      pct_start: the fraction of the cycle spent rising.
      pct_final: the fraction at which the fall ends and the annealing starts.
      div_factor: the initial value is ``peak_value / div_factor``.
      final_div_factor: the final value is the initial one divided by this.

    Returns:
      A `piecewise_interpolate_schedule`.

    Example:
      >>> import gradtx
      >>> round(float(gradtx.linear_onecycle_schedule(100, 1.0)(30)), 6)
      1.0

    References:
      Smith and Topin, 2018. ``optax.linear_onecycle_schedule`` (same values).
    """
    return piecewise_interpolate_schedule(
        "linear",
        peak_value / div_factor,
        {
            int(pct_start * transition_steps): div_factor,
            int(pct_final * transition_steps): 1.0 / div_factor,
            transition_steps: 1.0 / final_div_factor,
        },
    )


@_checks.checked(transition_steps=_checks.positive_count)
def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: Any,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    """One cycle of cosine warm-up to ``peak_value`` and cosine annealing.

    Args:
      transition_steps: the cycle's length, > 0 (a Python int).
      peak_value: the maximum.
      pct_start: the fraction of the cycle spent rising.
      div_factor: the initial value is ``peak_value / div_factor``.
      final_div_factor: the final value is the initial one divided by this.

    Returns:
      A `piecewise_interpolate_schedule`.

    Example:
      >>> import gradtx
      >>> round(float(gradtx.cosine_onecycle_schedule(100, 1.0)(30)), 6)
      1.0

    References:
      Smith and Topin, 2018. ``optax.cosine_onecycle_schedule`` (same values).
    """
    return piecewise_interpolate_schedule(
        "cosine",
        peak_value / div_factor,
        {
            int(pct_start * transition_steps): div_factor,
            int(transition_steps): 1.0 / (div_factor * final_div_factor),
        },
    )


@pytree_dataclass
class warmup_stable_decay_schedule(Schedule):
    r"""Warm-up, a long constant phase, then a short cool-down (WSD).

    .. math::
        v(t) = v_0 + (v_p - v_0)\, t / w \ (t < w); \quad v_p \ (w \le t < w + s); \quad
        v_1 + (v_p - v_1)\, c\big(\min((t - w - s) / d, 1)\big)

    with the cool-down shape ``c(x) = 1 - x`` (linear), ``(1 + cos(pi x)) / 2``
    (cosine) or ``1 - sqrt(x)`` (1-sqrt).

    Args:
      peak_value: ``v_p``.
      warmup_steps: ``w`` >= 0.
      stable_steps: ``s`` >= 0.
      decay_steps: ``d`` > 0.
      init_value: ``v_0``.
      end_value: ``v_1``.
      decay_type: ``"linear"``, ``"cosine"`` or ``"1-sqrt"``.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> s = gradtx.warmup_stable_decay_schedule(1.0, 10, 80, 10, decay_type="1-sqrt")
      >>> float(s(50)), round(float(s(92.5)), 6)
      (1.0, 0.5)

    References:
      Hu et al., 2024 (MiniCPM); Hägele et al., 2024 (the 1-sqrt cool-down). Not in optax.
    """

    peak_value: Any = hyper()
    warmup_steps: Any = hyper(rule=_checks.nonnegative_count)
    stable_steps: Any = hyper(rule=_checks.nonnegative_count)
    decay_steps: Any = hyper(rule=_checks.positive_count)
    init_value: Any = hyper(default=0.0)
    end_value: Any = hyper(default=0.0)
    decay_type: Literal["linear", "cosine", "1-sqrt"] = static(default="linear")

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.decay_type not in ("linear", "cosine", "1-sqrt"):
            raise InputError(
                name, f"decay_type must be 'linear', 'cosine' or '1-sqrt', got {self.decay_type!r}"
            )

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        w = as_float(self.warmup_steps, t)
        cool_start = w + as_float(self.stable_steps, t)
        warm = self.init_value + (self.peak_value - self.init_value) * t / jnp.maximum(w, 1)
        x = jnp.clip((t - cool_start) / as_float(self.decay_steps, t), 0, 1)
        if self.decay_type == "linear":
            shape = 1 - x
        elif self.decay_type == "cosine":
            shape = 0.5 * (1 + jnp.cos(jnp.pi * x))
        else:
            shape = 1 - jnp.sqrt(x)
        cool = self.end_value + (self.peak_value - self.end_value) * shape
        return jnp.where(t < w, warm, cool)


@pytree_dataclass
class cyclic_schedule(Schedule):
    r"""Cyclical values between ``base_value`` and ``max_value`` (PyTorch's ``CyclicLR``).

    .. math::
        c = \lfloor 1 + t / L \rfloor, \quad x = 1 + t / L - c, \quad
        h = x / r \ (x \le r) \text{ else } (x - 1) / (r - 1), \quad
        v = b + (m - b)\, h\, \sigma

    with ``L = up + down``, ``r = up / L``, and ``sigma`` = 1 (``"triangular"``),
    ``1 / 2**(c - 1)`` (``"triangular2"``) or ``gamma**t`` (``"exp_range"``).

    Args:
      base_value: the lower bound ``b``.
      max_value: the upper bound ``m``.
      step_size_up: steps of the rising half, > 0.
      step_size_down: steps of the falling half (default: ``step_size_up``).
      mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
      gamma: the per-step factor of ``"exp_range"``.

    Returns:
      A schedule.

    Example:
      >>> import gradtx
      >>> s = gradtx.cyclic_schedule(0.0, 1.0, 10)
      >>> float(s(5)), float(s(10)), float(s(15))
      (0.5, 1.0, 0.5)

    References:
      Smith, 2017. ``torch.optim.lr_scheduler.CyclicLR`` (same values). Not in optax.
    """

    base_value: Any = hyper()
    max_value: Any = hyper()
    step_size_up: Any = hyper(default=2000, rule=_checks.positive_count)
    step_size_down: Any = hyper(default=None, rule=_checks.positive_count)
    mode: Literal["triangular", "triangular2", "exp_range"] = static(default="triangular")
    gamma: Any = hyper(default=1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.mode not in ("triangular", "triangular2", "exp_range"):
            raise InputError(
                name, f"mode must be 'triangular', 'triangular2' or 'exp_range', got {self.mode!r}"
            )

    def __call__(self, count: Any) -> jax.Array:
        t = steps_of(count)
        up = as_float(self.step_size_up, t)
        down = up if self.step_size_down is None else as_float(self.step_size_down, t)
        total = up + down
        ratio = up / total
        cycle = jnp.floor(1 + t / total)
        x = 1.0 + t / total - cycle
        height = jnp.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        if self.mode == "triangular":
            factor = jnp.ones_like(t)
        elif self.mode == "triangular2":
            factor = 1 / (2.0 ** (cycle - 1))
        else:
            factor = jnp.power(self.gamma, t)
        return self.base_value + (self.max_value - self.base_value) * height * factor
