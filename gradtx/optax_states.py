"""optax's state NamedTuples for the statistics gradtx splits across blocks.

optax keeps Adam's moments in one ``ScaleByAdamState(count, mu, nu)``; gradtx's `adam`
is `momentum` (``MomentumState.mu``), then `scale_by_rms` (``ScaleByRmsState.nu``),
then the learning rate, each block with its own state. So ``state[0].mu`` reads the
first moment in both libraries, but optax code that reads ``state[0].nu`` or matches
``isinstance(s, optax.ScaleByAdamState)`` needs the optax layout. These types are that
layout, with optax's fields, and each builds itself from a gradtx state:

    >>> import gradtx, jax.numpy as jnp
    >>> opt = gradtx.adam(0.1)
    >>> state = opt.init({"w": jnp.zeros(2)})
    >>> _, state = opt.update({"w": jnp.ones(2)}, state)
    >>> view = gradtx.ScaleByAdamState.of(state)
    >>> int(view.count), view.nu["w"]
    (1, Array([0.001, 0.001], dtype=float32))

``of`` reads the fields by name wherever they are (as `gradtx.tree_utils.tree_get`
does; ``mu`` is also found under a `trace` block's ``trace``). To write moments into a
gradtx state (an optax checkpoint, say), use `gradtx.tree_utils.tree_set` with the
field names: ``tree_set(state, mu=..., nu=...)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from gradtx import tree_utils
from gradtx._checks import InputError

__all__ = ["ScaleByAdamState", "ScaleByAmsgradState", "ScaleByNovogradState", "ScaleByRStdDevState"]

# Where gradtx keeps each optax field, by block field name, in the order looked for.
_WHERE = {"count": ("count",), "mu": ("mu", "trace"), "nu": ("nu",), "nu_max": ("nu_max",)}


def _read(owner: str, state: Any, field: str) -> Any:
    for name in _WHERE[field]:
        found = tree_utils.tree_get_all_with_path(state, name)
        found = [(path, value) for path, value in found if value is not None]
        if found:
            # the first block that holds it: the first moment's step count for count
            return found[0][1]
    raise InputError(
        owner,
        f"this state holds no {field!r} (looked for {list(_WHERE[field])}): build the view from "
        "the state of an optimizer that keeps it (an Adam-family optimizer for mu and nu, "
        "amsgrad for nu_max).",
    )


class ScaleByAdamState(NamedTuple):
    """optax's Adam state: the step count and both moments.

    Build it from a gradtx state with ``ScaleByAdamState.of(state)``.

    Attributes:
      count: the number of steps taken (int32).
      mu: the first moment.
      nu: the second moment.
    """

    count: Any  # shape=(), dtype=int32
    mu: Any
    nu: Any

    @classmethod
    def of(cls, state: Any) -> ScaleByAdamState:
        """The optax layout of a gradtx Adam-family state (``mu`` from `momentum`,
        ``nu`` from `scale_by_rms`)."""
        return cls(*(_read(cls.__name__, state, f) for f in cls._fields))


class ScaleByAmsgradState(NamedTuple):
    """optax's AMSGrad state: Adam's, and the running maximum ``nu_max``.

    Build it from a gradtx state with ``ScaleByAmsgradState.of(state)``.

    Attributes:
      count: the number of steps taken (int32).
      mu: the first moment.
      nu: the second moment.
      nu_max: the largest second moment so far.
    """

    count: Any  # shape=(), dtype=int32
    mu: Any
    nu: Any
    nu_max: Any

    @classmethod
    def of(cls, state: Any) -> ScaleByAmsgradState:
        """The optax layout of a gradtx `amsgrad` state."""
        return cls(*(_read(cls.__name__, state, f) for f in cls._fields))


class ScaleByNovogradState(NamedTuple):
    """optax's NovoGrad state: the step count, the momentum of the normalised
    gradients and the layerwise second moments.

    Build it from a gradtx state with ``ScaleByNovogradState.of(state)``.

    Attributes:
      count: the number of steps taken (int32).
      mu: the momentum (gradtx's `trace` block).
      nu: one second moment per leaf.
    """

    count: Any  # shape=(), dtype=int32
    mu: Any
    nu: Any

    @classmethod
    def of(cls, state: Any) -> ScaleByNovogradState:
        """The optax layout of a gradtx `novograd` state."""
        return cls(*(_read(cls.__name__, state, f) for f in cls._fields))


class ScaleByRStdDevState(NamedTuple):
    """optax's former state of `scale_by_stddev`: both moments, no count (optax keeps
    it for backward compatibility).

    Build it from a gradtx state with ``ScaleByRStdDevState.of(state)``.

    Attributes:
      mu: the first moment.
      nu: the second moment.
    """

    mu: Any
    nu: Any

    @classmethod
    def of(cls, state: Any) -> ScaleByRStdDevState:
        """The optax layout of a gradtx `scale_by_stddev` state."""
        return cls(*(_read(cls.__name__, state, f) for f in cls._fields))
