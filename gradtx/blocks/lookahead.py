"""Lookahead: a fast optimizer explores, slow weights follow every ``sync_period`` steps."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._checks import InputError
from gradtx.base import Context, Params, Transform, Wrapper, zero_count
from gradtx.data import hyper, pytree_dataclass, static


class LookaheadState(NamedTuple):
    """State of `lookahead`: the fast optimizer's state and the steps since the last sync."""

    fast_state: Any
    steps_since_sync: jax.Array  # shape=(), dtype=int32


class LookaheadParams(NamedTuple):
    """The fast and slow parameters `lookahead` updates together."""

    fast: Params
    slow: Params

    @classmethod
    def init_synced(cls, params: Params) -> LookaheadParams:
        """Both copies equal to ``params``."""
        return cls(slow=params, fast=params)


def _fast(tree: Any) -> Any:
    return tree.fast if isinstance(tree, LookaheadParams) else tree


@pytree_dataclass
class lookahead(Wrapper):
    r"""Lookahead: ``k`` fast steps, then the slow weights move toward the fast ones.

    .. math:: \phi \leftarrow \phi + \alpha(\theta_k - \phi), \qquad \theta \leftarrow \phi

    every ``sync_period`` steps, with ``theta`` the fast and ``phi`` the slow weights.
    ``update`` takes the gradient at the fast weights and the parameters as
    `LookaheadParams` (fast, slow), and returns updates as `LookaheadParams`; evaluate
    the model with the slow weights.

    Args:
      fast_optimizer: the inner optimizer (of the fast weights).
      sync_period: ``k``, the number of fast steps between syncs (>= 1).
      slow_step_size: ``alpha``, in [0, 1].
      reset_state: reset the fast optimizer's state at each sync.

    Returns:
      A transform whose state is `LookaheadState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.lookahead(gradtx.sgd(0.1), sync_period=2, slow_step_size=0.5)
      >>> params = gradtx.LookaheadParams.init_synced(jnp.zeros(1))
      >>> state = opt.init(params)
      >>> for _ in range(2):
      ...     u, state = opt.update(jnp.ones(1), state, params)
      ...     params = gradtx.apply_updates(params, u)
      >>> params.slow  # half way from 0 to the fast weights' -0.2
      Array([-0.1], dtype=float32)

    References:
      Zhang et al., 2019, "Lookahead optimizer: k steps forward, 1 step back".
      ``optax.lookahead`` (same numbers and state).
    """

    fast_optimizer: Transform = hyper()
    sync_period: int = static(rule=_checks.positive_int)
    slow_step_size: Any = hyper(complement=True)
    reset_state: bool = static(default=False, rule=_checks.flag)

    _inner_field = "fast_optimizer"
    _inner_state_field = "fast_state"
    _params_like_updates = False  # LookaheadParams(fast, slow)

    def init(self, params: Any) -> LookaheadState:
        fast = params.fast if isinstance(params, LookaheadParams) else params
        return LookaheadState(fast_state=self.fast_optimizer.init(fast), steps_since_sync=zero_count())

    def _update(self, updates: Any, state: LookaheadState, params: Any, ctx: Context):
        if not isinstance(params, LookaheadParams):
            raise InputError(
                "lookahead",
                "update needs the parameters as gradtx.LookaheadParams(fast, slow); start from "
                "LookaheadParams.init_synced(params).",
            )
        # The gradient is the fast weights' (optax passes it as it is); accept a
        # LookaheadParams too and take its fast part.
        gradient = _fast(updates)
        fast_updates, fast_state = self.fast_optimizer._apply(
            gradient, state.fast_state, params.fast, ctx.carried(_fast)
        )
        sync = state.steps_since_sync == self.sync_period - 1
        alpha, one_minus_alpha = self.slow_step_size, self.one_minus("slow_step_size")
        difference = jax.tree.map(lambda f, u, s: f + u - s, params.fast, fast_updates, params.slow)
        slow = jax.tree.map(lambda d: jnp.where(sync, alpha * d, jnp.zeros_like(d)), difference)
        fast = jax.tree.map(
            lambda u, d: jnp.where(sync, u - one_minus_alpha * d, u), fast_updates, difference
        )
        if self.reset_state:
            initial = self.fast_optimizer.init(params.fast)
            fast_state = jax.tree.map(
                lambda current, init: jnp.where(sync, init, current), fast_state, initial
            )
        steps = (state.steps_since_sync + 1) % self.sync_period
        return LookaheadParams(fast=fast, slow=slow), LookaheadState(fast_state, steps)
