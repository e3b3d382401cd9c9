r"""Schedule-free optimization (Defazio et al., 2024): no learning-rate schedule to
choose, an average of the iterates to evaluate.

`schedule_free` wraps a base optimizer (SGD: `schedule_free_sgd`; Adam's denominator
without momentum: `schedule_free_adamw`). Three sequences run together: ``z`` takes the
base optimizer's steps, ``x`` is a weighted average of the ``z``'s, and the parameters
the gradient is taken at are ``y = b1 x + (1 - b1) z``. Training passes ``y`` (the
parameters the optimizer updates); evaluation uses ``x``, from
`schedule_free_eval_params`.

Beyond optax: `schedule_free_eval_params` finds the schedule-free state wherever it
sits in the optimizer's state (inside `gradtx.MultiSteps`, a chain, `gradtx.masked`,
...), and the interpolation runs in float32 or wider, so bfloat16 parameters keep
what a float32 ``z`` (``state_dtype=jnp.float32``) holds.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._checks import InputError
from gradtx.base import Context, Params, Transform, Updates, Wrapper, require_params, safe_increment
from gradtx.blocks.adaptive import scale_by_rms
from gradtx.blocks.decay import add_decayed_weights
from gradtx.blocks.scaling import scale_by_learning_rate
from gradtx.chains import chain
from gradtx.contrib._common import lowest_dtype
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.optimizers.classic import sgd
from gradtx.schedules.compose import warmup_constant_schedule


class ScheduleFreeState(NamedTuple):
    """State of `schedule_free`: ``b1``, the sum of the averaging weights, the step
    count (from 1), the largest learning rate so far, the base optimizer's state, the
    base sequence ``z`` and (beyond optax, only when ``state_dtype`` is wider than the
    parameters) the average ``x``."""

    b1: jax.Array  # shape=()
    weight_sum: jax.Array  # shape=()
    step_count: jax.Array  # shape=(), dtype=int32, from 1
    max_lr: jax.Array  # shape=()
    base_optimizer_state: Any
    z: Params
    # gradtx's: the average x itself, kept in state_dtype when the parameters are
    # narrower (bfloat16 y cannot give x back exactly); None otherwise
    x: Params | None = None


@pytree_dataclass
class schedule_free(Wrapper):
    r"""Makes ``base_optimizer`` schedule-free.

    .. math:: z_{t+1} = z_t + \Delta_t, \quad
              c_{t+1} = \frac{\eta_{\max,t}^{p}}{\sum_{i \le t} \eta_{\max,i}^{p}}, \quad
              x_{t+1} = (1 - c_{t+1})\, x_t + c_{t+1} z_{t+1}, \quad
              y_{t+1} = b_1 x_{t+1} + (1 - b_1) z_{t+1}

    where ``Delta_t`` is the base optimizer's update at ``y_t`` and ``p`` is
    ``weight_lr_power``; ``x_t`` is recovered from ``y_t`` and ``z_t``. The update
    returned is ``y_{t+1} - y_t``.

    Args:
      base_optimizer: the optimizer of ``z`` (its learning rate included).
      learning_rate: the same learning rate (a number or a schedule of the step,
        counted from 1), for the averaging weights.
      b1: the interpolation between ``x`` and ``z``, in [0, 1).
      weight_lr_power: the power of the learning rate in the weights.
      state_dtype: dtype of ``z`` (default: the parameters'). Wider than the
        parameters (float32 for bfloat16 ones), gradtx also keeps the average ``x`` in
        it: from bfloat16 ``y`` and ``z``, ``x`` cannot be recomputed exactly, and the
        run stalls at bfloat16's resolution (optax's does).

    Returns:
      A transform whose state is `ScheduleFreeState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.schedule_free(gradtx.sgd(1.0), 1.0, b1=0.5)
      >>> p = jnp.zeros(1)
      >>> u, s = opt.update(jnp.ones(1), opt.init(p), p)
      >>> u, gradtx.contrib.schedule_free_eval_params(s, p + u)  # y = 0.5 x + 0.5 z
      (Array([-1.], dtype=float32), Array([-1.], dtype=float32))

    References:
      Defazio et al., 2024, The road less scheduled. ``optax.contrib.schedule_free``
      (same numbers).
    """

    base_optimizer: Transform = hyper()
    learning_rate: Any = hyper(rule=_checks.rate)
    b1: Any = hyper(default=0.9, rule=_checks.beta)
    weight_lr_power: Any = hyper(default=2.0)
    state_dtype: Any = static(default=None, rule=_checks.dtype)

    _inner_field = "base_optimizer"
    _inner_state_field = "base_optimizer_state"

    def _keeps_x(self, params: Params) -> bool:
        if self.state_dtype is None:
            return False
        bits = jnp.finfo(self.state_dtype).bits
        return any(jnp.finfo(jnp.asarray(p).dtype).bits < bits for p in jax.tree.leaves(params))

    def init(self, params: Params) -> ScheduleFreeState:
        dtype = lowest_dtype(params)
        z = params if self.state_dtype is None else jax.tree.map(lambda p: p.astype(self.state_dtype), params)
        x = jax.tree.map(lambda p: p.astype(self.state_dtype), params) if self._keeps_x(params) else None
        return ScheduleFreeState(
            b1=jnp.asarray(self.b1, dtype=dtype),
            weight_sum=jnp.zeros([], dtype),
            step_count=jnp.ones([], jnp.int32),
            max_lr=jnp.zeros([], dtype),
            base_optimizer_state=self.base_optimizer.init(params),
            z=jax.tree.map(jnp.array, z),
            x=x,
        )

    def _update(self, updates: Updates, state: ScheduleFreeState, params: Params | None, ctx: Context):
        require_params("schedule_free", params, updates)
        b1 = self.b1
        lr = self.learning_rate
        if callable(lr):
            lr = jnp.asarray(lr(state.step_count), dtype=state.max_lr.dtype)
        max_lr = jnp.maximum(state.max_lr, lr).astype(state.max_lr.dtype)
        weight = max_lr**self.weight_lr_power
        total = state.weight_sum + weight
        ck = jnp.where(
            jnp.isnan(weight) | jnp.isnan(total),
            jnp.full(weight.shape, jnp.nan, weight.dtype),
            jnp.nan_to_num(weight / total, nan=0.0, posinf=jnp.inf),
        )
        base_updates, base_state = self.base_optimizer._apply(
            updates, state.base_optimizer_state, params, ctx.carried(lambda tree: tree)
        )

        def step(y: jax.Array, z: jax.Array, u: jax.Array, kept: Any) -> tuple[Any, Any, Any]:
            dtype = _tree.compute_dtype(y.dtype, z.dtype)
            y32, z32 = _tree.to(y, dtype), _tree.to(z, dtype)
            new_z = (_tree.to(z, dtype) + _tree.to(u, dtype)).astype(z.dtype)
            z_next = _tree.to(new_z, dtype)
            c = _tree.to(ck, dtype)
            prev_x = (y32 - (1.0 - b1) * z32) / b1 if kept is None else _tree.to(kept, dtype)
            x = (1.0 - c) * prev_x + c * z_next
            new_y = b1 * x + (1.0 - b1) * z_next
            return (new_y - y32).astype(y.dtype), new_z, None if kept is None else x.astype(kept.dtype)

        leaves, treedef = jax.tree.flatten(params)
        kept = [None] * len(leaves) if state.x is None else treedef.flatten_up_to(state.x)
        results = [
            step(y, z, u, k)
            for y, z, u, k in zip(
                leaves, treedef.flatten_up_to(state.z), treedef.flatten_up_to(base_updates), kept, strict=True
            )
        ]
        out = treedef.unflatten([r[0] for r in results])
        z = treedef.unflatten([r[1] for r in results])
        x = None if state.x is None else treedef.unflatten([r[2] for r in results])
        return out, ScheduleFreeState(
            b1=state.b1,
            weight_sum=total.astype(state.weight_sum.dtype),
            step_count=safe_increment(state.step_count),
            max_lr=max_lr,
            base_optimizer_state=base_state,
            z=z,
            x=x,
        )


def _find_state(state: Any) -> ScheduleFreeState | None:
    found = [
        s
        for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, ScheduleFreeState))
        if isinstance(s, ScheduleFreeState)
    ]
    return found[0] if len(found) == 1 else None


def schedule_free_eval_params(state: Any, params: Params) -> Params:
    r"""The parameters to evaluate a schedule-free model at: the average ``x``.

    .. math:: x_t = (y_t - (1 - b_1) z_t) / b_1

    Args:
      state: the optimizer's state: a `ScheduleFreeState`, or any state holding exactly
        one (inside `gradtx.MultiSteps`, a chain, ...; beyond optax, which needs the
        `ScheduleFreeState` itself).
      params: the training parameters ``y``.

    Returns:
      A tree like ``params``.

    Raises:
      InputError: (a ``ValueError``) when ``state`` holds no schedule-free state or
        several.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.MultiSteps(gradtx.contrib.schedule_free_sgd(1.0, b1=0.5), 2)
      >>> p = jnp.zeros(1)
      >>> gradtx.contrib.schedule_free_eval_params(opt.init(p), p)
      Array([0.], dtype=float32)

    References:
      Defazio et al., 2024. ``optax.contrib.schedule_free_eval_params`` (same numbers).
    """
    found = state if isinstance(state, ScheduleFreeState) else _find_state(state)
    if found is None:
        raise InputError(
            "schedule_free_eval_params",
            "the state holds no ScheduleFreeState (or several): pass the state of a "
            "schedule_free optimizer (it may sit inside MultiSteps or a chain).",
        )
    if found.x is not None:  # kept exactly (bfloat16 parameters, float32 state)
        return jax.tree.map(lambda y, x: x.astype(y.dtype), params, found.x)
    b1, z = found.b1, found.z

    def average(y: jax.Array, zi: jax.Array) -> jax.Array:
        dtype = _tree.compute_dtype(y.dtype, zi.dtype)
        b = _tree.to(b1, dtype)
        return ((_tree.to(y, dtype) - (1.0 - b) * _tree.to(zi, dtype)) / b).astype(y.dtype)

    return jax.tree.map(average, params, z)


def _warmed(learning_rate: Any, warmup_steps: int | None) -> Any:
    if warmup_steps is None:
        return learning_rate
    return warmup_constant_schedule(init_value=0, peak_value=learning_rate, warmup_steps=warmup_steps)


@_checks.checked(learning_rate=_checks.rate, b1=_checks.beta)
def schedule_free_sgd(
    learning_rate: Any = 1.0,
    warmup_steps: int | None = None,
    b1: Any = 0.9,
    weight_decay: Any = None,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> schedule_free:
    r"""Schedule-free SGD: `schedule_free` around ``sgd(learning_rate)``.

    Args:
      learning_rate: the learning rate (a number).
      warmup_steps: linear warm-up from 0 over this many steps (None: none).
      b1: the interpolation between ``x`` and ``z``, in [0, 1).
      weight_decay: weight decay added to the gradient (None: none).
      weight_lr_power: the power of the learning rate in the averaging weights.
      state_dtype: dtype of ``z``.

    Returns:
      ``schedule_free(chain(add_decayed_weights(wd), sgd(lr)), lr, b1, ...)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.schedule_free_sgd(1.0, b1=0.5)
      >>> p = jnp.zeros(1)
      >>> opt.update(jnp.ones(1), opt.init(p), p)[0]
      Array([-1.], dtype=float32)

    References:
      Defazio et al., 2024. ``optax.contrib.schedule_free_sgd`` (same numbers).
    """
    rate = _warmed(learning_rate, warmup_steps)
    optimizer: Transform = sgd(rate)
    if weight_decay is not None:
        optimizer = chain(add_decayed_weights(weight_decay), optimizer)
    return schedule_free(optimizer, rate, b1, weight_lr_power, state_dtype)


@_checks.checked(**_checks.ADAM_FAMILY, weight_decay=_checks.nonnegative)
def schedule_free_adamw(
    learning_rate: Any = 0.0025,
    warmup_steps: int | None = None,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> schedule_free:
    r"""Schedule-free AdamW: `schedule_free` around Adam's denominator (no first
    moment: the interpolation is the momentum), weight decay and the learning rate.

    .. math:: z_{t+1} = z_t - \eta_t\,\big(g_t / (\sqrt{\hat\nu_t} + \epsilon) + \lambda y_t\big)

    Args:
      learning_rate: the learning rate (a number).
      warmup_steps: linear warm-up from 0 over this many steps (None: none).
      b1: the interpolation between ``x`` and ``z``, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      weight_decay: decoupled weight decay (at ``y``), >= 0.
      weight_lr_power: the power of the learning rate in the averaging weights.
      state_dtype: dtype of ``z``.

    Returns:
      ``schedule_free(chain(scale_by_rms(b2, eps, eps_in_sqrt=False,
      bias_correction=True), add_decayed_weights(wd), scale_by_learning_rate(lr)), ...)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.schedule_free_adamw(1.0, b1=0.5, eps=0.0)
      >>> p = jnp.zeros(1)
      >>> opt.update(jnp.full(1, 3.0), opt.init(p), p)[0].round(4)  # z: -sign(g); y = 0.5 x + 0.5 z
      Array([-1.], dtype=float32)

    References:
      Defazio et al., 2024. ``optax.contrib.schedule_free_adamw`` (same numbers).
    """
    rate = _warmed(learning_rate, warmup_steps)
    optimizer = chain(
        scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(rate),
    )
    return schedule_free(optimizer, rate, b1, weight_lr_power, state_dtype)


__all__ = [
    "ScheduleFreeState",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
]
