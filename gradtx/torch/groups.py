"""PyTorch's parameter groups: one optimizer per group of parameters, each with its
overrides (`param_groups`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gradtx._checks import InputError
from gradtx.blocks.masking import partition
from gradtx.rules import path_rules


def param_groups(
    optimizer: Callable[..., Any],
    groups: Sequence[dict[str, Any]],
    **defaults: Any,
) -> partition:
    """PyTorch's parameter groups: one optimizer per group, each with its overrides.

    ``torch.optim.AdamW([{"params": body}, {"params": head, "lr": 1e-3}], lr=1e-2)``
    becomes ``param_groups(gradtx.torch.AdamW, [{"params": "body/*"}, {"params": "head/*",
    "lr": 1e-3}], lr=1e-2)``: ``"params"`` names the group's parameters by a glob on the
    ``/``-joined path or a function ``fn(path, leaf) -> bool`` (see `gradtx.path_rules`),
    the other keys override ``defaults``. As in PyTorch each group has its own state.
    A parameter in two groups is an error, as in PyTorch; a parameter in none is an
    error too (PyTorch leaves it untouched: give it a group with ``"lr": 0.0``).

    For a scheduler over every group, give each group's ``lr`` its schedule
    (``"lr": gradtx.torch.StepLR(1e-3, 30)``).

    Args:
      optimizer: a factory of this module (``gradtx.torch.AdamW``, ...).
      groups: dicts with ``"params"`` and any of the factory's arguments.
      **defaults: the factory's arguments for every group.

    Returns:
      A `gradtx.partition` (print it with `gradtx.explain`).

    Example:
      >>> import gradtx, jax.numpy as jnp
      >>> params = {"body": {"w": jnp.ones(2)}, "head": {"w": jnp.ones(2)}}
      >>> opt = gradtx.torch.param_groups(
      ...     gradtx.torch.SGD, [{"params": "body/*"}, {"params": "head/*", "lr": 1.0}], lr=0.1
      ... )
      >>> u, _ = opt.update(params, opt.init(params), params)
      >>> u["body"]["w"], u["head"]["w"]
      (Array([-0.1, -0.1], dtype=float32), Array([-1., -1.], dtype=float32))

    References:
      ``torch.optim.Optimizer``'s ``params`` as a list of dicts.
    """
    rules = []
    for i, group in enumerate(groups):
        if "params" not in group:
            raise InputError("param_groups", f"group {i} has no 'params' (a glob or a function of the path)")
        overrides = {k: v for k, v in group.items() if k != "params"}
        rules.append((group["params"], optimizer(**{**defaults, **overrides})))
    return path_rules(None, rules)
