"""Property-based fuzzing against optax, with hypothesis.

Every factory gradtx shares with optax is built from hyperparameters hypothesis draws
from their documented ranges (written below from the docstrings, not read from gradtx's
own checks), run for three steps on a random tree (nested dicts, lists and tuples with
None; scalar, zero-size and ordinary leaves; zero, small and large gradients), and
compared with optax's twin built from the same arguments: the same updates and the same
parameters, or both refuse. Random chains of them, the wrappers over random masks and
labels, every shared schedule and every shared tree function get the same treatment.
Invalid values for the arguments with a documented range always raise ValueError naming
the argument.

CI runs a fixed number of examples per test with a fixed seed (derandomized). A long
local run, with a fresh random seed each time:

    GRADTX_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py -n 2

hypothesis prints the smallest failing example and the seed that reproduces it.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import reference_numerics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradtx

_LONG = "GRADTX_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=int(os.environ.get("GRADTX_FUZZ_EXAMPLES", "8")),
    derandomize=not _LONG,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- random trees -----------------------------------------------------------------------

SHAPES = [(), (1,), (3,), (0,), (2, 3), (3, 1), (0, 2), (2, 1, 2)]


class Leaf:
    """A leaf of a drawn structure: the shape its array will have (not a pytree)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __repr__(self) -> str:
        return f"Leaf{self.shape}"


_KEYS = st.text(alphabet="abwxyz", min_size=1, max_size=2)
STRUCTURES = st.recursive(
    st.sampled_from(SHAPES).map(Leaf) | st.none(),
    lambda kids: (
        st.lists(kids, max_size=3)
        | st.lists(kids, max_size=3).map(tuple)
        | st.dictionaries(_KEYS, kids, max_size=3)
    ),
    max_leaves=6,
)
GRAD_SCALES = st.sampled_from([0.0, 1e-3, 1.0, 1e2])


def _is_leaf(x: Any) -> bool:
    return isinstance(x, Leaf)


def _fill(structure: Any, rng: np.random.Generator, scale: float = 1.0) -> Any:
    return jax.tree.map(
        lambda leaf: jnp.asarray(scale * rng.standard_normal(leaf.shape), jnp.float32),
        structure,
        is_leaf=_is_leaf,
    )


def _problem(structure: Any, seed: int, scales: list[float]) -> tuple[Any, list[Any]]:
    rng = np.random.default_rng(seed)
    return _fill(structure, rng), [_fill(structure, rng, s) for s in scales]


PROBLEMS = st.tuples(STRUCTURES, st.integers(0, 2**31 - 1), st.lists(GRAD_SCALES, min_size=3, max_size=3))


# --- the documented ranges --------------------------------------------------------------


def _floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_subnormal=False)


