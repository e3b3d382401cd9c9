"""Hyperparameter checks, shared by every transform and optimizer.

One word means one thing across gradtx, so the rule for a value follows from its
argument name. Values that are traced arrays or schedules are not checked.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator
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
_DECAY = ("decay", "momentum")

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


_SUSPENDED: contextvars.ContextVar[bool] = contextvars.ContextVar("gradtx_checks_suspended", default=False)


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """Builds blocks without the checks, for an optimizer whose composition needs a value
    the check rejects as a user's mistake (Fromage's negative weight decay). Per thread and
    task (a context variable), so a build elsewhere is still checked."""
    token = _SUSPENDED.set(True)
    try:
        yield
    finally:
        _SUSPENDED.reset(token)


def check(owner: str, name: str, value: Any) -> None:
    """Raises ValueError if ``value`` breaks the rule for argument ``name`` of ``owner``."""
    rule = OWNER_RULES.get((owner, name), RULES.get(name))
    if _SUSPENDED.get() or rule is None or value is None or callable(value) or isinstance(value, Tracer):
        return
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}") from None
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
        return fn(*args, **kwargs)

    # Annotations as objects, not strings, as optax's are: code that inspects
    # ``signature(adam).parameters["learning_rate"].annotation`` sees ScalarOrSchedule.
    wrapper.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
