"""Attribution maps of a segmenter: what it looked at to segment a class region.

A segmenter outputs mask logits ``z`` ``(B, K, H, W)``, not class logits. Any
attribution method explains it through a *region score* per class (Vinogradova
et al., "Towards Interpretable Semantic Segmentation via Gradient-weighted
Class Activation Mapping", AAAI 2020; pytorch-grad-cam's ``SemanticSegmentationTarget``):

    ``s_k = sum_ij z_k,ij M_k,ij``

with ``M_k`` the region: the segmenter's own prediction for class ``k``
(``sigmoid(z_k) > threshold``, computed once on the unperturbed image and held
fixed, so perturbation methods score the same region) or a given mask::

    from medcam.attribution_segmentation import explain_segmenter
    maps = explain_segmenter(segmenter, images)                       # Grad-CAM of the predicted region
    maps = explain_segmenter(segmenter, images, "layercam", mask=lesion_masks, layer="net.decoder")

Maps follow the classifier contract (``(B, H, W)`` in [0, 1], ``raw``,
``differentiable``, modes restored). The default layer is the segmentation
network's ``cam_layer`` (the encoder's deepest map for the bundled segmenters);
any module name of ``segmenter.named_modules()`` works. An empty region scores 0
everywhere: its map is all zeros.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .attribution import Attribution, AttributionResult, _build
from .attribution_inputs import TargetLike, check_attribution_input, model_device, preserved_state, resolve_layer
from .errors import ShapeError

__all__ = ["RegionScores", "region_masks", "segmenter_layer", "explain_segmenter", "CLASSIFIER_HEAD_METHODS"]

#: Registered methods that read a classifier head's class maps (CAM's weights, the FPM head's foreground
#: map), so they have nothing to read in a segmenter; every other method explains a region score.
CLASSIFIER_HEAD_METHODS: tuple[str, ...] = ("cam", "fpm")


class RegionScores(nn.Module):
    """A segmenter seen as a classifier: ``(B, K)`` region scores ``s_k = sum_ij z_k,ij M_k,ij``.

    Args:
        segmenter: images ``(B, C, H, W)`` in [0, 1] -> mask logits ``(B, K, H, W)``.
        masks: ``(B, K, H, W)`` float regions; a batch of one serves any batch (all rows are that image).
    """

    def __init__(self, segmenter: nn.Module, masks: Tensor):
        super().__init__()
        self.segmenter = segmenter
        self.register_buffer("masks", masks, persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        logits = self.segmenter(images)
        if not isinstance(logits, Tensor) or logits.dim() != 4:
            shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ShapeError(f"the segmenter must return (B, K, H, W) mask logits, got {shape}")
        masks = self.masks
        if masks.shape[0] not in (1, logits.shape[0]) or masks.shape[1:] != logits.shape[1:]:
            raise ShapeError(f"region masks {tuple(masks.shape)} do not fit the segmenter output "
                             f"{tuple(logits.shape)}")
        return (logits * masks.to(logits.dtype)).sum(dim=(2, 3))


def region_masks(segmenter: nn.Module, images: Tensor, mask: Tensor | None = None, threshold: float = 0.5,
                 eval_mode: bool = True) -> Tensor:
    """``(B, K, H, W)`` float regions: ``mask`` (``(B, H, W)`` for every class, or ``(B, K, H, W)``), else the
    segmenter's prediction ``sigmoid(z) > threshold`` (no graph; the segmenter's modes are restored)."""
    with preserved_state(segmenter, eval_mode), torch.no_grad():
        logits = segmenter(images)
    b, k, h, w = logits.shape
    if mask is None:
        return (torch.sigmoid(logits) > threshold).to(images.dtype)
    if not isinstance(mask, Tensor):
        raise ShapeError(f"mask must be a (B, H, W) or (B, K, H, W) tensor, got {type(mask).__name__}")
    mask = mask.to(images.device)
    if mask.dim() == 3 and tuple(mask.shape) == (b, h, w):
        return mask[:, None].expand(b, k, h, w).to(images.dtype)
    if mask.dim() == 4 and tuple(mask.shape) == (b, k, h, w):
        return mask.to(images.dtype)
    raise ShapeError(f"mask must be (B, H, W) = {(b, h, w)} or (B, K, H, W) = {(b, k, h, w)}, "
                     f"got {tuple(mask.shape)}")


def segmenter_layer(segmenter: nn.Module, layer: str | nn.Module | None) -> nn.Module:
    """The module to read: ``layer`` (a name of ``segmenter.named_modules()`` or a module), else the
    network's ``cam_layer``; unknown names get close matches."""
    if layer is None:
        net = getattr(segmenter, "net", segmenter)
        name = getattr(net, "cam_layer", None)
        if name is None:
            raise ValueError(f"{type(net).__name__} declares no cam_layer; pass layer='<module name>' (one of "
                             f"segmenter.named_modules())")
        layer = f"net.{name}" if net is not segmenter else name
    if isinstance(layer, int) and not isinstance(layer, bool):
        raise ValueError("segmenters have no backbone levels here; pass layer='<module name>'")
    target = resolve_layer(segmenter, layer)
    assert target.module is not None
    return target.module


