"""Small transforms and helpers under optax's names: transforms from functions,
NaN guards, constraints, gradient noise and centralisation, normalisation, flattening,
and the parameter-averaging helpers of target networks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from gradtx import _checks, _quantized, _tree
from gradtx._checks import InputError
from gradtx.base import (
    Context,
    EmptyState,
    Params,
    Stateless,
    Transform,
    Updates,
    Wrapper,
    _as_transform,
    require_params,
    safe_increment,
    zero_count,
)
from gradtx.data import hyper, pytree_dataclass, static
from gradtx.packed import map_leaves, repacked, unpacked

PyTree = Any


@pytree_dataclass
class stateless(Stateless):
    """A transform from a function of the updates and the parameters.

    Args:
      f: ``f(updates, params) -> updates`` (``params`` may be None).

    Returns:
      A transform whose state is `gradtx.EmptyState`.

    Example:
      >>> import gradtx, jax, jax.numpy as jnp
      >>> tx = gradtx.stateless(lambda u, p: jax.tree.map(lambda x: 2 * x, u))
      >>> tx.update(jnp.ones(2), tx.init(None))[0]
      Array([2., 2.], dtype=float32)

    References:
      ``optax.stateless``.
    """

    f: Callable[[Updates, Params | None], Updates] = static()

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del count
        return self.f(updates, params)


@pytree_dataclass
class stateless_with_tree_map(Stateless):
    """A transform from a function of one update leaf and its parameter leaf.

    Args:
      f: ``f(update, param) -> update``, mapped over the leaves (``param`` is None
        when ``update`` is called without parameters).

    Returns:
      A transform whose state is `gradtx.EmptyState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.stateless_with_tree_map(lambda g, p: g * p)
      >>> p = jnp.full(2, 3.0)
      >>> tx.update(jnp.ones(2), tx.init(p), p)[0]
      Array([3., 3.], dtype=float32)

    References:
      ``optax.stateless_with_tree_map``.
    """

    f: Callable[[Any, Any], Any] = static()

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del count
        if params is None:
            return jax.tree.map(lambda u: self.f(u, None), updates)
        return jax.tree.map(self.f, updates, params)


def with_extra_args_support(tx: Any) -> Transform:
    """A transform that accepts extra keyword arguments in ``update``.

    Every gradtx transform already does (those it does not use are ignored), so a
    gradtx transform is returned as it is; an optax transformation is wrapped.

    Args:
      tx: a gradtx or optax transformation.

    Returns:
      A gradtx transform.

    Example:
      >>> import gradtx
      >>> tx = gradtx.sgd(0.1)
      >>> gradtx.with_extra_args_support(tx) is tx
      True

    References:
      ``optax.with_extra_args_support``.
    """
    return _as_transform(tx, "with_extra_args_support")


class ZeroNansState(NamedTuple):
    """State of `zero_nans`: for each leaf, whether the last updates held a NaN."""

    found_nan: Any


@pytree_dataclass
class zero_nans(Transform):
    """Replaces NaNs in the updates by zeros and records, per leaf, that it did.

    Returns:
      A transform whose state is `ZeroNansState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.zero_nans()
      >>> u, state = tx.update(jnp.asarray([jnp.nan, 1.0]), tx.init(jnp.zeros(2)))
      >>> u, bool(state.found_nan)
      (Array([0., 1.], dtype=float32), True)

    References:
      ``optax.zero_nans`` (same numbers and state).
    """

    _check_buffers = False

    def init(self, params: Params) -> ZeroNansState:
        return ZeroNansState(found_nan=jax.tree.map(lambda p: jnp.asarray(False), params))

    def _update(self, updates: Updates, state: ZeroNansState, params: Params | None, ctx: Context):
        del state, params, ctx
        found = jax.tree.map(lambda u: jnp.any(jnp.isnan(u)), updates)
        return jax.tree.map(lambda u: jnp.where(jnp.isnan(u), jnp.zeros_like(u), u), updates), ZeroNansState(
            found
        )


NonNegativeParamsState = EmptyState


@pytree_dataclass
class keep_params_nonnegative(Stateless):
    """Changes the updates so that no parameter becomes negative.

    Where ``p + u < 0`` the update becomes ``-p`` (the parameter lands on 0).

    Returns:
      A stateless transform; ``update`` needs the parameters.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> p = jnp.asarray([1.0, 1.0])
      >>> gradtx.keep_params_nonnegative().update(jnp.asarray([-3.0, -0.5]), gradtx.EmptyState(), p)[0]
      Array([-1. , -0.5], dtype=float32)

    References:
      ``optax.keep_params_nonnegative`` (same numbers).
    """

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del count
        require_params("keep_params_nonnegative", params, updates)
        return jax.tree.map(
            lambda p, u: None if p is None else jnp.where(p + u < 0, -p, u),
            params,
            updates,
            is_leaf=lambda x: x is None,
        )


class AddNoiseState(NamedTuple):
    """State of `add_noise`: the step count and the random key."""

    count: jax.Array  # shape=(), dtype=int32: updates so far  # pyright: ignore[reportIncompatibleMethodOverride]
    rng_key: jax.Array


@pytree_dataclass
class add_noise(Transform):
    r"""Adds Gaussian noise of annealed variance to the updates.

    .. math:: u_t = g_t + \mathcal N(0, \eta / t^\gamma), \qquad t = 1, 2, \dots

    Args:
      eta: the initial variance.
      gamma: the decay exponent of the variance (0.55 in the paper).
      key: a JAX random key or an int seed.
      seed: optax's older name for ``key``.

    Returns:
      A transform whose state is `AddNoiseState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.add_noise(0.01, 0.55, key=0)
      >>> u, state = tx.update(jnp.zeros(3), tx.init(jnp.zeros(3)))
      >>> u.shape, int(state.count)
      ((3,), 1)

    References:
      Neelakantan et al., 2015, "Adding gradient noise improves learning for very deep
      networks". ``optax.add_noise`` (the same samples for the same key).
    """

    eta: Any = hyper()
    gamma: Any = hyper()
    key: Any = static(default=None)
    seed: int | None = static(default=None, kw_only=True)

    _check_buffers = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", static_key("add_noise", self.key, self.seed))
        object.__setattr__(self, "seed", None)
        super().__post_init__()

    def _key(self) -> jax.Array:
        return key_array(self.key)

    def init(self, params: Params) -> AddNoiseState:
        del params
        return AddNoiseState(count=zero_count(), rng_key=self._key())

    def _update(self, updates: Updates, state: AddNoiseState, params: Params | None, ctx: Context):
        del params, ctx
        count = safe_increment(state.count)
        eta, gamma = self.at("eta", state.count), self.at("gamma", state.count)
        std = jnp.sqrt(eta / count.astype(_tree.float_dtype()) ** gamma)
        rng_key, sample_key = jax.random.split(state.rng_key)
        # One sample per original leaf (also when packed), as optax draws them.
        plain = unpacked(updates)
        leaves, treedef = jax.tree.flatten(plain)
        keys = jax.random.split(sample_key, len(leaves)) if leaves else []
        noise = [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)]
        out = jax.tree.unflatten(
            treedef, [x + _tree.to(std, x.dtype) * n for x, n in zip(leaves, noise, strict=True)]
        )
        out = repacked(updates, out)
        return out, AddNoiseState(count=count, rng_key=rng_key)


def static_key(owner: str, key: Any, seed: Any) -> Any:
    """A random key given as ``key`` or optax's older ``seed`` (an int, a typed or raw
    key) as hashable static data: an int, or the key's data as a tuple (a key traced by
    `gradtx.inject_hyperparams` is kept as it is)."""
    if seed is not None and key is not None:
        raise InputError(owner, "give key or seed, not both")
    key = seed if key is None else key
    if key is None:
        key = 0
    if isinstance(key, Tracer):
        return key  # a seed traced by inject_hyperparams: used as it is, inside that trace
    if not isinstance(key, int):
        key = tuple(np.asarray(jax.random.key_data(key) if _is_typed_key(key) else key).tolist())
    return key


def key_array(key: Any) -> jax.Array:
    """The typed JAX key `static_key` stored."""
    if isinstance(key, Tracer):
        return jax.random.key(key) if not _is_typed_key(key) else key
    if isinstance(key, int):
        return jax.random.key(key)
    return jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))


def _is_typed_key(key: Any) -> bool:
    return isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


@pytree_dataclass
class centralize(Stateless):
    """Subtracts from each update of two or more dimensions its mean over all but the
    first axis (gradient centralisation); vectors and scalars pass unchanged.

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.centralize().update(jnp.asarray([[1.0, 2.0, 3.0]]), gradtx.EmptyState())[0]
      Array([[-1.,  0.,  1.]], dtype=float32)

    References:
      Yong et al., 2020, "Gradient centralization". ``optax.centralize`` (same numbers).
    """

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del params, count

        def subtract_mean(g: jax.Array) -> jax.Array:
            if g.ndim > 1:
                return g - g.mean(tuple(range(1, g.ndim)), keepdims=True)
            return g

        return map_leaves(subtract_mean, updates)


@pytree_dataclass
class normalize_by_update_norm(Stateless):
    r"""Divides the updates by their global norm (plus ``eps``) and multiplies by
    ``scale_factor``.

    .. math:: u = \text{scale\_factor} \cdot g / (\lVert g \rVert_2 + \epsilon)

    Args:
      scale_factor: the norm of the result (use a negative value to descend).
      eps: added to the norm.

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.normalize_by_update_norm(eps=0.0)
      >>> tx.update(jnp.asarray([3.0, 4.0]), gradtx.EmptyState())[0]
      Array([0.6, 0.8], dtype=float32)

    References:
      ``optax.normalize_by_update_norm`` (same numbers).
    """

    scale_factor: Any = hyper(default=1.0)
    eps: Any = hyper(default=1e-6, rule=_checks.nonnegative)

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del params
        scale_factor, eps = self.at("scale_factor", count), self.at("eps", count)
        norm = _tree.global_norm(updates)
        denominator = (norm + _tree.cast(eps, norm.dtype)) / _tree.cast(scale_factor, norm.dtype)
        return jax.tree.map(lambda g: g / _tree.to(denominator, g.dtype), updates)


@pytree_dataclass
class flatten(Wrapper):
    """Runs ``inner`` on one flat vector: all leaves raveled and concatenated.

    For transforms that need a single vector (some second-order methods); gradtx's
    `gradtx.pack` keeps the parameters flat across steps instead, which is cheaper. The
    chain's slots (`gradtx.channel`) reach ``inner`` flattened as the updates are, so
    ``chain(momentum(b1), flatten(scale_by_rms(...)))`` is Adam. Quantized state
    (``mu_dtype="8bit"``, ...) keeps each leaf of the vector in blocks of its own, so the
    numbers are those of ``inner`` on the tree.

    Args:
      inner: the transform to run on the flat vector.

    Returns:
      A transform whose state is ``inner``'s state for the flat vector.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.flatten(gradtx.scale(2.0))
      >>> g = {"a": jnp.ones((2, 2)), "b": jnp.ones(1)}
      >>> tx.update(g, tx.init(g))[0]["a"]
      Array([[2., 2.],
             [2., 2.]], dtype=float32)

    References:
      ``optax.flatten`` (same numbers and state).
    """

    inner: Transform = hyper()

    _inner_state_field = None  # the state is the inner transform's, for the flat vector

    @staticmethod
    def _flat(tree_: PyTree) -> jax.Array:
        return jnp.concatenate([jnp.reshape(x, [-1]) for x in jax.tree.leaves(tree_)])

    def init(self, params: Params) -> Any:
        # A quantized buffer of the flat vector keeps each leaf in blocks of its own (its
        # re-encoding each step keeps the layout init chose).
        with _quantized.concatenated_leaves(tuple(int(np.size(x)) for x in jax.tree.leaves(params))):
            return self.inner.init(self._flat(params))

    def _update(self, updates: Updates, state: Any, params: Params | None, ctx: Context):
        flat_params = None if params is None else self._flat(params)
        flat, state = self.inner._apply(self._flat(updates), state, flat_params, ctx.carried(self._flat))
        leaves, treedef = jax.tree.flatten(updates)
        cuts = np.cumsum([np.size(x) for x in leaves])[:-1].tolist()
        pieces = jnp.split(flat, cuts)
        return jax.tree.unflatten(
            treedef, [p.reshape(x.shape) for p, x in zip(pieces, leaves, strict=True)]
        ), state


@jax.custom_vjp
def _scale_gradient(inputs: PyTree, scale: Any) -> PyTree:
    return inputs


def _scale_gradient_fwd(inputs: PyTree, scale: Any) -> tuple[PyTree, Any]:
    return inputs, scale


def _scale_gradient_bwd(scale: Any, g: PyTree) -> tuple[PyTree, None]:
    return jax.tree.map(lambda x: x * _tree.to(jnp.asarray(scale), x.dtype), g), None


_scale_gradient.defvjp(_scale_gradient_fwd, _scale_gradient_bwd)


def scale_gradient(inputs: PyTree, scale: Any) -> PyTree:
    """The identity on the forward pass; multiplies the gradient by ``scale`` backwards.

    Args:
      inputs: a pytree of arrays.
      scale: the factor applied to the gradient (0 stops it, 1 leaves it).

    Returns:
      ``inputs``, unchanged.

    Example:
      >>> import gradtx, jax
      >>> jax.grad(lambda x: gradtx.scale_gradient(x, 0.5) ** 2)(3.0)
      Array(3., dtype=float32, weak_type=True)

    References:
      ``optax.scale_gradient`` (same values and gradients).
    """
    if isinstance(scale, (int, float)) and scale == 1.0:
        return inputs
    if isinstance(scale, (int, float)) and scale == 0.0:
        return jax.lax.stop_gradient(inputs)
    return _scale_gradient(inputs, scale)


def incremental_update(new_tensors: PyTree, old_tensors: PyTree, step_size: Any) -> PyTree:
    """Polyak averaging: ``step_size * new + (1 - step_size) * old``, leaf by leaf.

    Args:
      new_tensors: e.g. the online network's parameters.
      old_tensors: e.g. the target network's parameters.
      step_size: the weight of the new values, in [0, 1].

    Returns:
      The averaged tree (``None`` leaves stay ``None``).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.incremental_update(jnp.ones(2), jnp.zeros(2), 0.25)
      Array([0.25, 0.25], dtype=float32)

    References:
      ``optax.incremental_update`` (same numbers).
    """
    return jax.tree.map(
        lambda new, old: None if new is None else step_size * new + (1.0 - step_size) * old,
        new_tensors,
        old_tensors,
        is_leaf=lambda x: x is None,
    )


def periodic_update(new_tensors: PyTree, old_tensors: PyTree, steps: Any, update_period: Any) -> PyTree:
    """``new_tensors`` when ``steps`` is a multiple of ``update_period``, else ``old_tensors``.

    Args:
      new_tensors: e.g. the online network's parameters.
      old_tensors: e.g. the target network's parameters.
      steps: the current step.
      update_period: how often to copy.

    Returns:
      One of the two trees.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.periodic_update(jnp.ones(1), jnp.zeros(1), 10, 5)
      Array([1.], dtype=float32)

    References:
      ``optax.periodic_update``.
    """
    return jax.lax.cond(jnp.mod(steps, update_period) == 0, lambda: new_tensors, lambda: old_tensors)
