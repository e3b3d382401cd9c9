"""The chain's channel (gradtx.channel): every wrapper carries every slot.

A block that reads a slot (Adam's second moment reads the gradient `momentum` saw)
must read the same tree inside any wrapper configured to be numerically transparent as
it reads outside it, on plain trees and on packed parameters, with and without
``group=``. The property runs over every block class that declares a slot it reads,
found by walking gradtx's transform classes, so a new statistics block is covered the
day it lands.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import channel
from gradtx.testing import run_updates, scaled_difference

STEPS = 50
PARAMS = {"w": jnp.ones((3, 4)), "b": jnp.zeros(4), "s": jnp.asarray(0.5)}


def _all_subclasses(cls: type) -> list[type]:
    """gradtx's own subclasses of ``cls`` (not those a test or a docs page defines)."""
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return [c for c in found if c.__module__.startswith("gradtx.")]


# Readers this harness cannot run, with where they are tested instead.
NEEDS_EXTRA = {
    "scale_by_diag_hessian": "its estimator reads obj_fn from update's keyword arguments, which "
    "run_updates does not pass; tests/test_contrib.py runs it inside sophia against optax",
}
READERS = sorted(
    {
        c
        for c in _all_subclasses(gradtx.Transform)
        if c.slots_read and not c.__name__.startswith("_") and c.__name__ not in NEEDS_EXTRA
    },
    key=lambda c: c.__name__,
)
# Blocks whose meaning depends on each parameter's own shape: flattening every leaf
# into one vector is not transparent for them by definition (one norm, not one per leaf).
# Blocks with integer settings that shape the computation (SOAP's largest side and
# refresh period): inject_hyperparams would trace them; pass them as static_args there.
STATIC_INTS = {"scale_by_soap"}
PER_LEAF = {"scale_by_layerwise_rms", "cautious_mask", "scale_by_block_rms", "scale_by_soap"}


def _grads(n: int = STEPS) -> Any:
    keys = jax.random.split(jax.random.PRNGKey(7), len(PARAMS))
    return {
        k: jax.random.normal(key, (n, *jnp.shape(v)))
        for key, (k, v) in zip(keys, sorted(PARAMS.items()), strict=True)
    }


def _all(value: Any) -> Callable[[Any], Any]:
    return lambda tree: jax.tree.map(lambda _: value, tree)


WRAPPERS: dict[str, Callable[[Any], Any]] = {
    "none": lambda b: b,
    "masked-all": lambda b: gradtx.masked(b, _all(True)),
    "partition-one-label": lambda b: gradtx.partition({"a": b}, _all("a")),
    "path_rules-no-override": lambda b: gradtx.path_rules(b, []),
    "flatten": gradtx.flatten,
    "conditionally_transform-always": lambda b: gradtx.conditionally_transform(b, lambda step: step >= 0),
    "conditionally_mask-always": lambda b: gradtx.conditionally_mask(b, lambda step: step >= 0),
    "apply_if_finite": lambda b: gradtx.apply_if_finite(b, 3),
    "MultiSteps-k1": lambda b: gradtx.MultiSteps(b, every_k_schedule=1),
    "inject_hyperparams": lambda b: gradtx.inject_hyperparams(type(b))(
        **dict.fromkeys(b._complement_fields, 0.75)
    ),
    "nested-chain": lambda b: gradtx.chain(gradtx.identity(), gradtx.chain(b)),
}
LAYOUTS = ("plain", "packed", "packed-group")
# Each step against its own scale. Most pairs are bit-identical; inside lax.cond (the
# conditions, MultiSteps) and on flatten's one vector XLA fuses the block's arithmetic
# differently: a few float32 roundings, at most 5.0e-7 of a step's scale measured over
# the catalogue (scale_by_rss in flatten; 2.2e-7 of the run's scale), amplified where a
# block cancels (scale_by_stddev's v - m^2). A wrapper that drops the channel is off by
# more than 0.1 (the planted test below).
WRAPPER_RTOL = 1e-6


def _pack(layout: str, tree: Any) -> Any:
    if layout == "plain":
        return tree
    group = (lambda path, x: x.ndim) if layout == "packed-group" else None
    return gradtx.pack(tree, group=group)


