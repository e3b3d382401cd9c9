"""Each row of the seeds' update-rule table, transcribed in float64 NumPy, against the
gradtx configuration that expresses it, on the seeds' anisotropic bowl
f(x, y) = x**2 / 20 + y**2 (notes 001 and 003), to 1e-10 relative in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

STEPS = 40
START = np.array([-7.0, 2.0])


def bowl_grad(w: np.ndarray) -> np.ndarray:
    return np.array([w[0] / 10.0, 2.0 * w[1]])


def run_gradtx(opt) -> np.ndarray:
    """The trajectory of ``opt`` on the bowl, in float64."""
    with jax.enable_x64(True):
        w = jnp.asarray(START, jnp.float64)
        state = opt.init(w)
        path = []

        @jax.jit
        def step(w, state):
            g = jnp.stack([w[0] / 10.0, 2.0 * w[1]])
            updates, state = opt.update(g, state, w)
            return gradtx.apply_updates(w, updates), state

        for _ in range(STEPS):
            w, state = step(w, state)
            assert w.dtype == jnp.float64
            path.append(np.asarray(w))
        return np.array(path)


# --- float64 transcriptions of the notes, line by line ---------------------------------


def sgd(lr=0.95):
    w, path = START.copy(), []
    for _ in range(STEPS):
        w = w - lr * bowl_grad(w)  # W <- W - lr * g
        path.append(w.copy())
    return np.array(path)


def momentum_velocity(lr=0.1, gamma=0.9):
    w, v, path = START.copy(), np.zeros(2), []
    for _ in range(STEPS):
        v = gamma * v + lr * bowl_grad(w)  # v = gamma*v + lr*g
        w = w - v  # W = W - v
        path.append(w.copy())
    return np.array(path)


def momentum_alpha(lr=0.1, alpha=0.9):
    w, v, path = START.copy(), np.zeros(2), []
    for _ in range(STEPS):
        v = alpha * v - lr * bowl_grad(w)  # v = alpha*v - lr*g
        w = w + v  # W = W + v
        path.append(w.copy())
    return np.array(path)


def adagrad_eps_outside(lr=1.5):
    w, h, path = START.copy(), np.zeros(2), []
    for _ in range(STEPS):
        g = bowl_grad(w)
        h = h + g * g  # h = h + g*g, h from 0
        w = w - lr * g / (np.sqrt(h) + 1e-7)  # W = W - lr * g / (sqrt(h) + 1e-7)
        path.append(w.copy())
    return np.array(path)


def adagrad_eps_inside(lr=1.5, eps=1e-7):
    w, h, path = START.copy(), np.zeros(2), []
    for _ in range(STEPS):
        g = bowl_grad(w)
        h = h + g * g
        w = w - lr * g / np.sqrt(h + eps)  # W = W - lr * g / sqrt(h + eps)
        path.append(w.copy())
    return np.array(path)


def rmsprop(lr=0.1, rho=0.9, eps=1e-7):
    w, r, path = START.copy(), np.zeros(2), []
    for _ in range(STEPS):
        g = bowl_grad(w)
        r = rho * r + (1 - rho) * g * g  # r = rho*r + (1-rho)*g*g
        w = w - lr * g / (np.sqrt(r) + eps)  # W = W - lr * g / (sqrt(r) + eps)
        path.append(w.copy())
    return np.array(path)


def adam(lr=0.3, b1=0.9, b2=0.999, eps=1e-8):
    w, m, v, path = START.copy(), np.zeros(2), np.zeros(2), []
    for t in range(1, STEPS + 1):
        g = bowl_grad(w)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        path.append(w.copy())
    return np.array(path)


def adam_step_size(lr=0.3, b1=0.9, b2=0.999, eps=1e-8):
    w, m, v, path = START.copy(), np.zeros(2), np.zeros(2), []
    for t in range(1, STEPS + 1):
        g = bowl_grad(w)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)  # lr_t = lr*sqrt(1-b2^t)/(1-b1^t)
        w = w - lr_t * m / (np.sqrt(v) + eps)
        path.append(w.copy())
    return np.array(path)


ROWS = [
    ("SGD (001, 003)", sgd, lambda: gradtx.sgd(0.95)),
    ("Momentum velocity (000)", momentum_velocity, lambda: gradtx.sgd(0.1, 0.9, momentum_form="velocity")),
    ("Momentum alpha (001, 003)", momentum_alpha, lambda: gradtx.sgd(0.1, 0.9, momentum_form="alpha")),
    ("Momentum, optax form", momentum_alpha, lambda: gradtx.sgd(0.1, 0.9)),
    (
        "AdaGrad eps outside (001, 003 code)",
        adagrad_eps_outside,
        lambda: gradtx.adagrad(1.5, 0.0, 1e-7, eps_in_sqrt=False),
    ),
    ("AdaGrad eps inside (003 formula)", adagrad_eps_inside, lambda: gradtx.adagrad(1.5, 0.0, 1e-7)),
    ("RMSProp (000, 001)", rmsprop, lambda: gradtx.rmsprop(0.1, 0.9, 1e-7, eps_in_sqrt=False)),
    ("Adam (000, 001)", adam, lambda: gradtx.adam(0.3)),
    (
        "Adam composition",
        adam,
        lambda: gradtx.chain(
            gradtx.momentum(0.9),
            gradtx.scale_by_rms(0.999, 1e-8, eps_in_sqrt=False, bias_correction=True),
            gradtx.scale_by_learning_rate(0.3),
        ),
    ),
    ("Adam step-size form (001)", adam_step_size, lambda: gradtx.adam(0.3, debias_step_size=True)),
]


@pytest.mark.parametrize("reference, build", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_seed_rule(reference, build):
    expected = reference()
    np.testing.assert_allclose(run_gradtx(build()), expected, rtol=1e-10, atol=1e-12)


def test_step_size_form_is_a_different_eps():
    """Adam's step-size form is not the default form: its eps acts as eps/sqrt(1-b2^t)."""
    default = adam(eps=1e-2)
    step_size = adam_step_size(eps=1e-2)
    assert np.max(np.abs(default - step_size)) > 1e-3
    np.testing.assert_allclose(
        run_gradtx(gradtx.adam(0.3, eps=1e-2, debias_step_size=True)), step_size, rtol=1e-10, atol=1e-12
    )


