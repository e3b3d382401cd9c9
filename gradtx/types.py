"""optax's type names, so that annotated optax code type-checks after the import switch.

``GradientTransformation`` and ``GradientTransformationExtraArgs`` are `gradtx.Transform`
itself: every gradtx transform is one, and ``GradientTransformation(init, update)``
builds one from two functions as optax code does. ``ScalarOrSchedule`` (a number, an
array, or a function of the step) is the same ``Union`` as optax's, so code that
inspects an optimizer's annotations (optax's own schedule tests do) sees what it
expects. ``MaskOrFn`` is a mask: a pytree of booleans, a function returning one, or
None. ``Params``, ``Updates`` and ``OptState`` are pytrees (``Any``).
"""

from collections.abc import Callable
from typing import Any, Protocol, Union

import jax

from gradtx.base import OptState, Params, Transform, Updates

GradientTransformation = Transform
GradientTransformationExtraArgs = Transform

PyTree = Any
ArrayTree = Any
Schedule = Callable[[jax.typing.ArrayLike], jax.typing.ArrayLike]
ScalarOrSchedule = Union[float, jax.Array, Schedule]  # noqa: UP007 - equal to optax's
MaskOrFn = Union[Any, Callable[[Params], Any]] | None  # noqa: UP007


class TransformInitFn(Protocol):
    """A transform's ``init``: ``init(params) -> state`` (optax's protocol)."""

    def __call__(self, params: Params) -> OptState:
        """Returns the initial state for ``params``."""
        ...


class TransformUpdateFn(Protocol):
    """A transform's ``update``: ``update(updates, state, params=None)`` (optax's protocol)."""

    def __call__(
        self, updates: Updates, state: OptState, params: Params | None = None
    ) -> tuple[Updates, OptState]:
        """Returns the transformed updates and the new state."""
        ...


class TransformUpdateExtraArgsFn(Protocol):
    """An ``update`` that also takes extra keyword arguments (optax's protocol)."""

    def __call__(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]:
        """Returns the transformed updates and the new state."""
        ...


__all__ = [
    "ArrayTree",
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "MaskOrFn",
    "OptState",
    "Params",
    "PyTree",
    "ScalarOrSchedule",
    "Schedule",
    "TransformInitFn",
    "TransformUpdateExtraArgsFn",
    "TransformUpdateFn",
    "Updates",
]
