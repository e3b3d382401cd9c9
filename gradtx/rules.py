"""Parameter groups by path rules: settings chosen by where a parameter sits in the tree.

``path_rules(default, [(pattern, settings), ...])`` gives every parameter the optimizer
of the one rule whose pattern matches its path, or ``default``. ``settings`` is a dict of
hyperparameter overrides, named as `gradtx.hyperparams` reports them
(``{"weight_decay": 0.0}``, ``{"learning_rate": 1e-4}``), or a whole transform
(``gradtx.set_to_zero()`` freezes). Unlike first-match rule lists, a parameter matched by
two rules is an error, as is one matched by none when there is no default, and each
error names the paths. `explain` prints which rule each parameter got.

Paths are the keys from the root joined by ``/``: ``"encoder/layers/0/kernel"`` for
dicts, lists, equinox modules and flax nnx states alike (nnx's ``.value`` is not part
of the path). Patterns are shell-style globs (``*`` also crosses ``/``) or functions
``fn(path, leaf) -> bool``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._checks import InputError
from gradtx.base import Transform, _as_transform
from gradtx.blocks.masking import partition
from gradtx.chains import Chain
from gradtx.readout import hyperparams

PyTree = Any
Pattern = str | Callable[[str, Any], bool]


def _is_variable(x: Any) -> bool:
    # A flax nnx Variable holds its array under .value; rules see the variable's path.
    return any(c.__name__ == "Variable" and c.__module__.startswith("flax") for c in type(x).__mro__)


def _key_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def leaf_paths(tree: PyTree) -> tuple[list[tuple[str, Any]], Any]:
    """``[(path, leaf), ...]`` and the treedef, flax Variables counted as leaves."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_variable)
    return [("/".join(_key_name(k) for k in path), leaf) for path, leaf in leaves], treedef


def _matches(pattern: Pattern, path: str, leaf: Any) -> bool:
    if callable(pattern):
        return bool(pattern(path, leaf))
    return fnmatch.fnmatchcase(path, pattern)


def _show(pattern: Pattern) -> str:
    return repr(pattern) if isinstance(pattern, str) else getattr(pattern, "__name__", repr(pattern))


@dataclasses.dataclass(frozen=True)
class PathLabels:
    """The label function of `path_rules`: ``"default"`` or ``"rule<i>"`` per leaf.

    Hashable by value, so two optimizers built from the same rules are equal and a
    jitted step taking the optimizer as data does not recompile.
    """

    patterns: tuple[Pattern, ...]
    has_default: bool

    def label_of(self, path: str, leaf: Any) -> str:
        """The label for one parameter; raises if no rule or several rules match."""
        hits = [i for i, p in enumerate(self.patterns) if _matches(p, path, leaf)]
        if len(hits) > 1:
            raise ValueError(
                f"path_rules: parameter {path!r} matches {len(hits)} rules: "
                + ", ".join(f"rule {i} ({_show(self.patterns[i])})" for i in hits)
                + ". Make the patterns disjoint so each parameter has one rule."
            )
        if hits:
            return f"rule{hits[0]}"
        if not self.has_default:
            raise InputError(
                "path_rules",
                f"parameter {path!r} matches no rule and there is no default; add a rule for it or give a "
                "default optimizer.",
            )
        return "default"

    def __call__(self, tree: PyTree) -> PyTree:
        """The labels of ``tree``'s leaves (`partition` passes packed parameters' shapes)."""
        leaves, treedef = leaf_paths(tree)
        problems, labels = [], []
        for path, leaf in leaves:
            try:
                labels.append(self.label_of(path, leaf))
            except ValueError as error:
                problems.append(str(error).removeprefix("path_rules: "))
        if problems:
            raise ValueError(
                "path_rules: " + "\n  ".join([f"{len(problems)} parameter(s) wrong:", *problems])
            )
        return jax.tree.unflatten(treedef, labels)