_FLAGS = (
    "nesterov", "amsgrad", "centered", "eps_in_sqrt", "bias_correction", "debias",
    "bias_correction_mu", "bias_correction_nu", "factored", "flip_sign",
    "multiply_by_parameter_scale",
)  # fmt: skip
# Values inside each argument's documented range (bounded where the range is open above,
# so that three steps stay finite).
VALID: dict[str, st.SearchStrategy[Any]] = {
    "learning_rate": _floats(0.0, 1.0),
    "b1": _floats(0.0, 0.999),
    "b2": _floats(0.0, 0.9999),
    "b3": _floats(0.0, 0.999),
    "decay": _floats(0.0, 1.0),
    "rho": _floats(0.0, 0.99),
    "momentum": _floats(0.0, 0.99),
    "beta": _floats(0.0, 0.99),
    "eps": _floats(1e-12, 1e-1),
    "eps_root": _floats(0.0, 1e-1),
    "weight_decay": _floats(0.0, 1e-1),
    "initial_accumulator_value": _floats(0.0, 1.0),
    "initial_scale": _floats(0.0, 1.0),
    "max_norm": _floats(0.0, 10.0),
    "max_delta": _floats(0.0, 10.0),
    "threshold": _floats(0.0, 10.0),
    "clipping": _floats(0.0, 1.0),
    "min_norm": _floats(0.0, 1.0),
    "min_scale": _floats(0.0, 1.0),
    "step_size": _floats(-2.0, 2.0),
    "scale_factor": _floats(0.0, 2.0),
    "trust_coefficient": _floats(0.0, 1.0),
    "eta_minus": _floats(0.0, 1.0),
    "eta_plus": _floats(1.0, 2.0),
    "min_step_size": _floats(0.0, 1e-3),
    "max_step_size": _floats(1.0, 100.0),
    "alpha": _floats(0.0, 2.0),
    "decay_rate": _floats(0.1, 1.0),
    "min_dim_size_to_factor": st.sampled_from([1, 2, 3, 128]),
    "clipping_threshold": st.none() | _floats(0.5, 10.0),
    "weight_decay_rate": st.none() | _floats(0.0, 1e-1),
    "f_min": _floats(-1.0, 0.0),
    "max_learning_rate": _floats(0.0, 1.0),
    "eta": _floats(0.0, 1.0),
    "gamma": _floats(0.0, 1.0),
    "k": st.integers(1, 4),
    "memory_size": st.integers(1, 4),
    "power": _floats(0.5, 2.0),
    "reps_rel": _floats(1e-6, 1e-1),
    "global_scale": _floats(0.1, 2.0),
    "smooth_beta": _floats(0.0, 1.0),
    **{flag: st.booleans() for flag in _FLAGS},
}
# Where one factory documents another range for a name.
VALID_FOR: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("scale_by_sm3", "b2"): _floats(0.0, 1.0),  # b2 = 1 (the default) is AdaGrad's sum
    ("rmsprop", "momentum"): st.none() | _floats(0.0, 0.99),
    ("sgd", "momentum"): st.none() | _floats(0.0, 0.99),
    ("adafactor", "momentum"): st.none() | _floats(0.0, 0.99),
    ("noisy_sgd", "eta"): _floats(0.0, 1e-2),
    # gradtx rejects a threshold below 4 (the rectification's root is of a negative
    # number there, optax's updates NaN): README, differences.
    ("radam", "threshold"): _floats(4.0, 10.0),
    ("scale_by_radam", "threshold"): _floats(4.0, 10.0),
    ("add_noise", "eta"): _floats(0.0, 1e-2),
}

# Arguments each factory needs, and the extra arguments its update takes.
REQUIRED: dict[str, dict[str, Any]] = {
    "adaptive_grad_clip": {"clipping": 0.5},
    "add_noise": {"eta": 0.01, "gamma": 0.55, "key": 3},
    "noisy_sgd": {"learning_rate": 0.1, "key": 3},
    "clip": {"max_delta": 1.0},
    "clip_by_block_rms": {"threshold": 1.0},
    "clip_by_global_norm": {"max_norm": 1.0},
    "scale": {"step_size": 0.5},
    "scale_by_learning_rate": {"learning_rate": 0.1},
    "scale_by_rprop": {"learning_rate": 0.1},
    "trace": {"decay": 0.9},
    "ema": {"decay": 0.9},
    "scale_by_polyak": {},
    "polyak_sgd": {},
}
_NEEDS_VALUE = ("scale_by_polyak", "polyak_sgd")
_OPTIMIZER_PREFIXES = ("scale_by_",)

# Shared factories that are not single transforms of numbers, fuzzed elsewhere in this file
# (wrappers, trees, schedules) or in their own modules (the line searches need a value
# function: tests/test_line_search_optimizers.py), or that is a tree function, not a
# transform (bias_correction: tests/test_api.py).
_ELSEWHERE = {
    "apply_every", "apply_if_finite", "chain", "conditionally_mask", "conditionally_transform",
    "flatten", "freeze", "inject_hyperparams", "inject_stateful_hyperparams", "lookahead",
    "masked", "measure_with_ema", "monitor", "multi_transform", "named_chain", "partition",
    "selective_transform", "snapshot", "stateless", "stateless_with_tree_map",
    "with_extra_args_support", "scale_by_schedule", "lbfgs", "scale_by_lbfgs",
    "scale_by_backtracking_linesearch", "scale_by_zoom_linesearch", "bias_correction",
}  # fmt: skip


def _returns_transform(name: str) -> bool:
    try:
        return isinstance(
            getattr(optax, name)(**REQUIRED.get(name, _required(name))), optax.GradientTransformation
        )
    except Exception:
        return False


