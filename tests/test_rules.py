"""Parameter groups by path rules, and reading states with tree_utils."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from cases import gradient_sequence
from conftest import reference_numerics
from flax import nnx

import gradtx
from gradtx.testing import assert_close_to_scale, run_updates

PARAMS = {
    "embed": jnp.ones((5, 2)),
    "encoder": {"dense": {"kernel": jnp.ones((2, 2)), "bias": jnp.zeros(2)}, "norm": {"scale": jnp.ones(2)}},
    "head": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)},
}
GRADS = gradient_sequence(PARAMS, 50)


def test_rules_give_optax_numbers():
    """No decay on biases and norm scales, 0.1x rate on the embedding, a frozen encoder
    kernel: equal to the same groups written with optax.partition."""
    opt = gradtx.path_rules(
        gradtx.adamw(1e-2, weight_decay=0.1),
        [
            ("*bias", {"weight_decay": 0.0}),
            ("*norm/scale", {"weight_decay": 0.0}),
            ("embed", {"learning_rate": 1e-3}),
            ("encoder/dense/kernel", gradtx.set_to_zero()),
        ],
    )
    labels = {
        "embed": "embed",
        "encoder": {"dense": {"kernel": "frozen", "bias": "no_decay"}, "norm": {"scale": "no_decay"}},
        "head": {"kernel": "default", "bias": "no_decay"},
    }
    reference = optax.partition(
        {
            "default": optax.adamw(1e-2, weight_decay=0.1),
            "no_decay": optax.adamw(1e-2, weight_decay=0.0),
            "embed": optax.adamw(1e-3, weight_decay=0.1),
            "frozen": optax.set_to_zero(),
        },
        labels,
    )
    ours, _ = run_updates(opt, PARAMS, GRADS)
    with reference_numerics():
        theirs, _ = run_updates(reference, PARAMS, GRADS)
    assert_close_to_scale(ours, theirs, 1e-6, "path_rules")
    assert float(jnp.max(jnp.abs(ours["encoder"]["dense"]["kernel"]))) == 0.0


def test_a_doubled_and_a_missing_match_name_the_paths():
    doubled = gradtx.path_rules(
        gradtx.sgd(0.1), [("*bias", {"learning_rate": 0.0}), ("head/*", gradtx.sgd(1.0))]
    )
    with pytest.raises(
        ValueError, match=r"'head/bias' matches 2 rules: rule 0 \('\*bias'\), rule 1 \('head/\*'\)"
    ):
        doubled.init(PARAMS)
    missing = gradtx.path_rules(None, [("encoder/*", gradtx.sgd(0.1)), ("head/*", gradtx.sgd(1.0))])
    with pytest.raises(ValueError, match="'embed' matches no rule and there is no default") as error:
        missing.init(PARAMS)
    assert "1 parameter(s) wrong" in str(error.value)
    with pytest.raises(
        ValueError, match=r"\['lr'\] are not hyperparameters of adam; it has \[.*'learning_rate'"
    ):
        gradtx.path_rules(gradtx.adam(1e-3), [("*", {"lr": 0.1})])


def test_explain_lists_every_path_with_its_rule_and_settings():
    opt = gradtx.path_rules(
        gradtx.adamw(1e-2, weight_decay=0.1),
        [
            ("*bias", {"weight_decay": 0.0}),
            ("embed", {"learning_rate": 1e-3}),
            ("encoder/norm/*", gradtx.freeze(True)),
        ],
    )
    lines = gradtx.explain(opt, PARAMS).splitlines()
    assert len(lines) == 6
    assert lines[0].split() == ["embed", "rule", "1", "'embed'", "learning_rate=0.001", "weight_decay=0.1"]
    assert lines[1].split()[:4] == ["encoder/dense/bias", "rule", "0", "'*bias'"]
    assert lines[1].split()[-1] == "weight_decay=0.0"
    assert lines[3].split() == ["encoder/norm/scale", "rule", "2", "'encoder/norm/*'", "masked"]
    assert lines[4].split() == ["head/bias", "rule", "0", "'*bias'", "learning_rate=0.01", "weight_decay=0.0"]
    assert lines[5].split() == ["head/kernel", "default", "learning_rate=0.01", "weight_decay=0.1"]


def test_rules_are_data_equal_rules_compare_equal():
    def build():
        return gradtx.path_rules(gradtx.adam(1e-3), [("*bias", {"learning_rate": 0.0})])

    assert build() == build() and hash(build()) == hash(build())


def test_rules_on_flax_nnx_state_and_equinox_modules():
    model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    state = nnx.state(model, nnx.Param)
    opt = gradtx.path_rules(gradtx.sgd(0.1), [("bias", {"learning_rate": 0.0})])
    assert gradtx.explain(opt, state).split() == [
        "bias",
        "rule",
        "0",
        "'bias'",
        "learning_rate=0.0",
        "kernel",
        "default",
        "learning_rate=0.1",
    ]
    grads = jax.tree.map(jnp.ones_like, state)
    updates, _ = opt.update(grads, opt.init(state), state)
    np.testing.assert_array_equal(updates["bias"][...], jnp.zeros(3))
    np.testing.assert_array_equal(updates["kernel"][...], jnp.full((2, 3), -0.1))

    mlp = eqx.nn.MLP(2, 2, 4, 1, key=jax.random.key(0))
    params = eqx.filter(mlp, eqx.is_array)
    opt = gradtx.path_rules(gradtx.sgd(0.1), [("layers/*/bias", gradtx.set_to_zero())])
    rows = gradtx.explain(opt, params).splitlines()
    assert [r.split()[0] for r in rows] == [
        "layers/0/bias",
        "layers/0/weight",
        "layers/1/bias",
        "layers/1/weight",
    ]
    updates, _ = opt.update(jax.tree.map(jnp.ones_like, params), opt.init(params), params)
    np.testing.assert_array_equal(updates.layers[0].bias, jnp.zeros(4))
    np.testing.assert_array_equal(updates.layers[1].weight, jnp.full((2, 4), -0.1))


def test_rules_on_packed_parameters_give_plain_numbers():
    opt = gradtx.path_rules(gradtx.adamw(1e-2, weight_decay=0.1), [("*bias", {"weight_decay": 0.0})])
    packed = gradtx.pack(PARAMS, group=lambda path, x: x.ndim > 1)
    plain, _ = run_updates(opt, PARAMS, GRADS)
    ours, _ = run_updates(opt, packed, jax.vmap(packed.layout.pack)(GRADS))
    assert_close_to_scale(jax.vmap(lambda u: u.unpack())(ours), plain, 1e-6, "packed rules")


def _step(state):
    value = gradtx.tree_utils.step(state)
    assert value is not None
    return int(value)


# --- tree_utils ------------------------------------------------------------------------


def test_tree_get_and_set_follow_optax():
    opt_state = optax.adam(1e-3).init(PARAMS)
    for key in ("mu", "nu", "ScaleByAdamState"):
        ours = gradtx.tree_utils.tree_get_all_with_path(opt_state, key)
        theirs = optax.tree_utils.tree_get_all_with_path(opt_state, key)
        assert [str(p[-1]) for p, _ in ours] == [str(p[-1]) for p, _ in theirs]
    changed = gradtx.tree_utils.tree_set(opt_state, count=jnp.asarray(7))
    assert int(optax.tree_utils.tree_get(changed, "count")) == 7
    assert gradtx.tree_utils.tree_get(opt_state, "missing", default="none") == "none"
    with pytest.raises(KeyError, match="found no value for 'missing'"):
        gradtx.tree_utils.tree_set(opt_state, missing=1)


def test_the_step_is_one_call_where_tree_get_count_is_ambiguous():
    opt = gradtx.adam(1e-3)
    state = opt.init(PARAMS)
    for _ in range(3):
        _, state = opt.update(PARAMS, state, PARAMS)
    with pytest.raises(KeyError, match=r"found 3 values for 'count'.*gradtx.tree_utils.step"):
        gradtx.tree_utils.tree_get(state, "count")
    assert _step(state) == 3
    assert _step(optax.adam(1e-3).init(PARAMS)) == 0
    assert gradtx.tree_utils.step(gradtx.clip(1.0).init(PARAMS)) is None
    mu = gradtx.tree_utils.tree_get(state, "mu")
    assert jax.tree.structure(mu) == jax.tree.structure(PARAMS)
