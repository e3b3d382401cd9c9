"""optax's numerical tools in gradtx against optax's: second_order, perturbations, the
linear algebra at the top level (power_iteration, matrix_inverse_pth_root, nnls) and
multi_normal, with hand-checked values (optax's own test modules also run against
gradtx: ``benchmarks/optax_test_modules.py``)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import reference_numerics
from jax.flatten_util import ravel_pytree

import gradtx

rng = np.random.default_rng(0)
W = {
    "a": jnp.asarray(rng.normal(size=(3,)), jnp.float32),
    "b": jnp.asarray(rng.normal(size=(2, 2)), jnp.float32),
}
X = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
Y = jnp.asarray(rng.normal(size=(5, 2)), jnp.float32)


def loss(params, inputs, targets):
    hidden = jnp.tanh(inputs * params["a"][None, :])[:, :2]
    return jnp.sum((hidden @ params["b"] - targets) ** 2)


@pytest.mark.parametrize("name", ["hvp", "hessian_diag", "fisher_diag"])
def test_second_order_is_optax(name):
    v = jnp.asarray(rng.normal(size=(7,)), jnp.float32)
    args = (loss, v, W, X, Y) if name == "hvp" else (loss, W, X, Y)
    with pytest.warns(DeprecationWarning, match=f"{name} is deprecated"):
        ours = getattr(gradtx.second_order, name)(*args)
    with reference_numerics(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = getattr(optax.second_order, name)(*args)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), ours, theirs)


def test_hessian_diag_is_the_diagonal_of_jax_hessian():
    flat, unravel = ravel_pytree(W)
    full = jax.jit(jax.hessian(lambda f: loss(unravel(f), X, Y)))(flat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        diag = jax.jit(lambda w: gradtx.second_order.hessian_diag(loss, w, X, Y))(W)
    np.testing.assert_allclose(diag, np.diag(full), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("noise", ["Gumbel", "Normal"])
@pytest.mark.parametrize("use_baseline", [True, False])
def test_perturbed_function_and_its_gradient_are_optax(noise, use_baseline):
    def fun(x):
        return jax.nn.one_hot(jnp.argmax(x["u"]), 3) * jnp.sum(x["v"])

    x = {"u": jnp.array([0.3, 0.1, -0.2]), "v": jnp.array([1.0, 2.0])}
    key = jax.random.key(3)

    def run(module):
        smooth = module.make_perturbed_fun(fun, 64, 0.5, getattr(module, noise)(), use_baseline)
        return jax.jit(jax.value_and_grad(lambda x: jnp.sum(smooth(key, x) * jnp.arange(3.0))))(x)

    ours = run(gradtx.perturbations)
    with reference_numerics():
        theirs = run(optax.perturbations)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), ours, theirs)


def test_perturbed_sign_has_the_smoothed_derivative():
    # E[sign(x + z)] = 2 Phi(x) - 1 for z ~ N(0, 1): its derivative is 2 phi(x)
    smooth = gradtx.perturbations.make_perturbed_fun(jnp.sign, 20000, 1.0, gradtx.perturbations.Normal())
    value, grad = jax.jit(jax.value_and_grad(lambda x: smooth(jax.random.key(0), x)))(jnp.float32(0.3))
    phi = np.exp(-0.045) / np.sqrt(2 * np.pi)
    assert abs(float(grad) - 2 * phi) < 0.05
    assert abs(float(value) - 0.2358) < 0.03


SPD = jnp.asarray(np.cov(rng.normal(size=(4, 12))) + 0.1 * np.eye(4), jnp.float32)


def test_power_iteration_is_optax_and_the_largest_eigenvalue():
    ours = gradtx.power_iteration(SPD)
    with reference_numerics():
        theirs = optax.power_iteration(SPD)
    np.testing.assert_allclose(np.asarray(ours[0]), np.asarray(theirs[0]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ours[1]), np.asarray(theirs[1]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours[0], np.linalg.eigvalsh(np.asarray(SPD, np.float64))[-1], rtol=1e-4)


@pytest.mark.parametrize("p", [2, 4])
def test_matrix_inverse_pth_root_is_optax_and_the_root(p):
    root, error = gradtx.matrix_inverse_pth_root(SPD, p)
    with reference_numerics():
        their_root, their_error = optax.matrix_inverse_pth_root(SPD, p)
    np.testing.assert_allclose(root, their_root, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(error, their_error, rtol=1e-5, atol=1e-7)
    values, vectors = np.linalg.eigh(np.asarray(SPD, np.float64))
    exact = vectors @ np.diag(values ** (-1.0 / p)) @ vectors.T
    np.testing.assert_allclose(root, exact, rtol=2e-3, atol=2e-3)


def test_nnls_is_optax_and_solves_the_problem():
    A = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(6,)), jnp.float32)
    ours = gradtx.nnls(A, b, iters=200)
    with reference_numerics():
        theirs = optax.nnls(A, b, iters=200)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    # the KKT conditions: x >= 0, gradient >= 0, complementary
    grad = np.asarray(A.T @ (A @ ours - b))
    assert (np.asarray(ours) >= 0).all() and (grad > -1e-4).all()
    np.testing.assert_allclose(np.asarray(ours) * grad, 0.0, atol=1e-4)


def test_multi_normal_is_optax():
    loc, log_scale = jnp.array([0.5, -1.0]), jnp.array([0.1, -0.3])
    ours, theirs = gradtx.multi_normal(loc, log_scale), optax.multi_normal(loc, log_scale)
    key = jax.random.key(4)
    x = jnp.array([[0.0, 0.0], [1.0, -2.0]])
    with reference_numerics():
        their_sample, their_log_prob = theirs.sample((3,), key), theirs.log_prob(x)
    np.testing.assert_array_equal(ours.sample((3,), key), their_sample)
    np.testing.assert_allclose(ours.log_prob(x), their_log_prob, rtol=1e-6)
    # by hand: sum of the two coordinates' normal log-densities
    z = (np.array([1.0, -2.0]) - np.array([0.5, -1.0])) / np.exp([0.1, -0.3])
    hand = np.sum(-0.5 * z**2 - np.array([0.1, -0.3]) - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(ours.log_prob(x)[1], hand, rtol=1e-6)


# --- microbatching ------------------------------------------------------------------------

BATCH = jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)


@pytest.mark.parametrize("kind", ["SUM", "MEAN", "RUNNING_MEAN", "CONCAT"])
def test_microbatch_is_optax_and_the_whole_batch(kind):
    def fun(x, scale):
        return {"sum": scale * jnp.sum(x, axis=0), "rows": x[:, :1]}

    def run(module, real=None):
        acc = getattr(module.AccumulationType, kind)
        return module.microbatch(fun, 0, 2, {"sum": acc, "rows": module.AccumulationType.CONCAT},
                                 num_real_microbatches=real)(BATCH, 2.0)  # fmt: skip

    ours = run(gradtx.microbatching)
    with reference_numerics():
        theirs = run(optax.microbatching)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), ours, theirs)
    # by hand: four microbatches of two examples (0 and 4, 1 and 5, ...)
    whole = 2.0 * np.asarray(BATCH).reshape(2, 4, 3).sum(axis=0)  # per microbatch
    expected = {"SUM": whole.sum(0), "MEAN": whole.mean(0), "RUNNING_MEAN": whole.mean(0)}
    if kind in expected:
        np.testing.assert_allclose(ours["sum"], expected[kind], rtol=1e-5)
    np.testing.assert_array_equal(ours["rows"], BATCH[:, :1])  # concatenated in batch order
    # two real microbatches of four: the running mean is the mean of those two
    partial = run(gradtx.microbatching, real=2)
    with reference_numerics():
        their_partial = run(optax.microbatching, real=2)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), partial, their_partial)


def test_micro_grad_clips_each_example_as_optax():
    w = jnp.array([0.5, -1.0, 2.0])

    def loss(params, x):
        return jnp.sum(jnp.tanh(x @ params))

    def clip(g):
        return g / jnp.maximum(1.0, jnp.linalg.norm(g))

    def run(module):
        grad_fn = module.micro_grad(loss, microbatch_size=4, transform_fn=clip, metrics_fn=jnp.linalg.norm)
        return grad_fn(w, BATCH)

    grad, aux = run(gradtx.microbatching)
    with reference_numerics():
        their_grad, their_aux = run(optax.microbatching)
    np.testing.assert_allclose(grad, their_grad, rtol=1e-6)
    np.testing.assert_allclose(aux.values, their_aux.values, rtol=1e-6)
    np.testing.assert_allclose(aux.metrics, their_aux.metrics, rtol=1e-6)
    # by hand: each example's gradient, clipped to norm 1, summed
    per_example = jax.vmap(jax.grad(lambda p, x: loss(p, x[None])), in_axes=(None, 0))(w, BATCH)
    norms = np.linalg.norm(per_example, axis=1, keepdims=True)
    np.testing.assert_allclose(grad, (per_example / np.maximum(1.0, norms)).sum(0), rtol=1e-5)
    np.testing.assert_allclose(aux.metrics, norms[:, 0], rtol=1e-5)


def test_micro_vmap_is_vmap():
    f = gradtx.microbatching.micro_vmap(lambda x, y: jnp.sin(x) * y, in_axes=(0, None), microbatch_size=2)
    np.testing.assert_allclose(f(BATCH, 3.0), jax.vmap(lambda x: jnp.sin(x) * 3.0)(BATCH), rtol=1e-6)


def test_microbatch_takes_optax_s_accumulation_types_too():
    total = gradtx.microbatching.microbatch(jnp.sum, 0, 2, optax.microbatching.AccumulationType.MEAN)
    np.testing.assert_allclose(total(BATCH), np.asarray(BATCH).sum() / 4, rtol=1e-6)


# --- assignment ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (5, 5), (3, 7), (7, 3), (6, 6)])
@pytest.mark.parametrize("name", ["hungarian_algorithm", "base_hungarian_algorithm"])
def test_assignment_is_optax_and_least_cost(name, shape):
    from scipy.optimize import linear_sum_assignment

    costs = jnp.asarray(rng.normal(size=shape), jnp.float32)
    ours = jax.jit(getattr(gradtx.assignment, name))(costs)
    with reference_numerics():
        theirs = jax.jit(getattr(optax.assignment, name))(costs)
    np.testing.assert_array_equal(ours[0], theirs[0])  # the same pairs in the same order
    np.testing.assert_array_equal(ours[1], theirs[1])
    rows, cols = linear_sum_assignment(np.asarray(costs))
    np.testing.assert_allclose(costs[ours].sum(), np.asarray(costs)[rows, cols].sum(), rtol=1e-5)
    batched = jax.vmap(getattr(gradtx.assignment, name))(jnp.stack([costs, -costs]))
    np.testing.assert_array_equal(batched[0][0], ours[0])


# --- optax's state layout, read from gradtx's ---------------------------------------------


@pytest.mark.parametrize(
    "name, view",
    [
        ("adam", "ScaleByAdamState"),
        ("adamw", "ScaleByAdamState"),
        ("amsgrad", "ScaleByAmsgradState"),
        ("novograd", "ScaleByNovogradState"),
        ("scale_by_stddev", "ScaleByRStdDevState"),
    ],
)
def test_optax_state_layout_of_a_gradtx_state_equals_optax_s_state(name, view):
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    build = (lambda m: getattr(m, name)()) if name.startswith("scale") else (lambda m: getattr(m, name)(0.1))
    ours, theirs = build(gradtx), build(optax)
    state, their_state = ours.init(params), theirs.init(params)
    for t in range(3):
        grads = jax.tree.map(lambda p, t=t: jnp.cos(p * (t + 1)), params)
        _, state = ours.update(grads, state, params)
        with reference_numerics():
            _, their_state = theirs.update(grads, their_state, params)
    mine = getattr(gradtx, view).of(state)
    # optax's own state of that type (scale_by_stddev's is ScaleByRStdDevWithCountState)
    names = (view, "ScaleByRStdDevWithCountState")
    found = jax.tree.leaves(their_state, is_leaf=lambda x: type(x).__name__ in names)
    reference = next(s for s in found if type(s).__name__ in names)
    assert type(mine).__name__ == view and mine._fields == getattr(optax, view)._fields
    for field in mine._fields:
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-7),
            getattr(mine, field),
            getattr(reference, field),
        )


def test_reading_adam_s_nu_where_optax_keeps_it_says_where_gradtx_does():
    state = gradtx.adam(0.1).init({"w": jnp.zeros(2)})
    np.testing.assert_array_equal(state[0].mu["w"], np.zeros(2))  # the first moment: as in optax
    with pytest.raises(AttributeError, match=r"state\[1\]\.nu for gradtx\.adam.*ScaleByAdamState\.of"):
        _ = state[0].nu
