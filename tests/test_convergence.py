"""Every optimizer converges on the three test problems within its step budget.

The problems, each from a fixed start, in float32:

- the seeds' anisotropic bowl f(x, y) = x^2/20 + y^2 from (-7, 2) (f0 = 6.45): f < 1e-3;
- Rosenbrock's valley (1 - x)^2 + 100 (y - x^2)^2 from (-1.2, 1) (f0 = 24.2), one vector
  leaf: f < 0.1;
- softmax regression on 600 of scikit-learn's digits (64 features, 10 classes, loss
  2.30 at zero weights): mean cross-entropy < 0.2.

`BUDGETS` is the documented table: each optimizer's learning rate and number of steps
per problem (500, 3000 and 500 unless stated; L-BFGS needs no rate and 20, 60 and 60
steps). The rates are tuned once, by a sweep
over 1, 0.3, 0.1, ..., 0.001; the point is that every optimizer, with optax's
defaults otherwise, gets there.
"""

import warnings

import jax
import jax.numpy as jnp
import pytest
from sklearn.datasets import load_digits

import gradtx

_X, _Y = load_digits(return_X_y=True)
X = jnp.asarray(_X[:600] / 16.0, jnp.float32)
Y = jax.nn.one_hot(jnp.asarray(_Y[:600]), 10)


def bowl(p):
    return p["x"] ** 2 / 20 + p["y"] ** 2


