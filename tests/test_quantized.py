"""Quantized optimizer state (`gradtx.quantized`), stochastic rounding and `state_bytes`.

References: the maps transcribed here in float64 NumPy from Dettmers et al. (2022) and
Li et al. (2023); nearest codes found by brute force; float32 Adam (optax) for the
trajectories; byte counts computed by hand.
"""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import donated_step_memory, reference_numerics, xla_compiles
from sklearn.datasets import load_digits

import gradtx
from gradtx import _quantized

Q = gradtx.quantized


# --- the maps, transcribed -----------------------------------------------------------------


def reference_dynamic(bits, signed):
    """Dettmers et al. (2022), as bitsandbytes' create_dynamic_map builds it: for each
    exponent i < E, the midpoints of an even grid of 0.1..1 with 2**(i + bits - 1 - E)
    steps (signed) or 2**(i + bits - E) (unsigned), times 10**(i - E + 1); then 0 and 1.
    gradtx's two documented changes: -1 is the most negative value of a signed map, and
    an unsigned map has 1 twice instead of 0 (Li et al.'s DE-0)."""
    e = 7 if bits == 8 else 3
    out = []
    for i in range(e):
        n = 2 ** (i + bits - 1 - e) if signed else 2 ** (i + bits - e)
        grid = np.linspace(0.1, 1.0, n + 1)
        mids = (grid[1:] + grid[:-1]) / 2 * 10.0 ** (i - e + 1)
        out += list(mids) + (list(-mids) if signed else [])
    out += [0.0, 1.0] if signed else [1.0, 1.0]
    out = np.sort(out)
    if signed:
        out[0] = -1.0
    return out


def reference_linear(bits, signed):
    if signed:
        return np.sort(np.concatenate([np.linspace(-1, 1, 2**bits - 1), [1.0]]))
    return (np.arange(2**bits) + 1.0) / 2**bits


MAPS = [(b, k, s) for b in (8, 4) for k in ("dynamic", "linear") for s in (True, False)]


@pytest.mark.parametrize("bits,kind,signed", MAPS)
def test_map_is_the_papers(bits, kind, signed):
    expected = reference_dynamic(bits, signed) if kind == "dynamic" else reference_linear(bits, signed)
    assert len(expected) == 2**bits
    np.testing.assert_allclose(_quantized.table(bits, kind, signed), expected, rtol=1e-6, atol=0)
    if not signed:
        assert np.min(_quantized.table(bits, kind, signed)) > 0  # no zero: v never decodes to 0


def _blocks(x, block):
    flat = np.asarray(x, np.float64).ravel()
    pad = -len(flat) % block
    return np.concatenate([flat, np.zeros(pad)]).reshape(-1, block), len(flat)


@pytest.mark.parametrize("bits,kind,signed", MAPS)
def test_round_trip_is_the_nearest_code(bits, kind, signed):
    """Decoding gives, for every value, the map entry nearest to value / block max,
    times the block max (brute force over the reference map), on heavy-tailed data
    with an odd size (a padded last block) and an all-zero block."""
    key1, key2 = jax.random.split(jax.random.key(0))
    g = jax.random.normal(key1, (37, 101)) * jnp.exp(2 * jax.random.normal(key2, (37, 101)))
    x = np.array(g if signed else g * g, np.float32)
    x[:3] = 0.0  # 303 zeros: the first block all zero, then zeros next to data
    spec = Q(bits, map=kind, signed=signed)
    decoded = np.asarray(gradtx.QuantizedArray.encode(jnp.asarray(x), spec).decode(), np.float64)

    table = reference_dynamic(bits, signed) if kind == "dynamic" else reference_linear(bits, signed)
    blocks, n = _blocks(x, spec.block)
    scale = np.max(np.abs(blocks), axis=1, keepdims=True)
    normalized = blocks / np.where(scale > 0, scale, 1)
    nearest = table[np.argmin(np.abs(normalized[..., None] - table), axis=-1)] * scale
    np.testing.assert_allclose(decoded.ravel(), nearest.ravel()[:n], rtol=2e-6, atol=0)
    # The documented bound: half the widest gap of the map, times the block's maximum.
    bound = np.max(np.diff(table)) / 2
    if signed:
        bound = max(bound, 1 + table[0])  # -1 is exact; [-1, first] is a gap too
    else:
        bound = max(bound, table[0])  # no zero: a zero decodes to the smallest entry
    error = np.abs(decoded.ravel() - np.asarray(x, np.float64).ravel())
    assert np.all(error <= bound * np.repeat(scale.ravel(), spec.block)[:n] * (1 + 1e-6))