def _run(tx: Any, layout: str) -> Any:
    """Updates of 50 steps (leading step axis) as a plain tree."""
    params = _pack(layout, PARAMS)
    grads = _grads()
    if layout != "plain":
        steps = [jax.tree.map(lambda g, i=i: g[i], grads) for i in range(STEPS)]
        stacked = jax.tree.map(lambda *b: jnp.stack(b), *[params.layout.pack(g) for g in steps])
        updates, _ = run_updates(tx, params, stacked)
        return jax.vmap(lambda p: p.unpack())(updates)
    return run_updates(tx, params, grads)[0]


_REFERENCE: dict[tuple[str, str], Any] = {}


def _block(reader: type) -> Any:
    """The block with its defaults, its averaging coefficients at 0.75 (exact in float32
    with an exact complement, so `inject_hyperparams`, which keeps hyperparameters as
    float32 arrays, computes what the block computes from Python floats)."""
    return reader(**dict.fromkeys(reader._complement_fields, 0.75))


def _reference(reader: type, layout: str) -> Any:
    """``chain(momentum, B)`` on the same layout: a wrapper is compared with the block
    alone on the same buffers (the packed layout's own rounding is checked against the
    plain tree below)."""
    key = (reader.__name__, layout)
    if key not in _REFERENCE:
        _REFERENCE[key] = _run(gradtx.chain(gradtx.momentum(0.9), _block(reader)), layout)
    return _REFERENCE[key]


def _cases() -> list[Any]:
    cases = []
    for reader in READERS:
        for name in WRAPPERS:
            for layout in LAYOUTS:
                if name == "flatten" and reader.__name__ in PER_LEAF:
                    continue
                if name == "inject_hyperparams" and reader.__name__ in STATIC_INTS:
                    continue
                if name == "none":
                    continue  # the reference itself
                cases.append(pytest.param(reader, name, layout, id=f"{reader.__name__}-{name}-{layout}"))
    return cases


@pytest.mark.parametrize(("reader", "wrapper", "layout"), _cases())
def test_a_block_reads_the_same_slots_inside_a_transparent_wrapper(reader, wrapper, layout):
    expected = _reference(reader, layout)
    actual = _run(gradtx.chain(gradtx.momentum(0.9), WRAPPERS[wrapper](_block(reader))), layout)
    worst = scaled_difference(actual, expected, step_axis=0)
    assert worst <= WRAPPER_RTOL, f"{reader.__name__} in {wrapper} ({layout}): {worst:.3g} of scale"


@pytest.mark.parametrize("layout", ["packed", "packed-group"])
@pytest.mark.parametrize("reader", READERS, ids=lambda c: c.__name__)
def test_packed_parameters_give_the_plain_trees_numbers(reader, layout):
    """The same chain on packed buffers: XLA fuses the buffers' arithmetic differently
    (a few float32 roundings, measured at most 2.3e-7 of scale over 50 steps)."""
    worst = scaled_difference(_reference(reader, layout), _reference(reader, "plain"), step_axis=0)
    assert worst <= 1e-6, f"{reader.__name__} ({layout}): {worst:.3g} of scale"


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    "wrap",
    [
        lambda b: gradtx.masked(b, {"w": True, "b": False, "s": True}),
        lambda b: gradtx.partition(
            {"rms": b, "pass": gradtx.identity()}, {"w": "rms", "b": "pass", "s": "rms"}
        ),
    ],
    ids=["masked", "partition"],
)
def test_a_partial_mask_masks_the_slots_as_the_updates(wrap, layout):
    """Where the mask is True the block computes what it computes outside (the second
    moment of those leaves' gradient); elsewhere the momentum's output passes."""
    reader = gradtx.scale_by_belief_rms  # reads two slots
    actual = _run(gradtx.chain(gradtx.momentum(0.9), wrap(_block(reader))), layout)
    whole = _reference(reader, "plain")
    momentum_only = _run(gradtx.momentum(0.9), "plain")
    for key, inside in (("w", True), ("b", False), ("s", True)):
        expected = whole[key] if inside else momentum_only[key]
        assert scaled_difference(actual[key], expected, step_axis=0) <= WRAPPER_RTOL, key


