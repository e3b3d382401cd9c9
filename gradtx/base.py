"""The protocol: `Transform`, `apply_updates` (the `Context` a chain carries is `gradtx.channel`).

A transform has ``init(params) -> state`` and
``update(updates, state, params=None, **extra) -> (updates, state)``, the signatures
of optax, so gradtx and optax transforms nest inside each other's chains. Each
transform is data (`gradtx.data`): its numeric hyperparameters are pytree leaves, its
structural choices static. Chains live in `gradtx.chains`, the readout of
hyperparameters in `gradtx.readout`.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import channel
from gradtx._checks import InputError
from gradtx._quantized import is_stored
from gradtx.channel import Context
from gradtx.data import PyTreeData, _short, pytree_dataclass, static

PyTree = Any
Params = Any
Updates = Any
OptState = Any


class EmptyState(NamedTuple):
    """State of a transform that keeps none."""


class ScheduleState(NamedTuple):
    """State of an otherwise stateless transform whose hyperparameter is a schedule."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]


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
    # State fields that are not per-parameter buffers (flags, scalars): not checked.
    _unchecked_fields: ClassVar[tuple[str, ...]] = ()
    # Whether ``update`` accepts integer and boolean leaves (transforms that compute
    # nothing from the values: identity, set_to_zero).
    _any_dtype: ClassVar[bool] = False
    # Whether ``params`` have the structure of the updates (lookahead's do not).
    _params_like_updates: ClassVar[bool] = True
    # The channel's slots this block reads and publishes (`gradtx.channel`): the
    # Context refuses any other.
    slots_read: ClassVar[tuple[str, ...]] = ()
    slots_published: ClassVar[tuple[str, ...]] = ()
    # Whether each output value depends only on the values at the same position (of the
    # updates, the parameters, the state's per-parameter buffers and the slots) and on
    # scalars shared by the whole tree (step counts, schedules): `gradtx.tiled` runs only
    # such blocks.
    elementwise: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        channel.register(cls)

    def _published(self) -> frozenset[str]:
        """The slots this transform makes visible to the blocks after it (a chain: its
        blocks'; a wrapper: none, what is published inside stays inside)."""
        return frozenset(self.slots_published)

    def _inside(self) -> list[Transform]:
        """The transforms this one holds (a chain's, a wrapper's): its `hyper` fields
        that are transforms, or tuples or dicts of them."""
        found: list[Transform] = []
        for field in self._hyper_fields:
            value = getattr(self, field)
            if isinstance(value, dict):
                value = tuple(value.values())
            found += [
                v
                for v in (value if isinstance(value, (tuple, list)) else (value,))
                if isinstance(v, Transform)
            ]
        return found

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
        """Transforms ``updates``; returns the new updates and state.

        Raises:
          InputError: (a ``ValueError``) when ``params`` do not have the structure of
            ``updates``, a leaf is not a floating-point or complex array, or the state
            does not match; the message names the optimizer, the block and the path.
        """
        if self._params_like_updates:
            if params is not None:
                check_params_match(self._name(), updates, params)
                params = params_where_updates(updates, params)
            self._check_state_layout(updates, state)
        return self._apply(updates, state, params, Context(extra=extra))

    def _check_state_layout(self, updates: Updates, state: OptState) -> None:
        """Raises InputError when ``state`` is not laid out as ``init`` lays it out for
        trees like ``updates`` (the state of another optimizer, say). The expected layout
        comes from ``jax.eval_shape(self.init, updates)``, once per optimizer object and
        tree structure."""
        key = (id(self), jax.tree.structure(updates))
        cached = _LAYOUTS.get(key)
        if cached is None or cached[0]() is not self:
            try:
                expected = jax.eval_shape(self.init, updates)
            except Exception:  # an init that needs concrete values: not checked here
                expected = None
            # A state without leaves is not checked: optax's tests pass a bare 0 for one.
            layout = jax.tree.structure(expected) if jax.tree.leaves(expected) else None
            cached = (weakref.ref(self), expected, layout)
            if len(_LAYOUTS) > 256:
                _LAYOUTS.clear()
            _LAYOUTS[key] = cached
        _, expected, layout = cached
        if layout is not None and jax.tree.structure(state) != layout:
            difference = _layout_difference(self, state, expected)
            if difference is None:
                return
            where, got, want = difference
            raise InputError(
                where,
                f"the state is {got}, but this optimizer's init makes {want} for these "
                "updates. Use the state this optimizer's init returned (a state saved from "
                "another optimizer, or from parameters of another structure, does not fit).",
            )

    def _name(self) -> str:
        return type(self).__name__

    def _apply(
        self, updates: Updates, state: OptState, params: Params | None, ctx: Context
    ) -> tuple[Updates, OptState]:
        if self._check_buffers:
            check_state_matches(type(self).__name__, updates, state, self._unchecked_fields, self._any_dtype)
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