def _required(name: str) -> dict[str, Any]:
    signature = inspect.signature(getattr(optax, name))
    needed = [p.name for p in signature.parameters.values() if p.default is inspect.Parameter.empty]
    return {"learning_rate": 0.1} if needed == ["learning_rate"] else {n: None for n in needed}


def _shared_factories() -> list[str]:
    names = []
    for name in gradtx.__all__:
        if name in _ELSEWHERE or name[0].isupper() or not hasattr(optax, name):
            continue
        if name.endswith("schedule") or name in ("exponential_decay", "join_schedules", "sgdr_schedule"):
            continue
        if callable(getattr(gradtx, name)) and _returns_transform(name):
            names.append(name)
    return sorted(names)


FACTORIES = _shared_factories()


def _fuzzed(name: str) -> dict[str, st.SearchStrategy[Any]]:
    """The arguments of ``name`` in both libraries' signatures with a documented range."""
    ours = inspect.signature(getattr(gradtx, name)).parameters
    theirs = inspect.signature(getattr(optax, name)).parameters
    found = {arg: VALID_FOR.get((name, arg), VALID.get(arg)) for arg in ours if arg in theirs}
    return {arg: strategy for arg, strategy in found.items() if strategy is not None}


def _kwargs(name: str) -> st.SearchStrategy[dict[str, Any]]:
    required = REQUIRED.get(name, _required(name))
    fuzzed = _fuzzed(name)
    return st.fixed_dictionaries(
        {k: fuzzed[k] for k in required if k in fuzzed},
        optional={k: v for k, v in fuzzed.items() if k not in required},
    ).map(lambda drawn: {**required, **drawn})


# --- running both -----------------------------------------------------------------------


def _run(
    transform: Any,
    apply: Callable[[Any, Any], Any],
    params: Any,
    grads: list[Any],
    value: bool,
    jit: bool = False,
) -> list[Any]:
    state = transform.init(params)
    update = jax.jit(transform.update) if jit else transform.update
    out = []
    for g in grads:
        extra = {"value": sum(jnp.sum(p**2) for p in jax.tree.leaves(params)) + 1.0} if value else {}
        updates, state = update(g, state, params, **extra)
        params = apply(params, updates)
        out.append((updates, params))
    return out


def _both(call: Callable[[Any], Any]) -> tuple[Any, Any]:
    """``call(gradtx)`` and ``call(optax)`` (under optax's numerics), each its result or
    the exception it raised (a refusal, compared by `_assert_same`)."""

    def outcome(m: Any) -> Any:
        try:
            return call(m)
        except Exception as error:
            return error

    ours = outcome(gradtx)
    with reference_numerics():
        theirs = outcome(optax)
    return ours, theirs


# Where optax's numbers are NaN and gradtx's are finite, by design (each documented in
# the factory's docstring): name -> the inputs where it happens.
FINITE_WHERE_OPTAX_NAN = {
    "clip_by_global_norm": "max_norm = 0 on all-zero updates (optax's 0 / 0)",
}
# Where optax's eager numbers differ from its jitted ones, and gradtx gives the jitted
# ones: name -> why. These are compared with both libraries' updates under jax.jit.
JITTED_REFERENCE = {
    "radam": "optax's eager b2**t (a Python float to an int32 power) rounds differently from the "
    "jitted power; with b2 near 1 at the first steps, float32 rho_t is noise around the threshold "
    "(b2 = 0.9999, t = 3: rho_t is 3.0 exactly, 8.3 eager and 4.3 jitted), so eager optax "
    "rectifies where jitted optax and gradtx do not",
    "scale_by_radam": "as radam",
}
# Where optax raises and gradtx proceeds: name -> what optax cannot take.
OPTAX_REFUSES = {
    "scale_by_sm3": "a scalar or a zero-size matrix (IndexError, ValueError in optax)",
    "sm3": "a scalar or a zero-size matrix (IndexError, ValueError in optax)",
}
# An update with no leaves needs no parameters in gradtx (None is then the empty tree);
# optax's transforms that read parameters refuse it with this message.
_OPTAX_WANTS_PARAMS = "requires the current value of parameters"