def test_the_property_fails_when_a_wrapper_drops_the_channel(monkeypatch):
    """Plant the bug the property guards against (flatten starting a fresh channel, as
    it did): the difference is far above the bound."""
    monkeypatch.setattr(channel.Context, "carried", lambda self, transform, extra=None: channel.Context())
    actual = _run(gradtx.chain(gradtx.momentum(0.9), gradtx.flatten(gradtx.scale_by_rms())), "plain")
    expected = _run(gradtx.chain(gradtx.momentum(0.9), gradtx.scale_by_rms()), "plain")
    assert scaled_difference(actual, expected, step_axis=0) > 0.1


def test_slots_nobody_reads_add_no_operations():
    """A wrapper transforms a slot only when a block inside reads it: after `momentum`
    (which publishes three slots) `masked` around a block that reads none traces to as
    many operations as after `ema` (the same average, publishing nothing). On packed
    parameters whose buffer the mask splits, carrying the slots eagerly unpacked each of
    them (1,512 extra operations for 1,000 leaves)."""
    params = {f"l{i}": {"w": jnp.ones((4, 4)), "b": jnp.zeros(4)} for i in range(20)}
    packed = gradtx.pack(params)

    def operations(first: Any) -> int:
        tx = gradtx.chain(
            first, gradtx.masked(gradtx.scale(0.5), lambda t: jax.tree.map(lambda x: x.ndim > 1, t))
        )
        state = tx.init(packed)
        return len(jax.make_jaxpr(lambda g, s: tx.update(g, s, packed))(packed, state).jaxpr.eqns)

    assert operations(gradtx.momentum(0.9)) == operations(gradtx.ema(0.9))


def test_readers_are_found():
    names = {c.__name__ for c in READERS}
    assert {"scale_by_rms", "scale_by_belief_rms", "scale_by_yogi_rms", "scale_by_adan_rms"} <= names


def test_monitor_measures_with_the_chain_slots():
    """A measure that reads a slot sees the chain's: its measurement is the block's
    output in the chain."""
    tx = gradtx.chain(gradtx.momentum(0.9), gradtx.monitor({"adam": gradtx.scale_by_rms()}))
    g = _grads(3)
    state = tx.init(PARAMS)
    ref = gradtx.chain(gradtx.momentum(0.9), gradtx.scale_by_rms())
    ref_state = ref.init(PARAMS)
    for i in range(3):
        gi = jax.tree.map(lambda x, i=i: x[i], g)
        _, state = tx.update(gi, state, PARAMS)
        expected, ref_state = ref.update(gi, ref_state, PARAMS)
        measured = state[1].measurements["adam"]
        assert scaled_difference(measured, expected) == 0.0


def test_lookahead_carries_the_slots_of_an_enclosing_chain():
    """lookahead's fast optimizer reads the slots of the chain around it (on the fast
    part of the updates); with alpha = 1 and syncing every step, the fast updates are
    the block's."""
    inner = gradtx.lookahead(gradtx.scale_by_rms(), sync_period=1, slow_step_size=1.0)
    ctx = channel.Context()
    g = jax.tree.map(lambda x: x[0], _grads(1))
    mom = gradtx.momentum(0.9)
    moved, _ = mom._apply(g, mom.init(PARAMS), None, ctx)
    params = gradtx.LookaheadParams.init_synced(PARAMS)
    out, _ = inner._apply(moved, inner.init(params), params, ctx)
    ref = gradtx.chain(gradtx.momentum(0.9), gradtx.scale_by_rms())
    expected, _ = ref.update(g, ref.init(PARAMS))
    assert scaled_difference(out.fast, expected) == 0.0


# The slot each reader cannot do without; every other read falls back to the block's
# input where nothing published the slot (optax's meaning of chain(trace, scale_by_rms)).
REQUIRED_READS = {
    "scale_by_belief_rms": "first_moment",
    "interpolated_sign": "gradient",
    "cautious_mask": "gradient",
}


