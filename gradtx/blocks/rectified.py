r"""RAdam (Liu et al., 2020): Adam's RMS scaling, `rectified`: used times :math:`r_t`
only once the variance of the adaptive rate is tractable
(:math:`\rho_t > 4`, by default 5), and plain momentum SGD before.

`scale_by_rectified_rms` is ``rectified(scale_by_rms(b2, ...))``; `scale_by_radam` adds
the momentum in front.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._checks import InputError
from gradtx.base import Context, Params, Updates, Wrapper, safe_increment
from gradtx.blocks.adaptive import scale_by_rms
from gradtx.blocks.momentum import momentum
from gradtx.chains import Chain, labelled
from gradtx.data import hyper, pytree_dataclass


@pytree_dataclass
class rectified(Wrapper):
    r"""RAdam's rectification around an adaptive scaling: ``inner`` of the input times
    :math:`r_t` once the approximated length of the moving average :math:`\rho_t`
    reaches ``threshold``; before that the input passes unchanged.

    .. math:: \rho_\infty = \frac{2}{1 - b_2} - 1, \quad
              \rho_t = \rho_\infty - \frac{2 t b_2^t}{1 - b_2^t}, \quad
              r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
              {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}

    .. math:: u_t = \text{inner}(r_t\, x_t) \ \text{if}\ \rho_t \ge \text{threshold},
              \quad\text{else}\ u_t = x_t

    A selection, not a new statistic: ``inner`` runs at every step, so its state (the
    second moment) advances on both branches, and one of the two outputs is chosen.
    ``inner`` reads the chain's slots as it would outside (`gradtx.channel`): with
    ``inner = scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True)`` after a
    `gradtx.momentum`, this is RAdam (`scale_by_rectified_rms`). :math:`b_2` is the
    ``decay`` of ``inner``, read from it (one number, not two that could disagree).

    Args:
      inner: the adaptive scaling to rectify: a `gradtx.scale_by_rms`.
      threshold: the smallest :math:`\rho_t` for which ``inner`` is used (5); at least
        4, since below it :math:`r_t` is the root of a negative number (NaN).

    Returns:
      A transform whose state is ``inner``'s (`gradtx.ScaleByRmsState`): its step count
      is the one :math:`\rho_t` needs.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.rectified(gradtx.scale_by_rms(0.999))
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]  # rho_1 = 1 < 5: unchanged
      Array([3., 3.], dtype=float32)

    References:
      Liu et al., 2020, RAdam (algorithm 2).
    """

    inner: scale_by_rms = hyper()
    threshold: Any = hyper(default=5.0)

    def __post_init__(self) -> None:
        if not isinstance(self.inner, scale_by_rms):
            raise TypeError(
                f"rectified: inner must be a gradtx.scale_by_rms (its decay sets rho), got {self.inner!r}"
            )
        if isinstance(self.threshold, (int, float)) and not self.threshold >= 4:
            raise InputError(
                "rectified",
                f"threshold must be >= 4, got {self.threshold!r}: below 4 the rectification is the root of "
                "a negative number and the updates are NaN.",
            )
        super().__post_init__()

    _inner_state_field = None  # the state is the inner scale_by_rms's

    def init(self, params: Params) -> Any:
        return self.inner.init(params)

    def _update(self, updates: Updates, state: Any, params: Params | None, ctx: Context):
        b2 = self.inner.at("decay", state.count)
        one_minus = self.inner.one_minus_at("decay", state.count)
        count = safe_increment(state.count)
        # As optax: rho_inf from the Python number where b2 is one (in float64), the rest
        # in float32.
        rho_inf = 2.0 / one_minus - 1.0
        b2t = _tree.decay_power(b2, count)
        t = count.astype(b2t.dtype)
        rho = rho_inf - 2 * t * b2t / (1 - b2t)
        r = jnp.sqrt((rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho))
        use_rate = rho >= self.at("threshold", state.count)
        scaled_input = jax.tree.map(lambda x: _tree.to(r, x.dtype) * x, updates)
        scaled, state = self.inner._apply(scaled_input, state, params, ctx.inside())
        return jax.tree.map(lambda a, x: jnp.where(use_rate, a, x), scaled, updates), state


@_checks.checked(b2=_checks.beta, eps=_checks.nonnegative, eps_root=_checks.nonnegative)
def scale_by_rectified_rms(
    b2: Any = 0.999, eps: Any = 1e-8, eps_root: Any = 0.0, threshold: Any = 5.0
) -> rectified:
    r"""RAdam's rectified RMS scaling: Adam's division by :math:`\sqrt{\hat v_t}`, times
    the rectification :math:`r_t`, once :math:`\rho_t` reaches ``threshold``; before
    that the input passes unchanged (SGD with momentum).

    .. math:: u_t = r_t\, x_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)
              \ \text{if}\ \rho_t \ge \text{threshold}, \quad\text{else}\ u_t = x_t

    with :math:`\rho_t, r_t` as in `rectified`.

    Args:
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      threshold: the smallest :math:`\rho_t` for which the adaptive rate is used (5);
        at least 4.

    Returns:
      ``rectified(scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True,
      eps_root=eps_root), threshold)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_rectified_rms()
      >>> tx.update(jnp.full(2, 3.0), tx.init(jnp.zeros(2)))[0]  # rho_1 = 1 < 5: unchanged
      Array([3., 3.], dtype=float32)

    References:
      Liu et al., 2020, RAdam (algorithm 2). The second half of ``optax.scale_by_radam``.
    """
    rms = scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True, eps_root=eps_root)
    return rectified(rms, threshold)


@_checks.checked(
    b1=_checks.beta,
    b2=_checks.beta,
    eps=_checks.nonnegative,
    eps_root=_checks.nonnegative,
    nesterov=_checks.flag,
)
def scale_by_radam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    threshold: Any = 5.0,
    *,
    nesterov: bool = False,
) -> Chain:
    r"""RAdam's scaling: `momentum`, then `scale_by_rectified_rms`.

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to the denominator, outside the root.
      eps_root: added inside the root.
      threshold: the smallest :math:`\rho_t` for which the adaptive rate is used.
      nesterov: use NAdam's look-ahead first moment.

    Returns:
      ``chain(momentum(b1, nesterov=...), scale_by_rectified_rms(b2, eps, eps_root, threshold))``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.scale_by_radam(b1=0.5)
      >>> tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))[0]  # rho_1 = 1 < 5: m_hat = g
      Array([3., 4.], dtype=float32)

    References:
      Liu et al., 2020. ``optax.scale_by_radam`` (same numbers).
    """
    return labelled(
        "scale_by_radam",
        momentum(b1, nesterov=nesterov),
        scale_by_rectified_rms(b2, eps, eps_root, threshold),
        readout_names={"scale_by_rms.decay": "b2"},
    )
