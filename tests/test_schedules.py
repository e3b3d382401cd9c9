"""Schedules against independent references: optax where optax has the schedule,
PyTorch's lr_scheduler values, or float64 NumPy transcriptions of the formula."""

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from conftest import reference_numerics

import gradtx

FAR = 10**6


def around(*points, end=None):
    """Steps 0, 1, each point and its neighbours, and far past the end."""
    steps = {0, 1, FAR}
    for p in points:
        steps |= {max(p - 1, 0), p, p + 1}
    if end is not None:
        steps |= {end - 1, end, end + 1, 2 * end}
    return sorted(steps)


def evaluate(schedule, steps):
    return np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(steps, jnp.int32)), np.float64)


def evaluate_reference(schedule, steps):
    with reference_numerics():
        return np.asarray(
            jax.jit(jax.vmap(lambda t: jnp.asarray(schedule(t), jnp.float32)))(jnp.asarray(steps, jnp.int32)),
            np.float64,
        )


SGDR = [
    dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=50, end_value=0.1),
    dict(init_value=0.5, peak_value=0.8, warmup_steps=0, decay_steps=30, exponent=2.0),
]

OPTAX_TWINS = [
    ("constant", gradtx.constant_schedule(0.3), optax.constant_schedule(0.3), around()),
    (
        "linear",
        gradtx.linear_schedule(1.0, 0.1, 100, 10),
        optax.linear_schedule(1.0, 0.1, 100, 10),
        around(10, 110),
    ),
    (
        "polynomial",
        gradtx.polynomial_schedule(2.0, 0.5, 3.0, 70),
        optax.polynomial_schedule(2.0, 0.5, 3.0, 70),
        around(35, end=70),
    ),
    (
        "exponential",
        gradtx.exponential_decay(1.0, 10, 0.9),
        optax.exponential_decay(1.0, 10, 0.9),
        around(10, 100),
    ),
    (
        "exponential-staircase-begin-end",
        gradtx.exponential_decay(1.0, 7, 0.5, transition_begin=5, staircase=True, end_value=0.05),
        optax.exponential_decay(1.0, 7, 0.5, transition_begin=5, staircase=True, end_value=0.05),
        around(5, 12, 19, 33),
    ),
    (
        "exponential-growth",
        gradtx.exponential_decay(0.1, 10, 1.5, end_value=1.0),
        optax.exponential_decay(0.1, 10, 1.5, end_value=1.0),
        around(20, 60),
    ),
    (
        "cosine",
        gradtx.cosine_decay_schedule(1.0, 100),
        optax.cosine_decay_schedule(1.0, 100),
        around(50, end=100),
    ),
    (
        "cosine-alpha-exponent",
        gradtx.cosine_decay_schedule(0.5, 80, alpha=0.1, exponent=2.0),
        optax.cosine_decay_schedule(0.5, 80, alpha=0.1, exponent=2.0),
        around(40, end=80),
    ),
    (
        "warmup-cosine",
        gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, 0.01),
        optax.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, 0.01),
        around(10, end=100),
    ),
    (
        "warmup-cosine-no-warmup",
        gradtx.warmup_cosine_decay_schedule(0.2, 1.0, 0, 50),
        optax.warmup_cosine_decay_schedule(0.2, 1.0, 0, 50),
        around(end=50),
    ),
    (
        "warmup-constant",
        gradtx.warmup_constant_schedule(0.0, 0.5, 20),
        optax.warmup_constant_schedule(0.0, 0.5, 20),
        around(20),
    ),
    (
        "warmup-exponential",
        gradtx.warmup_exponential_decay_schedule(0.0, 1.0, 10, 5, 0.8, 3, True, 0.2),
        optax.warmup_exponential_decay_schedule(0.0, 1.0, 10, 5, 0.8, 3, True, 0.2),
        around(10, 13, 18, 40),
    ),
    (
        "piecewise-constant",
        gradtx.piecewise_constant_schedule(1.0, {10: 0.5, 30: 0.2, 31: 4.0}),
        optax.piecewise_constant_schedule(1.0, {10: 0.5, 30: 0.2, 31: 4.0}),
        around(10, 30, 31),
    ),
    (
        "piecewise-linear",
        gradtx.piecewise_interpolate_schedule("linear", 2.0, {10: 0.5, 40: 0.1}),
        optax.piecewise_interpolate_schedule("linear", 2.0, {10: 0.5, 40: 0.1}),
        around(5, 10, 25, 40),
    ),
    (
        "piecewise-cosine",
        gradtx.piecewise_interpolate_schedule("cosine", 2.0, {10: 3.0, 40: 0.01}),
        optax.piecewise_interpolate_schedule("cosine", 2.0, {10: 3.0, 40: 0.01}),
        around(5, 10, 25, 40),
    ),
    (
        "join",
        gradtx.join_schedules([gradtx.constant_schedule(1.0), gradtx.linear_schedule(1.0, 0.0, 20)], [7]),
        optax.join_schedules([optax.constant_schedule(1.0), optax.linear_schedule(1.0, 0.0, 20)], [7]),
        around(7, 27),
    ),
    ("sgdr", gradtx.sgdr_schedule(SGDR), optax.sgdr_schedule(SGDR), around(5, 50, 80)),  # pyright: ignore[reportArgumentType]
    (
        "linear-onecycle",
        gradtx.linear_onecycle_schedule(100, 1.0),
        optax.linear_onecycle_schedule(100, 1.0),
        around(30, 85, end=100),
    ),
    (
        "cosine-onecycle",
        gradtx.cosine_onecycle_schedule(97, 0.4, 0.25, 10.0, 100.0),
        optax.cosine_onecycle_schedule(97, 0.4, 0.25, 10.0, 100.0),
        around(24, end=97),
    ),
]


