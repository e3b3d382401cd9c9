"""The public API: every exported name is documented, and every docstring example runs."""

import doctest
import enum
import importlib
import inspect
import pkgutil
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import gradtx.blocks
import gradtx.optimizers.modern

MODULES = [importlib.import_module(m.name) for m in pkgutil.walk_packages(gradtx.__path__, "gradtx.")]


def test_all_lists_exactly_the_public_names():
    public = {n for n in dir(gradtx) if not n.startswith("_")}
    submodules = {
        "base",
        "data",
        "chains",
        "readout",
        "blocks",
        "optimizers",
        "schedules",
        "packed",
        "flax",  # optional: `import gradtx.flax` imports flax; not in __all__
    }
    assert set(gradtx.__all__) == public - submodules
    assert gradtx.__all__ == sorted(gradtx.__all__)


@pytest.mark.parametrize("name", gradtx.__all__)
def test_public_name_is_documented(name):
    obj = getattr(gradtx, name)
    if typing.get_origin(obj) is not None:  # a type alias: documented in gradtx.types
        assert f"``{name}``" in (gradtx.types.__doc__ or ""), f"{name}: describe it in gradtx.types"
        return
    doc = inspect.getdoc(obj) or ""
    assert len(doc) > 20, f"{name} needs a docstring"
    is_factory = inspect.isfunction(obj) or (
        isinstance(obj, type) and issubclass(obj, gradtx.Transform) and obj.__name__.islower()
    )
    if is_factory and name not in (
        "chain",
        "named_chain",
        "apply_updates",
        "hyperparams",
        "identity",
        "foreign",
        "hyper",
        "static",
        "pytree_dataclass",
    ):
        takes_arguments = bool(inspect.signature(obj).parameters)
        for section in ("Args:", "Returns:", "Example:", "References:"):
            if section == "Args:" and not takes_arguments:
                assert section not in doc, f"{name}: takes no arguments, so no Args: section"
                continue
            assert section in doc, f"{name}: docstring lacks {section}"


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__ for m in MODULES])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_docstring_example_shows_a_result():
    """An example that only builds an optimizer asserts nothing: each shows an output."""
    silent = [
        test.name
        for module in MODULES
        for test in doctest.DocTestFinder().find(module)
        if test.examples and not any(e.want.strip() or e.exc_msg for e in test.examples)
    ]
    assert not silent, f"docstring examples without an expected output: {silent}"


# Shared names whose signatures differ from optax's, each for a stated reason; the test
# below fails on any other difference, and on an entry here that no longer differs.
SIGNATURE_DIFFERENCES = {
    # State NamedTuples: gradtx counts steps in every stateful block (`count`), splits
    # Adam-family state across blocks (MultiStepsState's added acc_weight and acc_slots come last,
    # with defaults, so they are not a difference).
    "AddDecayedWeightsState": "adds count",
    "ScaleByAdaDeltaState": "adds count",
    "ScaleByAdanState": "mu lives in MomentumState; count instead of t",
    "ScaleByBeliefState": "mu lives in MomentumState",
    "ScaleByRmsState": "adds count and nu_max",
    "ScaleByRssState": "adds count",
    "TraceState": "adds count",
    # One transform type: Transform(init_fn, update_fn) wraps optax-style functions.
    "GradientTransformation": "gradtx.Transform",
    "GradientTransformationExtraArgs": "gradtx.Transform",
    # Default objects that cannot compare equal across libraries: the same formula, the
    # same arguments (tests/test_conformance.py runs both against optax).
    "scale_by_factored_rms": "decay_rate_fn defaults to gradtx's decay_rate_pow",
    "lbfgs": "linesearch defaults to gradtx's scale_by_zoom_linesearch",
}


def _signature(obj):
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def _same_default(a, b) -> bool:
    if a is b:
        return True
    # the same member of each library's own enum (microbatching's AccumulationType.SUM)
    if isinstance(a, enum.Enum) and isinstance(b, enum.Enum):
        return type(a).__name__ == type(b).__name__ and a.name == b.name
    # the same kind of stateless object, each library's own class (perturbations' Gumbel())
    if (
        not inspect.isroutine(a)
        and type(a).__name__ == type(b).__name__
        and getattr(a, "__dict__", None) == getattr(b, "__dict__", 0) == {}
    ):
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _signature_difference(ours, theirs) -> str:
    """'' where every call written for optax's signature means the same to gradtx's."""
    mine, base = list(ours.parameters.values()), list(theirs.parameters.values())
    if len(mine) < len(base):
        return f"fewer parameters: {[p.name for p in mine]} vs {[p.name for p in base]}"
    for a, b in zip(mine, base, strict=False):  # extras checked below
        if a.kind != b.kind:
            return f"{b.name}: {a.kind.description} vs optax's {b.kind.description}"
        if a.kind is inspect.Parameter.VAR_POSITIONAL:
            continue  # *transforms vs *args: never passed by name
        if a.name != b.name:
            return f"parameter {a.name!r} where optax has {b.name!r}"
        if not _same_default(a.default, b.default):
            return f"{a.name}: default {a.default!r} vs optax's {b.default!r}"
    for extra in mine[len(base) :]:
        if extra.default is inspect.Parameter.empty and extra.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            return f"added parameter {extra.name!r} has no default"
    return ""


