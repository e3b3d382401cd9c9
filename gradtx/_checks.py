"""Hyperparameter checks, shared by every transform and optimizer.

One word means one thing across gradtx, so the rule for a value follows from its
argument name. Values that are traced arrays or schedules are not checked.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from jax.core import Tracer

_NONNEGATIVE = (
    "learning_rate",
    "eps",
    "eps_root",
    "weight_decay",
    "initial_accumulator_value",
    "initial_scale",
    "max_norm",
    "max_delta",
)
_BETA = ("b1", "b2")
# A decay of exactly 1 has a meaning (optax accepts it): trace(1.0) is a running sum.
_DECAY = ("decay", "momentum", "multiplier")

RULES: dict[str, tuple[str, Callable[[np.ndarray], bool]]] = {
    **{name: ("must be >= 0", lambda v: bool(np.all(v >= 0))) for name in _NONNEGATIVE},
    **{name: ("must be in [0, 1)", lambda v: bool(np.all((v >= 0) & (v < 1)))) for name in _BETA},
    **{name: ("must be in [0, 1]", lambda v: bool(np.all((v >= 0) & (v <= 1)))) for name in _DECAY},
}
# Where one owner gives a name a wider meaning: SM3's b2 = 1 (its default) is AdaGrad's sum.
OWNER_RULES: dict[tuple[str, str], tuple[str, Callable[[np.ndarray], bool]]] = {
    ("scale_by_sm3", "b1"): RULES["decay"],
    ("scale_by_sm3", "b2"): RULES["decay"],
}


# Arguments that are not numbers, also checked by name: a dtype, a flag, a number of steps.
_DTYPES = ("mu_dtype", "nu_dtype", "accumulator_dtype", "dtype_momentum", "param_dtype", "hyperparam_dtype")
_FLAGS = (
    "amsgrad", "bias_correction", "bias_correction_mu", "bias_correction_nu", "centered",
    "complement", "debias", "debias_step_size", "eps_in_sqrt", "factored", "flip_sign",
    "forward_extra_args", "keepdims", "multiply_by_parameter_scale", "nesterov", "reset_state",
    "scale_init_precond", "staircase", "store_grad", "uniform", "use_grad_mean", "verbose",
    "mask_compatible_extra_args",
)  # fmt: skip
# Numbers of steps: integers (an integral float such as 1e4 is accepted), > 0 or >= 0.
_COUNTS_POSITIVE = (
    "transition_steps", "decay_steps", "step_size_up", "step_size_down", "memory_size",
    "buffer_size", "max_backtracking_steps", "max_linesearch_steps", "sync_period",
)  # fmt: skip
_COUNTS_NONNEGATIVE = (
    "transition_begin", "warmup_steps", "stable_steps", "min_dim_size_to_factor",
    "max_consecutive_errors", "decay_offset", "step_offset",
)  # fmt: skip


def _is_dtype(value: Any) -> bool:
    try:
        dtype = np.dtype(value)  # jnp.float32, "float32", np.dtype("bfloat16") (ml_dtypes)
    except TypeError:
        return False
    return bool(np.issubdtype(dtype, np.inexact)) or dtype.name in (
        "bfloat16",
        "float8_e4m3fn",
        "float8_e5m2",
    )


def _is_flag(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _numbers(value: Any) -> np.ndarray | None:
    """``value`` as float64 numbers, or None if it is not numbers (a string is not, though
    numpy reads ``"0.1"`` as one)."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _is_count(value: Any, smallest: int) -> bool:
    array = None if isinstance(value, (bool, np.bool_)) else _numbers(value)
    if array is None:
        return False
    return bool(np.all(np.isfinite(array)) and np.all(array == np.round(array)) and np.all(array >= smallest))


KIND_RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    **{
        name: ("must be a floating-point dtype (jnp.float32, jnp.bfloat16, ...) or None", _is_dtype)
        for name in _DTYPES
    },
    **{name: ("must be True or False", _is_flag) for name in _FLAGS},
    **{name: ("must be an integer > 0", lambda v: _is_count(v, 1)) for name in _COUNTS_POSITIVE},
    **{name: ("must be an integer >= 0", lambda v: _is_count(v, 0)) for name in _COUNTS_NONNEGATIVE},
}


class InputError(ValueError):
    """A bad input: to ``init`` or ``update`` (a tree, a state, parameters), found at
    trace time, or an argument a block inside an optimizer rejected when built.

    The message starts with where it was found, outermost first: ``adam > momentum: ...``
    is the ``momentum`` block of the ``adam`` the user built. Each labelled chain an error
    passes through on its way out adds its label, as does each optimizer it is built in.

    Attributes:
      where: the optimizer and blocks, outermost first.
      detail: what is wrong and what to do.
    """

    def __init__(self, where: str | tuple[str, ...], detail: str) -> None:
        self.where = (where,) if isinstance(where, str) else tuple(where)
        self.detail = detail
        super().__init__(f"{' > '.join(self.where)}: {detail}")

    def within(self, label: str) -> InputError:
        """The same error, found inside ``label`` (itself if ``label`` already heads it:
        a transform's own error passing out of it)."""
        if self.where[0] == label:
            return self
        error = InputError((label, *self.where), self.detail)
        error.__cause__ = self.__cause__
        return error


def check(owner: str, name: str, value: Any) -> None:
    """Raises ValueError if ``value`` breaks the rule for argument ``name`` of ``owner``."""
    if value is None or isinstance(value, Tracer):
        return
    kind = KIND_RULES.get(name)
    if kind is not None:
        what, ok = kind
        if (name in _DTYPES or not callable(value)) and not ok(value):
            raise ValueError(f"{owner}: {name} {what}, got {value!r}")
        return
    rule = OWNER_RULES.get((owner, name), RULES.get(name))
    if rule is None or callable(value):
        return
    array = _numbers(value)
    if array is None:
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}")
    what, ok = rule
    if np.any(np.isnan(array)) or not ok(array):
        raise ValueError(f"{owner}: {name} {what}, got {value!r}")


_F = TypeVar("_F", bound=Callable[..., Any])


def checked(fn: _F) -> _F:
    """Checks an optimizer's arguments by name before it builds its chain."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        for name, value in bound.arguments.items():
            check(fn.__name__, name, value)
        try:
            return fn(*args, **kwargs)
        except InputError as error:
            raise error.within(fn.__name__) from None
        except ValueError as error:
            # A block inside rejected an argument with the ``owner: detail`` message every
            # check writes: name the optimizer the user called first
            # (``radam > rectified: threshold must be >= 4``).
            where, colon, detail = str(error).partition(": ")
            blocks = tuple(where.split(" > "))
            if type(error) is not ValueError or not colon or not all(b.isidentifier() for b in blocks):
                raise
            raise InputError(blocks, detail).within(fn.__name__) from None

    # Annotations as objects, not strings, as optax's are: code that inspects
    # ``signature(adam).parameters["learning_rate"].annotation`` sees ScalarOrSchedule.
    wrapper.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