def override(tx: Any, **values: Any) -> Transform:
    """``tx`` with some hyperparameters replaced, named as `gradtx.hyperparams` names
    them (``learning_rate``, ``b2`` for adam's second-moment decay, ``weight_decay``...),
    and state dtypes by their blocks' field names (``mu_dtype``, ``nu_dtype``,
    ``accumulator_dtype``, ``dtype_momentum``: ``{"mu_dtype": "8bit", "nu_dtype": "8bit"}``
    stores a matched parameter's Adam moments in 8 bits).

    Args:
      tx: a gradtx transform or optimizer.
      **values: the new values (numbers or schedules; dtypes for the state dtypes).

    Returns:
      The same chain of blocks with those values.

    Example:
      >>> import gradtx
      >>> gradtx.rules.override(gradtx.adamw(1e-3), weight_decay=0.0).transforms[2].weight_decay
      0.0
    """
    found: set[str] = set()

    def visit(t: Transform, renames: dict[str, str]) -> Transform:
        if isinstance(t, Chain):
            inner = {**renames, **dict(t.readout_names)}
            return dataclasses.replace(t, transforms=tuple(visit(c, inner) for c in t.transforms))
        changes = {}
        for field in t._hyper_fields:
            value = getattr(t, field)
            if isinstance(value, Transform):  # a wrapper's inner transform
                changes[field] = visit(value, renames)
                continue
            name = renames.get(f"{type(t).__name__}.{field}", field)
            if name in values:
                changes[field] = values[name]
                found.add(name)
        for field in t._static_fields:  # the state dtypes: where the buffers are stored
            if field in values and t._rules.get(field) is _checks.state_dtype:
                changes[field] = values[field]
                found.add(field)
        return dataclasses.replace(t, **changes) if changes else t  # type: ignore[type-var]

    result = visit(_as_transform(tx, "override"), {})
    missing = set(values) - found
    if missing:
        known = sorted(k for k in hyperparams(result, result.init(jnp.zeros([]))) if k != "step")
        raise InputError(
            "path_rules", f"{sorted(missing)} are not hyperparameters of {_label(tx)}; it has {known}."
        )
    return result


def _label(tx: Any) -> str:
    return getattr(tx, "label", None) or type(tx).__name__


def path_rules(default: Any, rules: Sequence[tuple[Pattern, Any]]) -> partition:
    """Chooses each parameter's optimizer by the rule its path matches.

    Args:
      default: the optimizer of parameters no rule matches, or None to require that
        every parameter matches a rule.
      rules: ``(pattern, settings)`` pairs. A pattern is a glob on the ``/``-joined
        path (``"*bias"``, ``"encoder/*"``) or ``fn(path, leaf) -> bool``. Settings are
        a dict of overrides of ``default`` (hyperparameters named as
        `gradtx.hyperparams` reports them, and state dtypes such as ``mu_dtype``: see
        `gradtx.rules.override`), or a transform.

    Returns:
      A `gradtx.partition` labelled ``"default"``, ``"rule0"``, ``"rule1"``, ...;
      ``init`` and ``update`` raise a ValueError naming every parameter that matches
      two rules, or none without a default.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> params = {"embed": jnp.ones(2), "dense": {"kernel": jnp.ones(2), "bias": jnp.ones(2)}}
      >>> opt = gradtx.path_rules(
      ...     gradtx.adamw(1e-3, weight_decay=0.1),
      ...     [("*bias", {"weight_decay": 0.0}), ("embed", {"learning_rate": 1e-4})],
      ... )
      >>> print(gradtx.explain(opt, params))
      dense/bias    rule 0 '*bias'  learning_rate=0.001 weight_decay=0.0
      dense/kernel  default         learning_rate=0.001 weight_decay=0.1
      embed         rule 1 'embed'  learning_rate=0.0001 weight_decay=0.1

    References:
      PyTorch's parameter groups, Keras's ``exclude_from_weight_decay``, optax's
      ``partition``; gradtx adds the exactly-one-rule check and `explain`.
    """
    if default is None and not rules:
        raise InputError("path_rules", "give a default optimizer or at least one rule")
    transforms: dict[str, Transform] = {}
    if default is not None:
        transforms["default"] = _as_transform(default, "path_rules")
    for i, (pattern, settings) in enumerate(rules):
        if not isinstance(pattern, str) and not callable(pattern):
            raise TypeError(
                f"path_rules: rule {i}'s pattern must be a glob string or a function, got {pattern!r}"
            )
        if isinstance(settings, dict):
            if default is None:
                raise InputError("path_rules", f"rule {i} overrides hyperparameters, which needs a default")
            transforms[f"rule{i}"] = override(default, **settings)
        else:
            transforms[f"rule{i}"] = _as_transform(settings, "path_rules")
    labels = PathLabels(tuple(p for p, _ in rules), default is not None)
    return partition(transforms, labels)


