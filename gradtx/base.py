"""The protocol: transforms as frozen pytree dataclasses, `chain`, `apply_updates`.

A transform has ``init(params) -> state`` and
``update(updates, state, params=None, **extra) -> (updates, state)``, the signatures
of optax, so gradtx and optax transforms nest inside each other's chains. Each
transform is a frozen dataclass registered as a JAX pytree: its numeric
hyperparameters are leaves (pass an optimizer into ``jax.jit`` and change its learning
rate without recompiling, or ``jax.vmap`` over a batch of optimizers), its
structural choices (booleans, dtypes, masks, plain Python callables) are static.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, NamedTuple, TypeVar, dataclass_transform

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from gradtx import _checks

PyTree = Any
Params = Any
Updates = Any
OptState = Any

_T = TypeVar("_T")


class EmptyState(NamedTuple):
    """State of a transform that keeps none."""


class ScheduleState(NamedTuple):
    """State of an otherwise stateless transform whose hyperparameter is a schedule."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]


@dataclasses.dataclass
class Context:
    """What a `chain` carries from one transform to the next, besides the updates.

    Attributes:
      gradient: the input of the most recent `gradtx.momentum` in the chain, or None.
        Transforms that keep gradient statistics (`scale_by_rms`, `scale_by_rss`, ...)
        read it, so that Adam's second moment sees the gradient its first moment saw.
      extra: keyword arguments passed to ``update`` (optax's "extra args").
    """

    gradient: Updates = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def statistics_input(self, updates: Updates) -> Updates:
        """The tree gradient statistics are computed from."""
        return updates if self.gradient is None else self.gradient


def hyper(default: Any = dataclasses.MISSING, *, complement: bool = False, kw_only: bool = False) -> Any:
    """Declares a numeric hyperparameter: a pytree leaf, checked when built.

    ``complement=True`` also keeps ``1 - value`` as a leaf, computed when the transform
    is built, the way optax evaluates ``(1 - decay)`` on a Python float: in float64
    before it meets a float32 array. So an optimizer passed into ``jit`` as data gives
    the same numbers as one closed over.
    """
    return dataclasses.field(
        default=default, kw_only=kw_only, metadata={"gradtx": "hyper", "complement": complement}
    )


def static(default: Any = dataclasses.MISSING, *, kw_only: bool = False) -> Any:
    """Declares a structural field: part of the pytree's static (hashed) data."""
    return dataclasses.field(default=default, kw_only=kw_only, metadata={"gradtx": "static"})


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

    def __post_init__(self) -> None:
        name = type(self).__name__
        for field in self._hyper_fields:
            _checks.check(name, field, getattr(self, field))
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
        if not callable(value):
            return value
        if count is None:
            raise TypeError(f"{type(self).__name__}: {field} is a schedule, but the state counts no steps")
        return value(count)

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
    `hyper` (numbers: leaves, checked by name) or `static` (choices), implement ``init``
    and ``_update(updates, state, params, ctx)``.

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
        raise TypeError(f"{cls.__name__}: declare fields {unknown} with gradtx.base.hyper or static")
    cls._hyper_fields = tuple(n for n, k in kinds.items() if k == "hyper")  # type: ignore[attr-defined]
    cls._static_fields = tuple(n for n, k in kinds.items() if k == "static")  # type: ignore[attr-defined]
    cls._complement_fields = tuple(f.name for f in fields if f.metadata.get("complement"))  # type: ignore[attr-defined]
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