_LAYOUTS: dict[tuple[int, Any], tuple[weakref.ref[Any], Any, Any]] = {}


def _layout_difference(tx: Any, state: Any, expected: Any) -> tuple[tuple[str, ...], str, str] | None:
    """Where a state's layout first departs from the expected one: the blocks, outermost
    first, and both layouts there in words. None when the containers agree (the trees
    inside a block's state are checked against the updates by the block itself) or the
    state is a bare value (optax's tests hand a stateless transform a 0)."""
    if not _is_container(state) or not _is_container(expected):
        return None
    if not _same_container(state, expected):
        return (tx._name(),), _layout_words(state), _layout_words(expected)
    transforms = getattr(tx, "transforms", None)
    if transforms is None:
        return None  # a block: its buffers are checked against the updates when it runs
    names = getattr(tx, "names", None)
    members = list(state) if names is None else [state[n] for n in names]
    wanted = list(expected) if names is None else [expected[n] for n in names]
    for child, got, want in zip(transforms, members, wanted, strict=True):
        inner = _layout_difference(child, got, want)
        if inner is not None:
            label = getattr(tx, "label", None)
            return ((label, *inner[0]) if label else inner[0]), inner[1], inner[2]
    return None


def _is_container(x: Any) -> bool:
    return isinstance(x, (tuple, list, dict))


def _same_container(a: Any, b: Any) -> bool:
    """Same type and arity (NamedTuples: same fields; dicts: same keys)."""
    return type(a) is type(b) and (set(a) == set(b) if isinstance(a, dict) else len(a) == len(b))


def _layout_words(state: Any) -> str:
    fields = getattr(state, "_fields", None)
    if fields is not None:
        return f"a {type(state).__name__}({', '.join(fields)})"
    if isinstance(state, (tuple, list)):
        return f"a {type(state).__name__} of {len(state)} entries"
    return f"a dict with keys {sorted(map(str, state))}"


def _count_of(state: Any) -> jax.Array | None:
    # Not getattr: every tuple has a .count method.
    return state.count if "count" in getattr(state, "_fields", ()) else None


# --- trace-time checks ----------------------------------------------------------------


def _path_str(path: tuple[Any, ...]) -> str:
    return jax.tree_util.keystr(path) or "<root>"


def check_tree_matches(
    transform: str, updates: Updates, u_leaves: list[Any], u_def: Any, buffer: PyTree, buffer_name: str
) -> None:
    """Raises InputError naming ``transform`` if ``buffer`` does not match ``updates``
    (flattened with paths by the caller: ``u_leaves``, ``u_def``)."""
    b_leaves, b_def = jax.tree_util.tree_flatten_with_path(buffer, is_leaf=is_stored)
    if u_def != b_def:
        first, where_u, where_b = _first_difference(updates, buffer)
        raise InputError(
            transform,
            f"the updates do not have the structure of the state's {buffer_name!r}. "
            f"First difference at leaf {first}: updates have {where_u}, state has {where_b}.\n"
            f"  updates: {_brief(u_def)}\n  state:   {_brief(b_def)}\n"
            "Call init with parameters of the same structure as the gradients.",
        )
    for (path, u), (_, b) in zip(u_leaves, b_leaves, strict=True):
        dtype = getattr(b, "dtype", None)
        if dtype is not None and not jnp.issubdtype(dtype, jnp.inexact):
            raise InputError(
                transform,
                f"at {_path_str(path)} the state's {buffer_name!r} has dtype {dtype}: init was "
                "given an integer or boolean parameter there. Keep such leaves out of the "
                "optimizer (gradtx.masked, or gradtx.set_to_zero with gradtx.partition).",
            )
        if jnp.shape(u) != jnp.shape(b):
            raise InputError(
                transform,
                f"at {_path_str(path)} the updates have shape {jnp.shape(u)} but the "
                f"state's {buffer_name!r} has shape {jnp.shape(b)}. Call init with parameters "
                "of the same shapes as the gradients.",
            )


