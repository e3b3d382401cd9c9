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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.base import (
    Context,
    FrozenTree,
    Params,
    Transform,
    Updates,
    hyper,
    pytree_dataclass,
    safe_increment,
    static,
    zero_count,
)


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
    hyperparam_dtype: Any = static(default=None)

    def _dtype(self) -> Any:
        return jnp.float32 if self.hyperparam_dtype is None else self.hyperparam_dtype

    def _cast(self, value: Any) -> Any:
        value = jnp.asarray(value)
        return value.astype(self._dtype()) if jnp.issubdtype(value.dtype, jnp.floating) else value

    def _inner(self, hparams: dict[str, Any]) -> Any:
        return self.factory(**self.others.tree, **hparams)

    def init(self, params: Params) -> InjectHyperparamsState:
        count = zero_count()
        hparams = {k: self._cast(v) for k, v in self.numeric.items()}
        hparams.update({k: self._cast(fn(count)) for k, fn in self.schedules})
        return InjectHyperparamsState(count, hparams, self._inner(hparams).init(params))

    def _update(self, updates: Updates, state: InjectHyperparamsState, params: Params | None, ctx: Context):
        hparams = {k: self._cast(v) for k, v in state.hyperparams.items()}
        hparams.update({k: self._cast(fn(state.count)) for k, fn in self.schedules})
        inner = self._inner(hparams)
        if isinstance(inner, Transform):
            updates, inner_state = inner._apply(updates, state.inner_state, params, ctx)
        else:
            updates, inner_state = inner.update(updates, state.inner_state, params, **ctx.extra)
        return updates, InjectHyperparamsState(safe_increment(state.count), hparams, inner_state)

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
        raise ValueError(
            f"inject_hyperparams: static_args {sorted(unknown)} are not arguments of "
            f"{getattr(inner_factory, '__name__', inner_factory)}"
        )

    def factory(*args: Any, **kwargs: Any) -> injected:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        numeric, schedules, others = {}, [], {}
        for name, value in bound.arguments.items():
            if name in static_names or value is None or isinstance(value, (bool, str, type, np.dtype)):
                others[name] = value
            elif callable(value):
                schedules.append((name, value))
            elif isinstance(value, (int, float, np.ndarray, np.generic, jax.Array)):
                numeric[name] = value
            else:
                others[name] = value
        inner_factory(**bound.arguments)  # check the arguments now, as the factory would
        return injected(inner_factory, numeric, tuple(schedules), FrozenTree(others), hyperparam_dtype)

    factory.__name__ = getattr(inner_factory, "__name__", "factory")
    factory.__doc__ = inner_factory.__doc__
    return factory