@pytest.mark.parametrize("ours, theirs, steps", [c[1:] for c in OPTAX_TWINS], ids=[c[0] for c in OPTAX_TWINS])
def test_matches_optax(ours, theirs, steps):
    # One listed difference (README): where optax's polynomial fraction 1 - t * (1/T)
    # rounds below 0 past the end, gradtx clips it, so a decay to 0 ends at 0 where
    # optax's ends at -1.5e-8 (a negative learning rate). Allowed here: 2e-8 absolute.
    np.testing.assert_allclose(evaluate(ours, steps), evaluate_reference(theirs, steps), rtol=1e-7, atol=2e-8)


# --- PyTorch's lr_scheduler ------------------------------------------------------------


def torch_values(make, base_lr, steps):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base_lr)
    scheduler = make(opt)
    values = []
    for _ in range(steps):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return np.array(values)


S = torch.optim.lr_scheduler
TORCH_TWINS = [
    (
        "cyclic-triangular",
        gradtx.cyclic_schedule(0.01, 0.1, 10),
        lambda o: S.CyclicLR(o, 0.01, 0.1, 10, cycle_momentum=False),
        0.01,
    ),
    (
        "cyclic-asymmetric-triangular2",
        gradtx.cyclic_schedule(0.01, 0.1, 7, 13, mode="triangular2"),
        lambda o: S.CyclicLR(o, 0.01, 0.1, 7, 13, mode="triangular2", cycle_momentum=False),
        0.01,
    ),
    (
        "cyclic-exp-range",
        gradtx.cyclic_schedule(0.01, 0.1, 5, mode="exp_range", gamma=0.99),
        lambda o: S.CyclicLR(o, 0.01, 0.1, 5, mode="exp_range", gamma=0.99, cycle_momentum=False),
        0.01,
    ),
    ("step-decay", gradtx.step_decay(0.1, 7, 0.5), lambda o: S.StepLR(o, 7, 0.5), 0.1),
    (
        "chained",
        gradtx.multiply_schedules(
            [
                gradtx.constant_schedule(0.1),
                gradtx.step_decay(1.0, 3, 0.5),
                gradtx.exponential_decay(1.0, 1, 0.9),
            ]
        ),
        lambda o: S.ChainedScheduler([S.StepLR(o, 3, 0.5), S.ExponentialLR(o, 0.9)]),
        0.1,
    ),
    (
        "sgdr-warm-restarts",
        gradtx.sgdr_schedule(
            [dict(init_value=0.1, peak_value=0.1, warmup_steps=0, decay_steps=15, end_value=0.001)] * 4
        ),
        lambda o: S.CosineAnnealingWarmRestarts(o, 15, eta_min=0.001),
        0.1,
    ),
    # CosineAnnealingLR rises again after T_max; cosine_decay_schedule stays: 41 steps.
    (
        "cosine-annealing",
        gradtx.cosine_decay_schedule(0.1, 40, alpha=0.05),
        lambda o: S.CosineAnnealingLR(o, 40, eta_min=0.005),
        0.1,
    ),
]


