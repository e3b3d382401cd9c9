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


# --- the fast local loop: ``pytest -m "not slow" -n 2`` ------------------------------------
# CI (the README's test command) runs everything. The fast loop leaves out, by marking
# them ``slow`` here in one place:
# - whole modules that build or run something outside the library: the docs site and its
#   pages, pyright on a user project, the tour and the examples, the README's blocks,
#   subprocesses with simulated devices, the benchmark scripts, hypothesis fuzzing, and
#   the fast loop's own budget check (a 20-second collection in a subprocess: CI runs it);
# - in the modules that run every catalogue case, block or optimizer (parametrized
#   tests), five in six parametrizations, chosen by a stable hash of the test's id,
#   plus the few core ones always kept (CORE), so each module is still exercised.
SLOW_MODULES = {
    "test_docs", "test_typing", "test_tour", "test_study_notes", "test_from_pytorch",
    "test_readme", "test_many_devices", "test_sharding", "test_benchmarks", "test_fuzz",
    "test_contrib", "test_fast_loop",
}  # fmt: skip
SAMPLED_MODULES = {
    "test_conformance", "test_channel", "test_dtypes", "test_packed", "test_reliability",
    "test_errors", "test_convergence", "test_torch_presets", "test_keras_presets",
    "test_schedules", "test_api", "test_line_search_optimizers", "test_namespace", "test_losses",
    "test_numerical_tools", "test_interop",
}  # fmt: skip
CORE = ("adam", "sgd", "scale_by_rms", "masked-adam", "MultiSteps", "flatten")
SAMPLE_ONE_IN = 10
# The three slowest tests the sample kept (7.9, 7.4 and 6.7 s of a 4-minute loop, measured
# with --durations), left to CI so the loop keeps its budget as tests are added.
HEAVY = {
    "test_invariants[adafactor-complex]",
    "test_lbfgs_iterates_equal_optax[zoom-settings-logistic]",
    "test_on_packed_parameters_gives_the_plain_numbers[soap]",
}


def pytest_collection_modifyitems(config: object, items: list) -> None:
    import zlib

    import pytest

    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module in SLOW_MODULES or item.name in HEAVY:
            item.add_marker(pytest.mark.slow)
            continue
        callspec = getattr(item, "callspec", None)
        if module not in SAMPLED_MODULES or callspec is None:
            continue
        if callspec.id in CORE:
            continue
        if zlib.crc32(f"{item.originalname}[{callspec.id}]".encode()) % SAMPLE_ONE_IN:
            item.add_marker(pytest.mark.slow)


def donated_step_memory(tx, params):
    """XLA's memory analysis of one jitted update + apply of ``tx`` on ``params``, with the
    parameters and state donated (as a training loop runs)."""
    import gradtx

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    import jax

    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, tx.init(params), params).compile()
    analysis = compiled.memory_analysis()
    assert analysis is not None
    return analysis
