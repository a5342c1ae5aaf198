"""The assembled model (one class for every preset) and its output type.

:class:`MedcamModel` = input normalization -> backbone -> head. It takes images
``(B, in_chans, H, W)`` as floats in ``[0, 1]`` (the normalization in the
spec's ``preprocess`` is applied inside), and returns a :class:`ModelOutput`.
:class:`MedcamSegmenter` does the same for segmentation networks.

Both carry their fully resolved spec as ``.spec``, so
``build_model(model.spec)`` rebuilds the same architecture and
:func:`medcam.save` / :func:`medcam.load` need no code.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from .errors import ImageValueError, PluginError, ShapeError
from .features import FeatureInfo

__all__ = ["ModelOutput", "MedcamModel", "MedcamSegmenter", "BoxThresholdHead", "check_images", "check_pixel_values",
           "INPUT_RANGE"]

#: The value range of model inputs (images in [0, 1]); ``model.input_range = None`` switches the range check off.
INPUT_RANGE: tuple[float, float] = (0.0, 1.0)
#: Slack of the range check for rounding (a resize that lands at 1.0000001 is still an image in [0, 1]).
RANGE_SLACK = 1e-3


@dataclass
class ModelOutput:
    """What a medcam model returns.

    Attributes:
        logits: ``(B, K)`` raw class scores (softmax for multi-class,
            sigmoid per class for multi-label models).
        maps: named localization maps the head computes itself, at feature
            resolution, e.g. ``{"fpm": (B, K, h, w)}`` for a foreground
            prediction map head. Empty for a plain classifier.
        features: the backbone's levels ``[(B, C_i, H/s_i, W/s_i), ...]``, in the
            autograd graph, when ``return_features=True`` (else ``None``).
        aux: head-specific tensors that losses use (e.g. ``"score_2"``).
    """

    logits: Tensor
    maps: dict[str, Tensor] = field(default_factory=dict)
    features: list[Tensor] | None = None
    aux: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class BoxThresholdHead(Protocol):
    """A head that declares the map threshold its own box readout uses (e.g. ``fpm``: 0.83, SR's value).

    ``medcam explain`` draws attribution boxes at this threshold unless
    ``--threshold`` is given; ``medcam eval --localization`` reads SR's
    fixed-threshold accuracy at it.
    """

    box_threshold: float


def check_images(images: Any, in_chans: int, *, multiple: int = 1, what: str = "images") -> Tensor:
    """Validate an image batch ``(B, in_chans, H, W)`` (floating point) and return it.

    Raises :class:`ShapeError` with the expected and actual shape otherwise. A
    single image ``(in_chans, H, W)`` is rejected with a hint to add the batch
    dimension. ``multiple`` > 1 also requires H and W to be divisible by it.
    """
    if not isinstance(images, Tensor):
        raise ShapeError(f"{what} must be a torch.Tensor of shape (B, {in_chans}, H, W), got {type(images).__name__}")
    if images.dim() == 3 and images.shape[0] == in_chans:
        raise ShapeError(f"{what} has shape {tuple(images.shape)}: add the batch dimension, "
                         f"e.g. images.unsqueeze(0) -> (1, {in_chans}, H, W)")
    if images.dim() != 4:
        raise ShapeError(f"{what} must have shape (B, {in_chans}, H, W), got {tuple(images.shape)}")
    if images.shape[1] != in_chans:
        raise ShapeError(f"{what} has {images.shape[1]} channels but the model expects in_chans={in_chans} "
                         f"(shape {tuple(images.shape)}); convert the images or build the model with "
                         f"in_chans={images.shape[1]}")
    if not images.is_floating_point():
        raise ShapeError(f"{what} must be floating point in [0, 1], got dtype {images.dtype}")
    if images.shape[0] == 0:
        raise ShapeError(f"{what} is an empty batch")
    if multiple > 1 and (images.shape[2] % multiple or images.shape[3] % multiple):
        h = -(-images.shape[2] // multiple) * multiple
        w = -(-images.shape[3] // multiple) * multiple
        raise ShapeError(f"{what}: height and width must be divisible by {multiple}, got "
                         f"{tuple(images.shape[2:])}; resize or pad to ({h}, {w})")
    return images


def check_pixel_values(images: Tensor, value_range: tuple[float, float] | None = INPUT_RANGE, *,
                       what: str = "images") -> Tensor:
    """Refuse NaN or infinite values and, unless ``value_range`` is None, values outside it.

    One min/max pass over ``images`` (any shape). A batch of 0-255 floats, a
    NaN from a broken loader or an already normalized batch would otherwise give
    logits and maps that look valid.

    Raises:
        ImageValueError: naming the problem, the observed min/max, and how to switch the range check off.
    """
    if images.numel() == 0:
        return images
    with torch.no_grad():
        low, high = (float(v) for v in torch.aminmax(images.detach()))
    if math.isnan(low) or math.isnan(high):
        raise ImageValueError(f"{what} contain NaN values; images must be finite floats in [0, 1]")
    if math.isinf(low) or math.isinf(high):
        raise ImageValueError(f"{what} contain infinite values (min {low}, max {high}); images must be finite "
                              f"floats in [0, 1]")
    if value_range is not None:
        lo, hi = value_range
        if low < lo - RANGE_SLACK or high > hi + RANGE_SLACK:
            hint = " (0-255 pixel values? divide by 255)" if high > 1.5 and low >= 0 else ""
            raise ImageValueError(f"{what} have values outside [{lo:g}, {hi:g}]: min {low:.4g}, max {high:.4g}"
                                  f"{hint}; the model normalizes with the spec's preprocess.mean/std itself. "
                                  f"If you scale the images yourself, set model.input_range = None")
    return images


class _Normalized(nn.Module):
    """Shared input handling: channel, dtype and value checks and ``(x - mean) / std`` from the spec.

    ``input_range``: the accepted value range of the images, ``(0, 1)``; None
    skips the range check (for callers who scale images themselves); NaN and
    infinite values are refused either way.
    """

    spec: dict[str, Any]
    input_range: tuple[float, float] | None = INPUT_RANGE

    def _setup_normalization(self, spec: Mapping[str, Any]) -> None:
        pre = spec["preprocess"]
        channels = spec["in_chans"]
        self.register_buffer("pixel_mean", torch.tensor(pre["mean"]).view(1, channels, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pre["std"]).view(1, channels, 1, 1), persistent=False)

    @property
    def in_chans(self) -> int:
        return int(self.spec["in_chans"])

    @property
    def input_size(self) -> tuple[int, int]:
        """``(H, W)`` the model was specified for (``preprocess.size``)."""
        h, w = self.spec["preprocess"]["size"]
        return int(h), int(w)

    def normalize(self, images: Tensor) -> Tensor:
        """``(images - mean) / std`` for images ``(B, C, H, W)`` in [0, 1].

        Images of another floating dtype (float64, float16, bfloat16) are cast
        to the model's dtype first, so they give the answer of the same values
        in float32 instead of a dtype error deep inside a convolution.
        """
        check_images(images, self.in_chans)
        check_pixel_values(images, self.input_range)
        if images.dtype != self.pixel_mean.dtype:
            images = images.to(self.pixel_mean.dtype)
        return (images - self.pixel_mean) / self.pixel_std


class MedcamModel(_Normalized):
    """A classifier assembled from a spec: normalization -> backbone -> head.

    Build it with :func:`medcam.build_model`; do not call the constructor with
    hand-made parts unless ``spec`` describes them exactly.

    Args:
        spec: the fully resolved model spec (see :mod:`medcam.spec`).
        backbone: returns a list of ``(B, C_i, H/s_i, W/s_i)`` maps and has ``feature_info``.
        head: maps the list of features (and optional labels) to a :class:`ModelOutput`.
    """

    def __init__(self, spec: Mapping[str, Any], backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.spec = copy.deepcopy(dict(spec))
        self.backbone = backbone
        self.head = head
        self._setup_normalization(self.spec)

    @property
    def feature_info(self) -> FeatureInfo:
        return self.backbone.feature_info

    @property
    def num_classes(self) -> int:
        return int(self.spec["num_classes"])

    @property
    def multilabel(self) -> bool:
        return bool(self.spec["multilabel"])

    @property
    def class_names(self) -> list[str]:
        """The spec's class names, or ``["0", "1", ...]``."""
        names = self.spec.get("class_names")
        return list(names) if names else [str(i) for i in range(self.num_classes)]

    @property
    def display_names(self) -> list[str]:
        """The names shown for the classes: the spec's ``display_names``, else :attr:`class_names`."""
        names = self.spec.get("display_names")
        return list(names) if names else self.class_names

    def forward_features(self, images: Tensor) -> list[Tensor]:
        """Backbone levels ``[(B, C_i, H/s_i, W/s_i), ...]`` for images ``(B, C, H, W)`` in [0, 1]."""
        return list(self.backbone(self.normalize(images)))

    def forward(self, images: Tensor, labels: Tensor | None = None, *, return_features: bool = False) -> ModelOutput:
        """Classify a batch.

        Args:
            images: ``(B, in_chans, H, W)`` float in [0, 1].
            labels: optional ``(B,)`` class indices or ``(B, K)`` multi-hot
                targets; heads that use the label during training (FPM) read it.
            return_features: also return the backbone levels (in the graph).

        Returns:
            :class:`ModelOutput` with ``logits`` ``(B, K)``.
        """
        features = self.forward_features(images)
        out = self.head(features, labels=labels)
        if not isinstance(out, ModelOutput):
            name = (self.spec.get("head") or {}).get("name", "?")
            raise PluginError(f"head '{name}' ({type(self.head).__name__}) returned {type(out).__name__}, not "
                              f"ModelOutput (the head contract: docs/architecture.md)")
        if return_features:
            out.features = features
        return out

    @torch.no_grad()
    def predict_proba(self, images: Tensor) -> Tensor:
        """Class probabilities ``(B, K)``: softmax, or per-class sigmoid for multi-label models."""
        logits = self(images).logits
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)

    def extra_repr(self) -> str:
        return f"spec name={self.spec.get('name')!r}, num_classes={self.num_classes}, in_chans={self.in_chans}"