@pytest.mark.parametrize("ours, make, base_lr", [c[1:] for c in TORCH_TWINS], ids=[c[0] for c in TORCH_TWINS])
def test_matches_pytorch(ours, make, base_lr):
    steps = 41 if "CosineAnnealingLR" in repr(make(torch.optim.SGD([torch.zeros(1)], lr=1.0))) else 60
    expected = torch_values(make, base_lr, steps)
    # PyTorch computes in float64, gradtx in float32: gamma**t and 1 + cos(pi x) near
    # x = 1 lose a few float32 ulps, so the bound is relative to the schedule's scale.
    np.testing.assert_allclose(
        evaluate(ours, list(range(steps))), expected, rtol=2e-6, atol=1e-7 * np.max(np.abs(expected))
    )


# --- float64 transcriptions -------------------------------------------------------------


def inverse_time(t, lr0=0.5, k=0.3, steps=4, staircase=False):
    p = math.floor(t / steps) if staircase else t / steps
    return lr0 / (1 + k * p)


def inverse_sqrt(t, peak=1e-3, w=40, init=1e-5):
    return init + (peak - init) * t / w if t < w else peak * math.sqrt(w / t)


def wsd(t, kind, peak=1.0, w=10, s=50, d=20, init=0.1, end=0.01):
    if t < w:
        return init + (peak - init) * t / w
    x = min(max((t - w - s) / d, 0.0), 1.0)
    shape = {"linear": 1 - x, "cosine": 0.5 * (1 + math.cos(math.pi * x)), "1-sqrt": 1 - math.sqrt(x)}[kind]
    return end + (peak - end) * shape


TRANSCRIPTIONS = [
    ("inverse-time", gradtx.inverse_time_decay(0.5, 0.3, 4), inverse_time, around(4, 8, 100)),
    (
        "inverse-time-staircase",
        gradtx.inverse_time_decay(0.5, 0.3, 4, staircase=True),
        lambda t: inverse_time(t, staircase=True),
        around(4, 8, 100),
    ),
    ("seed-inverse-time", gradtx.inverse_time_decay(0.1, 0.5), lambda t: 0.1 / (1 + 0.5 * t), around(10)),
    ("seed-step", gradtx.step_decay(0.1, 10, 0.5), lambda t: 0.1 * 0.5 ** math.floor(t / 10), around(10, 20)),
    (
        "seed-exponential",
        gradtx.exponential_decay(0.1, 1, math.exp(-0.05)),
        lambda t: 0.1 * math.exp(-0.05 * t),
        around(10, 100),
    ),
    (
        "seed-polynomial",
        gradtx.polynomial_schedule(0.1, 0.0, 2.0, 50),
        lambda t: 0.1 * (1 - min(t, 50) / 50) ** 2,
        around(25, end=50),
    ),
    ("inverse-sqrt", gradtx.inverse_sqrt_schedule(1e-3, 40, 1e-5), inverse_sqrt, around(20, 40, 160)),
    *[
        (
            f"wsd-{kind}",
            gradtx.warmup_stable_decay_schedule(1.0, 10, 50, 20, 0.1, 0.01, kind),
            lambda t, kind=kind: wsd(t, kind),
            around(5, 10, 60, 65, 70, end=80),
        )
        for kind in ("linear", "cosine", "1-sqrt")
    ],
]


