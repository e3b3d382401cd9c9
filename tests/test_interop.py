"""flax, equinox and orbax: the optimizer kept as data where users train.

Each train step below is jitted the way its library does it (``nnx.jit``, ``jax.jit``
over a ``TrainState``, ``eqx.filter_jit``) and fed three learning rates and then a new
``b1``: with gradtx's adapters it traces once and gives the numbers of the same
optimizer built anew for each setting (gradtx's static build exactly, optax's within
float32 rounding). The plain library path is run beside it and must trace once per
setting, so a counter that stopped counting would fail the test.
"""

import pathlib
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from conftest import reference_numerics
from flax import nnx
from flax.training import train_state

import gradtx
import gradtx.flax
from gradtx.testing import assert_close_to_scale

SETTINGS = [(1e-2, 0.9), (3e-2, 0.9), (5e-3, 0.9), (5e-3, 0.8)]  # three rates, then a new b1
STEPS = 2
X = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)
Y = jnp.cos(jnp.arange(8.0)).reshape(4, 2)


def gradtx_adamw(lr: float, b1: float) -> gradtx.Transform:
    return gradtx.adamw(lr, b1=b1, weight_decay=0.1)


def optax_adamw(lr: float, b1: float) -> optax.GradientTransformation:
    return optax.adamw(lr, b1=b1, weight_decay=0.1)


def assert_same(ours: Any, theirs: Any, what: str) -> None:
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=what)


# --- flax nnx ---------------------------------------------------------------------------


class Net(nnx.Module):
    def __init__(self) -> None:
        self.hidden = nnx.Linear(3, 4, rngs=nnx.Rngs(0))
        self.out = nnx.Linear(4, 2, rngs=nnx.Rngs(1))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(jnp.tanh(self.hidden(x)))


def net_loss(model: Net) -> jax.Array:
    return jnp.mean((model(X) - Y) ** 2)


def train_nnx(optimizer_class: Any, build: Any) -> tuple[Any, int, Any]:
    """Trains a fresh Net through every setting; returns its parameters, the number of
    traces and the optimizer."""
    traces = []

    @nnx.jit
    def step(model: Net, optimizer: Any) -> None:
        traces.append(None)
        optimizer.update(model, nnx.grad(net_loss)(model))

    model = Net()
    optimizer = optimizer_class(model, build(*SETTINGS[0]), wrt=nnx.Param)
    with reference_numerics():  # flax's own code promotes
        for setting in SETTINGS:
            optimizer.tx = build(*setting)  # a new optimizer, the state carries on
            for _ in range(STEPS):
                step(model, optimizer)
    return nnx.as_pure(nnx.state(model, nnx.Param)), len(traces), optimizer


def test_nnx_optimizer_takes_new_numbers_without_tracing_again():
    ours, traces, optimizer = train_nnx(gradtx.flax.Optimizer, gradtx_adamw)
    anew, anew_traces, _ = train_nnx(nnx.Optimizer, gradtx_adamw)
    theirs, _, _ = train_nnx(nnx.Optimizer, optax_adamw)
    assert (traces, anew_traces) == (1, len(SETTINGS))
    assert_same(ours, anew, "gradtx.flax.Optimizer against gradtx built anew, static")
    assert_close_to_scale(ours, theirs, 1e-6, "gradtx.flax.Optimizer against optax")
    hp = optimizer.hyperparams()
    assert int(hp["step"]) == STEPS * len(SETTINGS) == int(optimizer.step[...])
    np.testing.assert_allclose([hp["learning_rate"], hp["b1"]], SETTINGS[-1], rtol=1e-7)
    assert isinstance(optimizer.tx, gradtx.Transform)


def test_nnx_optimizer_holds_arrays_and_changes_structure():
    model = Net()
    optimizer = gradtx.flax.Optimizer(model, gradtx.as_arrays(gradtx.sgd(0.1)), wrt=nnx.Param)
    numbers = nnx.state(optimizer, gradtx.flax.OptHyper)
    assert [float(v) for v in jax.tree.leaves(numbers)] == [np.float32(0.1)]
    # Another structure (momentum added) replaces the variables: a new trace, as it must.
    optimizer.tx = gradtx.sgd(0.1, momentum=0.9)
    assert len(jax.tree.leaves(nnx.state(optimizer, gradtx.flax.OptHyper))) == 2
    with pytest.raises(ValueError, match=r"Found data .* static attribute 'tx'"):  # flax's refusal
        nnx.Optimizer(model, gradtx.as_arrays(gradtx.sgd(0.1)), wrt=nnx.Param)  # pyright: ignore[reportArgumentType]


