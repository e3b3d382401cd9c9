"""The packed layout: the conformance catalogue on packed trees gives the numbers it
gives on plain trees; gradients come back packed; masks, groups, dtypes, checkpoints."""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cases import CASE_IDS, CASES, Case, gradient_sequence, params_like

import gradtx
from gradtx.testing import assert_close_to_scale, run_updates

STEPS = 50
PARAMS = params_like()
GRADS = gradient_sequence(PARAMS, STEPS)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_catalogue_on_packed_trees(case: Case):
    packed = gradtx.pack(PARAMS)
    packed_grads = jax.vmap(packed.layout.pack)(GRADS)
    plain, _ = run_updates(case.gradtx(), PARAMS, GRADS)
    ours, _ = run_updates(case.gradtx(), packed, packed_grads)
    assert isinstance(ours, gradtx.Packed)
    unpacked = jax.vmap(lambda u: u.unpack())(ours)
    # Elementwise transforms are bit for bit; a global norm sums in another order. An
    # optimizer that returns new position minus old (case.jit_atol) shows the positions'
    # rounding, which differs where XLA fuses the packed buffers otherwise: 2e-5.
    rtol = 1e-6 if case.jit_atol <= 1e-7 else 2e-5
    assert_close_to_scale(unpacked, plain, rtol, f"{case.id} packed")


def test_gradient_through_unpack_is_packed_and_uses_concatenate():
    params = {f"layer{i}": {"w": jnp.full((3, 2), float(i)), "b": jnp.ones(2)} for i in range(5)}
    packed = gradtx.pack(params)

    def loss(tree):
        return sum(jnp.sum(jnp.sin(layer["w"])) + jnp.sum(layer["b"] ** 2) for layer in tree.values())

    grads = jax.grad(lambda p: loss(p.unpack()))(packed)
    assert isinstance(grads, gradtx.Packed) and len(grads.buffers) == 1
    want = jax.grad(loss)(params)
    for a, b in zip(jax.tree.leaves(grads.unpack()), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(a, b)
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda p: loss(p.unpack())))(packed))
    assert "concatenate" in jaxpr and " pad" not in jaxpr  # no full-size pads per leaf


def test_groups_dtypes_and_leaves_kept_alone():
    params = {"w": jnp.ones((4, 4)), "b": jnp.ones(4), "e": jnp.ones(100, jnp.bfloat16), "s": jnp.ones(())}
    packed = gradtx.pack(params, group=lambda path, x: x.ndim > 1, buffer_size=50)
    shapes = [(b.shape, b.dtype) for b in packed.buffers]
    assert shapes == [((5,), jnp.float32), ((100,), jnp.bfloat16), ((16,), jnp.float32)]
    many = gradtx.pack({f"x{i}": jnp.full(3, float(i)) for i in range(10)}, buffer_size=7)
    assert [b.shape for b in many.buffers] == [(6,)] * 5  # two leaves fit, a third would not
    np.testing.assert_array_equal(many.unpack()["x7"], [7.0, 7.0, 7.0])
    assert packed.unpack()["e"].dtype == jnp.bfloat16
    for a, b in zip(jax.tree.leaves(packed.unpack()), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("group", [None, lambda path, x: x.ndim > 1])
def test_weight_decay_mask_on_packed(group):
    params = {"w": jnp.full((2, 2), 2.0), "b": jnp.full(3, 2.0)}
    packed = gradtx.pack(params, group=group)
    opt = gradtx.add_decayed_weights(0.5, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p))
    updates, _ = opt.update(
        packed.layout.pack(jax.tree.map(jnp.zeros_like, params)), opt.init(packed), packed
    )
    out = updates.unpack()
    np.testing.assert_array_equal(out["w"], np.full((2, 2), 1.0))
    np.testing.assert_array_equal(out["b"], np.zeros(3))


