"""The study notes' examples (examples/minibatch.py, averages.py, initialisation.py) run at
tiny sizes, write their figures, and compute what the notes' formulas say."""

import importlib.util
import pathlib
import types

import numpy as np
import pytest
from conftest import reference_numerics

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_averages_are_the_notes_recurrence_with_and_without_correction(tmp_path):
    averages = load("averages")
    result = averages.run(days=40, betas=(0.5, 0.9), out=str(tmp_path))
    theta = result["series"].astype(np.float64)
    for beta in (0.5, 0.9):
        v, raw, corrected = 0.0, [], []
        for t, x in enumerate(theta, start=1):  # V_t = beta V_{t-1} + (1 - beta) theta_t
            v = beta * v + (1 - beta) * x
            raw.append(v)
            corrected.append(v / (1 - beta**t))
        np.testing.assert_allclose(result[beta, False], raw, rtol=2e-6)
        np.testing.assert_allclose(result[beta, True], corrected, rtol=2e-6)
    assert result["figure"].stat().st_size > 20_000


def test_minibatch_example_steps_as_batch_gradient_descent_does(tmp_path):
    minibatch = load("minibatch")
    with reference_numerics():  # optax's loss
        result = minibatch.run(epochs=2, batch_size=256, lr=0.1, out=str(tmp_path))
    # Batch gradient descent's first step, in float64: from W = 0 every class has p = 1/10.
    x, y = (a.astype(np.float64) for a in minibatch.load_data())
    onehot = np.eye(10)[y.astype(int)]
    error = np.full_like(onehot, 0.1) - onehot
    w, b = -0.1 * x.T @ error / len(x), -0.1 * error.mean(0)
    logits = x @ w + b
    logits -= logits.max(1, keepdims=True)
    loss = np.mean(np.log(np.exp(logits).sum(1)) - logits[np.arange(len(y)), y.astype(int)])
    np.testing.assert_allclose(result["full"][0], loss, rtol=1e-5)
    assert len(result["full"]) == 2 and len(result["mini"]) == 2 * (len(x) // 256)
    assert result["mini"][-1] < result["full"][-1]  # more steps per pass over the data
    assert result["figure"].stat().st_size > 20_000


def test_initialisation_example_shows_what_the_notes_say(tmp_path):
    init = load("initialisation")
    result = init.run(examples=200, width=64, out=str(tmp_path))
    for layers in (result["sigmoid", "zeros"], result["ReLU", "zeros"]):
        for h in layers:  # every unit of a layer computes the same value
            assert np.all(h == h.flat[0])
    assert result["sigmoid", "zeros"][0].flat[0] == 0.5
    small = [h.std() for h in result["sigmoid", "normal, std 0.01"]]
    spread = [h.std() for h in result["sigmoid", "Xavier"]]
    assert all(s < 0.05 for s in small) and all(s > 0.08 for s in spread)
    saturated = result["sigmoid", "normal, std 1"][-1]
    assert np.mean((saturated < 0.05) | (saturated > 0.95)) > 0.5  # piled up at 0 and 1
    he = [h.std() for h in result["ReLU", "He"]]
    vanishing = [h.std() for h in result["ReLU", "normal, std 0.01"]]
    assert he[-1] > he[0] / 3 and vanishing[-1] < 1e-3 * vanishing[0]
    for name in ("sigmoid", "relu"):
        assert (tmp_path / f"initialisation_{name}.png").stat().st_size > 20_000


@pytest.mark.parametrize("name", ["minibatch", "averages", "initialisation"])
def test_study_examples_are_in_the_docs(name):
    notes = (EXAMPLES.parent / "docs" / "study_notes.md").read_text()
    assert f"python examples/{name}.py" in notes