def test_quantized_arguments_are_checked():
    with pytest.raises(ValueError, match="bits must be 8 or 4"):
        Q(16)
    with pytest.raises(ValueError, match="block_size must be an even integer"):
        Q(8, block_size=3)
    with pytest.raises(ValueError, match="map must be one of"):
        Q(8, map="nf4")
    with pytest.raises(ValueError, match=r"adamw: mu_dtype must be a floating-point dtype.*'8bit'"):
        gradtx.adamw(1e-3, mu_dtype="9bit")
    # A block whose buffer is not one of the supported moments names itself.
    with pytest.raises(ValueError, match=r"MultiSteps: accumulator_dtype must be a floating-point dtype"):
        gradtx.MultiSteps(gradtx.sgd(0.1), 2, accumulator_dtype="8bit")


# --- what the state holds --------------------------------------------------------------------

PARAMS = {"w": jnp.zeros((64, 128)), "b": jnp.zeros(128), "s": jnp.zeros(())}


def test_state_layout_and_small_leaves():
    state = gradtx.adamw(1e-3, mu_dtype="8bit", nu_dtype="4bit").init(PARAMS)
    mu, nu = state[0].mu, state[1].nu
    assert isinstance(mu["w"], gradtx.QuantizedArray) and mu["w"].spec.signed is True
    assert mu["w"].codes.shape == (64 * 128 // 256, 256) and mu["w"].codes.dtype == jnp.uint8
    assert mu["w"].scales.shape == (32,) and mu["w"].scales.dtype == jnp.float32
    # 4 bits: blocks of 128, so each row of w is one block and the codes keep w's rows
    # (``shape[:-1] + (blocks per row, block)``); two codes a byte.
    assert nu["w"].spec.signed is False and nu["w"].codes.shape == (64, 1, 64)
    assert nu["w"].scales.shape == (64, 1)
    # under min_size (4,096): float32, unquantized
    assert mu["b"].dtype == jnp.float32 and not isinstance(mu["b"], gradtx.QuantizedArray)
    assert nu["s"].shape == ()


@pytest.mark.slow
def test_constant_buffers_are_the_constant_encoded():
    """``init`` builds a constant buffer's codes and scales directly (no float buffer to
    encode): the same as encoding the constant, padding included, in both layouts."""
    for bits in (8, 4):
        for signed in (True, False):
            for shape in [(37, 101), (12, 256), (5000,), (3, 128)]:
                for value in (0.0, 1.5, -0.25, 1e-3):
                    if not signed and value < 0:
                        continue
                    spec = Q(bits, min_size=0, signed=signed)
                    direct = _quantized.full(jnp.zeros(shape), value, spec)
                    encoded = gradtx.QuantizedArray.encode(jnp.full(shape, value, jnp.float32), spec)
                    where = f"{bits} bits, signed={signed}, {shape}, {value}"
                    np.testing.assert_array_equal(np.asarray(direct.codes), np.asarray(encoded.codes), where)
                    np.testing.assert_array_equal(
                        np.asarray(direct.scales), np.asarray(encoded.scales), where
                    )


def test_path_rules_quantize_the_matched_parameters():
    """``path_rules(adamw, [("*kernel", {"mu_dtype": "8bit", "nu_dtype": "8bit"})])``:
    the kernels' moments stored in 8 bits, the rest in float32, each parameter updated as
    its own optimizer would update it alone."""
    params = {"embed": jnp.ones((64, 128)), "dense": {"kernel": jnp.ones((128, 128)), "bias": jnp.zeros(128)}}
    grads = jax.tree.map(lambda p: jnp.cos(jnp.arange(p.size, dtype=jnp.float32).reshape(p.shape)), params)
    settings = {"mu_dtype": "8bit", "nu_dtype": "8bit"}
    opt = gradtx.path_rules(gradtx.adamw(1e-3), [("*kernel", settings)])
    leaves = gradtx.state_bytes(opt, params).leaves
    assert leaves["['dense']['kernel']"] == 2 * (128 * 128 + 4 * 128 * 128 // 256)
    assert leaves["['embed']"] == 2 * 4 * 64 * 128 and leaves["['dense']['bias']"] == 2 * 4 * 128
    updates, _ = opt.update(grads, opt.init(params), params)
    alone_8bit = gradtx.adamw(1e-3, mu_dtype="8bit", nu_dtype="8bit")
    kernel, _ = alone_8bit.update(
        grads["dense"]["kernel"], alone_8bit.init(params["dense"]["kernel"]), params["dense"]["kernel"]
    )
    embed, _ = gradtx.adamw(1e-3).update(
        grads["embed"], gradtx.adamw(1e-3).init(params["embed"]), params["embed"]
    )
    np.testing.assert_array_equal(np.asarray(updates["dense"]["kernel"]), np.asarray(kernel))
    np.testing.assert_array_equal(np.asarray(updates["embed"]), np.asarray(embed))
    with pytest.raises(ValueError, match="foo_dtype"):
        gradtx.path_rules(gradtx.adamw(1e-3), [("*kernel", {"foo_dtype": "8bit"})])


def test_state_bytes_by_hand():
    params = {"w": jnp.zeros((256, 256)), "b": jnp.zeros(256)}
    f32 = gradtx.state_bytes(gradtx.adamw(1e-3), params)
    assert f32.leaves == {"['b']": 2 * 256 * 4, "['w']": 2 * 256 * 256 * 4}
    assert f32.shared == 4 * 4  # an int32 step count in each of its four blocks
    q8 = gradtx.state_bytes(gradtx.adamw(1e-3, mu_dtype="8bit", nu_dtype="8bit"), params)
    assert q8.leaves["['w']"] == 2 * (256 * 256 + 4 * 256 * 256 // 256)  # codes + a float32 per block
    assert q8.leaves["['b']"] == 2 * 256 * 4
    q4 = gradtx.state_bytes(gradtx.adamw(1e-3, mu_dtype="4bit", nu_dtype="4bit"), params)
    assert q4.leaves["['w']"] == 2 * (256 * 256 // 2 + 4 * 256 * 256 // 128)
    assert q4.total == q4.leaves["['w']"] + q4.leaves["['b']"] + q4.shared
    assert q4.per_parameter == pytest.approx(q4.total / (256 * 256 + 256))
    assert "bytes per parameter" in str(q4)


@pytest.mark.parametrize("bits", [8, 4])
def test_first_step_stores_the_nearest_codes(bits):
    """After one Adam step from zero, the stored moments decode to the nearest codes of
    (1 - b1) g and (1 - b2) g**2 (computed here in float32, quantized by brute force)."""
    g = np.asarray(jax.random.normal(jax.random.key(1), (32, 256)), np.float32)
    spec = Q(bits, min_size=0)
    tx = gradtx.adam(1e-3, mu_dtype=spec, nu_dtype=spec)
    _, state = tx.update({"w": jnp.asarray(g)}, tx.init({"w": jnp.zeros_like(g)}))
    for moment, value, signed in (
        (state[0].mu, np.float32(0.1) * g, True),
        (state[1].nu, np.float32(0.001) * g * g, False),
    ):
        table = reference_dynamic(bits, signed)
        blocks, _ = _blocks(value, spec.block)
        scale = np.max(np.abs(blocks), axis=1, keepdims=True)
        nearest = table[np.argmin(np.abs((blocks / scale)[..., None] - table), axis=-1)] * scale
        np.testing.assert_allclose(moment["w"].decode().ravel(), nearest.ravel(), rtol=2e-6)


# --- trajectories ------------------------------------------------------------------------------


def bowl(p):
    return jnp.sum(p["x"] ** 2 * jnp.linspace(0.1, 2.0, p["x"].size).reshape(p["x"].shape))


_X, _Y = load_digits(return_X_y=True)
X = jnp.asarray(_X / 16.0, jnp.float32)
Y = jax.nn.one_hot(jnp.asarray(_Y), 10)


def logistic(p):
    logits = X[:600] @ p["w"] + p["b"][None, :]
    return -jnp.mean(jnp.sum(Y[:600] * jax.nn.log_softmax(logits), axis=-1))


PROBLEMS = {
    "bowl": (bowl, {"x": jnp.linspace(-3.0, 3.0, 512).reshape(16, 32)}, 0.05),
    "logistic": (logistic, {"w": jnp.zeros((64, 10)), "b": jnp.zeros(10)}, 0.05),
}
# Against float32 Adam fed the same gradients: the relative error of each step,
# |u_quantized - u_float32| / |u_float32| (worst, median over 100 steps), and after 100
# steps the distance between the two trajectories relative to the distance travelled.
# Measured: 8 bits worst 0.16 / 0.43, median 0.10 / 0.34, drift 0.007 / 0.22 (bowl /
# logistic); 4 bits worst 0.89 / 0.88, median 0.60 / 0.82, drift 0.09 / 0.59. Adam's step
# is m / sqrt(v) per coordinate, about lr wherever the gradient is small, and a block
# stores a value 1e-4 of its maximum to a few percent (8 bits) or tens of percent (4
# bits): on the digits features that are nearly constant the step is mostly that error.
# The methods are judged by the loss they reach (below and benchmarks/quantized.py).
BOUND = {  # (worst step, median step, drift)
    ("bowl", 8): (0.25, 0.15, 0.02),
    ("logistic", 8): (0.55, 0.45, 0.3),
    ("bowl", 4): (1.1, 0.8, 0.15),
    ("logistic", 4): (1.1, 1.0, 0.75),
}


def _minus(a, b):
    return jax.tree.map(jnp.subtract, a, b)


def _norm(tree):
    return float(jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree.leaves(tree))))


@pytest.mark.parametrize("bits", [8, pytest.param(4, marks=pytest.mark.slow)])  # 4 bits: the slow set
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_adam_follows_float32_adam(problem, bits):
    fn, params, lr = PROBLEMS[problem]
    spec = Q(bits, min_size=0)
    ours = gradtx.adam(lr, mu_dtype=spec, nu_dtype=spec)
    theirs = optax.adam(lr)
    grad = jax.jit(jax.grad(fn))

    @jax.jit
    def step_ours(p, s):
        u, s = ours.update(grad(p), s, p)
        return gradtx.apply_updates(p, u), s, u

    with reference_numerics():

        @jax.jit
        def step_theirs(p, s):
            u, s = theirs.update(grad(p), s, p)
            return optax.apply_updates(p, u), s, u

        step_theirs_at = step_theirs

        p_ours, s_ours = params, ours.init(params)
        p_theirs, s_theirs = params, theirs.init(params)
        s_same = theirs.init(params)  # float32 Adam fed the gradients of our trajectory
        errors = []
        for _ in range(100):
            _, s_same, u_same = step_theirs_at(p_ours, s_same)
            p_ours, s_ours, u_ours = step_ours(p_ours, s_ours)
            p_theirs, s_theirs, _ = step_theirs(p_theirs, s_theirs)
            errors.append(_norm(_minus(u_ours, u_same)) / _norm(u_same))
    drift = _norm(_minus(p_ours, p_theirs)) / _norm(_minus(p_theirs, params))
    worst_step, median_step = max(errors), float(np.median(errors))
    worst, median, far = BOUND[problem, bits]
    assert worst_step < worst and median_step < median, errors
    assert drift < far, drift
    assert fn(p_ours) < 0.05 * fn(params)  # and it optimises


def quantize(x, table, block):
    """Brute-force block-wise nearest-code quantization, float32, as the docs state it."""
    blocks, n = _blocks(x, block)
    blocks = blocks.astype(np.float32)
    scale = np.max(np.abs(blocks), axis=1, keepdims=True)
    normalized = blocks / np.where(scale > 0, scale, np.float32(1))
    codes = np.argmin(np.abs(normalized[..., None] - table.astype(np.float32)), axis=-1)
    return (table.astype(np.float32)[codes] * scale).ravel()[:n].reshape(x.shape)


@pytest.mark.parametrize("bits", [8, 4])
def test_adam_is_the_quantized_adam_transcription(bits):
    """gradtx's quantized Adam against a NumPy float32 transcription of Adam whose two
    moments are stored with brute-force block quantization (Dettmers et al., 2022,
    algorithm: dequantize, update, quantize), on 20 heavy-tailed gradients: the same
    updates to float32 rounding, but where float32 arithmetic lands a moment on the other
    side of a code midpoint (measured: 0 elements)."""
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    spec = Q(bits, min_size=0)
    tx = gradtx.adam(lr, b1, b2, eps, mu_dtype=spec, nu_dtype=spec)
    shape = (24, 40)
    state = tx.init(jnp.zeros(shape))
    update = jax.jit(tx.update)
    m = np.zeros(shape, np.float32)
    v = np.zeros(shape, np.float32)
    t_signed, t_unsigned = reference_dynamic(bits, True), reference_dynamic(bits, False)
    for t in range(1, 21):
        k1, k2 = jax.random.split(jax.random.key(t))
        g = np.asarray(jax.random.normal(k1, shape) * jnp.exp(jax.random.normal(k2, shape)), np.float32)
        u, state = update(jnp.asarray(g), state)
        m = np.float32(b1) * m + np.float32(1 - b1) * g
        v = np.float32(b2) * v + np.float32(1 - b2) * g * g
        m_hat = m / np.float32(1 - b1**t)
        v_hat = v / np.float32(1 - b2**t)
        expected = -lr * m_hat / (np.sqrt(v_hat) + np.float32(eps))
        m, v = quantize(m, t_signed, spec.block), quantize(v, t_unsigned, spec.block)
        np.testing.assert_allclose(np.asarray(u), expected, rtol=2e-4, atol=1e-7, err_msg=f"step {t}")


# Every block that takes a quantized dtype, against the same optimizer in float32 whose
# state is replaced after each step by its brute-force quantization (`quantize` above) at
# the places the quantized state holds codes: the algorithm of Dettmers et al. (dequantize,
# update, quantize) for any optimizer, with gradtx's float32 numbers checked against optax
# elsewhere. (12, 256): rows of whole blocks, the layout that keeps the leaf's axes.
QUANTIZED_CASES = {  # the optimizer, and which of its stored buffers hold signed values
    "adopt": (lambda d: gradtx.contrib.adopt(0.01, mu_dtype=d, nu_dtype=d), [True, False]),
    "ademamix": (lambda d: gradtx.contrib.ademamix(0.01, b3=0.99, mu_dtype=d), [True, True, False]),
    "adafactor momentum": (lambda d: gradtx.adafactor(0.01, momentum=0.9, dtype_momentum=d), [True]),
    "amsgrad": (lambda d: gradtx.amsgrad(0.01, mu_dtype=d, nu_dtype=d), [True, False, False]),
    "lion": (lambda d: gradtx.lion(0.01, mu_dtype=d), [True]),
}


@pytest.mark.parametrize(
    "name,shape,bits",
    [  # the fast loop runs the flat 8-bit layout of each; the rest is in the slow set
        pytest.param(
            name,
            shape,
            bits,
            id=f"{name}-{layout}-{bits}",
            marks=() if (layout, bits) == ("flat", 8) else pytest.mark.slow,
        )
        for name in QUANTIZED_CASES
        for layout, shape in (("flat", (24, 40)), ("rows", (12, 256)))
        for bits in (8, 4)
    ],
)
def test_quantized_blocks_are_their_float_optimizer_with_quantized_state(name, shape, bits):
    build, signs = QUANTIZED_CASES[name]
    tx_q, tx_f = build(Q(bits, min_size=0)), build(None if name != "adafactor momentum" else jnp.float32)
    params = jnp.linspace(-1.0, 1.0, shape[0] * shape[1]).reshape(shape)
    s_q, s_f = tx_q.init(params), tx_f.init(params)

    def stored(state):
        return [x for x in jax.tree.leaves(state, is_leaf=_quantized.is_stored) if _quantized.is_stored(x)]

    assert len(stored(s_q)) == len(signs), name  # the blocks took the dtype
    update_q, update_f = jax.jit(tx_q.update), jax.jit(tx_f.update)
    # The reference's maps: signed for first moments, unsigned for second moments (in the
    # order the state holds them), not the signs the buffers say.
    expected_signs = iter(signs * 2)
    positions = jax.tree.map(
        lambda q: next(expected_signs) if _quantized.is_stored(q) else None, s_q, is_leaf=_quantized.is_stored
    )

    def requantized(q, f, signed):
        if not _quantized.is_stored(q):
            return f
        table = reference_dynamic(bits, signed)
        return jnp.asarray(quantize(np.asarray(f, np.float32), table, spec_block(bits)))

    for t in range(1, 11):
        k1, k2 = jax.random.split(jax.random.key(t))
        g = jax.random.normal(k1, shape) * jnp.exp(jax.random.normal(k2, shape))
        u_q, s_q = update_q(g, s_q, params)
        u_f, s_f = update_f(g, s_f, params)
        s_f = jax.tree.map(requantized, s_q, s_f, positions, is_leaf=_quantized.is_stored)
        np.testing.assert_allclose(
            np.asarray(u_q), np.asarray(u_f), rtol=2e-4, atol=1e-7, err_msg=f"step {t}"
        )
        params = params + u_q
    assert len(stored(s_q)) == len(signs)  # still stored quantized after the steps


def spec_block(bits):
    return 256 if bits == 8 else 128  # the documented defaults


# --- where it runs: jit without retracing, vmap, packed, donation ------------------------


def test_steps_keep_the_state_layout_and_compile_once():
    params = {"w": jnp.ones((64, 128)), "b": jnp.ones(128)}
    tx = gradtx.adamw(1e-3, mu_dtype="8bit", nu_dtype="4bit")
    state = tx.init(params)

    def layout_of(state):
        return jax.tree.structure(state), [(x.shape, x.dtype) for x in jax.tree.leaves(state)]

    layout = layout_of(state)

    @jax.jit
    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    grads = [jax.tree.map(lambda x, c=c: x * c, params) for c in (-1.5, -0.5, 0.5, 1.5)]
    step(params, state, params)  # compiled here
    with xla_compiles() as compiled:
        for g in grads:
            params, state = step(params, state, g)
    assert compiled == []
    assert layout_of(state) == layout


def test_vmap_over_learning_rates_gives_each_run():
    params = {"w": jnp.linspace(-1.0, 1.0, 64 * 80).reshape(64, 80)}
    spec = Q(8, min_size=0)

    def run(lr):
        tx = gradtx.adam(lr, mu_dtype=spec, nu_dtype=spec)
        p, s = params, tx.init(params)
        for _ in range(3):
            u, s = tx.update(jax.tree.map(lambda x: x**3, p), s, p)
            p = gradtx.apply_updates(p, u)
        return p

    lrs = jnp.asarray([1e-3, 3e-2])
    together = jax.jit(jax.vmap(run))(lrs)
    for i, lr in enumerate([1e-3, 3e-2]):
        np.testing.assert_allclose(together["w"][i], run(lr)["w"], rtol=1e-6, atol=1e-7)


PACKED_LAYOUTS = {
    # leaves that do not fill whole blocks: each value finds its leaf's blocks by index
    "unaligned": {"a": jnp.ones((70, 90)), "b": jnp.ones(300), "c": jnp.ones((40, 40)), "d": jnp.ones(5)},
    # every leaf but the last fills whole blocks: the plain contiguous blocks
    "aligned": {"a": jnp.ones((16, 32)), "b": jnp.ones(512), "c": jnp.ones((8, 64)), "d": jnp.ones(40)},
}


@pytest.mark.parametrize(
    "bits,layout",  # the fast loop keeps the 4-bit aligned layout; the rest is in the slow set
    [
        pytest.param(bits, layout, marks=() if (bits, layout) == (4, "aligned") else pytest.mark.slow)
        for bits in (8, 4)
        for layout in PACKED_LAYOUTS
    ],
)
def test_packed_parameters_give_the_plain_trees_numbers(bits, layout):
    """A packed buffer is quantized leaf by leaf: the same numbers as the plain tree.
    One leaf's gradients are 100 times the others', which would change its neighbours'
    numbers if a block held values of two leaves."""
    params = PACKED_LAYOUTS[layout]
    packed = gradtx.pack(params)
    spec = Q(bits, min_size=0)
    tx = gradtx.adam(1e-2, mu_dtype=spec, nu_dtype=spec)
    update = jax.jit(tx.update)
    s_plain, s_packed = tx.init(params), tx.init(packed)
    assert isinstance(s_packed[0].mu.buffers[0], gradtx.QuantizedArray)
    for t in range(4):
        g = {
            k: jax.random.normal(jax.random.key(t), v.shape) * (100.0 if k == "b" else 1.0)
            for k, v in params.items()
        }
        u_plain, s_plain = update(g, s_plain, params)
        u_packed, s_packed = update(packed.layout.pack(g), s_packed, packed)
        for k, v in u_packed.unpack().items():
            np.testing.assert_allclose(v, u_plain[k], rtol=1e-5, atol=1e-9, err_msg=f"{k}, step {t}")
    assert gradtx.state_bytes(tx, packed).total < gradtx.state_bytes(gradtx.adam(1e-2), packed).total / 3


def quantized_leaf(x):
    return isinstance(x, gradtx.QuantizedArray)


def _adamw_quantized(bits):
    spec = Q(bits, min_size=0)
    return gradtx.adamw(1e-2, mu_dtype=spec, nu_dtype=spec)


WRAPPERS = {
    "inject_hyperparams": lambda bits: gradtx.inject_hyperparams(gradtx.adamw)(
        learning_rate=1e-2, mu_dtype=Q(bits, min_size=0), nu_dtype=Q(bits, min_size=0)
    ),
    "apply_if_finite": lambda bits: gradtx.apply_if_finite(_adamw_quantized(bits), 3),
    "masked": lambda bits: gradtx.masked(_adamw_quantized(bits), dict.fromkeys("abcd", True)),
    "multi_transform": lambda bits: gradtx.multi_transform(
        {"x": _adamw_quantized(bits), "y": _adamw_quantized(bits)}, {"a": "x", "b": "y", "c": "x", "d": "y"}
    ),
    "MultiSteps(1)": lambda bits: gradtx.MultiSteps(_adamw_quantized(bits), 1),
    "named_chain": lambda bits: gradtx.named_chain(
        ("zero_nans", gradtx.zero_nans()), ("adamw", _adamw_quantized(bits))
    ),
    "conditionally_mask": lambda bits: gradtx.conditionally_mask(_adamw_quantized(bits), lambda count: True),
    "with_extra_args_support": lambda bits: gradtx.with_extra_args_support(_adamw_quantized(bits)),
    # one vector of the concatenated leaves, whose quantized buffers still cut every leaf
    # into blocks of its own (before: 1.5e-3 apart after three steps)
    "flatten": lambda bits: gradtx.flatten(_adamw_quantized(bits)),
}


@pytest.mark.slow
@pytest.mark.parametrize("wrapper,bits", [(name, 8) for name in WRAPPERS] + [("flatten", 4)])
def test_wrappers_keep_quantized_state_and_its_numbers(wrapper, bits):
    """Quantized AdamW inside each wrapper: its state still holds the quantized buffers
    (one per moment per leaf; per moment for `flatten`'s one vector) and four steps give
    AdamW's own numbers. One leaf's gradients are 100 times the others', which would
    change its neighbours' numbers if a block held values of two leaves."""
    params = PACKED_LAYOUTS["unaligned"]
    plain, wrapped = _adamw_quantized(bits), WRAPPERS[wrapper](bits)
    s_plain, s_wrapped = plain.init(params), wrapped.init(params)
    stored = [x for x in jax.tree.leaves(s_wrapped, is_leaf=quantized_leaf) if quantized_leaf(x)]
    assert len(stored) == (2 if wrapper == "flatten" else 2 * len(params)), s_wrapped
    for t in range(4):
        g = {
            k: jax.random.normal(jax.random.key(t), v.shape) * (100.0 if k == "b" else 1.0)
            for k, v in params.items()
        }
        u_plain, s_plain = jax.jit(plain.update)(g, s_plain, params)
        u_wrapped, s_wrapped = jax.jit(wrapped.update)(g, s_wrapped, params)
        for k in params:
            np.testing.assert_allclose(
                u_wrapped[k], u_plain[k], rtol=1e-5, atol=1e-9, err_msg=f"{k}, step {t}"
            )


def test_donated_state_is_updated_in_place():
    params = {f"p{i}": jnp.zeros((1 << 14,)) for i in range(4)}
    tx = gradtx.adam(1e-3, mu_dtype="8bit", nu_dtype="8bit")
    state = tx.init(params)
    analysis = donated_step_memory(tx, params)
    donated = sum(x.nbytes for x in jax.tree.leaves((params, state)))
    assert analysis.alias_size_in_bytes >= donated - 64, (analysis.alias_size_in_bytes, donated)


# --- stochastic rounding --------------------------------------------------------------------


def test_stochastic_rounding_is_unbiased_and_picks_a_neighbour():
    x = jax.random.normal(jax.random.key(0), (100_000,)) * 3
    rounded = np.asarray(gradtx.stochastic_round(x, jnp.bfloat16, jax.random.key(1)), np.float64)
    x64 = np.asarray(x, np.float64)
    down = np.asarray(x.astype(jnp.bfloat16), np.float64)  # one neighbour (the nearest)
    other = np.asarray(
        jnp.nextafter(x.astype(jnp.bfloat16), jnp.where(x64 > down, jnp.inf, -jnp.inf).astype(jnp.bfloat16)),
        np.float64,
    )
    assert np.all((rounded == down) | (rounded == other))
    # E[round(x)] = x: the mean error is within 4 standard errors of 0; nearest rounding's
    # error, by contrast, is deterministic (its mean has no such spread to hide in).
    error = rounded - x64
    assert abs(error.mean()) < 4 * error.std() / np.sqrt(error.size)
    # one value: 1 + 1/8 of bfloat16's spacing at 1 rounds up one time in eight
    one = jnp.full((80_000,), 1 + 2.0**-10, jnp.float32)
    up = np.mean(np.asarray(gradtx.stochastic_round(one, jnp.bfloat16, jax.random.key(2)), np.float64) > 1)
    assert abs(up - 1 / 8) < 4 * np.sqrt(1 / 8 * 7 / 8 / one.size)
    # reproducible from the key, and a different key gives different draws
    again = np.asarray(gradtx.stochastic_round(x, jnp.bfloat16, jax.random.key(1)), np.float64)
    assert np.array_equal(again, rounded)
    assert not np.array_equal(
        np.asarray(gradtx.stochastic_round(x, jnp.bfloat16, jax.random.key(9)), np.float64), rounded
    )


def test_bfloat16_parameters_train_with_stochastic_rounding_where_nearest_stalls():
    """SGD at lr 1e-3 on 0.5 |p - target|^2 from p = 1: every step moves p by less than
    half of bfloat16's spacing (2^-8 near 1), so nearest rounding never moves it; with
    stochastic rounding the bfloat16 run reaches the float32 run's loss."""
    target = jnp.linspace(1.2, 1.4, 512)

    def run(dtype, rounding):
        p = jnp.ones(512, dtype)
        tx = gradtx.sgd(1e-3)

        def body(i, p):
            g = p.astype(jnp.float32) - target
            u, _ = tx.update(g, tx.init(p))
            return gradtx.apply_updates(p, u, rounding=rounding, key=jax.random.fold_in(jax.random.key(0), i))

        p = jax.jit(lambda p: jax.lax.fori_loop(0, 3000, body, p))(p)
        return float(0.5 * jnp.mean((p.astype(jnp.float32) - target) ** 2))

    start = float(0.5 * jnp.mean((1.0 - target) ** 2))
    float32 = run(jnp.float32, "nearest")
    nearest = run(jnp.bfloat16, "nearest")
    stochastic = run(jnp.bfloat16, "stochastic")
    assert nearest == pytest.approx(start)  # stalled: not one parameter moved
    assert float32 < 0.1 * start
    # On top of the float32 loss, bfloat16's own resolution near 1.3 (spacing 2^-7):
    # measured 1.65e-4 against float32's 1.15e-4 (start 0.047), an rms error of about one
    # spacing; nearest rounding stays at the start.
    assert stochastic < float32 + 2.0**-14
    with pytest.raises(ValueError, match="needs a key"):
        gradtx.apply_updates(jnp.ones(2, jnp.bfloat16), jnp.ones(2), rounding="stochastic")
    with pytest.raises(ValueError, match="rounding must be"):
        gradtx.apply_updates(jnp.ones(2), jnp.ones(2), rounding="up")


# --- does it train: the digits MLP ---------------------------------------------------------


def _mlp_loss(p, x, y):
    h = jax.nn.relu(x @ p["l1"]["w"] + p["l1"]["b"][None, :])
    h = jax.nn.relu(h @ p["l2"]["w"] + p["l2"]["b"][None, :])
    return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(h @ p["l3"]["w"] + p["l3"]["b"][None, :]), -1))


