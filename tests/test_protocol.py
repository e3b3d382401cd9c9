"""The protocol (optax interop both ways) and transforms as data (jit, vmap, eq, repr)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from cases import gradient_sequence, params_like
from conftest import reference_numerics, xla_compiles

import gradtx
from gradtx.testing import assert_close_to_scale, run_updates

PARAMS = params_like()
GRADS = gradient_sequence(PARAMS, 50)


def leaves_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def leaves_close(a, b, rtol=1e-6):
    """Within ``rtol`` of each leaf's scale. Hyperparameters that are constants let XLA
    rewrite (``pow(0.9, t)`` of a constant base, say), so an optimizer passed as data
    and one closed over can differ in the last bit."""
    assert_close_to_scale(a, b, rtol)


# --- interop ---------------------------------------------------------------------------


def test_gradtx_inside_optax_chain():
    with reference_numerics():
        # optax's annotations name its own NamedTuple; any (init, update) object works.
        mixed = optax.chain(optax.clip(0.5), gradtx.adam(1e-2))  # pyright: ignore[reportArgumentType]
        ours, _ = run_updates(mixed, PARAMS, GRADS)
        theirs, _ = run_updates(optax.chain(optax.clip(0.5), optax.adam(1e-2)), PARAMS, GRADS)
    leaves_equal(ours, theirs)


def test_optax_inside_gradtx_chain_gets_extra_args():
    seen = []

    def update(updates, state, params=None, **extra):
        seen.append(sorted(extra))
        return jax.tree.map(lambda g: g * extra["value"], updates), state

    def init(params):
        del params
        return optax.EmptyState()

    scaler = optax.GradientTransformationExtraArgs(init, update)
    opt = gradtx.chain(scaler, gradtx.sgd(0.1))
    u, _ = opt.update(jnp.ones(2), opt.init(jnp.zeros(2)), value=3.0)
    np.testing.assert_allclose(u, [-0.3, -0.3], rtol=1e-6)
    assert seen == [["value"]]
    plain = gradtx.chain(optax.scale(2.0))  # no **extra: called without them
    u, _ = plain.update(jnp.ones(2), plain.init(jnp.zeros(2)), value=3.0)
    np.testing.assert_allclose(u, [2.0, 2.0])


def test_nested_chains_behave_like_one_chain():
    nested = gradtx.chain(
        gradtx.clip(1.0),
        gradtx.chain(
            gradtx.momentum(0.9),
            gradtx.chain(gradtx.scale_by_rms(0.99, eps_in_sqrt=False, bias_correction=True)),
        ),
        gradtx.scale_by_learning_rate(0.1),
    )
    flat = gradtx.chain(
        gradtx.clip(1.0),
        gradtx.momentum(0.9),
        gradtx.scale_by_rms(0.99, eps_in_sqrt=False, bias_correction=True),
        gradtx.scale_by_learning_rate(0.1),
    )
    leaves_equal(run_updates(nested, PARAMS, GRADS)[0], run_updates(flat, PARAMS, GRADS)[0])


def test_named_chain_state_is_keyed_by_name():
    opt = gradtx.named_chain(("clip", gradtx.clip(1.0)), ("sgd", gradtx.sgd(0.1, 0.9)))
    state = opt.init(PARAMS)
    assert set(state) == {"clip", "sgd"}
    assert isinstance(state["sgd"][0], gradtx.TraceState)


def test_apply_updates_keeps_dtypes_and_none():
    params = {"a": jnp.ones(2, jnp.bfloat16), "b": None, "c": jnp.ones(2)}
    updates = {"a": jnp.full(2, 0.5, jnp.float32), "b": None, "c": jnp.full(2, -1.0)}
    out = gradtx.apply_updates(params, updates)
    assert out["a"].dtype == jnp.bfloat16 and out["b"] is None
    np.testing.assert_allclose(np.asarray(out["a"], np.float32), [1.5, 1.5])
    np.testing.assert_allclose(out["c"], [0.0, 0.0])


# --- transforms are data ---------------------------------------------------------------


def _train(opt, params, grads):
    def step(carry, g):
        p, s = carry
        u, s = opt.update(g, s, p)
        return (gradtx.apply_updates(p, u), s), None

    (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), grads)
    return p


def test_changing_hyperparameters_does_not_recompile():
    traces, compiles = [], []

    @jax.jit
    def train(opt, params, grads):
        traces.append(None)
        return _train(opt, params, grads)

    for lr, b1, wd in [(1e-3, 0.9, 1e-4), (3e-2, 0.5, 0.1), (0.2, 0.0, 0.0)]:
        with xla_compiles() as compiled:
            got = train(gradtx.adamw(lr, b1=b1, weight_decay=wd), PARAMS, GRADS)
        compiles.extend(compiled)
        want = jax.jit(
            lambda p, g, lr=lr, b1=b1, wd=wd: _train(gradtx.adamw(lr, b1=b1, weight_decay=wd), p, g)
        )(PARAMS, GRADS)
        leaves_close(got, want)
    assert len(traces) == 1
    assert compiles.count("jit(train)") <= 1, compiles


def test_optimizer_as_data_gives_optax_numbers():
    """1 - b2 is kept as a leaf computed in float64 when built, as optax's Python float
    is, so passing the optimizer through jit keeps optax's numbers (computing it from the
    float32 leaf instead, 1 - f32(0.999), is off by 1.3e-5 relative)."""
    step = jax.jit(lambda opt, p, g: run_updates(opt, p, g)[0])
    ours = step(gradtx.adam(1e-3, b1=0.95, b2=0.999), PARAMS, GRADS)
    with reference_numerics():
        theirs, _ = run_updates(optax.adam(1e-3, b1=0.95, b2=0.999), PARAMS, GRADS)
    leaves_close(ours, theirs)


def test_vmap_over_a_batch_of_optimizers_matches_separate_runs():
    lrs = [1e-3, 1e-2, 3e-2, 0.1]
    b1s = [0.9, 0.8, 0.5, 0.0]
    opts = [gradtx.adam(lr, b1=b1) for lr, b1 in zip(lrs, b1s, strict=True)]
    batched = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *opts)
    traces = []

    def train(opt, params, grads):
        traces.append(None)
        return _train(opt, params, grads)

    together = jax.jit(jax.vmap(train, in_axes=(0, None, None)))(batched, PARAMS, GRADS)
    assert len(traces) == 1
    for i, opt in enumerate(opts):
        alone = jax.jit(lambda p, g, opt=opt: _train(opt, p, g))(PARAMS, GRADS)
        for x, y in zip(jax.tree.leaves(together), jax.tree.leaves(alone), strict=True):
            np.testing.assert_allclose(np.asarray(x)[i], np.asarray(y), rtol=1e-6, atol=1e-7)


def test_vmap_over_learning_rates_built_inside():
    lrs = jnp.array([1e-3, 1e-2, 1e-1])
    together = jax.jit(jax.vmap(lambda lr: _train(gradtx.sgd(lr, 0.9), PARAMS, GRADS)))(lrs)
    for i, lr in enumerate([1e-3, 1e-2, 1e-1]):
        alone = _train(gradtx.sgd(lr, 0.9), PARAMS, GRADS)
        for x, y in zip(jax.tree.leaves(together), jax.tree.leaves(alone), strict=True):
            np.testing.assert_allclose(np.asarray(x)[i], np.asarray(y), rtol=1e-6, atol=1e-7)


def test_equal_settings_compare_and_hash_equal():
    assert gradtx.adam(1e-3) == gradtx.adam(1e-3)
    assert hash(gradtx.adam(1e-3)) == hash(gradtx.adam(1e-3))
    assert gradtx.adam(1e-3) != gradtx.adam(2e-3)
    assert gradtx.adam(1e-3) != gradtx.adam(1e-3, nesterov=True)
    assert gradtx.adam(1e-3) != gradtx.adamw(1e-3)
    assert gradtx.scale_by_rms(0.9) == gradtx.scale_by_rms(decay=0.9)
    assert len({gradtx.sgd(0.1), gradtx.sgd(0.1), gradtx.sgd(0.2)}) == 2
    static_step = jax.jit(lambda g, opt: opt.update(g, opt.init(g))[0], static_argnums=1)
    np.testing.assert_allclose(static_step(jnp.ones(2), gradtx.sgd(0.5)), [-0.5, -0.5])


def test_numbers_are_leaves_and_choices_are_static():
    opt = gradtx.adam(1e-3, nesterov=True)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(opt)[0]]
    assert any(p.endswith(".learning_rate") for p in paths)
    assert any(p.endswith(".b1") for p in paths) and any(p.endswith(".decay") for p in paths)
    assert not any("nesterov" in p or "dtype" in p for p in paths)
    schedule_opt = gradtx.sgd(lambda t: 0.1)  # a plain function is static
    assert not any(
        p.endswith(".learning_rate")
        for p, _ in [
            (jax.tree_util.keystr(k), v) for k, v in jax.tree_util.tree_flatten_with_path(schedule_opt)[0]
        ]
    )


def test_repr_shows_the_whole_chain():
    text = repr(gradtx.adam(1e-3))
    assert text.startswith("adam = chain(")
    assert "momentum(b1=0.9" in text
    assert "scale_by_rms(decay=0.999, eps=1e-08" in text
    assert "scale_by_learning_rate(learning_rate=0.001" in text


# --- one call to read the step and the hyperparameters ---------------------------------


def test_hyperparams_reads_step_and_values():
    opt = gradtx.adamw(2e-3, b1=0.8, weight_decay=0.1)
    state = opt.init(PARAMS)
    hp = gradtx.hyperparams(opt, state)
    assert int(hp["step"]) == 0
    for key, want in [
        ("learning_rate", 2e-3),
        ("b1", 0.8),
        ("b2", 0.999),
        ("eps", 1e-8),
        ("weight_decay", 0.1),
    ]:
        np.testing.assert_allclose(float(hp[key]), want, rtol=1e-7)
    for _ in range(3):
        _, state = opt.update(jax.tree.map(lambda g: g[0], GRADS), state, PARAMS)
    assert int(gradtx.hyperparams(opt, state)["step"]) == 3


def test_hyperparams_evaluates_schedules_at_the_last_step():
    def schedule(t):
        return 0.1 / (1.0 + t.astype(jnp.float32))

    opt = gradtx.sgd(schedule, momentum=0.9)
    state = opt.init(PARAMS)
    np.testing.assert_allclose(float(gradtx.hyperparams(opt, state)["learning_rate"]), 0.1, rtol=1e-7)

    @jax.jit
    def step(state):
        _, state = opt.update(jax.tree.map(lambda g: g[0], GRADS), state, PARAMS)
        return state, gradtx.hyperparams(opt, state)

    hp = {}
    for _ in range(4):
        state, hp = step(state)
    # the 4th update used step 3: 0.1 / 4
    np.testing.assert_allclose(float(hp["learning_rate"]), 0.025, rtol=1e-6)
    assert int(hp["step"]) == 4 and float(hp["momentum"]) == np.float32(0.9)


def test_hyperparams_qualifies_names_used_twice():
    opt = gradtx.chain(gradtx.trace(0.9), gradtx.ema(0.5), gradtx.trace(0.8))
    hp = gradtx.hyperparams(opt, opt.init(jnp.zeros(2)))
    assert set(hp) == {"step", "ema.decay", "trace[0].decay", "trace[1].decay"}
    np.testing.assert_allclose(float(hp["trace[1].decay"]), 0.8, rtol=1e-7)
