"""gradtx: composable, pure optimizer transformations for JAX, as data.

An optimizer is an ``(init, update)`` pair over pytrees built by chaining small
transforms; names shared with optax take the same arguments and give the same numbers.
"""

from gradtx import testing
from gradtx.base import (
    Chain,
    Context,
    EmptyState,
    PyTreeData,
    Transform,
    apply_updates,
    chain,
    foreign,
    hyper,
    hyperparams,
    identity,
    named_chain,
    pytree_dataclass,
    static,
)
from gradtx.optimizers.adam import adam, adamax, adamw, amsgrad, nadam, nadamw
from gradtx.optimizers.classic import adagrad, rmsprop, sgd
from gradtx.transforms.adaptive import (
    ScaleByInfinityNormState,
    ScaleByRmsState,
    ScaleByRssState,
    ScaleByStddevState,
    scale_by_adam,
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_infinity_norm,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
)
from gradtx.transforms.clipping import clip, clip_by_global_norm
from gradtx.transforms.decay import AddDecayedWeightsState, add_decayed_weights
from gradtx.transforms.momentum import (
    BiasCorrectionState,
    EmaState,
    MomentumState,
    TraceState,
    bias_correction,
    ema,
    momentum,
    trace,
)
from gradtx.transforms.scaling import (
    ScaleByLearningRateState,
    ScaleByScheduleState,
    scale,
    scale_by_learning_rate,
    scale_by_schedule,
)

__version__ = "0.1.0"

__all__ = [
    "AddDecayedWeightsState",
    "BiasCorrectionState",
    "Chain",
    "Context",
    "EmaState",
    "EmptyState",
    "MomentumState",
    "PyTreeData",
    "ScaleByInfinityNormState",
    "ScaleByLearningRateState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "ScaleByStddevState",
    "TraceState",
    "Transform",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "add_decayed_weights",
    "amsgrad",
    "apply_updates",
    "bias_correction",
    "chain",
    "clip",
    "clip_by_global_norm",
    "ema",
    "foreign",
    "hyper",
    "hyperparams",
    "identity",
    "momentum",
    "nadam",
    "nadamw",
    "named_chain",
    "pytree_dataclass",
    "rmsprop",
    "scale",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_amsgrad",
    "scale_by_infinity_norm",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_schedule",
    "scale_by_stddev",
    "sgd",
    "static",
    "testing",
    "trace",
]