class Transform(PyTreeData):
    """A gradient transformation: ``init`` and ``update`` as in optax.

    Subclasses implement ``init`` and ``_update(updates, state, params, ctx)``; the
    public ``update`` first checks that the gradient tree matches the state, so a
    mismatch is reported at trace time naming the transform and the first differing path.

    ``Transform(init_fn, update_fn)`` (also spelled ``gradtx.GradientTransformation``,
    optax's name) wraps a pair of functions written for optax into a transform, so
    optax code that builds its own transformations runs after the import switch.

    Example:
      >>> import gradtx, jax, jax.numpy as jnp
      >>> double = gradtx.GradientTransformation(
      ...     lambda params: gradtx.EmptyState(),
      ...     lambda updates, state, params=None: (jax.tree.map(lambda u: 2 * u, updates), state),
      ... )
      >>> double.update(jnp.ones(2), double.init(jnp.ones(2)))[0]
      Array([2., 2.], dtype=float32)
    """

    # Whether ``update`` checks each per-parameter buffer of the state against the
    # updates; wrappers, whose state holds other transforms' states, say False.
    _check_buffers: ClassVar[bool] = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        del args, kwargs
        # Python then calls the returned object's __init__ with the same arguments.
        return object.__new__(functions if cls is Transform else cls)

    def __iter__(self) -> Any:
        """``init_fn, update_fn = tx`` unpacks as an optax ``GradientTransformation``
        (a NamedTuple of the two functions) does."""
        return iter((self.init, self.update))

    def __getitem__(self, index: int) -> Any:
        """``tx[0]`` is ``init``, ``tx[1]`` is ``update``, as in optax's NamedTuple."""
        return (self.init, self.update)[index]

    def _children(self, state: OptState) -> list[tuple[Transform, OptState]]:
        """The transforms this one wraps, each with its state (for `hyperparams`)."""
        del state
        return []

    def init(self, params: Params) -> OptState:
        """Returns the initial state for ``params``."""
        raise NotImplementedError

    def update(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, OptState]:
        """Transforms ``updates``; returns the new updates and state."""
        return self._apply(updates, state, params, Context(extra=extra))

    def _apply(
        self, updates: Updates, state: OptState, params: Params | None, ctx: Context
    ) -> tuple[Updates, OptState]:
        if self._check_buffers:
            check_state_matches(type(self).__name__, updates, state)
        return self._update(updates, state, params, ctx)

    def _update(
        self, updates: Updates, state: OptState, params: Params | None, ctx: Context
    ) -> tuple[Updates, OptState]:
        raise NotImplementedError

    def _stateless_init(self) -> EmptyState | ScheduleState:
        """The state of a transform that needs a step count only for its schedules."""
        return ScheduleState(count=zero_count()) if self.has_schedule() else EmptyState()

    @staticmethod
    def _stateless_next(state: Any) -> Any:
        if isinstance(state, ScheduleState):
            return ScheduleState(count=safe_increment(state.count))
        return state

    def _hyperparams(self, state: OptState) -> dict[str, Any]:
        """The hyperparameter values the last update used (see `gradtx.hyperparams`)."""
        count = _count_of(state)
        values = {}
        for field in self._hyper_fields:
            value = getattr(self, field)
            if value is None or isinstance(value, (Transform, tuple, list, dict)):
                continue  # absent, or wrapped transforms (reported through _children)
            if callable(value):
                if count is None:
                    continue
                value = value(jnp.maximum(count - 1, 0))
            values[field] = jnp.asarray(value)
        return values


def _count_of(state: Any) -> jax.Array | None:
    # Not getattr: every tuple has a .count method.
    return state.count if "count" in getattr(state, "_fields", ()) else None


# --- trace-time checks ----------------------------------------------------------------


def _path_str(path: tuple[Any, ...]) -> str:
    return jax.tree_util.keystr(path) or "<root>"


def check_tree_matches(transform: str, updates: Updates, buffer: PyTree, buffer_name: str) -> None:
    """Raises ValueError naming ``transform`` if ``buffer`` does not match ``updates``."""
    u_leaves, u_def = jax.tree_util.tree_flatten_with_path(updates)
    b_leaves, b_def = jax.tree_util.tree_flatten_with_path(buffer)
    if u_def != b_def:
        u_paths = [p for p, _ in u_leaves]
        b_paths = [p for p, _ in b_leaves]
        first = next(
            (i for i, (a, b) in enumerate(zip(u_paths, b_paths, strict=False)) if a != b),
            min(len(u_paths), len(b_paths)),
        )
        where_u = _path_str(u_paths[first]) if first < len(u_paths) else "<nothing>"
        where_b = _path_str(b_paths[first]) if first < len(b_paths) else "<nothing>"
        raise ValueError(
            f"{transform}: the updates do not have the structure of the state's {buffer_name!r}. "
            f"First difference at leaf {first}: updates have {where_u}, state has {where_b}.\n"
            f"  updates: {_brief(u_def)}\n  state:   {_brief(b_def)}\n"
            "Call init with parameters of the same structure as the gradients."
        )
    for (path, u), (_, b) in zip(u_leaves, b_leaves, strict=True):
        if jnp.shape(u) != jnp.shape(b):
            raise ValueError(
                f"{transform}: at {_path_str(path)} the updates have shape {jnp.shape(u)} but the "
                f"state's {buffer_name!r} has shape {jnp.shape(b)}. Call init with parameters "
                "of the same shapes as the gradients."
            )