def _assert_same(ours: Any, theirs: Any, what: str, names: tuple[str, ...] = ()) -> None:
    """The same numbers and dtypes, or both refused; ``names`` (the factories involved)
    select the allowances above."""
    refuses = any(n in OPTAX_REFUSES for n in names) or _OPTAX_WANTS_PARAMS in str(theirs)
    if isinstance(theirs, Exception) and refuses:
        assert not isinstance(ours, Exception), f"{what}: gradtx raised {ours!r}"
        return
    if isinstance(theirs, Exception) or isinstance(ours, Exception):
        assert isinstance(ours, Exception) and isinstance(theirs, Exception), (
            f"{what}: gradtx gave {ours!r}, optax gave {theirs!r}"
        )
        return
    assert jax.tree.structure(ours) == jax.tree.structure(theirs), what
    leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(theirs)]
    scale = max([float(np.max(np.abs(x[np.isfinite(x)]), initial=0.0)) for x in leaves], default=0.0)
    finite_where_nan = any(n in FINITE_WHERE_OPTAX_NAN for n in names)
    for mine, theirs_leaf, reference in zip(
        jax.tree.leaves(ours), jax.tree.leaves(theirs), leaves, strict=True
    ):
        assert np.asarray(mine).dtype == np.asarray(theirs_leaf).dtype, what
        mine = np.asarray(mine, np.float64)
        if finite_where_nan:
            reference = np.where(np.isnan(reference) & np.isfinite(mine), mine, reference)
        np.testing.assert_allclose(mine, reference, rtol=1e-5, atol=1e-5 * scale + 1e-30, err_msg=what)


def _compare(
    build: Callable[[Any], Any], problem: Any, what: str, names: tuple[str, ...], value: bool = False
) -> None:
    """Runs ``build(m)`` for three steps with gradtx and with optax and compares."""
    structure, seed, scales = problem
    params, grads = _problem(structure, seed, scales)
    jit = any(n in JITTED_REFERENCE for n in names)
    ours, theirs = _both(lambda m: _run(build(m), m.apply_updates, params, grads, value, jit))
    _assert_same(ours, theirs, what, names)


@pytest.mark.parametrize("name", FACTORIES)
@FUZZ
@given(data=st.data(), problem=PROBLEMS)
def test_factory_matches_optax(name, data, problem):
    kwargs = data.draw(_kwargs(name), label="kwargs")
    _compare(
        lambda m: getattr(m, name)(**kwargs),
        problem,
        f"{name}(**{kwargs})",
        (name,),
        value=name in _NEEDS_VALUE,
    )


# Blocks for random chains: the factories whose update needs nothing but the gradients
# and the parameters.
_CHAINABLE = [n for n in FACTORIES if n not in _NEEDS_VALUE and n not in OPTAX_REFUSES]


@FUZZ
@given(data=st.data(), problem=PROBLEMS)
def test_random_chain_matches_optax(data, problem):
    names = data.draw(st.lists(st.sampled_from(_CHAINABLE), min_size=1, max_size=3), label="blocks")
    blocks = [(name, data.draw(_kwargs(name), label=name)) for name in names]
    _compare(
        lambda m: m.chain(*[getattr(m, n)(**kw) for n, kw in blocks]), problem, f"chain{blocks}", tuple(names)
    )


# --- wrappers over random masks and labels ----------------------------------------------


def _per_leaf(data: st.DataObject, structure: Any, values: st.SearchStrategy[Any], label: str) -> Any:
    """A tree like ``structure`` with a drawn value at each leaf (None stays None)."""
    return jax.tree.map(lambda _: data.draw(values, label=label), structure, is_leaf=_is_leaf)