@pytest.mark.parametrize(
    "ours, formula, steps", [c[1:] for c in TRANSCRIPTIONS], ids=[c[0] for c in TRANSCRIPTIONS]
)
def test_matches_float64_formula(ours, formula, steps):
    expected = np.array([formula(t) for t in steps])
    scale = np.max(np.abs(expected))
    # float32: cancellations like 1 - 49/50 cost relative precision near zero, so the
    # bound is 1e-6 relative plus 1e-7 of the schedule's scale.
    np.testing.assert_allclose(evaluate(ours, steps), expected, rtol=1e-6, atol=1e-7 * scale)
    with jax.enable_x64(True):
        exact = np.array([float(ours(jnp.asarray(t, jnp.int64))) for t in steps])
    np.testing.assert_allclose(exact, expected, rtol=1e-12, atol=1e-15 * scale)


# --- schedules are data -----------------------------------------------------------------


def test_jit_vmap_and_grad_over_schedule_parameters():
    traces = []

    @jax.jit
    def value(schedule, t):
        traces.append(None)
        return schedule(t)

    for v, n in [(1.0, 100), (0.3, 40), (2.0, 7)]:
        np.testing.assert_allclose(
            value(gradtx.cosine_decay_schedule(v, n), 3), v * 0.5 * (1 + math.cos(math.pi * 3 / n)), rtol=1e-6
        )
    assert len(traces) == 1

    peaks = jnp.array([0.1, 0.2, 0.4])
    swept = jax.vmap(lambda p: gradtx.warmup_cosine_decay_schedule(0.0, p, 10, 100)(jnp.arange(0, 100, 9)))(
        peaks
    )
    for i, p in enumerate([0.1, 0.2, 0.4]):
        one = gradtx.warmup_cosine_decay_schedule(0.0, p, 10, 100)
        np.testing.assert_allclose(swept[i], evaluate(one, list(range(0, 100, 9))), rtol=1e-6)

    stacked = jax.tree.map(
        lambda *x: jnp.stack([jnp.asarray(y) for y in x]),
        *[gradtx.exponential_decay(v, 10, r) for v, r in [(1.0, 0.5), (2.0, 0.9)]],
    )
    np.testing.assert_allclose(jax.vmap(lambda s: s(20))(stacked), [0.25, 2.0 * 0.81], rtol=1e-6)

    d_init, d_alpha = jax.grad(
        lambda v, a: gradtx.cosine_decay_schedule(v, 100, alpha=a)(30), argnums=(0, 1)
    )(2.0, 0.1)
    cos = 0.5 * (1 + math.cos(math.pi * 0.3))
    np.testing.assert_allclose(d_init, 0.9 * cos + 0.1, rtol=1e-6)  # dv/dv0
    np.testing.assert_allclose(d_alpha, 2.0 * (1 - cos), rtol=1e-6)  # dv/dalpha


def test_changing_a_schedule_inside_a_jitted_step_does_not_recompile():
    params = {"w": jnp.ones(3)}
    traces = []

    @jax.jit
    def run(opt):
        traces.append(None)
        state = opt.init(params)
        updates, state = opt.update({"w": jnp.ones(3)}, state, params)
        return updates, gradtx.hyperparams(opt, state)

    # Three schedules with different values at step 0, all through one compiled step.
    for peak, steps, wd in [(1e-3, 100, 0.1), (3e-3, 200, 0.2), (1e-2, 50, 0.05)]:
        updates, hp = run(
            gradtx.adamw(
                gradtx.warmup_cosine_decay_schedule(peak / 10, peak, 10, steps),
                weight_decay=gradtx.linear_schedule(wd, 0.0, steps),
            )
        )
        # Step 0: Adam's step is g / (|g| + eps) = 1 for g = 1, plus wd * p with p = 1
        # (to 1e-5: optax's float32 1 - b2**t, which gradtx shares, is 6.6e-6 off at t = 1).
        np.testing.assert_allclose(updates["w"], -(peak / 10) * (1 + wd), rtol=1e-5)
        np.testing.assert_allclose(float(hp["weight_decay"]), wd, rtol=1e-6)
        np.testing.assert_allclose(float(hp["learning_rate"]), peak / 10, rtol=1e-6)
    assert len(traces) == 1