def rosenbrock(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def logistic(p):
    logits = X @ p["w"] + p["b"][None, :]
    return -jnp.mean(jnp.sum(Y * jax.nn.log_softmax(logits), axis=-1))


PROBLEMS = {
    "bowl": (bowl, {"x": jnp.asarray(-7.0), "y": jnp.asarray(2.0)}, 1e-3, 500),
    "rosenbrock": (rosenbrock, jnp.asarray([-1.2, 1.0]), 0.1, 3000),
    "logistic": (logistic, {"w": jnp.zeros((64, 10)), "b": jnp.zeros(10)}, 0.2, 500),
}


def _make(name, lr):
    if name == "lbfgs":
        return gradtx.lbfgs()  # its line search sets the step
    if name == "polyak_sgd":
        return gradtx.polyak_sgd(max_learning_rate=lr)
    if name == "noisy_sgd":
        return gradtx.noisy_sgd(lr, eta=1e-4, key=0)
    return getattr(gradtx, name)(lr)


# optimizer: {problem: learning rate, or (learning rate, steps)}
BUDGETS = {
    "sgd": {"bowl": 0.3, "rosenbrock": 1e-3, "logistic": 1.0},
    "adagrad": {"bowl": 1.0, "rosenbrock": 0.3, "logistic": 1.0},
    "rmsprop": {"bowl": 0.03, "rosenbrock": 3e-3, "logistic": 0.1},
    "adam": {"bowl": 0.1, "rosenbrock": 0.1, "logistic": 0.1},
    "adamw": {"bowl": 0.1, "rosenbrock": 0.1, "logistic": 0.1},
    "nadam": {"bowl": 0.1, "rosenbrock": 0.03, "logistic": 0.1},
    "nadamw": {"bowl": 0.1, "rosenbrock": 0.03, "logistic": 0.1},
    "adamax": {"bowl": 0.3, "rosenbrock": 0.3, "logistic": 0.3},
    "amsgrad": {"bowl": 0.3, "rosenbrock": 1.0, "logistic": 0.3},
    "adabelief": {"bowl": 0.1, "rosenbrock": 0.1, "logistic": 0.1},
    "adadelta": {"bowl": (1.0, 2000), "rosenbrock": 0.1, "logistic": 10.0},
    "adafactor": {"bowl": 0.3, "rosenbrock": 0.01, "logistic": 0.1},
    "adamaxw": {"bowl": 0.3, "rosenbrock": 0.3, "logistic": 0.3},
    "adan": {"bowl": 0.3, "rosenbrock": 0.01, "logistic": 0.1},
    "fromage": {"bowl": 0.1, "rosenbrock": 0.01, "logistic": 0.1},
    "lamb": {"bowl": 0.1, "rosenbrock": 0.01, "logistic": 0.03},
    "lars": {"bowl": 1.0, "rosenbrock": 1.0, "logistic": 1.0},
    "lion": {"bowl": 0.1, "rosenbrock": 1e-3, "logistic": 0.03},
    "noisy_sgd": {"bowl": 0.1, "rosenbrock": 1e-3, "logistic": 1.0},
    "novograd": {"bowl": 0.01, "rosenbrock": 1e-3, "logistic": 0.1},
    "optimistic_adam_v2": {"bowl": 0.1, "rosenbrock": 0.03, "logistic": 0.1},
    "optimistic_gradient_descent": {"bowl": 0.3, "rosenbrock": (5e-4, 20000), "logistic": 1.0},
    "polyak_sgd": {"bowl": 1.0, "rosenbrock": 1.0, "logistic": 1.0},
    "radam": {"bowl": 0.3, "rosenbrock": (3e-3, 10000), "logistic": 0.3},
    "rprop": {"bowl": 0.1, "rosenbrock": 0.1, "logistic": 0.1},
    "sign_sgd": {"bowl": 0.1, "rosenbrock": 1e-3, "logistic": 0.01},
    "signum": {"bowl": 0.1, "rosenbrock": 1e-3, "logistic": 0.03},
    "sm3": {"bowl": 1.0, "rosenbrock": 1.0, "logistic": 1.0},
    "yogi": {"bowl": 0.1, "rosenbrock": 0.3, "logistic": 0.3},
    "lbfgs": {"bowl": (None, 20), "rosenbrock": (None, 60), "logistic": (None, 60)},
    "soap": {"bowl": 1.0, "rosenbrock": 1.0, "logistic": 1.0},
    "adam_mini": {"bowl": 1.0, "rosenbrock": 0.3, "logistic": 1.0},
    "mars_adamw": {"bowl": 1.0, "rosenbrock": 1.0, "logistic": 1.0},
    "cautious_adamw": {"bowl": 1.0, "rosenbrock": 1.0, "logistic": 1.0},
    "cautious_lion": {"bowl": 1.0, "rosenbrock": 0.01, "logistic": 1.0},
}

CASES = [(name, problem) for name in BUDGETS for problem in PROBLEMS]


def final_loss(opt, problem: str, steps: int) -> float:
    f, p0, _, _ = PROBLEMS[problem]

    def step(carry, _):
        p, s = carry
        value, grad = jax.value_and_grad(f)(p)
        # polyak_sgd reads the value; lbfgs's line search the value, gradient and function
        updates, s = opt.update(grad, s, p, value=value, grad=grad, value_fn=f)
        return (gradtx.apply_updates(p, updates), s), value

    (p, _), _ = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), None, steps))(p0)
    return float(f(p))


@pytest.mark.parametrize(("name", "problem"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_converges_within_budget(name, problem):
    budget = BUDGETS[name][problem]
    lr, steps = budget if isinstance(budget, tuple) else (budget, PROBLEMS[problem][3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        opt = _make(name, lr)
    target = PROBLEMS[problem][2]
    loss = final_loss(opt, problem, steps)
    assert loss < target, f"{name} on {problem}: {loss:.3g} after {steps} steps at lr {lr} (target {target})"


def test_every_optimizer_has_a_budget():
    """A new optimizer is added to the table, not forgotten."""
    optimizers = {
        n
        for n in gradtx.__all__
        if n in {"sgd", "adagrad", "rmsprop", "adam", "adamw", "nadam", "nadamw", "adamax", "amsgrad"}
        or getattr(getattr(gradtx, n), "__module__", "").startswith("gradtx.optimizers.")
    }
    assert optimizers - {"optimistic_adam"} == set(BUDGETS)