# Each wrapper, built by both libraries (``m`` is gradtx or optax) from values drawn here.
def _wrapper(data: st.DataObject, structure: Any, kind: str) -> Callable[[Any], Any]:
    lr = data.draw(VALID["learning_rate"], label="learning_rate")
    inner_name = data.draw(st.sampled_from(["adam", "sgd", "rmsprop", "lion", "adagrad"]), label="inner")
    inner_kwargs = data.draw(_kwargs(inner_name), label="inner kwargs")

    def inner(m: Any) -> Any:
        return getattr(m, inner_name)(**inner_kwargs)

    if kind == "masked":
        mask = _per_leaf(data, structure, st.booleans(), "mask")
        return lambda m: m.masked(inner(m), mask)
    if kind == "masked-fn":
        mask = _per_leaf(data, structure, st.booleans(), "mask")
        return lambda m: m.masked(inner(m), lambda _: mask)
    if kind == "freeze":
        mask = _per_leaf(data, structure, st.booleans(), "mask")
        return lambda m: m.chain(m.freeze(mask), m.sgd(lr))
    if kind == "selective_transform":
        mask = _per_leaf(data, structure, st.booleans(), "mask")
        return lambda m: m.selective_transform(inner(m), freeze_mask=mask)
    if kind in ("partition", "multi_transform"):
        labels = _per_leaf(data, structure, st.sampled_from(["a", "b", "c"]), "label")
        return lambda m: getattr(m, kind)({"a": inner(m), "b": m.sgd(lr, 0.9), "c": m.set_to_zero()}, labels)
    if kind == "apply_every":
        k = data.draw(st.integers(1, 3), label="k")
        return lambda m: m.chain(inner(m), m.apply_every(k))
    if kind == "MultiSteps":
        k = data.draw(st.integers(1, 3), label="every_k_schedule")
        return lambda m: m.MultiSteps(inner(m), k)
    if kind == "apply_if_finite":
        n = data.draw(st.integers(0, 3), label="max_consecutive_errors")
        return lambda m: m.apply_if_finite(inner(m), n)
    if kind == "flatten":
        return lambda m: m.flatten(inner(m))
    if kind == "inject_hyperparams":
        return lambda m: m.inject_hyperparams(getattr(m, inner_name))(**inner_kwargs)
    if kind == "conditionally_mask":
        every = data.draw(st.integers(1, 3), label="every")
        return lambda m: m.conditionally_mask(inner(m), lambda step: step % every == 0)
    if kind == "named_chain":
        return lambda m: m.named_chain(("clip", m.clip_by_global_norm(1.0)), ("inner", inner(m)))
    raise AssertionError(kind)


WRAPPERS = [
    "masked", "masked-fn", "freeze", "selective_transform", "partition", "multi_transform",
    "apply_every", "MultiSteps", "apply_if_finite", "flatten", "inject_hyperparams",
    "conditionally_mask", "named_chain",
]  # fmt: skip


@pytest.mark.parametrize("kind", WRAPPERS)
@FUZZ
@given(data=st.data(), problem=PROBLEMS)
def test_wrapper_matches_optax(kind, data, problem):
    build = _wrapper(data, problem[0], kind)
    if kind == "apply_if_finite":  # some steps carry a NaN
        structure, seed, scales = problem
        scales = [data.draw(st.sampled_from([s, math.nan]), label="nan step") for s in scales]
        problem = (structure, seed, scales)
    _compare(build, problem, kind, (kind,))


# --- schedules --------------------------------------------------------------------------

_VALUE = _floats(-10.0, 10.0)
_POSITIVE = _floats(0.0, 10.0)
_STEPS = st.integers(1, 500)
_BEGIN = st.integers(0, 100)
_SCALES = st.dictionaries(st.integers(0, 300), _floats(0.0, 2.0), max_size=4)


def _pct() -> st.SearchStrategy[tuple[float, float]]:
    return st.tuples(_floats(0.01, 0.98), _floats(0.01, 0.98)).map(sorted).filter(lambda p: p[0] < p[1])  # type: ignore[arg-type]


