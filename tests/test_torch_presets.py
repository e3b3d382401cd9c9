"""gradtx.torch against torch==2.13.0: every preset, 150 steps; every scheduler, 300 steps.

The reference is PyTorch itself, run on the same float32 parameters and the same fixed
gradient sequence over a nested tree (a matrix, a vector, a batch of matrices, a
scalar). Bounds, per step and per leaf:

- parameters: ``|p_gradtx - p_torch| <= 1e-6 * scale``, the scale being the leaf's
  largest magnitude now or at the start (a leaf passing near zero keeps the rounding
  of the values it had);
- updates: ``|u_gradtx - (p_torch[t] - p_torch[t-1])| <= 1e-6 * max|u_torch| + ulp(max|p|)``.
  The second term is the rounding of PyTorch's in-place ``p += u``, which the difference
  of two stored parameters cannot see below.

NAdam needs 2e-6 for its parameters: PyTorch adds NAdam's step in two parts (the
gradient's and the momentum's, two ``addcdiv_``), rounding the parameters twice per
step; gradtx adds one update. The extra half-ulp per step is a random walk, 1.6e-6 of
the scale after 150 steps. Every other preset holds 1e-6 (the decoupled weight decays
and ASGD round twice as PyTorch does, see ``gradtx.torch.multiply_weights``).

Every configuration also runs PyTorch's other kernels (``foreach=True``, and
``fused=True`` where PyTorch has one on CPU): they must give the same numbers too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import reference_numerics, xla_compiles

import gradtx
import gradtx.torch as gt

STEPS = 150
SHAPES = {"dense": {"kernel": (4, 3), "bias": (3,)}, "blocks": [(2, 2, 3), ()]}


def _params() -> Any:
    rng = np.random.default_rng(0)
    return jax.tree.map(
        lambda s: rng.normal(size=s).astype(np.float32), SHAPES, is_leaf=lambda x: isinstance(x, tuple)
    )


def _gradients(steps: int) -> list[Any]:
    """Random gradients whose scale drops after step 20 (so AMSGrad's maximum is an old
    value) and wobbles (so Rprop's signs flip and adaptive steps vary)."""
    rng = np.random.default_rng(1)
    out = []
    for t in range(steps):
        scale = (2.0 if t < 20 else 0.5) * (1 + 0.5 * math.sin(t / 7))
        out.append(
            jax.tree.map(
                lambda s, scale=scale: (scale * rng.normal(size=s) + 0.1).astype(np.float32),
                SHAPES,
                is_leaf=lambda x: isinstance(x, tuple),
            )
        )
    return out


PARAMS = _params()
GRADS = _gradients(STEPS)


def run_torch(
    make: Callable[[list[torch.Tensor]], Any], params: Any, grads: list[Any]
) -> list[list[np.ndarray]]:
    """PyTorch's parameters after each step, leaves in jax.tree order."""
    leaves = [torch.tensor(np.array(x), requires_grad=True) for x in jax.tree.leaves(params)]
    opt = make(leaves)
    history = []
    for g in grads:
        for p, gl in zip(leaves, jax.tree.leaves(g), strict=True):
            p.grad = torch.tensor(np.array(gl))
        opt.step()
        history.append([p.detach().numpy().copy() for p in leaves])
    return history


_STEP_CACHE: dict[Any, Any] = {}


def run_gradtx(
    opt: Any, params: Any, grads: list[Any]
) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]], Any]:
    """gradtx's parameters and updates after each step, and the final state."""

    @jax.jit
    def step(p: Any, s: Any, g: Any) -> tuple[Any, Any, Any]:
        u, s = opt.update(g, s, p)
        return gradtx.apply_updates(p, u), s, u

    p = jax.tree.map(jnp.asarray, params)
    s = opt.init(p)
    ps, us = [], []
    for g in grads:
        p, s, u = step(p, s, g)
        ps.append([np.asarray(x) for x in jax.tree.leaves(p)])
        us.append([np.asarray(x) for x in jax.tree.leaves(u)])
    return ps, us, s


