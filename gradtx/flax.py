"""flax: gradtx optimizers as data in ``nnx.Optimizer`` and ``TrainState``.

flax keeps the optimizer static: ``nnx.Optimizer`` stores ``tx`` as a static attribute
and ``TrainState`` declares it ``pytree_node=False``, so a new learning rate, beta or
weight decay is a new static value and the jitted step traces again (as with optax);
and ``nnx.Optimizer`` refuses a ``tx`` holding arrays. The two classes here keep the
optimizer's numbers as data instead, so building a new optimizer with other numbers and
handing it over reuses the compiled step:

- `Optimizer`: ``nnx.Optimizer`` that keeps each number of ``tx`` in an `OptHyper`
  variable (nnx state, like the optimizer state). ``optimizer.tx = gradtx.adamw(3e-3)``
  sets them; an optimizer of another structure (another block, another static choice)
  is accepted too and traces again, as it must.
- `TrainState`: ``flax.training.train_state.TrainState`` whose ``tx`` is a pytree node:
  ``state.replace(tx=gradtx.adamw(3e-3))``.
- `to_optax`: a gradtx transform typed as optax's ``GradientTransformationExtraArgs``,
  for any other flax or optax API that names optax's type (the transform itself works
  there already; this only tells the type checker).

For equinox, whose ``filter_jit`` treats Python numbers as static, pass
``gradtx.as_arrays(optimizer)`` as an argument of the jitted step. This module imports
flax; the rest of gradtx does not.

Example:
  >>> import gradtx, gradtx.flax, jax.numpy as jnp
  >>> from flax import nnx
  >>> model = nnx.Linear(2, 1, use_bias=False, rngs=nnx.Rngs(0))
  >>> model.kernel[...] = jnp.ones((2, 1))
  >>> opt = gradtx.flax.Optimizer(model, gradtx.sgd(0.5), wrt=nnx.Param)
  >>> grad = nnx.grad(lambda m: jnp.sum(m(jnp.ones((1, 2)))))  # d/dkernel = 1
  >>> _ = opt.update(model, grad(model))  # 1 - 0.5 * 1
  >>> model.kernel[...].ravel().tolist()
  [0.5, 0.5]
  >>> opt.tx = gradtx.sgd(0.25)  # under nnx.jit, no new trace: the number is state
  >>> _ = opt.update(model, grad(model))  # 0.5 - 0.25 * 1
  >>> model.kernel[...].ravel().tolist()
  [0.25, 0.25]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import jax
import optax
from flax import nnx, struct
from flax.nnx import filterlib
from flax.training import train_state

from gradtx._checks import InputError
from gradtx.base import Transform, _as_transform, apply_updates
from gradtx.data import as_arrays
from gradtx.readout import hyperparams

M = TypeVar("M")

__all__ = ["OptHyper", "Optimizer", "RoundingKey", "TrainState", "to_optax"]


class OptHyper(nnx.Variable):
    """A number of an optimizer (a learning rate, a beta, a schedule's value), kept as
    nnx state by `Optimizer` so that a new value does not trace the step again."""


class RoundingKey(nnx.Variable):
    """The key of `Optimizer`'s stochastic rounding (saved with its state); step ``t``
    rounds with ``jax.random.fold_in(key, t)``."""


class Optimizer(nnx.Optimizer[M], Generic[M]):
    """``nnx.Optimizer`` that keeps the numbers of a gradtx optimizer as state.

    Use it as ``nnx.Optimizer``: same arguments, same ``update(model, grads)``, same
    ``step`` and ``opt_state``. ``tx`` reads back as the gradtx optimizer (its numbers
    as arrays); assigning a new optimizer of the same structure changes the numbers
    only, so a step jitted with ``nnx.jit`` is not traced again. The numbers are
    `OptHyper` variables: ``nnx.state(optimizer, OptHyper)`` lists them, and they are
    saved and restored with the rest of ``nnx.state(optimizer)``.

    Args:
      model: the nnx module.
      tx: a gradtx optimizer (or any gradtx transform).
      wrt: which variables to optimize, as in ``nnx.Optimizer``.
      graph: as in ``nnx.Optimizer``.
      rounding: how ``update`` rounds new values into the parameters' dtypes:
        ``"nearest"`` (as optax) or ``"stochastic"`` (unbiased, for bfloat16 parameters:
        see `gradtx.apply_updates`).
      key: with ``rounding="stochastic"``, a ``jax.random`` key; step ``t`` (the
        ``step`` before it) rounds with ``jax.random.fold_in(key, t)``, so a run is
        reproducible and a restored optimizer goes on with the same draws. Kept as a
        `RoundingKey` variable.

    Example:
      >>> import gradtx, gradtx.flax, jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> model = nnx.Linear(4, 2, rngs=nnx.Rngs(0), param_dtype=jnp.bfloat16)
      >>> opt = gradtx.flax.Optimizer(model, gradtx.adamw(1e-4), wrt=nnx.Param,
      ...                             rounding="stochastic", key=jax.random.key(0))
      >>> grads = nnx.grad(lambda m: jnp.sum(m(jnp.ones((1, 4), jnp.bfloat16))))(model)
      >>> _ = opt.update(model, grads)
      >>> model.kernel.dtype
      dtype(bfloat16)
    """

    def __init__(
        self,
        model: M,
        tx: Transform,
        *,
        wrt: filterlib.Filter,
        graph: bool | None = None,
        rounding: str = "nearest",
        key: jax.Array | None = None,
    ) -> None:
        if rounding not in ("nearest", "stochastic"):
            raise InputError(
                "gradtx.flax.Optimizer", f"rounding must be 'nearest' or 'stochastic', got {rounding!r}"
            )
        if rounding == "stochastic" and key is None:
            raise InputError(
                "gradtx.flax.Optimizer",
                "rounding='stochastic' needs a key: Optimizer(model, tx, wrt=..., "
                "rounding='stochastic', key=jax.random.key(0)).",
            )
        super().__init__(model, cast(optax.GradientTransformation, tx), wrt=wrt, graph=graph)
        self.rounding = rounding
        self.rounding_key = RoundingKey(key) if key is not None else None
        # nnx stores pytree nodes it does not know (a quantized moment's QuantizedArray)
        # as plain State mappings; the state's own structure is rebuilt from this.
        params = nnx.as_pure(nnx.state(model, wrt, graph=graph))
        self._state_def = jax.tree.structure(jax.eval_shape(self.tx.init, params))

    def update(self, model: M, grads: Any, /, **kwargs: Any) -> Any:
        """As ``nnx.Optimizer.update``: one step of the optimizer, applied to ``model``
        (the state's pytree types, such as `gradtx.QuantizedArray`, kept)."""
        params = nnx.as_pure(nnx.state(model, self.wrt, graph=self.graph))
        grad_arrays = nnx.as_pure(nnx.state(grads, self.wrt, graph=self.graph))
        state = jax.tree.unflatten(self._state_def, jax.tree.leaves(nnx.as_pure(self.opt_state)))
        updates, new_state = self.tx.update(grad_arrays, state, params, **nnx.as_pure(kwargs))
        if self.rounding == "stochastic":
            assert self.rounding_key is not None
            key = jax.random.fold_in(self.rounding_key.get_value(), self.step.get_value())
            nnx.update(model, apply_updates(params, updates, rounding="stochastic", key=key))
        else:
            nnx.update(model, apply_updates(params, updates))
        nnx.update(self.opt_state, nnx.state(new_state, graph=self.graph))
        self.step[...] += 1
        return updates

    @property
    def tx(self) -> Transform:  # type: ignore[override]
        """The gradtx optimizer, rebuilt from its structure and the `OptHyper` values."""
        return jax.tree.unflatten(self._tx_structure, [v.get_value() for v in self.hyper])

    @tx.setter
    def tx(self, tx: Transform) -> None:
        tx = _as_transform(tx, "gradtx.flax.Optimizer")
        leaves, structure = jax.tree.flatten(as_arrays(tx))
        old = getattr(self, "_tx_structure", None)
        same = (
            old is not None
            and old == structure
            and all(
                v.get_value().shape == x.shape and v.get_value().dtype == x.dtype
                for v, x in zip(self.hyper, leaves, strict=True)
            )
        )
        if same:  # new numbers in the same variables: the graph does not change
            for variable, leaf in zip(self.hyper, leaves, strict=True):
                variable.set_value(leaf)
        else:
            self._tx_structure = structure
            self.hyper = nnx.List([OptHyper(leaf) for leaf in leaves])

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "tx":  # nnx would check the optimizer as a static value first
            Optimizer.tx.__set__(self, value)
        else:
            super().__setattr__(name, value)

    def hyperparams(self) -> dict[str, jax.Array]:
        """`gradtx.hyperparams` of the optimizer and its state: the step count and every
        value the last update used."""
        return hyperparams(self.tx, nnx.as_pure(self.opt_state))


class TrainState(train_state.TrainState):
    """``flax.training.train_state.TrainState`` whose ``tx`` is a pytree node.

    The optimizer's numbers are leaves of the state: under ``jax.jit``,
    ``state.replace(tx=gradtx.adamw(3e-3))`` reuses the compiled step. Everything else
    is flax's (``create``, ``apply_gradients``, ``step``, ``params``, ``opt_state``);
    ``apply_gradients`` also takes ``rounding="stochastic"`` and a ``key``.
    """

    tx: Transform = struct.field(pytree_node=True)  # pyright: ignore[reportIncompatibleVariableOverride]

    @classmethod
    def create(  # type: ignore[override]
        cls, *, apply_fn: Callable[..., Any], params: Any, tx: Transform, **kwargs: Any
    ) -> TrainState:
        """As flax's ``TrainState.create``, with a gradtx optimizer."""
        return cast(TrainState, super().create(apply_fn=apply_fn, params=params, tx=tx, **kwargs))  # pyright: ignore[reportArgumentType]

    def apply_gradients(
        self, *, grads: Any, rounding: str = "nearest", key: jax.Array | None = None, **kwargs: Any
    ) -> TrainState:
        """As flax's ``apply_gradients`` (one step: ``step``, ``params`` and ``opt_state``
        updated, ``kwargs`` replaced), rounding new parameter values as
        `gradtx.apply_updates` does: ``rounding="stochastic"`` with a ``key`` (fold the
        step in: ``jax.random.fold_in(key, state.step)``) for bfloat16 parameters."""
        overwrite = train_state.OVERWRITE_WITH_GRADIENT in grads
        grads_with_opt = grads["params"] if overwrite else grads
        params_with_opt = self.params["params"] if overwrite else self.params
        updates, new_opt_state = self.tx.update(grads_with_opt, self.opt_state, params_with_opt)
        new = apply_updates(params_with_opt, updates, rounding=rounding, key=key)
        if overwrite:
            grads_overwrite = grads[train_state.OVERWRITE_WITH_GRADIENT]
            new = {"params": new, train_state.OVERWRITE_WITH_GRADIENT: grads_overwrite}
        return self.replace(step=self.step + 1, params=new, opt_state=new_opt_state, **kwargs)


def to_optax(tx: Transform) -> optax.GradientTransformationExtraArgs:
    """``tx`` as optax's ``GradientTransformationExtraArgs`` (its ``init`` and ``update``).

    A gradtx transform already works wherever optax's is expected; this gives a type
    checker optax's type, for an API annotated with it. The result is a pair of
    functions, not data: pass the gradtx transform itself into ``jit`` to keep its
    numbers traced.

    Example:
      >>> import gradtx, gradtx.flax, optax
      >>> isinstance(gradtx.flax.to_optax(gradtx.adam(1e-3)), optax.GradientTransformation)
      True
    """
    tx = _as_transform(tx, "to_optax")
    return optax.GradientTransformationExtraArgs(tx.init, tx.update)
