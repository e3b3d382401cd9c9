"""`import gradtx as optax` all the way down: optax's public modules under the same names,
with optax's signatures and numbers, and the README's count of what is reachable."""

import inspect
import pathlib
import re
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_api import SIGNATURE_DIFFERENCES, _signature, _signature_difference

import gradtx

MODULES = sorted(
    n for n in dir(optax) if not n.startswith("_") and isinstance(getattr(optax, n), types.ModuleType)
)

# What optax has and gradtx does not provide yet, by module, each with its reason. The
# test fails on anything else missing, and on anything listed here that gradtx gained.
NOT_YET = {
    "experimental": "empty in optax 0.2.8",
}
NOT_YET_NAMES: dict[tuple[str, str], str] = {}
# Names only in a submodule whose signatures differ from optax's, each with its reason
# (the top level's are test_api.SIGNATURE_DIFFERENCES).
MODULE_SIGNATURE_DIFFERENCES = {
    "microbatching.micro_grad": "transform_fn and metrics_fn default to functions of their "
    "own that do the same (identity; None)",
    "contrib.adopt": "clip_value_fn defaults to gradtx's function (count ** 0.25, as optax's lambda)",
    "contrib.scale_by_adopt": "clip_value_fn defaults to gradtx's function (count ** 0.25, as optax's)",
    "contrib.sophia": "hessian_diagonal_fn defaults to None: a fresh hutchinson_estimator_diag_hessian() "
    "(optax builds one when the module is imported)",
}


def _public(module) -> list[str]:
    return [
        n
        for n in dir(module)
        if not n.startswith("_") and not isinstance(getattr(module, n), types.ModuleType)
    ]


def test_every_public_optax_module_name_is_in_gradtx():
    missing = {}
    for module in MODULES:
        ours = getattr(gradtx, module, None)
        if module in NOT_YET:
            assert ours is None or not any(hasattr(ours, n) for n in _public(getattr(optax, module))), module
            continue
        assert isinstance(ours, types.ModuleType), f"gradtx.{module} is missing"
        for name in _public(getattr(optax, module)):
            if not hasattr(ours, name):
                missing[(module, name)] = True
    assert set(missing) == set(NOT_YET_NAMES), set(missing) ^ set(NOT_YET_NAMES)


def test_module_names_take_optax_arguments():
    differences = {}
    for module in MODULES:
        if module in NOT_YET:
            continue
        for name in _public(getattr(optax, module)):
            theirs_obj = getattr(getattr(optax, module), name)
            ours_obj = getattr(getattr(gradtx, module), name, None)
            if ours_obj is None or not callable(theirs_obj) or inspect.isclass(theirs_obj):
                continue  # missing (the test above), or a class (NamedTuples: test_api)
            ours, theirs = _signature(ours_obj), _signature(theirs_obj)
            if ours is None or theirs is None:
                continue
            difference = _signature_difference(ours, theirs)
            if (
                difference
                and name not in SIGNATURE_DIFFERENCES
                and f"{module}.{name}" not in MODULE_SIGNATURE_DIFFERENCES
            ):
                differences[f"{module}.{name}"] = difference
    assert differences == {}, differences


def _counts() -> tuple[int, int, int, int]:
    top = _public(optax)
    top_have = sum(hasattr(gradtx, n) for n in top)
    have, total = top_have, len(top)
    for module in MODULES:
        names = _public(getattr(optax, module))
        ours = getattr(gradtx, module, None)
        total += len(names)
        have += sum(1 for n in names if ours is not None and hasattr(ours, n))
    return have, total, top_have, len(top)


def test_readme_counts_the_whole_namespace():
    have, total, top_have, top_total = _counts()
    readme = " ".join((pathlib.Path(__file__).parent.parent / "README.md").read_text().split())
    assert f"{have} of the {total} public names of optax's top level and public modules" in readme
    assert f"({top_have} of the top level's {top_total};" in readme
    if have < total:
        assert f"The {total - have} others" in readme


# --- the tree math against optax's, on random trees ---------------------------------------


def _tree(seed: int, dtype=jnp.float32):
    k = jax.random.split(jax.random.key(seed), 3)
    tree = {
        "w": jax.random.normal(k[0], (3, 4)),
        "b": jax.random.normal(k[1], (4,)),
        "s": jax.random.normal(k[2], ()),
    }
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return jax.tree.map(lambda x: jax.lax.complex(x, jnp.cos(x)), tree)
    return jax.tree.map(lambda x: x.astype(dtype), tree)