def explain_segmenter(segmenter: nn.Module, images: Tensor, method: str | Mapping[str, Any] | Attribution = "gradcam",
                      target: TargetLike = None, *, mask: Tensor | None = None, threshold: float = 0.5,
                      layer: str | nn.Module | None = None, raw: bool = False, differentiable: bool = False,
                      eval_mode: bool = True, details: bool = False, **params: Any) -> Tensor | AttributionResult:
    """Attribution maps of ``segmenter`` for a class region.

    Args:
        segmenter: a :class:`~medcam.model.MedcamSegmenter` (or any module mapping images to ``(B, K, H, W)``
            mask logits).
        images: ``(B, C, H, W)`` in [0, 1].
        method: a registered attribution name, a part spec or a built method (CAM needs a classifier head
            and does not apply).
        target: the class whose region is explained: None (``0`` for one-class segmenters, else the class
            with the largest region score), an int or one class per image.
        mask: the region, ``(B, H, W)`` bool (or ``(B, K, H, W)``); None: the segmenter's prediction.
        threshold: foreground of the prediction: ``sigmoid(z) > threshold``.
        layer: a module name of ``segmenter.named_modules()`` (default: the network's ``cam_layer``).
        raw, differentiable, eval_mode, details: as :func:`medcam.explain`.
        **params: method parameters.

    Returns:
        ``(B, H, W)`` maps in [0, 1] (``(B, T, H, W)`` for several targets), or the :class:`AttributionResult`.
    """
    built = _build(method, params)
    images = check_attribution_input(segmenter, images).to(model_device(segmenter, images.device))
    regions = region_masks(segmenter, images, mask, threshold, eval_mode)
    module = segmenter_layer(segmenter, layer) if built.uses_layer else None
    if not built.extra_passes:
        result = built.run(RegionScores(segmenter, regions), images, target, module, raw=raw,
                           differentiable=differentiable, eval_mode=eval_mode)
        result.layer = result.layer.removeprefix("segmenter.")
        return result if details else result.maps
    # methods that re-run the model on batches of perturbed copies of one image: one image at a time,
    # so the fixed region of that image serves every copy
    parts = []
    for i in range(images.shape[0]):
        one = target if target is None or isinstance(target, (int, str)) else _row(target, i)
        parts.append(built.run(RegionScores(segmenter, regions[i:i + 1]), images[i:i + 1], one, module, raw=raw,
                               differentiable=differentiable, eval_mode=eval_mode))
    result = AttributionResult(maps=torch.cat([p.maps for p in parts]), targets=torch.cat([p.targets for p in parts]),
                               logits=torch.cat([p.logits for p in parts]),
                               layer=parts[0].layer.removeprefix("segmenter."))
    return result if details else result.maps


def _row(target: Any, index: int) -> Any:
    """Image ``index``'s entry of a per-image target (a sequence, a ``(B,)`` or ``(B, T)`` table)."""
    row = target[index]
    if isinstance(row, Tensor):
        return row.view(1, -1) if row.dim() else row.view(1)
    return [row]
