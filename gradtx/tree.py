"""optax's ``optax.tree`` module: the functions of `gradtx.tree_utils` under optax's short
names (``gradtx.tree.norm`` is `gradtx.tree_utils.tree_norm`, ``gradtx.tree.get`` is
`gradtx.tree_utils.tree_get`, ...), with optax's signatures and numbers.

Example:
  >>> import gradtx, jax.numpy as jnp
  >>> gradtx.tree.norm({"a": jnp.array([3.0]), "b": jnp.array([4.0])})
  Array(5., dtype=float32)
"""

from __future__ import annotations

from gradtx.tree_utils import tree_add as add
from gradtx.tree_utils import tree_add_scale as add_scale
from gradtx.tree_utils import tree_allclose as allclose
from gradtx.tree_utils import tree_batch_shape as batch_shape
from gradtx.tree_utils import tree_bias_correction as bias_correction
from gradtx.tree_utils import tree_cast as cast
from gradtx.tree_utils import tree_cast_like as cast_like
from gradtx.tree_utils import tree_clip as clip
from gradtx.tree_utils import tree_conj as conj
from gradtx.tree_utils import tree_div as div
from gradtx.tree_utils import tree_dtype as dtype
from gradtx.tree_utils import tree_full_like as full_like
from gradtx.tree_utils import tree_get as get
from gradtx.tree_utils import tree_get_all_with_path as get_all_with_path
from gradtx.tree_utils import tree_map_params as map_params
from gradtx.tree_utils import tree_max as max
from gradtx.tree_utils import tree_min as min
from gradtx.tree_utils import tree_mul as mul
from gradtx.tree_utils import tree_norm as norm
from gradtx.tree_utils import tree_ones_like as ones_like
from gradtx.tree_utils import tree_random_like as random_like
from gradtx.tree_utils import tree_real as real
from gradtx.tree_utils import tree_scale as scale
from gradtx.tree_utils import tree_set as set
from gradtx.tree_utils import tree_size as size
from gradtx.tree_utils import tree_split_key_like as split_key_like
from gradtx.tree_utils import tree_sub as sub
from gradtx.tree_utils import tree_sum as sum
from gradtx.tree_utils import tree_unwrap_random_key_data as unwrap_random_key_data
from gradtx.tree_utils import tree_update_infinity_moment as update_infinity_moment
from gradtx.tree_utils import tree_update_moment as update_moment
from gradtx.tree_utils import tree_update_moment_per_elem_norm as update_moment_per_elem_norm
from gradtx.tree_utils import tree_vdot as vdot
from gradtx.tree_utils import tree_where as where
from gradtx.tree_utils import tree_zeros_like as zeros_like

__all__ = [
    "add",
    "add_scale",
    "allclose",
    "batch_shape",
    "bias_correction",
    "cast",
    "cast_like",
    "clip",
    "conj",
    "div",
    "dtype",
    "full_like",
    "get",
    "get_all_with_path",
    "map_params",
    "max",
    "min",
    "mul",
    "norm",
    "ones_like",
    "random_like",
    "real",
    "scale",
    "set",
    "size",
    "split_key_like",
    "sub",
    "sum",
    "unwrap_random_key_data",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "vdot",
    "where",
    "zeros_like",
]
