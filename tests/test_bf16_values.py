"""bfloat16 buffers by value: moments computed in float32, rounded only when stored.

Each step is checked against a float64 transcription started from the same stored
bfloat16 moments (read from gradtx's state, so a moment that rounded the other way at a
near-tie does not carry into later steps): the new moments and the update are computed
unrounded from them, and the moments stored rounded to bfloat16. Computing the moments
in bfloat16 (``b2 = 0.999`` becomes 1.0, ``0.9`` 0.8984), or the update from the
rounded moments, fails these tests.

- float32 parameters with ``mu_dtype`` and ``nu_dtype`` bfloat16: no rounding between
  blocks; the float32 updates within 1e-5 of their scale at every coordinate (the
  rounded first moment alone would move most of them by 1e-3).
- bfloat16 parameters: the updates travel between the blocks of the chain in the
  parameters' dtype, so each block's output is rounded to bfloat16 (Adam's ``m_hat``,
  the normalised step, the step times the learning rate; the reference does the same).
  The bfloat16 updates equal the reference's in at least 99% of 4,096 coordinates and
  are within two bfloat16 ulps everywhere (float32 against float64 can round a near-tie
  the other way, at any of the three roundings).
- The stored moments equal the reference's rounded moments in at least 99% of the
  coordinates (near-ties: 0.3% seen), and are within one bfloat16 ulp everywhere.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

BF16 = jnp.bfloat16
N, STEPS = 4096, 30


def bf16(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float32).astype(BF16).astype(np.float64)


def within_one_ulp(actual: np.ndarray, expected: np.ndarray, ulps: float = 1.0) -> bool:
    """One bfloat16 ulp (8 significant bits) of each value, plus float32's rounding of
    the leaf's scale: where a moment cancels to near 0, float32 arithmetic on terms of
    the leaf's size errs by more than the tiny result's ulp."""
    ulp = 2.0 ** (np.floor(np.log2(np.maximum(np.abs(expected), 1e-30))) - 7)
    return bool(np.all(np.abs(actual - expected) <= ulps * ulp + 1e-6 * np.max(np.abs(expected))))


def gradients() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [bf16(rng.normal(size=N) * (1 + 0.5 * np.sin(t))) for t in range(STEPS)]


@pytest.mark.parametrize("params_dtype", [jnp.float32, BF16], ids=["float32-params", "bf16-params"])
@pytest.mark.parametrize("b1, b2", [(0.9, 0.999), (0.8, 0.99)])
def test_adam_with_bf16_moments(b1: float, b2: float, params_dtype) -> None:
    c1, c2 = float(np.float32(b1)), float(np.float32(b2))  # the corrections use float32 betas
    opt = gradtx.adam(1e-2, b1, b2, mu_dtype=BF16, nu_dtype=BF16)
    params = jnp.zeros(N, params_dtype)
    state = opt.init(params)
    step = jax.jit(opt.update)
    for t, g in enumerate(gradients(), 1):
        mu, nu = (np.asarray(x, np.float64) for x in (state[0].mu, state[1].nu))
        m = b1 * mu + (1 - b1) * g
        v = b2 * nu + (1 - b2) * g * g
        m_hat, denom = m / (1 - c1**t), np.sqrt(v / (1 - c2**t)) + 1e-8
        u, state = step(jnp.asarray(g, params_dtype), state, params)
        ours = np.asarray(u, np.float64)
        assert u.dtype == params_dtype and state[0].mu.dtype == BF16 and state[1].nu.dtype == BF16
        if params_dtype == jnp.float32:
            expected = -1e-2 * m_hat / denom
            err = float(np.max(np.abs(ours - expected)))
            assert err <= 1e-5 * float(np.max(np.abs(expected))), f"step {t}: {err:.3g}"
        else:
            expected = bf16(-1e-2 * bf16(bf16(m_hat) / denom))
            assert within_one_ulp(ours, expected, 2.0), f"step {t}: more than two bfloat16 ulps"
            same = float(np.mean(ours == expected))
            assert same >= 0.99, f"step {t}: only {same:.1%} of the updates equal the reference"
        for name, stored, exact in (("mu", state[0].mu, m), ("nu", state[1].nu, v)):
            stored = np.asarray(stored, np.float64)
            assert within_one_ulp(stored, bf16(exact)), f"step {t}: {name} off by more than an ulp"
            same = float(np.mean(stored == bf16(exact)))
            assert same >= 0.99, f"step {t}: {name} equals the reference in {same:.2%}"
