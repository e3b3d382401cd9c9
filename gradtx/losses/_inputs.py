"""The argument checks every loss shares: dtype families, ranks and equal shapes, each
raising with the loss's name (optax raises the same exception types)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def floating(owner: str, **arrays: Any) -> None:
    """Raise TypeError unless each array holds floating-point numbers."""
    _subdtype(owner, jnp.floating, "floating-point", arrays)


def integer(owner: str, **arrays: Any) -> None:
    """Raise TypeError unless each array holds integers (class indices)."""
    _subdtype(owner, jnp.integer, "integer", arrays)


def _subdtype(owner: str, family: Any, words: str, arrays: dict[str, Any]) -> None:
    for name, array in arrays.items():
        dtype = jax.dtypes.result_type(array)
        if not jnp.issubdtype(dtype, family):
            raise TypeError(f"{owner}: `{name}` must hold {words} numbers, got dtype {dtype}")


def shape(array: Any) -> tuple[int, ...]:
    return tuple(array.shape) if hasattr(array, "shape") else np.shape(array)


def same_shape(owner: str, **arrays: Any) -> None:
    """Raise ValueError unless the arrays have one shape."""
    shapes = {name: shape(array) for name, array in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"`{name}` {s}" for name, s in shapes.items())
        raise ValueError(f"{owner}: shape mismatch: {listed}; they must be equal")


def rank(owner: str, name: str, array: Any, expected: int) -> None:
    """Raise ValueError unless `array` has `expected` axes."""
    got = len(shape(array))
    if got != expected:
        raise ValueError(
            f"{owner}: `{name}` must have rank {expected}, got rank {got} (shape {shape(array)})"
        )
