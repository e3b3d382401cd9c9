"""Data that JAX traces through: frozen dataclasses registered as pytrees.

`pytree_dataclass` makes a class a frozen dataclass whose fields declared with `hyper`
are pytree leaves (numbers: pass the object into ``jit`` and change them without
recompiling, ``vmap`` over them) and whose fields declared with `static` are static
(choices: part of the treedef, hashed). Transforms, chains and schedules are all such
data; two objects with equal fields compare and hash equal.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar, dataclass_transform

import jax
import numpy as np
from jax.core import Tracer

from gradtx import _checks

_T = TypeVar("_T")


def hyper(
    default: Any = dataclasses.MISSING,
    *,
    rule: _checks.Rule | None = None,
    complement: bool = False,
    kw_only: bool = False,
) -> Any:
    """Declares a numeric hyperparameter: a pytree leaf, checked against ``rule`` when
    built (the rules are in ``gradtx._checks``: ``nonnegative``, ``beta``, ...).

    ``complement=True`` also keeps ``1 - value`` as a leaf, computed when the transform
    is built, the way optax evaluates ``(1 - decay)`` on a Python float: in float64
    before it meets a float32 array. So an optimizer passed into ``jit`` as data gives
    the same numbers as one closed over.
    """
    return dataclasses.field(
        default=default,
        kw_only=kw_only,
        metadata={"gradtx": "hyper", "complement": complement, "rule": rule},
    )


def static(
    default: Any = dataclasses.MISSING, *, rule: _checks.Rule | None = None, kw_only: bool = False
) -> Any:
    """Declares a structural field: part of the pytree's static (hashed) data, checked
    against ``rule`` when built."""
    return dataclasses.field(default=default, kw_only=kw_only, metadata={"gradtx": "static", "rule": rule})


class FrozenTree:
    """A pytree of Python values kept as hashable static data (a mask, say)."""

    def __init__(self, value: Any) -> None:
        leaves, self.treedef = jax.tree.flatten(value)
        self.leaves = tuple(leaves)

    @property
    def tree(self) -> Any:
        """The pytree."""
        return jax.tree.unflatten(self.treedef, self.leaves)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FrozenTree) and (self.treedef, self.leaves) == (other.treedef, other.leaves)

    def __hash__(self) -> int:
        return hash((self.treedef, self.leaves))

    def __repr__(self) -> str:
        return repr(self.tree)


def _is_data(value: Any) -> bool:
    return isinstance(value, PyTreeData)


def _leaf_equal(a: Any, b: Any) -> bool:
    if isinstance(a, Tracer) or isinstance(b, Tracer):
        return a is b
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_leaf_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_leaf_equal(a[k], b[k]) for k in a)
    if callable(a) or callable(b) or a is None or b is None or _is_data(a) or _is_data(b):
        return a == b
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _leaf_hash(a: Any) -> int:
    if isinstance(a, Tracer):
        raise TypeError("a transform holding traced values is not hashable")
    if isinstance(a, tuple):
        return hash(tuple(_leaf_hash(x) for x in a))
    if isinstance(a, dict):
        return hash(tuple((k, _leaf_hash(v)) for k, v in sorted(a.items())))
    if a is None or isinstance(a, (bool, int, float, complex, str)) or callable(a) or _is_data(a):
        return hash(a)
    arr = np.asarray(a)
    if arr.ndim == 0:
        return hash(arr.item())
    return hash((arr.shape, str(arr.dtype), arr.tobytes()))


def _short(value: Any) -> str:
    if isinstance(value, Tracer):
        return f"<traced {value.dtype}{list(value.shape)}>"
    if isinstance(value, (jax.Array, np.ndarray)):
        arr = np.asarray(value)
        return repr(arr.item()) if arr.ndim == 0 else f"array({arr.tolist()})"
    if callable(value) and not _is_data(value):
        return getattr(value, "__name__", repr(value))
    return repr(value)


class PyTreeData:
    """Base of everything gradtx keeps as data: transforms, chains (and schedules).

    Subclasses are declared with `pytree_dataclass`. Fields made with `hyper` are
    leaves; fields made with `static` are static. A `hyper` field that holds a plain
    Python callable (an optax schedule, say) is static too, since a function cannot be
    traced; a gradtx schedule is itself data and its numbers become leaves.
    """

    _hyper_fields: ClassVar[tuple[str, ...]] = ()
    _complement_fields: ClassVar[tuple[str, ...]] = ()
    _static_fields: ClassVar[tuple[str, ...]] = ()
    _rules: ClassVar[dict[str, _checks.Rule]] = {}

    def __post_init__(self) -> None:
        name = type(self).__name__
        for field, rule in self._rules.items():
            rule.check(name, field, getattr(self, field))
        for field in self._hyper_fields:
            value = getattr(self, field)
            if type(value) is int and not -(2**31) <= value < 2**31:
                # A leaf JAX would read as int32 and overflow (decay_steps=10**10): a float
                # holds it (exactly up to 2**53 in float64, to 1 part in 2**24 in float32).
                object.__setattr__(self, field, float(value))
        complements = {}
        for field in self._complement_fields:
            value = getattr(self, field)
            if value is not None and not callable(value):
                complements[field] = 1 - value
        object.__setattr__(self, "_complements", complements)

    def one_minus(self, field: str) -> Any:
        """``1 - getattr(self, field)``, evaluated when the value was given."""
        complements: dict[str, Any] = self.__dict__["_complements"]
        if field in complements:
            return complements[field]
        return 1 - getattr(self, field)

    def at(self, field: str, count: jax.Array | None) -> Any:
        """The value of hyperparameter ``field`` at step ``count`` (from 0): the number
        itself, or the schedule evaluated there."""
        value = getattr(self, field)
        if callable(value):
            if count is None:
                raise TypeError(
                    f"{type(self).__name__}: {field} is a schedule, but the state counts no steps"
                )
            value = value(count)
        rule = self._rules.get(field)
        if rule is not None and rule.one_number and value is not None:
            _checks.one_number(type(self).__name__, field, value)
        return value

    def one_minus_at(self, field: str, count: jax.Array | None) -> Any:
        """``1 - self.at(field, count)``, keeping the precision of `one_minus` for numbers."""
        if callable(getattr(self, field)):
            return 1 - self.at(field, count)
        return self.one_minus(field)

    def has_schedule(self) -> bool:
        """Whether any hyperparameter is a schedule (a callable of the step)."""
        return any(callable(getattr(self, f)) for f in self._hyper_fields)

    # --- pytree protocol -------------------------------------------------------------
    def _flatten_with_keys(self) -> tuple[list[tuple[Any, Any]], tuple[Any, ...]]:
        children: list[tuple[Any, Any]] = []
        callables: list[tuple[str, Any]] = []
        for field in self._hyper_fields:
            value = getattr(self, field)
            if callable(value) and not _is_data(value):
                callables.append((field, value))
            else:
                children.append((jax.tree_util.GetAttrKey(field), value))
        complements: dict[str, Any] = self.__dict__["_complements"]
        complement_names = tuple(complements)
        for field in complement_names:
            children.append((jax.tree_util.GetAttrKey(f"one_minus_{field}"), complements[field]))
        statics = tuple(getattr(self, f) for f in self._static_fields)
        return children, (statics, tuple(callables), complement_names)

    @classmethod
    def _unflatten(cls: type[_T], aux: tuple[Any, ...], children: Iterable[Any]) -> _T:
        statics, callables, complement_names = aux
        obj = object.__new__(cls)
        children = list(children)
        static_callables = dict(callables)
        values = iter(children)
        for field in cls._hyper_fields:  # type: ignore[attr-defined]
            value = static_callables[field] if field in static_callables else next(values)
            object.__setattr__(obj, field, value)
        object.__setattr__(obj, "_complements", {name: next(values) for name in complement_names})
        for field, value in zip(cls._static_fields, statics, strict=True):  # type: ignore[attr-defined]
            object.__setattr__(obj, field, value)
        return obj

    # --- value semantics ---------------------------------------------------------------
    def _fields_for_eq(self) -> tuple[tuple[Any, ...], list[Any]]:
        values = [getattr(self, f) for f in self._hyper_fields]
        statics = tuple(getattr(self, f) for f in self._static_fields)
        return statics, values

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, PyTreeData)
        statics_a, values_a = self._fields_for_eq()
        statics_b, values_b = other._fields_for_eq()
        return statics_a == statics_b and all(
            _leaf_equal(a, b) for a, b in zip(values_a, values_b, strict=True)
        )

    def __hash__(self) -> int:
        statics, values = self._fields_for_eq()
        return hash((type(self).__name__, statics, tuple(_leaf_hash(v) for v in values)))

    def __repr__(self) -> str:
        shown = [f"{f.name}={_short(getattr(self, f.name))}" for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        return f"{type(self).__name__}({', '.join(shown)})"


_D = TypeVar("_D", bound=type)


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, hyper, static))
def pytree_dataclass(cls: _D) -> _D:
    """Makes ``cls`` a frozen dataclass registered as a pytree (see `PyTreeData`).

    How to write a transform of your own: subclass `Transform`, declare every field with
    `hyper` (numbers: leaves) or `static` (choices), each with the rule its values
    follow if it has one, and implement ``init`` and ``_update(updates, state, params,
    ctx)``.

    Example:
      >>> import gradtx, jax, jax.numpy as jnp
      >>> @gradtx.pytree_dataclass
      ... class add_noise_free_offset(gradtx.Transform):
      ...     offset: float = gradtx.hyper(default=1.0)
      ...     def init(self, params):
      ...         return gradtx.EmptyState()
      ...     def _update(self, updates, state, params, ctx):
      ...         return jax.tree.map(lambda g: g + self.offset, updates), state
      >>> tx = add_noise_free_offset(0.5)
      >>> tx, jax.tree.leaves(tx)
      (add_noise_free_offset(offset=0.5), [0.5])
    """
    cls = dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls)  # type: ignore[assignment]
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    kinds = {f.name: f.metadata.get("gradtx") for f in fields}
    unknown = [name for name, kind in kinds.items() if kind is None]
    if unknown:
        raise TypeError(f"{cls.__name__}: declare fields {unknown} with gradtx.hyper or gradtx.static")
    cls._hyper_fields = tuple(n for n, k in kinds.items() if k == "hyper")  # type: ignore[attr-defined]
    cls._static_fields = tuple(n for n, k in kinds.items() if k == "static")  # type: ignore[attr-defined]
    cls._complement_fields = tuple(f.name for f in fields if f.metadata.get("complement"))  # type: ignore[attr-defined]
    cls._rules = {f.name: f.metadata["rule"] for f in fields if f.metadata.get("rule")}  # type: ignore[attr-defined]
    try:  # annotations as objects, not strings (see `_checks.checked`)
        cls.__signature__ = inspect.signature(cls, eval_str=True)  # type: ignore[attr-defined]
    except NameError:
        pass
    jax.tree_util.register_pytree_with_keys(
        cls,
        lambda obj: obj._flatten_with_keys(),
        cls._unflatten,  # type: ignore[attr-defined]
    )
    return cls


def as_arrays(tree: _T) -> _T:
    """``tree`` with every Python or NumPy number among its leaves made a JAX array.

    An optimizer's numbers are pytree leaves, so ``jax.jit`` traces them and a new
    learning rate reuses the compiled step. Tools that treat Python numbers as static
    (``equinox.filter_jit``, ``nnx`` attributes) re-trace for each new value instead;
    give them ``as_arrays(optimizer)``. Each number becomes the array ``jax.jit`` would
    make of it (float32, weakly typed, or float64 under x64), so the numbers are the ones
    a plain ``jit`` gives, and ``1 - b`` stays the complement computed in float64 when
    the optimizer was built (see `hyper`), rounded once.

    Args:
      tree: an optimizer, a schedule, or any pytree.

    Returns:
      The same tree with array leaves; arrays (and tracers) are kept as they are.

    Example:
      >>> import gradtx, jax
      >>> opt = gradtx.as_arrays(gradtx.sgd(0.1, momentum=0.9))
      >>> [(float(x), x.dtype.name, x.weak_type) for x in jax.tree.leaves(opt)][:2]
      [(0.8999999761581421, 'float32', True), (0.10000000149011612, 'float32', True)]

    References:
      JAX's weakly typed values: https://docs.jax.dev/en/latest/type_promotion.html
    """

    def to_array(leaf: Any) -> Any:
        if isinstance(leaf, bool | int | float | complex | np.number | np.bool_):
            return jax.numpy.asarray(leaf)
        return leaf

    return jax.tree.map(to_array, tree)
