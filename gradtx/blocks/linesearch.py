r"""Line searches: scale the update direction by a step size that decreases the loss
enough, found by evaluating the loss along the direction.

Both read from ``update``'s keyword arguments the loss at the current parameters
(``value``), its gradient (``grad``) and the function itself (``value_fn``; further
keyword arguments that ``value_fn`` accepts are passed to it). Their states keep the
value and gradient at the accepted step, so `value_and_grad_from_state` can reuse them
in the next iteration instead of computing them again.

- `scale_by_backtracking_linesearch`: Armijo's sufficient decrease
  :math:`f(W + \eta u) \le (1 + r) f(W) + c\, \eta \langle u, \nabla f \rangle`,
  shrinking :math:`\eta` by a factor until it holds.
- `scale_by_zoom_linesearch`: the strong Wolfe conditions (sufficient decrease and
  :math:`|\langle u, \nabla f(W + \eta u) \rangle| \le c_2 |\langle u, \nabla f(W) \rangle|`),
  by bracketing then zooming with cubic, quadratic or bisection steps (Nocedal and
  Wright, 2006, algorithms 3.5 and 3.6).

The numbers follow ``optax``'s implementations of both, step for step.

(One file over 600 lines on purpose: the two searches share their state handling,
``value_fn``'s argument filtering and the reuse of the stored value and gradient, and
are read side by side with optax's ``_linesearch.py``.)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _tree
from gradtx._checks import InputError
from gradtx.base import Context, Params, Transform, Updates, require_params
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.tree_utils import tree_get

# The diagnostics ``verbose=True`` prints (optax's wording, so code that looks for it
# finds it).
FLAG_INTERVAL_NOT_FOUND = (
    "No interval satisfying curvature condition. "
    "Consider increasing maximal possible stepsize of the linesearch."
)
FLAG_INTERVAL_TOO_SMALL = "Length of searched interval has been reduced below threshold."
FLAG_CURVATURE_COND_NOT_SATISFIED = (
    "Returning stepsize with sufficient decrease but curvature condition not satisfied."
)
FLAG_NO_STEPSIZE_FOUND = "Linesearch failed, no stepsize satisfying sufficient decrease found."
FLAG_NOT_A_DESCENT_DIRECTION = (
    "The linesearch failed because the provided direction is not a descent direction. "
)


def _cond_print(condition: Any, message: str, **values: Any) -> None:
    """Prints ``message`` (formatted with ``values``) when ``condition`` holds, under jit."""
    jax.lax.cond(condition, lambda: jax.debug.print(message, **values, ordered=True), lambda: None)


def _where(condition: Any, xs: Any, ys: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(condition, x, y), xs, ys)


def _value_dtype(params: Params) -> Any:
    return jnp.real(jnp.empty((), jax.tree.leaves(params)[0].dtype)).dtype


def _needs(owner: str, extra: dict[str, Any]) -> tuple[Any, Any, Callable[..., Any], dict[str, Any]]:
    """``value``, ``grad``, ``value_fn`` and the keyword arguments for ``value_fn``."""
    missing = [k for k in ("value", "grad", "value_fn") if k not in extra]
    if missing:
        raise TypeError(
            f"{owner}: update needs {', '.join(missing)}: call "
            "update(updates, state, params, value=loss, grad=gradient, value_fn=loss_fn) "
            "(gradtx.value_and_grad_from_state gives value and grad)."
        )
    rest = {k: v for k, v in extra.items() if k not in ("value", "grad", "value_fn")}
    value_fn = extra["value_fn"]
    accepted = set(inspect.signature(value_fn).parameters)
    fn_kwargs = {k: v for k, v in rest.items() if k in accepted}
    unused = sorted(k for k in rest if k not in accepted)
    if unused:
        raise TypeError(
            f"{owner}: Unexpected keyword arguments {unused}: value_fn does not accept them, "
            "and every extra keyword argument of update is passed on to value_fn."
        )
    return extra["value"], extra["grad"], value_fn, fn_kwargs


class BacktrackingLinesearchInfo(NamedTuple):
    """What the last backtracking search did: its number of steps and the final
    sufficient-decrease error (0 when the condition holds)."""

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """State of `scale_by_backtracking_linesearch`: the accepted step size, the loss at
    the new parameters, their gradient (with ``store_grad``, else None), and `info`."""

    learning_rate: jax.Array
    value: jax.Array
    grad: Updates
    info: BacktrackingLinesearchInfo


class _Backtrack(NamedTuple):
    learning_rate: jax.Array
    new_value: jax.Array
    new_grad: Updates
    decrease_error: jax.Array
    iter_num: jax.Array


@pytree_dataclass
class scale_by_backtracking_linesearch(Transform):
    r"""Armijo backtracking: the largest step size :math:`\eta` in
    :math:`\eta_0, \delta \eta_0, \delta^2 \eta_0, \dots` (at most
    ``max_backtracking_steps`` tries) with

    .. math:: f(W + \eta u) \le (1 + r_{tol}) f(W) + c\, \eta \langle u, \nabla f(W) \rangle + a_{tol}

    where :math:`\eta_0 = \min(\text{increase_factor} \cdot \eta_{prev}, \eta_{max})`.
    The output is :math:`\eta u` (0 if every try gave a NaN or infinite loss).

    Args:
      max_backtracking_steps: the most tries.
      slope_rtol: ``c``, the fraction of the linear decrease required.
      decrease_factor: :math:`\delta`, in (0, 1).
      increase_factor: how much the first try exceeds the last accepted step.
      max_learning_rate: :math:`\eta_{max}`.
      atol: :math:`a_{tol}`.
      rtol: :math:`r_{tol}`.
      store_grad: keep the gradient at the accepted point (for
        `value_and_grad_from_state`).
      verbose: print a diagnostic when no step gives sufficient decrease.

    Returns:
      A transform whose state is `ScaleByBacktrackingLinesearchState`; ``update`` needs
      ``params``, ``value=``, ``grad=`` and ``value_fn=``.

    Example:
      >>> import gradtx, jax, jax.numpy as jnp
      >>> f = lambda w: jnp.sum(w**2)
      >>> tx = gradtx.scale_by_backtracking_linesearch(15)
      >>> w = jnp.asarray([1.0, 2.0])
      >>> u, _ = tx.update(-jax.grad(f)(w), tx.init(w), w, value=f(w), grad=jax.grad(f)(w), value_fn=f)
      >>> u  # eta = 1 lands on f = 5, no decrease; eta = 0.8 gives f = 1.8
      Array([-1.6, -3.2], dtype=float32)

    References:
      Armijo, 1966. ``optax.scale_by_backtracking_linesearch`` (same numbers).
    """

    max_backtracking_steps: int = static(rule=_checks.positive_count)
    slope_rtol: Any = hyper(default=1e-4)
    decrease_factor: Any = hyper(default=0.8)
    increase_factor: Any = hyper(default=1.5)
    max_learning_rate: Any = hyper(default=1.0)
    atol: Any = hyper(default=0.0)
    rtol: Any = hyper(default=0.0)
    store_grad: bool = static(default=False, rule=_checks.flag)
    verbose: bool = static(default=False, rule=_checks.flag)
    _check_buffers = False

    def init(self, params: Params) -> ScaleByBacktrackingLinesearchState:
        dtype = _value_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.asarray(1.0, dtype),
            value=jnp.asarray(jnp.inf, dtype),
            grad=_tree.zeros_like(params) if self.store_grad else None,
            info=BacktrackingLinesearchInfo(
                num_linesearch_steps=jnp.asarray(0), decrease_error=jnp.asarray(jnp.inf, dtype)
            ),
        )

    def _update(
        self, updates: Updates, state: ScaleByBacktrackingLinesearchState, params: Params | None, ctx: Context
    ):
        owner = "scale_by_backtracking_linesearch"
        require_params(owner, params, updates)
        value, grad, value_fn, fn_kwargs = _needs(owner, ctx.extra)
        fn = functools.partial(value_fn, **fn_kwargs)
        slope = jnp.real(_tree.vdot(updates, jax.tree.map(jnp.conj, grad)))
        rtol, atol, slope_rtol = self.rtol, self.atol, self.slope_rtol
        max_steps = self.max_backtracking_steps

        def decrease_error(stepsize: Any, new_value: Any) -> jax.Array:
            error = new_value - (1.0 + rtol) * value - stepsize * slope_rtol * slope
            error = jnp.where(jnp.isnan(error), jnp.inf, error)
            return jnp.maximum(error, 0.0)

        def cond(s: _Backtrack) -> jax.Array:
            return (~(s.decrease_error <= atol)) & (s.iter_num <= max_steps)

        def body(s: _Backtrack) -> _Backtrack:
            lr = jnp.where(s.iter_num > 0, self.decrease_factor * s.learning_rate, s.learning_rate)
            new_params = _tree.add_scale(params, lr, updates)
            new_grad = s.new_grad
            if self.store_grad:
                new_value, linear = jax.linearize(fn, new_params)
                error = decrease_error(lr, new_value)
                new_grad = jax.lax.cond(
                    (error <= atol) | (s.iter_num == max_steps),
                    lambda p: jax.linear_transpose(linear, p)(jnp.ones_like(new_value))[0],
                    lambda *_: new_grad,
                    new_params,
                )
            else:
                new_value = fn(new_params)
                error = decrease_error(lr, new_value)
            out = _Backtrack(lr, new_value, new_grad, error, s.iter_num + 1)
            return _tree.cast_like(out, s)

        lr0 = jnp.minimum(self.increase_factor * state.learning_rate, self.max_learning_rate)
        start = _Backtrack(
            learning_rate=jnp.asarray(lr0),
            new_value=jnp.asarray(value),
            new_grad=_tree.zeros_like(params),
            decrease_error=jnp.asarray(jnp.inf),
            iter_num=jnp.asarray(0),
        )
        found = jax.lax.while_loop(cond, body, start)
        new_lr = jnp.where(jnp.isinf(found.decrease_error), 0.0, found.learning_rate)
        if self.verbose:
            _cond_print(
                found.decrease_error > atol,
                "scale_by_backtracking_linesearch: no step size gave sufficient decrease. "
                "Value: {value}, slope along the update: {slope}, step size: {stepsize}, "
                "decrease error: {error}.",
                value=value,
                slope=slope,
                stepsize=found.learning_rate,
                error=found.decrease_error,
            )
            _cond_print(
                jnp.isinf(found.decrease_error), "Using a stepsize of 0 to avoid infinite or nan values."
            )
        out = jax.tree.map(lambda u: _tree.to(new_lr, u.dtype) * u, updates)
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=new_lr,
            value=found.new_value,
            grad=found.new_grad if self.store_grad else None,
            info=BacktrackingLinesearchInfo(
                num_linesearch_steps=found.iter_num, decrease_error=found.decrease_error
            ),
        )
        return out, _tree.cast_like(new_state, state)


class ZoomLinesearchInfo(NamedTuple):
    """What the last zoom search did: its number of steps and the final errors of the
    sufficient-decrease and curvature conditions (0 when each holds)."""

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array


class ScaleByZoomLinesearchState(NamedTuple):
    """State of `scale_by_zoom_linesearch`: the accepted step size, the loss and gradient
    at the new parameters, and `info`."""

    learning_rate: jax.Array
    value: jax.Array
    grad: Updates
    info: ZoomLinesearchInfo


class _Zoom(NamedTuple):
    count: jax.Array  # pyright: ignore[reportIncompatibleMethodOverride]
    stepsize_guess: jax.Array
    stepsize: jax.Array
    value: jax.Array
    grad: Updates
    slope: jax.Array
    value_init: jax.Array
    slope_init: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array
    error: jax.Array
    interval_found: jax.Array
    done: jax.Array
    failed: jax.Array
    low: jax.Array
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    cubic_ref: jax.Array
    value_cubic_ref: jax.Array
    safe_stepsize: jax.Array
    safe_value: jax.Array
    safe_grad: Updates


def _cubicmin(a: Any, fa: Any, fpa: Any, b: Any, fb: Any, c: Any, fc: Any) -> jax.Array:
    """The minimiser of the cubic through (a, fa) with slope fpa, (b, fb) and (c, fc)."""
    db, dc = b - a, c - a
    denom = (db * dc) ** 2 * (db - dc)
    d1 = jnp.array([[dc**2, -(db**2)], [-(dc**3), db**3]])
    rhs = jnp.array([fb - fa - fpa * db, fc - fa - fpa * dc])
    big_a, big_b = jnp.dot(d1, rhs, precision=jax.lax.Precision.HIGHEST) / denom
    radical = big_b * big_b - 3.0 * big_a * fpa
    return a + (-big_b + jnp.sqrt(radical)) / (3.0 * big_a)


def _quadmin(a: Any, fa: Any, fpa: Any, b: Any, fb: Any) -> jax.Array:
    """The minimiser of the parabola through (a, fa) with slope fpa, and (b, fb)."""
    db = b - a
    curvature = (fb - fa - fpa * db) / (db**2)
    return a - fpa / (2.0 * curvature)


@pytree_dataclass
class scale_by_zoom_linesearch(Transform):
    r"""A line search for the strong Wolfe conditions: sufficient decrease and a small
    enough slope at the new point.

    .. math:: f(W + \eta u) \le f(W) + c_1 \eta \langle u, \nabla f(W) \rangle, \qquad
              |\langle u, \nabla f(W + \eta u) \rangle| \le c_2 |\langle u, \nabla f(W) \rangle|

    The search first grows :math:`\eta` by ``increase_factor`` until an interval holding
    an acceptable step is found, then shrinks the interval (cubic interpolation, else
    quadratic, else bisection) until a step satisfies both (within ``tol``). With
    ``approx_dec_rtol``, Hager and Zhang's approximate decrease condition is also
    accepted, which copes with losses flat to machine precision. If no step satisfies
    both in ``max_linesearch_steps`` tries, the best step with sufficient decrease is
    used, if any.

    Args:
      max_linesearch_steps: the most evaluations of the loss and its gradient.
      max_learning_rate: the largest step size, or None.
      tol: how far the conditions may be violated.
      increase_factor: the growth of the step size while bracketing.
      slope_rtol: :math:`c_1`.
      curv_rtol: :math:`c_2`.
      approx_dec_rtol: the tolerance of the approximate decrease condition, or None.
      stepsize_precision: the smallest interval length searched.
      initial_guess_strategy: ``"keep"`` (start from the last accepted step) or
        ``"one"``.
      verbose: print why a search ended without a step satisfying both conditions.

    Returns:
      A transform whose state is `ScaleByZoomLinesearchState`; ``update`` needs
      ``params``, ``value=``, ``grad=`` and ``value_fn=``.

    Example:
      >>> import gradtx, jax, jax.numpy as jnp
      >>> f = lambda w: jnp.sum(w**2)
      >>> tx = gradtx.scale_by_zoom_linesearch(15)
      >>> w = jnp.asarray([1.0, 2.0])
      >>> g = jax.grad(f)(w)
      >>> u, _ = tx.update(-g, tx.init(w), w, value=f(w), grad=g, value_fn=f)
      >>> u  # the exact minimiser along -g: eta = 0.5
      Array([-1., -2.], dtype=float32)

    References:
      Nocedal and Wright, 2006, algorithms 3.5 and 3.6; Hager and Zhang, 2006.
      ``optax.scale_by_zoom_linesearch`` (same numbers).
    """

    max_linesearch_steps: int = static(rule=_checks.positive_count)
    max_learning_rate: Any = hyper(default=None)
    tol: Any = hyper(default=0.0)
    increase_factor: Any = hyper(default=2.0)
    slope_rtol: Any = hyper(default=1e-4)
    curv_rtol: Any = hyper(default=0.9)
    approx_dec_rtol: Any = hyper(default=1e-6)
    stepsize_precision: Any = hyper(default=1e-5)
    initial_guess_strategy: str = static(default="keep")
    verbose: bool = static(default=False, rule=_checks.flag)
    _check_buffers = False

    def __post_init__(self) -> None:
        if self.initial_guess_strategy not in ("keep", "one"):
            raise InputError(
                "scale_by_zoom_linesearch",
                f"initial_guess_strategy must be 'keep' or 'one', got {self.initial_guess_strategy!r}",
            )
        super().__post_init__()

    def init(self, params: Params) -> ScaleByZoomLinesearchState:
        dtype = _value_dtype(params)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.asarray(1.0, dtype),
            value=jnp.asarray(jnp.inf, dtype),
            grad=_tree.zeros_like(params),
            info=ZoomLinesearchInfo(
                num_linesearch_steps=jnp.asarray(0),
                decrease_error=jnp.asarray(jnp.inf),
                curvature_error=jnp.asarray(jnp.inf),
            ),
        )

    # --- the conditions --------------------------------------------------------------

    def _decrease_error(self, stepsize: Any, value: Any, slope: Any, value_init: Any, slope_init: Any):
        error = value - value_init - self.slope_rtol * stepsize * slope_init
        if self.approx_dec_rtol is not None:
            approx = slope - (2 * self.slope_rtol - 1.0) * slope_init
            delta = value - value_init - self.approx_dec_rtol * jnp.abs(value_init)
            error = jnp.minimum(jnp.maximum(approx, delta), error)
        error = jnp.maximum(error, 0.0)
        return jnp.where(jnp.isnan(error), jnp.inf, error)

    def _curvature_error(self, slope: Any, slope_init: Any) -> jax.Array:
        error = jnp.maximum(jnp.abs(slope) - self.curv_rtol * jnp.abs(slope_init), 0.0)
        return jnp.where(jnp.isnan(error), jnp.inf, error)

    # --- the two phases --------------------------------------------------------------

    def _bracket(self, s: _Zoom, on_line: Callable[[Any], Any]) -> _Zoom:
        new = jnp.where(s.count == 0, s.stepsize_guess, self.increase_factor * s.stepsize)
        if self.max_learning_rate is not None:
            max_reached = new >= self.max_learning_rate
            new = jnp.minimum(new, self.max_learning_rate)
        else:
            max_reached = jnp.asarray(False)
        value, grad, slope = on_line(new)
        dec = self._decrease_error(new, value, slope, s.value_init, s.slope_init)
        curv = self._curvature_error(slope, s.slope_init)
        error = jnp.maximum(dec, curv)
        safe_stepsize, safe_value, safe_grad = _where(
            dec <= self.tol, [new, value, grad], [s.safe_stepsize, s.safe_value, s.safe_grad]
        )
        high_to_new = (dec > 0.0) | ((value >= s.value) & (s.count > 0))
        low_to_new = (slope >= 0.0) & (~high_to_new)
        low, value_low, slope_low, high, value_high, slope_high = _where(
            low_to_new,
            [new, value, slope, s.stepsize, s.value, s.slope],
            [s.stepsize, s.value, s.slope, new, value, slope],
        )
        interval_found = high_to_new | low_to_new | (error <= self.tol)
        done = (error <= self.tol) | (max_reached & ~interval_found)
        if self.verbose:
            _cond_print(
                max_reached & ~interval_found,
                "scale_by_zoom_linesearch: the largest step size {stepsize} was reached. "
                + FLAG_INTERVAL_NOT_FOUND
                + "\n"
                + FLAG_CURVATURE_COND_NOT_SATISFIED,
                stepsize=new,
            )
        failed = (s.count + 1 >= self.max_linesearch_steps) & (~done)
        out = s._replace(
            count=s.count + 1,
            stepsize=new,
            value=value,
            grad=grad,
            slope=slope,
            decrease_error=dec,
            curvature_error=curv,
            error=error,
            interval_found=jnp.asarray(interval_found),
            done=jnp.asarray(done),
            failed=jnp.asarray(failed),
            low=low,
            value_low=value_low,
            slope_low=slope_low,
            high=high,
            value_high=value_high,
            slope_high=slope_high,
            cubic_ref=low,
            value_cubic_ref=value_low,
            safe_stepsize=safe_stepsize,
            safe_value=safe_value,
            safe_grad=safe_grad,
        )
        return _tree.cast_like(out, s)

    def _zoom(self, s: _Zoom, on_line: Callable[[Any], Any]) -> _Zoom:
        low, high = s.low, s.high
        delta = jnp.abs(high - low)
        left, right = jnp.minimum(high, low), jnp.maximum(high, low)
        too_small = delta <= self.stepsize_precision
        cubic = _cubicmin(low, s.value_low, s.slope_low, high, s.value_high, s.cubic_ref, s.value_cubic_ref)
        use_cubic = (cubic > left + 0.2 * delta) & (cubic < right - 0.2 * delta)
        quad = _quadmin(low, s.value_low, s.slope_low, high, s.value_high)
        use_quad = (~use_cubic) & (quad > left + 0.1 * delta) & (quad < right - 0.1 * delta)
        use_bisection = (~use_cubic) & (~use_quad)
        middle = jnp.where(use_cubic, cubic, s.cubic_ref)
        middle = jnp.where(use_quad, quad, middle)
        middle = jnp.where(use_bisection, (low + high) / 2.0, middle)
        value, grad, slope = on_line(middle)
        dec = self._decrease_error(middle, value, slope, s.value_init, s.slope_init)
        curv = self._curvature_error(slope, s.slope_init)
        error = jnp.maximum(dec, curv)
        better_safe = (dec <= self.tol) & (value < s.safe_value)
        safe_stepsize, safe_value, safe_grad = _where(
            better_safe, [middle, value, grad], [s.safe_stepsize, s.safe_value, s.safe_grad]
        )
        done = error <= self.tol
        high_to_middle = (dec > 0.0) | (value >= s.value_low)
        high_to_low = (slope * (high - low) >= 0.0) & (~high_to_middle)
        low_to_middle = ~high_to_middle
        new_high = _where(high_to_middle, [middle, value, slope], [high, s.value_high, s.slope_high])
        new_high = _where(high_to_low, [low, s.value_low, s.slope_low], new_high)
        new_low = _where(low_to_middle, [middle, value, slope], [low, s.value_low, s.slope_low])
        cubic_ref, value_cubic_ref = _where(
            high_to_middle | high_to_low, [high, s.value_high], [low, s.value_low]
        )
        failed = ((s.count + 1) >= self.max_linesearch_steps) | (too_small & (safe_stepsize > 0.0))
        out = s._replace(
            count=s.count + 1,
            stepsize=middle,
            value=value,
            grad=grad,
            slope=slope,
            decrease_error=dec,
            curvature_error=curv,
            error=error,
            done=done,
            failed=failed & ~done,
            low=new_low[0],
            value_low=new_low[1],
            slope_low=new_low[2],
            high=new_high[0],
            value_high=new_high[1],
            slope_high=new_high[2],
            cubic_ref=cubic_ref,
            value_cubic_ref=value_cubic_ref,
            safe_stepsize=safe_stepsize,
            safe_value=safe_value,
            safe_grad=safe_grad,
        )
        return _tree.cast_like(out, s)

    def _safe_step(self, s: _Zoom) -> _Zoom:
        """After a failed search: the best step with sufficient decrease, if any."""
        if self.verbose:
            self._diagnose(s)
        use_safe = (s.safe_stepsize > 0.0) | jnp.isinf(s.decrease_error)
        stepsize, value, grad = _where(
            use_safe, [s.safe_stepsize, s.safe_value, s.safe_grad], [s.stepsize, s.value, s.grad]
        )
        return _tree.cast_like(s._replace(stepsize=stepsize, value=value, grad=grad), s)

    def _diagnose(self, s: _Zoom) -> None:
        too_small = jnp.abs(s.low - s.high) <= self.stepsize_precision
        _cond_print(
            too_small,
            FLAG_INTERVAL_TOO_SMALL + " Interval length: {length}.",
            length=jnp.abs(s.low - s.high),
        )
        _cond_print(
            s.safe_stepsize > 0.0,
            FLAG_CURVATURE_COND_NOT_SATISFIED + " Stepsize ensuring sufficient decrease: {stepsize}.",
            stepsize=s.safe_stepsize,
        )
        failed = s.safe_stepsize <= 0.0
        descent = s.slope_init < 0.0
        _cond_print(failed, FLAG_NO_STEPSIZE_FOUND)
        _cond_print(
            failed & ~descent,
            FLAG_NOT_A_DESCENT_DIRECTION + "The slope (={slope}) at stepsize=0 should be negative",
            slope=s.slope_init,
        )
        _cond_print(failed & descent, "Consider augmenting the maximal number of linesearch iterations.")
        _cond_print(
            failed & jnp.isinf(s.decrease_error),
            "Cannot even make a step without getting Inf or Nan. "
            "The linesearch won't make a step and the optimizer is stuck.",
        )

    def _update(
        self, updates: Updates, state: ScaleByZoomLinesearchState, params: Params | None, ctx: Context
    ):
        owner = "scale_by_zoom_linesearch"
        require_params(owner, params, updates)
        value, grad, value_fn, fn_kwargs = _needs(owner, ctx.extra)
        value_and_grad = jax.value_and_grad(value_fn)

        def on_line(stepsize: Any) -> tuple[Any, Any, Any]:
            value_step, grad_step = value_and_grad(_tree.add_scale(params, stepsize, updates), **fn_kwargs)
            slope = jnp.real(_tree.vdot(jax.tree.map(jnp.conj, grad_step), updates))
            return value_step, grad_step, slope

        dtype = _value_dtype(params)
        guess = jnp.asarray(1.0) if self.initial_guess_strategy == "one" else state.learning_rate
        slope = jnp.real(_tree.vdot(updates, grad))
        value = jnp.asarray(value)
        start = _Zoom(
            count=jnp.asarray(0),
            stepsize_guess=guess,
            stepsize=jnp.asarray(0.0, dtype),
            value=jnp.asarray(value, dtype),
            grad=grad,
            slope=slope,
            value_init=value,
            slope_init=slope,
            decrease_error=jnp.asarray(jnp.inf),
            curvature_error=jnp.asarray(jnp.inf),
            error=jnp.asarray(jnp.inf),
            interval_found=jnp.asarray(False),
            done=jnp.asarray(False),
            failed=jnp.asarray(False),
            low=jnp.asarray(0.0),
            value_low=value,
            slope_low=slope,
            high=jnp.asarray(0.0),
            value_high=value,
            slope_high=slope,
            cubic_ref=jnp.asarray(0.0),
            value_cubic_ref=value,
            safe_stepsize=jnp.asarray(0.0),
            safe_value=value,
            safe_grad=grad,
        )

        def step(s: _Zoom) -> _Zoom:
            new = jax.lax.cond(
                s.interval_found,
                functools.partial(self._zoom, on_line=on_line),
                functools.partial(self._bracket, on_line=on_line),
                s,
            )
            new = jax.lax.cond(new.failed, self._safe_step, lambda x: x, new)
            return _tree.cast_like(new, s)

        final = jax.lax.while_loop(lambda s: ~(s.done | s.failed), step, start)
        out = jax.tree.map(lambda u: _tree.to(final.stepsize, u.dtype) * u, updates)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=final.stepsize,
            value=final.value,
            grad=final.grad,
            info=ZoomLinesearchInfo(
                num_linesearch_steps=final.count,
                decrease_error=final.decrease_error,
                curvature_error=final.curvature_error,
            ),
        )
        return out, _tree.cast_like(new_state, state)


def value_and_grad_from_state(value_fn: Callable[..., Any]) -> Callable[..., tuple[Any, Any]]:
    """``jax.value_and_grad(value_fn)`` that reuses the value and gradient a line search
    stored in the optimizer's state, computing them only when none is stored yet.

    Args:
      value_fn: the loss, ``value_fn(params, *args, **kwargs)``.

    Returns:
      ``fn(params, *args, state=opt_state, **kwargs) -> (value, grad)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> f = lambda w: jnp.sum(w**2)
      >>> opt = gradtx.lbfgs()
      >>> w = jnp.asarray([1.0, 2.0])
      >>> value, grad = gradtx.value_and_grad_from_state(f)(w, state=opt.init(w))
      >>> value  # computed: the state holds no value yet
      Array(5., dtype=float32)

    References:
      ``optax.value_and_grad_from_state`` (same behaviour).
    """

    def value_and_grad(params: Params, *args: Any, state: Any, **kwargs: Any) -> tuple[Any, Any]:
        value = tree_get(state, "value")
        grad = tree_get(state, "grad")
        if value is None or grad is None:
            raise InputError(
                "value_and_grad_from_state",
                "the state holds no 'value' and 'grad'; use it with an optimizer whose line search stores "
                "them (gradtx.lbfgs, scale_by_zoom_linesearch, "
                "scale_by_backtracking_linesearch(store_grad=True)).",
            )
        return jax.lax.cond(
            (~jnp.isinf(value)) & (~jnp.isnan(value)),
            lambda *_: (value, grad),
            lambda p, a, kw: jax.value_and_grad(value_fn)(p, *a, **kw),
            params,
            args,
            kwargs,
        )

    return value_and_grad