def _brief(treedef: Any, limit: int = 300) -> str:
    text = str(treedef)
    return text if len(text) <= limit else text[:limit] + "..."


def check_state_matches(transform: str, updates: Updates, state: OptState) -> None:
    """Checks every per-parameter buffer of a NamedTuple ``state`` against ``updates``."""
    if not hasattr(state, "_fields"):
        return
    for name in state._fields:
        buffer = getattr(state, name)
        if name != "count" and buffer is not None:
            check_tree_matches(transform, updates, buffer, name)


# --- counters -------------------------------------------------------------------------


def zero_count() -> jax.Array:
    """A fresh int32 step counter."""
    return jnp.zeros([], jnp.int32)


def safe_increment(count: Any) -> jax.Array:
    """``count + 1``, saturating at the largest value of its dtype instead of wrapping.

    Args:
      count: an integer or floating-point counter (int32 for gradtx's counters).

    Returns:
      ``count + 1`` in ``count``'s dtype, or ``count`` itself at the largest value.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.safe_increment(jnp.asarray(2**31 - 1, jnp.int32))
      Array(2147483647, dtype=int32)

    References:
      ``optax.safe_increment`` (same behaviour; ``optax.safe_int32_increment`` is an
      alias of it, and of this).
    """
    count = jnp.asarray(count)
    dtype = count.dtype
    if jnp.issubdtype(dtype, jnp.integer):
        largest = jnp.iinfo(dtype).max
    elif jnp.issubdtype(dtype, jnp.floating):
        largest = jnp.finfo(dtype).max
    else:
        raise ValueError(f"safe_increment: count must be an integer or float array, got dtype {dtype}")
    largest = jnp.asarray(largest, dtype)
    return jnp.where(count < largest, count + jnp.asarray(1, dtype), largest)


# --- the identity and chains ----------------------------------------------------------


@pytree_dataclass
class identity(Transform):
    """Leaves updates unchanged.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.identity().update(jnp.ones(2), gradtx.EmptyState())[0]
      Array([1., 1.], dtype=float32)
    """

    def init(self, params: Params) -> EmptyState:
        del params
        return EmptyState()

    def _update(self, updates: Updates, state: OptState, params: Params | None, ctx: Context):
        del params, ctx
        return updates, state


@pytree_dataclass
class functions(Transform):
    """A transform made of an ``init`` and an ``update`` function, as optax builds them.

    Built by ``gradtx.GradientTransformation(init, update)`` (optax's spelling) or
    `stateless`. Both functions are static; ``update`` receives the extra keyword
    arguments when it accepts ``**kwargs``.

    Args:
      init: ``init(params) -> state``.
      update: ``update(updates, state, params=None, **extra) -> (updates, state)``.

    Returns:
      A transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.functions(gradtx.init_empty_state, lambda u, s, p=None: (-u, s))
      >>> tx.update(jnp.ones(2), tx.init(None))[0]
      Array([-1., -1.], dtype=float32)

    References:
      ``optax.GradientTransformation`` (a NamedTuple of the two functions).
    """

    init_fn: Callable[..., Any] = static()
    update_fn: Callable[..., Any] = static()

    def __init__(self, init: Callable[..., Any], update: Callable[..., Any]) -> None:
        object.__setattr__(self, "init_fn", init)
        object.__setattr__(self, "update_fn", update)
        self.__post_init__()

    def init(self, params: Params) -> OptState:
        return self.init_fn(params)

    def _apply(self, updates: Updates, state: OptState, params: Params | None, ctx: Context):
        # Without parameters, call as the user would: some update functions take
        # (updates, state, *, keyword arguments) only.
        args = (updates, state) if params is None else (updates, state, params)
        if ctx.extra and _accepts_extra(self.update_fn):
            return self.update_fn(*args, **ctx.extra)
        return self.update_fn(*args)

    def __repr__(self) -> str:
        return f"functions(init={_short(self.init_fn)}, update={_short(self.update_fn)})"


def init_empty_state(params: Params) -> EmptyState:
    """The ``init`` of a transform that keeps no state: returns `EmptyState`.

    Args:
      params: ignored.

    Returns:
      ``EmptyState()``.

    Example:
      >>> import gradtx
      >>> gradtx.init_empty_state({"w": 1.0})
      EmptyState()

    References:
      ``optax.init_empty_state``.
    """
    del params
    return EmptyState()


