r"""Differentially private SGD (Abadi et al., 2016): each example's gradient clipped
to a global norm, summed, noised and averaged.

``update`` takes *per-example* gradients: every leaf has a leading batch axis (from
``jax.vmap(jax.grad(loss), in_axes=(None, 0))``); the updates it returns do not.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax

from gradtx import _checks
from gradtx.base import Context, Params, Transform, Updates, identity
from gradtx.blocks.clipping import per_example_global_norm_clip
from gradtx.blocks.momentum import trace
from gradtx.blocks.scaling import ScalarOrSchedule, scale_by_learning_rate
from gradtx.blocks.utility import key_array, static_key
from gradtx.chains import Chain, labelled
from gradtx.data import hyper, pytree_dataclass, static


class DifferentiallyPrivateAggregateState(NamedTuple):
    """State of `differentially_private_aggregate`: the random key."""

    rng_key: jax.Array


@pytree_dataclass
class differentially_private_aggregate(Transform):
    r"""Clips each example's gradient to global norm ``C``, sums, adds Gaussian noise
    of standard deviation ``C * sigma`` and divides by the batch size.

    .. math:: u_t = \frac{1}{B}\Big(\sum_{i=1}^{B} g_i \min\big(1, C / \lVert g_i\rVert\big)
              + \mathcal N(0, C^2\sigma^2)\Big)

    Args:
      l2_norm_clip: ``C``, the largest global norm of one example's gradient.
      noise_multiplier: ``sigma``, the noise's standard deviation relative to ``C``.
      key: a JAX random key or an int seed (0 if neither is given, with optax's warning).
      seed: optax's older name for ``key`` (deprecated there).

    Returns:
      A transform whose state is `DifferentiallyPrivateAggregateState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.contrib.differentially_private_aggregate(1.0, 0.0, key=0)
      >>> per_example = jnp.asarray([[3.0, 4.0], [0.3, 0.4]])
      >>> tx.update(per_example, tx.init(jnp.zeros(2)))[0]  # (0.6 + 0.3, 0.8 + 0.4) / 2
      Array([0.45000002, 0.6       ], dtype=float32)

    References:
      Abadi et al., 2016, Deep learning with differential privacy.
      ``optax.contrib.differentially_private_aggregate`` (the same noise for the same key).
    """

    l2_norm_clip: Any = hyper(rule=_checks.positive)
    noise_multiplier: Any = hyper(rule=_checks.nonnegative)
    key: Any = static(default=None)
    seed: int | None = static(default=None, kw_only=True)
    _check_buffers = False
    _params_like_updates = False  # updates carry a batch axis the parameters lack

    def __post_init__(self) -> None:
        if self.seed is not None:
            warnings.warn('"seed" is deprecated in optax, use "key".', DeprecationWarning, stacklevel=3)
        elif self.key is None:
            warnings.warn("Specifying a key will be required in optax 0.2.7.", stacklevel=3)
        object.__setattr__(self, "key", static_key("differentially_private_aggregate", self.key, self.seed))
        object.__setattr__(self, "seed", None)
        super().__post_init__()

    def init(self, params: Params) -> DifferentiallyPrivateAggregateState:
        del params
        return DifferentiallyPrivateAggregateState(rng_key=key_array(self.key))

    def _update(
        self,
        updates: Updates,
        state: DifferentiallyPrivateAggregateState,
        params: Params | None,
        ctx: Context,
    ):
        del params, ctx
        leaves, treedef = jax.tree.flatten(updates)
        batch = leaves[0].shape[0]
        clipped, _ = per_example_global_norm_clip(leaves, self.l2_norm_clip)
        std = self.l2_norm_clip * self.noise_multiplier
        new_key, *keys = jax.random.split(state.rng_key, len(leaves) + 1)
        noised = [
            (g + std * jax.random.normal(k, g.shape, g.dtype)) / batch
            for g, k in zip(clipped, keys, strict=True)
        ]
        return jax.tree.unflatten(treedef, noised), DifferentiallyPrivateAggregateState(rng_key=new_key)


@_checks.checked(learning_rate=_checks.rate)
def dpsgd(
    learning_rate: ScalarOrSchedule,
    l2_norm_clip: Any,
    noise_multiplier: Any,
    seed: int,
    momentum: Any = None,
    nesterov: bool = False,
) -> Chain:
    r"""DP-SGD: `differentially_private_aggregate`, then heavy-ball momentum (if
    given), then the learning rate.

    Args:
      learning_rate: a number >= 0 or a schedule.
      l2_norm_clip: the largest global norm of one example's gradient.
      noise_multiplier: the noise's standard deviation relative to ``l2_norm_clip``.
      seed: the random seed of the noise.
      momentum: the momentum's decay (None: none).
      nesterov: Nesterov's form of the momentum.

    Returns:
      ``chain(differentially_private_aggregate(...), trace(momentum) or identity(),
      scale_by_learning_rate(learning_rate))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.contrib.dpsgd(0.1, 1.0, 0.0, seed=0)
      >>> opt.update(jnp.asarray([[3.0, 4.0], [0.3, 0.4]]), opt.init(jnp.zeros(2)))[0]
      Array([-0.045, -0.06 ], dtype=float32)

    References:
      Abadi et al., 2016. ``optax.contrib.dpsgd`` (the same noise for the same seed;
      gradtx does not repeat optax's deprecation warning for ``seed``, its own argument).
    """
    return labelled(
        "dpsgd",
        differentially_private_aggregate(l2_norm_clip, noise_multiplier, key=seed),
        identity() if momentum is None else trace(momentum, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


__all__ = ["DifferentiallyPrivateAggregateState", "differentially_private_aggregate", "dpsgd"]
