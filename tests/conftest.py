"""Strict numerics for every test: gradtx must never promote silently.

optax itself relies on implicit promotion (a Python float raised to an int32 count),
so references run under ``reference_numerics()``.
"""

import contextlib
import os
from collections.abc import Iterator

# Keras runs on JAX in the tests (gradtx.keras is compared with it); set before any import.
os.environ["KERAS_BACKEND"] = "jax"

import jax

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@contextlib.contextmanager
def reference_numerics() -> Iterator[None]:
    """Standard promotion, for optax and other references (optax's distance over
    gradients also broadcasts a ``(1,)`` step size against every rank)."""
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield
