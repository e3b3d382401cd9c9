"""The rules an argument must follow, in one place, and the error a broken one raises.

A rule is stated where the argument is declared: on a block's field
(``b1: Any = hyper(default=0.9, rule=beta)``) or on an optimizer function
(``@checked(learning_rate=nonnegative, b1=beta)``), so reading a block shows what it
accepts. One word means one thing across gradtx (``tests/test_errors.py`` holds every
``b1`` to `beta`, every ``decay`` to `decay`, ...). Values that are traced arrays or
schedules are not checked.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from jax.core import Tracer


def _numbers(value: Any) -> np.ndarray | None:
    """``value`` as float64 numbers, or None if it is not numbers (a string is not, though
    numpy reads ``"0.1"`` as one)."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class Rule:
    """What an argument must be: ``what`` completes "``name`` ..." in the message.

    A *numeric* rule checks numbers (a schedule, a callable, is not checked; anything
    else that is not numbers fails with "must be a number"); a *kind* rule checks any
    value (a dtype, a flag, a count).
    """

    what: str
    ok: Callable[[Any], bool]
    numeric: bool = True
    # Also checked where the value is used: one number, not an array of several (a
    # stack of them is valid to build, for jax.vmap; each trace then sees one number).
    one_number: bool = False

    def __repr__(self) -> str:
        return f"Rule({self.what!r})"

    def check(self, owner: str, name: str, value: Any) -> None:
        """Raises `InputError` naming ``owner`` and ``name`` if ``value`` breaks the rule."""
        if value is None or isinstance(value, Tracer):
            return
        if not self.numeric:
            if (self not in (dtype, state_dtype) and callable(value)) or self.ok(value):
                return
            raise InputError(owner, f"{name} {self.what}, got {value!r}")
        if callable(value):
            return
        array = _numbers(value)
        if array is None:
            raise InputError(owner, f"{name} must be a number, got {value!r}")
        if np.any(np.isnan(array)) or not self.ok(array):
            raise InputError(owner, f"{name} {self.what}, got {value!r}")


def _is_dtype(value: Any) -> bool:
    """A float or complex dtype a buffer can be stored in and computed from: numpy's, and
    bfloat16 (ml_dtypes). Not the 8-bit floats: JAX gives them no promotion to compute
    in, and without a scale per block a moment's small values flush to zero (gradtx's
    ``"8bit"`` storage is the scaled one)."""
    try:
        kind = np.dtype(value)  # jnp.float32, "float32", np.dtype("bfloat16") (ml_dtypes)
    except (TypeError, ValueError):  # ValueError: a string numpy cannot parse ("8-bit")
        return False
    return bool(np.issubdtype(kind, np.inexact)) or kind.name == "bfloat16"


def _is_count(value: Any, smallest: int) -> bool:
    array = None if isinstance(value, (bool, np.bool_)) else _numbers(value)
    if array is None:
        return False
    return bool(np.all(np.isfinite(array)) and np.all(array == np.round(array)) and np.all(array >= smallest))


nonnegative = Rule("must be >= 0", lambda v: bool(np.all(v >= 0)))
rate = Rule("must be >= 0", lambda v: bool(np.all(v >= 0)), one_number=True)
"""A learning rate: a number >= 0 (or a schedule of the step), one number at update time
(`one_number`): an array of several would scale each column of a parameter by its own
rate, silently, wherever its length matches the parameter's last axis."""
step_weight = Rule("must be a number", lambda v: True, one_number=True)
"""A weight a step is multiplied by, of any sign (the optimistic gradient's ``alpha`` and
``beta``, a learning rate and an optimism there): one number at update time, as `rate`."""
at_least_one = Rule("must be >= 1", lambda v: bool(np.all(v >= 1)))
"""A threshold below which a rule stops meaning itself: Adafactor's clipping ``d``."""
positive = Rule("must be > 0", lambda v: bool(np.all(v > 0)))
positive_or_none = Rule("must be > 0 or None", lambda v: bool(np.all(v > 0)))
"""Keras's clipping arguments, where None means "no clipping"."""
nonpositive = Rule("must be <= 0", lambda v: bool(np.all(v <= 0)))
beta = Rule("must be in [0, 1)", lambda v: bool(np.all((v >= 0) & (v < 1))))
"""An averaging coefficient that must forget: ``b1``, ``b2``."""
decay = Rule("must be in [0, 1]", lambda v: bool(np.all((v >= 0) & (v <= 1))))
"""A decay where exactly 1 has a meaning (optax accepts it): ``trace(1.0)`` is a running sum."""
dtype = Rule(
    "must be a floating-point dtype (jnp.float32, jnp.bfloat16, ...) or None", _is_dtype, numeric=False
)


