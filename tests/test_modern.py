"""SOAP, Adam-mini, MARS-AdamW and the cautious optimizers against float64 NumPy
transcriptions of their papers' algorithms (one line per equation), on a tree with a
matrix, a vector and a scalar, 60 steps whose updates are applied; and their rules
(which blocks, which matrices) per parameter."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cases import gradient_sequence

import gradtx
from gradtx.testing import assert_close_to_scale

STEPS = 60
PARAMS = {
    "w": jax.random.normal(jax.random.key(0), (3, 4)),
    "b": jax.random.normal(jax.random.key(1), (4,)),
    "s": jax.random.normal(jax.random.key(2), ()),
}
GRADS = gradient_sequence(PARAMS, STEPS)


def _ours(opt: Any) -> dict[str, np.ndarray]:
    def step(carry: Any, g: Any) -> Any:
        p, s = carry
        u, s = opt.update(g, s, p)
        return (gradtx.apply_updates(p, u), s), u

    updates = jax.jit(lambda p, g: jax.lax.scan(step, (p, opt.init(p)), g)[1])(PARAMS, GRADS)
    return {k: np.asarray(v, np.float64) for k, v in updates.items()}


def _grads() -> list[dict[str, np.ndarray]]:
    return [{k: np.asarray(v[t], np.float64) for k, v in GRADS.items()} for t in range(STEPS)]


def _run(update_fn: Any) -> dict[str, np.ndarray]:
    """Applies ``update_fn(t, name, param, grad, state) -> (update, state)`` per leaf."""
    params = {k: np.asarray(v, np.float64) for k, v in PARAMS.items()}
    states: dict[str, dict[str, Any]] = {k: {} for k in params}
    out: dict[str, list[np.ndarray]] = {k: [] for k in params}
    for t, grads in enumerate(_grads(), start=1):
        for k in params:
            u, states[k] = update_fn(t, k, params[k], grads[k], states[k])
            out[k].append(u)
            params[k] = params[k] + u
    return {k: np.stack(v) for k, v in out.items()}


# --- SOAP (Vyas et al., 2024, algorithm 3) -------------------------------------------

LR, B1, B2, EPS, WD, FREQ = 1e-2, 0.9, 0.95, 1e-8, 0.01, 5


def soap_step(t: int, name: str, w: np.ndarray, g: np.ndarray, s: dict[str, Any]) -> Any:
    m = B1 * s.get("m", 0.0) + (1 - B1) * g  # first moment, original space
    if g.ndim == 2:
        left = B2 * s.get("left", 0.0) + (1 - B2) * g @ g.T  # Shampoo's L
        right = B2 * s.get("right", 0.0) + (1 - B2) * g.T @ g  # Shampoo's R
        if (t - 1) % FREQ == 0:  # eigenbases at step 1 and every FREQ steps
            s["ql"], s["qr"] = np.linalg.eigh(left)[1], np.linalg.eigh(right)[1]
        s["left"], s["right"] = left, right
        rotate = lambda a: s["ql"].T @ a @ s["qr"]  # noqa: E731
        back = lambda a: s["ql"] @ a @ s["qr"].T  # noqa: E731
    else:
        rotate = back = lambda a: a
    v = B2 * s.get("v", 0.0) + (1 - B2) * rotate(g) ** 2  # Adam's second moment, rotated
    m_hat, v_hat = m / (1 - B1**t), v / (1 - B2**t)
    n = back(rotate(m_hat) / (np.sqrt(v_hat) + EPS))  # Adam's step, rotated back
    s["m"], s["v"] = m, v
    if t == 1 and g.ndim == 2:  # the first step measures only (the reference code's)
        n = np.zeros_like(w)  # gradtx's weight decay, a block of its own, still applies
    return -LR * (n + WD * w), s


def test_soap_matches_the_paper():
    ours = _ours(gradtx.soap(LR, B1, B2, EPS, WD, precondition_frequency=FREQ))
    # float32 against float64: the eigenvectors of L and R carry float32's rounding
    # of the statistics (relative 1e-7 over eigenvalue gaps of 1e-2 to 1): 1e-4
    assert_close_to_scale(ours, _run(soap_step), 1e-4, "soap", step_axis=0)


def test_soap_is_adam_where_no_side_is_preconditioned():
    opt = gradtx.soap(LR, B1, B2, EPS, WD, max_precond_dim=2)  # the matrix is 3 x 4
    adamw = gradtx.adamw(LR, B1, B2, EPS, weight_decay=WD)
    assert_close_to_scale(_ours(opt), _ours(adamw), 1e-6, "soap without sides", step_axis=0)


# --- Adam-mini (Zhang et al., 2024, algorithm 1) -------------------------------------

MINI = {
    "embed": jax.random.normal(jax.random.key(3), (5, 3)),
    "attn": {"query": {"kernel": jax.random.normal(jax.random.key(4), (4, 2, 3))}},
    "mlp": {"kernel": jax.random.normal(jax.random.key(5), (4, 6)), "bias": jnp.zeros(6)},
    "norm": {"scale": jnp.ones(4)},
}
# the paper's partition, written out per parameter: the axes averaged per block
BLOCKS = {
    "embed": None,  # per coordinate
    "attn/query/kernel": (0, 2),  # one block per head
    "mlp/kernel": (0,),  # one block per output neuron
    "mlp/bias": (0,),  # one block
    "norm/scale": (0,),  # one block
}


def test_adam_mini_matches_the_paper():
    lr, b1, b2, eps, wd = 1e-2, 0.9, 0.95, 1e-8, 0.1
    grads = gradient_sequence(MINI, STEPS)
    opt = gradtx.adam_mini(lr, b1, b2, eps, wd)

    def step(carry: Any, g: Any) -> Any:
        p, s = carry
        u, s = opt.update(g, s, p)
        return (gradtx.apply_updates(p, u), s), u

    ours = jax.jit(lambda p, g: jax.lax.scan(step, (p, opt.init(p)), g)[1])(MINI, grads)
    flat_p = {path: np.asarray(v, np.float64) for path, v in gradtx.rules.leaf_paths(MINI)[0]}
    flat_g = {path: np.asarray(v, np.float64) for path, v in gradtx.rules.leaf_paths(grads)[0]}
    expected = {}
    for path, w in flat_p.items():
        m, v, out = 0.0, 0.0, []
        for t in range(1, STEPS + 1):
            g = flat_g[path][t - 1]
            m = b1 * m + (1 - b1) * g
            sq = g**2 if BLOCKS[path] is None else np.mean(g**2, axis=BLOCKS[path], keepdims=True)
            v = b2 * v + (1 - b2) * sq  # one second moment per block
            u = -lr * ((m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps) + wd * w)
            out.append(u)
            w = w + u
        expected[path] = np.stack(out)
    got = {path: np.asarray(v, np.float64) for path, v in gradtx.rules.leaf_paths(ours)[0]}
    assert_close_to_scale(got, expected, 1e-5, "adam_mini", step_axis=0)


def test_adam_mini_keeps_one_moment_per_block():
    state = gradtx.adam_mini(1e-3).init(MINI)
    is_block = lambda x: isinstance(x, gradtx.ScaleByBlockRmsState)  # noqa: E731
    nu = next(s.nu for s in jax.tree.leaves(state, is_leaf=is_block) if is_block(s))
    sizes = {path: int(np.size(v)) for path, v in gradtx.rules.leaf_paths(nu)[0]}
    assert sizes == {"embed": 15, "attn/query/kernel": 2, "mlp/kernel": 6, "mlp/bias": 1, "norm/scale": 1}
    table = gradtx.explain_blocks(gradtx.adam_mini(1e-3), MINI)
    assert "attn/query/kernel  (4, 2, 3)  2" in table and "per head" in table


def test_adam_mini_splits_a_fused_query_kernel_into_heads():
    rule = gradtx.AdamMiniRule(n_heads=2)
    g = jax.random.normal(jax.random.key(6), (4, 6))
    tx = gradtx.scale_by_block_rms(0.0, 0.0, rule)
    out = tx.update({"q_proj": g}, tx.init({"q_proj": g}))[0]["q_proj"]
    heads = np.asarray(g, np.float64).reshape(4, 2, 3)
    rms = np.sqrt(np.mean(heads**2, axis=(0, 2), keepdims=True))
    np.testing.assert_allclose(out, (heads / rms).reshape(4, 6), rtol=1e-5)


# --- MARS-AdamW (Yuan et al., 2024, algorithm 1) -------------------------------------


def mars_step(t: int, name: str, w: np.ndarray, g: np.ndarray, s: dict[str, Any]) -> Any:
    lr, b1, b2, eps, wd, gamma = 3e-3, 0.95, 0.99, 1e-8, 0.1, 0.025
    c = g + gamma * (b1 / (1 - b1)) * (g - s.get("g", 0.0))  # variance-reduced gradient
    c = c / max(1.0, float(np.linalg.norm(c)))  # clipped to norm 1
    m = b1 * s.get("m", 0.0) + (1 - b1) * c
    v = b2 * s.get("v", 0.0) + (1 - b2) * c**2
    u = -lr * ((m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps) + wd * w)
    return u, {"g": g, "m": m, "v": v}


def test_mars_adamw_matches_the_paper():
    ours = _ours(gradtx.mars_adamw(3e-3, 0.95, 0.99, 1e-8, 0.1, 0.025))
    assert_close_to_scale(ours, _run(mars_step), 1e-5, "mars_adamw", step_axis=0)


def test_mars_without_correction_is_adamw():
    ours = _ours(gradtx.chain(gradtx.mars_correction(0.0, clip=False), gradtx.adamw(1e-2)))
    assert_close_to_scale(ours, _ours(gradtx.adamw(1e-2)), 1e-6, "gamma 0", step_axis=0)


# --- Cautious (Liang et al., 2024, algorithm 1) ---------------------------------------


def _cautious(u: np.ndarray, g: np.ndarray) -> np.ndarray:
    mask = (u * g > 0).astype(np.float64)
    return u * mask / max(float(np.mean(mask)), 1e-3)


def cadamw_step(t: int, name: str, w: np.ndarray, g: np.ndarray, s: dict[str, Any]) -> Any:
    lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-8, 0.1
    m = b1 * s.get("m", 0.0) + (1 - b1) * g
    v = b2 * s.get("v", 0.0) + (1 - b2) * g**2
    u = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return -lr * (_cautious(u, g) + wd * w), {"m": m, "v": v}


def clion_step(t: int, name: str, w: np.ndarray, g: np.ndarray, s: dict[str, Any]) -> Any:
    lr, b1, b2, wd = 1e-2, 0.9, 0.99, 0.1
    m = s.get("m", 0.0)
    u = np.sign(b1 * m + (1 - b1) * g)  # Lion's interpolated sign
    return -lr * (_cautious(u, g) + wd * w), {"m": b2 * m + (1 - b2) * g}


def test_cautious_adamw_matches_the_paper():
    ours = _ours(gradtx.cautious_adamw(1e-2, 0.9, 0.999, 1e-8, 0.1))
    # float32 against float64 over 60 applied steps; the mask's 1 / mean rescales it
    assert_close_to_scale(ours, _run(cadamw_step), 3e-5, "cautious_adamw", step_axis=0)


def test_cautious_lion_matches_the_paper():
    ours = _ours(gradtx.cautious_lion(1e-2, 0.9, 0.99, 0.1))
    assert_close_to_scale(ours, _run(clion_step), 1e-6, "cautious_lion", step_axis=0)


def test_cautious_wrapper_masks_any_optimizer():
    """``cautious(sgd with momentum)``: the heavy-ball step kept where it descends."""

    def step(t: int, name: str, w: np.ndarray, g: np.ndarray, s: dict[str, Any]) -> Any:
        trace = g + 0.9 * s.get("trace", 0.0)
        u = -0.1 * trace
        mask = (u * g < 0).astype(np.float64)
        return u * mask / max(float(np.mean(mask)), 1e-3), {"trace": trace}

    ours = _ours(gradtx.cautious(gradtx.sgd(0.1, momentum=0.9)))
    assert_close_to_scale(ours, _run(step), 1e-6, "cautious(sgd)", step_axis=0)


def test_cautious_mask_needs_the_gradient_slot():
    with pytest.raises(ValueError, match="gradient"):
        opt = gradtx.chain(gradtx.scale_by_rss(), gradtx.cautious_mask())
        opt.update(jnp.ones(2), opt.init(jnp.ones(2)))


@pytest.mark.parametrize(
    "name",
    ["soap", "adam_mini", "mars_adamw", "cautious_adamw", "cautious_lion", "cautious", "muon", "galore"],
)
def test_on_packed_parameters_gives_the_plain_numbers(name):
    """Each block that needs a parameter's shape (Newton-Schulz, SOAP's statistics,
    Adam-mini's blocks, MARS's norm, the cautious mask's mean) sees the original leaves
    of a packed tree."""
    build = {
        "cautious": lambda: gradtx.cautious(gradtx.sgd(0.1, momentum=0.9)),
        "muon": lambda: gradtx.contrib.muon(0.02, muon_weight_dimension_numbers=gradtx.contrib.MatrixRule()),
        "galore": lambda: gradtx.contrib.galore(0.01, rank=2, update_proj_gap=3),
    }.get(name, lambda: getattr(gradtx, name)(1e-2))
    params = {**MINI, "w": PARAMS["w"]}
    grads = gradient_sequence(params, 20)
    packed = gradtx.pack(params)
    plain, _ = gradtx.testing.run_updates(build(), params, grads)
    ours, _ = gradtx.testing.run_updates(build(), packed, jax.vmap(packed.layout.pack)(grads))
    assert isinstance(ours, gradtx.Packed)
    assert_close_to_scale(jax.vmap(lambda u: u.unpack())(ours), plain, 1e-5, f"{name} packed", step_axis=0)