def assert_matches(
    ours: tuple[Any, Any],
    theirs: list[list[np.ndarray]],
    params: Any,
    rtol: float = 1e-6,
    ulps: float = 1.0,
) -> None:
    """Parameters within ``rtol`` of the scale; updates within ``rtol`` of theirs plus
    ``ulps`` units in the last place of the parameters (the reference's rounding of
    ``p += u``, invisible in the difference of stored parameters)."""
    ps, us = ours
    before = [np.asarray(x) for x in jax.tree.leaves(params)]
    start = [float(np.max(np.abs(x))) for x in before]
    for t, (p_g, u_g, p_t) in enumerate(zip(ps, us, theirs, strict=True)):
        for i, (a, u, b, b0) in enumerate(zip(p_g, u_g, p_t, before, strict=True)):
            p_scale = max(float(np.max(np.abs(b))), start[i])
            err = float(np.max(np.abs(a - b)))
            assert err <= rtol * p_scale, (
                f"step {t + 1}, leaf {i}: params differ by {err:.3g} (scale {p_scale:.3g})"
            )
            du = b - b0
            u_bound = rtol * float(np.max(np.abs(du))) + ulps * float(np.spacing(np.float32(p_scale)))
            u_err = float(np.max(np.abs(u - du)))
            assert u_err <= u_bound, (
                f"step {t + 1}, leaf {i}: updates differ by {u_err:.3g} (bound {u_bound:.3g})"
            )
        before = p_t


