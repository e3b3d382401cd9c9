"""optax.contrib's optimizers and blocks, with optax's names, arguments and numbers.

``import gradtx as optax; optax.contrib.muon(...)`` works as in optax. Each optimizer is a
`gradtx.chain` of blocks; the blocks that must stay one piece say why in their
docstrings.
"""

from gradtx.contrib.adaptive import (
    AddSlowMomentumState,
    MadgradState,
    ScaleByAcpropState,
    ScaleByAdemamixState,
    ScaleByAdoptState,
    ScaleBySimplifiedAdEMAMixState,
    acprop,
    add_slow_momentum,
    ademamix,
    adopt,
    madgrad,
    scale_by_acprop,
    scale_by_ademamix,
    scale_by_adopt,
    scale_by_madgrad,
    scale_by_simplified_ademamix,
    simplified_ademamix,
)

__all__ = [
    "AddSlowMomentumState",
    "MadgradState",
    "ScaleByAcpropState",
    "ScaleByAdemamixState",
    "ScaleByAdoptState",
    "ScaleBySimplifiedAdEMAMixState",
    "acprop",
    "add_slow_momentum",
    "ademamix",
    "adopt",
    "madgrad",
    "scale_by_acprop",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_madgrad",
    "scale_by_simplified_ademamix",
    "simplified_ademamix",
]
