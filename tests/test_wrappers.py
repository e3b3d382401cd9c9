"""Wrappers beyond the catalogue: MultiSteps and accumulate, apply_if_finite under faults,
lookahead, monitoring, per-example clipping, numerics helpers, optax's type names."""

import functools
import inspect
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from cases import gradient_sequence, params_like
from conftest import reference_numerics

import gradtx
from gradtx.testing import assert_close_to_scale, run_updates


def _step(state):
    value = gradtx.tree_utils.step(state)
    assert value is not None
    return int(value)


# --- gradient accumulation --------------------------------------------------------------


def _regression(dtype, n=24, d=3, seed=0):
    kx, kw = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(kx, (n, d), dtype)
    y = x @ jnp.arange(1.0, d + 1, dtype=dtype) + 0.5
    params = {"w": jax.random.normal(kw, (d,), dtype), "b": jnp.zeros((), dtype)}
    return params, x, y


def _loss(params, x, y):
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-13), ("float32", 1e-6)])
def test_multisteps_of_k_micro_batches_equals_one_big_batch(dtype, rtol):
    with jax.enable_x64(dtype == "float64"):
        params, x, y = _regression(jnp.dtype(dtype))
        k = 4
        big = gradtx.sgd(0.1).update(jax.grad(_loss)(params, x, y), gradtx.sgd(0.1).init(params))[0]
        opt = gradtx.MultiSteps(gradtx.sgd(0.1), k, accumulator_dtype=jnp.dtype(dtype))
        state, updates = opt.init(params), None
        for xs, ys in zip(jnp.split(x, k), jnp.split(y, k), strict=True):
            updates, state = opt.update(jax.grad(_loss)(params, xs, ys), state, params)
        assert bool(opt.has_updated(state))
        assert_close_to_scale(updates, big, rtol, "MultiSteps")


@jax.enable_x64(True)
def test_weighted_accumulation_is_the_token_weighted_mean():
    # float64 throughout, so equality holds to rounding (1e-12), not to float32's 1e-6.
    params, x, y = _regression(jnp.float64, n=10)
    sizes = [1, 2, 7]  # micro-batches of different sizes
    cuts = np.cumsum(sizes)[:-1].tolist()
    micro = list(zip(jnp.split(x, cuts), jnp.split(y, cuts), strict=True))
    full = jax.grad(_loss)(params, x, y)

    opt = gradtx.MultiSteps(gradtx.sgd(1.0), len(sizes), accumulator_dtype=jnp.float64)
    weighted, unweighted = opt.init(params), opt.init(params)
    u_w = u_u = None
    for (xs, ys), n in zip(micro, sizes, strict=True):
        g = jax.grad(_loss)(params, xs, ys)
        u_w, weighted = opt.update(g, weighted, params, weight=n)
        u_u, unweighted = opt.update(g, unweighted, params)
    assert_close_to_scale(u_w, jax.tree.map(lambda g: -g, full), 1e-12, "weighted")
    # Without weights the small batches count as much as the big one: visibly wrong.
    assert gradtx.testing.scaled_difference(u_u, jax.tree.map(lambda g: -g, full)) > 0.05

    scanned = gradtx.accumulate(
        lambda p, b: jax.grad(_loss)(p, *b),
        params,
        (x.reshape(5, 2, 3), y.reshape(5, 2)),
        accumulator_dtype=jnp.float64,
    )
    assert_close_to_scale(scanned, full, 1e-12, "accumulate")
    pieces = [(jnp.pad(xs, ((0, 7 - len(xs)), (0, 0))), jnp.pad(ys, (0, 7 - len(ys)))) for xs, ys in micro]

    def padded_grad(p, batch):
        xs, ys, n = batch  # pad rows carry no loss: the mean is over the n real rows
        mask = jnp.arange(7, dtype=n.dtype) < n
        return jax.grad(lambda q: jnp.sum(jnp.where(mask, (xs @ q["w"] + q["b"] - ys) ** 2, 0.0)) / n)(p)

    stacked = (
        jnp.stack([p[0] for p in pieces]),
        jnp.stack([p[1] for p in pieces]),
        jnp.asarray(sizes, jnp.float64),
    )
    weighted_scan = gradtx.accumulate(
        padded_grad, params, stacked, weights=jnp.asarray(sizes), accumulator_dtype=jnp.float64
    )
    assert_close_to_scale(weighted_scan, full, 1e-12, "accumulate weighted")


