"""Light factories of the basic plugin: metadata plus a deferred import.

Nothing heavy is imported here (no torch), so ``medcam list`` and ``medcam info``
can read this module cheaply.
"""
from __future__ import annotations

from typing import Any, Literal

from medcam.params import FractionBelowOne, NonNegativeFloat
from medcam.registry import Preset, describe

from .configs import TINY_CNN_CHANNELS, TINY_CNN_STRIDES


@describe(
    summary="Tiny 4-stage CNN (0.3M parameters at width 16) for tests, demos and CPU experiments",
    citation=None,
    channels=[16 * m for m in TINY_CNN_CHANNELS],
    strides=list(TINY_CNN_STRIDES),
    cam_level=-1,
    layout="map",
)
def tiny_cnn(in_chans: int = 3, width: int = 16, out_indices: list[int] | None = None,
             checkpoint_path: str | None = None) -> Any:
    """A tiny conv net: stem (stride 2), then 4 stages of conv-BN-ReLU x2, each halving the size.

    Levels have ``width * (1, 2, 4, 8)`` channels at strides 4, 8, 16, 32.
    ``checkpoint_path`` loads a state dict saved from this backbone.
    """
    from .tiny_cnn import TinyCNN

    return TinyCNN(in_chans=in_chans, width=width, out_indices=out_indices, checkpoint_path=checkpoint_path)


@describe(
    summary="Global average pooling + dropout + linear classifier on one level; CAM-compatible",
    citation="Zhou et al., Learning Deep Features for Discriminative Localization, CVPR 2016",
)
def linear(feature_info: Any, num_classes: int, level: int | None = None, dropout: FractionBelowOne = 0.0) -> Any:
    """GAP on level ``level`` (default: the backbone's ``cam_level``), dropout, then a linear layer."""
    from .heads import LinearHead

    return LinearHead(feature_info, num_classes, level=level, dropout=dropout)


@describe(
    summary="Cross-entropy (softmax) or binary cross-entropy (multi-label) with class weights and label smoothing",
    citation=None,
)
def ce(num_classes: int, multilabel: bool, class_weights: list[float] | str | None = None,
       label_smoothing: FractionBelowOne = 0.0) -> Any:
    """Classification loss on ``output.logits``.

    ``class_weights``: a list of K weights, ``"balanced"`` (``N / (K * n_k)`` from
    the training set's class counts, set by the trainer), ``"batch"`` (counted in
    each batch; multi-label: ``pos_weight = #neg / #pos``) or ``None``.
    ``label_smoothing`` in [0, 1) (for multi-label: targets ``y(1-e) + e/2``).
    """
    from .losses import CrossEntropy

    return CrossEntropy(num_classes, multilabel, class_weights=class_weights, label_smoothing=label_smoothing)


@describe(
    summary="Focal loss -alpha_t (1 - p_t)^gamma log p_t (softmax, or per class for multi-label models)",
    citation="Lin, Goyal, Girshick, He, Dollar, Focal Loss for Dense Object Detection, ICCV 2017",
)
def focal(num_classes: int, multilabel: bool, gamma: NonNegativeFloat = 2.0,
          alpha: float | list[float] | None = None) -> Any:
    """``gamma``: focusing exponent (0 = cross-entropy; the paper uses 2); ``alpha``: class weights (a list of K), or one number:
    the positive weight (multi-label: ``alpha`` for positives, ``1 - alpha`` for negatives; 2 classes: class 1)."""
    from .imbalance import FocalLoss

    return FocalLoss(num_classes, multilabel, gamma=gamma, alpha=alpha)


@describe(
    summary="Weighted BCE (W-CEL): positives and negatives weighted by their share, counted per batch (multi-label)",
    citation="Wang, Peng, Lu, Lu, Bagheri, Summers, ChestX-ray8: Hospital-scale Chest X-ray Database and "
             "Benchmarks on Weakly-Supervised Classification and Localization of Common Thorax Diseases, CVPR 2017",
)
def weighted_bce(num_classes: int, multilabel: bool, beta: list[float] | None = None, per_class: bool = False,
                 reduction: Literal["mean", "sum"] = "mean") -> Any:
    """``beta``: null (beta_P = (P+N)/P, beta_N = (P+N)/N counted in each batch) or fixed
    ``[beta_P, beta_N]``; ``per_class``: count per class column; ``reduction``: ``mean`` or ``sum``."""
    from .imbalance import WeightedBCE

    return WeightedBCE(num_classes, multilabel, beta=beta, per_class=per_class, reduction=reduction)


tiny_classifier = Preset(
    {"backbone": {"name": "tiny_cnn", "width": 16}, "head": {"name": "linear"}, "num_classes": 2,
     "preprocess": {"size": [128, 128]}},
    summary="tiny_cnn + linear head: a CPU-friendly classifier for tests and demos",
)
