"""Every schedulable hyperparameter of the core blocks, numerically, against float64.

The README says any hyperparameter may be a schedule. Each test gives one block a
schedule that changes at every step (``v_t = v0 + k t``, t the update's 0-based step)
and compares six steps with a float64 NumPy transcription of the block's equation that
reads ``v_t`` at step t, within 1e-5 of the step's scale (float32 arithmetic against
float64: up to 1.2e-6 is seen). A schedule read one step late (``v_{t-1}``), or not at
all, changes every step after the first by 1e-2 or more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

STEPS = 6
RNG = np.random.default_rng(3)
GRADS = [RNG.normal(size=5).astype(np.float32) * (1 + t) for t in range(STEPS)]
PARAMS = RNG.normal(size=5).astype(np.float32)


def linear(v0: float, k: float) -> tuple[Any, Callable[[int], float]]:
    """A gradtx schedule ``v0 + k t`` and its float64 values."""
    return gradtx.linear_schedule(v0, v0 + k * 100, 100), lambda t: v0 + k * t


def run(tx: Any) -> list[np.ndarray]:
    step = jax.jit(tx.update)
    state = tx.init(jnp.asarray(PARAMS))
    out = []
    for g in GRADS:
        u, state = step(jnp.asarray(g), state, jnp.asarray(PARAMS))
        out.append(np.asarray(u, np.float64))
    return out


def check(ours: list[np.ndarray], expected: list[np.ndarray]) -> None:
    for t, (a, e) in enumerate(zip(ours, expected, strict=True)):
        scale = float(np.max(np.abs(e)))
        assert float(np.max(np.abs(a - e))) <= 1e-5 * scale, f"step {t}: {a} != {e}"


G64 = [g.astype(np.float64) for g in GRADS]
P64 = PARAMS.astype(np.float64)


def test_momentum_b1() -> None:
    sched, b1 = linear(0.5, 0.05)
    m, expected = 0.0, []
    for t, g in enumerate(G64):
        m = b1(t) * m + (1 - b1(t)) * g
        expected.append(m / (1 - b1(t) ** (t + 1)))
    check(run(gradtx.momentum(sched)), expected)


def test_ema_decay() -> None:
    sched, d = linear(0.5, 0.05)
    e, expected = 0.0, []
    for t, g in enumerate(G64):
        e = d(t) * e + (1 - d(t)) * g
        expected.append(e / (1 - d(t) ** (t + 1)))
    check(run(gradtx.ema(sched)), expected)


def test_trace_decay() -> None:
    sched, d = linear(0.5, 0.05)
    v, expected = 0.0, []
    for t, g in enumerate(G64):
        v = g + d(t) * v
        expected.append(v)
    check(run(gradtx.trace(sched)), expected)


@pytest.mark.parametrize("eps_in_sqrt", [True, False])
def test_scale_by_rms_decay_eps(eps_in_sqrt: bool) -> None:
    decay_s, decay = linear(0.5, 0.05)
    eps_s, eps = linear(0.5, 0.25)  # large enough to matter
    nu, expected = 0.0, []
    for t, g in enumerate(G64):
        nu = decay(t) * nu + (1 - decay(t)) * g * g
        expected.append(g / np.sqrt(nu + eps(t)) if eps_in_sqrt else g / (np.sqrt(nu) + eps(t)))
    check(run(gradtx.scale_by_rms(decay_s, eps_s, eps_in_sqrt=eps_in_sqrt)), expected)


def test_adam_b1_b2_eps_eps_root() -> None:
    b1_s, b1 = linear(0.5, 0.05)
    b2_s, b2 = linear(0.6, 0.05)
    eps_s, eps = linear(0.3, 0.1)
    root_s, root = linear(0.2, 0.1)
    m = v = 0.0
    expected = []
    for t, g in enumerate(G64):
        m = b1(t) * m + (1 - b1(t)) * g
        v = b2(t) * v + (1 - b2(t)) * g * g
        m_hat, v_hat = m / (1 - b1(t) ** (t + 1)), v / (1 - b2(t) ** (t + 1))
        expected.append(-0.1 * m_hat / (np.sqrt(v_hat + root(t)) + eps(t)))
    check(run(gradtx.adam(0.1, b1_s, b2_s, eps_s, root_s)), expected)


def test_add_decayed_weights() -> None:
    sched, wd = linear(0.1, 0.2)
    check(run(gradtx.add_decayed_weights(sched)), [g + wd(t) * P64 for t, g in enumerate(G64)])


def test_clip_max_delta() -> None:
    sched, bound = linear(0.5, 0.5)
    check(run(gradtx.clip(sched)), [np.clip(g, -bound(t), bound(t)) for t, g in enumerate(G64)])


def test_clip_by_global_norm_max_norm() -> None:
    sched, bound = linear(1.0, 1.0)
    expected = [g * min(1.0, bound(t) / np.linalg.norm(g)) for t, g in enumerate(G64)]
    check(run(gradtx.clip_by_global_norm(sched)), expected)


def test_scale_by_learning_rate() -> None:
    sched, lr = linear(0.1, 0.1)
    check(run(gradtx.scale_by_learning_rate(sched)), [-lr(t) * g for t, g in enumerate(G64)])


SMALL = [g * 1e-4 for g in G64]  # sqrt(v_hat) ~ 1e-4: eps = 1e-8 moves the step by 1e-4


@pytest.mark.parametrize("factory", ["adam", "adamw", "nadam", "rmsprop"])
def test_default_eps_is_seen(factory: str) -> None:
    """The defaults' eps, not only explicit ones: with gradients near 1e-4, dropping the
    default eps (or using ten times it) moves the updates by 1e-4 to 1e-3 relative."""
    opt = getattr(gradtx, factory)(1e-3)
    step = jax.jit(opt.update)
    state = opt.init(jnp.asarray(PARAMS))
    m = v = 0.0
    b1, b2, eps = (0.9, 0.9, 1e-8) if factory == "rmsprop" else (0.9, 0.999, 1e-8)
    for t, g in enumerate(SMALL):
        u, state = step(jnp.asarray(g, jnp.float32), state, jnp.asarray(PARAMS))
        if factory == "rmsprop":
            v = b2 * v + (1 - b2) * g * g
            expected = -1e-3 * g / np.sqrt(v + eps)
        else:
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            # optax's (and gradtx's) corrections raise the float32-stored betas to t.
            c1, c2 = float(np.float32(b1)), float(np.float32(b2))
            v_hat = v / (1 - c2 ** (t + 1))
            if factory == "nadam":
                m_bar = b1 * m / (1 - c1 ** (t + 2)) + (1 - b1) * g / (1 - c1 ** (t + 1))
            else:
                m_bar = m / (1 - c1 ** (t + 1))
            expected = -1e-3 * m_bar / (np.sqrt(v_hat) + eps)
            if factory == "adamw":
                expected = expected - 1e-3 * 1e-4 * P64
        a = np.asarray(u, np.float64)
        assert np.max(np.abs(a - expected)) <= 1e-5 * np.max(np.abs(expected)), f"{factory} step {t}"