def test_inner_optimizer_runs_only_on_the_emitting_micro_step():
    calls = {"gradtx": 0, "optax": 0}

    def counting(lib):
        def f(updates, params):
            jax.debug.callback(lambda: calls.__setitem__(lib, calls[lib] + 1))
            return updates

        return f

    params = {"w": jnp.zeros(3)}
    for lib, m in (("gradtx", gradtx), ("optax", optax)):
        opt = m.MultiSteps(m.chain(m.stateless(counting(lib)), m.adam(1e-2)), every_k_schedule=4)
        state = opt.init(params)
        step = jax.jit(opt.update)
        with reference_numerics():  # optax's side needs standard promotion
            for _ in range(12):
                _, state = step({"w": jnp.ones(3)}, state, params)
        jax.effects_barrier()
    assert calls == {"gradtx": 3, "optax": 12}


def test_schedules_advance_once_per_emitted_update():
    schedule = gradtx.linear_schedule(1.0, 0.0, 10)
    opt = gradtx.MultiSteps(gradtx.adam(schedule), 4)
    params = {"w": jnp.zeros(2)}
    state = opt.init(params)
    for _ in range(9):  # two emitted updates and one micro-batch
        _, state = opt.update({"w": jnp.ones(2)}, state, params)
    hp = gradtx.hyperparams(opt, state)
    assert int(hp["step"]) == 2 and _step(state) == 2
    np.testing.assert_allclose(hp["learning_rate"], 0.9, rtol=1e-6)  # used at step 1
    assert int(state.mini_step) == 1


def test_accumulator_is_float32_for_bfloat16_gradients():
    params = {"w": jnp.zeros(4, jnp.bfloat16)}
    opt = gradtx.MultiSteps(gradtx.sgd(1.0), 3)
    state = opt.init(params)
    assert state.acc_grads["w"].dtype == jnp.float32
    g = {"w": jnp.full(4, 1.0 + 2.0**-7, jnp.bfloat16)}  # exactly representable in bf16
    u = None
    for _ in range(3):
        u, state = opt.update(g, state, params)
    assert u is not None and u["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(u["w"], np.float32), -(1.0 + 2.0**-7))


def test_multisteps_with_an_inner_transform_that_changes_the_dtype():
    # The zero updates of a micro-step that does not emit take the inner output's dtype.
    to_f32 = gradtx.stateless(lambda u, p: jax.tree.map(lambda x: x.astype(jnp.float32), u))
    opt = gradtx.MultiSteps(to_f32, 2)
    params = {"w": jnp.zeros(2, jnp.bfloat16)}
    state = opt.init(params)
    first, state = opt.update({"w": jnp.full(2, 1.0, jnp.bfloat16)}, state, params)
    second, state = opt.update({"w": jnp.full(2, 3.0, jnp.bfloat16)}, state, params)
    assert first["w"].dtype == second["w"].dtype == jnp.float32
    np.testing.assert_array_equal(first["w"], [0.0, 0.0])
    np.testing.assert_array_equal(second["w"], [2.0, 2.0])


def test_multisteps_rejects_a_bad_k_and_a_bad_skip_function():
    with pytest.raises(ValueError, match="every_k_schedule must be an int >= 1"):
        gradtx.MultiSteps(gradtx.sgd(0.1), 0)
    opt = gradtx.MultiSteps(gradtx.sgd(0.1), 2, should_skip_update_fn=lambda u, s, p: (jnp.zeros(2), ()))
    with pytest.raises(ValueError, match="boolean scalar"):
        opt.update(jnp.ones(2), opt.init(jnp.ones(2)))


# --- apply_if_finite: nothing lost under faults --------------------------------------------


def _bits(tree):
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("packed", [False, True])
def test_a_nan_at_step_5_leaves_every_buffer_bit_identical(packed):
    params = params_like()
    grads = gradient_sequence(params, 8)
    grads = jax.tree.map(lambda g: g.at[5].set(jnp.nan) if g.ndim == 3 else g, grads)  # "w" only
    if packed:
        params = gradtx.pack(params)
        grads = jax.vmap(params.layout.pack)(grads)
    opt = gradtx.apply_if_finite(gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-2)), 3)
    state = opt.init(params)
    step = jax.jit(lambda p, s, g: (lambda u, s: (gradtx.apply_updates(p, u), s))(*opt.update(g, s, p)))
    for i in range(8):
        if i == 5:  # a -0.0 parameter: -0.0 + 0.0 would be +0.0, another bit pattern
            leaves, treedef = jax.tree.flatten(params)
            leaves[0] = leaves[0].ravel().at[0].set(-0.0).reshape(leaves[0].shape)
            params = jax.tree.unflatten(treedef, leaves)
        before = (params, state.inner_state)
        params, state = step(params, state, jax.tree.map(lambda g, i=i: g[i], grads))
        if i == 5:
            assert _bits(params) == _bits(before[0])
            assert _bits(state.inner_state) == _bits(before[1])
            assert not bool(state.last_finite) and int(state.notfinite_count) == 1
    assert int(state.total_notfinite) == 1 and _step(state) == 7
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(params))


