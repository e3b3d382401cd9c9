"""Transforms applied to part of the parameters: `masked`, `partition`, `freeze`.

A mask is a pytree of booleans shaped like the parameters (or a prefix of them), or a
function returning one. As in optax, a mask is a function only when it is not a tree of
booleans: an equinox module of booleans is callable, and is still a mask. The masked-out
leaves are replaced by `MaskedNode` (a node with no leaves) before the inner transform
sees the tree, so it keeps no state for them.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Hashable, Iterator, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._checks import InputError
from gradtx.base import Context, OptState, Params, Stateless, Transform, Updates, Wrapper, _as_transform
from gradtx.data import FrozenTree, hyper, pytree_dataclass, static
from gradtx.packed import Packed, broadcast_prefix, unpacked


class MaskedNode(NamedTuple):
    """Stands for a masked-out part of a tree: a node with no leaves, so ``jax.tree.map``
    skips it (optax's ``MaskedNode``)."""


class MaskedState(NamedTuple):
    """State of `masked`: the inner transform's state, kept for the unmasked leaves only."""

    inner_state: Any


def is_mask_function(mask: Any) -> bool:
    """optax's rule: a mask is a function when every leaf of it is callable (a tree of
    booleans, even a callable one such as an equinox module, is a mask, not a function)."""
    leaves = jax.tree.leaves(jax.tree.map(callable, mask))
    return len(leaves) > 0 and all(leaves)


def freeze_mask(mask: Any) -> Any:
    """A mask as static data: functions as they are, trees as a hashable `FrozenTree`."""
    if isinstance(mask, FrozenTree) or is_mask_function(mask):
        return mask
    return FrozenTree(mask)


# The whole tree a `gradtx.tiled` step works on, while it runs its optimizer on pieces of
# it: a mask function is called on this tree (its leaves' shapes are the parameters'),
# not on the pieces.
_WHOLE_TREE: contextvars.ContextVar[Any] = contextvars.ContextVar("gradtx_whole_tree", default=None)


@contextlib.contextmanager
def pieces_of(tree: Any) -> Iterator[None]:
    """Within it, `mask_of` calls a mask function on ``tree`` (the whole tree) instead of
    the piece of it a transform sees (`gradtx.tiled`)."""
    token = _WHOLE_TREE.set(tree)
    try:
        yield
    finally:
        _WHOLE_TREE.reset(token)


def mask_of(mask: Any, tree: Any) -> Any:
    """The mask tree for ``tree``: the function called on it, or the stored tree. Inside
    `gradtx.tiled`, a function is called on the whole tree, and the answer broadcast to
    its leaves (the pieces a transform sees there keep the whole tree's structure)."""
    if not is_mask_function(mask):
        return mask.tree
    whole = _WHOLE_TREE.get()
    if whole is None:
        return mask(tree)
    return broadcast_prefix(mask(whole), whole)


def resolve_mask(mask: Any, tree: Any) -> tuple[Any, bool]:
    """The mask tree for ``tree`` (the function called on it, or the stored tree), and
    whether to work on the unpacked leaves.

    For packed parameters, a mask of the original leaves that marks whole buffers
    becomes one flag per buffer (the inner transform then runs on whole buffers); one
    that splits a buffer is applied to the unpacked leaves (same numbers, without the
    speed of packing: pack with ``group=`` to keep it).
    """
    if not isinstance(tree, Packed):
        return mask_of(mask, tree), False
    shapes = tree.shapes()
    original = broadcast_prefix(mask_of(mask, shapes), shapes)
    flags = tree.layout.per_buffer(original)
    if all(isinstance(f, bool) for f in flags):
        return Packed(tuple(flags), tree.layout), False
    return original, True


def mask_tree(tree: Any, mask: Any) -> Any:
    """``tree`` with every part the mask marks False replaced by `MaskedNode`."""
    return jax.tree.map(lambda m, t: t if m else MaskedNode(), mask, tree)


def unmask(mask: Any, new: Any, old: Any) -> Any:
    """The inner transform's output where the mask is True, the input elsewhere."""
    return jax.tree.map(lambda m, n, o: n if m else o, mask, new, old)


@pytree_dataclass
class masked(Wrapper):
    """Applies ``inner`` to the leaves the mask marks True; passes the others through.

    Typical use: no weight decay on biases and norm scales,
    ``masked(add_decayed_weights(1e-4), lambda p: jax.tree.map(lambda x: x.ndim > 1, p))``.

    Args:
      inner: the transform to apply to the selected leaves.
      mask: a pytree of booleans with the parameters' structure (or a prefix of it),
        or a function of the parameters (at ``init``) and of the updates (at
        ``update``) returning one. It must not depend on traced values.
      mask_compatible_extra_args: also mask the extra keyword arguments of ``update``
        that have the updates' structure.

    The chain's slots (`gradtx.channel`) reach ``inner`` masked as the updates are.

    Returns:
      A transform whose state is `MaskedState`. On packed parameters the mask speaks of
      the original leaves; it runs on whole buffers where it marks whole buffers (pack
      with ``group=``), else on the unpacked leaves, with the same numbers.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.masked(gradtx.scale(0.0), {"w": True, "b": False})
      >>> g = {"w": jnp.ones(2), "b": jnp.ones(2)}
      >>> tx.update(g, tx.init(g))[0]
      {'b': Array([1., 1.], dtype=float32), 'w': Array([0., 0.], dtype=float32)}

    References:
      ``optax.masked`` (same numbers and state).
    """

    inner: Transform = hyper()
    mask: Any = static()
    mask_compatible_extra_args: bool = static(default=False, kw_only=True, rule=_checks.flag)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", freeze_mask(self.mask))
        super().__post_init__()

    def init(self, params: Params) -> MaskedState:
        mask, unpack = resolve_mask(self.mask, params)
        params = unpacked(params) if unpack else params
        return MaskedState(inner_state=self.inner.init(mask_tree(params, mask)))

    def _update(self, updates: Updates, state: MaskedState, params: Params | None, ctx: Context):
        mask, unpack = resolve_mask(self.mask, updates)
        if unpack:
            layout = updates.layout
            inner_ctx = ctx.carried(unpacked)
            out, state = self._masked_update(mask, unpacked(updates), state, unpacked(params), inner_ctx)
            return layout.pack(out), state
        return self._masked_update(mask, updates, state, params, ctx)

    def _masked_update(self, mask: Any, updates: Updates, state: MaskedState, params: Any, ctx: Context):
        structure = jax.tree.structure(updates)
        extra = {
            k: mask_tree(v, mask)
            if self.mask_compatible_extra_args and jax.tree.structure(v) == structure
            else v
            for k, v in ctx.extra.items()
        }
        new, inner_state = self.inner._apply(
            mask_tree(updates, mask),
            state.inner_state,
            None if params is None else mask_tree(params, mask),
            ctx.carried(lambda slot: mask_tree(slot, mask), extra=extra),
        )
        return unmask(mask, new, updates), MaskedState(inner_state=inner_state)


class PartitionState(NamedTuple):
    """State of `partition`: each label's transform state (a `MaskedState`), by label."""

    inner_states: Mapping[Hashable, Any]


MultiTransformState = PartitionState


@pytree_dataclass
class partition(Transform):
    """Applies a different transform to each group of parameters, chosen by label.

    Args:
      transforms: a mapping from label to transform.
      param_labels: a pytree of labels with the parameters' structure (or a prefix of
        it), or a function of the parameters returning one. Every label must be a key
        of ``transforms``.
      mask_compatible_extra_args: mask the extra arguments as `masked` does.

    Returns:
      A transform whose state is `PartitionState`.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.partition({"fast": gradtx.sgd(1.0), "slow": gradtx.sgd(0.1)},
      ...                       {"w": "fast", "b": "slow"})
      >>> g = {"w": jnp.ones(2), "b": jnp.ones(2)}
      >>> tx.update(g, tx.init(g))[0]
      {'b': Array([-0.1, -0.1], dtype=float32), 'w': Array([-1., -1.], dtype=float32)}

    References:
      ``optax.partition`` (and its older name ``optax.multi_transform``; same numbers
      and state). See `gradtx.path_rules` to choose groups by parameter path.
    """

    transforms: dict[Any, Transform] = hyper()
    param_labels: Any = static()
    mask_compatible_extra_args: bool = static(default=False, kw_only=True, rule=_checks.flag)

    _check_buffers = False

    def __post_init__(self) -> None:
        transforms = {k: _as_transform(v, "partition") for k, v in dict(self.transforms).items()}
        object.__setattr__(self, "transforms", transforms)
        labels = self.param_labels
        if not callable(labels) and not isinstance(labels, FrozenTree):
            object.__setattr__(self, "param_labels", FrozenTree(labels))
        super().__post_init__()

    def _labels(self, tree: Any) -> Any:
        """The labels of the original leaves (for packed trees too: `masked` maps them
        onto the buffers)."""
        labels = self.param_labels
        if isinstance(labels, FrozenTree):
            return labels.tree
        return labels(tree.shapes() if isinstance(tree, Packed) else tree)

    def _group(self, label: Hashable, labels: Any) -> masked:
        mask = jax.tree.map(lambda x: x == label, labels)
        return masked(
            self.transforms[label], mask, mask_compatible_extra_args=self.mask_compatible_extra_args
        )

    def init(self, params: Params) -> PartitionState:
        labels = self._labels(params)
        unknown = set(jax.tree.leaves(labels)) - set(self.transforms)
        if unknown:
            raise InputError(
                "partition",
                f"parameters are labelled {sorted(map(str, unknown))}, which have no transform; the "
                f"transforms are labelled {sorted(map(str, self.transforms))}. Give a transform for every "
                "label.",
            )
        return PartitionState({k: self._group(k, labels).init(params) for k in self.transforms})

    def _update(self, updates: Updates, state: PartitionState, params: Params | None, ctx: Context):
        labels = self._labels(updates)
        inner_states = {}
        for label in self.transforms:
            updates, inner_states[label] = self._group(label, labels)._apply(
                updates, state.inner_states[label], params, ctx
            )
        return updates, PartitionState(inner_states)

    def _children(self, state: PartitionState) -> list[tuple[Transform, OptState]]:
        return [(tx, state.inner_states[k].inner_state) for k, tx in self.transforms.items()]


def multi_transform(
    transforms: Mapping[Hashable, Any], param_labels: Any, *, mask_compatible_extra_args: bool = False
) -> partition:
    """`partition` under its older optax name.

    Args:
      transforms: a mapping from label to transform.
      param_labels: labels shaped like the parameters, or a function returning them.
      mask_compatible_extra_args: mask the extra arguments as `masked` does.

    Returns:
      ``partition(transforms, param_labels)``.

    Example:
      >>> import gradtx
      >>> type(gradtx.multi_transform({"a": gradtx.sgd(0.1)}, "a")).__name__
      'partition'

    References:
      ``optax.multi_transform``.
    """
    return partition(dict(transforms), param_labels, mask_compatible_extra_args=mask_compatible_extra_args)


@pytree_dataclass
class set_to_zero(Stateless):
    """Replaces every update by zeros (in its dtype).

    Returns:
      A stateless transform.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> gradtx.set_to_zero().update(jnp.ones(2), gradtx.EmptyState())[0]
      Array([0., 0.], dtype=float32)

    References:
      ``optax.set_to_zero`` (same numbers; also on integer and boolean leaves, which
      it leaves as zeros of their dtype).
    """

    _any_dtype = True

    def _transform(self, updates: Updates, params: Params | None, count: jax.Array | None) -> Updates:
        del params, count
        return jax.tree.map(jnp.zeros_like, updates)


def freeze(mask: Any) -> masked:
    """Zeros the updates of the leaves the mask marks True (frozen parameters).

    Args:
      mask: a boolean, or a pytree of booleans shaped like the parameters (or a
        prefix), True for the leaves to freeze.

    Returns:
      ``masked(set_to_zero(), mask)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.freeze({"encoder": True, "head": False})
      >>> g = {"encoder": jnp.ones(2), "head": jnp.ones(2)}
      >>> tx.update(g, tx.init(g))[0]["encoder"]
      Array([0., 0.], dtype=float32)

    References:
      ``optax.freeze``.
    """
    return masked(set_to_zero(), mask)


def selective_transform(optimizer: Any, *, freeze_mask: Any) -> partition:
    """Applies ``optimizer`` only to the parameters not frozen by ``freeze_mask``.

    Unlike ``chain(freeze(mask), optimizer)``, the optimizer keeps no state for frozen
    parameters and never sees them.

    Args:
      optimizer: the transform for the trainable parameters.
      freeze_mask: a boolean or a pytree of booleans, True for frozen leaves.

    Returns:
      ``partition({"train": optimizer, "freeze": set_to_zero()}, labels)``.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> tx = gradtx.selective_transform(gradtx.sgd(0.1), freeze_mask={"a": True, "b": False})
      >>> g = {"a": jnp.ones(1), "b": jnp.ones(1)}
      >>> tx.update(g, tx.init(g))[0]
      {'a': Array([0.], dtype=float32), 'b': Array([-0.1], dtype=float32)}

    References:
      ``optax.selective_transform``.
    """
    labels = jax.tree.map(lambda m: "freeze" if m else "train", freeze_mask)
    return partition({"train": optimizer, "freeze": set_to_zero()}, labels)