def explain(optimizer: Any, params: PyTree) -> str:
    """One line per parameter: its path, the rule that matched, and its settings.

    For `gradtx.contrib.muon`, each parameter's matrix shape or AdamW
    (`gradtx.contrib.explain_matrices`); for `adam_mini`, its number of second moments
    (`explain_blocks`).

    Args:
      optimizer: a transform built by `path_rules`, `gradtx.contrib.muon` or `adam_mini`.
      params: the parameters (or their shapes).

    Returns:
      The table, also printable; raises like `path_rules` on a missing or doubled match.

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> opt = gradtx.path_rules(gradtx.sgd(0.1), [("head/*", {"learning_rate": 1.0})])
      >>> print(gradtx.explain(opt, {"head": {"w": jnp.ones(1)}, "body": jnp.ones(1)}))
      body    default        learning_rate=0.1
      head/w  rule 0 'head/*'  learning_rate=1.0

    References:
      gradtx's own; see `path_rules`.
    """
    from gradtx.blocks.structured import explain_blocks, scale_by_block_rms
    from gradtx.contrib.muon import _MuonLabels, explain_matrices

    labeler = getattr(optimizer, "param_labels", None)
    if isinstance(optimizer, partition) and isinstance(labeler, _MuonLabels):
        return explain_matrices(optimizer, params)
    if any(isinstance(b, scale_by_block_rms) for b in getattr(optimizer, "transforms", ())):
        return explain_blocks(optimizer, params)
    if not isinstance(optimizer, partition) or not isinstance(labeler, PathLabels):
        raise TypeError(
            "explain: expected an optimizer built by gradtx.path_rules, gradtx.contrib.muon "
            "or gradtx.adam_mini"
        )
    values = {}
    for label, tx in optimizer.transforms.items():
        found = hyperparams(tx, tx.init(jnp.zeros([])))
        values[label] = {k: _number(v) for k, v in found.items() if k != "step"}
    # Show the settings that tell the groups apart.
    keys = sorted({k for v in values.values() for k in v})
    keys = [k for k in keys if len({v[k] for v in values.values() if k in v}) > 1] or keys
    settings = {}
    for label, tx in optimizer.transforms.items():
        shown = " ".join(f"{k}={values[label][k]}" for k in keys if k in values[label])
        settings[label] = shown or _label(tx)
    rows = []
    for path, leaf in leaf_paths(params)[0]:
        label = labeler.label_of(path, leaf)
        rule = (
            "default" if label == "default" else f"rule {label[4:]} {_show(labeler.patterns[int(label[4:])])}"
        )
        rows.append((path, rule, settings[label]))
    rows.sort()
    width = [max(len(r[i]) for r in rows) for i in range(2)] if rows else [0, 0]
    return "\n".join(f"{p:<{width[0]}}  {r:<{width[1]}}  {s}".rstrip() for p, r, s in rows)


def _number(value: Any) -> str:
    v = float(jnp.asarray(value))
    return repr(float(f"{v:.6g}"))