def test_apply_if_finite_gives_up_after_n_consecutive_failures_as_optax():
    params = {"w": jnp.ones(2)}
    bad = {"w": jnp.asarray([jnp.nan, 1.0])}
    ours, theirs = gradtx.apply_if_finite(gradtx.sgd(0.1), 2), optax.apply_if_finite(optax.sgd(0.1), 2)
    s_ours, s_theirs = ours.init(params), cast(Any, theirs.init(params))
    u_ours = None
    for _ in range(3):
        u_ours, s_ours = ours.update(bad, s_ours, params)
        u_theirs, s_theirs = cast(Any, theirs.update(bad, s_theirs, params))
        np.testing.assert_array_equal(u_ours["w"], u_theirs["w"])  # zeros, then NaN at the 3rd
        assert int(s_ours.notfinite_count) == int(s_theirs.notfinite_count)
    assert u_ours is not None and np.isnan(np.asarray(u_ours["w"][0]))


# --- lookahead, monitoring, per-example clipping ------------------------------------------


@pytest.mark.parametrize("reset_state", [False, True])
def test_lookahead_matches_optax(reset_state):
    params = {"w": jnp.arange(3.0), "b": jnp.ones(2)}
    grads = gradient_sequence(params, 20)
    results = []
    for m in (gradtx, optax):
        opt = m.lookahead(m.adam(0.1), sync_period=3, slow_step_size=0.4, reset_state=reset_state)
        p = m.LookaheadParams.init_synced(params)
        state = opt.init(p)
        with reference_numerics():
            for i in range(20):
                g = jax.tree.map(lambda x, i=i: x[i], grads)
                u, state = opt.update(g, state, p)
                p = m.apply_updates(p, u)
        results.append(p)
    assert_close_to_scale(tuple(results[0]), tuple(results[1]), 1e-6, "lookahead")


