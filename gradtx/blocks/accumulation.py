"""Gradient accumulation: `MultiSteps`, `apply_every`, and `accumulate` for a scan
over micro-batches inside one jitted step.

`MultiSteps` keeps optax's interface, state and numbers, and wastes nothing: the inner
optimizer runs only on the micro-step that emits an update (under ``lax.cond``; optax
computes an inner update at every micro-step and throws it away), the accumulator is
float32 whatever the gradient dtype, and micro-batches of different sizes can be
weighted (``update(..., weight=tokens)``) so that the emitted gradient is the
token-weighted mean, the gradient of the loss over all tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
from jax.core import Tracer

from gradtx import _checks, _tree, channel
from gradtx._checks import InputError
from gradtx.base import (
    Context,
    OptState,
    Params,
    Transform,
    Updates,
    Wrapper,
    safe_increment,
    zero_count,
)
from gradtx.data import hyper, pytree_dataclass, static

PyTree = Any


class ShouldSkipUpdateFunction(Protocol):
    """``fn(updates, gradient_step, params) -> (skip, info)``: whether `MultiSteps`
    should ignore this micro-batch, and a pytree of information kept in its state."""

    def __call__(self, updates: Updates, gradient_step: jax.Array, params: Params | None) -> tuple[Any, Any]:
        """Returns a boolean scalar and a pytree of information."""
        ...


def skip_not_finite(updates: Updates, gradient_step: Any, params: Params | None) -> tuple[jax.Array, Any]:
    """A `MultiSteps` skip function: skip micro-batches whose gradient is not finite.

    Args:
      updates: the micro-batch's gradient.
      gradient_step: ignored.
      params: ignored.

    Returns:
      ``(skip, {"should_skip": skip, "num_not_finite": count})``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> skip, info = gradtx.skip_not_finite(jnp.asarray([jnp.inf, 1.0]), 0, None)
      >>> bool(skip), int(info["num_not_finite"])
      (True, 1)

    References:
      ``optax.skip_not_finite`` (same values).
    """
    del gradient_step, params
    counts = [jnp.sum(jnp.logical_not(jnp.isfinite(x))) for x in jax.tree.leaves(updates)]
    num_not_finite = jnp.sum(jnp.asarray(counts)) if counts else jnp.zeros([], jnp.int32)
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(
    updates: Updates, gradient_step: Any, params: Params | None, max_squared_norm: Any
) -> tuple[jax.Array, Any]:
    """A `MultiSteps` skip function: skip micro-batches whose squared norm is too large.

    Bind ``max_squared_norm`` with ``functools.partial`` before passing it.

    Args:
      updates: the micro-batch's gradient.
      gradient_step: ignored.
      params: ignored.
      max_squared_norm: skip when the squared global norm is not below this.

    Returns:
      ``(skip, {"should_skip": skip, "norm_squared": norm_sq})``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> skip, info = gradtx.skip_large_updates(jnp.asarray([3.0, 4.0]), 0, None, 20.0)
      >>> bool(skip), float(info["norm_squared"])
      (True, 25.0)

    References:
      ``optax.skip_large_updates`` (same values).
    """
    del gradient_step, params
    leaves = jax.tree.leaves(updates)
    norm_sq = jnp.sum(jnp.asarray([jnp.sum(x**2) for x in leaves])) if leaves else jnp.zeros([])
    should_skip = jnp.logical_not(norm_sq < max_squared_norm)
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


def _never_skip(updates: Updates, gradient_step: Any, params: Params | None) -> tuple[jax.Array, Any]:
    del updates, gradient_step, params
    return jnp.asarray(False), ()


class MultiStepsState(NamedTuple):
    """State of `MultiSteps`.

    Attributes:
      mini_step: micro-batches accumulated since the last emitted update (int32).
      gradient_step: updates emitted so far (int32): the optimizer's step.
      inner_opt_state: the inner optimizer's state, changed only when an update is
        emitted.
      acc_grads: the accumulated gradient (float32 by default).
      skip_state: what the skip function reported for the last micro-batch.
      acc_weight: the total weight accumulated (float32; the number of micro-batches
        when no weights are given). Not in optax.
      acc_slots: the slots of the chain's channel that the inner optimizer reads and
        the blocks before this one publish (``{}`` when there are none, as for a whole
        optimizer), accumulated as ``acc_grads`` is. Not in optax.
    """

    mini_step: jax.Array
    gradient_step: jax.Array
    inner_opt_state: Any
    acc_grads: Any
    skip_state: Any = ()
    acc_weight: Any = None
    acc_slots: Any = None


@pytree_dataclass
class MultiSteps(Wrapper):
    r"""Accumulates gradients over ``k`` micro-batches, then applies ``opt`` once.

    .. math:: \bar g = \frac{\sum_i w_i g_i}{\sum_i w_i} \ \text{(use_grad_mean)}
              \quad\text{or}\quad \sum_i w_i g_i, \qquad w_i = 1 \text{ unless given}

    Each ``update`` takes one micro-batch's gradient; on the ``k``-th it returns the
    inner optimizer's update of the accumulated gradient, on the others zeros. The mean
    is kept incrementally, ``acc += (g - acc) * w / (W + w)``, which with unit weights
    is optax's ``acc + (g - acc) / (n + 1)`` exactly. Pass ``weight=`` to ``update``
    (e.g. the micro-batch's number of tokens) to average variable-size micro-batches
    correctly; the weight is consumed here, not passed to the inner optimizer.

    Beyond optax: the inner optimizer runs only on the emitting micro-step (optax runs
    it at every micro-step and discards the result), so schedules advance once per
    emitted update and `gradtx.hyperparams` reports the emitted step.

    Inside a chain, the slots of the channel (`gradtx.channel`) that ``opt`` reads and
    the blocks before this one publish are accumulated with the updates, the same
    (weighted) mean or sum, and ``opt`` reads the accumulated slots: in
    ``chain(momentum(b1), MultiSteps(scale_by_rms(b2), k))`` the second moment reads
    the mean gradient of the k micro-batches, and with ``k = 1`` the chain is
    ``chain(momentum(b1), scale_by_rms(b2))`` bit for bit.

    Args:
      opt: the inner optimizer.
      every_k_schedule: ``k``, an int >= 1, or a function of the emitted step count
        returning it.
      use_grad_mean: average the micro-batch gradients (True) or sum them.
      should_skip_update_fn: ``fn(updates, gradient_step, params) -> (skip, info)``;
        a skipped micro-batch changes nothing but ``skip_state`` (see
        `skip_not_finite`, `skip_large_updates`).
      accumulator_dtype: dtype of the accumulated gradient (float32).

    Returns:
      A transform whose state is `MultiStepsState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.MultiSteps(gradtx.sgd(1.0), every_k_schedule=2)
      >>> state = opt.init(jnp.zeros(1))
      >>> u, state = opt.update(jnp.asarray([1.0]), state)
      >>> u, state = opt.update(jnp.asarray([3.0]), state)
      >>> u  # -lr * mean(1, 3)
      Array([-2.], dtype=float32)

    References:
      ``optax.MultiSteps`` (same numbers and state fields, plus ``acc_weight``).
    """

    opt: Transform = hyper()
    every_k_schedule: int | Callable[[jax.Array], Any] = hyper()
    use_grad_mean: bool = static(default=True, rule=_checks.flag)
    should_skip_update_fn: Callable[..., Any] | None = static(default=None)
    accumulator_dtype: Any = static(default=jnp.float32, rule=_checks.dtype)

    _inner_field = "opt"
    _inner_state_field = "inner_opt_state"

    def __post_init__(self) -> None:
        k = self.every_k_schedule
        if not callable(k) and not isinstance(k, Tracer):
            if isinstance(k, bool) or not float(k).is_integer() or k < 1:
                raise InputError(
                    "MultiSteps", f"every_k_schedule must be an int >= 1 or a schedule, got {k!r}"
                )
        super().__post_init__()

    @property
    def inner_opt(self) -> Transform:
        """The inner optimizer."""
        return self.opt

    def gradient_transformation(self) -> MultiSteps:
        """This transform (optax's MultiSteps is not one itself; gradtx's is)."""
        return self

    def _k(self, gradient_step: jax.Array) -> Any:
        k = self.every_k_schedule
        return k(gradient_step) if callable(k) else k

    def _skip_fn(self) -> Callable[..., Any]:
        return self.should_skip_update_fn or _never_skip

    def init(self, params: Params) -> MultiStepsState:
        gradient_step = zero_count()
        _, skip_state = self._skip_fn()(_tree.zeros_like(params), gradient_step, params)
        carried = sorted(channel.outside() & channel.reads(self.opt))
        return MultiStepsState(
            mini_step=zero_count(),
            gradient_step=gradient_step,
            inner_opt_state=self.opt.init(params),
            acc_grads=_tree.zeros_like(params, self.accumulator_dtype),
            skip_state=skip_state,
            acc_weight=jnp.zeros([], jnp.float32),
            acc_slots={name: _tree.zeros_like(params, self.accumulator_dtype) for name in carried},
        )

    def _update(self, updates: Updates, state: MultiStepsState, params: Params | None, ctx: Context):
        extra = dict(ctx.extra)
        weight = extra.pop("weight", None)
        skip, skip_state = self._skip_fn()(updates, state.gradient_step, params)
        skip = jnp.asarray(skip)
        if (skip.dtype, skip.shape) != (jnp.bool_, ()):
            raise InputError(
                "MultiSteps",
                "should_skip_update_fn must return a boolean scalar first, got an array of dtype "
                f"{skip.dtype} and shape {skip.shape}.",
            )
        k = self._k(state.gradient_step)
        emit = state.mini_step == k - 1
        acc_slots = {} if state.acc_slots is None else state.acc_slots
        missing = sorted(set(acc_slots) - set(ctx.slots))
        if missing:
            raise InputError(
                "MultiSteps",
                f"its state accumulates the slot(s) {missing} of the chain's channel, which no "
                "block before it publishes here. Use the state the enclosing chain's init returned.",
            )

        def inner(acc: PyTree, slots: dict[str, PyTree]) -> tuple[Updates, OptState]:
            acc = _tree.cast_like(acc, updates)
            inner_ctx = ctx.withholding(
                "MultiSteps does not accumulate (its inner optimizer did not read it when the "
                "chain's init ran)",
                extra=extra,
                kept={n: _tree.cast_like(a, ctx.value(n)) for n, a in slots.items()},
            )
            return self.opt._apply(acc, state.inner_opt_state, params, inner_ctx)

        def step(zeros: Callable[[], Updates]) -> tuple[Updates, MultiStepsState]:
            """The micro-step, ``zeros()`` being the updates of one that does not emit."""

            def accumulate() -> tuple[Updates, MultiStepsState]:
                w = jnp.ones([], jnp.float32) if weight is None else jnp.asarray(weight, jnp.float32)
                total = state.acc_weight + w

                def add(new: PyTree, acc: PyTree) -> PyTree:
                    return jax.tree.map(lambda g, a: self._accumulate(g, a, w, total), new, acc)

                acc = add(updates, state.acc_grads)
                slots = {n: add(ctx.value(n), a) for n, a in acc_slots.items()}

                def apply() -> tuple[Updates, MultiStepsState]:
                    new_updates, inner_state = inner(acc, slots)
                    return new_updates, MultiStepsState(
                        mini_step=zero_count(),
                        gradient_step=safe_increment(state.gradient_step),
                        inner_opt_state=inner_state,
                        acc_grads=_tree.zeros_like(acc),
                        skip_state=skip_state,
                        acc_weight=jnp.zeros([], jnp.float32),
                        acc_slots=_tree.zeros_like(slots),
                    )

                def hold() -> tuple[Updates, MultiStepsState]:
                    return zeros(), MultiStepsState(
                        mini_step=safe_increment(state.mini_step),
                        gradient_step=state.gradient_step,
                        inner_opt_state=state.inner_opt_state,
                        acc_grads=acc,
                        skip_state=skip_state,
                        acc_weight=total,
                        acc_slots=slots,
                    )

                return jax.lax.cond(emit, apply, hold)

            def skipped() -> tuple[Updates, MultiStepsState]:
                return zeros(), state._replace(skip_state=skip_state)

            return jax.lax.cond(skip, skipped, accumulate)

        try:
            # An optimizer's updates have the gradients' structure and dtypes: the inner
            # optimizer is traced once, inside the condition.
            return step(lambda: _tree.zeros_like(updates))
        except TypeError:
            # One that changes them (a foreign transform, say) costs a second trace.
            shapes = jax.eval_shape(lambda: inner(state.acc_grads, acc_slots)[0])
            return step(lambda: jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes))

    def _accumulate(self, g: jax.Array, acc: jax.Array, w: jax.Array, total: jax.Array) -> jax.Array:
        dtype = _tree.compute_dtype(g.dtype, acc.dtype)
        g, a = _tree.to(g, dtype), _tree.to(acc, dtype)
        w, total = _tree.to(w, dtype), _tree.to(total, dtype)
        new = a + (g - a) * w / total if self.use_grad_mean else a + g * w
        return _tree.to(new, acc.dtype)

    def has_updated(self, state: MultiStepsState) -> jax.Array:
        """Whether the last ``update`` emitted the inner optimizer's update."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)


class ApplyEvery(NamedTuple):
    """State of `apply_every`: the micro-step count and the summed gradients."""

    count: jax.Array  # shape=(), dtype=int32: micro-steps since the last emission  # pyright: ignore[reportIncompatibleMethodOverride]
    grad_acc: Updates


@pytree_dataclass
class apply_every(Transform):
    """Sums the updates over ``k`` steps and emits the sum every ``k``-th step (zeros
    on the others).

    Transforms before it in a chain still run at every step; for true gradient
    accumulation use `MultiSteps`.

    Args:
      k: the period, an int >= 1.

    Returns:
      A transform whose state is `ApplyEvery`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.apply_every(2)
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> u
      Array([2.], dtype=float32)

    References:
      ``optax.apply_every`` (same numbers and state).
    """

    k: Any = hyper(default=1)

    def init(self, params: Params) -> ApplyEvery:
        return ApplyEvery(count=zero_count(), grad_acc=_tree.zeros_like(params))

    def _update(self, updates: Updates, state: ApplyEvery, params: Params | None, ctx: Context):
        del params, ctx
        c = state.count % self.k
        keep = c != 0
        grad_acc = jax.tree.map(
            lambda g, a: jnp.where(keep, a, jnp.zeros_like(a)) + g, updates, state.grad_acc
        )
        emit = c == self.k - 1
        out = jax.tree.map(lambda a: jnp.where(emit, a, jnp.zeros_like(a)), grad_acc)
        return out, ApplyEvery(count=safe_increment(state.count) % self.k, grad_acc=grad_acc)


def accumulate(
    fun: Callable[..., Any],
    params: Params,
    batches: PyTree,
    *,
    weights: Any = None,
    accumulator_dtype: Any = jnp.float32,
) -> Any:
    """The (weighted) mean of ``fun(params, batch)`` over micro-batches, in one ``lax.scan``.

    For gradient accumulation inside one jitted step: ``fun`` is typically
    ``jax.value_and_grad(loss)``, ``batches`` the micro-batches stacked on a leading
    axis; only one micro-batch's activations are alive at a time. Sums are kept in
    ``accumulator_dtype`` (float32) and cast back to each output's dtype.

    Args:
      fun: ``fun(params, batch) -> pytree`` (a gradient, ``(loss, grads)``, ...).
      params: passed to every call.
      batches: a pytree whose leaves have a leading micro-batch axis.
      weights: one weight per micro-batch (e.g. its number of tokens), or None for
        equal weights.
      accumulator_dtype: dtype of the running sums.

    Returns:
      ``sum_i w_i fun(params, batch_i) / sum_i w_i``, shaped like ``fun``'s output.

    Example:
      >>> import gradtx, jax, jax.numpy as jnp
      >>> loss = lambda w, b: jnp.mean((b * w - 1.0) ** 2)
      >>> batches = jnp.arange(6.0).reshape(3, 2)
      >>> g = gradtx.accumulate(jax.grad(loss), 0.5, batches)
      >>> bool(jnp.allclose(g, jax.grad(loss)(0.5, jnp.arange(6.0))))
      True

    References:
      The scan-over-micro-batches pattern; `MultiSteps` accumulates across jitted
      steps instead.
    """
    leaves = jax.tree.leaves(batches)
    if not leaves:
        raise InputError("accumulate", "batches has no arrays; stack the micro-batches on a leading axis")
    n = leaves[0].shape[0]
    w = jnp.ones([n], accumulator_dtype) if weights is None else jnp.asarray(weights, accumulator_dtype)
    if w.shape != (n,):
        raise InputError("accumulate", f"expected {n} weights (one per micro-batch), got shape {w.shape}")
    first = jax.eval_shape(fun, params, jax.tree.map(lambda x: x[0], batches))
    sums = jax.tree.map(lambda s: jnp.zeros(s.shape, _tree.compute_dtype(s.dtype, accumulator_dtype)), first)

    def step(total: PyTree, item: tuple[PyTree, jax.Array]) -> tuple[PyTree, None]:
        batch, wi = item
        out = fun(params, batch)
        return jax.tree.map(lambda t, o: t + _tree.to(o, t.dtype) * _tree.to(wi, t.dtype), total, out), None

    sums, _ = jax.lax.scan(step, sums, (batches, w))
    total_weight = jnp.sum(w)
    return jax.tree.map(lambda t, s: _tree.to(t / _tree.to(total_weight, t.dtype), s.dtype), sums, first)