@pytree_dataclass
class foreign(Transform):
    """An optax (or any ``(init, update)``) transformation held inside a gradtx chain.

    `chain` wraps non-gradtx transformations in this automatically. The wrapped object
    is static: its own hyperparameters are closed over and not leaves.
    """

    transformation: Any = static()

    def init(self, params: Params) -> OptState:
        return self.transformation.init(params)

    def _apply(self, updates: Updates, state: OptState, params: Params | None, ctx: Context):
        update = self.transformation.update
        if ctx.extra and _accepts_extra(update):
            return update(updates, state, params, **ctx.extra)
        return update(updates, state, params)


def _accepts_extra(fn: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _as_transform(tx: Any, where: str) -> Transform:
    if isinstance(tx, Transform):
        return tx
    if hasattr(tx, "init") and hasattr(tx, "update"):
        return foreign(tx)
    raise TypeError(f"{where}: expected a transform with init and update (gradtx or optax), got {tx!r}")


@pytree_dataclass
class Chain(Transform):
    """Transforms applied one after the other; build it with `chain` or `named_chain`.

    Its state is a tuple of the transforms' states (a dict for `named_chain`). The
    gradient statistics of a transform inside a chain come from the input of the most
    recent `gradtx.momentum` before it (see `Context`), also across nested chains, so
    ``chain(a, chain(b, c))`` behaves like ``chain(a, b, c)``.

    Attributes:
      transforms: the transforms, in order.
      names: the names given by `named_chain`, or None.
      label: the optimizer this chain is (``"adam"``), shown by ``repr``; or None.
      readout_names: ``("transform.field", "name")`` pairs: the names under which
        `hyperparams` reports its blocks' fields (``scale_by_rms.decay`` is adam's ``b2``).
    """

    transforms: tuple[Transform, ...] = hyper()
    names: tuple[str, ...] | None = static(default=None)
    label: str | None = static(default=None)
    readout_names: tuple[tuple[str, str], ...] = static(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_complements", {})

    def init(self, params: Params) -> OptState:
        states = tuple(tx.init(params) for tx in self.transforms)
        return states if self.names is None else dict(zip(self.names, states, strict=True))

    def _apply(self, updates: Updates, state: OptState, params: Params | None, ctx: Context):
        name = self.label or "chain"
        if self.names is None:
            if not isinstance(state, tuple) or len(state) != len(self.transforms):
                raise ValueError(
                    f"{name}: expected a state tuple of {len(self.transforms)} entries (one per "
                    f"transform), got {_describe(state)}. Use the state this optimizer's init returned."
                )
            states = list(state)
        else:
            if not isinstance(state, dict) or set(state) != set(self.names):
                raise ValueError(
                    f"{name}: expected a state dict with keys {list(self.names)}, got "
                    f"{_describe(state)}. Use the state this optimizer's init returned."
                )
            states = [state[n] for n in self.names]
        new_states = []
        for tx, s in zip(self.transforms, states, strict=True):
            updates, s = tx._apply(updates, s, params, ctx)
            new_states.append(s)
        if self.names is None:
            return updates, tuple(new_states)
        return updates, dict(zip(self.names, new_states, strict=True))

    def __repr__(self) -> str:
        lines = []
        for i, tx in enumerate(self.transforms):
            body = "\n    ".join(repr(tx).splitlines())
            prefix = f"{self.names[i]!r}: " if self.names is not None else ""
            lines.append(f"    {prefix}{body},")
        head = "named_chain(" if self.names is not None else "chain("
        if self.label:
            head = f"{self.label} = {head}"
        return head + "\n" + "\n".join(lines) + "\n)"


def _describe(state: Any) -> str:
    if isinstance(state, tuple):
        return f"a {type(state).__name__} of {len(state)} entries"
    return f"a {type(state).__name__}"


def chain(*transforms: Any) -> Chain:
    """Applies ``transforms`` one after the other.

    Any object with ``init`` and ``update`` (an optax transformation, say) may appear;
    it is held as static data.

    Args:
      *transforms: the transforms, in order.

    Returns:
      A `Chain` whose state is the tuple of the transforms' states.

    Example:
      >>> import gradtx
      >>> opt = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(1e-3))
    """
    return Chain(tuple(_as_transform(tx, "chain") for tx in transforms))


def named_chain(*named_transforms: tuple[str, Any]) -> Chain:
    """Like `chain`, with each transform named; its state is a dict keyed by name.

    Args:
      *named_transforms: ``(name, transform)`` pairs; names must be unique.

    Returns:
      A `Chain` whose state is ``{name: state}``.
    """
    names = tuple(name for name, _ in named_transforms)
    if len(set(names)) != len(names):
        raise ValueError(f"named_chain: names must be unique, got {list(names)}")
    transforms = tuple(_as_transform(tx, "named_chain") for _, tx in named_transforms)
    return Chain(transforms, names=names)


def labelled(label: str, *transforms: Any, readout_names: dict[str, str] | None = None) -> Chain:
    """A `chain` that ``repr`` shows as ``label = chain(...)``; used by the optimizers.

    ``readout_names`` maps ``"transform.field"`` to the optimizer's own argument name,
    for `hyperparams`.
    """
    return Chain(
        tuple(_as_transform(tx, label) for tx in transforms),
        label=label,
        readout_names=tuple(sorted((readout_names or {}).items())),
    )


# --- applying updates and reading hyperparameters -------------------------------------


def apply_updates(params: Params, updates: Updates) -> Params:
    """Returns ``params + updates``, each leaf keeping its parameter's dtype.

    The sum is computed in the promoted dtype of the two leaves (as optax does), then
    cast back. ``None`` leaves pass through.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.apply_updates({"w": jnp.ones(2)}, {"w": jnp.full(2, -0.5)})
      {'w': Array([0.5, 0.5], dtype=float32)}
    """

    def add(p: Any, u: Any) -> Any:
        if p is None:
            return None
        p = jnp.asarray(p)
        u = jnp.asarray(u)
        with jax.numpy_dtype_promotion("standard"):
            dtype = jnp.promote_types(p.dtype, u.dtype)
        return (p.astype(dtype) + u.astype(dtype)).astype(p.dtype)

    return jax.tree.map(add, params, updates, is_leaf=lambda x: x is None)


def hyperparams(optimizer: Transform, state: OptState) -> dict[str, jax.Array]:
    """The step count and every hyperparameter value the last update used.

    Works on any gradtx transform or chain, inside or outside ``jit``. Hyperparameters
    given as schedules are evaluated at the step the last update used (before the first
    update: the step the first update will use). Names are the transforms' argument
    names; a name used by more than one transform in a chain is qualified as
    ``"transform.name"`` (and ``"transform[i].name"`` if that is still ambiguous).

    Args:
      optimizer: the transform.
      state: its state.

    Returns:
      A dict with ``"step"`` (the number of updates applied, when the optimizer counts
      them) and one entry per hyperparameter.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.adam(1e-3)
      >>> hp = gradtx.hyperparams(opt, opt.init(jnp.zeros(3)))
      >>> int(hp["step"]), round(float(hp["learning_rate"]), 6), round(float(hp["b2"]), 6)
      (0, 0.001, 0.999)
    """
    entries: list[tuple[str, str, Any]] = []
    counts: list[jax.Array] = []

    def visit(tx: Transform, st: Any) -> None:
        if isinstance(tx, Chain):
            sts = st if tx.names is None else [st[n] for n in tx.names]
            start = len(entries)
            for child, child_state in zip(tx.transforms, sts, strict=True):
                visit(child, child_state)
            renames = dict(tx.readout_names)
            for i in range(start, len(entries)):
                tname, key, value = entries[i]
                if f"{tname}.{key}" in renames:
                    entries[i] = (tx.label or "chain", renames[f"{tname}.{key}"], value)
            return
        if isinstance(tx, foreign):
            return
        for child, child_state in tx._children(st):
            visit(child, child_state)
        count = _count_of(st)
        if count is not None:
            counts.append(count)
        for key, value in tx._hyperparams(st).items():
            entries.append((type(tx).__name__, key, value))

    visit(optimizer, state)
    result: dict[str, jax.Array] = {}
    if counts:
        result["step"] = counts[0]
    by_name: dict[str, int] = {}
    by_qualified: dict[str, int] = {}
    for tname, key, _ in entries:
        by_name[key] = by_name.get(key, 0) + 1
        by_qualified[f"{tname}.{key}"] = by_qualified.get(f"{tname}.{key}", 0) + 1
    seen: dict[str, int] = {}
    for tname, key, value in entries:
        qualified = f"{tname}.{key}"
        if by_name[key] == 1:
            result[key] = value
        elif by_qualified[qualified] == 1:
            result[qualified] = value
        else:
            i = seen.get(qualified, 0)
            seen[qualified] = i + 1
            result[f"{tname}[{i}].{key}"] = value
    return result
