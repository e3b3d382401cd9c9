"""No parameter-sized temporaries in an update step, and updates in place with donation
(XLA's memory_analysis: bytes, not timings)."""

import jax
import jax.numpy as jnp
import pytest
from conftest import donated_step_memory

import gradtx

PARAMS = {f"p{i}": jnp.zeros((1 << 16,)) for i in range(4)}  # 4 x 256 KiB
PARAM_BYTES = 4 * (1 << 16) * 4

OPTIMIZERS = {
    "adam": lambda: gradtx.adam(1e-3),
    "sgd-momentum": lambda: gradtx.sgd(1e-2, 0.9),
    "clip-adamw": lambda: gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-3)),
}


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "packed"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_update_step_has_no_parameter_sized_temporaries(name, packed):
    opt = OPTIMIZERS[name]()
    params = gradtx.pack(PARAMS) if packed else PARAMS
    state = opt.init(params)
    analysis = donated_step_memory(opt, params)
    # A leaf-sized temporary would be 256 KiB; optax's clip_by_global_norm keeps one of
    # every leaf alive (its select), 1 MiB here.
    assert analysis.temp_size_in_bytes < 64 * 1024, analysis
    # Parameters and state are updated in place: every donated byte is aliased.
    donated = sum(x.nbytes for x in jax.tree.leaves((params, state)))
    assert analysis.alias_size_in_bytes >= donated - 64, (analysis.alias_size_in_bytes, donated)
    assert donated >= PARAM_BYTES