@pytest.mark.parametrize("reader", READERS, ids=lambda c: c.__name__)
def test_a_required_slot_nothing_publishes_raises_naming_it(reader):
    tx = gradtx.chain(gradtx.scale(1.0), gradtx.masked(reader(), _all(True)))
    required = REQUIRED_READS.get(reader.__name__)
    if required is None:
        tx.update(PARAMS, tx.init(PARAMS), PARAMS)  # falls back to its input, as in optax
        return
    with pytest.raises(ValueError, match=rf"masked > {reader.__name__}: reads the slot '{required}'"):
        tx.update(PARAMS, tx.init(PARAMS), PARAMS)


def test_a_withheld_slot_raises_with_the_reason():
    ctx = channel.Context()
    ctx.publish(gradtx.momentum(), gradient=PARAMS)
    inner = ctx.withholding("the wrapper cannot carry it")
    with pytest.raises(ValueError, match=r"scale_by_rms: reads the slot 'gradient' .*the wrapper cannot"):
        inner.read(gradtx.scale_by_rms(), "gradient", fallback=PARAMS)


def test_undeclared_reads_and_publications_are_refused():
    ctx = channel.Context()
    with pytest.raises(TypeError, match="without declaring it"):
        ctx.read(gradtx.scale(1.0), "gradient", fallback=None)
    with pytest.raises(TypeError, match="without declaring it"):
        ctx.publish(gradtx.scale(1.0), gradient=PARAMS)
    with pytest.raises(TypeError, match="does not list"):

        class reads_nothing_known(gradtx.Transform):
            slots_read = ("hessian",)


def test_what_a_wrapper_publishes_stays_inside():
    """momentum inside masked publishes for the blocks inside masked only: the
    scale_by_rms after it reads its own input (optax's meaning)."""
    g = jax.tree.map(lambda x: x[0], _grads(1))
    tx = gradtx.chain(gradtx.masked(gradtx.momentum(0.5), _all(True)), gradtx.scale_by_rms(0.5))
    ref = gradtx.chain(gradtx.ema(0.5), gradtx.scale_by_rms(0.5))
    assert scaled_difference(tx.update(g, tx.init(PARAMS))[0], ref.update(g, ref.init(PARAMS))[0]) == 0.0


# --- MultiSteps: what an accumulating wrapper publishes ---------------------------------


def _adam_parts(b1: float, b2: float, eps: float) -> tuple[Any, Any]:
    return gradtx.momentum(b1), gradtx.scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True)


def test_multisteps_reads_the_mean_of_the_slots_over_micro_batches():
    """chain(momentum, MultiSteps(scale_by_rms, k=2)) against float64: momentum runs at
    every micro-batch; the second moment reads the mean of the k gradients, and scales
    the mean of the k momentum outputs."""
    b1, b2, eps, k, n = 0.9, 0.99, 1e-8, 2, 8
    mom, rms = _adam_parts(b1, b2, eps)
    tx = gradtx.chain(mom, gradtx.MultiSteps(rms, every_k_schedule=k))
    g = _grads(n)
    state = tx.init(PARAMS)
    out = []
    for i in range(n):
        u, state = tx.update(jax.tree.map(lambda x, i=i: x[i], g), state, PARAMS)
        out.append(u)
    for key in PARAMS:
        gs = np.asarray(g[key], np.float64)
        m, v, emitted = np.zeros(gs.shape[1:]), np.zeros(gs.shape[1:]), 0
        acc_u, acc_g = [], []
        for t in range(n):
            m = b1 * m + (1 - b1) * gs[t]
            acc_u.append(m / (1 - b1 ** (t + 1)))
            acc_g.append(gs[t])
            expected = np.zeros(gs.shape[1:])
            if len(acc_u) == k:
                emitted += 1
                v = b2 * v + (1 - b2) * np.mean(acc_g, axis=0) ** 2
                expected = np.mean(acc_u, axis=0) / (np.sqrt(v / (1 - b2**emitted)) + eps)
                acc_u, acc_g = [], []
            np.testing.assert_allclose(np.asarray(out[t][key]), expected, rtol=2e-5, atol=1e-6)


