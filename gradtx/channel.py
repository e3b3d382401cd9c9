"""The channel: what a `chain` carries from block to block besides the updates.

A block of a chain sees the updates the block before it returned. Some maths needs
more: Adam's second moment must read the gradient its first moment saw, not the first
moment; AdaBelief's needs the first moment itself; Lion the first moment of the step
before. The blocks that compute such a tree *publish* it under a name (a *slot*), and
the blocks after them *read* it. Every slot is listed in `SLOTS` with its meaning; a
block declares the slots it reads and publishes (``slots_read``, ``slots_published``,
class attributes), and the `Context` refuses a read or a publication that a block did
not declare.

The rules, in one place:

- **Scope.** A slot is visible to every block after its publisher in the same chain,
  also inside nested chains (``chain(a, chain(b, c))`` is ``chain(a, b, c)``) and
  inside wrappers. What a block inside a wrapper publishes stays inside that wrapper.
- **Wrappers carry every slot**, transformed as they transform the updates
  (`Context.carried`): `gradtx.masked` masks them, `gradtx.flatten` flattens them,
  packed parameters unpacked are unpacked slots, `gradtx.conditionally_transform` and
  `gradtx.apply_if_finite` pass them into their branch. A block inside a wrapper
  reads exactly what it reads outside it.
  `gradtx.MultiSteps` accumulates the slots its inner transform reads over the
  micro-batches exactly as it accumulates the updates (their mean, or weighted sum), in
  its state; ``init`` learns which slots the chain publishes before it (`outside`).
- **A wrapper that cannot carry a slot withholds it** (`Context.withholding`): a block
  that reads it then raises, naming the slot and why.
- **Nothing is read by accident.** A *required* read (AdaBelief's first moment) of a
  slot nothing published raises at trace time, naming the slot and the block. A read
  *with a fallback* (the gradient for `gradtx.scale_by_rms`) takes the block's own
  input when no block before it published the slot anywhere up the chain: that is
  optax's meaning of ``chain(trace(...), scale_by_rms(...))``, decided by where the
  blocks sit in the chain, never by which wrapper a block sits in.

A transform called through its public ``update`` starts with an empty channel; an
optax wrapper around a gradtx block (``optax.masked(gradtx.scale_by_rms(...))``) so
cuts the channel, as it cannot know of it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from gradtx._checks import InputError

Updates = Any

SLOTS: dict[str, str] = {
    "gradient": (
        "the gradient the chain's statistics read: the input of the most recent gradtx.momentum, g_t"
    ),
    "first_moment": "the first moment gradtx.momentum just computed, m_t (not debiased)",
    "previous_first_moment": "the first moment before this step's, m_{t-1} (not debiased)",
}


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def _owner(block: Any) -> str:
    return type(block).__name__


@dataclasses.dataclass
class Context:
    """The channel one run of a chain carries: the published slots and optax's extra
    keyword arguments.

    Blocks use three methods: `publish` (a block that computes a slot), `read` (a block
    that needs one) and, for wrappers, `carried` / `withholding` to hand the channel to
    the transform inside them. See the module's docstring for the rules.

    Attributes:
      extra: the keyword arguments passed to ``update`` (optax's "extra args").
      slots: the published slots, by name (see `SLOTS`); read them with `read` (a
        block) or `value` (a wrapper).
      withheld: slots a wrapper could not carry, with the reason, by name.
    """

    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    slots: dict[str, Updates] = dataclasses.field(default_factory=dict)
    withheld: dict[str, str] = dataclasses.field(default_factory=dict)

    def publish(self, block: Any, **values: Updates) -> None:
        """Makes ``values`` (slot name -> tree shaped like the updates) visible to the
        blocks after ``block``; the slots must be in ``block``'s ``slots_published``."""
        for name, value in values.items():
            if name not in type(block).slots_published:
                raise TypeError(
                    f"{_owner(block)} publishes the slot {name!r} without declaring it: add it to "
                    f"{_owner(block)}.slots_published (the slots are listed in gradtx.channel.SLOTS)."
                )
            self.slots[name] = value
            self.withheld.pop(name, None)

    def read(self, block: Any, name: str, fallback: Any = REQUIRED) -> Updates:
        """The tree published under ``name``; ``fallback`` when no block before ``block``
        published it (``REQUIRED``: raise instead).

        Raises:
          InputError: naming the slot and ``block`` when the slot is withheld by a
            wrapper, or required and published by nothing before the block.
        """
        if name not in type(block).slots_read:
            raise TypeError(
                f"{_owner(block)} reads the slot {name!r} without declaring it: add it to "
                f"{_owner(block)}.slots_read (the slots are listed in gradtx.channel.SLOTS)."
            )
        if name in self.slots:
            return self.value(name)
        if name in self.withheld:
            raise InputError(
                _owner(block), f"reads the slot {name!r} ({SLOTS[name]}), which {self.withheld[name]}."
            )
        if fallback is REQUIRED:
            publishers = ", ".join(f"gradtx.{p}" for p in publishers_of(name)) or "nothing"
            raise InputError(
                _owner(block),
                f"reads the slot {name!r} ({SLOTS[name]}), which no block before it in the chain "
                f"publishes. Put a block that publishes it ({publishers}) before it in the same "
                "chain (a block inside a gradtx wrapper still sees it; one inside an optax "
                "wrapper, or called through its own update, does not).",
            )
        return fallback

    def value(self, name: str) -> Updates:
        """The tree published under ``name`` (which must be), transformed by the wrappers
        it crossed; for a wrapper that carries a slot itself (`gradtx.MultiSteps`).
        Blocks use `read`."""
        value = _force(self.slots[name])
        self.slots[name] = value
        return value

    def carried(
        self, transform: Callable[[Updates], Updates], extra: dict[str, Any] | None = None
    ) -> Context:
        """The channel for the transform inside a wrapper: every slot passed through
        ``transform``, the function the wrapper applies to the updates (masking,
        flattening, unpacking, or the identity), when a block inside first reads it (a
        slot nobody inside reads costs nothing). Slots published inside stay inside.

        Args:
          transform: maps a tree shaped like the updates outside to one shaped like the
            updates inside.
          extra: the extra keyword arguments inside (default: those outside).
        """
        return Context(
            extra=dict(self.extra if extra is None else extra),
            slots={name: _Pending(value, transform) for name, value in self.slots.items()},
            withheld=dict(self.withheld),
        )

    def inside(self) -> Context:
        """The channel for the transform inside a wrapper that hands it the updates as
        they are (a condition, a selection, a measurement): the same slots; what it
        publishes stays inside (values traced in a ``lax.cond`` branch must not leak)."""
        return Context(extra=dict(self.extra), slots=dict(self.slots), withheld=dict(self.withheld))

    def withholding(
        self, reason: str, extra: dict[str, Any] | None = None, kept: dict[str, Updates] | None = None
    ) -> Context:
        """The channel for the transform inside a wrapper that cannot carry the slots as
        they are: each published slot is withheld with ``reason`` (a block that reads one
        raises, citing it) but those in ``kept``, which the wrapper hands over itself;
        slots published inside work as usual."""
        kept = kept or {}
        withheld = dict(self.withheld)
        withheld.update({name: reason for name in self.slots if name not in kept})
        return Context(
            extra=dict(self.extra if extra is None else extra), slots=dict(kept), withheld=withheld
        )


@dataclasses.dataclass(frozen=True)
class _Pending:
    """A slot a wrapper carries, not transformed until a block inside reads it."""

    source: Any
    transform: Callable[[Updates], Updates]


def _force(value: Any) -> Updates:
    return value.transform(_force(value.source)) if isinstance(value, _Pending) else value


_PUBLISHERS: dict[str, list[str]] = {}


def register(cls: type) -> None:
    """Records which block classes publish which slots (for error messages and the
    docs); called for every transform class as it is defined."""
    for name in (*getattr(cls, "slots_read", ()), *getattr(cls, "slots_published", ())):
        if name not in SLOTS:
            raise TypeError(
                f"{cls.__name__} declares the slot {name!r}, which gradtx.channel.SLOTS does not "
                f"list; the slots are {sorted(SLOTS)}."
            )
    for name in getattr(cls, "slots_published", ()):
        if cls.__name__ not in _PUBLISHERS.setdefault(name, []):
            _PUBLISHERS[name].append(cls.__name__)


def publishers_of(name: str) -> list[str]:
    """The names of the block classes that publish slot ``name``."""
    return list(_PUBLISHERS.get(name, []))


def publishes(tx: Any) -> frozenset[str]:
    """The slots ``tx`` makes visible to the blocks after it: a chain's blocks' (nested
    chains included), a block's own; what is published inside a wrapper stays there."""
    published = getattr(tx, "_published", None)
    return published() if published is not None else frozenset()


def reads(tx: Any) -> frozenset[str]:
    """Every slot that ``tx`` or a transform inside it (at any depth) reads."""
    inside = getattr(tx, "_inside", None)
    if inside is None:
        return frozenset()
    return frozenset(getattr(type(tx), "slots_read", ())).union(*(reads(t) for t in inside()))


_OUTSIDE: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "gradtx_published_outside", default=frozenset()
)


def outside() -> frozenset[str]:
    """While a chain's ``init`` runs a block's ``init``: the slots the blocks before it
    publish (for a wrapper that must keep state for them, as `gradtx.MultiSteps`)."""
    return _OUTSIDE.get()


@contextlib.contextmanager
def published_before(names: frozenset[str]) -> Iterator[None]:
    """Sets `outside` for the ``init`` calls inside the block (per thread and task)."""
    token = _OUTSIDE.set(names)
    try:
        yield
    finally:
        _OUTSIDE.reset(token)
