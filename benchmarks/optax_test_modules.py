"""Runs optax's own test modules against gradtx and prints the pass counts.

optax ships its tests inside the installed wheel (``optax/transforms/*_test.py``,
``optax/_src/*_test.py``, ...). For each module this script makes a temporary copy
whose optax imports are rewritten to a shim: every name gradtx shares with optax
resolves to gradtx's object (``optax.masked`` is ``gradtx.masked``,
``_masking.masked`` too), every other name to optax's. It runs the copy with pytest,
and also the untouched module, so a test that fails without gradtx (an environment
issue) is not counted against gradtx. Nothing of optax's is copied into this
repository; the copies live in a temporary folder.

Run:  python benchmarks/optax_test_modules.py [module ...]   (default: the wrapper,
      combinator, clipping, numerics and tree-utility modules)
      add --failures to print each failing test with its first error line.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile

import optax

OPTAX = pathlib.Path(optax.__file__).parent
DEFAULT = [
    "transforms/_masking_test.py",
    "transforms/_combining_test.py",
    "transforms/_freezing_test.py",
    "transforms/_conditionality_test.py",
    "transforms/_accumulation_test.py",
    "transforms/_adding_test.py",
    "transforms/_clipping_test.py",
    "transforms/_layouts_test.py",
    "transforms/_monitoring_test.py",
    "transforms/_constraining_test.py",
    "_src/lookahead_test.py",
    "_src/numerics_test.py",
    "_src/update_test.py",
    "_src/base_test.py",
    "_src/utils_test.py",
    "_src/linear_algebra_test.py",
    "_src/alias_test.py",
    "_src/transform_test.py",
    "_src/factorized_test.py",
    "_src/linesearch_test.py",
    "schedules/_inject_test.py",
    "schedules/_join_test.py",
    "schedules/_schedule_test.py",
    "tree_utils/_state_utils_test.py",
    "tree_utils/_tree_math_test.py",
    "tree_utils/_casting_test.py",
    "tree_utils/_random_test.py",
    "losses/_classification_test.py",
    "losses/_fenchel_young_test.py",
    "losses/_ranking_test.py",
    "losses/_regression_test.py",
    "losses/_segmentation_test.py",
    "losses/_self_supervised_test.py",
    "losses/_smoothing_test.py",
    "projections/_projections_test.py",
    "perturbations/_make_pert_test.py",
    "microbatching/_microbatching_test.py",
    "assignment/_hungarian_algorithm_test.py",
    "contrib/_common_test.py",
    "contrib/_complex_valued_test.py",
    "contrib/_galore_test.py",
    "contrib/_mechanic_test.py",
    "contrib/_muon_test.py",
    "contrib/_privacy_test.py",
    "contrib/_reduce_on_plateau_test.py",
    "contrib/_sam_test.py",
    "contrib/_schedule_free_test.py",
]

SHIM = '''
import importlib as _importlib
import types as _types

import gradtx as _gradtx
import optax as _optax

# optax names that gradtx defines with another meaning: keep optax's.
_DIFFERENT = {"Schedule", "ScheduleState"}
_SHARED = {n for n in dir(_optax) if not n.startswith("_") and hasattr(_gradtx, n)} - _DIFFERENT
# classes optax keeps in a private module that gradtx exports: what its top-level
# functions return (optax.multi_normal returns a _src.utils.MultiNormalDiagFromLogScale)
_SHARED |= {"MultiNormalDiagFromLogScale"}


class _Shim(_types.ModuleType):
    """A module whose shared names come from gradtx, the rest from ``fallback``."""

    def __init__(self, fallback):
        super().__init__(fallback.__name__)
        object.__setattr__(self, "_fallback", fallback)
        # optax.X and its private modules (optax.tree_utils._tree_math): gradtx.X's names
        parts = fallback.__name__.split(".")
        face = getattr(_gradtx, parts[1], None) if len(parts) > 1 else None
        object.__setattr__(self, "_face", face if isinstance(face, _types.ModuleType) else None)

    def __getattr__(self, name):
        if name in _SHARED:
            return getattr(_gradtx, name)
        face = object.__getattribute__(self, "_face")
        if face is not None and hasattr(face, name) and not name.startswith("_"):
            return getattr(face, name)
        value = getattr(object.__getattribute__(self, "_fallback"), name)
        if isinstance(value, _types.ModuleType) and value.__name__.startswith("optax"):
            return _Shim(value)
        return value


def _module(path):
    return _Shim(_importlib.import_module(path))


def _name(path, name):
    module = _importlib.import_module(path)
    try:
        value = _importlib.import_module(path + "." + name)
    except ImportError:
        value = getattr(module, name)
    if isinstance(value, _types.ModuleType):
        return _Shim(value)
    return getattr(_Shim(module), name)
'''

IMPORT_FROM = re.compile(r"^from (optax(?:\.[\w.]+)?) import ([\w, ]+?)(?:\s+#.*)?$", re.M)
IMPORT_FROM_PAREN = re.compile(r"^from (optax(?:\.[\w.]+)?) import \(([^)]*)\)", re.M)
IMPORT_PLAIN = re.compile(r"^import (optax(?:\.[\w.]+)?)(?: as (\w+))?\s*$", re.M)


def rewrite(source: str) -> str:
    """The module's source with its optax imports going through the shim."""

    def names(body: str) -> list[tuple[str, str]]:
        out = []
        for part in body.replace("\n", " ").split(","):
            part = part.split("#")[0].strip()
            if part:
                bits = part.split(" as ")
                out.append((bits[0].strip(), bits[-1].strip()))
        return out

    def from_import(match: re.Match[str]) -> str:
        path = match.group(1)
        return "\n".join(f"{alias} = _name({path!r}, {name!r})" for name, alias in names(match.group(2)))

    def plain(match: re.Match[str]) -> str:
        path, alias = match.group(1), match.group(2)
        if alias:
            return f"{alias} = _module({path!r})"
        return f"import {path}\noptax = _module('optax')"

    source = IMPORT_FROM_PAREN.sub(from_import, source)
    source = IMPORT_FROM.sub(from_import, source)
    source = IMPORT_PLAIN.sub(plain, source)
    # Put the shim after the module docstring and __future__ imports.
    lines = source.splitlines()
    at = max((i + 1 for i, line in enumerate(lines) if line.startswith("from __future__")), default=0)
    return "\n".join([*lines[:at], SHIM, *lines[at:]]) + "\n"


