"""Errors explain themselves: bad hyperparameters at construction, mismatched trees at
trace time, both naming the transform."""

import jax
import jax.numpy as jnp
import pytest

import gradtx


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: gradtx.adam(-1e-3), ["adam", "learning_rate", "-0.001", ">= 0"]),
        (lambda: gradtx.adam(1e-3, b1=1.0), ["adam", "b1", "[0, 1)", "1.0"]),
        (lambda: gradtx.adamw(1e-3, b2=-0.1), ["adamw", "b2", "-0.1"]),
        (lambda: gradtx.rmsprop(1e-3, decay=1.5), ["rmsprop", "decay", "1.5"]),
        (lambda: gradtx.sgd(0.1, momentum=1.2), ["sgd", "momentum", "1.2"]),
        (lambda: gradtx.adagrad(0.1, eps=-1e-7), ["adagrad", "eps", "-1e-07"]),
        (lambda: gradtx.adam(float("nan")), ["adam", "learning_rate", "nan"]),
        (lambda: gradtx.scale_by_rms(decay=1.5), ["scale_by_rms", "decay", "[0, 1]", "1.5"]),
        (lambda: gradtx.momentum(b1=-0.5), ["momentum", "b1", "-0.5"]),
        (lambda: gradtx.ema(decay=2.0), ["ema", "decay", "2.0"]),
        (lambda: gradtx.scale_by_learning_rate(-0.1), ["scale_by_learning_rate", "learning_rate"]),
        (lambda: gradtx.clip_by_global_norm(-1.0), ["clip_by_global_norm", "max_norm"]),
        (lambda: gradtx.add_decayed_weights(-0.1), ["add_decayed_weights", "weight_decay"]),
        (lambda: gradtx.adam(jnp.array([1e-3, -1e-3])), ["adam", "learning_rate"]),
        (
            lambda: gradtx.sgd(0.1, 0.9, momentum_form="heavy"),  # pyright: ignore[reportArgumentType]
            ["sgd", "momentum_form", "heavy"],
        ),
        (lambda: gradtx.adam(0.1, nesterov=True, debias_step_size=True), ["adam", "nesterov"]),
        (lambda: gradtx.named_chain(("a", gradtx.clip(1.0)), ("a", gradtx.clip(2.0))), ["unique", "'a'"]),
    ],
)
def test_bad_hyperparameters_raise_when_built(build, words):
    with pytest.raises(ValueError) as info:
        build()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_traced_hyperparameters_are_not_checked():
    @jax.jit
    def step(lr):
        opt = gradtx.sgd(lr)
        return opt.update(jnp.ones(2), opt.init(jnp.zeros(2)))[0]

    assert step(-1.0).tolist() == [1.0, 1.0]  # traced: no check, the math runs


def test_not_a_transform():
    with pytest.raises(TypeError, match="chain: expected a transform"):
        gradtx.chain(0.1)


def test_gradient_tree_with_other_keys():
    opt = gradtx.adam(1e-3)
    state = opt.init({"a": jnp.zeros(2), "b": jnp.zeros(3)})
    with pytest.raises(ValueError) as info:
        jax.jit(opt.update)({"a": jnp.zeros(2), "c": jnp.zeros(3)}, state)
    text = str(info.value)
    assert "momentum" in text and "['c']" in text and "['b']" in text and "'mu'" in text


def test_gradient_leaf_with_other_shape():
    opt = gradtx.sgd(0.1, momentum=0.9)
    state = opt.init({"w": jnp.zeros((3, 4))})
    with pytest.raises(ValueError) as info:
        opt.update({"w": jnp.zeros((4, 3))}, state)
    text = str(info.value)
    assert "trace" in text and "['w']" in text and "(4, 3)" in text and "(3, 4)" in text


def test_gradient_tree_with_extra_leaf():
    opt = gradtx.rmsprop(1e-3)
    state = opt.init([jnp.zeros(2)])
    with pytest.raises(ValueError, match="scale_by_rms: the updates do not have the structure"):
        opt.update([jnp.zeros(2), jnp.zeros(2)], state)


def test_state_of_another_optimizer():
    with pytest.raises(ValueError, match="adam: expected a state tuple of 3 entries"):
        gradtx.adam(1e-3).update(jnp.zeros(2), gradtx.sgd(0.1).init(jnp.zeros(2)))


def test_weight_decay_needs_params():
    opt = gradtx.adamw(1e-3)
    with pytest.raises(ValueError, match="add_decayed_weights: update needs the parameters"):
        opt.update(jnp.zeros(2), opt.init(jnp.zeros(2)))