def _train_mlp(tx, steps=100):
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    p = {
        "l1": {"w": jax.random.normal(k1, (64, 256)) / 8, "b": jnp.zeros(256)},
        "l2": {"w": jax.random.normal(k2, (256, 256)) / 16, "b": jnp.zeros(256)},
        "l3": {"w": jax.random.normal(k3, (256, 10)) / 16, "b": jnp.zeros(10)},
    }

    def body(i, carry):
        p, s = carry
        idx = jax.random.choice(jax.random.fold_in(jax.random.key(1), i), X.shape[0], (128,), replace=False)
        g = jax.grad(_mlp_loss)(p, X[idx], Y[idx])
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    p, _ = jax.jit(lambda c: jax.lax.fori_loop(0, steps, body, c))((p, tx.init(p)))
    return float(_mlp_loss(p, X, Y))


@pytest.mark.slow
def test_digits_mlp_loss_with_8_and_4_bit_state():
    """100 AdamW steps (lr 1e-3, batches of 128) on the digits MLP (64-256-256-10; its
    two big matrices quantized, biases and the 2,560-value head under min_size): the
    final loss no more than 1% (8 bits) and 2% (4 bits) above float32 state's. Measured
    (3 seeds): float32 0.0957, 8 bits 0.0953 (-0.5%), 4 bits 0.0924 (-3.5%): 4-bit
    state ends *lower* here, so the test bounds the loss from above only and reports
    both sides in BENCHMARKS.md."""
    f32 = _train_mlp(gradtx.adamw(1e-3))
    q8 = _train_mlp(gradtx.adamw(1e-3, mu_dtype="8bit", nu_dtype="8bit"))
    q4 = _train_mlp(gradtx.adamw(1e-3, mu_dtype="4bit", nu_dtype="4bit"))
    assert q8 <= 1.01 * f32, (q8, f32)
    assert q4 <= 1.02 * f32, (q4, f32)
    assert abs(q8 / f32 - 1) < 0.05 and abs(q4 / f32 - 1) < 0.10  # and not far below either


