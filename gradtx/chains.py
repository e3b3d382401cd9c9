"""Chains: transforms applied one after the other, sharing one `Context`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import channel
from gradtx.base import Context, InputError, OptState, Params, Transform, Updates, _as_transform
from gradtx.data import hyper, pytree_dataclass, static


@pytree_dataclass
class Chain(Transform):
    """Transforms applied one after the other; build it with `chain` or `named_chain`.

    Its state is a tuple of the transforms' states (a dict for `named_chain`). Besides
    the updates, the chain carries a channel of named slots from block to block
    (`gradtx.channel`): the gradient statistics of a block come from the input of the
    most recent `gradtx.momentum` before it, also across nested chains, so
    ``chain(a, chain(b, c))`` behaves like ``chain(a, b, c)``.

    Attributes:
      transforms: the transforms, in order.
      names: the names given by `named_chain`, or None.
      label: the optimizer this chain is (``"adam"``), shown by ``repr``; or None.
      readout_names: ``("transform.field", "name")`` pairs: the names under which
        `hyperparams` reports its blocks' fields (``scale_by_rms.decay`` is adam's ``b2``).
      complex_as_real: the blocks see each complex leaf as a real array with a last axis
        of 2 (real, imaginary), as PyTorch's optimizers see one (``torch.view_as_real``):
        every entry has its own statistics, and the updates come back complex. optax's
        convention (False) keeps complex leaves: a second moment is ``|g|^2`` per entry.
    """

    transforms: tuple[Transform, ...] = hyper()
    names: tuple[str, ...] | None = static(default=None)
    label: str | None = static(default=None)
    readout_names: tuple[tuple[str, str], ...] = static(default=())
    complex_as_real: bool = static(default=False, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_complements", {})

    def init(self, params: Params) -> OptState:
        if self.complex_as_real:
            params = _as_real(params)
        published = channel.outside()
        states = []
        for tx in self.transforms:
            with channel.published_before(published):
                states.append(tx.init(params))
            published |= channel.publishes(tx)
        states = tuple(states)
        return states if self.names is None else dict(zip(self.names, states, strict=True))

    def _name(self) -> str:
        return self.label or "chain"

    def _published(self) -> frozenset[str]:
        return frozenset().union(*(channel.publishes(tx) for tx in self.transforms))

    def _apply(self, updates: Updates, state: OptState, params: Params | None, ctx: Context):
        if self.complex_as_real and _has_complex(updates):
            out, new_state = self._apply_blocks(_as_real(updates), state, _as_real(params), ctx)
            return _as_complex_like(updates, out), new_state
        return self._apply_blocks(updates, state, params, ctx)

    def _apply_blocks(self, updates: Updates, state: OptState, params: Params | None, ctx: Context):
        name = self._name()
        if self.names is None:
            if not isinstance(state, tuple) or len(state) != len(self.transforms):
                raise InputError(
                    name,
                    f"expected a state tuple of {len(self.transforms)} entries (one per "
                    f"transform), got {_describe(state)}. Use the state this optimizer's init returned.",
                )
            states = list(state)
        else:
            if not isinstance(state, dict) or set(state) != set(self.names):
                raise InputError(
                    name,
                    f"expected a state dict with keys {list(self.names)}, got "
                    f"{_describe(state)}. Use the state this optimizer's init returned.",
                )
            states = [state[n] for n in self.names]
        new_states = []
        for tx, s in zip(self.transforms, states, strict=True):
            try:
                updates, s = tx._apply(updates, s, params, ctx)
            except InputError as error:
                # An optimizer names itself before the block the user never wrote.
                if self.label is None:
                    raise
                raise error.within(self.label) from None
            new_states.append(s)
        if self.names is None:
            return updates, tuple(new_states)
        return updates, dict(zip(self.names, new_states, strict=True))

    def __repr__(self) -> str:
        lines = []
        for i, tx in enumerate(self.transforms):
            body = "\n    ".join(repr(tx).splitlines())
            prefix = f"{self.names[i]!r}: " if self.names is not None else ""
            lines.append(f"    {prefix}{body},")
        head = "named_chain(" if self.names is not None else "chain("
        if self.label:
            head = f"{self.label} = {head}"
        return head + "\n" + "\n".join(lines) + "\n)"


def _is_complex(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray)) and jnp.iscomplexobj(x)


def _has_complex(tree: Any) -> bool:
    return any(_is_complex(leaf) for leaf in jax.tree.leaves(tree))


def _as_real(tree: Any) -> Any:
    """Each complex array leaf as real pairs on a new last axis (``torch.view_as_real``)."""
    return jax.tree.map(lambda x: jnp.stack([x.real, x.imag], axis=-1) if _is_complex(x) else x, tree)


def _as_complex_like(like: Any, tree: Any) -> Any:
    """``tree``'s leaves back to complex where ``like``'s leaves are complex."""

    def back(original: Any, x: Any) -> Any:
        return jax.lax.complex(x[..., 0], x[..., 1]) if _is_complex(original) else x

    return jax.tree.map(back, like, tree, is_leaf=lambda x: x is None)


def _describe(state: Any) -> str:
    if isinstance(state, tuple):
        return f"a {type(state).__name__} of {len(state)} entries"
    return f"a {type(state).__name__}"


def chain(*transforms: Any) -> Chain:
    """Applies ``transforms`` one after the other.

    Any object with ``init`` and ``update`` (an optax transformation, say) may appear;
    it is held as static data.

    Args:
      *transforms: the transforms, in order.

    Returns:
      A `Chain` whose state is the tuple of the transforms' states.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.chain(gradtx.clip_by_global_norm(2.5), gradtx.sgd(0.5))
      >>> opt.update(jnp.array([3.0, 4.0]), opt.init(jnp.zeros(2)))[0]  # norm 5 -> 2.5, then -0.5 *
      Array([-0.75, -1.  ], dtype=float32)
    """
    return Chain(tuple(_as_transform(tx, "chain") for tx in transforms))


def named_chain(*named_transforms: tuple[str, Any]) -> Chain:
    """Like `chain`, with each transform named; its state is a dict keyed by name.

    Args:
      *named_transforms: ``(name, transform)`` pairs; names must be unique.

    Returns:
      A `Chain` whose state is ``{name: state}``.
    """
    names = tuple(name for name, _ in named_transforms)
    if len(set(names)) != len(names):
        raise InputError("named_chain", f"names must be unique, got {list(names)}")
    transforms = tuple(_as_transform(tx, "named_chain") for _, tx in named_transforms)
    return Chain(transforms, names=names)


def labelled(
    label: str,
    *transforms: Any,
    readout_names: dict[str, str] | None = None,
    complex_as_real: bool = False,
) -> Chain:
    """A `chain` that ``repr`` shows as ``label = chain(...)``; used by the optimizers.

    ``readout_names`` maps ``"transform.field"`` to the optimizer's own argument name,
    for `hyperparams`; ``""`` leaves the field out (a block that reads another block's
    argument again, such as the learning rate of a weight decay block).
    ``complex_as_real``: see `Chain` (PyTorch's presets).
    """
    blocks = tuple(_as_transform(tx, label) for tx in transforms)
    if readout_names:
        known = _readout_keys(blocks)
        unknown = sorted(set(readout_names) - known)
        if unknown:
            raise TypeError(
                f"labelled {label}: readout_names {unknown} name no field of its blocks; the "
                f"names it can rename are {sorted(known)}"
            )
    return Chain(
        blocks,
        label=label,
        readout_names=tuple(sorted((readout_names or {}).items())),
        complex_as_real=complex_as_real,
    )


def present_readout_names(table: dict[str, str], transforms: Any) -> dict[str, str]:
    """The entries of a preset's ``readout_names`` table whose block is among
    ``transforms`` (a preset that adds a block only for some arguments keeps one table
    for all of them). A key that names no field of any gradtx block raises `TypeError`,
    so a mistyped name fails when the preset is built, not silently."""
    present = _readout_keys(tuple(_as_transform(tx, "readout_names") for tx in transforms))
    absent = [key for key in table if key not in present]
    fields = _block_fields() if absent else set()
    unknown = sorted(key for key in absent if key not in fields)
    if unknown:
        raise TypeError(f"readout_names {unknown} name no field of a gradtx block")
    return {key: name for key, name in table.items() if key in present}


def _block_fields() -> set[str]:
    """``"block.field"`` for every hyperparameter field of every gradtx block class."""
    found: set[str] = set()
    stack = list(Transform.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        found |= {f"{cls.__name__}.{field}" for field in getattr(cls, "_hyper_fields", ())}
    return found


def _readout_keys(transforms: tuple[Transform, ...]) -> set[str]:
    """Every ``"transform.field"`` that `gradtx.hyperparams` can report for the blocks of
    a chain, before the chain's own renames: the keys ``readout_names`` may rename."""
    keys: set[str] = set()
    for tx in transforms:
        if isinstance(tx, Chain):
            renames = dict(tx.readout_names)
            for key in _readout_keys(tx.transforms):
                new = renames.get(key)
                if new is None:
                    keys.add(key)
                elif new:
                    keys.add(f"{tx.label or 'chain'}.{new}")
            continue
        inside = tx._inside()
        keys |= _readout_keys(tuple(inside))
        keys |= {
            f"{type(tx).__name__}.{field}"
            for field in tx._hyper_fields
            if not any(getattr(tx, field) is t for t in inside)
        }
    return keys
