"""Errors explain themselves: bad hyperparameters at construction, mismatched trees at
trace time, both naming the transform."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import reference_numerics

import gradtx
from gradtx.chains import Chain


def _assert_raises_naming(build, words):
    """``build()`` raises a ValueError whose message holds every one of ``words``."""
    with pytest.raises(ValueError) as info:
        build()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: gradtx.adam(-1e-3), ["adam", "learning_rate", "-0.001", ">= 0"]),
        (lambda: gradtx.adam(1e-3, b1=1.0), ["adam", "b1", "[0, 1)", "1.0"]),
        (lambda: gradtx.adamw(1e-3, b2=-0.1), ["adamw", "b2", "-0.1"]),
        (lambda: gradtx.rmsprop(1e-3, decay=1.5), ["rmsprop", "decay", "1.5"]),
        (lambda: gradtx.sgd(0.1, momentum=1.2), ["sgd", "momentum", "1.2"]),
        (lambda: gradtx.adagrad(0.1, eps=-1e-7), ["adagrad", "eps", "-1e-07"]),
        (lambda: gradtx.adam(float("nan")), ["adam", "learning_rate", "nan"]),
        (lambda: gradtx.scale_by_rms(decay=1.5), ["scale_by_rms", "decay", "[0, 1]", "1.5"]),
        (lambda: gradtx.momentum(b1=-0.5), ["momentum", "b1", "-0.5"]),
        (lambda: gradtx.ema(decay=2.0), ["ema", "decay", "2.0"]),
        (lambda: gradtx.scale_by_learning_rate(-0.1), ["scale_by_learning_rate", "learning_rate"]),
        (lambda: gradtx.clip_by_global_norm(-1.0), ["clip_by_global_norm", "max_norm"]),
        (lambda: gradtx.add_decayed_weights(-0.1), ["add_decayed_weights", "weight_decay"]),
        (lambda: gradtx.adam(jnp.array([1e-3, -1e-3])), ["adam", "learning_rate"]),
        (
            lambda: gradtx.sgd(0.1, 0.9, momentum_form="heavy"),  # pyright: ignore[reportArgumentType]
            ["sgd", "momentum_form", "heavy"],
        ),
        (lambda: gradtx.adam(0.1, nesterov=True, debias_step_size=True), ["adam", "nesterov"]),
        (lambda: gradtx.named_chain(("a", gradtx.clip(1.0)), ("a", gradtx.clip(2.0))), ["unique", "'a'"]),
        (
            lambda: gradtx.warmup_constant_schedule(0.0, 1.0, 0),
            ["warmup_constant_schedule", "warmup_steps", "> 0", "constant_schedule(peak_value)"],
        ),
        (
            lambda: gradtx.adam("0.001"),  # pyright: ignore[reportArgumentType]
            ["adam", "learning_rate", "a number", "'0.001'"],
        ),
        # PyTorch's own refusals: "Invalid rho value", "d should be >= 1"
        (lambda: gradtx.torch.Adadelta(rho=1.1), ["Adadelta", "rho", "[0, 1]", "1.1"]),
        (lambda: gradtx.torch.Adafactor(d=0.5), ["Adafactor", "d", ">= 1", "0.5"]),
        (lambda: gradtx.torch.Adafactor(d=0.0), ["Adafactor", "d", ">= 1", "0.0"]),
    ],
)
def test_bad_hyperparameters_raise_when_built(build, words):
    _assert_raises_naming(build, words)


def test_traced_hyperparameters_are_not_checked():
    @jax.jit
    def step(lr):
        opt = gradtx.sgd(lr)
        return opt.update(jnp.ones(2), opt.init(jnp.zeros(2)))[0]

    assert step(-1.0).tolist() == [1.0, 1.0]  # traced: no check, the math runs


def test_not_a_transform():
    with pytest.raises(TypeError, match="chain: expected a transform"):
        gradtx.chain(0.1)


def test_gradient_tree_with_other_keys():
    opt = gradtx.adam(1e-3)
    state = opt.init({"a": jnp.zeros(2), "b": jnp.zeros(3)})
    with pytest.raises(ValueError) as info:
        jax.jit(opt.update)({"a": jnp.zeros(2), "c": jnp.zeros(3)}, state)
    text = str(info.value)
    assert "momentum" in text and "['c']" in text and "['b']" in text and "'mu'" in text


def test_gradient_leaf_with_other_shape():
    opt = gradtx.sgd(0.1, momentum=0.9)
    state = opt.init({"w": jnp.zeros((3, 4))})
    with pytest.raises(ValueError) as info:
        opt.update({"w": jnp.zeros((4, 3))}, state)
    text = str(info.value)
    assert "trace" in text and "['w']" in text and "(4, 3)" in text and "(3, 4)" in text


def test_gradient_tree_with_extra_leaf():
    opt = gradtx.rmsprop(1e-3)
    state = opt.init([jnp.zeros(2)])
    with pytest.raises(ValueError, match="scale_by_rms: the updates do not have the structure"):
        opt.update([jnp.zeros(2), jnp.zeros(2)], state)


def test_state_of_another_optimizer():
    with pytest.raises(
        ValueError,
        match="adam: the state is a tuple of 1 entries, but this optimizer's init makes a tuple of 3",
    ):
        gradtx.adam(1e-3).update(jnp.zeros(2), gradtx.sgd(0.1).init(jnp.zeros(2)))


def test_weight_decay_needs_params():
    opt = gradtx.adamw(1e-3)
    with pytest.raises(ValueError, match="adamw > add_decayed_weights: update needs the parameters"):
        opt.update(jnp.zeros(2), opt.init(jnp.zeros(2)))


@pytest.mark.parametrize("value", ["8-bit", "int8", jnp.int8, "float8_e4m3fn", jnp.float8_e5m2])
def test_moment_dtypes_that_cannot_hold_a_moment_are_refused(value):
    """Near misses of the documented spellings ("8bit") are refused at construction with
    the list of what is accepted, instead of failing inside the first update (numpy's
    dtype parser on "8-bit", JAX's promotion on the 8-bit floats) or storing moments as
    integers."""
    with pytest.raises(ValueError, match=r"adamw: mu_dtype must be .*'8bit', '4bit'"):
        gradtx.adamw(1e-3, mu_dtype=value)


# --- every factory's arguments, by the rule of their name ------------------------------

# A bad value for each kind of rule, and the words its message must hold.
_BAD = {
    "numeric >= 0": (-0.5, ">= 0"),
    "rate": (-0.5, ">= 0"),
    "beta": (1.5, "[0, 1)"),
    "decay": (1.5, "[0, 1]"),
    "dtype": ("floaty", "floating-point dtype"),
    "state dtype": ("floaty", "floating-point dtype"),
    "flag": ("yes", "True or False"),
    "count > 0": (2.5, "integer > 0"),
    "count >= 0": (-1, "integer >= 0"),
}


# One word means one thing across gradtx: the rule each argument name follows wherever
# it appears (a block's field or an optimizer function's argument), and the owners that
# give a name a wider (or narrower) meaning. This is the specification; the code states each rule on
# the field or function that owns it (``hyper(rule=...)``, ``@checked(...)``), and
# `test_declared_rules_follow_the_vocabulary` holds the two together.
VOCABULARY = {
    **dict.fromkeys(
        ("eps", "eps_root", "weight_decay", "initial_accumulator_value",
         "initial_scale", "max_norm", "max_delta"),
        "numeric >= 0",
    ),
    # >= 0, and one number where it is used (a stack only under jax.vmap)
    **dict.fromkeys(("learning_rate", "lr"), "rate"),
    **dict.fromkeys(("b1", "b2"), "beta"),
    # A decay of exactly 1 has a meaning (optax accepts it): trace(1.0) is a running sum.
    **dict.fromkeys(("decay", "momentum", "multiplier"), "decay"),
    # A moment buffer's storage: a dtype, or block-wise quantized codes (gradtx.quantized)
    **dict.fromkeys(("mu_dtype", "nu_dtype", "accumulator_dtype", "dtype_momentum"), "state dtype"),
    **dict.fromkeys(("param_dtype", "hyperparam_dtype"), "dtype"),
    **dict.fromkeys(
        ("amsgrad", "bias_correction", "bias_correction_mu", "bias_correction_nu", "centered",
         "complement", "debias", "debias_step_size", "eps_in_sqrt", "factored", "flip_sign",
         "forward_extra_args", "keepdims", "multiply_by_parameter_scale", "nesterov", "reset_state",
         "scale_init_precond", "staircase", "store_grad", "uniform", "use_grad_mean", "verbose",
         "mask_compatible_extra_args"),
        "flag",
    ),
    **dict.fromkeys(
        ("transition_steps", "decay_steps", "step_size_up", "step_size_down", "memory_size",
         "buffer_size", "max_backtracking_steps", "max_linesearch_steps", "sync_period"),
        "count > 0",
    ),
    **dict.fromkeys(
        ("transition_begin", "warmup_steps", "stable_steps", "min_dim_size_to_factor",
         "max_consecutive_errors", "decay_offset", "step_offset"),
        "count >= 0",
    ),
}  # fmt: skip
WIDER = {
    ("scale_by_sm3", "b1"): "decay",  # SM3's b2 = 1 (its default) is AdaGrad's sum
    ("scale_by_sm3", "b2"): "decay",
    ("inverse_sqrt_schedule", "warmup_steps"): "count > 0",  # a division by the warmup length
    # buffers not (yet) stored quantized: a plain dtype
    ("MultiSteps", "accumulator_dtype"): "dtype",  # the accumulated gradient
}


def _kind(owner: str, name: str) -> str | None:
    wider = WIDER.get((owner, name))
    return wider if wider is not None else VOCABULARY.get(name)


def _kind_of_rule(rule) -> str:
    from gradtx import _checks

    kinds = {
        _checks.nonnegative: "numeric >= 0",
        _checks.rate: "rate",
        _checks.beta: "beta",
        _checks.decay: "decay",
        _checks.dtype: "dtype",
        _checks.state_dtype: "state dtype",
        _checks.flag: "flag",
        _checks.positive_count: "count > 0",
        _checks.nonnegative_count: "count >= 0",
        _checks.positive_int: "count > 0",
        _checks.nonnegative_int: "count >= 0",
    }
    return kinds[rule] if rule in kinds else str(rule.what)


# Valid values for required arguments, by name, so that every factory can be built.
_REQUIRED = {
    "learning_rate": 0.1, "init_value": 1.0, "end_value": 0.0, "transition_steps": 10,
    "decay_steps": 10, "decay_rate": 0.5, "peak_value": 1.0, "warmup_steps": 2,
    "power": 1.0, "step_size": 0.1, "scale": 0.5, "max_norm": 1.0, "max_delta": 1.0,
    "decay": 0.9, "eps": 1e-8, "threshold": 0.1, "min_norm": 0.0, "value": 1.0,
    "boundaries_and_scales": {5: 0.5}, "interpolate_type": "linear", "base_value": 1.0,
    "l2_norm_clip": 1.0, "noise_multiplier": 0.1, "max_squared_norm": 1.0,
    "weight_decay": 1e-4, "clipping": 1.0, "sync_period": 2, "slow_step_size": 0.5,
    "eta": 0.1, "gamma": 0.5, "offset": 1.0, "min_rms": 0.0,
    "inner": gradtx.sgd(0.1), "fast_optimizer": gradtx.sgd(0.1), "max_consecutive_errors": 2,
    "should_transform_fn": lambda step: step > 0, "max_value": 1.0, "mask": True,
    "transforms": {"a": gradtx.sgd(0.1)}, "param_labels": "a", "stable_steps": 2,
    "max_backtracking_steps": 5, "max_linesearch_steps": 5, "multiplier": 0.75, "optimizer": gradtx.sgd(0.1),
}  # fmt: skip

# Functions of trees and factories of factories: the transforms that call them check
# the arguments.
NOT_FACTORIES = {
    "accumulate", "bias_correction", "injected", "hyper", "inject_hyperparams", "inject_stateful_hyperparams",
    "measure_with_ema", "pack", "per_example_layer_norm_clip", "safe_norm",
    "update_infinity_moment", "update_moment", "update_moment_per_elem_norm",
}  # fmt: skip


def _factories():
    """Every public callable of gradtx with at least one argument checked by name."""
    import inspect

    found = []
    for name in gradtx.__all__:
        obj = getattr(gradtx, name)
        if not callable(obj) or name[0].isupper() or name in NOT_FACTORIES:
            continue
        try:
            parameters = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            continue
        checked = [p for p in parameters if _kind(name, p) is not None]
        if checked:
            found.append((name, obj, parameters, checked))
    return found


_FACTORIES = _factories()


def _valid_args(parameters):
    import inspect

    args = {}
    for p in parameters.values():
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            if p.name not in _REQUIRED:
                return None
            args[p.name] = _REQUIRED[p.name]
    return args


def test_every_factory_is_swept():
    # The sweep below builds each factory with valid required arguments; one it cannot
    # build would be skipped silently, so the list of the unbuildable is pinned here.
    unbuildable = sorted(name for name, _, parameters, _ in _FACTORIES if _valid_args(parameters) is None)
    assert unbuildable == [], unbuildable
    assert len(_FACTORIES) >= 85, len(_FACTORIES)


@pytest.mark.parametrize("name, factory, parameters, checked", _FACTORIES, ids=[f[0] for f in _FACTORIES])
def test_every_checked_argument_rejects_a_bad_value(name, factory, parameters, checked):
    args = _valid_args(parameters)
    assert args is not None
    factory(**args)  # the valid build works
    for argument in checked:
        bad, words = _BAD[_kind(name, argument)]  # pyright: ignore[reportArgumentType]
        with pytest.raises(ValueError) as info:
            factory(**{**args, argument: bad})
        text = str(info.value)
        assert argument in text and words in text and repr(bad) in text, (argument, text)


def _declaring_owners():
    """Every block and schedule class of gradtx and every `checked` function, with its
    declared rules."""
    import inspect

    from gradtx import _checks
    from gradtx.data import PyTreeData

    owners = {}
    stack = list(PyTreeData.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("gradtx."):
            owners[cls.__name__] = _checks.rules_of(cls)
    import gradtx.keras
    import gradtx.torch

    for module in (gradtx, gradtx.torch, gradtx.keras):
        for name, obj in inspect.getmembers(module, callable):
            if hasattr(obj, "__rules__"):
                owners[name] = _checks.rules_of(obj)
    return owners


def test_declared_rules_follow_the_vocabulary():
    owners = _declaring_owners()
    assert len(owners) > 150, len(owners)
    wrong = {
        (owner, name): (_kind_of_rule(rule), _kind(owner, name))
        for owner, rules in owners.items()
        for name, rule in rules.items()
        if _kind(owner, name) is not None and _kind_of_rule(rule) != _kind(owner, name)
    }
    assert wrong == {}, wrong
    # and every class field named in the vocabulary states its rule
    import dataclasses

    from gradtx.data import PyTreeData

    missing = []
    stack = list(PyTreeData.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if not cls.__module__.startswith("gradtx.") or not dataclasses.is_dataclass(cls):
            continue
        for field in dataclasses.fields(cls):
            if _kind(cls.__name__, field.name) is not None and field.name not in cls._rules:
                missing.append(f"{cls.__name__}.{field.name}")
    assert missing == [], missing


@pytest.mark.parametrize(
    "build, words",
    [
        (
            lambda: gradtx.adam(1e-3, mu_dtype="floaty"),
            ["adam: mu_dtype must be a floating-point dtype", "'floaty'"],
        ),
        (lambda: gradtx.adam(1e-3, nu_dtype=jnp.int32), ["adam: nu_dtype", "int32"]),
        (
            lambda: gradtx.sgd(0.1, 0.9, nesterov="yes"),  # pyright: ignore[reportArgumentType]
            ["sgd: nesterov must be True or False, got 'yes'"],
        ),
        (lambda: gradtx.linear_schedule(1.0, 0.0, 2.5), ["transition_steps must be an integer > 0, got 2.5"]),
        (lambda: gradtx.cosine_decay_schedule(1.0, 0), ["decay_steps must be an integer > 0, got 0"]),
        (lambda: gradtx.lbfgs(memory_size=0), ["lbfgs: memory_size must be an integer > 0, got 0"]),
        (lambda: gradtx.lookahead(gradtx.sgd(0.1), 0, 0.5), ["lookahead: sync_period", "> 0"]),
        (lambda: gradtx.rprop(None), ["learning_rate is the initial step size", "None"]),  # pyright: ignore[reportArgumentType]
        (lambda: gradtx.join_schedules([gradtx.constant_schedule(1.0)] * 3, [5, 3]), ["strictly increasing"]),
    ],
)
def test_bad_arguments_of_other_kinds(build, words):
    _assert_raises_naming(build, words)


# --- bad inputs to update: the optimizer, the block, the path ---------------------------


def test_error_names_the_optimizer_and_the_block():
    opt = gradtx.adam(1e-3)
    state = opt.init({"a": jnp.zeros(2), "b": jnp.zeros(3)})
    with pytest.raises(gradtx.InputError) as info:
        opt.update({"a": jnp.zeros(2)}, state)
    assert str(info.value).startswith("adam > momentum: the updates do not have the structure")
    assert info.value.where == ("adam", "momentum")


def test_error_inside_a_user_chain_and_a_wrapper():
    opt = gradtx.chain(
        gradtx.clip_by_global_norm(1.0), gradtx.masked(gradtx.adam(1e-3), {"a": True, "b": False})
    )
    state = opt.init({"a": jnp.zeros(2), "b": jnp.zeros(3)})
    with pytest.raises(
        ValueError, match=r"^masked > adam > momentum: at \['a'\] the updates have shape \(3,\)"
    ):
        opt.update({"a": jnp.zeros(3), "b": jnp.zeros(3)}, state)


def test_params_of_another_structure():
    opt = gradtx.adamw(1e-3)
    params = {"a": jnp.zeros(2), "b": jnp.zeros(3)}
    with pytest.raises(ValueError) as info:
        opt.update(params, opt.init(params), {"a": jnp.zeros(2)})
    text = str(info.value)
    assert text.startswith("adamw: the parameters do not have the structure of the updates")
    assert "updates have ['b'], parameters have <nothing>" in text


def test_apply_updates_checks_structure_and_shape():
    with pytest.raises(ValueError, match=r"apply_updates: the updates do not have the structure.*\['b'\]"):
        gradtx.apply_updates({"a": jnp.zeros(2), "b": jnp.zeros(1)}, {"a": jnp.zeros(2)})
    with pytest.raises(
        ValueError, match=r"apply_updates: at \['a'\] the parameter has shape \(2,\).*\(3, 2\)"
    ):
        gradtx.apply_updates({"a": jnp.zeros(2)}, {"a": jnp.zeros((3, 2))})
    # None leaves pass through where both trees have them.
    assert gradtx.apply_updates({"a": None, "b": jnp.ones(1)}, {"a": None, "b": jnp.ones(1)})["a"] is None


def test_stateless_sgd_mismatch_is_caught_when_applied():
    # A stateless optimizer has no record of the parameters' structure (optax's neither);
    # the mismatch surfaces, named, where the updates meet the parameters.
    params = {"a": jnp.zeros(2), "b": jnp.zeros(2)}
    opt = gradtx.sgd(0.1)
    updates, _ = opt.update({"a": jnp.ones(2)}, opt.init(params))
    with pytest.raises(ValueError, match="apply_updates: the updates do not have the structure"):
        gradtx.apply_updates(params, updates)
    with pytest.raises(ValueError, match="sgd: the parameters do not have the structure"):
        opt.update({"a": jnp.ones(2)}, opt.init(params), params)


def test_state_of_an_optimizer_with_as_many_blocks():
    params = {"w": jnp.zeros(2)}
    with pytest.raises(ValueError) as info:
        gradtx.adagrad(0.1).update(params, gradtx.rmsprop(0.1).init(params))
    assert str(info.value).startswith(
        "adagrad > scale_by_rss: the state is a ScaleByRmsState(count, nu, nu_max), but this "
        "optimizer's init makes a ScaleByRssState(count, sum_of_squares)"
    )


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_])
def test_integer_and_boolean_leaves(dtype):
    opt = gradtx.adam(1e-3)
    floats = {"w": jnp.zeros(2), "n": jnp.zeros(2)}
    with pytest.raises(
        ValueError, match=rf"adam > momentum: at \['n'\] the updates have dtype {jnp.dtype(dtype).name}"
    ):
        opt.update({"w": jnp.ones(2), "n": jnp.ones(2, dtype)}, opt.init(floats))
    mixed = {"w": jnp.zeros(2), "n": jnp.zeros(2, dtype)}
    with pytest.raises(ValueError, match=r"adam > momentum: at \['n'\] the state's 'mu' has dtype"):
        opt.update({"w": jnp.ones(2), "n": jnp.ones(2)}, opt.init(mixed))
    # The documented ways to keep them: masked, or set_to_zero under partition.
    keep = gradtx.masked(opt, {"w": True, "n": False})
    grads = {"w": jnp.ones(2), "n": jnp.ones(2, dtype)}
    updates, _ = keep.update(grads, keep.init(mixed))
    assert updates["n"].dtype == dtype and updates["w"].dtype == jnp.float32
    split = gradtx.partition({"train": opt, "frozen": gradtx.set_to_zero()}, {"w": "train", "n": "frozen"})
    updates, _ = split.update(grads, split.init(mixed))
    assert updates["n"].dtype == dtype and not updates["n"].any()


def test_empty_tree():
    for opt in (gradtx.adam(1e-3), gradtx.adamw(1e-3), gradtx.sgd(0.1, 0.9), gradtx.clip_by_global_norm(1.0)):
        state = opt.init({})
        updates, _ = jax.jit(opt.update)({}, state, {})
        assert updates == {}


def test_none_learning_rate_keeps_optax_meaning():
    # optax: None means no learning rate *and no sign flip*; the update points uphill.
    g = jnp.asarray([1.0, -2.0])
    for name in ("adam", "sgd", "lion"):
        up, _ = getattr(gradtx, name)(None).update(g, getattr(gradtx, name)(None).init(g), g)
        one, _ = getattr(gradtx, name)(1.0).update(g, getattr(gradtx, name)(1.0).init(g), g)
        np.testing.assert_array_equal(np.asarray(up), -np.asarray(one))


def test_hyperparams_names_optax_members_it_cannot_read():
    opt = gradtx.chain(gradtx.scale(2.0), optax.scale(3.0), optax.inject_hyperparams(optax.sgd)(0.5))
    with pytest.warns(UserWarning, match=r"left out chain\[1\], an optax transformation"):
        hp = gradtx.hyperparams(opt, opt.init(jnp.zeros(2)))
    assert float(hp["step_size"]) == 2.0 and float(hp["learning_rate"]) == 0.5
    alone = optax.inject_hyperparams(optax.adam)(1e-3)
    assert float(gradtx.hyperparams(alone, alone.init(jnp.zeros(2)))["b2"]) == pytest.approx(0.999)


def test_hyperparams_of_an_optax_chain_says_what_to_do():
    opt = optax.chain(gradtx.adam(1e-3), optax.scale(2.0))  # pyright: ignore[reportArgumentType]
    with pytest.raises(TypeError, match=r"optax transformation .* gradtx\.chain instead"):
        gradtx.hyperparams(opt, opt.init(jnp.zeros(2)))


# Arguments that leave no block to read when they keep their default (a zero weight
# decay or momentum builds no such block), static sizes, and sm3's rate (the negated
# step of its ``scale``); pinned so that a newly unread argument fails the sweep.
UNREPORTED = {
    "adafactor": {"min_dim_size_to_factor"}, "lbfgs": {"memory_size"}, "sm3": {"learning_rate"},
    "torch.ASGD": {"alpha", "weight_decay"}, "torch.Adadelta": {"weight_decay"},
    "torch.Adagrad": {"lr_decay", "weight_decay"}, "torch.Adam": {"weight_decay"},
    "torch.Adamax": {"weight_decay"}, "torch.NAdam": {"weight_decay"}, "torch.RAdam": {"weight_decay"},
    "torch.RMSprop": {"weight_decay", "momentum"}, "torch.SGD": {"momentum", "dampening", "weight_decay"},
    "keras.RMSprop": {"momentum"}, "keras.SGD": {"momentum"},
    "soap": {"precondition_frequency", "max_precond_dim"},  # static counts, not numbers
}  # fmt: skip
# The elements of a tuple argument (``betas``, ``etas``, ``step_sizes``), each by its name.
TUPLE_ELEMENTS = {"beta1", "beta2", "eta_minus", "eta_plus", "min_step_size", "max_step_size"}


def _labelled_factories():
    import inspect

    found = []
    for prefix, namespace in (("", gradtx), ("torch.", gradtx.torch), ("keras.", gradtx.keras)):
        for name in sorted(getattr(namespace, "__all__", dir(namespace))):
            factory = getattr(namespace, name)
            if not callable(factory) or isinstance(factory, type) or name in NOT_FACTORIES:
                continue
            try:
                parameters = inspect.signature(factory).parameters
            except (TypeError, ValueError):
                continue
            args = _valid_args(parameters)
            if args is None:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                try:
                    tx = factory(**args)
                except TypeError:
                    continue
            if isinstance(tx, Chain) and tx.label == prefix + name:
                found.append((prefix + name, tx, parameters, args))
    return found


def test_labelled_optimizers_report_their_own_argument_names():
    swept = _labelled_factories()
    assert len(swept) >= 60, len(swept)
    for name, tx, parameters, args in swept:
        reported = set(gradtx.hyperparams(tx, tx.init({"w": jnp.ones((2, 2)), "b": jnp.ones(2)}))) - {"step"}
        assert reported - set(parameters) - TUPLE_ELEMENTS == set(), (name, reported - set(parameters))
        numeric = {
            k for k, p in parameters.items()
            if type(args.get(k, p.default)) in (int, float) and k not in TUPLE_ELEMENTS
        }  # fmt: skip
        assert numeric - reported == UNREPORTED.get(name, set()), (name, numeric - reported)
    adam = gradtx.adam(1e-3)
    assert set(gradtx.hyperparams(adam, adam.init(jnp.zeros(2)))) == {
        "step",
        "learning_rate",
        "b1",
        "b2",
        "eps",
        "eps_root",
    }


def test_step_counts_beyond_int32():
    with reference_numerics():
        reference = optax.cosine_decay_schedule(1.0, decay_steps=10**10)(2**31 - 1)
    schedule = gradtx.cosine_decay_schedule(1.0, decay_steps=10**10)
    expected = float(np.asarray(reference))
    assert float(schedule(2**31 - 1)) == pytest.approx(expected, rel=1e-6)
    assert float(jax.jit(lambda s, t: s(t))(schedule, 2**31 - 1)) == pytest.approx(expected, rel=1e-6)


def test_piecewise_dict_order_does_not_matter():
    # A dict maps boundaries to scales; gradtx sorts it, as optax does.
    steps = range(15)
    for name in ("piecewise_constant_schedule", "piecewise_interpolate_schedule"):
        args = ("linear",) if name == "piecewise_interpolate_schedule" else ()
        unsorted = getattr(gradtx, name)(*args, 1.0, {10: 0.5, 5: 0.1})
        ordered = getattr(gradtx, name)(*args, 1.0, {5: 0.1, 10: 0.5})
        with reference_numerics():
            reference = [float(getattr(optax, name)(*args, 1.0, {10: 0.5, 5: 0.1})(t)) for t in steps]
        ours = [float(unsorted(t)) for t in steps]
        assert ours == [float(ordered(t)) for t in steps]
        np.testing.assert_allclose(ours, reference, rtol=1e-6)


def test_running_sum_and_a_bare_zero_state_as_optax():
    g = jnp.asarray([1.0, 2.0])
    tx = gradtx.trace(decay=1.0)
    state = tx.init(g)
    out = g
    for _ in range(3):
        out, state = tx.update(g, state)
    np.testing.assert_array_equal(np.asarray(out), [3.0, 6.0])
    out, _ = gradtx.add_decayed_weights(0.1).update(g, 0, g)  # optax's test passes a bare 0
    np.testing.assert_allclose(np.asarray(out), [1.1, 2.2], rtol=1e-6)


# --- mistakes in declaring a block or an optimizer, found when it is built --------------


def test_a_mistyped_readout_name_fails_when_built():
    from gradtx.chains import labelled, present_readout_names

    rms = gradtx.scale_by_rms()
    with pytest.raises(
        TypeError, match=r"labelled mine: readout_names \['scale_by_rms.decy'\] name no field"
    ):
        labelled("mine", rms, readout_names={"scale_by_rms.decy": "b2"})
    # a real field of a block that is not in the chain matches nothing either
    with pytest.raises(TypeError, match=r"\['scale_by_rss.eps'\]"):
        labelled("mine", rms, readout_names={"scale_by_rss.eps": "epsilon"})
    ok = labelled("mine", rms, readout_names={"scale_by_rms.decay": "b2"})
    assert "b2" in gradtx.hyperparams(ok, ok.init(jnp.zeros(2)))
    # A preset's table for several configurations keeps the entries of the blocks it
    # built, and still refuses a key that names no field of any block.
    table = {"scale_by_rms.decay": "b2", "trace.decay": "momentum"}
    assert present_readout_names(table, [rms]) == {"scale_by_rms.decay": "b2"}
    with pytest.raises(TypeError, match=r"\['trace.decai'\] name no field of a gradtx block"):
        present_readout_names({**table, "trace.decai": "momentum"}, [rms])


def test_a_field_declared_without_hyper_or_static_names_the_declarations():
    import dataclasses

    with pytest.raises(TypeError, match=r"with gradtx.hyper or gradtx.static") as info:

        @gradtx.pytree_dataclass
        class plain(gradtx.Transform):  # pyright: ignore[reportUnusedClass]
            offset: float = dataclasses.field(default=1.0)

    assert "['offset']" in str(info.value) and "base.hyper" not in str(info.value)
    assert callable(gradtx.hyper) and callable(gradtx.static)  # the names it gives exist


# --- a learning rate is one number where it is used -----------------------------------


def _optimizers_taking_a_rate():
    """Every optimizer of optax's names, and every PyTorch and Keras preset, that takes
    a learning rate, built with ``rate`` (the rate argument by name)."""
    import inspect

    builders = {}
    for name in dir(optax):
        f = getattr(gradtx, name, None)
        if name.startswith("_") or f is None or inspect.isclass(f) or not callable(f):
            continue
        if (
            name in ("lbfgs", "scale_by_learning_rate")
            or "learning_rate" not in inspect.signature(f).parameters
        ):
            continue
        builders[name] = lambda rate, f=f: f(learning_rate=rate)
    for module, key in ((gradtx.torch, "lr"), (gradtx.keras, "learning_rate")):
        for name in module.__all__:
            f = getattr(module, name)
            if inspect.isfunction(f) and name[0].isupper() and key in inspect.signature(f).parameters:
                builders[f"{module.__name__}.{name}"] = lambda rate, f=f, key=key: f(**{key: rate})
    return builders


RATE_BUILDERS = _optimizers_taking_a_rate()


def test_every_optimizer_taking_a_rate_is_swept():
    assert len(RATE_BUILDERS) >= 50, sorted(RATE_BUILDERS)


@pytest.mark.parametrize("name", sorted(RATE_BUILDERS))
def test_a_learning_rate_of_several_numbers_is_refused_at_update(name):
    # the parameter's last axis has the array's length: without the check, each column
    # silently gets its own rate (Rprop's initial step sizes are refused at init)
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        opt = RATE_BUILDERS[name](jnp.array([1e-3, 1e-3]))
    with pytest.raises(
        gradtx.InputError, match=r"must be one number where it is used, got an array of shape \(2,\)"
    ):
        opt.update(params, opt.init(params), params)


def test_a_stack_of_learning_rates_is_a_sweep_under_vmap():
    params = jnp.array([1.0, -2.0])
    rates = [0.1, 0.01]

    def one_step(opt):
        updates, _ = opt.update(params, opt.init(params), params)
        return updates

    # the optimizers stacked leaf by leaf, as docs/optimizers_are_data.md sweeps them
    opts = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[gradtx.adamw(r) for r in rates])
    swept = jax.vmap(one_step)(opts)
    for i, rate in enumerate(rates):
        np.testing.assert_array_equal(swept[i], one_step(gradtx.adamw(rate)))
    # a one-element array is one number
    np.testing.assert_array_equal(one_step(gradtx.adamw(jnp.array([0.1]))), one_step(gradtx.adamw(0.1)))