def _is_state_dtype(value: Any) -> bool:
    from gradtx._quantized import is_quantized

    return is_quantized(value) or _is_dtype(value)


state_dtype = Rule(
    "must be a floating-point dtype (jnp.float32, jnp.bfloat16, ...), '8bit', '4bit', "
    "gradtx.quantized(...) or None",
    _is_state_dtype,
    numeric=False,
)
"""A moment buffer's storage: a dtype, or block-wise quantized codes (`gradtx.quantized`)."""
flag = Rule("must be True or False", lambda v: isinstance(v, (bool, np.bool_)), numeric=False)
positive_count = Rule("must be an integer > 0", lambda v: _is_count(v, 1), numeric=False)
"""A number of steps > 0 (an integral float such as ``1e4`` is accepted)."""
nonnegative_count = Rule("must be an integer >= 0", lambda v: _is_count(v, 0), numeric=False)
positive_int = Rule(
    "must be an integer > 0",
    lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
    numeric=False,
)
"""A Python ``int`` > 0: a structural count (PyTorch's schedulers, a memory size)."""
nonnegative_int = Rule(
    "must be an integer >= 0",
    lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    numeric=False,
)


ADAM_FAMILY = {"learning_rate": rate, "b1": beta, "b2": beta, "eps": nonnegative}
"""The arguments every optimizer of the Adam family takes, with their rules."""


def one_number(owner: str, name: str, value: Any) -> None:
    """Raises `InputError` unless ``value`` (a number, an array or a traced array, read
    where it is used) holds exactly one number: a stack of learning rates for a sweep is
    mapped over with ``jax.vmap``, where each trace sees one."""
    shape = np.shape(value)
    if int(np.prod(shape)) != 1:
        raise InputError(
            owner,
            f"{name} must be one number where it is used, got an array of shape {shape}: it would "
            "scale each entry of the last axis by its own rate. To sweep over rates, build the "
            "optimizer with the stack and jax.vmap the update over it (each trace sees one "
            "number); for rates by parameter, use gradtx.partition or gradtx.path_rules",
        )


def require(owner: str, name: str, value: Any, ok: bool, what: str) -> None:
    """A rule between arguments (``decay_steps > warmup_steps``): raises `InputError`
    naming ``owner`` and ``name`` unless ``ok`` or ``value`` is a schedule or traced."""
    if not ok and not isinstance(value, Tracer) and not callable(value):
        raise InputError(owner, f"{name} {what}, got {value!r}")


def check(owner: str, rule: Rule, **values: Any) -> None:
    """Checks each of ``values`` (by argument name) against ``rule`` for ``owner``."""
    for name, value in values.items():
        rule.check(owner, name, value)


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


_F = TypeVar("_F", bound=Callable[..., Any])


def rules_of(obj: Any) -> dict[str, Rule]:
    """The rules of ``obj``'s arguments: a block's fields or a `checked` function's."""
    return dict(getattr(obj, "__rules__", None) or getattr(obj, "_rules", {}))


def checked(**rules: Rule) -> Callable[[_F], _F]:
    """Checks an optimizer function's arguments against ``rules`` before it builds its
    chain, and names the function in any `InputError` the blocks inside raise
    (``radam > rectified: threshold must be >= 4``)."""

    def decorate(fn: _F) -> _F:
        signature = inspect.signature(fn)
        unknown = set(rules) - set(signature.parameters)
        if unknown:
            raise TypeError(f"checked: {fn.__name__} has no argument {sorted(unknown)}")

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            for name, value in bound.arguments.items():
                if name in rules:
                    rules[name].check(fn.__name__, name, value)
            try:
                return fn(*args, **kwargs)
            except InputError as error:
                raise error.within(fn.__name__) from None

        # Annotations as objects, not strings, as optax's are: code that inspects
        # ``signature(adam).parameters["learning_rate"].annotation`` sees ScalarOrSchedule.
        wrapper.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
        wrapper.__rules__ = dict(rules)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