SCHEDULES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "constant_schedule": st.fixed_dictionaries({"value": _VALUE}),
    "cosine_decay_schedule": st.fixed_dictionaries(
        {"init_value": _VALUE, "decay_steps": _STEPS},
        optional={"alpha": _floats(0.0, 1.0), "exponent": _floats(0.5, 3.0)},
    ),
    "exponential_decay": st.fixed_dictionaries(
        {"init_value": _POSITIVE, "transition_steps": _STEPS, "decay_rate": _floats(0.01, 2.0)},
        optional={"transition_begin": _BEGIN, "staircase": st.booleans(), "end_value": st.none() | _POSITIVE},
    ),
    "linear_schedule": st.fixed_dictionaries(
        {"init_value": _VALUE, "end_value": _VALUE, "transition_steps": _STEPS},
        optional={"transition_begin": _BEGIN},
    ),
    "polynomial_schedule": st.fixed_dictionaries(
        {"init_value": _VALUE, "end_value": _VALUE, "power": _floats(0.5, 3.0), "transition_steps": _STEPS},
        optional={"transition_begin": _BEGIN},
    ),
    "piecewise_constant_schedule": st.fixed_dictionaries(
        {"init_value": _VALUE}, optional={"boundaries_and_scales": _SCALES}
    ),
    "piecewise_interpolate_schedule": st.fixed_dictionaries(
        {"interpolate_type": st.sampled_from(["linear", "cosine"]), "init_value": _VALUE},
        optional={"boundaries_and_scales": _SCALES},
    ),
    "warmup_constant_schedule": st.fixed_dictionaries(
        # 0 raises in gradtx, optax stays at init_value: README, differences.
        {"init_value": _VALUE, "peak_value": _VALUE, "warmup_steps": st.integers(1, 100)}
    ),
    "warmup_cosine_decay_schedule": st.fixed_dictionaries(
        {
            "init_value": _VALUE,
            "peak_value": _VALUE,
            "warmup_steps": st.integers(0, 100),
            "decay_steps": _STEPS,
        },
        optional={"end_value": _VALUE, "exponent": _floats(0.5, 3.0)},
    ),
    "warmup_exponential_decay_schedule": st.fixed_dictionaries(
        {
            "init_value": _POSITIVE,
            "peak_value": _POSITIVE,
            "warmup_steps": st.integers(0, 100),
            "transition_steps": _STEPS,
            "decay_rate": _floats(0.01, 2.0),
        },
        optional={"transition_begin": _BEGIN, "staircase": st.booleans(), "end_value": st.none() | _POSITIVE},
    ),
    "cosine_onecycle_schedule": st.fixed_dictionaries(
        {"transition_steps": st.integers(2, 500), "peak_value": _POSITIVE},
        optional={
            "pct_start": _floats(0.01, 0.99),
            "div_factor": _floats(1.0, 100.0),
            "final_div_factor": _floats(1.0, 1e4),
        },
    ),
    "linear_onecycle_schedule": st.tuples(
        st.fixed_dictionaries(
            {"transition_steps": st.integers(10, 500), "peak_value": _POSITIVE},
            optional={"div_factor": _floats(1.0, 100.0), "final_div_factor": _floats(1.0, 1e4)},
        ),
        _pct(),
    ).map(lambda d: {**d[0], "pct_start": d[1][0], "pct_final": d[1][1]}),
    "sgdr_schedule": st.lists(
        st.fixed_dictionaries(
            {
                "init_value": _POSITIVE,
                "peak_value": _POSITIVE,
                "warmup_steps": st.integers(0, 20),
                "decay_steps": st.integers(21, 100),
            },
            optional={"end_value": _POSITIVE},
        ),
        min_size=1,
        max_size=3,
    ).map(lambda kwargs: {"cosine_kwargs": kwargs}),
}


def _values(schedule: Callable[[Any], Any], steps: np.ndarray) -> np.ndarray:
    return np.asarray([np.asarray(schedule(jnp.asarray(s, jnp.int32)), np.float64) for s in steps])


_STEP_POINTS = st.lists(st.integers(0, 2000), min_size=1, max_size=6)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@FUZZ
@given(data=st.data(), points=_STEP_POINTS)
def test_schedule_matches_optax(name, data, points):
    kwargs = data.draw(SCHEDULES[name], label="kwargs")
    # Every boundary and its neighbours, where the schedules switch pieces.
    edges = [v for k, v in kwargs.items() if k.endswith("steps") or k == "transition_begin"]
    edges += list(kwargs.get("boundaries_and_scales") or {})
    steps = np.array(sorted({max(0, p + d) for p in [*points, *edges] for d in (-1, 0, 1)}))
    ours, theirs = _both(lambda m: _values(getattr(m, name)(**kwargs), steps))
    _assert_same(ours, theirs, f"{name}(**{kwargs})")