def run(path: pathlib.Path) -> tuple[dict[str, int], dict[str, str]]:
    """pytest's counts for one file, and each failing test with its first error line."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", "--tb=no", str(path)],
        capture_output=True,
        text=True,
        cwd=path.parent,
    )
    lines = result.stdout.strip().splitlines()
    counts: dict[str, int] = {}
    summary = lines[-1] if lines else ""
    for number, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed)", summary):
        counts[word.rstrip("s") if word.startswith("error") else word] = int(number)
    failed = {}
    for line in lines:
        if line.startswith(("FAILED", "ERROR")):
            test = line.split()[1].split("::", 1)[-1]
            failed[test] = line.split(" - ", 1)[-1] if " - " in line else ""
    return counts, failed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("modules", nargs="*", default=DEFAULT)
    parser.add_argument("--failures", action="store_true", help="list failing tests")
    args = parser.parse_args()
    total = {"gradtx": 0, "optax": 0, "tests": 0}
    print(f"{'optax test module':42s} {'tests':>6s} {'optax':>6s} {'gradtx':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        for module in args.modules:
            source = (OPTAX / module).read_text()
            original = pathlib.Path(tmp) / ("original_" + pathlib.Path(module).name)
            shimmed = pathlib.Path(tmp) / ("gradtx_" + pathlib.Path(module).name)
            original.write_text(source)
            shimmed.write_text(rewrite(source))
            theirs, their_failures = run(original)
            ours, our_failures = run(shimmed)
            n = sum(theirs.values())
            total["tests"] += n
            total["optax"] += theirs.get("passed", 0)
            total["gradtx"] += ours.get("passed", 0)
            print(f"{module:42s} {n:6d} {theirs.get('passed', 0):6d} {ours.get('passed', 0):7d}")
            if args.failures:
                for test, why in sorted(our_failures.items()):
                    also = " (fails with optax too)" if test in their_failures else ""
                    print(f"    {test}{also}: {why[:160]}")
    print(f"{'total':42s} {total['tests']:6d} {total['optax']:6d} {total['gradtx']:7d}")


if __name__ == "__main__":
    main()
