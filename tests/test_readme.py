"""The README's code runs and says what it prints; its claims are tested here or named
tests elsewhere."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from cases import gradient_sequence, params_like
from conftest import reference_numerics
from markdown_blocks import python_blocks, run_block

import gradtx
from gradtx.testing import run_updates, scaled_difference

README_PATH = pathlib.Path(__file__).parent.parent / "README.md"
README = README_PATH.read_text()
BLOCKS = python_blocks(README_PATH)


def check_quickstart(namespace: dict) -> None:
    step, params, state = namespace["step"], namespace["params"], namespace["state"]
    programs = {
        step.lower(gradtx.adamw(lr, weight_decay=1e-4), params, state).as_text() for lr in (1e-2, 3e-3)
    }
    assert len(programs) == 1  # a new learning rate is the same program: no recompilation
    hp = gradtx.hyperparams(namespace["opt"], namespace["state"])
    np.testing.assert_allclose(float(hp["learning_rate"]), 3e-3, rtol=1e-7)


def check_adam_block(namespace: dict) -> None:
    assert namespace["adam"].transforms == gradtx.adam(1e-3).transforms


def check_schedules_block(namespace: dict) -> None:
    opt = namespace["opt"]
    state = opt.init(jnp.zeros(3))
    for _ in range(50):
        _, state = opt.update(jnp.ones(3), state, jnp.zeros(3))
    hp = gradtx.hyperparams(opt, state)
    np.testing.assert_allclose(float(hp["learning_rate"]), 1e-3 * 49 / 100, rtol=1e-6)
    np.testing.assert_allclose(float(hp["b1"]), 0.85 + 0.1 * 49 / 500, rtol=1e-6)
    np.testing.assert_allclose(float(hp["weight_decay"]), 0.1 * (1 - 49 / 10_000), rtol=1e-6)


def check_flax_block(namespace: dict) -> None:
    assert isinstance(namespace["state"].tx, gradtx.Transform)
    assert callable(namespace["decay_matrices"])  # an MLP of booleans, used as a mask
    leaves = jax.tree.leaves(namespace["opt"])
    assert leaves and all(isinstance(x, jax.Array) for x in leaves)


def check_packed_block(namespace: dict) -> None:
    """The packed step is the plain-tree step of the same optimizer, bit for bit."""
    params, opt = namespace["params"], namespace["opt"]
    grads = jax.grad(namespace["loss"])(params, namespace["batch"])
    updates, _ = opt.update(grads, opt.init(params), params)
    expected = gradtx.apply_updates(params, updates)
    for ours, theirs in zip(
        jax.tree.leaves(namespace["packed"].unpack()), jax.tree.leaves(expected), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)


# Checks beyond "runs and prints what is shown", for the blocks containing the key.
BLOCK_CHECKS = {
    "def step(opt, params, state)": check_quickstart,
    "adam = gradtx.chain(": check_adam_block,
    "warmup_cosine_decay_schedule(0.0, 1e-3": check_schedules_block,
    "gradtx.flax.Optimizer(model": check_flax_block,
    "packed = gradtx.pack(params)": check_packed_block,
}


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line{b.line}" for b in BLOCKS])
def test_block_runs_on_its_own_and_prints_what_the_readme_shows(block):
    namespace: dict = {"__name__": "__readme__"}
    with reference_numerics():  # a reader's JAX: default promotion (flax, optax code)
        printed = run_block(block, namespace, "README.md")
        for key, check in BLOCK_CHECKS.items():
            if key in block.code:
                check(namespace)
    assert printed == (block.shown or ""), f"README.md:{block.line} printed:\n{printed}"


def test_every_block_check_finds_its_block():
    for key in BLOCK_CHECKS:
        assert sum(key in b.code for b in BLOCKS) == 1, key


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


def test_readme_counts_match_the_catalogue():
    # The count of optax's names is tests/test_namespace.py::test_readme_counts_the_whole_namespace.
    from cases import CASES

    assert f"{len(CASES)} configurations are checked" in README
