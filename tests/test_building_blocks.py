"""Hand-computed two-step values for every building block (the arithmetic is in the
comments), gradients g1 then g2, parameters p = 1."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

G = (2.0, 4.0)

TWO_STEPS = [
    ("identity", gradtx.identity(), G, (2.0, 4.0)),
    ("scale", gradtx.scale(0.5), G, (1.0, 2.0)),
    ("scale_by_learning_rate", gradtx.scale_by_learning_rate(0.1), G, (-0.2, -0.4)),
    # lr(t) = 0.1 (t + 1): -0.1 * 2, then -0.2 * 4
    (
        "scale_by_learning_rate-schedule",
        gradtx.scale_by_learning_rate(lambda t: 0.1 * jnp.asarray(t + 1, jnp.float32)),
        G,
        (-0.2, -0.8),
    ),
    # 2 / 1, 4 / 2
    (
        "scale_by_schedule",
        gradtx.scale_by_schedule(lambda t: 1.0 / (t + 1).astype(jnp.float32)),
        G,
        (2.0, 2.0),
    ),
    # v1 = 2; v2 = 4 + 0.5 * 2 = 5
    ("trace", gradtx.trace(0.5), G, (2.0, 5.0)),
    # g + 0.5 v: 2 + 1 = 3; 4 + 2.5 = 6.5
    ("trace-nesterov", gradtx.trace(0.5, nesterov=True), G, (3.0, 6.5)),
    # e1 = 1 -> 1 / 0.5 = 2; e2 = 2 + 0.5 = 2.5 -> 2.5 / 0.75
    ("ema", gradtx.ema(0.5), G, (2.0, 2.5 / 0.75)),
    ("ema-no-debias", gradtx.ema(0.5, debias=False), G, (1.0, 2.5)),
    ("momentum", gradtx.momentum(0.5), G, (2.0, 2.5 / 0.75)),
    # 0.5 m_t / (1 - 0.5^(t+1)) + 0.5 g_t / (1 - 0.5^t): 0.5/0.75 + 1/0.5; 1.25/0.875 + 2/0.75
    (
        "momentum-nesterov",
        gradtx.momentum(0.5, nesterov=True),
        G,
        (0.5 / 0.75 + 2.0, 1.25 / 0.875 + 2.0 / 0.75),
    ),
    # 2 / (1 - 0.5), 4 / (1 - 0.25)
    ("scale_by_bias_correction", gradtx.scale_by_bias_correction(0.5), G, (4.0, 4.0 / 0.75)),
    (
        "scale_by_bias_correction-root",
        gradtx.scale_by_bias_correction(0.5, power=-0.5),
        G,
        (2.0 * math.sqrt(0.5), 4.0 * math.sqrt(0.75)),
    ),
    # nu1 = 0.5 * 4 = 2 -> 2 / sqrt(2); nu2 = 0.5 * 16 + 0.5 * 2 = 9 -> 4 / 3
    ("scale_by_rms", gradtx.scale_by_rms(0.5, 0.0), G, (2.0 / math.sqrt(2.0), 4.0 / 3.0)),
    # nu_hat1 = 2 / 0.5 = 4 -> 2 / (2 + 1); nu_hat2 = 9 / 0.75 = 12 -> 4 / (sqrt(12) + 1)
    (
        "scale_by_rms-debiased-eps-outside",
        gradtx.scale_by_rms(0.5, 1.0, eps_in_sqrt=False, bias_correction=True),
        G,
        (2.0 / 3.0, 4.0 / (math.sqrt(12.0) + 1.0)),
    ),
    # nu1 = 0.5 * 16 = 8 -> 4 / sqrt(8); nu2 = 0.5 * 4 + 0.5 * 8 = 6 < 8 -> 2 / sqrt(8)
    (
        "scale_by_rms-amsgrad",
        gradtx.scale_by_rms(0.5, 0.0, eps_in_sqrt=False, amsgrad=True),
        (4.0, 2.0),
        (4.0 / math.sqrt(8.0), 2.0 / math.sqrt(8.0)),
    ),
    # mu1 = 1, nu1 = 2 -> 2 / sqrt(1); mu2 = 2.5, nu2 = 9 -> 4 / sqrt(9 - 6.25)
    ("scale_by_stddev", gradtx.scale_by_stddev(0.5, 0.0), G, (2.0, 4.0 / math.sqrt(2.75))),
    # h1 = 4 -> 2 / 2; h2 = 20 -> 4 / sqrt(20)
    ("scale_by_rss", gradtx.scale_by_rss(0.0, 0.0), G, (1.0, 4.0 / math.sqrt(20.0))),
    (
        "scale_by_rss-eps-outside",
        gradtx.scale_by_rss(0.0, 1.0, eps_in_sqrt=False),
        G,
        (2.0 / 3.0, 4.0 / (math.sqrt(20.0) + 1.0)),
    ),
    # nu1 = max(2, 0) = 2 -> 1; nu2 = max(0.5, 0.5 * 2) = 1 -> 0.5
    ("scale_by_infinity_norm", gradtx.scale_by_infinity_norm(0.5, 0.0), (2.0, 0.5), (1.0, 0.5)),
    # g + 0.1 * 1
    ("add_decayed_weights", gradtx.add_decayed_weights(0.1), G, (2.1, 4.1)),
    ("clip", gradtx.clip(3.0), G, (2.0, 3.0)),
    # m_hat = 2, v_hat = 4 -> -1; m_hat = 2.5 / 0.75, v_hat = 12 -> -(10/3) / sqrt(12)
    ("adam", gradtx.adam(1.0, 0.5, 0.5, 0.0), G, (-1.0, -(2.5 / 0.75) / math.sqrt(12.0))),
]


@pytest.mark.parametrize("tx, grads, expected", [c[1:] for c in TWO_STEPS], ids=[c[0] for c in TWO_STEPS])
def test_two_steps(tx, grads, expected):
    params = jnp.ones((1,))
    state = tx.init(params)
    for g, want in zip(grads, expected, strict=True):
        u, state = tx.update(jnp.full((1,), g), state, params)
        np.testing.assert_allclose(np.asarray(u), [want], rtol=1e-6)


def test_clip_by_global_norm_two_steps():
    tx = gradtx.clip_by_global_norm(5.0)
    state = tx.init(jnp.zeros(2))
    u, state = tx.update(jnp.array([3.0, 4.0]), state)  # norm 5: kept
    np.testing.assert_allclose(u, [3.0, 4.0], rtol=1e-7)
    u, state = tx.update(jnp.array([6.0, 8.0]), state)  # norm 10: halved
    np.testing.assert_allclose(u, [3.0, 4.0], rtol=1e-7)


def test_clip_by_global_norm_zero_gradient_stays_zero():
    u, _ = gradtx.clip_by_global_norm(1.0).update(jnp.zeros(3), gradtx.EmptyState())
    np.testing.assert_array_equal(u, np.zeros(3))


def test_counters_saturate_instead_of_wrapping():
    tx = gradtx.momentum(0.9)
    state = tx.init(jnp.zeros(1))._replace(count=jnp.asarray(np.iinfo(np.int32).max, jnp.int32))
    _, state = tx.update(jnp.ones(1), state)
    assert state.count.dtype == jnp.int32
    assert int(state.count) == np.iinfo(np.int32).max