def _first_difference(a: PyTree, b: PyTree) -> tuple[int, str, str]:
    """The index of the first leaf path where two trees differ, and both paths there."""
    a_paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(a)[0]]
    b_paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(b)[0]]
    first = next(
        (i for i, (x, y) in enumerate(zip(a_paths, b_paths, strict=False)) if x != y),
        min(len(a_paths), len(b_paths)),
    )
    where_a = _path_str(a_paths[first]) if first < len(a_paths) else "<nothing>"
    where_b = _path_str(b_paths[first]) if first < len(b_paths) else "<nothing>"
    return first, where_a, where_b


def check_params_match(owner: str, updates: Updates, params: Params) -> None:
    """Raises InputError naming ``owner`` unless ``params`` have the structure of
    ``updates`` (as ``jax.tree.map(f, updates, params)`` needs: ``None`` in the updates
    may stand for a whole subtree of the parameters)."""
    treedef = jax.tree.structure(updates, is_leaf=lambda x: x is None)
    try:
        treedef.flatten_up_to(params)
    except (ValueError, TypeError):
        first, where_u, where_p = _first_difference(updates, params)
        raise InputError(
            owner,
            "the parameters do not have the structure of the updates. First difference at "
            f"leaf {first}: updates have {where_u}, parameters have {where_p}.\n"
            f"  updates:    {_brief(jax.tree.structure(updates))}\n"
            f"  parameters: {_brief(jax.tree.structure(params))}\n"
            "Pass the parameters the gradients were taken of.",
        ) from None


def params_where_updates(updates: Updates, params: Params) -> Params:
    """``params`` with ``None`` wherever ``updates`` hold ``None``, once `check_params_match`
    passed: a parameter is read only where an update exists.

    Equinox code passes the whole model as the parameters (``update(grads, state,
    model)``): its non-array fields (an ``int`` patch size, a ``float`` dropout rate, an
    activation function) have ``None`` gradients, and no block may combine them with an
    update, as optax's ``adamw``, ``lion``, ... skip them. A tree without ``None`` in the
    updates is returned as it is.
    """
    is_none = lambda x: x is None  # noqa: E731
    if not any(leaf is None for leaf in jax.tree.leaves(updates, is_leaf=is_none)):
        return params
    return jax.tree.map(lambda u, p: None if u is None else p, updates, params, is_leaf=is_none)


def check_inexact(owner: str, u_leaves: list[Any]) -> None:
    """Raises InputError naming ``owner`` and the path of the first of the updates'
    leaves (``(path, leaf)`` pairs) that is not a floating-point or complex array
    (integers, booleans, float0)."""
    for path, leaf in u_leaves:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None:
            if isinstance(leaf, (bool, int)):  # Python scalars: floats and complex pass
                dtype = type(leaf).__name__
            else:
                continue
        elif jnp.issubdtype(dtype, jnp.inexact):
            continue
        raise InputError(
            owner,
            f"at {_path_str(path)} the updates have dtype {dtype}, but gradtx optimizes "
            "floating-point and complex parameters only (optax computes on such leaves "
            "and rounds the result back). Keep integer and boolean leaves out of the "
            "optimizer: wrap it in gradtx.masked(opt, mask) with False at those paths, or "
            "give them gradtx.set_to_zero() with gradtx.partition.",
        )


def _brief(treedef: Any, limit: int = 300) -> str:
    text = str(treedef)
    return text if len(text) <= limit else text[:limit] + "..."


def check_state_matches(
    transform: str,
    updates: Updates,
    state: OptState,
    unchecked: tuple[str, ...] = (),
    any_dtype: bool = False,
) -> None:
    """Checks that ``updates`` are floating-point or complex (unless ``any_dtype``) and
    every per-parameter buffer of a NamedTuple ``state`` against them (all fields but
    ``count`` and those in ``unchecked``), flattening ``updates`` once."""
    u_leaves, u_def = jax.tree_util.tree_flatten_with_path(updates)
    if not any_dtype:
        check_inexact(transform, u_leaves)
    for name in getattr(state, "_fields", ()):
        buffer = getattr(state, name)
        if name != "count" and name not in unchecked and buffer is not None:
            check_tree_matches(transform, updates, u_leaves, u_def, buffer, name)


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
        raise InputError("safe_increment", f"count must be an integer or float array, got dtype {dtype}")
    largest = jnp.asarray(largest, dtype)
    return jnp.where(count < largest, count + jnp.asarray(1, dtype), largest)


# --- the identity and transforms from functions ----------------------------------------