def test_monitor_and_measure_with_ema_match_optax():
    params = params_like()
    grads = gradient_sequence(params, 10)

    def sq(u):
        return sum(jnp.sum(x**2) for x in jax.tree.leaves(u))

    measures = []
    for m in (gradtx, optax):
        tx = m.monitor({"ema": m.measure_with_ema(sq, 0.9), "raw": sq})
        state = tx.init(params)
        with reference_numerics():
            for i in range(10):
                _, state = tx.update(jax.tree.map(lambda x, i=i: x[i], grads), state, params)
        measures.append(state.measurements)
    assert_close_to_scale(measures[0], measures[1], 1e-6, "monitor")
    ours = gradtx.monitor({"raw": sq})
    assert jax.tree.structure(ours.init(params)) == jax.tree.structure(
        ours.update(params, ours.init(params))[1]
    )


@pytest.mark.parametrize("uniform", [True, False])
def test_per_example_clips_match_optax(uniform):
    grads = gradient_sequence({"a": jnp.zeros((2, 3)), "b": jnp.zeros(4)}, 5)  # 5 examples
    total, count = gradtx.per_example_global_norm_clip(grads, 2.0)
    ref_total, ref_count = optax.per_example_global_norm_clip(grads, 2.0)
    assert_close_to_scale(total, ref_total, 1e-6, "global")
    assert int(count) == int(ref_count) > 0
    with reference_numerics():
        ref = optax.per_example_layer_norm_clip(grads, 1.5, uniform)
    ours = gradtx.per_example_layer_norm_clip(grads, 1.5, uniform)
    assert_close_to_scale(ours[0], ref[0], 1e-6, "layer")
    assert jax.tree.map(int, ours[1]) == jax.tree.map(int, ref[1])
    with pytest.raises(ValueError, match="leading batch axis"):
        gradtx.per_example_global_norm_clip({"a": jnp.zeros((2, 3)), "b": jnp.zeros(4)}, 1.0)


def test_clip_by_global_norm_zero_bound_gives_zeros_where_optax_gives_nan():
    zeros = jnp.zeros(3)
    ours = gradtx.clip_by_global_norm(0.0).update(zeros, gradtx.EmptyState())[0]
    theirs = optax.clip_by_global_norm(0.0).update(zeros, optax.EmptyState())[0]
    np.testing.assert_array_equal(ours, zeros)
    assert np.isnan(np.asarray(theirs)).all()


# --- numerics helpers -------------------------------------------------------------------------


def test_numerics_helpers_match_optax():
    x = jnp.asarray([[3.0, -4.0], [0.5, 2.0]])
    z = jnp.asarray([1 + 2j, -3j])
    with reference_numerics():
        for ord_, axis in [(None, None), (1, 0), (2, 1)]:
            np.testing.assert_array_equal(
                gradtx.safe_norm(x, 1.0, ord_, axis), optax.safe_norm(x, 1.0, ord_, axis)
            )
            ours = jax.grad(lambda v, o=ord_, a=axis: jnp.sum(gradtx.safe_norm(v, 0.1, o, a)))(
                jnp.zeros((2, 2))
            )
            theirs = jax.grad(lambda v, o=ord_, a=axis: jnp.sum(optax.safe_norm(v, 0.1, o, a)))(
                jnp.zeros((2, 2))
            )
            np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_array_equal(
            gradtx.safe_root_mean_squares(x, 0.1), optax.safe_root_mean_squares(x, 0.1)
        )
        m = {"a": x, "b": None}
        g = {"a": 2 * x, "b": None}
        for fn in ("update_moment", "update_moment_per_elem_norm"):
            np.testing.assert_array_equal(
                getattr(gradtx, fn)(g, m, 0.9, 2)["a"], getattr(optax, fn)(g, m, 0.9, 2)["a"]
            )
        np.testing.assert_array_equal(
            gradtx.update_moment_per_elem_norm(z, jnp.zeros(2), 0.9, 2),
            optax.update_moment_per_elem_norm(z, jnp.zeros(2), 0.9, 2),
        )
        np.testing.assert_array_equal(
            gradtx.update_infinity_moment(g, m, 0.9, 1e-3)["a"],
            optax.update_infinity_moment(g, m, 0.9, 1e-3)["a"],
        )
        np.testing.assert_allclose(
            gradtx.global_norm({"x": x, "z": z}), optax.tree.norm({"x": x, "z": z}), 1e-7
        )
    for dtype in (jnp.int32, jnp.float32):
        top = jnp.asarray(jnp.iinfo(dtype).max if dtype == jnp.int32 else jnp.finfo(dtype).max, dtype)
        assert gradtx.safe_int32_increment(top) == optax.safe_int32_increment(top)
        assert gradtx.safe_increment(jnp.asarray(5, dtype)) == 6