def test_adam_with_a_scheduled_b1_matches_float64():
    b1 = gradtx.cyclic_schedule(0.85, 0.95, 5)  # as OneCycleLR cycles momentum
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(30, 4))
    m, v, expected = np.zeros(4), np.zeros(4), []
    for t, g in enumerate(grads, start=1):
        beta1 = 0.85 + 0.1 * (1 - abs((t - 1) / 5 % 2 - 1))  # the cyclic value at step t - 1
        m = beta1 * m + (1 - beta1) * g
        v = 0.999 * v + 0.001 * g * g
        expected.append(-0.01 * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8))
    with jax.enable_x64(True):
        opt = gradtx.adam(0.01, b1=b1)
        state, got = opt.init(jnp.zeros(4, jnp.float64)), []
        for g in grads:
            u, state = opt.update(jnp.asarray(g), state)
            got.append(np.asarray(u))
        hp = gradtx.hyperparams(opt, state)
        np.testing.assert_allclose(float(hp["b1"]), float(b1(29)), rtol=1e-12)
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-10)


def test_any_hyperparameter_may_be_a_schedule():
    opt = gradtx.chain(
        gradtx.clip(gradtx.linear_schedule(1.0, 0.5, 2)),
        gradtx.trace(gradtx.constant_schedule(0.5)),
        gradtx.scale_by_learning_rate(gradtx.step_decay(1.0, 1, 0.5)),
    )
    state = opt.init(jnp.zeros(1))
    outs = []
    for g in (3.0, 3.0):
        u, state = opt.update(jnp.full(1, g), state)
        outs.append(float(u[0]))
    # step 0: clip to 1, trace 1, lr 1 -> -1; step 1: clip to 0.75, trace 0.75 + 0.5, lr 0.5
    np.testing.assert_allclose(outs, [-1.0, -0.625], rtol=1e-6)
    hp = gradtx.hyperparams(opt, state)
    assert int(hp["step"]) == 2
    np.testing.assert_allclose([float(hp["max_delta"]), float(hp["learning_rate"])], [0.75, 0.5], rtol=1e-6)


# --- inject_hyperparams ------------------------------------------------------------------


def test_inject_hyperparams_behaves_like_optax():
    params = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)}
    grads = [{"w": jnp.sin(jnp.arange(6.0) + i).reshape(2, 3)} for i in range(20)]
    ours = gradtx.inject_hyperparams(gradtx.adamw)(
        learning_rate=1e-2, weight_decay=gradtx.linear_schedule(0.1, 0.0, 20)
    )
    with reference_numerics():
        theirs = optax.inject_hyperparams(optax.adamw)(
            learning_rate=1e-2, weight_decay=optax.linear_schedule(0.1, 0.0, 20)
        )
        s_ours = ours.init(params)
        s_theirs: Any = theirs.init(params)
        for i, g in enumerate(grads):
            if i == 10:
                s_ours.hyperparams["learning_rate"] = jnp.asarray(3e-2)
                s_theirs.hyperparams["learning_rate"] = jnp.asarray(3e-2)
            u_ours, s_ours = jax.jit(ours.update)(g, s_ours, params)
            u_theirs, s_theirs = jax.jit(theirs.update)(g, s_theirs, params)
            np.testing.assert_allclose(u_ours["w"], u_theirs["w"], rtol=1e-6, atol=1e-9)
    assert set(s_ours.hyperparams) == set(s_theirs.hyperparams)
    np.testing.assert_allclose(float(gradtx.hyperparams(ours, s_ours)["learning_rate"]), 3e-2, rtol=1e-7)