@pytree_dataclass
class identity(Transform):
    """Leaves updates unchanged.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.identity().update(jnp.ones(2), gradtx.EmptyState())[0]
      Array([1., 1.], dtype=float32)
    """

    _any_dtype = True

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
        return _call_update(self.update_fn, updates, state, params, ctx)

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
        return _call_update(self.transformation.update, updates, state, params, ctx)


def _call_update(
    update: Callable[..., Any], updates: Updates, state: OptState, params: Params | None, ctx: Context
) -> tuple[Updates, OptState]:
    """Calls a foreign ``update`` as its author would: without parameters when there are
    none (some take ``(updates, state, *, keywords)`` only), with the extra keyword
    arguments when it accepts ``**kwargs``."""
    args = (updates, state) if params is None else (updates, state, params)
    if ctx.extra and _accepts_extra(update):
        return update(*args, **ctx.extra)
    return update(*args)


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


# --- bases for common kinds of transform -----------------------------------------------


class Stateless(Transform):
    """Base of a transform that keeps no state, but a step count when one of its
    hyperparameters is a schedule. Subclasses implement
    ``_transform(updates, params, count)``, reading hyperparameters with
    ``self.at(name, count)``."""

    def init(self, params: Params) -> EmptyState | ScheduleState:
        del params
        return self._stateless_init()

    def _update(self, updates: Updates, state: OptState, params: Params | None, ctx: Context):
        del ctx
        return self._transform(updates, params, _count_of(state)), self._stateless_next(state)

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        raise NotImplementedError


class Wrapper(Transform):
    """Base of a transform around another: the field named ``_inner_field`` holds it
    (an optax transformation is wrapped when built), the state keeps the inner state
    under ``_inner_state_field`` (None: the state is the inner state itself)."""

    _inner_field: ClassVar[str] = "inner"
    _inner_state_field: ClassVar[str | None] = "inner_state"
    _check_buffers = False

    def __post_init__(self) -> None:
        field = self._inner_field
        object.__setattr__(self, field, _as_transform(getattr(self, field), type(self).__name__))
        super().__post_init__()

    def _apply(self, updates: Updates, state: OptState, params: Params | None, ctx: Context):
        try:
            return super()._apply(updates, state, params, ctx)
        except InputError as error:
            raise error.within(type(self).__name__) from None

    def _children(self, state: OptState) -> list[tuple[Transform, OptState]]:
        field = self._inner_state_field
        return [(getattr(self, self._inner_field), state if field is None else getattr(state, field))]


def require_params(owner: str, params: Params | None, updates: Updates) -> None:
    """Raises ValueError naming ``owner`` when ``update`` was called without parameters
    (an update with no leaves needs none: ``None`` is then the empty tree)."""
    if params is None and jax.tree.leaves(updates):
        raise InputError(owner, "update needs the parameters: call update(updates, state, params).")


# --- applying updates ------------------------------------------------------------------


