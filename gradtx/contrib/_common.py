"""Helpers the contrib optimizers share: optax's ``tree.dtype(params, 'lowest')`` and
finding one block's state inside an optimizer's state."""

from __future__ import annotations

from typing import Any

import jax

from gradtx import _tree
from gradtx._checks import InputError
from gradtx.tree import dtype as tree_dtype


def lowest_dtype(params: Any, real: bool = True) -> Any:
    """optax's ``tree.dtype(params, 'lowest')`` (`gradtx.tree.dtype`), float32 for an empty
    tree; complex64 gives float32 unless ``real=False``."""
    if not jax.tree.leaves(params):
        return _tree.float_dtype()
    lowest = tree_dtype(params, "lowest")
    return _tree.real_dtype(lowest) if real else lowest


def highest_dtype(params: Any) -> Any:
    """optax's ``tree.dtype(params, 'highest')`` (`gradtx.tree.dtype`), float32 for an empty tree."""
    if not jax.tree.leaves(params):
        return _tree.float_dtype()
    return _tree.real_dtype(tree_dtype(params, "highest"))


def find_state(owner: str, state: Any, kind: type, what: str) -> Any:
    """The first ``kind`` (a state NamedTuple) inside ``state``; raises naming ``what``
    (the optimizer whose state is expected) when there is none."""
    found = [s for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, kind)) if isinstance(s, kind)]
    if not found:
        raise InputError(owner, f"this state holds no {kind.__name__}: pass the state of {what}.")
    return found[0]