@FUZZ
@given(data=st.data(), points=_STEP_POINTS)
def test_joined_schedules_match_optax(data, points):
    names = data.draw(
        st.lists(st.sampled_from(sorted(set(SCHEDULES) - {"sgdr_schedule"})), min_size=1, max_size=3)
    )
    kwargs = [data.draw(SCHEDULES[n], label=n) for n in names]
    # Strictly increasing: gradtx rejects a repeated boundary (README, differences).
    boundaries = sorted(
        data.draw(
            st.lists(st.integers(0, 1000), min_size=len(names) - 1, max_size=len(names) - 1, unique=True)
        )
    )
    steps = np.array(sorted({max(0, p + d) for p in [*points, *boundaries] for d in (-1, 0, 1)}))

    def joined(m: Any) -> Any:
        return m.join_schedules(
            [getattr(m, n)(**kw) for n, kw in zip(names, kwargs, strict=True)], boundaries
        )

    ours, theirs = _both(lambda m: _values(joined(m), steps))
    _assert_same(ours, theirs, f"join_schedules({names}, {kwargs}, {boundaries})")


# --- tree functions ---------------------------------------------------------------------


@FUZZ
@given(data=st.data(), problem=PROBLEMS)
def test_tree_functions_match_optax(data, problem):
    structure, seed, scales = problem
    params, (new, updates, _) = _problem(structure, seed, scales)
    step_size = data.draw(_floats(0.0, 1.0), label="step_size")
    period = data.draw(st.integers(1, 4), label="update_period")
    steps = jnp.asarray(data.draw(st.integers(0, 8), label="steps"), jnp.int32)
    decay = data.draw(_floats(0.0, 1.0), label="decay")
    order = data.draw(st.sampled_from([1, 2, 3]), label="order")
    moments = jax.tree.map(jnp.abs, params)
    calls = {
        "global_norm": lambda m: m.global_norm(updates),
        "apply_updates": lambda m: m.apply_updates(params, updates),
        "incremental_update": lambda m: m.incremental_update(new, params, step_size),
        "periodic_update": lambda m: m.periodic_update(new, params, steps, period),
        "update_moment": lambda m: m.update_moment(updates, moments, decay, order),
        "update_moment_per_elem_norm": lambda m: m.update_moment_per_elem_norm(
            updates, moments, decay, order
        ),
        "update_infinity_moment": lambda m: m.update_infinity_moment(updates, moments, decay, 1e-8),
    }
    for name, call in calls.items():
        ours, theirs = _both(call)
        _assert_same(ours, theirs, name)


ARRAYS = st.tuples(st.sampled_from(SHAPES), st.integers(0, 2**31 - 1), GRAD_SCALES).map(
    lambda a: jnp.asarray(a[2] * np.random.default_rng(a[1]).standard_normal(a[0]), jnp.float32)
)


@FUZZ
@given(data=st.data(), x=ARRAYS)
def test_array_functions_match_optax(data, x):
    floor = data.draw(_floats(0.0, 1.0), label="min_norm")
    ords = [None, 1, 2, np.inf] if x.ndim <= 1 else [None, "fro"]
    ord_ = data.draw(st.sampled_from(ords), label="ord")
    count = jnp.asarray(data.draw(st.sampled_from([0, 5, 2**31 - 2, 2**31 - 1]), label="count"), jnp.int32)
    calls = {
        "safe_norm": lambda m: m.safe_norm(x, floor, ord=ord_),
        "safe_root_mean_squares": lambda m: m.safe_root_mean_squares(x, floor),
        "safe_increment": lambda m: m.safe_increment(count).astype(jnp.float32),
        "safe_int32_increment": lambda m: m.safe_int32_increment(count).astype(jnp.float32),
        "scale_gradient": lambda m: (
            m.scale_gradient(x, floor),
            jax.grad(lambda y: jnp.sum(m.scale_gradient(y, floor) ** 2))(x),
        ),
    }
    for name, call in calls.items():
        ours, theirs = _both(call)
        _assert_same(ours, theirs, f"{name}({x.shape}, {floor}, ord={ord_})")


