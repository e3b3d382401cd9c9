"""`gradtx.tiled`: an elementwise optimizer run over each large leaf one tile at a time.

References: the same optimizer run whole (a tile runs each value's arithmetic unchanged,
so the numbers must be the untiled ones: equal codes, parameters to float32 rounding),
and XLA's buffer assignment of the compiled step for the memory it needs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import donated_step_memory

import gradtx
from gradtx import _quantized, base

Q = gradtx.quantized
TILE = 2048
# "w": rows holding whole blocks (the row layout), 4 tiles; "v": 2 tiles and a tail of 904
# values (its last block partial); "b": below the quantized size, float32 state, whole.
PARAMS = {
    "w": jax.random.normal(jax.random.key(0), (16, 512)),
    "v": jax.random.normal(jax.random.key(1), (5000,)),
    "b": jnp.ones(10),
}


def _ndim_mask(tree):
    return jax.tree.map(lambda x: x.ndim > 1, tree)


def _run(tx, steps=3, params=PARAMS):
    """``steps`` jitted updates on fixed random gradients: the updates of each step and
    the last state."""
    state = tx.init(params)
    update = jax.jit(tx.update)
    out = []
    for t in range(steps):
        key = jax.random.key(10 + t)
        g = jax.tree.map(lambda x, key=key: jax.random.normal(key, x.shape), params)
        u, state = update(g, state, params)
        params = gradtx.apply_updates(params, u)
        out.append(u)
    return out, state


def _has_loop(tx, params):
    """Whether ``tx.update`` traces a loop (a ``fori_loop`` with static bounds is a scan)."""
    jaxpr = str(jax.make_jaxpr(tx.update)(params, tx.init(params), params))
    return "scan[" in jaxpr or "while[" in jaxpr


def _assert_same_run(tiled_run, plain_run):
    """Updates to float32 rounding of their terms (of size 1 at most: ``m + 0.1 * p``
    rounds differently where XLA fuses a tile's arithmetic differently), quantized codes
    equal, everything else to float32 rounding (a block maximum can differ in its last
    bit)."""
    (u_tiled, s_tiled), (u_plain, s_plain) = tiled_run, plain_run
    for t, (a, b) in enumerate(zip(u_tiled, u_plain, strict=True)):
        for k in b:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-7, err_msg=f"{k}, step {t + 1}")
    leaves_t = jax.tree.leaves(s_tiled, is_leaf=_quantized.is_stored)
    leaves_p = jax.tree.leaves(s_plain, is_leaf=_quantized.is_stored)
    assert jax.tree.structure(s_tiled) == jax.tree.structure(s_plain)
    for a, b in zip(leaves_t, leaves_p, strict=True):
        if _quantized.is_stored(b):
            np.testing.assert_array_equal(a.codes, b.codes)
            np.testing.assert_allclose(a.scales, b.scales, rtol=1e-6)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("bits", [8, pytest.param(4, marks=pytest.mark.slow)])  # 4 bits: the slow set
@pytest.mark.parametrize(
    "mask", [pytest.param(None, marks=pytest.mark.slow), _ndim_mask], ids=["no-mask", "mask-function"]
)
def test_tiled_adamw_gives_adamws_numbers(bits, mask):
    """The mask function must see the whole tree (a tile is one-dimensional: asked about
    a tile, ``ndim > 1`` would stop decaying "w")."""
    spec = Q(bits)
    adamw = gradtx.adamw(1e-2, mu_dtype=spec, nu_dtype=spec, weight_decay=0.1, mask=mask)
    tiled = gradtx.tiled(adamw, tile=TILE)
    _assert_same_run(_run(tiled), _run(adamw))


def test_a_block_inside_reads_the_chains_slots_cut_to_its_tile():
    """``scale_by_rms`` inside `tiled` reads the gradient ``momentum`` published outside
    it: the chain is Adam only if each tile reads its own tile of that gradient."""
    spec = Q(8)
    adam = gradtx.chain(
        gradtx.momentum(0.9, mu_dtype=spec),
        gradtx.scale_by_rms(0.999, eps=1e-8, eps_in_sqrt=False, bias_correction=True, nu_dtype=spec),
        gradtx.scale_by_learning_rate(1e-2),
    )
    tiled = gradtx.chain(adam.transforms[0], gradtx.tiled(adam.transforms[1], tile=TILE), adam.transforms[2])
    _assert_same_run(_run(tiled), _run(adam))


def _declared():
    found, todo = set(), [base.Transform]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__dict__.get("elementwise") is True:
            found.add(cls.__name__)
    return found


# Every block that declares itself elementwise, run in tiles after a quantized momentum
# (its own state quantized too: only leaves whose state is all quantized run in tiles):
# a block that read more than its tile would change numbers.
ELEMENTWISE = {
    "trace": lambda: gradtx.trace(0.9, accumulator_dtype=Q(8)),
    "ema": lambda: gradtx.ema(0.9, accumulator_dtype=Q(8)),
    "momentum": lambda: gradtx.momentum(0.8, nesterov=True, mu_dtype=Q(4)),
    "scale_by_bias_correction": lambda: gradtx.scale_by_bias_correction(0.9),
    "scale_by_rms": lambda: gradtx.scale_by_rms(0.99, amsgrad=True, nu_dtype=Q(8)),
    "add_decayed_weights": lambda: gradtx.add_decayed_weights(0.1),
    "scale_by_sign": lambda: gradtx.scale_by_sign(),
    "interpolated_sign": lambda: gradtx.interpolated_sign(0.5),
    "scale": lambda: gradtx.scale(0.5),
    "scale_by_learning_rate": lambda: gradtx.scale_by_learning_rate(0.1),
    "scale_by_schedule": lambda: gradtx.scale_by_schedule(gradtx.linear_schedule(1.0, 0.5, 3)),
}


def test_every_elementwise_declaration_is_checked():
    assert _declared() == set(ELEMENTWISE)


# The fast loop keeps two (the weight decay reads the parameters, scale_by_rms a slot).
FAST = ("add_decayed_weights", "scale_by_rms")


@pytest.mark.parametrize(
    "name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in sorted(ELEMENTWISE)]
)
def test_elementwise_blocks_give_their_numbers_in_tiles(name):
    inner = gradtx.chain(gradtx.momentum(0.9, mu_dtype=Q(8)), ELEMENTWISE[name]())
    tiled = gradtx.tiled(inner, tile=TILE)
    assert _has_loop(tiled, PARAMS)
    _assert_same_run(_run(tiled, steps=2), _run(inner, steps=2))


def _step_memory(tx, params):
    return donated_step_memory(tx, params).temp_size_in_bytes / sum(x.size for x in jax.tree.leaves(params))


def test_a_tiled_step_holds_one_tile_of_float32_moments():
    """XLA's buffer assignment (no timing): whole, the 8-bit step's two new moments are
    float32 temporaries of the whole leaf (8 bytes a parameter); in tiles, only the
    updates are (4 bytes: they overwrite the gradient where it is computed in the same
    program), and a tile's two new moments (8 bytes a value of the tile; 12 allowed)."""
    params = {"w": jnp.zeros((1024, 1024))}
    tile = 16384
    adamw = gradtx.adamw(1e-3, mu_dtype="8bit", nu_dtype="8bit")
    assert _step_memory(adamw, params) >= 8.0
    assert _step_memory(gradtx.tiled(adamw, tile=tile), params) <= 4 + 12 * tile / 2**20


def test_leaves_without_quantized_state_run_whole():
    """float32 state: XLA already computes the step in one pass; no loop is traced, and
    the numbers are bit for bit the optimizer's."""
    adamw = gradtx.adamw(1e-2)
    tiled = gradtx.tiled(adamw, tile=TILE)
    assert not _has_loop(tiled, PARAMS)
    for a, b in zip(_run(tiled)[0], _run(adamw)[0], strict=True):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_vmap_over_learning_rates_and_hyperparams_readout():
    adamw = gradtx.tiled(gradtx.adamw(1e-2, mu_dtype="8bit", nu_dtype="8bit"), tile=TILE)
    state = adamw.init(PARAMS)
    g = jax.tree.map(jnp.ones_like, PARAMS)
    rates = jnp.asarray([1e-2, 1e-3])

    def update(lr):
        tx = gradtx.tiled(gradtx.adamw(lr, mu_dtype="8bit", nu_dtype="8bit"), tile=TILE)
        return tx.update(g, state, PARAMS)[0]

    swept = jax.vmap(update)(rates)
    for i, lr in enumerate([1e-2, 1e-3]):
        np.testing.assert_allclose(swept["w"][i], update(lr)["w"], rtol=1e-6)
    _, state = adamw.update(g, state, PARAMS)
    assert float(gradtx.hyperparams(adamw, state)["learning_rate"]) == pytest.approx(1e-2)


def test_what_cannot_run_in_tiles_is_refused():
    adamw = gradtx.adamw(1e-2, mu_dtype="8bit", nu_dtype="8bit")
    with pytest.raises(gradtx.InputError, match="clip_by_global_norm is not elementwise"):
        gradtx.tiled(gradtx.chain(gradtx.clip_by_global_norm(1.0), adamw))
    with pytest.raises(gradtx.InputError, match="tile must be an integer >= 2"):
        gradtx.tiled(adamw, tile=1e4)  # pyright: ignore[reportArgumentType]
    with pytest.raises(gradtx.InputError, match="not a multiple of the quantized state's block size 256"):
        tiled = gradtx.tiled(adamw, tile=1000)
        tiled.update(PARAMS, tiled.init(PARAMS), PARAMS)
    packed = gradtx.pack(PARAMS)
    with pytest.raises(gradtx.InputError, match="packed parameters"):
        tiled = gradtx.tiled(adamw, tile=TILE)
        tiled.update(packed, tiled.init(packed), packed)
