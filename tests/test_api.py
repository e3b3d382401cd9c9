"""The public API: every exported name is documented, and every docstring example runs."""

import doctest
import importlib
import inspect
import pkgutil
import typing

import pytest

import gradtx

MODULES = [importlib.import_module(m.name) for m in pkgutil.walk_packages(gradtx.__path__, "gradtx.")]


def test_all_lists_exactly_the_public_names():
    public = {n for n in dir(gradtx) if not n.startswith("_")}
    submodules = {
        "base",
        "data",
        "chains",
        "readout",
        "tree",
        "transforms",
        "optimizers",
        "schedules",
        "packed",
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
        for section in ("Args:", "Returns:", "Example:", "References:"):
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