# (name, gradtx factory, torch factory, kwargs, kernels PyTorch offers on CPU)
FOREACH = ({"foreach": True},)
FUSED = ({"foreach": True}, {"fused": True})
CONFIGS: list[tuple[str, Any, Any, dict[str, Any], tuple[dict[str, Any], ...]]] = [
    ("sgd", gt.SGD, torch.optim.SGD, {"lr": 0.05}, FUSED),
    ("sgd-momentum", gt.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}, FUSED),
    ("sgd-dampening", gt.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}, FUSED),
    (
        "sgd-nesterov-wd",
        gt.SGD,
        torch.optim.SGD,
        {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1},
        FUSED,
    ),
    ("sgd-maximize", gt.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.5, "maximize": True}, FUSED),
    ("adam", gt.Adam, torch.optim.Adam, {"lr": 0.01}, FUSED),
    ("adam-amsgrad", gt.Adam, torch.optim.Adam, {"lr": 0.01, "amsgrad": True}, FUSED),
    (
        "adam-wd-maximize",
        gt.Adam,
        torch.optim.Adam,
        {"lr": 0.01, "weight_decay": 0.1, "maximize": True},
        FUSED,
    ),
    (
        "adam-decoupled",
        gt.Adam,
        torch.optim.Adam,
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
        FUSED,
    ),
    ("adam-betas-eps", gt.Adam, torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-3}, FUSED),
    ("adamw", gt.AdamW, torch.optim.AdamW, {"lr": 0.01}, FUSED),
    (
        "adamw-amsgrad-maximize",
        gt.AdamW,
        torch.optim.AdamW,
        {"lr": 0.01, "amsgrad": True, "maximize": True, "weight_decay": 0.1},
        FUSED,
    ),
    ("rmsprop", gt.RMSprop, torch.optim.RMSprop, {"lr": 0.01}, FOREACH),
    ("rmsprop-centered", gt.RMSprop, torch.optim.RMSprop, {"lr": 0.01, "centered": True}, FOREACH),
    (
        "rmsprop-momentum-wd",
        gt.RMSprop,
        torch.optim.RMSprop,
        {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.1},
        FOREACH,
    ),
    (
        "rmsprop-all",
        gt.RMSprop,
        torch.optim.RMSprop,
        {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.5, "maximize": True, "eps": 1e-4},
        FOREACH,
    ),
    ("adagrad", gt.Adagrad, torch.optim.Adagrad, {"lr": 0.1}, FUSED),
    (
        "adagrad-decay",
        gt.Adagrad,
        torch.optim.Adagrad,
        {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.5},
        FUSED,
    ),
    ("adagrad-maximize", gt.Adagrad, torch.optim.Adagrad, {"lr": 0.1, "maximize": True, "eps": 1e-3}, FUSED),
    ("adadelta", gt.Adadelta, torch.optim.Adadelta, {}, FOREACH),
    (
        "adadelta-wd-maximize",
        gt.Adadelta,
        torch.optim.Adadelta,
        {"lr": 0.5, "rho": 0.8, "weight_decay": 0.1, "maximize": True},
        FOREACH,
    ),
    ("adamax", gt.Adamax, torch.optim.Adamax, {"lr": 0.01}, FOREACH),
    (
        "adamax-wd-maximize",
        gt.Adamax,
        torch.optim.Adamax,
        {"lr": 0.01, "weight_decay": 0.1, "maximize": True, "eps": 1e-3},
        FOREACH,
    ),
    ("nadam", gt.NAdam, torch.optim.NAdam, {"lr": 0.01}, FOREACH),
    (
        "nadam-wd",
        gt.NAdam,
        torch.optim.NAdam,
        {"lr": 0.01, "weight_decay": 0.1, "momentum_decay": 0.01},
        FOREACH,
    ),
    (
        "nadam-decoupled-maximize",
        gt.NAdam,
        torch.optim.NAdam,
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
        FOREACH,
    ),
    ("radam", gt.RAdam, torch.optim.RAdam, {"lr": 0.01}, FOREACH),
    (
        "radam-wd",
        gt.RAdam,
        torch.optim.RAdam,
        {"lr": 0.01, "weight_decay": 0.1, "betas": (0.8, 0.99)},
        FOREACH,
    ),
    (
        "radam-decoupled-maximize",
        gt.RAdam,
        torch.optim.RAdam,
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
        FOREACH,
    ),
    ("asgd", gt.ASGD, torch.optim.ASGD, {"lr": 0.01}, FOREACH),
    (
        "asgd-averaging",
        gt.ASGD,
        torch.optim.ASGD,
        {"lr": 0.05, "lambd": 1e-2, "alpha": 0.5, "t0": 40, "weight_decay": 0.1, "maximize": True},
        FOREACH,
    ),
    ("rprop", gt.Rprop, torch.optim.Rprop, {"lr": 0.01}, FOREACH),
    (
        "rprop-bounds",
        gt.Rprop,
        torch.optim.Rprop,
        {"lr": 0.5, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2), "maximize": True},
        FOREACH,
    ),
    ("adafactor", gt.Adafactor, torch.optim.Adafactor, {"lr": 0.01}, FOREACH),
    (
        "adafactor-all",
        gt.Adafactor,
        torch.optim.Adafactor,
        {
            "lr": 0.05,
            "beta2_decay": -0.5,
            "eps": (1e-20, 1e-2),
            "d": 2.0,
            "weight_decay": 0.1,
            "maximize": True,
        },
        FOREACH,
    ),
]


def _ids(configs: list[Any]) -> list[str]:
    return [c[0] for c in configs]


@pytest.fixture(scope="module")
def torch_default_threads() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize("config", CONFIGS, ids=_ids(CONFIGS))
def test_preset_matches_torch(config: Any, torch_default_threads: None) -> None:
    name, ours, theirs, kwargs, kernels = config
    rtol = 2e-6 if name.startswith("nadam") else 1e-6  # two roundings per step: see the module
    ps, us, _ = run_gradtx(ours(**kwargs), PARAMS, GRADS)
    reference = run_torch(lambda p: theirs(p, **kwargs), PARAMS, GRADS)
    ulps = 2.0 if name.startswith("nadam") else 1.0  # PyTorch's second rounding of the parameters
    assert_matches((ps, us), reference, PARAMS, rtol, ulps)
    for kernel in kernels:
        other = run_torch(lambda p, k=kernel: theirs(p, **kwargs, **k), PARAMS, GRADS)
        # PyTorch's foreach ASGD rounds once (p - eta (g + lambd p)) where its default
        # kernel rounds twice (p (1 - lambd eta) - eta g): its two kernels differ from
        # each other by 2.7e-6 of the scale after 150 steps.
        assert_matches((ps, us), other, PARAMS, 3e-6 if name.startswith("asgd") else rtol, ulps)


