"""gradtx.losses and gradtx.projections against optax: values and gradients, with
``where=`` masks, integer labels, ``-inf`` logits and padded sequences, on small
float32 inputs (optax's own test modules also run against gradtx:
``benchmarks/optax_test_modules.py``)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import reference_numerics

import gradtx

rng = np.random.default_rng(0)
LOGITS = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
PROBS = jax.nn.softmax(jnp.asarray(rng.normal(size=(3, 5)), jnp.float32))
INT_LABELS = jnp.array([0, 3, 4])
MASK = jnp.array([[True, True, False, True, True], [True] * 5, [False, True, True, True, False]])
BINARY = jnp.asarray(rng.integers(0, 2, size=(3, 5)), jnp.float32)
SIGNS = 2.0 * BINARY - 1.0
TARGETS = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
SEG_LOGITS = jnp.asarray(rng.normal(size=(2, 4, 4, 3)), jnp.float32)
SEG_TARGETS = jax.nn.one_hot(jnp.asarray(rng.integers(0, 3, size=(2, 4, 4))), 3)
EMBEDDINGS = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)

# name: (arguments, keyword arguments, index of the argument differentiated)
CASES = {
    "sigmoid_binary_cross_entropy": ((LOGITS, BINARY), {}, 0),
    "hinge_loss": ((LOGITS, SIGNS), {}, 0),
    "perceptron_loss": ((LOGITS, SIGNS), {}, 0),
    "sparsemax_loss": ((LOGITS, BINARY), {}, 0),
    "safe_softmax_cross_entropy": ((LOGITS, PROBS), {}, 0),
    "softmax_cross_entropy": ((LOGITS, PROBS), {}, 0),
    "softmax_cross_entropy[where]": ((LOGITS, PROBS), {"where": MASK}, 0),
    "softmax_cross_entropy[axis=0]": ((LOGITS, PROBS), {"axis": 0}, 0),
    "softmax_cross_entropy_with_integer_labels": ((LOGITS, INT_LABELS), {}, 0),
    "softmax_cross_entropy_with_integer_labels[where]": ((LOGITS, INT_LABELS), {"where": MASK}, 0),
    "softmax_cross_entropy_with_integer_labels[axes]": (
        (LOGITS.reshape(3, 1, 5), INT_LABELS),
        {"axis": (1, 2)},
        0,
    ),
    "multiclass_hinge_loss": ((LOGITS, INT_LABELS), {}, 0),
    "multiclass_perceptron_loss": ((LOGITS, INT_LABELS), {}, 0),
    "multiclass_sparsemax_loss": ((LOGITS, INT_LABELS), {}, 0),
    "poly_loss_cross_entropy": ((LOGITS, PROBS), {"epsilon": 1.5}, 0),
    "poly_loss_cross_entropy[where]": ((LOGITS, PROBS), {"where": MASK}, 0),
    "kl_divergence": ((jnp.log(PROBS), PROBS[::-1]), {}, 0),
    "kl_divergence[where]": ((jnp.log(PROBS), PROBS[::-1]), {"where": MASK}, 0),
    "kl_divergence_with_log_targets": ((jnp.log(PROBS), jnp.log(PROBS[::-1])), {}, 0),
    "generalized_kl_divergence": ((LOGITS, PROBS), {}, 0),
    "sigmoid_focal_loss": ((LOGITS, BINARY), {}, 0),
    "sigmoid_focal_loss[alpha]": ((LOGITS, BINARY), {"alpha": 0.25, "gamma": 1.5}, 0),
    "smooth_labels": ((PROBS, 0.1), {}, 0),
    "smooth_labels[where]": ((PROBS, 0.1), {"where": MASK}, 0),
    "squared_error": ((LOGITS, TARGETS), {}, 0),
    "l2_loss": ((LOGITS,), {}, 0),
    "huber_loss": ((3 * LOGITS, TARGETS), {"delta": 0.7}, 0),
    "log_cosh": ((30 * LOGITS, TARGETS), {}, 0),
    "cosine_similarity": ((LOGITS, TARGETS), {"epsilon": 1e-6}, 0),
    "cosine_distance[where]": ((LOGITS, TARGETS), {"where": MASK}, 0),
    "ntxent": ((EMBEDDINGS, jnp.array([0, 1, 0, 1, 2, 2])), {"temperature": 0.5}, 0),
    "triplet_margin_loss": ((LOGITS, TARGETS, LOGITS[::-1]), {"margin": 0.5}, 0),
    "ranking_softmax_loss": ((LOGITS, BINARY), {}, 0),
    "ranking_softmax_loss[where]": ((LOGITS, BINARY), {"where": MASK, "weights": PROBS}, 0),
    "ranking_softmax_loss[none]": ((LOGITS, BINARY), {"where": MASK, "reduce_fn": None}, 0),
    "dice_loss": ((SEG_LOGITS, SEG_TARGETS), {}, 0),
    "dice_loss[tversky]": (
        (SEG_LOGITS, SEG_TARGETS),
        {"alpha": 0.3, "beta": 0.7, "reduction": "none", "ignore_background": True},
        0,
    ),
    "multiclass_generalized_dice_loss": ((SEG_LOGITS, SEG_TARGETS), {}, 0),
    "binary_dice_loss": ((SEG_LOGITS[..., 0], SEG_TARGETS[..., 0]), {}, 0),
}


def _call(module, name, args, kwargs):
    return getattr(module, name.split("[")[0])(*args, **kwargs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_and_its_gradient_are_optax(name):
    args, kwargs, wrt = CASES[name]

    def scalar(module):
        def f(x):
            full = list(args)
            full[wrt] = x
            return jnp.sum(_call(module, name, full, kwargs))

        return f

    # jitted: one compile each instead of many eager operations
    ours, our_grad = jax.jit(jax.value_and_grad(scalar(gradtx.losses)))(args[wrt])
    with reference_numerics():
        theirs, their_grad = jax.jit(jax.value_and_grad(scalar(optax.losses)))(args[wrt])
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(our_grad, their_grad, rtol=1e-5, atol=1e-6)
    assert np.isfinite(np.asarray(our_grad)).all()


def test_safe_softmax_cross_entropy_is_finite_at_minus_infinity():
    # a class ruled out (-inf logit, label 0): the plain cross-entropy's gradient is nan
    logits = jnp.array([[0.0, -jnp.inf, 1.0]])
    labels = jnp.array([[0.5, 0.0, 0.5]])
    value, grad = jax.value_and_grad(lambda x: gradtx.losses.safe_softmax_cross_entropy(x, labels).sum())(
        logits
    )
    with reference_numerics():
        their_value, their_grad = jax.value_and_grad(
            lambda x: optax.losses.safe_softmax_cross_entropy(x, labels).sum()
        )(logits)
    np.testing.assert_allclose(value, their_value, rtol=1e-6)
    np.testing.assert_array_equal(grad, their_grad)
    # by hand: p = softmax = (1, 0, e) / (1 + e); grad = p - y
    p = np.array([1.0, 0.0, np.e]) / (1 + np.e)
    np.testing.assert_allclose(grad[0], p - np.array([0.5, 0.0, 0.5]), rtol=1e-6)
    # the plain one's value is nan there (0 * log 0)
    assert np.isnan(gradtx.losses.softmax_cross_entropy(logits, labels)).all()


def test_integer_labels_equal_one_hot_labels_and_are_checked():
    one_hot = jax.nn.one_hot(INT_LABELS, 5)
    np.testing.assert_allclose(
        gradtx.losses.softmax_cross_entropy_with_integer_labels(LOGITS, INT_LABELS),
        gradtx.losses.softmax_cross_entropy(LOGITS, one_hot),
        rtol=1e-6,
    )
    with pytest.raises(
        TypeError, match="softmax_cross_entropy_with_integer_labels: `labels` must hold integer"
    ):
        gradtx.losses.softmax_cross_entropy_with_integer_labels(LOGITS, one_hot)
    with pytest.raises(TypeError, match="softmax_cross_entropy: `logits` must hold floating-point"):
        gradtx.losses.softmax_cross_entropy(INT_LABELS, one_hot)


def _paddings(lengths, size):
    return (jnp.arange(size)[None, :] >= jnp.asarray(lengths)[:, None]).astype(jnp.float32)


def test_ctc_loss_and_forward_probabilities_are_optax():
    logits = jnp.asarray(rng.normal(size=(2, 6, 4)), jnp.float32)
    labels = jnp.array([[1, 1, 2], [3, 2, 0]])  # a repeated label, and a padded one
    args = (logits, _paddings([6, 5], 6), labels, _paddings([3, 2], 3))
    ours = jax.jit(gradtx.losses.ctc_loss_with_forward_probs)(*args)
    with reference_numerics():
        theirs = jax.jit(optax.losses.ctc_loss_with_forward_probs)(*args)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    grad = jax.jit(jax.grad(lambda x: gradtx.losses.ctc_loss(x, *args[1:]).sum()))(logits)
    with reference_numerics():
        their_grad = jax.jit(jax.grad(lambda x: optax.losses.ctc_loss(x, *args[1:]).sum()))(logits)
    np.testing.assert_allclose(grad, their_grad, rtol=1e-5, atol=1e-6)


def test_ctc_loss_of_a_one_frame_per_label_sequence_is_its_path():
    # with as many frames as labels and no repeats, the only path emits one label per frame
    logits = jnp.asarray(rng.normal(size=(1, 3, 5)), jnp.float32)
    labels = jnp.array([[2, 4, 1]])
    loss = gradtx.losses.ctc_loss(logits, jnp.zeros((1, 3)), labels, jnp.zeros((1, 3)))
    log_probs = np.asarray(jax.nn.log_softmax(logits))[0]
    np.testing.assert_allclose(loss[0], -(log_probs[0, 2] + log_probs[1, 4] + log_probs[2, 1]), rtol=1e-5)


def test_losses_fold_under_jit_and_vmap():
    f = jax.jit(jax.vmap(gradtx.losses.softmax_cross_entropy_with_integer_labels))
    np.testing.assert_allclose(
        f(LOGITS, INT_LABELS), gradtx.losses.softmax_cross_entropy_with_integer_labels(LOGITS, INT_LABELS)
    )
    # dice with probabilities is checked outside jit, used as given inside it
    probs = jax.nn.softmax(SEG_LOGITS)
    np.testing.assert_allclose(
        jax.jit(lambda p: gradtx.losses.dice_loss(p, SEG_TARGETS, apply_softmax=False))(probs),
        gradtx.losses.dice_loss(probs, SEG_TARGETS, apply_softmax=False),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match=r"dice_loss: .*valid probability distributions"):
        gradtx.losses.dice_loss(SEG_LOGITS, SEG_TARGETS, apply_softmax=False)


def test_the_top_level_losses_are_the_module_s():
    for name in dir(optax.losses):
        if not name.startswith("_") and hasattr(optax, name):
            assert getattr(gradtx, name) is getattr(gradtx.losses, name), name


TREE = {"a": jnp.array([0.5, -2.0, 1.5]), "b": jnp.array([[0.25, -0.75]])}
DIRECTION = {"a": jnp.array([1.0, 0.0, -1.0]), "b": jnp.array([[2.0, 1.0]])}
PROJECTIONS = {
    "projection_non_negative": ((TREE,), {}),
    "projection_box": ((TREE, jax.tree.map(lambda x: -x, DIRECTION), DIRECTION), {}),
    "projection_hypercube": ((TREE["a"],), {"scale": 0.8}),  # optax: one array, or bounds as a tree
    "projection_simplex": ((TREE,), {"scale": 2.0}),
    "projection_l1_sphere": ((TREE,), {"scale": 1.5}),
    "projection_l1_ball": ((TREE,), {"scale": 1.5}),
    "projection_l1_ball[inside]": ((TREE,), {"scale": 10.0}),
    "projection_l2_sphere": ((TREE,), {"scale": 2.0}),
    "projection_l2_ball": ((TREE,), {"scale": 2.0}),
    "projection_linf_ball": ((TREE,), {"scale": 0.6}),
    "projection_vector": ((TREE, DIRECTION), {}),
    "projection_hyperplane": ((TREE, DIRECTION, 0.5), {}),
    "projection_halfspace": ((TREE, DIRECTION, -1.0), {}),
    "projection_halfspace[inside]": ((TREE, DIRECTION, 10.0), {}),
}


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
def test_projection_and_its_jacobian_are_optax(name):
    args, kwargs = PROJECTIONS[name]

    def weighted(module):
        # a scalar of the projection whose gradient is a Jacobian-vector product
        def f(tree):
            out = _call(module, name, (tree, *args[1:]), kwargs)
            return sum(jnp.sum((1.0 - 3.0 * i) * leaf) for i, leaf in enumerate(jax.tree.leaves(out)))

        return f

    ours = jax.jit(lambda t: _call(gradtx.projections, name, (t, *args[1:]), kwargs))(args[0])
    our_grad = jax.jit(jax.grad(weighted(gradtx.projections)))(args[0])
    with reference_numerics():
        theirs = jax.jit(lambda t: _call(optax.projections, name, (t, *args[1:]), kwargs))(args[0])
        their_grad = jax.jit(jax.grad(weighted(optax.projections)))(args[0])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), ours, theirs)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), our_grad, their_grad)


def test_simplex_projection_by_hand():
    # sorted (1, 0.75, 0.25): two entries in the support, threshold (1.75 - 1) / 2
    out = gradtx.projections.projection_simplex(jnp.array([0.75, 0.25, 1.0]))
    np.testing.assert_allclose(out, [0.375, 0.0, 0.625], rtol=1e-6)
    # its Jacobian on the support is the centring matrix: a push on one entry moves the
    # other half as much the other way, and nothing off the support moves
    jac = jax.jacobian(gradtx.projections.projection_simplex)(jnp.array([0.75, 0.25, 1.0]))
    np.testing.assert_allclose(jac, [[0.5, 0, -0.5], [0, 0, 0], [-0.5, 0, 0.5]], atol=1e-7)


def test_box_bounds_given_as_numbers_bound_every_leaf():
    # optax raises a structure error here unless the tree is one array; gradtx broadcasts
    out = gradtx.projections.projection_box(TREE, -1.0, 1.0)
    jax.tree.map(lambda o, x: np.testing.assert_array_equal(o, np.clip(x, -1.0, 1.0)), out, TREE)
    out = gradtx.projections.projection_hypercube(TREE, scale=0.8)
    jax.tree.map(lambda o, x: np.testing.assert_array_equal(o, np.clip(x, 0.0, 0.8)), out, TREE)