# --- bfloat16 parameters: stochastic rounding in the flax adapters ------------------------
#
# SGD at lr 2e-3 on 0.5 |p - target|^2 from p = 1 (target 1.2 to 1.4): each step moves a
# parameter by less than half of bfloat16's spacing near 1 (2^-8), so rounding to nearest
# never moves it. The reference is the same loop over `gradtx.apply_updates` with the keys
# the adapter documents (``fold_in(key, step)``).
SR_TARGET = jnp.linspace(1.2, 1.4, 256)
SR_STEPS = 600


def sr_reference(rounding: str, key: jax.Array, grad_dtype: Any = jnp.float32) -> jax.Array:
    tx = gradtx.sgd(2e-3)

    def body(i: Any, p: jax.Array) -> jax.Array:
        u, _ = tx.update((p.astype(jnp.float32) - SR_TARGET).astype(grad_dtype), tx.init(p))
        if rounding == "nearest":
            return gradtx.apply_updates(p, u)
        return gradtx.apply_updates(p, u, rounding="stochastic", key=jax.random.fold_in(key, i))

    return jax.jit(lambda p: jax.lax.fori_loop(0, SR_STEPS, body, p))(jnp.ones(256, jnp.bfloat16))


def sr_loss(p: jax.Array) -> float:
    return float(0.5 * jnp.mean((p.astype(jnp.float32) - SR_TARGET) ** 2))


class Vector(nnx.Module):
    def __init__(self) -> None:
        self.p = nnx.Param(jnp.ones(256, jnp.bfloat16))


