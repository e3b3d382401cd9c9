"""Measurements kept in the state: `snapshot`, `monitor`, `measure_with_ema`.

They pass the updates through unchanged and record a function of them, so a training
loop can read, say, the update norm at any point of a chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx.base import Context, OptState, Params, Transform, Updates, _as_transform
from gradtx.blocks.momentum import EmaState, ema
from gradtx.blocks.utility import stateless
from gradtx.chains import Chain
from gradtx.data import hyper, pytree_dataclass, static


class SnapshotState(NamedTuple):
    """State of `snapshot`: ``{measure_name: measure(updates)}``."""

    measurement: dict[str, Any]


@pytree_dataclass
class snapshot(Transform):
    """Records ``measure(updates)`` in the state under ``measure_name``.

    Args:
      measure_name: the key of the measurement.
      measure: a function of the updates (at ``init``, of the parameters).

    Returns:
      A transform whose state is `SnapshotState`; the updates pass unchanged.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.snapshot("norm", gradtx.global_norm)
      >>> _, state = tx.update(jnp.asarray([3.0, 4.0]), tx.init(jnp.zeros(2)))
      >>> state.measurement["norm"]
      Array(5., dtype=float32)

    References:
      ``optax.snapshot`` (same state).
    """

    measure_name: str = static()
    measure: Callable[[Updates], Any] = static()

    _check_buffers = False

    def init(self, params: Params) -> SnapshotState:
        return SnapshotState({self.measure_name: self.measure(params)})

    def _update(self, updates: Updates, state: SnapshotState, params: Params | None, ctx: Context):
        del state, params, ctx
        return updates, SnapshotState({self.measure_name: self.measure(updates)})


class MonitorState(NamedTuple):
    """State of `monitor`: each measure's last value, and the measures' own states."""

    measurements: dict[str, Any]
    measure_states: tuple[Any, ...]


@pytree_dataclass
class monitor(Transform):
    """Records several measurements of the updates, each a function or a transform.

    A function ``fn(updates)`` is recorded as it is; a transform's output is recorded
    (its state is kept, so ``measure_with_ema`` keeps a moving average).

    Unlike optax, ``init`` fills ``measurements`` with zeros shaped like the first
    measurement, so the state keeps one structure from ``init`` on (optax starts from an
    empty dict, which a ``lax.scan`` over steps cannot carry).

    Args:
      measures: ``{name: function or transform}``.

    Returns:
      A transform whose state is `MonitorState`; the updates pass unchanged.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.monitor({"norm": gradtx.global_norm})
      >>> _, state = tx.update(jnp.asarray([3.0, 4.0]), tx.init(jnp.zeros(2)))
      >>> state.measurements["norm"]
      Array(5., dtype=float32)

    References:
      ``optax.monitor`` (same measurements).
    """

    measures: dict[str, Any] = hyper()

    _check_buffers = False

    def __post_init__(self) -> None:
        measures = {}
        for name, measure in dict(self.measures).items():
            if callable(measure) and not isinstance(measure, Transform):
                measure = stateless(lambda u, _, m=measure: m(u))
            measures[name] = _as_transform(measure, "monitor")
        object.__setattr__(self, "measures", measures)
        super().__post_init__()

    def init(self, params: Params) -> MonitorState:
        states = tuple(m.init(params) for m in self.measures.values())
        shapes = {
            name: jax.eval_shape(lambda m=m, s=s: m._apply(params, s, params, Context())[0])
            for (name, m), s in zip(self.measures.items(), states, strict=True)
        }
        measurements = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
        return MonitorState(measurements, states)

    def _update(self, updates: Updates, state: MonitorState, params: Params | None, ctx: Context):
        measurements, states = {}, []
        for (name, m), s in zip(self.measures.items(), state.measure_states, strict=True):
            measurements[name], s = m._apply(updates, s, params, ctx.inside())
            states.append(s)
        return updates, MonitorState(measurements, tuple(states))

    def _children(self, state: MonitorState) -> list[tuple[Transform, OptState]]:
        return list(zip(self.measures.values(), state.measure_states, strict=True))


@pytree_dataclass
class _ema_of_measure(ema):
    """`ema` whose ``init`` averages ``measure(params)``, not ``params``."""

    measure: Callable[[Any], Any] = static(default=None, kw_only=True)

    _check_buffers = False

    def init(self, params: Params) -> EmaState:
        return super().init(self.measure(params))


def measure_with_ema(
    measure: Callable[[Updates], Any], decay: Any, debias: bool = True, accumulator_dtype: Any = None
) -> Chain:
    """Replaces the updates by ``measure(updates)`` and keeps its moving average; use
    it as a measure of `monitor`.

    Args:
      measure: a function of the updates.
      decay: the averaging coefficient, in [0, 1).
      debias: divide by ``1 - decay**t``.
      accumulator_dtype: dtype of the average.

    Returns:
      ``chain(stateless(measure), ema(decay, ...))`` with the average shaped like the
      measurement.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.monitor({"norm": gradtx.measure_with_ema(gradtx.global_norm, 0.9)})
      >>> _, state = tx.update(jnp.asarray([3.0, 4.0]), tx.init(jnp.zeros(2)))
      >>> round(float(state.measurements["norm"]), 5)  # debiased: the first measurement
      5.0

    References:
      ``optax.measure_with_ema`` (same numbers).
    """
    return Chain(
        (
            stateless(lambda updates, _: measure(updates)),
            _ema_of_measure(decay, debias, accumulator_dtype, measure=measure),
        ),
        label="measure_with_ema",
    )