@FUZZ
@given(data=st.data(), problem=PROBLEMS, batch=st.integers(1, 3))
def test_per_example_clipping_matches_optax(data, problem, batch):
    structure, seed, scales = problem
    structure = [Leaf((2,)), structure]  # both need a leaf to read the batch size from
    batched = jax.tree.map(lambda leaf: Leaf((batch, *leaf.shape)), structure, is_leaf=_is_leaf)
    _, (grads, _, _) = _problem(batched, seed, scales)
    bound = data.draw(_floats(0.0, 10.0), label="clip")
    uniform = data.draw(st.booleans(), label="uniform")
    for name, call in {
        "per_example_global_norm_clip": lambda m: m.per_example_global_norm_clip(
            jax.tree.leaves(grads), bound
        ),
        "per_example_layer_norm_clip": lambda m: m.per_example_layer_norm_clip(
            jax.tree.leaves(grads), bound, uniform=uniform
        ),
    }.items():
        ours, theirs = _both(call)
        _assert_same(ours, theirs, f"{name}(clip={bound}, uniform={uniform})")


# --- invalid hyperparameters ------------------------------------------------------------

_NEGATIVE = st.floats(max_value=-math.ulp(0.0), allow_nan=False)
_NOT_A_NUMBER = st.just(math.nan) | st.text(max_size=4) | st.just(None).map(lambda _: [0.1, "x"])
_NONNEGATIVE_NAMES = (
    "learning_rate", "eps", "eps_root", "weight_decay", "initial_accumulator_value",
    "initial_scale", "max_norm", "max_delta",
)  # fmt: skip
_NOT_A_FLAG = (
    st.text(max_size=4) | st.integers() | st.floats(allow_nan=False) | st.none().map(lambda _: "True")
)
_NOT_A_COUNT = st.floats(allow_nan=True).filter(lambda v: not v.is_integer()) | st.text(max_size=4).filter(
    lambda t: not t.strip().lstrip("+-").isdigit()
)
# Values outside each documented range, by argument name (written from the docstrings).
INVALID: dict[str, st.SearchStrategy[Any]] = {
    **{name: _NEGATIVE | _NOT_A_NUMBER for name in _NONNEGATIVE_NAMES},
    **{name: _NEGATIVE | st.floats(min_value=1.0) | _NOT_A_NUMBER for name in ("b1", "b2")},
    **{
        name: _NEGATIVE | st.floats(min_value=1.0, exclude_min=True) | _NOT_A_NUMBER
        for name in ("decay", "momentum")
    },
    **{flag: _NOT_A_FLAG for flag in (*_FLAGS, "staircase")},
    **{
        name: _NOT_A_COUNT | st.integers(max_value=0)
        for name in ("transition_steps", "decay_steps", "memory_size")
    },
    **{
        name: _NOT_A_COUNT | st.integers(max_value=-1)
        for name in (
            "transition_begin",
            "warmup_steps",
            "min_dim_size_to_factor",
            "decay_offset",
            "step_offset",
        )
    },
    **{
        name: st.sampled_from(["floaty", jnp.int32, "int8", bool, 3])
        for name in ("mu_dtype", "nu_dtype", "accumulator_dtype", "dtype_momentum")
    },
}
INVALID_FOR = {
    ("scale_by_sm3", "b1"): INVALID["decay"],  # SM3 allows 1 (b2 = 1 is its default)
    ("scale_by_sm3", "b2"): INVALID["decay"],
}
_SCHEDULE_REQUIRED = {name: strategy for name, strategy in SCHEDULES.items() if name != "sgdr_schedule"}


def _invalid_args(name: str) -> list[str]:
    return [
        arg
        for arg in inspect.signature(getattr(gradtx, name)).parameters
        if (name, arg) in INVALID_FOR or arg in INVALID
    ]


CHECKED = [name for name in FACTORIES + sorted(_SCHEDULE_REQUIRED) if _invalid_args(name)]


@pytest.mark.parametrize("name", CHECKED)
@settings(FUZZ, max_examples=FUZZ.max_examples * 6)  # cheap: nothing runs but the checks
@given(data=st.data())
def test_invalid_hyperparameters_raise(name, data):
    arg = data.draw(st.sampled_from(_invalid_args(name)), label="argument")
    bad = data.draw(INVALID_FOR.get((name, arg), INVALID[arg]), label="value")
    if name in _SCHEDULE_REQUIRED:
        kwargs = data.draw(_SCHEDULE_REQUIRED[name], label="valid")
    else:
        kwargs = dict(REQUIRED.get(name, _required(name)))
    kwargs[arg] = bad
    with pytest.raises(ValueError, match=arg):
        getattr(gradtx, name)(**kwargs)
