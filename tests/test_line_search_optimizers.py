"""Optimizers whose update needs more than the gradient (L-BFGS with its line searches,
Polyak's step size), and the optax names whose behaviour the catalogue cannot show
(optimistic_adam's deprecation, scalar parameters where optax raises or reshapes).

References are optax's own iterates, run in the same process.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import reference_numerics
from sklearn.datasets import load_digits

import gradtx

_X, _Y = load_digits(return_X_y=True)
X = jnp.asarray(_X[:200] / 16.0, jnp.float32)
Y = jnp.asarray((_Y[:200] % 2).astype(np.float32))


def rosenbrock(w):
    return jnp.sum(100.0 * (w[1:] - w[:-1] ** 2) ** 2 + (1.0 - w[:-1]) ** 2)


def logistic(p):
    """Binary logistic regression (even digit or odd) with a little L2."""
    logits = X @ p["w"] + p["b"]
    return jnp.mean(jax.nn.softplus(logits) - Y * logits) + 1e-3 * jnp.sum(p["w"] ** 2)


PROBLEMS = {
    "rosenbrock": (rosenbrock, jnp.asarray([-1.2, 1.0, -0.5, 0.8])),
    "logistic": (logistic, {"w": jnp.zeros(64), "b": jnp.zeros(())}),
}


def iterates(m, opt, f, w, steps):
    """The parameters after each step of ``opt`` (library ``m``) in a jitted loop that
    takes the value and gradient from the state."""
    value_and_grad = m.value_and_grad_from_state(f)

    @jax.jit
    def step(w, state):
        value, grad = value_and_grad(w, state=state)
        updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=f)
        return m.apply_updates(w, updates), state

    state, out = opt.init(w), []
    for _ in range(steps):
        w, state = step(w, state)
        out.append(w)
    return out, state


CONFIGS = {
    "default-zoom": lambda m: m.lbfgs(),
    "zoom-keep-memory-3": lambda m: m.lbfgs(memory_size=3, linesearch=m.scale_by_zoom_linesearch(15)),
    "zoom-settings": lambda m: m.lbfgs(
        scale_init_precond=False,
        linesearch=m.scale_by_zoom_linesearch(
            10, max_learning_rate=2.0, curv_rtol=0.5, approx_dec_rtol=None, initial_guess_strategy="one"
        ),
    ),
    "backtracking": lambda m: m.lbfgs(linesearch=m.scale_by_backtracking_linesearch(20, store_grad=True)),
    "backtracking-settings": lambda m: m.lbfgs(
        memory_size=5,
        linesearch=m.scale_by_backtracking_linesearch(
            15, slope_rtol=1e-3, decrease_factor=0.5, increase_factor=2.0, store_grad=True
        ),
    ),
}


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_lbfgs_iterates_equal_optax(config, problem):
    f, w0 = PROBLEMS[problem]
    steps = 25
    ours, _ = iterates(gradtx, CONFIGS[config](gradtx), f, w0, steps)
    with reference_numerics():
        theirs, _ = iterates(optax, CONFIGS[config](optax), f, w0, steps)
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        gradtx.testing.assert_close_to_scale(a, b, 1e-6, f"{config} {problem} step {k}")
    final = float(f(ours[-1]))
    assert final < float(f(w0)) / 5, (config, problem, final)  # it also descends


def test_lbfgs_solves_rosenbrock_and_reports_its_line_search():
    ours, state = iterates(gradtx, gradtx.lbfgs(), rosenbrock, PROBLEMS["rosenbrock"][1], 40)
    np.testing.assert_allclose(ours[-1], np.ones(4), atol=1e-3)
    info = gradtx.tree_utils.tree_get(state, "info")
    assert int(info.num_linesearch_steps) >= 1
    assert float(info.decrease_error) == 0.0


def test_lbfgs_without_line_search_is_the_preconditioned_step():
    """With no line search, the first step is -g / max(1, |g|) (scale_init_precond)."""
    opt = gradtx.lbfgs(linesearch=None)
    w = jnp.asarray([3.0, 4.0])
    grad = jax.grad(lambda w: jnp.sum(w**2))(w)  # (6, 8), norm 10
    updates, _ = opt.update(grad, opt.init(w), w)
    np.testing.assert_allclose(updates, [-0.6, -0.8], rtol=1e-6)


def test_line_searches_explain_missing_arguments():
    opt = gradtx.lbfgs()
    w = jnp.ones(2)
    with pytest.raises(TypeError, match="value, grad, value_fn"):
        opt.update(w, opt.init(w), w)
    with pytest.raises(TypeError, match="Unexpected keyword arguments"):
        opt.update(w, opt.init(w), w, value=1.0, grad=w, value_fn=lambda p: jnp.sum(p), batch=3)
    with pytest.raises(ValueError, match="holds no 'value'"):
        gradtx.value_and_grad_from_state(jnp.sum)(w, state=gradtx.adam(0.1).init(w))


def test_value_fn_receives_the_extra_arguments():
    def f(w, target):
        return jnp.sum((w - target) ** 2)

    w = jnp.zeros(3)
    target = jnp.asarray([1.0, -2.0, 0.5])
    value, grad = jax.value_and_grad(f)(w, target)
    results = []
    for m in (gradtx, optax):
        opt = m.lbfgs()
        with reference_numerics():
            updates, _ = opt.update(grad, opt.init(w), w, value=value, grad=grad, value_fn=f, target=target)
        results.append(updates)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)
    assert float(f(w + results[0], target)) < float(value)  # the search saw the target


# --- Polyak's step size ----------------------------------------------------------------


@pytest.mark.parametrize("variant", ["sps", "sps+"])
def test_polyak_sgd_equals_optax_on_logistic_regression(variant):
    f, w0 = PROBLEMS["logistic"]

    def run(m):
        opt = m.polyak_sgd(max_learning_rate=5.0, f_min=0.1, eps=1e-6, variant=variant)

        @jax.jit
        def step(w, state):
            value, grad = jax.value_and_grad(f)(w)
            updates, state = opt.update(grad, state, w, value=value)
            return m.apply_updates(w, updates), state, value

        w, state, values = w0, opt.init(w0), []
        for _ in range(30):
            w, state, value = step(w, state)
            values.append(value)
        return w, values

    ours, our_values = run(gradtx)
    with reference_numerics():
        theirs, _ = run(optax)
    gradtx.testing.assert_close_to_scale(ours, theirs, 1e-6, "polyak_sgd")
    assert our_values[-1] < our_values[0]


def test_polyak_step_is_exact_on_an_l1_objective():
    """For f = |x|_1 the Polyak step reaches the minimum in one step (optax's test)."""
    w = jnp.asarray([1.0, -1.0])
    value, grad = jax.value_and_grad(lambda x: jnp.abs(x).sum())(w)
    tx = gradtx.scale_by_polyak()
    updates, _ = tx.update(grad, tx.init(w), w, value=value)
    np.testing.assert_allclose(w - updates, [0.0, 0.0], atol=1e-7)
    with pytest.raises(TypeError, match="needs the loss"):
        tx.update(grad, tx.init(w), w)


# --- names the catalogue cannot show ---------------------------------------------------


def test_optimistic_adam_warns_as_optax_and_gives_its_numbers():
    with pytest.warns(DeprecationWarning, match="use `optimistic_adam_v2` instead"):
        ours = gradtx.optimistic_adam(2e-3, 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = optax.optimistic_adam(2e-3, 1e-3)
    w = {"a": jnp.ones((2, 3)), "b": jnp.ones(2)}
    grads = gradtx.testing.tree_random_normal(jax.random.key(0), w, (20,))
    a, _ = gradtx.testing.run_updates(ours, w, grads)
    with reference_numerics():
        b, _ = gradtx.testing.run_updates(theirs, w, grads)
    gradtx.testing.assert_close_to_scale(a, b, 1e-6, "optimistic_adam")
    with pytest.raises(ValueError, match="schedule"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        gradtx.optimistic_adam(lambda t: 0.1)  # pyright: ignore[reportArgumentType]


def test_scalar_parameters_where_optax_fails_or_reshapes():
    """SM3 on a scalar: optax raises IndexError, gradtx treats it as its own accumulator
    (AdaGrad with momentum); DoG on a scalar: optax's update has shape (1,), gradtx's ()."""
    tx = gradtx.scale_by_sm3(b1=0.0, eps=0.0)
    state = tx.init(jnp.asarray(1.0))
    u1, state = tx.update(jnp.asarray(3.0), state)
    u2, state = tx.update(jnp.asarray(4.0), state)
    np.testing.assert_allclose([u1, u2], [1.0, 4.0 / 5.0], rtol=1e-6)  # g / sqrt(sum g^2)
    dog = gradtx.scale_by_distance_over_gradients()
    p = jnp.asarray(2.0)
    assert dog.update(jnp.asarray(1.0), dog.init(p), p)[0].shape == ()


def test_rectified_rms_rejects_a_threshold_that_gives_nan():
    with pytest.raises(ValueError, match="threshold must be >= 4"):
        gradtx.radam(1e-3, threshold=3.0)


def test_composition_reads_as_the_equations():
    """Each new Adam-family optimizer is momentum, one statistic, the learning rate."""
    names = {
        "adabelief": ["momentum", "scale_by_belief_rms", "scale_by_learning_rate"],
        "yogi": ["momentum", "scale_by_yogi_rms", "scale_by_learning_rate"],
        "radam": ["momentum", "rectified", "scale_by_learning_rate"],
        "adan": ["momentum", "scale_by_adan_rms", "add_decayed_weights", "scale_by_learning_rate"],
        "lamb": [
            "momentum",
            "scale_by_rms",
            "add_decayed_weights",
            "scale_by_trust_ratio",
            "scale_by_learning_rate",
        ],
        "signum": ["ema", "scale_by_sign", "scale_by_learning_rate"],
        "adamaxw": ["momentum", "scale_by_infinity_norm", "add_decayed_weights", "scale_by_learning_rate"],
        "novograd": ["scale_by_layerwise_rms", "add_decayed_weights", "trace", "scale_by_learning_rate"],
    }
    for name, blocks in names.items():
        opt = getattr(gradtx, name)(1e-3)
        assert [type(t).__name__ for t in opt.transforms] == blocks, name
