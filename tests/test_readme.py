"""The README's code runs and says what it prints; its claims are tested here or named
tests elsewhere."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
from cases import gradient_sequence, params_like
from conftest import reference_numerics

import gradtx
from gradtx.testing import run_updates, scaled_difference

README = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_quickstart_runs_and_does_not_recompile(capsys):
    quickstart = next(b for b in PYTHON_BLOCKS if "def step(opt, params, state)" in b)
    namespace: dict = {}
    with reference_numerics():
        exec(compile(quickstart, "README quickstart", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "'step': Array(101" in printed
    assert namespace["step"]._cache_size() == 1
    hp = gradtx.hyperparams(namespace["opt"], namespace["state"])
    np.testing.assert_allclose(float(hp["learning_rate"]), 3e-3, rtol=1e-7)


def test_adam_block_is_gradtx_adam():
    block = next(b for b in PYTHON_BLOCKS if "adam = gradtx.chain(" in b)
    namespace: dict = {"gradtx": gradtx}
    exec(block, namespace)
    assert namespace["adam"].transforms == gradtx.adam(1e-3).transforms


def test_printed_adam_chain_is_the_readme_one():
    shown = README.split("the chain:\n\n```\n", 1)[1].split("```", 1)[0]
    assert repr(gradtx.adam(1e-3)) + "\n" == shown


def test_both_commands_are_marked_for_ci():
    for marker in ("<!-- tour-command -->", "<!-- test-command -->"):
        assert README.count(marker) == 1


def test_bf16_first_moment_is_closer_to_float32_than_optax():
    params = params_like()
    grads = gradient_sequence(params, 200)

    ours, _ = run_updates(gradtx.adam(1e-3, mu_dtype=jnp.bfloat16), params, grads)
    with reference_numerics():
        theirs, _ = run_updates(optax.adam(1e-3, mu_dtype=jnp.bfloat16), params, grads)
        exact, _ = run_updates(optax.adam(1e-3), params, grads)
    assert scaled_difference(ours, exact) * 1.4 < scaled_difference(theirs, exact)


def test_schedules_block_builds_an_optimizer_with_three_schedules():
    block = next(b for b in PYTHON_BLOCKS if "warmup_cosine_decay_schedule(0.0, 1e-3" in b)
    namespace: dict = {"gradtx": gradtx}
    exec(block, namespace)
    opt = namespace["opt"]
    state = opt.init(jnp.zeros(3))
    for _ in range(50):
        _, state = opt.update(jnp.ones(3), state, jnp.zeros(3))
    hp = gradtx.hyperparams(opt, state)
    np.testing.assert_allclose(float(hp["learning_rate"]), 1e-3 * 49 / 100, rtol=1e-6)
    np.testing.assert_allclose(float(hp["b1"]), 0.85 + 0.1 * 49 / 500, rtol=1e-6)
    np.testing.assert_allclose(float(hp["weight_decay"]), 0.1 * (1 - 49 / 10_000), rtol=1e-6)


def test_training_loop_block_prints_what_the_readme_says(capsys):
    block = next(b for b in PYTHON_BLOCKS if "gradtx.path_rules(" in b)
    with reference_numerics():
        exec(compile(block, "README training loops", "exec"), {})
    shown = README.split("gradtx.tree_utils.step(state))\n```\n\nprints\n\n```\n", 1)[1].split("```", 1)[0]
    assert capsys.readouterr().out == shown


def test_readme_counts_match_the_catalogue_and_optax():
    from cases import CASES

    assert f"{len(CASES)} configurations are checked" in README
    import gradtx as g

    shared = [n for n in dir(optax) if not n.startswith("_") and hasattr(g, n)]
    assert (
        f"{len(shared)} of optax's {len([n for n in dir(optax) if not n.startswith('_')])} public names"
        in README
    )


def test_presets_block_runs_and_prints_the_keras_chain(capsys):
    block = next(b for b in PYTHON_BLOCKS if "gradtx.torch.OneCycleLR" in b)
    exec(compile(block, "README presets", "exec"), {})
    assert capsys.readouterr().out == repr(gradtx.keras.Adam()) + "\n"


def test_flax_block_runs_with_the_last_numbers(capsys):
    block = next(b for b in PYTHON_BLOCKS if "gradtx.flax.Optimizer(model" in b)
    namespace: dict = {}
    with reference_numerics():  # flax's own code promotes
        exec(compile(block, "README flax block", "exec"), namespace)
    assert capsys.readouterr().out.split() == ["3", "0.001"]
    assert isinstance(namespace["state"].tx, gradtx.Transform)
    assert callable(namespace["decay_matrices"])  # an MLP of booleans, used as a mask
    leaves = jax.tree.leaves(namespace["opt"])
    assert leaves and all(isinstance(x, jax.Array) for x in leaves)
