"""Maps combined from several runs of one method: multi-layer fusion and test-time augmentation.

Both are options of every map method (:meth:`medcam.attribution.Attribution.run`,
:func:`medcam.explain`), next to eigen smoothing (:func:`eigen_maps`):

* **Multi-layer fusion** (``layer=[...]``): the method's map of every layer,
  each min-max normalized at its own resolution, scaled, bilinearly resized to
  the input and fused (Jiang et al., "LayerCAM", IEEE TIP 2021, sec. III-C, eq. 9):

  - ``layercam``: ``max_l tanh(2 M_l)`` (the paper's scaling, then the element-wise maximum, as torchcam);
  - ``mean``: ``mean_l M_l`` (pytorch-grad-cam's aggregation of several target layers);
  - ``max``: ``max_l M_l``;
  - ``product``: ``prod_l M_l`` (Refine-CAM's fusion).

* **Augmentation smoothing** (``aug_smooth=True``; pytorch-grad-cam's test-time
  augmentation): the maps of the image flipped horizontally or not, times
  brightness factors 0.9, 1 and 1.1 (6 runs), flipped back and averaged. The
  targets are fixed on the original image (its predicted class by default).

* **Eigen smoothing** (``eigen_smooth=True``): instead of summing the
  per-channel terms ``w_k A^k`` (or the element-wise terms of LayerCAM,
  HiResCAM, ...), project them on their first principal component
  (:func:`medcam.projection.first_component`; Muhammad & Yeasin, IJCNN 2020).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor

from .attribution_inputs import TargetLike, normalize_maps, resize_maps
from .errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from .attribution import Attribution, AttributionContext, AttributionResult

__all__ = ["FUSIONS", "AUGMENTATIONS", "fuse_maps", "fused_run", "augmented_run", "eigen_maps", "check_fusion"]

FUSIONS = ("layercam", "mean", "max", "product")
#: ``(horizontal flip, brightness factor)`` of augmentation smoothing (pytorch-grad-cam's default TTA).
AUGMENTATIONS: tuple[tuple[bool, float], ...] = tuple((flip, factor) for flip in (False, True)
                                                      for factor in (0.9, 1.0, 1.1))


def check_fusion(fusion: str) -> str:
    if fusion not in FUSIONS:
        from .registry import did_you_mean

        raise SpecError(f"fusion: expected one of {', '.join(FUSIONS)}, got {fusion!r}{did_you_mean(str(fusion), FUSIONS)}")
    return fusion


def fuse_maps(maps: Sequence[Tensor], size: Sequence[int], fusion: str = "layercam") -> Tensor:
    """Fuse per-layer maps ``(B, T, h_l, w_l)`` into ``(B, T, H, W)`` (module docstring)."""
    check_fusion(fusion)
    scaled = []
    for m in maps:
        m = normalize_maps(m.float())
        if fusion == "layercam":
            m = torch.tanh(2.0 * m)
        scaled.append(resize_maps(m, size))
    stacked = torch.stack(scaled)
    if fusion in ("layercam", "max"):
        return stacked.amax(dim=0)
    if fusion == "mean":
        return stacked.mean(dim=0)
    return stacked.prod(dim=0)


def _as_table(maps: Tensor, several: bool) -> Tensor:
    return maps if several else maps[:, None]


def fused_run(method: "Attribution", model: Any, images: Tensor, target: TargetLike, layers: Sequence[Any], *,
              fusion: str, raw: bool, differentiable: bool, eval_mode: bool, eigen_smooth: bool) -> "AttributionResult":
    """One run per layer (raw maps), fused at the input resolution."""
    from .attribution import AttributionResult

    check_fusion(fusion)
    if not layers:
        raise ValueError("layer=[]: give at least one layer to fuse")
    results = [method.run(model, images, target, layer, raw=True, differentiable=differentiable,
                          eval_mode=eval_mode, eigen_smooth=eigen_smooth) for layer in layers]
    several = results[0].maps.dim() == 4
    fused = fuse_maps([_as_table(r.maps, several) for r in results], images.shape[-2:], fusion)
    if not raw:
        fused = normalize_maps(fused)
    return AttributionResult(maps=fused if several else fused[:, 0], targets=results[0].targets,
                             logits=results[0].logits, layer=" + ".join(r.layer for r in results))


def augmented_run(method: "Attribution", model: Any, images: Tensor, target: TargetLike, layer: Any, *,
                  fusion: str, raw: bool, differentiable: bool, eval_mode: bool, eigen_smooth: bool,
                  augmentations: Sequence[tuple[bool, float]] = AUGMENTATIONS) -> "AttributionResult":
    """The mean of the (normalized, de-augmented) maps of every augmentation (module docstring)."""
    from .attribution import AttributionResult

    base = method.run(model, images, target, layer, differentiable=differentiable, eval_mode=eval_mode,
                      fusion=fusion, eigen_smooth=eigen_smooth)
    several = base.maps.dim() == 4
    total = torch.zeros_like(_as_table(base.maps, several))
    for flip, factor in augmentations:
        if not flip and factor == 1.0:
            total = total + _as_table(base.maps, several)
            continue
        x = images.flip(-1) if flip else images
        maps = method.run(model, x * factor, base.targets, layer, differentiable=differentiable,
                          eval_mode=eval_mode, fusion=fusion, eigen_smooth=eigen_smooth).maps
        total = total + (maps.flip(-1) if flip else maps)
    mean = total / len(augmentations)
    if not raw:
        mean = normalize_maps(mean)
    return AttributionResult(maps=mean if several else mean[:, 0], targets=base.targets, logits=base.logits,
                             layer=base.layer)


def eigen_maps(method: "Attribution", ctx: "AttributionContext") -> Tensor:
    """``(B, T, h, w)``: the first principal component of the method's per-channel terms ``(B, T, C, h, w)``."""
    from .projection import first_component

    terms = method.channel_terms(ctx)
    b, t = terms.shape[:2]
    return first_component(terms.flatten(0, 1), center=True).view(b, t, *terms.shape[-2:])
