"""Helpers the contrib optimizers share: optax's ``tree.dtype(params, 'lowest')`` and
finding one block's state inside an optimizer's state."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _tree
from gradtx._checks import InputError


def lowest_dtype(params: Any, real: bool = True) -> Any:
    """The narrowest dtype of the tree's leaves (float32 for an empty tree), as optax's
    ``tree.dtype(params, 'lowest')``; complex64 gives float32 unless ``real=False``."""
    dtypes = [jnp.asarray(p).dtype for p in jax.tree.leaves(params)]
    if not dtypes:
        return _tree.float_dtype()
    lowest = min(dtypes, key=lambda d: jnp.finfo(d).bits)
    return _tree.real_dtype(lowest) if real else lowest


def highest_dtype(params: Any) -> Any:
    """The widest dtype of the tree's leaves, as optax's ``tree.dtype(params, 'highest')``."""
    dtypes = [jnp.asarray(p).dtype for p in jax.tree.leaves(params)]
    if not dtypes:
        return _tree.float_dtype()
    return _tree.real_dtype(max(dtypes, key=lambda d: jnp.finfo(d).bits))


def find_state(owner: str, state: Any, kind: type, what: str) -> Any:
    """The first ``kind`` (a state NamedTuple) inside ``state``; raises naming ``what``
    (the optimizer whose state is expected) when there is none."""
    found = [s for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, kind)) if isinstance(s, kind)]
    if not found:
        raise InputError(owner, f"this state holds no {kind.__name__}: pass the state of {what}.")
    return found[0]
