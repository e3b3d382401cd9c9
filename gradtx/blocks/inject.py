"""`inject_hyperparams`: optax's wrapper that keeps hyperparameters in the state, for
code ported from optax.

gradtx needs no wrapper to read or change hyperparameters: pass the optimizer into
``jit`` as data and build a new one to change a value (no recompilation), and read values
with `gradtx.hyperparams`. This wrapper exists so that optax code that reads or writes
``state.hyperparams[...]`` keeps working after the import switch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks, channel
from gradtx._checks import InputError
from gradtx.base import Context, Params, Transform, Updates, safe_increment, zero_count
from gradtx.data import FrozenTree, hyper, pytree_dataclass, static


@runtime_checkable
class StatefulSchedule(Protocol):
    """A schedule with a state of its own: ``init() -> state``,
    ``update(state, **extra) -> state``, ``__call__(state, **extra) -> value`` (optax's
    protocol; `inject_hyperparams` keeps the state in ``hyperparams_states``)."""

    def init(self) -> Any:
        """The initial schedule state."""
        ...

    def update(self, state: Any, **extra_args: Any) -> Any:
        """The next schedule state."""
        ...

    def __call__(self, state: Any, **extra_args: Any) -> Any:
        """The value at ``state``."""
        ...


class WrappedScheduleState(NamedTuple):
    """State of `WrappedSchedule`: the step count."""

    count: jax.Array  # shape=(), dtype=int32  # pyright: ignore[reportIncompatibleMethodOverride]


class WrappedSchedule:
    """A plain schedule of the step made a `StatefulSchedule` (optax's class).

    Args:
      schedule_fn: a function of the step count.

    Example:
      >>> import gradtx
      >>> s = gradtx.WrappedSchedule(lambda t: 2 * t)
      >>> int(s(s.update(s.init())))
      2
    """

    def __init__(self, schedule_fn: Callable[[Any], Any]) -> None:
        self.schedule_fn = schedule_fn

    def init(self) -> WrappedScheduleState:
        """A zero step count."""
        return WrappedScheduleState(count=zero_count())

    def update(self, state: WrappedScheduleState, **extra_args: Any) -> WrappedScheduleState:
        """One step later."""
        del extra_args
        return WrappedScheduleState(count=safe_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra_args: Any) -> Any:
        """The schedule at the state's step."""
        del extra_args
        return self.schedule_fn(state.count)


class InjectStatefulHyperparamsState(NamedTuple):
    """State of `inject_hyperparams` when a hyperparameter is a `StatefulSchedule`:
    step count, values, the schedules' states, the inner state."""

    count: jax.Array  # shape=(), dtype=int32  # pyright: ignore[reportIncompatibleMethodOverride]
    hyperparams: dict[str, jax.Array]
    hyperparams_states: dict[str, Any]
    inner_state: Any


class InjectHyperparamsState(NamedTuple):
    """State of `inject_hyperparams`: step count, hyperparameter values, inner state."""

    count: jax.Array  # shape=(), dtype=int32  # pyright: ignore[reportIncompatibleMethodOverride]
    hyperparams: dict[str, jax.Array]
    inner_state: Any


@pytree_dataclass
class injected(Transform):
    """The transform `inject_hyperparams` builds: ``factory(**static_args, **hyperparams)``
    rebuilt at each update from the values in the state.

    Args:
      factory: the optimizer factory.
      numeric: the initial numeric hyperparameters.
      schedules: ``(name, schedule)`` pairs evaluated at every step.
      others: the fixed arguments.
      hyperparam_dtype: dtype of the values in the state (None: float32).

    Returns:
      A transform whose state is `InjectHyperparamsState`.

    Example:
      >>> import gradtx
      >>> opt = gradtx.inject_hyperparams(gradtx.adam)(1e-3)
      >>> type(opt).__name__
      'injected'

    References:
      Built by `inject_hyperparams`; ``optax.inject_hyperparams``.
    """

    factory: Callable[..., Any] = static()
    numeric: dict[str, Any] = hyper()
    schedules: tuple[tuple[str, Any], ...] = static()
    others: FrozenTree = static()
    hyperparam_dtype: Any = static(default=None, rule=_checks.dtype)
    stateful: tuple[tuple[str, Any], ...] = static(default=(), kw_only=True)

    def _dtype(self) -> Any:
        return jnp.float32 if self.hyperparam_dtype is None else self.hyperparam_dtype

    def _cast(self, value: Any) -> Any:
        value = jnp.asarray(value)
        return value.astype(self._dtype()) if jnp.issubdtype(value.dtype, jnp.floating) else value

    def _inner(self, hparams: dict[str, Any]) -> Any:
        return self.factory(**self.others.tree, **hparams)

    def _initial(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The hyperparameters of the first update, and the stateful schedules' states."""
        hparams = {k: self._cast(v) for k, v in self.numeric.items()}
        hparams.update({k: self._cast(fn(zero_count())) for k, fn in self.schedules})
        schedule_states = {k: fn.init() for k, fn in self.stateful}
        hparams.update({k: self._cast(fn(schedule_states[k])) for k, fn in self.stateful})
        return hparams, schedule_states

    def _inside(self) -> list[Transform]:
        inner = self._inner(self._initial()[0])
        return [inner] if isinstance(inner, Transform) else []

    def _published(self) -> frozenset[str]:
        # Transparent: the optimizer it builds publishes to the blocks after it, as it
        # would outside (the inner runs on this chain's channel).
        return channel.publishes(self._inner(self._initial()[0]))

    def init(self, params: Params) -> InjectHyperparamsState | InjectStatefulHyperparamsState:
        hparams, schedule_states = self._initial()
        inner_state = self._inner(hparams).init(params)
        if not self.stateful:
            return InjectHyperparamsState(zero_count(), hparams, inner_state)
        return InjectStatefulHyperparamsState(zero_count(), hparams, schedule_states, inner_state)

    def _update(self, updates: Updates, state: Any, params: Params | None, ctx: Context):
        hparams = {k: self._cast(v) for k, v in state.hyperparams.items()}
        hparams.update({k: self._cast(fn(state.count)) for k, fn in self.schedules})
        if self.stateful:
            old = state.hyperparams_states
            hparams.update({k: self._cast(fn(old[k], **ctx.extra)) for k, fn in self.stateful})
        inner = self._inner(hparams)
        if isinstance(inner, Transform):
            updates, inner_state = inner._apply(updates, state.inner_state, params, ctx)
        else:
            updates, inner_state = inner.update(updates, state.inner_state, params, **ctx.extra)
        count = safe_increment(state.count)
        if not self.stateful:
            return updates, InjectHyperparamsState(count, hparams, inner_state)
        new = {k: fn.update(state.hyperparams_states[k], **ctx.extra) for k, fn in self.stateful}
        return updates, InjectStatefulHyperparamsState(count, hparams, new, inner_state)

    def _apply(self, updates: Updates, state: Any, params: Params | None, ctx: Context):
        return self._update(updates, state, params, ctx)

    def _hyperparams(self, state: InjectHyperparamsState) -> dict[str, Any]:
        return dict(state.hyperparams)


def inject_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., injected]:
    """Wraps an optimizer factory so its numeric hyperparameters live in the state.

    As optax's ``inject_hyperparams``: the returned factory takes the same arguments;
    numbers become ``state.hyperparams[name]`` (overwrite them between steps), schedules
    are evaluated at each step into it, booleans and ``static_args`` stay fixed.
    Unlike optax, values are kept in float32 (or ``hyperparam_dtype``) whatever the
    parameters' dtype, so ``b2 = 0.999`` does not become 1.0 with bfloat16 parameters.

    As in optax, the inner optimizer then sees float32 arrays, not Python floats, so
    ``1 - b2`` is computed in float32 (about 1e-5 off for 0.999); an optimizer passed
    into ``jit`` as data keeps the exact value and needs no wrapper.

    Args:
      inner_factory: e.g. ``gradtx.adam``.
      static_args: names of arguments to keep fixed (not in the state).
      hyperparam_dtype: dtype of the values in the state (default float32).

    Returns:
      A factory with ``inner_factory``'s signature returning an `injected` transform,
      whose state is `InjectHyperparamsState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1)
      >>> state = opt.init(jnp.zeros(2))
      >>> state.hyperparams["learning_rate"] = jnp.asarray(0.5)
      >>> opt.update(jnp.ones(2), state)[0]
      Array([-0.5, -0.5], dtype=float32)

    References:
      ``optax.inject_hyperparams`` (the same state fields and behaviour).
    """
    static_names = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    unknown = static_names - set(signature.parameters)
    if unknown:
        raise InputError(
            "inject_hyperparams",
            f"static_args {sorted(unknown)} are not arguments of "
            f"{getattr(inner_factory, '__name__', inner_factory)}",
        )

    def factory(*args: Any, **kwargs: Any) -> injected:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        numeric, schedules, others = {}, [], {}
        stateful: list[tuple[str, Any]] = []
        for name, value in bound.arguments.items():
            if name in static_names or value is None or isinstance(value, (bool, str, type, np.dtype)):
                others[name] = value
            elif isinstance(value, StatefulSchedule):
                stateful.append((name, value))
            elif callable(value):
                schedules.append((name, value))
            elif isinstance(value, (int, float, np.ndarray, np.generic, jax.Array)):
                numeric[name] = value
            else:
                others[name] = value
        inner_factory(**bound.arguments)  # check the arguments now, as the factory would
        return injected(
            inner_factory,
            numeric,
            tuple(schedules),
            FrozenTree(others),
            hyperparam_dtype,
            stateful=tuple(stateful),
        )

    factory.__name__ = getattr(inner_factory, "__name__", "factory")
    factory.__doc__ = inner_factory.__doc__
    return factory


def inject_stateful_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., injected]:
    """`inject_hyperparams` under optax's older name for its stateful form.

    `inject_hyperparams` already accepts `StatefulSchedule` arguments (their states
    live in ``state.hyperparams_states``); optax deprecates this name in its favour.

    Args:
      inner_factory: e.g. ``gradtx.adam``.
      static_args: names of arguments to keep fixed.
      hyperparam_dtype: dtype of the values in the state (default float32).

    Returns:
      ``inject_hyperparams(inner_factory, static_args, hyperparam_dtype)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> lr = gradtx.WrappedSchedule(lambda t: 0.1 * (t + 1).astype(jnp.float32))
      >>> opt = gradtx.inject_stateful_hyperparams(gradtx.sgd)(learning_rate=lr)
      >>> opt.update(jnp.ones(1), opt.init(jnp.zeros(1)))[0]
      Array([-0.1], dtype=float32)

    References:
      ``optax.inject_stateful_hyperparams``.
    """
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)