def test_scale_gradient_matches_optax():
    for scale in (0.0, 0.5, 1.0, -2.0):
        ours = jax.grad(lambda x, s=scale: jnp.sum(gradtx.scale_gradient(x, s) ** 2))(jnp.arange(3.0))
        with reference_numerics():
            theirs = jax.grad(lambda x, s=scale: jnp.sum(cast(Any, optax.scale_gradient(x, s)) ** 2))(
                jnp.arange(3.0)
            )
        np.testing.assert_array_equal(ours, theirs)


def test_incremental_and_periodic_updates_match_optax():
    new, old = {"a": jnp.ones(2), "b": None}, {"a": jnp.zeros(2), "b": None}
    with reference_numerics():
        np.testing.assert_array_equal(
            gradtx.incremental_update(new, old, 0.3)["a"],
            cast(Any, optax.incremental_update(new, old, 0.3))["a"],
        )
        for step in (0, 3, 10):
            ours = gradtx.periodic_update(new, old, jnp.asarray(step), 5)
            np.testing.assert_array_equal(
                ours["a"], cast(Any, optax.periodic_update(new, old, jnp.asarray(step), 5))["a"]
            )


# --- optax's names and types --------------------------------------------------------------


def test_signatures_introspect_as_optax():
    from optax._src import base as optax_base

    for name in ("adam", "adamw", "sgd", "rmsprop", "adagrad", "nadam", "amsgrad", "adamax"):
        annotation = inspect.signature(getattr(gradtx, name)).parameters["learning_rate"].annotation
        assert annotation == optax_base.ScalarOrSchedule, name
    assert inspect.signature(gradtx.momentum).parameters["b1"].annotation is not str


def test_gradient_transformation_builds_and_recognises_transforms():
    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None):
        return jax.tree.map(lambda u: -u, updates), state

    tx = gradtx.GradientTransformation(init, update)
    assert isinstance(tx, gradtx.GradientTransformation) and isinstance(tx, gradtx.Transform)
    assert isinstance(gradtx.adam(1e-3), gradtx.GradientTransformationExtraArgs)
    np.testing.assert_array_equal(tx.update(jnp.ones(2), tx.init(None))[0], -jnp.ones(2))
    assert gradtx.GradientTransformation(init=init, update=update) == tx


def test_inject_stateful_hyperparams_matches_optax():
    params = params_like()
    grads = gradient_sequence(params, 20)
    schedule = functools.partial(lambda t: 0.1 / (1.0 + t.astype(jnp.float32)))
    with pytest.warns(DeprecationWarning):
        ref = optax.inject_stateful_hyperparams(optax.adam)(learning_rate=optax.WrappedSchedule(schedule))
    ours = gradtx.inject_stateful_hyperparams(gradtx.adam)(learning_rate=gradtx.WrappedSchedule(schedule))
    u, state = run_updates(ours, params, grads)
    with reference_numerics():
        ru, rstate = run_updates(ref, params, grads)
    assert_close_to_scale(u, ru, 1e-6, "inject_stateful")
    np.testing.assert_allclose(state.hyperparams["learning_rate"], rstate.hyperparams["learning_rate"], 1e-7)
    assert int(state.hyperparams_states["learning_rate"].count) == 20
