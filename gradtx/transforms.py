"""optax's ``optax.transforms`` module: the transforms that wrap, combine, clip and
condition others (`masked`, `partition`, `MultiSteps`, `clip_by_global_norm`, ...) and
their states, with optax's names, signatures and numbers. Each is the gradtx block of
the same name (also at gradtx's top level); this module only gathers them where optax
code imports them from.

Example:
  >>> import gradtx, jax.numpy as jnp
  >>> tx = gradtx.transforms.freeze({"a": True, "b": False})
  >>> params = {"a": jnp.ones(2), "b": jnp.ones(2)}
  >>> tx.update(params, tx.init(params))[0]["a"]
  Array([0., 0.], dtype=float32)
"""

from __future__ import annotations

from gradtx.blocks.accumulation import (
    MultiSteps,
    MultiStepsState,
    ShouldSkipUpdateFunction,
    skip_large_updates,
    skip_not_finite,
)
from gradtx.blocks.clipping import (
    adaptive_grad_clip,
    clip,
    clip_by_block_rms,
    clip_by_global_norm,
    per_example_global_norm_clip,
    per_example_layer_norm_clip,
    unitwise_clip,
    unitwise_norm,
)
from gradtx.blocks.conditional import (
    ApplyIfFiniteState,
    ConditionallyMaskState,
    ConditionallyTransformState,
    ConditionFn,
    apply_if_finite,
    conditionally_mask,
    conditionally_transform,
)
from gradtx.blocks.decay import add_decayed_weights
from gradtx.blocks.masking import (
    MaskedNode,
    MaskedState,
    PartitionState,
    freeze,
    masked,
    partition,
    selective_transform,
)
from gradtx.blocks.momentum import EmaState, TraceState, ema, trace
from gradtx.blocks.monitoring import MonitorState, SnapshotState, measure_with_ema, monitor, snapshot
from gradtx.blocks.utility import (
    AddNoiseState,
    NonNegativeParamsState,
    ZeroNansState,
    add_noise,
    flatten,
    keep_params_nonnegative,
    zero_nans,
)
from gradtx.chains import chain, named_chain

__all__ = [
    "AddNoiseState",
    "ApplyIfFiniteState",
    "ConditionFn",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "EmaState",
    "MaskedNode",
    "MaskedState",
    "MonitorState",
    "MultiSteps",
    "MultiStepsState",
    "NonNegativeParamsState",
    "PartitionState",
    "ShouldSkipUpdateFunction",
    "SnapshotState",
    "TraceState",
    "ZeroNansState",
    "adaptive_grad_clip",
    "add_decayed_weights",
    "add_noise",
    "apply_if_finite",
    "chain",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "conditionally_mask",
    "conditionally_transform",
    "ema",
    "flatten",
    "freeze",
    "keep_params_nonnegative",
    "masked",
    "measure_with_ema",
    "monitor",
    "named_chain",
    "partition",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "selective_transform",
    "skip_large_updates",
    "skip_not_finite",
    "snapshot",
    "trace",
    "unitwise_clip",
    "unitwise_norm",
    "zero_nans",
]