CALLS = {
    "add": lambda m, x, y: m.add(x, y, x),
    "sub": lambda m, x, y: m.sub(x, y),
    "mul": lambda m, x, y: m.mul(x, y),
    "div": lambda m, x, y: m.div(x, y),
    "scale": lambda m, x, y: m.scale(0.3, x),
    "add_scale": lambda m, x, y: m.add_scale(x, 0.3, y),
    "vdot": lambda m, x, y: m.vdot(x, y),
    "sum": lambda m, x, y: m.sum(x),
    "max": lambda m, x, y: m.max(m.real(x)),
    "min": lambda m, x, y: m.min(m.real(x)),
    "size": lambda m, x, y: m.size(x),
    "conj": lambda m, x, y: m.conj(x),
    "real": lambda m, x, y: m.real(x),
    "norm": lambda m, x, y: [m.norm(x), m.norm(x, squared=True), m.norm(x, 1), m.norm(x, "inf", True)],
    "batch_shape": lambda m, x, y: m.batch_shape(x, (2,)),
    "zeros_like": lambda m, x, y: m.zeros_like(x),
    "ones_like": lambda m, x, y: m.ones_like(x, jnp.float32),
    "full_like": lambda m, x, y: m.full_like(x, 2.5),
    "clip": lambda m, x, y: m.clip(m.real(x), -0.5, 0.7),
    "where": lambda m, x, y: [m.where(True, x, y), m.where(False, x, y)],
    "allclose": lambda m, x, y: [m.allclose(x, x), m.allclose(x, y)],
    "cast": lambda m, x, y: m.cast(m.real(x), jnp.bfloat16),
    "cast_like": lambda m, x, y: m.cast_like(m.real(x), m.cast(m.real(y), jnp.float16)),
    "dtype": lambda m, x, y: str(m.dtype(x)),
    "split_key_like": lambda m, x, y: m.unwrap_random_key_data(m.split_key_like(jax.random.key(3), x)),
    "random_like": lambda m, x, y: m.random_like(jax.random.key(3), m.real(x)),
    "unwrap_random_key_data": lambda m, x, y: m.unwrap_random_key_data([jax.random.key(4), x]),
    "get": lambda m, x, y: m.get({"a": x}, "a"),
    "map_params": lambda m, x, y: [
        m.map_params(opt, lambda p, q: p * 2 + q, opt.init(x), y, transform_non_params=lambda v: v)
        for opt in (
            gradtx.adam(1e-3),
            gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-3)),
            gradtx.MultiSteps(gradtx.sgd(0.1, 0.9), 2),
        )
    ],
    "set": lambda m, x, y: m.set({"a": x}, a=y),
    "get_all_with_path": lambda m, x, y: [v for _, v in m.get_all_with_path({"a": x}, "a")],
    "bias_correction": lambda m, x, y: m.bias_correction(x, 0.9, jnp.asarray(3)),
    "update_moment": lambda m, x, y: m.update_moment(x, y, 0.9, 2),
    "update_moment_per_elem_norm": lambda m, x, y: m.update_moment_per_elem_norm(x, m.real(y), 0.9, 2),
    "update_infinity_moment": lambda m, x, y: m.update_infinity_moment(m.real(x), m.real(y), 0.9, 1e-8),
}


def test_every_tree_function_is_called_below():
    assert set(CALLS) == set(_public(optax.tree)) - {name for _, name in NOT_YET_NAMES if _ == "tree"}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64], ids=["float32", "complex64"])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_tree_function_equals_optax(name, dtype):
    from conftest import reference_numerics

    x, y = _tree(0, dtype), _tree(1, dtype)
    with reference_numerics():
        theirs = CALLS[name](optax.tree, x, y)
        ours = CALLS[name](gradtx.tree, x, y)
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
        np.testing.assert_array_equal(a, b)


def test_tree_and_tree_utils_are_one_implementation():
    for name in gradtx.tree.__all__:
        assert getattr(gradtx.tree, name) is getattr(gradtx.tree_utils, f"tree_{name}"), name


def test_tree_norm_refuses_an_unknown_order():
    with pytest.raises(ValueError, match="ord must be None, 1, 2 or inf, got 3"):
        gradtx.tree.norm([jnp.ones(2)], 3)
    assert re.search("Expected dtype=float32", _mixed_dtype_message())


def _mixed_dtype_message() -> str:
    with pytest.raises(ValueError) as info:
        gradtx.tree.dtype({"a": jnp.ones(1), "b": jnp.ones(1, jnp.float16)})
    return str(info.value)


def test_tree_map_params_on_packed_parameters_maps_each_original_parameter():
    params = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.array([1.0, -1.0, 2.0])}
    grads = jax.tree.map(jnp.cos, params)
    opt = gradtx.MultiSteps(gradtx.adamw(0.1), every_k_schedule=2)
    plain_state = opt.update(grads, opt.init(params), params)[1]
    packed = gradtx.pack(params)
    packed_state = opt.update(gradtx.pack(grads), opt.init(packed), packed)[1]
    offsets = {"w": jnp.ones((2, 3)), "b": jnp.full(3, 2.0)}  # given like the original parameters

    def shift(x, o):
        return 2 * x + o

    mapped = gradtx.tree_map_params(opt, shift, packed_state, offsets)
    expected = gradtx.tree_map_params(opt, shift, plain_state, offsets)
    # shape- and dtype-keeping: packed again, equal leaf by leaf to the plain state's
    as_plain = jax.tree.map(lambda x: x.unpack() if isinstance(x, gradtx.Packed) else x, mapped,
                            is_leaf=lambda x: isinstance(x, gradtx.Packed))  # fmt: skip
    assert any(
        isinstance(x, gradtx.Packed)
        for x in jax.tree.leaves(mapped, is_leaf=lambda x: isinstance(x, gradtx.Packed))
    )
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), as_plain, expected)
    # a function that does not keep shapes: the tree like the original parameters
    shapes = gradtx.tree_map_params(opt, lambda x: x.shape, packed_state)
    assert shapes.inner_opt_state[0].mu == {"w": (2, 3), "b": (3,)}