def test_alpha_form_keeps_the_negated_velocity():
    with jax.enable_x64(True):
        g = jnp.asarray([1.0, -2.0], jnp.float64)
        alpha = gradtx.sgd(0.1, 0.9, momentum_form="alpha")
        velocity = gradtx.sgd(0.1, 0.9, momentum_form="velocity")
        sa, sv = alpha.init(g), velocity.init(g)
        for _ in range(2):
            _, sa = alpha.update(g, sa)
            _, sv = velocity.update(g, sv)
        # v_2 = alpha * (-lr g) - lr g = -0.19 g
        np.testing.assert_allclose(sa[1].trace, -0.19 * np.asarray(g), rtol=1e-12)
        np.testing.assert_allclose(sv[1].trace, 0.19 * np.asarray(g), rtol=1e-12)


def test_momentum_forms_differ_only_under_a_schedule():
    """Seed forms fold each step's rate into v; optax's multiplies v by today's rate."""

    def halving(t):
        return 0.1 * 0.5 ** t.astype(jnp.float64)

    with jax.enable_x64(True):
        g = jnp.ones((1,), jnp.float64)
        results = {}
        for form in ("trace", "velocity", "alpha"):
            opt = gradtx.sgd(halving, 0.9, momentum_form=form)
            state, steps = opt.init(g), []
            for _ in range(2):
                u, state = opt.update(g, state)
                steps.append(float(u[0]))
            results[form] = steps
    # step 2: trace form -lr_1 * (0.9 + 1) = -0.095; seed forms -(0.9*lr_0 + lr_1) = -0.14
    np.testing.assert_allclose(results["trace"], [-0.1, -0.095], rtol=1e-12)
    np.testing.assert_allclose(results["velocity"], [-0.1, -0.14], rtol=1e-12)
    np.testing.assert_allclose(results["alpha"], [-0.1, -0.14], rtol=1e-12)


def test_ewa_with_bias_correction():
    """Note 002: V_t = beta V_{t-1} + (1 - beta) theta_t, divided by 1 - beta^t."""
    theta = np.cos(np.arange(1, 31) / 3.0) * 10 + 20
    beta, v, expected = 0.9, 0.0, []
    for t, x in enumerate(theta, start=1):
        v = beta * v + (1 - beta) * x
        expected.append(v / (1 - beta**t))
    with jax.enable_x64(True):
        for tx in (
            gradtx.ema(beta),
            gradtx.chain(gradtx.ema(beta, debias=False), gradtx.scale_by_bias_correction(beta)),
        ):
            state, out = tx.init(jnp.zeros((), jnp.float64)), []
            for x in theta:
                u, state = tx.update(jnp.asarray(x, jnp.float64), state)
                out.append(float(u))
            np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_first_adam_step_is_the_gradient():
    """Note 000 works step 1 by hand: bias correction makes m_hat = g at t = 1."""
    with jax.enable_x64(True):
        g = jnp.asarray([0.3, -4.0, 1e-3], jnp.float64)
        tx = gradtx.momentum(0.9)
        m_hat, _ = tx.update(g, tx.init(g))
        np.testing.assert_allclose(m_hat, g, rtol=1e-15)