def apply_updates(
    params: Params, updates: Updates, *, rounding: str = "nearest", key: jax.Array | None = None
) -> Params:
    """Returns ``params + updates``, each leaf keeping its parameter's dtype.

    The sum is computed in the promoted dtype of the two leaves (as optax does), then
    cast back. ``None`` leaves pass through.

    With ``rounding="stochastic"`` (and a ``key``), a sum rounded back to a narrower
    parameter dtype (bfloat16, float16) goes to one of the two representable neighbours
    at random, the upper with probability ``(s - lower) / (upper - lower)``: unbiased,
    ``E[round(s)] = s``. An update smaller than half the spacing of bfloat16 (about
    0.4% of the parameter) is then kept on average instead of lost every step, so
    bfloat16 parameters train like float32 ones without a float32 master copy (Zamirai
    et al., 2020; torchao's bfloat16 optimizers). The sum is then computed in float32 (or
    wider) whatever the update's dtype, so bfloat16 updates of bfloat16 parameters round
    stochastically too; float32 and wider parameters are unaffected. The result is a
    function of ``key`` (fold the step in: ``jax.random.fold_in(key, step)``).

    Args:
      params: the parameters.
      updates: the updates, a tree of the same structure and shapes.
      rounding: ``"nearest"`` (round to nearest even, as optax) or ``"stochastic"``.
      key: a ``jax.random`` key, required with ``rounding="stochastic"``.

    Raises:
      InputError: (a ``ValueError``) when the trees differ in structure or a leaf's
        shape, naming the first path where they differ.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.apply_updates({"w": jnp.ones(2)}, {"w": jnp.full(2, -0.5)})
      {'w': Array([0.5, 0.5], dtype=float32)}
    """

    if rounding not in ("nearest", "stochastic"):
        raise InputError("apply_updates", f"rounding must be 'nearest' or 'stochastic', got {rounding!r}")
    if rounding == "stochastic" and key is None:
        raise InputError(
            "apply_updates",
            "rounding='stochastic' needs a key: apply_updates(params, updates, "
            "rounding='stochastic', key=jax.random.fold_in(key, step)).",
        )
    is_none = lambda x: x is None  # noqa: E731
    p_leaves, p_def = jax.tree_util.tree_flatten_with_path(params, is_leaf=is_none)
    u_leaves, u_def = jax.tree_util.tree_flatten_with_path(updates, is_leaf=is_none)
    if p_def != u_def:
        first, where_p, where_u = _first_difference(params, updates)
        raise InputError(
            "apply_updates",
            "the updates do not have the structure of the parameters. First difference at "
            f"leaf {first}: parameters have {where_p}, updates have {where_u}.\n"
            f"  parameters: {_brief(p_def)}\n  updates:    {_brief(u_def)}\n"
            "Pass the updates the optimizer returned for these parameters.",
        )

    def add(index: int, path: Any, p: Any, u: Any) -> Any:
        if p is None:
            return None
        if jnp.shape(p) != jnp.shape(u):
            raise InputError(
                "apply_updates",
                f"at {_path_str(path)} the parameter has shape {jnp.shape(p)} but the update "
                f"has shape {jnp.shape(u)}; broadcasting would change the parameter's shape.",
            )
        p = jnp.asarray(p)
        u = jnp.asarray(u)
        with jax.numpy_dtype_promotion("standard"):
            dtype = jnp.promote_types(p.dtype, u.dtype)
            if rounding == "stochastic" and jnp.issubdtype(dtype, jnp.floating):
                # The sum in float32 at least: bfloat16 updates of bfloat16 parameters
                # (gradients taken in bfloat16) round stochastically too.
                dtype = jnp.promote_types(dtype, jnp.float32)
        total = p.astype(dtype) + u.astype(dtype)
        if (
            key is not None
            and rounding == "stochastic"
            and dtype != p.dtype
            and jnp.issubdtype(p.dtype, jnp.floating)
        ):
            return stochastic_round(total, p.dtype, jax.random.fold_in(key, index))
        return total.astype(p.dtype)

    # One pass over the leaves already flattened for the structure check.
    pairs = zip(p_leaves, u_leaves, strict=True)
    return p_def.unflatten([add(i, path, p, u) for i, ((path, p), (_, u)) in enumerate(pairs)])


def stochastic_round(x: jax.Array, dtype: Any, key: jax.Array) -> jax.Array:
    """``x`` rounded to ``dtype`` (narrower), up or down at random so that the result's
    expectation is ``x`` (see `apply_updates`). Infinite and NaN values round as usual.

    Args:
      x: the values (float32 or wider).
      dtype: the narrower floating dtype (bfloat16, float16).
      key: a ``jax.random`` key; the result is a function of it.

    Returns:
      ``x`` in ``dtype``: for each value, the neighbour below or above it in ``dtype``,
      the upper with probability ``(x - lower) / (upper - lower)``.

    Example:
      >>> import gradtx, jax, jax.numpy as jnp
      >>> x = jnp.full(8000, 1 + 2.0**-10)  # 1/8 of bfloat16's spacing above 1
      >>> r = gradtx.stochastic_round(x, jnp.bfloat16, jax.random.key(0))
      >>> bool(jnp.all((r == 1) | (r == 1 + 2.0**-7))), round(float(jnp.mean(r.astype(jnp.float32))), 4)
      (True, 1.001)

    References:
      Gupta et al., 2015, "Deep Learning with Limited Numerical Precision"; Zamirai et
      al., 2020, "Revisiting BFloat16 Training".
    """
    nearest = x.astype(dtype)
    back = nearest.astype(x.dtype)
    residual = x - back
    toward = jnp.where(residual > 0, jnp.inf, -jnp.inf).astype(dtype)
    other = jnp.nextafter(nearest, toward)
    gap = other.astype(x.dtype) - back
    probability = jnp.where(gap != 0, residual / jnp.where(gap != 0, gap, 1), 0)
    draw = jax.random.uniform(key, x.shape, x.dtype)
    chosen = jnp.where((draw < probability) & jnp.isfinite(other), other, nearest)
    return jnp.where(jnp.isfinite(x), chosen, nearest)
