"""The readout: the step count and every hyperparameter value an optimizer used, and the
bytes its state takes."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from gradtx._quantized import is_stored
from gradtx._tree import state_owners
from gradtx.base import OptState, Transform, _as_transform, _count_of, foreign
from gradtx.chains import Chain


def hyperparams(optimizer: Any, state: OptState) -> dict[str, jax.Array]:
    """The step count and every hyperparameter value the last update used.

    Works on any gradtx transform or chain, inside or outside ``jit``. Hyperparameters
    given as schedules are evaluated at the step the last update used (before the first
    update: the step the first update will use). Names are the transforms' argument
    names; a name used by more than one transform in a chain is qualified as
    ``"transform.name"`` (and ``"transform[i].name"`` if that is still ambiguous).

    An optax transformation (alone, or inside a gradtx chain) keeps its numbers in
    closures gradtx cannot read: one built with ``optax.inject_hyperparams`` is reported
    from its state's ``hyperparams``; any other is left out with a warning that names it.

    Args:
      optimizer: the transform (gradtx's, or an optax transformation).
      state: its state.

    Returns:
      A dict with ``"step"`` (the number of updates applied, when the optimizer counts
      them) and one entry per hyperparameter.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.adam(1e-3)
      >>> hp = gradtx.hyperparams(opt, opt.init(jnp.zeros(3)))
      >>> int(hp["step"]), round(float(hp["learning_rate"]), 6), round(float(hp["b2"]), 6)
      (0, 0.001, 0.999)
    """
    entries: list[tuple[str, str, Any]] = []
    counts: list[jax.Array] = []
    unread: list[str] = []
    optimizer = _as_transform(optimizer, "hyperparams")

    def visit(tx: Transform, st: Any, where: str = "the optimizer") -> None:
        if isinstance(tx, Chain):
            sts = st if tx.names is None else [st[n] for n in tx.names]
            start = len(entries)
            for i, (child, child_state) in enumerate(zip(tx.transforms, sts, strict=True)):
                visit(child, child_state, f"{tx.label or 'chain'}[{i}]")
            renames = dict(tx.readout_names)
            own = _arguments(tx.label)
            kept = entries[:start]
            for tname, key, value in entries[start:]:
                new = renames.get(f"{tname}.{key}")
                if new is None and (own is None or key in own):
                    kept.append((tname, key, value))
                elif new:  # "" leaves out a block's copy of another block's argument
                    kept.append((tx.label or "chain", new, value))
            entries[:] = kept
            return
        if isinstance(tx, foreign):
            injected = getattr(st, "hyperparams", None)
            if isinstance(injected, dict):  # optax.inject_hyperparams
                count = _count_of(st)
                if count is not None:
                    counts.append(count)
                entries.extend(("optax", key, jnp.asarray(value)) for key, value in injected.items())
            else:
                unread.append(where)
            return
        for child, child_state in tx._children(st):
            visit(child, child_state)
        count = _count_of(st)
        if count is not None:
            counts.append(count)
        for key, value in tx._hyperparams(st).items():
            entries.append((type(tx).__name__, key, value))

    if isinstance(optimizer, foreign) and not isinstance(getattr(state, "hyperparams", None), dict):
        raise TypeError(
            f"hyperparams: {optimizer.transformation!r} is an optax transformation (such as "
            "optax.chain(...)): its members and numbers live in closures that gradtx cannot "
            "read. Chain with gradtx.chain instead (it takes optax and gradtx members alike "
            "and reports the gradtx ones), or build it with optax.inject_hyperparams."
        )
    visit(optimizer, state)
    if unread:
        warnings.warn(
            f"hyperparams: left out {', '.join(unread)}, an optax transformation: it keeps "
            "its hyperparameters in closures, which gradtx cannot read. Build them with "
            "optax.inject_hyperparams "
            "(or use the gradtx transform of the same name) to have them reported.",
            stacklevel=2,
        )
    result: dict[str, jax.Array] = {}
    if counts:
        result["step"] = counts[0]
    by_name: dict[str, int] = {}
    by_qualified: dict[str, int] = {}
    for tname, key, _ in entries:
        by_name[key] = by_name.get(key, 0) + 1
        by_qualified[f"{tname}.{key}"] = by_qualified.get(f"{tname}.{key}", 0) + 1
    seen: dict[str, int] = {}
    for tname, key, value in entries:
        qualified = f"{tname}.{key}"
        if by_name[key] == 1:
            result[key] = value
        elif by_qualified[qualified] == 1:
            result[qualified] = value
        else:
            i = seen.get(qualified, 0)
            seen[qualified] = i + 1
            result[f"{tname}[{i}].{key}"] = value
    return result


@functools.cache
def _arguments(label: str | None) -> frozenset[str] | None:
    """The argument names of the factory a labelled chain comes from (``"adam"``,
    ``"torch.AdamW"``), or None when the label names no gradtx factory: the readout of
    an optimizer reports only the names its user passed, not its blocks' own."""
    if label is None:
        return None
    import gradtx

    module, _, name = label.rpartition(".")
    namespace = getattr(gradtx, module, None) if module else gradtx
    factory = getattr(namespace, name, None)
    if not callable(factory):
        return None
    try:
        return frozenset(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class StateBytes:
    """What an optimizer's state takes in memory: the answer of `state_bytes`.

    Attributes:
      total: bytes of the whole state.
      parameters: the number of parameter values (the sum of the leaves' sizes).
      per_parameter: ``total / parameters``.
      leaves: for each parameter leaf (its path, as ``jax.tree_util.keystr`` writes
        it), the bytes of the state buffers that mirror it, across every block.
      shared: bytes not tied to one leaf (step counts, tree-wide scalars).
    """

    total: int
    parameters: int
    per_parameter: float
    leaves: dict[str, int]
    shared: int

    def __str__(self) -> str:
        width = max([len(k) for k in self.leaves] + [9])
        lines = [f"{'leaf':<{width}}  state bytes", f"{'-' * width}  -----------"]
        lines += [f"{k:<{width}}  {v:>11,}" for k, v in self.leaves.items()]
        lines.append(f"{'(shared)':<{width}}  {self.shared:>11,}")
        lines.append(
            f"total {self.total:,} bytes for {self.parameters:,} parameters: "
            f"{self.per_parameter:.3f} bytes per parameter"
        )
        return "\n".join(lines)


def state_bytes(optimizer: Any, params: Any) -> StateBytes:
    """The bytes of ``optimizer``'s state for ``params``, in all and per parameter leaf,
    without allocating it (``jax.eval_shape`` of ``init``).

    Quantized buffers (`gradtx.quantized`) count what they store: their codes and
    block scales. A state buffer is attributed to the parameter leaf whose path ends
    its own path (the mirrored trees of every block); the rest (step counts, scalars)
    is ``shared``.

    Args:
      optimizer: a gradtx (or optax) transformation.
      params: the parameters, or ``jax.ShapeDtypeStruct`` leaves standing for them.

    Returns:
      A `StateBytes`; ``print`` it for a table.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> params = {"w": jnp.zeros((256, 256)), "b": jnp.zeros(256)}
      >>> gradtx.state_bytes(gradtx.adamw(1e-3), params).per_parameter  # two float32 moments
      8.000...
      >>> adamw8 = gradtx.adamw(1e-3, mu_dtype="8bit", nu_dtype="8bit")
      >>> gradtx.state_bytes(adamw8, params).leaves["['w']"] / 256**2  # codes + scales
      2.03125

    References:
      The memory a PyTorch user reads from ``torch.cuda.memory_allocated`` around
      ``optimizer.step()``; here computed from shapes, on any backend.
    """
    state = jax.eval_shape(optimizer.init, params)
    param_leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    labels = [_label(tuple(path)) for path, _ in param_leaves]
    count = sum(int(math.prod(jnp.shape(x))) for _, x in param_leaves)
    leaves = dict.fromkeys(labels, 0)
    shared = 0
    total = 0

    def size(x: Any) -> int:
        if is_stored(x):
            return x.nbytes
        return int(math.prod(jnp.shape(x)) * jnp.dtype(x.dtype).itemsize) if hasattr(x, "dtype") else 0

    buffers, owners = state_owners(state, params)
    for (_, x), owner in zip(buffers, owners, strict=True):
        nbytes = size(x)
        total += nbytes
        if owner is None:
            shared += nbytes
        else:
            leaves[labels[owner]] += nbytes
    return StateBytes(total, count, total / max(count, 1), leaves, shared)


def _label(path: tuple[Any, ...]) -> str:
    return jax.tree_util.keystr(path) or "(params)"
