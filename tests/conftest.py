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


@contextlib.contextmanager
def xla_compiles() -> Iterator[list[str]]:
    """The names of the functions XLA compiles inside the block (eager operations
    included), read from JAX's public compile event: unlike a jit cache size, it does
    not depend on what earlier tests left in the caches."""
    names: list[str] = []

    def listen(event: str, duration_secs: float, **kwargs: str | int) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            names.append(str(kwargs.get("fun_name")))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield names
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
