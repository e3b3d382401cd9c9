r"""optax.contrib's wrappers and small blocks: SAM (and its `normalize`), reduce the
learning rate on a plateau, and optimizers of complex parameters as pairs of reals.

The wrappers carry the chain's slots (`gradtx.channel`) to the optimizers inside them,
transformed as they transform the updates; where the updates inside are not the
chain's gradient (SAM's adversarial steps in opaque mode), they withhold them, and a
block inside that reads one raises naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._checks import InputError
from gradtx.base import (
    Context,
    EmptyState,
    Params,
    Stateless,
    Transform,
    Updates,
    Wrapper,
    apply_updates,
    safe_increment,
)
from gradtx.contrib._common import highest_dtype, lowest_dtype
from gradtx.data import hyper, pytree_dataclass, static

NormalizeState = EmptyState
"""State of `normalize`: empty (optax's alias of ``EmptyState``)."""


@pytree_dataclass
class normalize(Stateless):
    r"""Divides the updates by their global L2 norm.

    .. math:: u_t = g_t / \lVert g_t\rVert_2

    SAM's adversarial direction: ``sam(opt, chain(normalize(), sgd(rho)))`` steps a
    distance ``rho`` uphill.

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.normalize()
      >>> tx.update(jnp.asarray([3.0, 4.0]), tx.init(jnp.zeros(2)))[0]
      Array([0.6, 0.8], dtype=float32)

    References:
      Foret et al., 2021, Sharpness-aware minimization. ``optax.contrib.normalize``
      (same numbers).
    """

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del params, count
        norm = _tree.global_norm(updates)
        return jax.tree.map(lambda g: g / norm.astype(g.dtype), updates)


# --- SAM -----------------------------------------------------------------------------


class SAMState(NamedTuple):
    """State of `sam`: the steps since the last outer step, both optimizers' states and
    the parameters of the last outer step (``cache``; None in opaque mode)."""

    steps_since_sync: jax.Array  # shape=(), dtype=int32
    opt_state: Any
    adv_state: Any
    cache: Params | None


_OPAQUE = (
    "sam(opaque_mode=True) hands its optimizers gradients at the adversarial points it "
    "computes with grad_fn, not the chain's gradient"
)


@pytree_dataclass
class sam(Wrapper):
    r"""Sharpness-aware minimization: step uphill with ``adv_optimizer``, take the
    gradient there, and step the original parameters with ``optimizer``.

    Transparent mode (default): each call is one step of a cycle of ``sync_period``;
    the first ``sync_period - 1`` calls return adversarial updates (uphill: the
    negated ``adv_optimizer`` updates), the last returns the outer update from the
    cached parameters. Opaque mode: one call runs the whole cycle, calling
    ``grad_fn(params, i)`` for the gradients at the adversarial points (pass it as
    ``update(..., grad_fn=...)``).

    Args:
      optimizer: the outer optimizer.
      adv_optimizer: the adversarial optimizer (``chain(normalize(), sgd(rho))`` is SAM).
      sync_period: the steps of one cycle (>= 1).
      reset_state: reset the adversarial optimizer's state after each cycle.
      opaque_mode: run the cycle inside one call (needs ``grad_fn``).
      batch_axis_name: average the adversarial gradients over this mapped axis.

    Returns:
      A transform whose state is `SAMState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> adv = gradtx.chain(gradtx.contrib.normalize(), gradtx.sgd(0.5))
      >>> opt = gradtx.contrib.sam(gradtx.sgd(0.1), adv)
      >>> p = jnp.zeros(2)
      >>> u, s = opt.update(jnp.asarray([3.0, 4.0]), opt.init(p), p)
      >>> u  # uphill by 0.5 along the normalised gradient
      Array([0.3, 0.4], dtype=float32)

    References:
      Foret et al., 2021, Sharpness-aware minimization for efficiently improving
      generalization. ``optax.contrib.sam`` (same numbers).
    """

    optimizer: Transform = hyper()
    adv_optimizer: Transform = hyper()
    sync_period: int = static(default=2, rule=_checks.positive_int)
    reset_state: bool = static(default=True, rule=_checks.flag)
    opaque_mode: bool = static(default=False, rule=_checks.flag)
    batch_axis_name: str | None = static(default=None)

    _inner_field = "optimizer"
    _inner_state_field = "opt_state"
    _params_like_updates = True

    def __post_init__(self) -> None:
        super().__post_init__()
        from gradtx.base import _as_transform

        object.__setattr__(self, "adv_optimizer", _as_transform(self.adv_optimizer, "sam"))

    def init(self, params: Params) -> SAMState:
        return SAMState(
            steps_since_sync=jnp.zeros([], jnp.int32),
            opt_state=self.optimizer.init(params),
            adv_state=self.adv_optimizer.init(params),
            cache=None if self.opaque_mode else params,
        )

    def _update(self, updates: Updates, state: SAMState, params: Params | None, ctx: Context):
        if params is None:
            raise InputError("sam", "update needs the parameters: call update(updates, state, params).")
        if self.opaque_mode:
            return self._opaque(updates, state, params, ctx)
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == self.sync_period - 1
        adv_updates, adv_state = self.adv_optimizer._apply(
            updates, state.adv_state, params, ctx.carried(lambda tree: tree)
        )
        adv_updates = jax.tree.map(lambda x: -x, adv_updates)
        opt_updates, opt_state = self.optimizer._apply(
            updates, state.opt_state, state.cache, ctx.carried(lambda tree: tree)
        )
        opt_updates = jax.tree.map(lambda c, p, u: c - p + u, state.cache, params, opt_updates)

        def pick(cond: jax.Array, if_true: Any, if_false: Any) -> Any:
            return jax.tree.map(lambda a, b: jnp.where(cond, a, b), if_true, if_false)

        cache = pick(first, params, state.cache)
        out = pick(last, opt_updates, adv_updates)
        kept = self.adv_optimizer.init(params) if self.reset_state else state.adv_state
        adv_state = pick(last, kept, adv_state)
        opt_state = pick(last, opt_state, state.opt_state)
        steps = (state.steps_since_sync + 1) % self.sync_period
        return out, SAMState(steps, opt_state, adv_state, cache)

    def _opaque(self, updates: Updates, state: SAMState, params: Params, ctx: Context):
        grad_fn: Callable[[Params, int], Updates] | None = ctx.extra.get("grad_fn")
        if grad_fn is None:
            raise InputError("sam", "opaque_mode=True needs grad_fn: call update(..., grad_fn=f).")
        inner = ctx.withholding(_OPAQUE, extra={})
        adv_params, adv_updates, adv_state = params, updates, state.adv_state
        for i in range(self.sync_period - 1):
            adv_updates, adv_state = self.adv_optimizer._apply(adv_updates, adv_state, adv_params, inner)
            adv_updates = jax.tree.map(lambda x: -x, adv_updates)
            adv_params = apply_updates(adv_params, adv_updates)
            adv_updates = grad_fn(adv_params, i)
            if self.batch_axis_name is not None:
                adv_updates = jax.lax.pmean(adv_updates, axis_name=self.batch_axis_name)
        if self.reset_state:
            adv_state = self.adv_optimizer.init(params)
        out, opt_state = self.optimizer._apply(adv_updates, state.opt_state, params, inner)
        return out, SAMState(jnp.zeros([], jnp.int32), opt_state, adv_state, None)


# --- reduce_on_plateau ---------------------------------------------------------------


class ReduceLROnPlateauState(NamedTuple):
    """State of `reduce_on_plateau`: the current scale, the best (averaged) value, the
    evaluations without improvement, the cooldown left, the values accumulated and
    their average."""

    scale: jax.Array  # shape=()
    best_value: jax.Array  # shape=()
    plateau_count: jax.Array  # shape=(), dtype=int32
    cooldown_count: jax.Array  # shape=(), dtype=int32
    count: jax.Array  # shape=(), dtype=int32  # pyright: ignore[reportIncompatibleMethodOverride]
    avg_value: jax.Array  # shape=()


@pytree_dataclass
class reduce_on_plateau(Transform):
    r"""Multiplies the updates by a scale that drops by ``factor`` when the loss stops
    improving: ``torch.optim.lr_scheduler.ReduceLROnPlateau`` as a transform.

    Each ``update(..., value=loss)`` adds ``value`` to an average over
    ``accumulation_size`` calls; then the average improves on the best if it is below
    ``(1 - rtol) * best - atol``. After ``patience`` averages without improvement the
    scale is multiplied by ``factor`` (not below ``min_scale``) and ``cooldown``
    averages are skipped.

    Args:
      factor: the multiplier of the scale, in (0, 1).
      patience: averages without improvement before a reduction.
      rtol: relative improvement that counts, in [0, 1].
      atol: absolute improvement that counts, >= 0 (rtol or atol must be > 0).
      cooldown: averages ignored after a reduction.
      accumulation_size: values averaged before each comparison.
      min_scale: the smallest scale.

    Returns:
      A transform whose state is `ReduceLROnPlateauState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.reduce_on_plateau(factor=0.5, patience=1)
      >>> s = tx.init(jnp.zeros(1))
      >>> for loss in (1.0, 1.0):
      ...     u, s = tx.update(jnp.ones(1), s, value=loss)
      >>> u  # no improvement on the second call: halved
      Array([0.5], dtype=float32)

    References:
      ``optax.contrib.reduce_on_plateau`` (same numbers); PyTorch's ``ReduceLROnPlateau``.
    """

    factor: float = static(default=0.1)
    patience: Any = static(default=10)
    rtol: float = static(default=1e-4)
    atol: float = static(default=0.0)
    cooldown: Any = static(default=0)
    accumulation_size: Any = static(default=1)
    min_scale: Any = static(default=0.0)
    _check_buffers = False

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = "reduce_on_plateau"
        _checks.require(owner, "factor", self.factor, 0.0 < self.factor < 1.0, "must be in (0, 1)")
        _checks.require(owner, "rtol", self.rtol, 0.0 <= self.rtol <= 1.0, "must be in [0, 1]")
        _checks.require(owner, "atol", self.atol, self.atol >= 0.0, "must be >= 0")
        if self.rtol == 0.0 and self.atol == 0.0:
            raise InputError(owner, "rtol or atol must be > 0, got both 0")

    def init(self, params: Params) -> ReduceLROnPlateauState:
        low = lowest_dtype(params)
        high = highest_dtype(params)
        return ReduceLROnPlateauState(
            scale=jnp.asarray(1.0, low),
            best_value=jnp.asarray(float("inf"), high),
            plateau_count=jnp.asarray(0, jnp.int32),
            cooldown_count=jnp.asarray(0, jnp.int32),
            count=jnp.asarray(0, jnp.int32),
            avg_value=jnp.asarray(0.0, high),
        )

    def _new_scale(self, state: ReduceLROnPlateauState) -> ReduceLROnPlateauState:
        avg = state.avg_value
        improved = avg < (1 - self.rtol) * state.best_value - self.atol
        best = jnp.where(improved, avg.astype(state.best_value.dtype), state.best_value)
        plateau = jnp.where(improved, 0, safe_increment(state.plateau_count))
        cooling = state.cooldown_count > 0
        patience_hit = plateau == self.patience
        new_plateau = jnp.where(cooling | patience_hit, 0, plateau).astype(jnp.int32)
        reduced = jnp.maximum(jnp.where(patience_hit, state.scale * self.factor, state.scale), self.min_scale)
        new_scale = jnp.where(cooling, state.scale, reduced.astype(state.scale.dtype))
        new_cooldown = jnp.where(
            cooling, state.cooldown_count - 1, jnp.where(patience_hit, self.cooldown, 0)
        ).astype(jnp.int32)
        return ReduceLROnPlateauState(
            scale=new_scale,
            best_value=best.astype(state.best_value.dtype),
            plateau_count=new_plateau,
            cooldown_count=new_cooldown,
            count=jnp.asarray(0, jnp.int32),
            avg_value=jnp.asarray(0.0, avg.dtype),
        )

    def _update(self, updates: Updates, state: ReduceLROnPlateauState, params: Params | None, ctx: Context):
        del params
        if "value" not in ctx.extra:
            raise InputError(
                "reduce_on_plateau", "update needs the loss: call update(updates, state, params, value=loss)."
            )
        value = jnp.asarray(ctx.extra["value"])
        count = safe_increment(state.count)
        dtype = state.avg_value.dtype
        avg = (state.count.astype(dtype) * state.avg_value + value.astype(dtype)) / count.astype(dtype)
        state = state._replace(avg_value=avg.astype(state.avg_value.dtype), count=count)
        reduced = self._new_scale(state)
        done = count == self.accumulation_size
        state = jax.tree.map(lambda a, b: jnp.where(done, a, b), reduced, state)
        out = jax.tree.map(lambda g: (state.scale * g).astype(g.dtype), updates)
        return out, state


# --- complex parameters as pairs of reals --------------------------------------------


class SplitRealAndImaginaryArrays(NamedTuple):
    """A complex array as its real and imaginary parts (what the inner optimizer of
    `split_real_and_imaginary` sees)."""

    real: Any
    imaginary: Any


class SplitRealAndImaginaryState(NamedTuple):
    """State of `split_real_and_imaginary`: the inner optimizer's state."""

    inner_state: Any


def _to_pair(x: Any) -> Any:
    return SplitRealAndImaginaryArrays(x.real, x.imag) if jnp.iscomplexobj(x) else x


def _split(tree: Any) -> Any:
    return jax.tree.map(_to_pair, tree)


def _join(tree: Any) -> Any:
    def back(x: Any) -> Any:
        if isinstance(x, SplitRealAndImaginaryArrays):
            return jax.lax.complex(x.real, x.imaginary)
        return x

    return jax.tree.map(back, tree, is_leaf=lambda x: isinstance(x, SplitRealAndImaginaryArrays))


@pytree_dataclass
class split_real_and_imaginary(Wrapper):
    r"""Runs ``inner`` on the real and imaginary parts of complex parameters as two
    independent real parameters, then joins its updates back.

    So a second moment of a complex parameter is kept per part
    (``Re(g)^2`` and ``Im(g)^2``), not of ``|g|^2`` as optax's optimizers do directly:
    the convention of ``torch.view_as_real`` (see `gradtx.torch`). The chain's slots
    are split the same way for the blocks inside.

    Args:
      inner: the optimizer of the real pairs.

    Returns:
      A transform whose state is `SplitRealAndImaginaryState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.split_real_and_imaginary(gradtx.sign_sgd(1.0))
      >>> p = jnp.zeros(1, jnp.complex64)
      >>> opt.update(jnp.asarray([3.0 - 0.5j]), opt.init(p), p)[0]
      Array([-1.+1.j], dtype=complex64)

    References:
      ``optax.contrib.split_real_and_imaginary`` (same numbers).
    """

    inner: Transform = hyper()

    def init(self, params: Params) -> SplitRealAndImaginaryState:
        return SplitRealAndImaginaryState(self.inner.init(_split(params)))

    def _update(
        self, updates: Updates, state: SplitRealAndImaginaryState, params: Params | None, ctx: Context
    ):
        out, inner_state = self.inner._apply(
            _split(updates), state.inner_state, _split(params), ctx.carried(_split)
        )
        return _join(out), SplitRealAndImaginaryState(inner_state)


__all__ = [
    "NormalizeState",
    "ReduceLROnPlateauState",
    "SAMState",
    "SplitRealAndImaginaryArrays",
    "SplitRealAndImaginaryState",
    "normalize",
    "reduce_on_plateau",
    "sam",
    "split_real_and_imaginary",
]