# --- does it train: a character-level language model -----------------------------------------


def _char_task(context=8):
    """An MLP over the previous ``context`` characters' embeddings, predicting the next
    character of Python's ``textwrap`` module (data that ships with Python): 88
    characters, 19,710 windows; w1 (128 x 256) and w2 (256 x 88) quantized, the
    embeddings and biases under min_size."""
    text = open(textwrap.__file__).read()
    chars = sorted(set(text))
    codes = np.asarray([chars.index(c) for c in text], np.int32)
    windows = np.lib.stride_tricks.sliding_window_view(codes, context + 1)
    vocab, d, hidden = len(chars), 16, 256
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    params = {
        "embed": jax.random.normal(k1, (vocab, d)) * 0.1,
        "w1": jax.random.normal(k2, (context * d, hidden)) / np.sqrt(context * d),
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k3, (hidden, vocab)) / np.sqrt(hidden),
        "b2": jnp.zeros(vocab),
    }

    def loss(p, xb, yb):
        e = p["embed"][xb].reshape(xb.shape[0], -1)
        logits = jax.nn.gelu(e @ p["w1"] + p["b1"][None, :]) @ p["w2"] + p["b2"][None, :]
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    return params, loss, jnp.asarray(windows[:, :-1]), jnp.asarray(windows[:, -1]), vocab