def test_shared_names_take_optax_arguments():
    """Every name gradtx shares with optax accepts optax's arguments in optax's order,
    with optax's defaults (added parameters come last, with defaults)."""
    import optax

    differences = {}
    for name in gradtx.__all__:
        theirs_obj = getattr(optax, name, None)
        if not callable(theirs_obj) or typing.get_origin(theirs_obj) is not None:
            continue  # not shared, or optax's is a type alias (documented in gradtx.types)
        ours, theirs = _signature(getattr(gradtx, name)), _signature(getattr(optax, name))
        if ours is None or theirs is None:
            assert ours is None and theirs is None, name
            continue
        difference = _signature_difference(ours, theirs)
        if difference:
            differences[name] = difference
    unexplained = {n: d for n, d in differences.items() if n not in SIGNATURE_DIFFERENCES}
    assert not unexplained, unexplained
    assert set(SIGNATURE_DIFFERENCES) == set(differences), set(SIGNATURE_DIFFERENCES) - set(differences)


def test_bias_correction_is_optax_tree_function():
    import optax

    moment = {"m": jnp.asarray([1.0, -3.0]), "v": jnp.asarray([2.0], jnp.bfloat16)}
    for count in (1, 2, 7):
        ours = gradtx.bias_correction(moment, 0.9, jnp.asarray(count))
        theirs = optax.bias_correction(moment, 0.9, jnp.asarray(count))
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


PRESET_NAMES = [
    (module, name)
    for module in (gradtx.torch, gradtx.keras, gradtx.keras.schedules, gradtx.torch.lr_scheduler)
    for name in module.__all__
    if not inspect.ismodule(getattr(module, name))
]


@pytest.mark.parametrize(("module", "name"), PRESET_NAMES, ids=[f"{m.__name__}.{n}" for m, n in PRESET_NAMES])
def test_preset_name_is_documented(module, name):
    assert sorted(module.__all__) == module.__all__
    doc = inspect.getdoc(getattr(module, name)) or ""
    for section in ("Args:", "Returns:", "Example:", "References:"):
        assert section in doc, f"{module.__name__}.{name}: docstring lacks {section}"


# gradtx's own blocks in the package of blocks that no optax-named optimizer uses, each
# with the reason it belongs there (a block optax users compose) and not beside a
# framework's presets.
OWN_GENERAL_BLOCKS = {
    "cautious": "the cautious mask around any optimizer (Liang et al., 2024), a wrapper users compose",
    "injected": "the type inject_hyperparams returns (optax's name is the function)",
    "scale_by_bias_correction": "bias correction as its own block, for chains that debias a moment later",
    "tiled": "runs any elementwise optimizer a tile at a time (quantized state's peak memory), a wrapper",
}


def _block_types_inside(tx, found):
    found.add(type(tx).__name__)
    for inner in tx._inside():
        _block_types_inside(inner, found)


def test_the_package_of_blocks_holds_only_blocks_optax_users_compose():
    import optax

    used = set()
    for name in dir(optax):
        factory = getattr(gradtx, name, None) if not name.startswith("_") else None
        if factory is None or inspect.isclass(factory) or not callable(factory):
            continue
        for args in ((), (0.1,), (0.1, 0.9)):
            try:
                tx = factory(*args)
            except Exception:  # a function of trees, or a factory needing other arguments
                continue
            if isinstance(tx, gradtx.Transform):
                _block_types_inside(tx, used)
                break
    assert {"momentum", "scale_by_rms", "rectified", "interpolated_sign", "shrink_weights"} <= used
    # gradtx's own optimizers newer than optax compose general blocks too
    for name in gradtx.optimizers.modern.__all__:
        _block_types_inside(getattr(gradtx, name)(0.1), used)
    modules = [
        importlib.import_module(m.name)
        for m in pkgutil.iter_modules(gradtx.blocks.__path__, "gradtx.blocks.")
    ]
    assert len(modules) >= 15
    for module in modules:
        blocks = [
            name
            for name, obj in vars(module).items()
            if inspect.isclass(obj)
            and issubclass(obj, gradtx.Transform)
            and obj.__module__ == module.__name__
        ]
        public = [name for name in getattr(module, "__all__", vars(module)) if not name.startswith("_")]
        assert any(hasattr(optax, n) or n in used for n in public), f"{module.__name__} serves no optax name"
        lonely = [
            n for n in blocks if not hasattr(optax, n) and n not in used and n not in OWN_GENERAL_BLOCKS
        ]
        assert lonely == [], f"{module.__name__}: {lonely} belong beside the presets that use them"


CONTRIB_NAMES = gradtx.contrib.__all__


@pytest.mark.parametrize("name", CONTRIB_NAMES)
def test_contrib_name_is_documented(name):
    assert sorted(CONTRIB_NAMES) == CONTRIB_NAMES
    obj = getattr(gradtx.contrib, name)
    doc = inspect.getdoc(obj) or ""
    assert len(doc) > 20, f"contrib.{name} needs a docstring"
    is_factory = inspect.isfunction(obj) or (isinstance(obj, type) and name.islower())
    if is_factory:
        takes_arguments = bool(inspect.signature(obj).parameters)
        for section in ("Args:", "Returns:", "Example:", "References:"):
            if section == "Args:" and not takes_arguments:
                assert section not in doc, f"contrib.{name}: takes no arguments, so no Args: section"
                continue
            assert section in doc, f"contrib.{name}: docstring lacks {section}"