def test_asgd_average_matches_torch_ax() -> None:
    kwargs = {"lr": 0.05, "lambd": 1e-2, "alpha": 0.5, "t0": 40}
    _, _, state = run_gradtx(gt.ASGD(**kwargs), PARAMS, GRADS)
    leaves = [torch.tensor(np.array(x), requires_grad=True) for x in jax.tree.leaves(PARAMS)]
    opt = torch.optim.ASGD(leaves, **kwargs)
    for g in GRADS:
        for p, gl in zip(leaves, jax.tree.leaves(g), strict=True):
            p.grad = torch.tensor(np.array(gl))
        opt.step()
    ours = jax.tree.leaves(state[-1].average)
    for p, a in zip(leaves, ours, strict=True):
        ax = opt.state[p]["ax"].numpy()
        assert not np.allclose(ax, p.detach().numpy())  # averaging has started
        np.testing.assert_allclose(a, ax, rtol=0, atol=1e-6 * float(np.max(np.abs(ax))))


def test_clip_grad_norm_then_adamw_with_one_cycle_matches_torch() -> None:
    """The porting recipe: clip_grad_norm_, AdamW, OneCycleLR (lr and beta1 cycling)."""
    sched = gt.OneCycleLR(max_lr=0.05, total_steps=STEPS)
    opt = gradtx.chain(gt.clip_grad_norm(1.0), gt.AdamW(lr=sched, betas=(sched.momentum, 0.999)))
    ps, us, _ = run_gradtx(opt, PARAMS, GRADS)

    leaves = [torch.tensor(np.array(x), requires_grad=True) for x in jax.tree.leaves(PARAMS)]
    topt = torch.optim.AdamW(leaves, lr=0.05)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.05, total_steps=STEPS)
    reference = []
    for g in GRADS:
        for p, gl in zip(leaves, jax.tree.leaves(g), strict=True):
            p.grad = torch.tensor(np.array(gl))
        torch.nn.utils.clip_grad_norm_(leaves, 1.0)
        topt.step()
        tsched.step()
        reference.append([p.detach().numpy().copy() for p in leaves])
    assert_matches((ps, us), reference, PARAMS)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type: float, max_norm: float) -> None:
    tx = gt.clip_grad_norm(max_norm, norm_type=norm_type)
    for g in GRADS[:3]:
        ours = jax.tree.leaves(tx.update(g, tx.init(g))[0])
        tensors = [torch.tensor(np.array(x)) for x in jax.tree.leaves(g)]
        for t in tensors:
            t.grad = t.clone()
        torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type=norm_type)
        for a, t in zip(ours, tensors, strict=True):
            assert t.grad is not None
            np.testing.assert_allclose(a, t.grad.numpy(), rtol=1e-6, atol=0)


def test_clip_grad_norm_scales_just_below_the_bound_as_torch_does() -> None:
    g = jnp.array([3.0, 4.0])  # norm 5: optax leaves it, torch scales by 5 / (5 + 1e-6)
    tx = gt.clip_grad_norm(5.0)
    t = torch.tensor([3.0, 4.0])
    t.grad = t.clone()
    torch.nn.utils.clip_grad_norm_([t], 5.0)
    ours = np.asarray(tx.update(g, tx.init(g))[0])
    assert t.grad is not None
    np.testing.assert_array_equal(ours, t.grad.numpy())
    assert not np.array_equal(ours, np.asarray(g))


def test_clip_grad_value_matches_torch() -> None:
    g = GRADS[0]
    tx = gt.clip_grad_value(0.7)
    ours = jax.tree.leaves(tx.update(g, tx.init(g))[0])
    tensors = [torch.tensor(np.array(x)) for x in jax.tree.leaves(g)]
    for t in tensors:
        t.grad = t.clone()
    torch.nn.utils.clip_grad_value_(tensors, 0.7)
    for a, t in zip(ours, tensors, strict=True):
        assert t.grad is not None
        np.testing.assert_array_equal(a, t.grad.numpy())


