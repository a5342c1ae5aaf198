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
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .errors import ShapeError
from .features import FeatureInfo

__all__ = ["ModelOutput", "MedcamModel", "MedcamSegmenter", "check_images"]


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


class _Normalized(nn.Module):
    """Shared input handling: channel check and ``(x - mean) / std`` from the spec."""

    spec: dict[str, Any]

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
        """``(images - mean) / std`` for images ``(B, C, H, W)`` in [0, 1]."""
        check_images(images, self.in_chans)
        return (images - self.pixel_mean.to(images.dtype)) / self.pixel_std.to(images.dtype)


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
            raise TypeError(f"head {type(self.head).__name__} returned {type(out).__name__}, not ModelOutput")
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
            raise TypeError(f"segmenter {type(self.net).__name__} must return (B, K, H, W) logits")
        return logits

    @torch.no_grad()
    def predict_mask(self, images: Tensor, threshold: float = 0.5) -> Tensor:
        """Boolean masks: ``(B, H, W)`` for one class (sigmoid > threshold), else ``(B, K, H, W)``."""
        probs = torch.sigmoid(self(images))
        masks = probs > threshold
        return masks[:, 0] if masks.shape[1] == 1 else masks