@pytest.mark.slow
def test_character_language_model_loss_with_8_and_4_bit_state():
    """400 AdamW steps (lr 3e-3, batches of 64) of a small character-level language model
    (`_char_task`): the training loss over the last 50 steps no more than 1% (8 bits)
    and 2% (4 bits) above float32 state's. Measured over seeds 1, 2, 3: 8 bits +0.20%,
    +0.10%, -0.00%; 4 bits +0.24%, +0.01%, -1.1% (float32 1.94, 1.81, 1.81; a uniform
    guess is ln 88 = 4.48). The benchmark trains a larger one for 1,500 steps."""
    params, loss, x, y, vocab = _char_task()

    def final_loss(tx, steps=400, batch=64):
        def body(carry, i):
            p, s = carry
            idx = jax.random.randint(jax.random.fold_in(jax.random.key(1), i), (batch,), 0, x.shape[0])
            value, g = jax.value_and_grad(loss)(p, x[idx], y[idx])
            u, s = tx.update(g, s, p)
            return (gradtx.apply_updates(p, u), s), value

        _, curve = jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), jnp.arange(steps)))(params)
        return float(jnp.mean(curve[-50:]))

    f32 = final_loss(gradtx.adamw(3e-3))
    q8 = final_loss(gradtx.adamw(3e-3, mu_dtype="8bit", nu_dtype="8bit"))
    q4 = final_loss(gradtx.adamw(3e-3, mu_dtype="4bit", nu_dtype="4bit"))
    assert f32 < 0.5 * np.log(vocab)  # it learns
    assert q8 <= 1.01 * f32, (q8, f32)
    assert q4 <= 1.02 * f32, (q4, f32)