class MedcamSegmenter(_Normalized):
    """A segmentation network assembled from a segmenter spec.

    ``forward(images)`` with images ``(B, in_chans, H, W)`` in [0, 1] returns
    mask logits ``(B, num_classes, H, W)``.
    """

    def __init__(self, spec: Mapping[str, Any], net: nn.Module):
        super().__init__()
        self.spec = copy.deepcopy(dict(spec))
        self.net = net
        self._setup_normalization(self.spec)

    @property
    def num_classes(self) -> int:
        return int(self.spec["num_classes"])

    def forward(self, images: Tensor) -> Tensor:
        """Mask logits ``(B, num_classes, H, W)``."""
        logits = self.net(self.normalize(images))
        if not isinstance(logits, Tensor) or logits.dim() != 4:
            got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            name = (self.spec.get("segmenter") or {}).get("name", "?")
            raise PluginError(f"segmenter '{name}' ({type(self.net).__name__}) must return (B, K, H, W) logits, "
                              f"got {got}")
        return logits

    @torch.no_grad()
    def predict_mask(self, images: Tensor, threshold: float = 0.5) -> Tensor:
        """Boolean masks: ``(B, H, W)`` for one class (sigmoid > threshold), else ``(B, K, H, W)``."""
        probs = torch.sigmoid(self(images))
        masks = probs > threshold
        return masks[:, 0] if masks.shape[1] == 1 else masks