@pytest.mark.slow
def test_nnx_optimizer_rounds_bfloat16_parameters_stochastically():
    """`gradtx.flax.Optimizer(rounding="stochastic", key=...)`: the reference's numbers bit
    for bit, where rounding to nearest stalls; the key is optimizer state, so a run saved
    halfway and restored into a new optimizer ends the same."""
    key = jax.random.key(7)

    def run(rounding: str, steps: int, model: Vector | None = None, opt: Any = None) -> tuple[Vector, Any]:
        model = model if model is not None else Vector()
        if opt is None:
            extra = {"rounding": "stochastic", "key": key} if rounding == "stochastic" else {}
            opt = gradtx.flax.Optimizer(model, gradtx.sgd(2e-3), wrt=nnx.Param, **extra)

        @nnx.jit
        def step(model: Vector, opt: Any) -> None:
            grads = nnx.grad(lambda m: 0.5 * jnp.sum((m.p[...].astype(jnp.float32) - SR_TARGET) ** 2))(model)
            opt.update(model, grads)

        for _ in range(steps):
            step(model, opt)
        return model, opt

    start = sr_loss(jnp.ones(256))
    nearest, _ = run("nearest", SR_STEPS)
    assert sr_loss(nearest.p[...]) == start  # stalled
    stochastic, _ = run("stochastic", SR_STEPS)
    # The gradient of a bfloat16 parameter is bfloat16, and so SGD's update: the sum is
    # taken in float32 all the same (`gradtx.apply_updates`), then rounded at random.
    reference = sr_reference("stochastic", key, jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(stochastic.p[...]), np.asarray(reference))
    assert sr_loss(stochastic.p[...]) < 0.2 * start
    # Saved after half the steps (nnx state, key included), restored into a fresh pair.
    half_model, half_opt = run("stochastic", SR_STEPS // 2)
    saved = nnx.state((half_model, half_opt))
    model, opt = (
        Vector(),
        gradtx.flax.Optimizer(
            Vector(), gradtx.sgd(2e-3), wrt=nnx.Param, rounding="stochastic", key=jax.random.key(0)
        ),
    )
    nnx.update((model, opt), saved)
    resumed, _ = run("stochastic", SR_STEPS - SR_STEPS // 2, model, opt)
    np.testing.assert_array_equal(np.asarray(resumed.p[...]), np.asarray(stochastic.p[...]))
    with pytest.raises(ValueError, match="needs a key"):
        gradtx.flax.Optimizer(Vector(), gradtx.sgd(0.1), wrt=nnx.Param, rounding="stochastic")
    with pytest.raises(ValueError, match="rounding must be"):
        gradtx.flax.Optimizer(Vector(), gradtx.sgd(0.1), wrt=nnx.Param, rounding="up")


@pytest.mark.slow
def test_train_state_rounds_bfloat16_parameters_stochastically():
    """``TrainState.apply_gradients(grads=..., rounding="stochastic", key=...)``: the
    reference's numbers bit for bit; to nearest it stalls, as flax's own does."""
    key = jax.random.key(3)

    def run(cls: Any, rounding: str) -> jax.Array:
        def body(i: Any, state: Any) -> Any:
            grads = {"p": state.params["p"].astype(jnp.float32) - SR_TARGET}
            if rounding == "nearest":
                return state.apply_gradients(grads=grads)
            return state.apply_gradients(
                grads=grads, rounding="stochastic", key=jax.random.fold_in(key, state.step)
            )

        state = cls.create(apply_fn=None, params={"p": jnp.ones(256, jnp.bfloat16)}, tx=gradtx.sgd(2e-3))
        return jax.jit(lambda s: jax.lax.fori_loop(0, SR_STEPS, body, s))(state).params["p"]

    start = sr_loss(jnp.ones(256))
    with reference_numerics():  # optax's apply_updates promotes bfloat16 + float32
        assert sr_loss(run(train_state.TrainState, "nearest")) == start
    assert sr_loss(run(gradtx.flax.TrainState, "nearest")) == start
    stochastic = run(gradtx.flax.TrainState, "stochastic")
    np.testing.assert_array_equal(np.asarray(stochastic), np.asarray(sr_reference("stochastic", key)))
    assert sr_loss(stochastic) < 0.2 * start


# --- flax TrainState --------------------------------------------------------------------


def mlp_apply(params: Any, x: jax.Array) -> jax.Array:
    return jnp.tanh(x @ params["w1"] + params["b1"][None, :]) @ params["w2"]


PARAMS = {
    "w1": jnp.linspace(-0.5, 0.5, 12).reshape(3, 4),
    "b1": jnp.zeros(4),
    "w2": jnp.linspace(0.3, -0.3, 8).reshape(4, 2),
}


def train_state_run(state_class: Any, build: Any) -> tuple[Any, int]:
    traces = []

    @jax.jit
    def step(state: Any) -> Any:
        traces.append(None)
        grads = jax.grad(lambda p: jnp.mean((state.apply_fn(p, X) - Y) ** 2))(state.params)
        return state.apply_gradients(grads=grads)

    state = state_class.create(apply_fn=mlp_apply, params=PARAMS, tx=build(*SETTINGS[0]))
    with reference_numerics():
        for setting in SETTINGS:
            state = state.replace(tx=build(*setting))
            for _ in range(STEPS):
                state = step(state)
    return state, len(traces)


def test_train_state_takes_new_numbers_without_tracing_again():
    ours, traces = train_state_run(gradtx.flax.TrainState, gradtx_adamw)
    anew, anew_traces = train_state_run(train_state.TrainState, gradtx_adamw)
    theirs, _ = train_state_run(train_state.TrainState, optax_adamw)
    assert (traces, anew_traces) == (1, len(SETTINGS))
    assert_same(ours.params, anew.params, "TrainState against gradtx built anew")
    assert_close_to_scale(ours.params, theirs.params, 1e-6, "TrainState against optax")
    assert int(ours.step) == STEPS * len(SETTINGS)
    hp = gradtx.hyperparams(ours.tx, ours.opt_state)
    np.testing.assert_allclose([hp["learning_rate"], hp["b1"]], SETTINGS[-1], rtol=1e-7)


# --- equinox ----------------------------------------------------------------------------


def eqx_model() -> eqx.nn.MLP:
    return eqx.nn.MLP(3, 2, 4, 1, activation=jnp.tanh, key=jax.random.key(0))


def train_eqx(as_data: bool, build: Any) -> tuple[Any, int]:
    traces = []

    @eqx.filter_jit
    def step(model: eqx.nn.MLP, state: Any, optimizer: Any) -> tuple[eqx.nn.MLP, Any]:
        traces.append(None)
        grads = eqx.filter_grad(lambda m: jnp.mean((jax.vmap(m)(X) - Y) ** 2))(model)
        updates, state = optimizer.update(grads, state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), state

    model = eqx_model()
    state = build(*SETTINGS[0]).init(eqx.filter(model, eqx.is_array))
    with reference_numerics():
        for setting in SETTINGS:
            optimizer = build(*setting)
            optimizer = gradtx.as_arrays(optimizer) if as_data else optimizer
            for _ in range(STEPS):
                model, state = step(model, state, optimizer)
    return eqx.filter(model, eqx.is_array), len(traces)


def test_equinox_filter_jit_takes_new_numbers_without_tracing_again():
    ours, traces = train_eqx(True, gradtx_adamw)
    anew, anew_traces = train_eqx(False, gradtx_adamw)  # Python numbers are static there
    theirs, _ = train_eqx(False, optax_adamw)
    assert (traces, anew_traces) == (1, len(SETTINGS))
    assert_same(ours, anew, "as_arrays under filter_jit against gradtx built anew")
    assert_close_to_scale(ours, theirs, 1e-6, "as_arrays under filter_jit against optax")


class _PatchModel(eqx.Module):
    """A model whose non-array fields (an int, a float, a function) have ``None``
    gradients: equinox code passes the whole model as ``params``."""

    mlp: eqx.nn.MLP
    patch_size: int = 4
    dropout_rate: float = 0.1
    activation: Any = jax.nn.gelu

    def __call__(self, x: Any) -> Any:
        return self.activation(self.mlp(x))


# optax's optimizers that read params and accept the whole model (optax's lamb, lars,
# fromage, novograd and adafactor raise on it; gradtx accepts it everywhere)
WHOLE_MODEL = ("adam", "adamw", "nadamw", "adamaxw", "lion", "adan")


@pytest.mark.parametrize("name", WHOLE_MODEL)
def test_the_whole_equinox_model_as_params_gives_optax_numbers(name):
    model = _PatchModel(eqx_model())
    ours, theirs = getattr(gradtx, name)(1e-2), getattr(optax, name)(1e-2)
    arrays = eqx.filter(model, eqx.is_array)
    our_state, their_state = ours.init(arrays), theirs.init(arrays)
    our_model = their_model = model
    for _ in range(3):
        loss = lambda m: jnp.mean((jax.vmap(m)(X) - Y) ** 2)  # noqa: E731
        grads = eqx.filter_grad(loss)(our_model)
        updates, our_state = ours.update(grads, our_state, our_model)
        our_model = eqx.apply_updates(our_model, updates)
        with reference_numerics():
            their_grads = eqx.filter_grad(loss)(their_model)
            their_updates, their_state = theirs.update(their_grads, their_state, their_model)
        their_model = eqx.apply_updates(their_model, their_updates)
    assert our_model.patch_size == 4 and our_model.activation is jax.nn.gelu
    for a, b in zip(
        jax.tree.leaves(eqx.filter(our_model, eqx.is_array)),
        jax.tree.leaves(eqx.filter(their_model, eqx.is_array)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_the_whole_model_as_params_works_in_every_preset_that_reads_params():
    model = _PatchModel(eqx_model())
    grads = eqx.filter_grad(lambda m: jnp.sum(jax.vmap(m)(X)))(model)
    arrays = eqx.filter(model, eqx.is_array)
    for opt in (
        gradtx.lamb(1e-2),
        gradtx.torch.AdamW(1e-2),
        gradtx.keras.AdamW(1e-2),
        gradtx.torch.Adafactor(),
    ):
        updates, _ = opt.update(grads, opt.init(arrays), model)
        assert jax.tree.structure(updates) == jax.tree.structure(grads)
    # parameters that truly differ from the gradients are still refused, naming the place
    with pytest.raises(gradtx.InputError, match="the parameters do not have the structure of the updates"):
        gradtx.adamw(1e-2).update(
            {"w": jnp.ones(2)}, gradtx.adamw(1e-2).init({"w": jnp.ones(2)}), {"v": jnp.ones(2)}
        )


# --- masks over equinox modules and nnx state --------------------------------------------


def run(tx: Any, params: Any, steps: int = 3) -> Any:
    state = tx.init(params)
    for i in range(steps):
        grads = jax.tree.map(lambda p, i=i: jnp.sin(p + i) + 0.5, params)
        with reference_numerics():
            updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params


def test_an_equinox_module_of_booleans_is_a_mask_not_a_function():
    params = eqx.filter(eqx_model(), eqx.is_array)
    mask = jax.tree.map(lambda x: x.ndim > 1, params)
    assert callable(mask)  # an MLP of booleans: callable, and still a mask (optax's rule)
    pairs = [
        (gradtx.adamw(1e-2, weight_decay=0.5, mask=mask), optax.adamw(1e-2, weight_decay=0.5, mask=mask)),
        (gradtx.masked(gradtx.sign_sgd(0.1), mask), optax.masked(optax.sign_sgd(0.1), mask)),
        (gradtx.add_decayed_weights(0.5, mask), optax.add_decayed_weights(0.5, mask)),
        (gradtx.lamb(1e-2, weight_decay=0.5, mask=mask), optax.lamb(1e-2, weight_decay=0.5, mask=mask)),
    ]
    for ours, theirs in pairs:
        expected = run(theirs, params)
        assert_close_to_scale(run(ours, params), expected, 1e-6, repr(ours)[:40])
    # The mask matters: decay everywhere gives other numbers.
    everywhere, masked = run(gradtx.adamw(1e-2, weight_decay=0.5), params), run(pairs[0][0], params)
    assert_same(everywhere.layers[1].weight, masked.layers[1].weight, "decayed in both")
    assert not np.allclose(everywhere.layers[0].bias, masked.layers[0].bias)


def test_masks_and_path_rules_over_nnx_state_match_optax():
    def matrices(state: Any) -> Any:
        return jax.tree.map(lambda x: x.ndim > 1, state)

    def train(tx: Any, cls: Any) -> Any:
        model = Net()
        optimizer = cls(model, tx, wrt=nnx.Param)
        with reference_numerics():
            for _ in range(3):
                optimizer.update(model, nnx.grad(net_loss)(model))
        return nnx.as_pure(nnx.state(model, nnx.Param))

    theirs = train(optax.adamw(1e-2, weight_decay=0.5, mask=matrices), nnx.Optimizer)
    by_mask = train(gradtx.adamw(1e-2, weight_decay=0.5, mask=matrices), gradtx.flax.Optimizer)
    by_rule = gradtx.path_rules(gradtx.adamw(1e-2, weight_decay=0.5), [("*/bias", {"weight_decay": 0.0})])
    by_path = train(by_rule, gradtx.flax.Optimizer)
    assert_close_to_scale(by_mask, theirs, 1e-6, "mask over nnx state")
    assert_close_to_scale(by_path, theirs, 1e-6, "path rule over nnx state")
    unmasked = train(optax.adamw(1e-2, weight_decay=0.5), nnx.Optimizer)
    assert not np.allclose(unmasked["hidden"]["bias"], theirs["hidden"]["bias"])


# --- orbax ------------------------------------------------------------------------------


# Moments in float32, or block-wise quantized (every leaf: these are tiny)
STATE_DTYPES = {
    "float32": None,
    "8bit": gradtx.quantized(8, min_size=0),
    "4bit": gradtx.quantized(4, min_size=0),
}


def clip_adamw(state_dtype: str = "float32") -> gradtx.Transform:
    schedule = gradtx.warmup_cosine_decay_schedule(0.0, 1e-2, warmup_steps=2, decay_steps=10)
    storage = STATE_DTYPES[state_dtype]
    return gradtx.chain(
        gradtx.clip_by_global_norm(0.5),
        gradtx.adamw(schedule, weight_decay=0.1, mu_dtype=storage, nu_dtype=storage),
    )


@pytest.mark.parametrize("state_dtype", list(STATE_DTYPES))
@pytest.mark.parametrize("packed", [False, True], ids=["plain", "packed"])
def test_orbax_checkpoint_mid_training_resumes_bit_for_bit(
    tmp_path: pathlib.Path, packed: bool, state_dtype: str
):
    opt = clip_adamw(state_dtype)
    params: Any = gradtx.pack(PARAMS) if packed else PARAMS

    @jax.jit
    def step(params: Any, state: Any) -> tuple[Any, Any]:
        def loss(p: Any) -> jax.Array:
            return jnp.mean((mlp_apply(p.unpack() if packed else p, X) - Y) ** 2)

        updates, state = opt.update(jax.grad(loss)(params), state, params)
        return gradtx.apply_updates(params, updates), state

    state = opt.init(params)
    for _ in range(3):
        params, state = step(params, state)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "ckpt", {"params": params, "opt_state": state})
    checkpointer.wait_until_finished()
    abstract = jax.eval_shape(lambda: {"params": params, "opt_state": state})
    restored = checkpointer.restore(tmp_path / "ckpt", abstract)
    assert jax.tree.structure(restored) == jax.tree.structure(abstract)
    resumed_params, resumed_state = restored["params"], restored["opt_state"]
    for _ in range(4):
        params, state = step(params, state)
        resumed_params, resumed_state = step(resumed_params, resumed_state)
    assert_same((resumed_params, resumed_state), (params, state), "resumed from orbax")
    assert gradtx.tree_utils.step(state) == 7


@pytest.mark.parametrize("state_dtype", ["float32", "8bit"])
def test_orbax_checkpoint_of_an_nnx_optimizer_resumes_bit_for_bit(tmp_path: pathlib.Path, state_dtype: str):
    @nnx.jit
    def step(model: Net, optimizer: gradtx.flax.Optimizer) -> None:
        optimizer.update(model, nnx.grad(net_loss)(model))

    model = Net()
    optimizer = gradtx.flax.Optimizer(model, clip_adamw(state_dtype), wrt=nnx.Param)
    with reference_numerics():
        for _ in range(3):
            step(model, optimizer)
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(tmp_path / "nnx", nnx.state((model, optimizer)))
        checkpointer.wait_until_finished()
        # A fresh model and optimizer, with a different learning rate, restored over.
        fresh = Net()
        storage = STATE_DTYPES[state_dtype]
        other = gradtx.chain(
            gradtx.clip_by_global_norm(9.0),
            gradtx.adamw(
                gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 2, 10),
                weight_decay=0.1,
                mu_dtype=storage,
                nu_dtype=storage,
            ),
        )
        fresh_optimizer = gradtx.flax.Optimizer(fresh, other, wrt=nnx.Param)
        abstract = nnx.state((fresh, fresh_optimizer))
        nnx.update((fresh, fresh_optimizer), checkpointer.restore(tmp_path / "nnx", abstract))
        assert fresh_optimizer.tx == optimizer.tx  # the numbers are saved with the state
        for _ in range(4):
            step(model, optimizer)
            step(fresh, fresh_optimizer)
    assert_same(nnx.state((fresh, fresh_optimizer)), nnx.state((model, optimizer)), "nnx resumed")


# --- types --------------------------------------------------------------------------------


def test_to_optax_gives_optax_type_and_numbers():
    tx = gradtx.flax.to_optax(gradtx.adam(1e-2))
    assert isinstance(tx, optax.GradientTransformationExtraArgs)
    model = Net()
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    reference = Net()
    their_optimizer = nnx.Optimizer(reference, optax.adam(1e-2), wrt=nnx.Param)
    with reference_numerics():
        for _ in range(3):
            optimizer.update(model, nnx.grad(net_loss)(model))
            their_optimizer.update(reference, nnx.grad(net_loss)(reference))
    assert_close_to_scale(nnx.state(model, nnx.Param), nnx.state(reference, nnx.Param), 1e-6, "to_optax")