def test_packed_state_checkpoints_and_donates():
    packed = gradtx.pack(PARAMS)
    opt = gradtx.adamw(1e-3)
    state = opt.init(packed)
    for i in range(3):  # a state that is not its initial zeros
        packed_grads = packed.layout.pack(jax.tree.map(lambda g, i=i: g[i], GRADS))
        updates, state = opt.update(packed_grads, state, packed)
        packed = gradtx.apply_updates(packed, updates)
    restored = pickle.loads(pickle.dumps(jax.device_get((packed, state))))
    assert jax.tree.structure(restored) == jax.tree.structure((packed, state))
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves((packed, state)), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    # The restored pair steps on exactly as the original does.
    next_grads = packed.layout.pack(jax.tree.map(lambda g: g[3], GRADS))
    resumed = opt.update(next_grads, restored[1], restored[0])
    for a, b in zip(
        jax.tree.leaves(resumed), jax.tree.leaves(opt.update(next_grads, state, packed)), strict=True
    ):
        np.testing.assert_array_equal(a, b)

    @jax.jit
    def step(p, s, g):
        u, s = opt.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    donated = jax.jit(step, donate_argnums=(0, 1))
    grads = packed.layout.pack(jax.tree.map(lambda g: g[0], GRADS))
    want, _ = step(packed, state, grads)
    got, _ = donated(*jax.tree.map(jnp.copy, (packed, state)), grads)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(a, b)
    text = donated.lower(packed, state, grads).as_text()
    assert "tf.aliasing_output" in text or "jax.buffer_donor" in text


PRESETS = {
    "torch.SGD": lambda: gradtx.torch.SGD(0.05, momentum=0.9, dampening=0.3, weight_decay=0.1),
    "torch.Adam": lambda: gradtx.torch.Adam(0.01, amsgrad=True, maximize=True),
    "torch.AdamW": lambda: gradtx.torch.AdamW(0.01, weight_decay=0.1),
    "torch.RMSprop": lambda: gradtx.torch.RMSprop(0.01, centered=True, momentum=0.5),
    "torch.Adagrad": lambda: gradtx.torch.Adagrad(0.1, lr_decay=0.01),
    "torch.Adadelta": lambda: gradtx.torch.Adadelta(),
    "torch.Adamax": lambda: gradtx.torch.Adamax(0.01),
    "torch.NAdam": lambda: gradtx.torch.NAdam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
    "torch.RAdam": lambda: gradtx.torch.RAdam(0.01),
    "torch.ASGD": lambda: gradtx.torch.ASGD(0.05, t0=10),
    "torch.Rprop": lambda: gradtx.torch.Rprop(0.01),
    "torch.Adafactor": lambda: gradtx.torch.Adafactor(0.05, weight_decay=0.1),
    "torch.clip_grad_norm": lambda: gradtx.chain(gradtx.torch.clip_grad_norm(0.5), gradtx.torch.SGD(0.1)),
    "keras.SGD": lambda: gradtx.keras.SGD(0.05, momentum=0.9, clipnorm=0.5),
    "keras.AdamW": lambda: gradtx.keras.AdamW(0.01, amsgrad=True, use_ema=True, ema_overwrite_frequency=7),
    "keras.RMSprop": lambda: gradtx.keras.RMSprop(0.01, centered=True, momentum=0.5),
    "keras.Adamax": lambda: gradtx.keras.Adamax(0.01, global_clipnorm=1.0),
    "keras.Nadam": lambda: gradtx.keras.Nadam(0.01),
    "keras.Lamb": lambda: gradtx.keras.Lamb(0.01),
    "keras.Ftrl": lambda: gradtx.keras.Ftrl(0.1, l1_regularization_strength=0.01),
}


LANDING = ("torch.AdamW", "torch.NAdam", "keras.AdamW")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_on_packed_trees(name):
    """The framework presets on packed parameters: the plain tree's numbers (Adafactor's
    factored statistics, Keras's per-leaf clipnorm and Lamb's trust ratio see the
    original leaves)."""
    packed = gradtx.pack(PARAMS)
    packed_grads = jax.vmap(packed.layout.pack)(GRADS)
    plain, _ = run_updates(PRESETS[name](), PARAMS, GRADS)
    ours, _ = run_updates(PRESETS[name](), packed, packed_grads)
    assert isinstance(ours, gradtx.Packed)
    ours = jax.vmap(lambda u: u.unpack())(ours)
    if name in LANDING:
        # The decoupled decay returns (p * f + u) - p, an update on the parameters' grid:
        # compare where the parameters land, p + u (a rounding of u in another fusion moves
        # it by one ulp of p, 1e-5 of the update's scale).
        ours, plain = (jax.tree.map(lambda p, u: p[None] + u, PARAMS, x) for x in (ours, plain))
    assert_close_to_scale(ours, plain, 1e-6, f"{name} packed")
