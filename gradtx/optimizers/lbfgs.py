r"""L-BFGS: the two-loop preconditioner, a sign flip (or the learning rate), then a line
search, as one `chain`."""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx.blocks.lbfgs import scale_by_lbfgs
from gradtx.blocks.linesearch import scale_by_zoom_linesearch
from gradtx.blocks.scaling import ScalarOrSchedule, scale, scale_by_learning_rate
from gradtx.chains import Chain, labelled

_DEFAULT_LINESEARCH = scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one")


@_checks.checked(
    learning_rate=_checks.rate, memory_size=_checks.positive_count, scale_init_precond=_checks.flag
)
def lbfgs(
    learning_rate: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: Any = _DEFAULT_LINESEARCH,
) -> Chain:
    r"""L-BFGS: a quasi-Newton direction from the last ``memory_size`` steps, with its
    step size found by a line search.

    .. math:: u_k = -H_k g_k, \qquad W_{k+1} = W_k + \eta_k u_k

    where :math:`H_k` is `scale_by_lbfgs`'s inverse-Hessian approximation and
    :math:`\eta_k` satisfies the strong Wolfe conditions (`scale_by_zoom_linesearch`).
    ``update`` needs ``value=``, ``grad=`` and ``value_fn=``; in a loop, get the value and
    gradient with `value_and_grad_from_state`, which reuses those the line search
    computed::

        opt = gradtx.lbfgs()
        value_and_grad = gradtx.value_and_grad_from_state(f)
        state = opt.init(w)
        for _ in range(n):
            value, grad = value_and_grad(w, state=state)
            updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=f)
            w = gradtx.apply_updates(w, updates)

    Args:
      learning_rate: None (the line search sets the step), or a number or schedule
        multiplying the direction before the line search.
      memory_size: the number of past pairs kept, >= 1.
      scale_init_precond: scale the initial inverse Hessian by
        :math:`\langle s, y \rangle / \lVert y \rVert^2`.
      linesearch: the line search, or None for none.

    Returns:
      ``chain(scale_by_lbfgs(memory_size, scale_init_precond), scale(-1) or
      scale_by_learning_rate(lr), linesearch)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> f = lambda w: jnp.sum((w - 3.0) ** 2)
      >>> opt = gradtx.lbfgs()
      >>> value_and_grad = gradtx.value_and_grad_from_state(f)
      >>> w = jnp.zeros(2)
      >>> state = opt.init(w)
      >>> for _ in range(3):
      ...     value, grad = value_and_grad(w, state=state)
      ...     u, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=f)
      ...     w = gradtx.apply_updates(w, u)
      >>> w  # the minimum of a quadratic, once the memory holds one pair
      Array([3., 3.], dtype=float32)

    References:
      Liu and Nocedal, 1989; Nocedal and Wright, 2006, algorithm 7.5. ``optax.lbfgs``
      (same numbers).
    """
    base: Any = scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)
    blocks = [scale_by_lbfgs(memory_size, scale_init_precond), base]
    if linesearch is not None:
        blocks.append(linesearch)
    return labelled("lbfgs", *blocks)
