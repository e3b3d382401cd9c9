"""PyTorch-exact presets: ``torch.optim`` optimizers, ``clip_grad_norm_`` and
``torch.optim.lr_scheduler`` as gradtx chains and schedules.

Each factory takes the arguments ``torch.optim`` takes, with its defaults, and returns
a labelled `gradtx.chain` whose updates equal PyTorch's steps (float32, within about
1e-7 of the step's scale: the tests run each preset 150 steps against
``torch==2.13.0``). Print one to read how it differs from the optax-named optimizer::

    >>> import gradtx
    >>> print(gradtx.torch.RMSprop(lr=1e-2))
    torch.RMSprop = chain(
        scale_by_rms(decay=0.99, eps=1e-08, initial_scale=0.0, eps_in_sqrt=False, bias_correction=False, eps_root=0.0, nu_dtype=None, amsgrad=False),
        scale_by_learning_rate(learning_rate=0.01, flip_sign=True),
    )

(``optax.rmsprop`` adds eps inside the root, with ``decay=0.9``.) No PyTorch import is
needed. ``foreach``, ``fused``, ``capturable`` and ``differentiable`` are accepted and
ignored: they choose PyTorch's kernels, not its numbers. A learning rate (or momentum,
or beta) may be a schedule, such as the schedulers of `gradtx.torch.lr_scheduler`
(exported here too). Parameter groups are `param_groups`.

Complex parameters are optimized as PyTorch optimizes them: each entry as a pair of
reals (``torch.view_as_real``), with its own moments for the real and the imaginary
part (``Chain.complex_as_real``); the optax-named optimizers keep optax's convention,
one second moment ``|g|^2`` per complex entry. ``SGD`` needs neither (its steps are the
same either way); ``Adafactor`` refuses complex parameters, as PyTorch's does. A
learning rate is one number where it is used: an array of several is refused at the
update (a stack of them under ``jax.vmap`` is a sweep, each trace seeing one).

``SparseAdam`` is not provided: it updates only the coordinates present in a sparse
gradient, and JAX gradients are dense.
"""  # noqa: E501

from __future__ import annotations

from gradtx.torch import lr_scheduler
from gradtx.torch.clipping import clip_grad_norm, clip_grad_value
from gradtx.torch.groups import param_groups
from gradtx.torch.lr_scheduler import (
    ChainedScheduler,
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    SequentialLR,
    StepLR,
    asgd_learning_rate,
    per_epoch,
)
from gradtx.torch.moments import (
    adam_moments,
    dampened_trace,
    factored_relative_rms,
    nadam_moments,
    rectified_rms,
)
from gradtx.torch.numerics import exact_correction, rectification_length
from gradtx.torch.optimizers import (
    ASGD,
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    NAdam,
    RAdam,
    RMSprop,
    Rprop,
)
from gradtx.torch.parameters import multiply_weights, params_average, rprop_steps

__all__ = [
    "ASGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "NAdam",
    "OneCycleLR",
    "PolynomialLR",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SGD",
    "SequentialLR",
    "StepLR",
    "adam_moments",
    "asgd_learning_rate",
    "clip_grad_norm",
    "clip_grad_value",
    "dampened_trace",
    "exact_correction",
    "factored_relative_rms",
    "lr_scheduler",
    "multiply_weights",
    "nadam_moments",
    "param_groups",
    "params_average",
    "per_epoch",
    "rectification_length",
    "rectified_rms",
    "rprop_steps",
]
