"""The documentation site: every public name has an API entry, the site builds with
warnings as errors, and every guide's code runs and prints what the page shows."""

import importlib
import inspect
import pathlib
import re
import subprocess
import sys
import time
import typing

import optax
import pytest
from conftest import reference_numerics
from markdown_blocks import python_blocks, run_block

import gradtx
import gradtx.flax
import gradtx.keras.schedules

DOCS = pathlib.Path(__file__).parent.parent / "docs"
GUIDES = sorted(DOCS.glob("*.md"))
_DIRECTIVE = re.compile(r"^\.\. (currentmodule|auto(?:function|class|data|module))::\s+(\S+)", re.M)


def documented_names() -> list[str]:
    """Fully qualified names of the API pages' autodoc entries, in page order."""
    names = []
    for page in sorted((DOCS / "api").glob("*.rst")):
        module = "gradtx"
        for kind, name in _DIRECTIVE.findall(page.read_text()):
            if kind == "currentmodule":
                module = name
            elif kind == "automodule" or name.startswith("gradtx."):
                names.append(name)
            else:
                names.append(f"{module}.{name}")
    return names


def public_names() -> set[str]:
    """gradtx's exports and those of its torch, keras and flax presets and helper modules."""
    modules = [
        gradtx,
        gradtx.torch,
        gradtx.keras,
        gradtx.keras.schedules,
        gradtx.flax,
        gradtx.losses,
        gradtx.projections,
        gradtx.second_order,
        gradtx.perturbations,
        gradtx.microbatching,
        gradtx.assignment,
        gradtx.contrib,
    ]
    names = {f"{m.__name__}.{n}" for m in modules for n in m.__all__}
    for m in (gradtx.testing, gradtx.tree_utils):  # modules without __all__: what they define
        names |= {
            f"{m.__name__}.{n}"
            for n, obj in vars(m).items()
            if not n.startswith("_") and getattr(obj, "__module__", None) == m.__name__
        }
    return names


def test_every_public_name_has_an_api_entry():
    documented = documented_names()
    repeated = sorted({n for n in documented if documented.count(n) > 1})
    missing = sorted(public_names() - set(documented))
    unknown = sorted(set(documented) - public_names())
    assert not missing, f"public names without an entry in docs/api/*.rst: {missing}"
    assert not unknown, f"docs/api/*.rst documents names that are not public: {unknown}"
    assert not repeated, f"documented twice: {repeated}"


def test_every_api_entry_has_a_docstring():
    """autodoc renders an empty entry without a warning: each needs its own docstring."""
    empty = []
    for qualified in documented_names():
        module, _, name = qualified.rpartition(".")
        obj = getattr(importlib.import_module(module), name)
        if typing.get_origin(obj) is not None:  # a type alias, described in gradtx.types
            assert f"``{name}``" in (gradtx.types.__doc__ or ""), name
        elif len(inspect.getdoc(obj) or "") < 20:
            empty.append(qualified)
    assert not empty, f"API entries without a docstring: {empty}"


def test_docs_build_with_warnings_as_errors(tmp_path):
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    built = {
        p.relative_to(tmp_path / "html").with_suffix("").as_posix()
        for p in (tmp_path / "html").rglob("*.html")
    }
    for page in [*GUIDES, *(DOCS / "api").glob("*.rst")]:
        assert page.relative_to(DOCS).with_suffix("").as_posix() in built
    print(f"{len(built)} pages in {time.perf_counter() - start:.1f} s")


@pytest.mark.parametrize("page", GUIDES, ids=[p.name for p in GUIDES])
def test_page_code_runs_and_prints_what_the_page_shows(page):
    """A page's blocks run in order in one namespace, as a reader runs them."""
    namespace: dict = {"__name__": "__docs__"}
    blocks = python_blocks(page)
    for block in blocks:
        with reference_numerics():  # a reader's JAX: default promotion (flax, optax code)
            printed = run_block(block, namespace, page.name)
        assert printed == (block.shown or ""), f"{page.name}:{block.line} printed:\n{printed}"


def test_not_covered_list_is_what_optax_has_and_gradtx_lacks():
    page = (DOCS / "coming_from_optax.md").read_text()
    listed = page.split("## Not covered", 1)[1].split("```text\n", 1)[1].split("```", 1)[0].split()
    lacking = sorted(n for n in dir(optax) if not n.startswith("_") and not hasattr(gradtx, n))
    assert listed == lacking


def test_nothing_cites_the_notes_by_their_private_file_names():
    root = DOCS.parent
    files = [
        root / "README.md",
        *root.glob("gradtx/**/*.py"),
        *root.glob("examples/*.py"),
        *DOCS.glob("*.md"),
    ]
    citing = [
        str(f.relative_to(root)) for f in files if re.search(r"seed notes? \d|shared/seeds", f.read_text())
    ]
    assert not citing, citing