def test_param_groups_match_torch() -> None:
    groups = [
        {"params": "dense/*", "lr": 0.02, "weight_decay": 0.0},
        {"params": "blocks/*", "betas": (0.8, 0.99)},
    ]
    opt = gt.param_groups(gt.AdamW, groups, lr=0.01, weight_decay=0.1)
    ps, us, _ = run_gradtx(opt, PARAMS, GRADS)
    flat = jax.tree.leaves(PARAMS)  # order: blocks/0, blocks/1, dense/bias, dense/kernel

    def make(leaves: list[torch.Tensor]) -> Any:
        torch_groups = [
            {"params": leaves[2:], "lr": 0.02, "weight_decay": 0.0},
            {"params": leaves[:2], "betas": (0.8, 0.99)},
        ]
        return torch.optim.AdamW(torch_groups, lr=0.01, weight_decay=0.1)

    assert len(flat) == 4
    assert_matches((ps, us), run_torch(make, PARAMS, GRADS), PARAMS)


def test_presets_are_labelled_chains_of_blocks() -> None:
    assert repr(gt.RMSprop()).startswith("torch.RMSprop = chain(")
    assert "dampened_trace" in repr(gt.SGD(momentum=0.9, dampening=0.1))
    assert "adam_moments(b1=0.9, b2=0.999, eps=1e-08, amsgrad=True)" in repr(gt.Adam(amsgrad=True))
    assert "trace(" in repr(gt.SGD(momentum=0.9)) and "dampened" not in repr(gt.SGD(momentum=0.9))