def test_inject_hyperparams_keeps_float32_with_bf16_params():
    params = jnp.zeros(3, jnp.bfloat16)
    state = gradtx.inject_hyperparams(gradtx.adam)(1e-3, b2=0.999).init(params)
    assert state.hyperparams["b2"].dtype == jnp.float32
    assert float(state.hyperparams["b2"]) == np.float32(0.999)
    with reference_numerics():
        theirs: Any = optax.inject_hyperparams(optax.adam)(1e-3, b2=0.999).init(params)
    assert float(theirs.hyperparams["b2"]) == 1.0  # optax#1414: the bug this avoids


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: gradtx.linear_schedule(1.0, 0.0, 0), ["linear_schedule", "transition_steps", "> 0"]),
        (lambda: gradtx.exponential_decay(1.0, -5, 0.5), ["exponential_decay", "transition_steps"]),
        (lambda: gradtx.exponential_decay(1.0, 5, 0.0), ["exponential_decay", "decay_rate"]),
        (lambda: gradtx.exponential_decay(1.0, 5, 0.5, transition_begin=-1), ["transition_begin", ">= 0"]),
        (lambda: gradtx.cosine_decay_schedule(1.0, 0), ["cosine_decay_schedule", "decay_steps"]),
        (
            lambda: gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 100, 50),
            ["warmup_cosine_decay_schedule", "warmup_steps", "decay_steps"],
        ),
        (
            lambda: gradtx.join_schedules([gradtx.constant_schedule(1.0)] * 3, [10, 5]),
            ["join_schedules", "boundaries", "increasing"],
        ),
        (
            lambda: gradtx.join_schedules([gradtx.constant_schedule(1.0)] * 3, [10]),
            ["join_schedules", "boundaries"],
        ),
        (
            lambda: gradtx.piecewise_constant_schedule(1.0, {10: -0.5}),
            ["piecewise_constant_schedule", "scale"],
        ),
        (
            lambda: gradtx.piecewise_interpolate_schedule("linear", 1.0, {5: -1.0}),
            ["piecewise_interpolate", "scale"],
        ),
        (lambda: gradtx.piecewise_interpolate_schedule("cubic", 1.0), ["interpolate_type", "cubic"]),  # pyright: ignore[reportArgumentType]
        (lambda: gradtx.linear_onecycle_schedule(0, 1.0), ["linear_onecycle_schedule", "transition_steps"]),
        (lambda: gradtx.step_decay(1.0, 0), ["step_decay", "step_size"]),
        (lambda: gradtx.inverse_time_decay(1.0, -0.1), ["inverse_time_decay", "decay_rate"]),
        (lambda: gradtx.inverse_sqrt_schedule(1.0, 0), ["inverse_sqrt_schedule", "warmup_steps"]),
        (
            lambda: gradtx.warmup_stable_decay_schedule(1.0, 10, 10, 0),
            ["warmup_stable_decay_schedule", "decay_steps"],
        ),
        (lambda: gradtx.warmup_stable_decay_schedule(1.0, 1, 1, 1, decay_type="exp"), ["decay_type", "exp"]),  # pyright: ignore[reportArgumentType]
        (lambda: gradtx.cyclic_schedule(0.1, 1.0, 0), ["cyclic_schedule", "step_size_up"]),
        (lambda: gradtx.cyclic_schedule(0.1, 1.0, 5, mode="sine"), ["cyclic_schedule", "mode"]),  # pyright: ignore[reportArgumentType]
        (lambda: gradtx.inject_hyperparams(gradtx.adam, static_args="nope"), ["inject_hyperparams", "nope"]),
    ],
)
def test_bad_schedule_arguments_raise(build, words):
    with pytest.raises(ValueError) as info:
        build()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_polynomial_schedule_reaches_its_end_under_jit_with_a_fractional_power() -> None:
    # optax computes 1 - t / T, which XLA turns into 1 - t * (1 / T) = -5e-8 at t = T = 250,
    # and a square root of it NaN; float64 reference: (1 - t / T) ** 0.5.
    schedule = gradtx.polynomial_schedule(1.0, 0.0, 0.5, 250)
    t = np.arange(240, 260)
    expected = np.clip(1 - t / 250, 0, None) ** 0.5
    np.testing.assert_allclose(np.asarray(jax.jit(schedule)(jnp.asarray(t))), expected, rtol=1e-5, atol=1e-7)