def test_multisteps_weighted_sum_without_the_mean():
    """use_grad_mean=False with update(..., weight=w) emits the weighted sum, against
    float64 (an ignored weight gives the plain sum and fails)."""
    k, weights = 3, [0.5, 2.0, 1.25, 3.0, 0.25, 1.0]
    tx = gradtx.MultiSteps(gradtx.scale(1.0), every_k_schedule=k, use_grad_mean=False)
    g = _grads(len(weights))
    state = tx.init(PARAMS)
    for i, w in enumerate(weights):
        u, state = tx.update(jax.tree.map(lambda x, i=i: x[i], g), state, PARAMS, weight=w)
        if i % k == k - 1:
            for key in PARAMS:
                gs = np.asarray(g[key][i - k + 1 : i + 1], np.float64)
                ws = np.asarray(weights[i - k + 1 : i + 1], np.float64).reshape(-1, *[1] * (gs.ndim - 1))
                np.testing.assert_allclose(np.asarray(u[key]), np.sum(ws * gs, axis=0), rtol=1e-6, atol=1e-6)


def test_multisteps_state_for_slots_only_where_the_inner_optimizer_reads_them():
    params = PARAMS
    whole = gradtx.MultiSteps(gradtx.adam(1e-3), every_k_schedule=2)
    assert whole.init(params).acc_slots == {}
    mom, rms = _adam_parts(0.9, 0.99, 1e-8)
    inside = gradtx.chain(mom, gradtx.MultiSteps(rms, every_k_schedule=2))
    assert sorted(inside.init(params)[1].acc_slots) == ["gradient"]
    scaled = gradtx.chain(mom, gradtx.MultiSteps(gradtx.scale(2.0), every_k_schedule=2))
    assert scaled.init(params)[1].acc_slots == {}


# --- packed parameters with group= ------------------------------------------------------


def _matrices(tree: Any) -> Any:
    return jax.tree.map(lambda x: x.ndim > 1, tree)


@pytest.mark.parametrize(
    "make",
    [
        lambda: gradtx.masked(gradtx.lamb(1e-2), _matrices),
        lambda: gradtx.masked(gradtx.adafactor(1e-2), _matrices),
        lambda: gradtx.masked(gradtx.novograd(1e-2), _matrices),
        lambda: gradtx.path_rules(gradtx.lamb(1e-2), [(lambda path, x: x.ndim > 1, {"learning_rate": 1e-3})]),
    ],
    ids=["masked-lamb", "masked-adafactor", "masked-novograd", "path_rules-lamb"],
)
def test_shape_aware_blocks_under_wrappers_on_packed_groups(make):
    plain = run_updates(make(), PARAMS, _grads(5))[0]
    params = _pack("packed-group", PARAMS)
    g = _grads(5)
    stacked = jax.tree.map(
        lambda *b: jnp.stack(b), *[params.layout.pack(jax.tree.map(lambda x, i=i: x[i], g)) for i in range(5)]
    )
    packed = jax.vmap(lambda p: p.unpack())(run_updates(make(), params, stacked)[0])
    assert scaled_difference(packed, plain, step_axis=0) <= 2e-7


# --- the contract as documented ---------------------------------------------------------


def _shown_name(cls: type) -> str:
    """A block as the docs name it: gradtx's name, or the preset module's."""
    import gradtx.keras
    import gradtx.torch

    for prefix, module in (
        ("", gradtx),
        ("torch.", gradtx.torch),
        ("keras.", gradtx.keras),
        ("contrib.", gradtx.contrib),
    ):
        if getattr(module, cls.__name__, None) is cls:
            return prefix + cls.__name__
    raise AssertionError(f"{cls.__name__} declares slots but is not public")


def test_the_docs_table_lists_every_slot_its_publishers_and_readers():
    page = (pathlib.Path(__file__).parent.parent / "docs" / "how_a_chain_works.md").read_text()
    rows = {}
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 4 and cells[0].strip("`") in channel.SLOTS:
            names = lambda cell: sorted(n.strip().strip("`") for n in cell.split(","))  # noqa: E731
            rows[cells[0].strip("`")] = (names(cells[2]), names(cells[3]))
    blocks = [c for c in _all_subclasses(gradtx.Transform) if not c.__name__.startswith("_")]
    declared = {
        slot: (
            sorted({_shown_name(c) for c in blocks if slot in c.slots_published}),
            sorted({_shown_name(c) for c in blocks if slot in c.slots_read}),
        )
        for slot in channel.SLOTS
    }
    assert rows == declared