def test_readout_uses_torch_names() -> None:
    opt = gt.AdamW(lr=gt.StepLR(0.1, step_size=1, gamma=0.5))
    p = jnp.zeros(2)
    s = opt.init(p)
    for _ in range(2):
        _, s = opt.update(jnp.ones(2), s, p)
    values = gradtx.hyperparams(opt, s)  # the values the last (second) update used
    assert float(values["lr"]) == pytest.approx(0.05)
    assert values["beta1"] == 0.9 and values["weight_decay"] == 0.01


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gt.Adam(lr=-1.0), "Adam: lr must be >= 0, got -1.0"),
        (lambda: gt.AdamW(betas=(1.0, 0.999)), r"AdamW: betas\[0\] must be in \[0, 1\), got 1.0"),
        (lambda: gt.SGD(momentum=0.9, dampening=0.1, nesterov=True), "nesterov=True requires"),
        (lambda: gt.Rprop(etas=(1.5, 1.2)), "Rprop: etas must satisfy"),
        (lambda: gt.RMSprop(eps=-1.0), "RMSprop: eps must be >= 0"),
        (lambda: gt.StepLR(0.1, step_size=0), "StepLR: step_size must be an integer > 0"),
        (
            lambda: gt.ChainedScheduler([gt.OneCycleLR(1.0, total_steps=10)]),
            "OneCycleLR does not only multiply",
        ),
        (
            lambda: gt.ChainedScheduler([gt.CosineAnnealingLR(1.0, T_max=10)]),
            "CosineAnnealingLR does not only",
        ),
        (lambda: gt.param_groups(gt.SGD, [{"lr": 0.1}]), "group 0 has no 'params'"),
    ],
)
def test_bad_arguments_raise_with_torch_names(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------- schedulers, 300 steps

SCHED_STEPS = 300


def _torch_lrs(make: Callable[[Any], Any], optimizer: str = "sgd") -> tuple[np.ndarray, np.ndarray]:
    """The learning rate (and momentum or beta1) each optimizer step uses."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9) if optimizer == "sgd" else torch.optim.Adam([p], lr=0.1)
    sched = make(opt)
    lrs, moms = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(SCHED_STEPS):
            group = opt.param_groups[0]
            lrs.append(group["lr"])
            moms.append(group["momentum"] if optimizer == "sgd" else group["betas"][0])
            opt.step()
            sched.step()
    return np.array(lrs), np.array(moms)


LS = torch.optim.lr_scheduler
SCHEDULERS: list[tuple[str, Any, Any]] = [
    ("step", lambda o: LS.StepLR(o, step_size=30, gamma=0.5), gt.StepLR(0.1, step_size=30, gamma=0.5)),
    (
        "multistep",
        lambda o: LS.MultiStepLR(o, milestones=[50, 120, 120, 200], gamma=0.3),
        gt.MultiStepLR(0.1, milestones=[50, 120, 120, 200], gamma=0.3),
    ),
    ("exponential", lambda o: LS.ExponentialLR(o, gamma=0.98), gt.ExponentialLR(0.1, gamma=0.98)),
    (
        "cosine",
        lambda o: LS.CosineAnnealingLR(o, T_max=100, eta_min=1e-3),
        gt.CosineAnnealingLR(0.1, T_max=100, eta_min=1e-3),
    ),
    (
        "cosine-restarts",
        lambda o: LS.CosineAnnealingWarmRestarts(o, T_0=20),
        gt.CosineAnnealingWarmRestarts(0.1, T_0=20),
    ),
    (
        "cosine-restarts-mult",
        lambda o: LS.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=1e-3),
        gt.CosineAnnealingWarmRestarts(0.1, T_0=10, T_mult=2, eta_min=1e-3),
    ),
    (
        "linear",
        lambda o: LS.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=80),
        gt.LinearLR(0.1, start_factor=0.1, end_factor=1.0, total_iters=80),
    ),
    (
        "linear-down",
        lambda o: LS.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=250),
        gt.LinearLR(0.1, start_factor=1.0, end_factor=0.05, total_iters=250),
    ),
    (
        "constant",
        lambda o: LS.ConstantLR(o, factor=0.25, total_iters=40),
        gt.ConstantLR(0.1, factor=0.25, total_iters=40),
    ),
    (
        "polynomial",
        lambda o: LS.PolynomialLR(o, total_iters=200, power=2.0),
        gt.PolynomialLR(0.1, total_iters=200, power=2.0),
    ),
    (
        "lambda",
        lambda o: LS.LambdaLR(o, lambda t: 1 / (1 + 0.05 * t)),
        gt.LambdaLR(0.1, lambda t: 1 / (1 + 0.05 * t)),
    ),
    (
        "cyclic",
        lambda o: LS.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=40),
        gt.CyclicLR(0.01, 0.1, step_size_up=40),
    ),
    (
        "cyclic-tri2",
        lambda o: LS.CyclicLR(
            o, base_lr=0.01, max_lr=0.1, step_size_up=30, step_size_down=20, mode="triangular2"
        ),
        gt.CyclicLR(0.01, 0.1, step_size_up=30, step_size_down=20, mode="triangular2"),
    ),
    (
        "cyclic-exp",
        lambda o: LS.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=25, mode="exp_range", gamma=0.995),
        gt.CyclicLR(0.01, 0.1, step_size_up=25, mode="exp_range", gamma=0.995),
    ),
    (
        "onecycle",
        lambda o: LS.OneCycleLR(o, max_lr=0.1, total_steps=SCHED_STEPS),
        gt.OneCycleLR(0.1, total_steps=SCHED_STEPS),
    ),
    (
        "onecycle-linear-3",
        lambda o: LS.OneCycleLR(
            o,
            max_lr=0.1,
            epochs=10,
            steps_per_epoch=30,
            pct_start=0.25,
            anneal_strategy="linear",
            three_phase=True,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
        gt.OneCycleLR(
            0.1,
            epochs=10,
            steps_per_epoch=30,
            pct_start=0.25,
            anneal_strategy="linear",
            three_phase=True,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
    ),
    (
        "sequential",
        lambda o: LS.SequentialLR(
            o,
            [
                LS.LinearLR(o, start_factor=0.1, total_iters=20),
                LS.CosineAnnealingLR(o, T_max=100),
                LS.ExponentialLR(o, gamma=0.99),
            ],
            milestones=[20, 150],
        ),
        gt.SequentialLR(
            [
                gt.LinearLR(0.1, start_factor=0.1, total_iters=20),
                gt.CosineAnnealingLR(0.1, T_max=100),
                gt.ExponentialLR(0.1, gamma=0.99),
            ],
            milestones=[20, 150],
        ),
    ),
    (
        "chained",
        lambda o: LS.ChainedScheduler(
            [
                LS.ConstantLR(o, factor=0.5, total_iters=10),
                LS.ExponentialLR(o, gamma=0.99),
                LS.StepLR(o, step_size=50, gamma=0.5),
                LS.LinearLR(o, start_factor=0.2, total_iters=30),
                LS.PolynomialLR(o, total_iters=250, power=0.5),
                LS.MultiStepLR(o, milestones=[100, 180]),
            ]
        ),
        gt.ChainedScheduler(
            [
                gt.ConstantLR(0.1, factor=0.5, total_iters=10),
                gt.ExponentialLR(0.1, gamma=0.99),
                gt.StepLR(0.1, step_size=50, gamma=0.5),
                gt.LinearLR(0.1, start_factor=0.2, total_iters=30),
                gt.PolynomialLR(0.1, total_iters=250, power=0.5),
                gt.MultiStepLR(0.1, milestones=[100, 180]),
            ]
        ),
    ),
]


@pytest.mark.parametrize("config", SCHEDULERS, ids=_ids(SCHEDULERS))
def test_scheduler_matches_torch(config: Any) -> None:
    _, make, ours = config
    expected, _ = _torch_lrs(make)
    with reference_numerics():
        got = np.asarray(jax.jit(ours)(jnp.arange(SCHED_STEPS)))
    err = np.max(np.abs(got - expected))
    assert err <= 1e-6 * np.max(np.abs(expected)), f"{err:.3g}"


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("name", ["onecycle", "onecycle-linear-3", "cyclic", "cyclic-tri2"])
def test_scheduler_momentum_matches_torch(name: str, optimizer: str) -> None:
    _, make, ours = next(c for c in SCHEDULERS if c[0] == name)
    _, expected = _torch_lrs(make, optimizer)
    got = np.asarray(jax.jit(ours.momentum)(jnp.arange(SCHED_STEPS)))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_per_epoch_steps_the_scheduler_once_per_epoch() -> None:
    steps_per_epoch = 7
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    sched = LS.StepLR(opt, step_size=3, gamma=0.5)
    expected = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _epoch in range(20):
            for _ in range(steps_per_epoch):
                expected.append(opt.param_groups[0]["lr"])
                opt.step()
            sched.step()
    ours = gt.per_epoch(gt.StepLR(0.1, step_size=3, gamma=0.5), steps_per_epoch)
    got = np.asarray(ours(jnp.arange(len(expected))))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)


def test_rectification_length_is_float64_accurate() -> None:
    for b2 in (0.9, 0.99, 0.999, 0.9999):
        t = np.arange(1, 3000, dtype=np.float64)
        exact = 2 / (1 - b2) - 1 - 2 * t * b2**t / (1 - b2**t)
        got = np.asarray(gt.rectification_length(1 - b2, jnp.asarray(t, jnp.float32)), np.float64)
        assert np.max(np.abs(got - exact) / np.maximum(exact, 1.0)) < 2e-6


def test_optax_rprop_applies_each_step_one_step_late() -> None:
    """The README's table: optax's (and gradtx.rprop's) Rprop lags PyTorch's by a step."""
    _, ours_us, _ = run_gradtx(gt.Rprop(lr=0.01), PARAMS, GRADS[:2])
    _, optax_like, _ = run_gradtx(gradtx.rprop(0.01), PARAMS, GRADS[:2])
    assert all(not np.any(u) for u in optax_like[0])  # optax's first update is zero
    g1, g2 = jax.tree.leaves(GRADS[0]), jax.tree.leaves(GRADS[1])
    for late, first, a, b in zip(optax_like[1], ours_us[0], g1, g2, strict=True):
        same_sign = np.sign(a) == np.sign(b)  # where the sign flips, optax skips the step
        assert same_sign.any()
        np.testing.assert_array_equal(late[same_sign], first[same_sign])  # PyTorch's first step


def test_presets_are_data_new_numbers_do_not_recompile() -> None:
    """A preset passed into jit: a new lr, beta or weight decay (and a new scheduler
    number) reuses the compiled step, and vmap sweeps a batch of learning rates. (A
    coupled decay or a momentum of exactly 0 drops its block, as PyTorch skips it: a
    new structure; AdamW keeps its decay block at 0.)"""

    traces = []

    @jax.jit
    def step(opt: Any, p: Any, g: Any) -> Any:
        traces.append(None)  # runs only while tracing
        u, _ = opt.update(g, opt.init(p), p)
        return u

    p, g = jnp.ones(3), jnp.full(3, 0.5)
    presets = [
        gt.AdamW(lr=gt.OneCycleLR(max_lr=lr, total_steps=100), betas=(b1, 0.999), weight_decay=wd)
        for lr, b1, wd in ((0.1, 0.9, 0.01), (0.2, 0.8, 0.02), (0.3, 0.7, 0.0))
    ]
    with xla_compiles() as compiled:
        outs = [step(preset, p, g) for preset in presets]
    assert len(traces) == 1
    assert compiled.count("jit(step)") <= 1, compiled
    assert not np.allclose(outs[0], outs[1])
    rates = jnp.array([0.1, 0.2])
    batch = jax.vmap(
        lambda lr: gt.SGD(lr=lr, momentum=0.9).update(g, gt.SGD(lr=lr, momentum=0.9).init(p))[0]
    )(rates)
    np.testing.assert_allclose(np.asarray(batch), -np.outer(np.asarray(rates), np.asarray(g)), rtol=1e-6)


# --- complex parameters: PyTorch optimizes them as pairs of reals ------------------------

COMPLEX_STEPS = 20
COMPLEX_CONFIGS = [
    ("sgd-momentum", gt.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}),
    ("adam", gt.Adam, torch.optim.Adam, {"lr": 0.01}),
    ("adam-amsgrad", gt.Adam, torch.optim.Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01}),
    ("adamw", gt.AdamW, torch.optim.AdamW, {"lr": 0.01}),
    ("adamax", gt.Adamax, torch.optim.Adamax, {"lr": 0.01}),
    ("nadam", gt.NAdam, torch.optim.NAdam, {"lr": 0.01}),
    ("radam", gt.RAdam, torch.optim.RAdam, {"lr": 0.01}),
    ("adagrad", gt.Adagrad, torch.optim.Adagrad, {"lr": 0.1}),
    ("adadelta", gt.Adadelta, torch.optim.Adadelta, {}),
    ("rmsprop-centered", gt.RMSprop, torch.optim.RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ("asgd", gt.ASGD, torch.optim.ASGD, {"lr": 0.01}),
    ("rprop", gt.Rprop, torch.optim.Rprop, {"lr": 0.01}),
]


def _complex(tree: Any, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda x: (x + 1j * rng.normal(size=np.shape(x))).astype(np.complex64), tree)


@pytest.mark.parametrize("config", COMPLEX_CONFIGS, ids=[c[0] for c in COMPLEX_CONFIGS])
def test_complex_parameters_match_torch(config: Any, torch_default_threads: None) -> None:
    # PyTorch's view_as_real: each complex entry is two real parameters, with their own
    # moments (gradtx's blocks alone follow optax: one second moment |g|^2 per entry)
    _, ours, theirs, kwargs = config
    params = _complex(PARAMS, 2)
    grads = [_complex(g, 3 + t) for t, g in enumerate(GRADS[:COMPLEX_STEPS])]
    expected = run_torch(lambda leaves: theirs(leaves, **kwargs), params, grads)
    ps, us, _ = run_gradtx(ours(**kwargs), params, grads)
    assert_matches((ps, us), expected, params, rtol=2e-6, ulps=2.0)


def test_adafactor_refuses_complex_parameters_as_torch_does() -> None:
    p = torch.zeros(2, dtype=torch.complex64, requires_grad=True)
    p.grad = torch.ones(2, dtype=torch.complex64)
    with pytest.raises(RuntimeError, match="Adafactor does not support complex parameters"):
        torch.optim.Adafactor([p]).step()
    opt = gt.Adafactor()
    with pytest.raises(gradtx.InputError, match=r"factored_relative_rms: .*complex"):
        opt.init({"w": jnp.zeros(2, jnp.complex64)})
