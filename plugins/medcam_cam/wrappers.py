"""Methods built on another method: Finer-CAM, Refine-CAM and SESS.

Each takes a ``base`` method (a registered name or part spec) and changes what
it explains (Finer-CAM: the score), where (Refine-CAM: several layers) or on
what (SESS: patches of a multi-scale pyramid).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from medcam.attribution import Attribution, AttributionContext, AttributionResult, normalize_maps, resize_maps
from medcam.errors import SpecError
from medcam.faithfulness.perturb import gaussian_blur
from medcam.model import MedcamModel

__all__ = ["FinerCAM", "RefineCAM", "SESS", "finer_scores", "window_starts"]


def _base(name: str, base: Any) -> Attribution:
    from medcam.build import build_attribution

    try:
        return build_attribution(base)
    except (SpecError, KeyError) as err:
        raise SpecError(f"{name}.base: {err}") from err


def finer_scores(logits: Tensor, targets: Tensor, alpha: float = 1.0, ranks: Sequence[int] = (1, 2, 3)) -> Tensor:
    """Finer-CAM's score (Zhang et al., CVPR 2025, eq. 4): ``sum_j p_j (z_c - alpha z_j) / sum_j p_j``.

    ``j`` runs over the classes whose logits are the ``ranks``-th closest to ``z_c``
    (rank 0 is ``c`` itself; ranks beyond ``K - 1`` are dropped), ``p = softmax(z)``.

    Args:
        logits: ``(B, K)``.
        targets: ``(B, T)``.

    Returns:
        ``(B, T)``.
    """
    k = logits.shape[1]
    kept = [r for r in ranks if 0 < r < k]
    if not kept:
        return logits.gather(1, targets)
    main = logits.gather(1, targets)                                           # (B, T)
    distance = (logits[:, None, :] - main[:, :, None]).abs()                   # (B, T, K)
    distance = distance.scatter(2, targets[:, :, None], -1.0)                  # c itself is rank 0
    order = torch.sort(distance.detach(), dim=2, stable=True).indices          # (B, T, K)
    others = order[:, :, kept]                                                 # (B, T, R)
    probs = torch.softmax(logits, dim=1)[:, None, :].expand(-1, targets.shape[1], -1).gather(2, others)
    values = logits[:, None, :].expand(-1, targets.shape[1], -1).gather(2, others)
    return (probs * (main[:, :, None] - alpha * values)).sum(2) / (probs.sum(2) + 1e-9)


class FinerCAM(Attribution):
    """Finer-CAM (Zhang, Liu, Chen, Chao & Su, "Finer-CAM: Spotting the Difference Reveals
    Finer Details for Visual Explanation", CVPR 2025): the ``base`` method (Grad-CAM by
    default) explains how the target differs from its most similar classes, with the score
    of :func:`finer_scores` instead of the target logit.

    Args:
        layer: as every method (default: the base method's).
        base: a gradient method name or part spec (``gradcam``, ``layercam``, ...).
        alpha: the strength ``alpha`` of the comparison.
        ranks: which closest classes to compare with (1 = the closest).
    """

    uses_gradients = True

    def __init__(self, layer: int | str | None = None, base: Any = "gradcam", alpha: float = 1.0,
                 ranks: Sequence[int] = (1, 2, 3)):
        super().__init__(layer)
        self.base = _base("finercam", base)
        if not self.base.uses_gradients or self.base.extra_passes or not self.base.uses_layer:
            raise SpecError(f"finercam.base: '{self.base.name}' is not a gradient CAM method; Finer-CAM changes the "
                            f"score the gradients are taken of (use e.g. gradcam, gradcam++, layercam)")
        self.alpha = float(alpha)
        self.ranks = tuple(int(r) for r in ranks)

    def target_scores(self, logits: Tensor, targets: Tensor) -> Tensor:
        return finer_scores(logits, targets, self.alpha, self.ranks)

    def default_level(self, model: nn.Module) -> int | None:
        return self.base.default_level(model)

    def compute(self, ctx: AttributionContext) -> Tensor:
        return self.base.compute(ctx)

    def channel_terms(self, ctx: AttributionContext) -> Tensor:
        return self.base.channel_terms(ctx)


def _all_levels(model: nn.Module) -> list[int]:
    if not isinstance(model, MedcamModel):
        raise ValueError(f"{type(model).__name__} has no backbone levels; pass layer=[<module names>]")
    return list(range(len(model.feature_info)))


class RefineCAM(Attribution):
    """Refine-CAM (pytorch-grad-cam 1.5.7, ``RefineCAM``; arXiv:2605.14641): the ``base``
    method's map (Grad-CAM++ by default) at several layers, each min-max normalized and
    resized to the input, multiplied together,

    ``L^c = prod_l M^c_l``:

    a position stays bright only where every layer agrees, which removes the noise of shallow
    layers. ``layers`` default: every backbone level.

    Args:
        layers: level indices or module names (None: every level of the backbone).
        base: the per-layer method (name or part spec).
    """

    extra_passes = True

    def __init__(self, layers: Sequence[Any] | None = None, base: Any = "gradcam++"):
        super().__init__(None)
        self.layers = None if layers is None else list(layers)
        self.base = _base("refinecam", base)
        self.uses_gradients = self.base.uses_gradients

    def run(self, model: nn.Module, images: Tensor, target: Any = None, layer: Any = None, **options: Any
            ) -> AttributionResult:
        chosen = layer if layer is not None else (self.layers or _all_levels(model))
        chosen = list(chosen) if isinstance(chosen, (list, tuple)) else [chosen]
        options["fusion"] = "product"
        return self.base.run(model, images, target, chosen, **options)

    def compute(self, ctx: AttributionContext) -> Tensor:
        return self.base.compute(ctx)


def window_starts(length: int, step: int, window: int) -> list[int]:
    """Starts of windows of size ``window`` every ``step`` pixels; the last one is shifted back inside."""
    starts = []
    for start in range(0, length, step):
        if start + window >= length:
            starts.append(max(length - window, 0))
            break
        starts.append(start)
    return starts


class SESS(Attribution):
    """SESS: saliency enhancing with scaling and sliding (Tyagi, Lee, Weng & Loy, ECCV 2022).

    The image is resized to several scales (its shorter side to each of ``scales``, by
    default ``num_scales`` sizes from the window size up by ``scale_step * window``), a
    ``window`` x ``window`` window slides over each with stride ``step``, and every patch gets
    the ``base`` method's normalized map ``M_p``, weighted by its target probability relative
    to the best patch, ``s_p / max_q s_q`` (the lowest ``pre_filter`` fraction of patches is
    dropped). The weighted maps are pasted back where their patch came from and fused by a
    spatially weighted mean of the values above ``theta`` (``pool="mean"``) or a maximum;
    ``smooth`` blurs the result (Gaussian, sigma 5, 11 taps). One image at a time; patches go
    through the base method ``batch_size`` at a time.

    Args:
        base: per-patch method (name or part spec).
        scales: shorter-side sizes (None: derived from ``num_scales`` and ``scale_step``).
        num_scales, scale_step: the default scales (the paper's 12 and 2/7).
        window: window side (None: the image's shorter side, so the first scale is the image).
        step: window stride (None: the window side).
        pre_filter: fraction of the lowest-scoring patches left out, in [0, 1).
        theta: values at or below it do not enter the weighted mean.
        pool: ``mean`` or ``max``.
        smooth: blur the fused map.
        batch_size: patches per base-method call.
        progress: a progress bar over the images.
    """

    extra_passes = True

    def __init__(self, base: Any = "gradcam", scales: Sequence[int] | None = None, num_scales: int = 12,
                 scale_step: float = 2 / 7, window: int | None = None, step: int | None = None,
                 pre_filter: float = 0.0, theta: float = 0.0, pool: str = "mean", smooth: bool = True,
                 batch_size: int = 32, progress: bool = True):
        super().__init__(None)
        if pool not in ("mean", "max"):
            raise SpecError(f"sess.pool: expected mean or max, got {pool!r}")
        if not 0.0 <= pre_filter < 1.0:
            raise SpecError(f"sess.pre_filter: expected a fraction in [0, 1), got {pre_filter!r}")
        if num_scales < 1:
            raise SpecError(f"sess.num_scales: expected a positive integer, got {num_scales!r}")
        self.base = _base("sess", base)
        self.uses_gradients = self.base.uses_gradients
        self.scales = None if scales is None else [int(s) for s in scales]
        self.num_scales, self.scale_step = int(num_scales), float(scale_step)
        self.window, self.step = window, step
        self.pre_filter, self.theta, self.pool, self.smooth = float(pre_filter), float(theta), pool, bool(smooth)
        self.batch_size, self.progress = int(batch_size), progress

    def _scales(self, window: int) -> list[int]:
        if self.scales is not None:
            if any(s < window for s in self.scales):
                raise ValueError(f"sess: every scale must be at least the window size {window}, got {self.scales}")
            return self.scales
        increment = int(round(window * self.scale_step))
        return [window + increment * i for i in range(self.num_scales)]

    def run(self, model: nn.Module, images: Tensor, target: Any = None, layer: Any = None, **options: Any
            ) -> AttributionResult:
        from medcam.attribution_inputs import check_attribution_input, logits_of, model_device, resolve_targets

        raw = options.pop("raw", False)
        options.pop("aug_smooth", None)
        images = check_attribution_input(model, images)
        images = images.to(model_device(model, images.device))
        with torch.no_grad():
            logits = logits_of(model(images))
        targets, several = resolve_targets(target, images.shape[0], logits.shape[1], logits)
        maps = []
        for i in tqdm(range(images.shape[0]), desc="sess", leave=False, disable=not self.progress):
            maps.append(torch.stack([self._one(model, images[i:i + 1], int(c), layer, options)
                                     for c in targets[i].tolist()]))
        out = torch.stack(maps)                                                    # (B, T, H, W)
        if not raw:
            out = normalize_maps(out)
        return AttributionResult(maps=out if several else out[:, 0], targets=targets, logits=logits.detach(),
                                 layer=f"sess({self.base.name})")

    def _one(self, model: nn.Module, image: Tensor, target: int, layer: Any, options: dict[str, Any]) -> Tensor:
        """The fused ``(H, W)`` map of one image ``(1, C, H, W)`` for one class."""
        from medcam.attribution_inputs import logits_of

        h, w = image.shape[-2:]
        window = self.window or min(h, w)
        step = self.step or window
        patches, places = [], []
        for scale in self._scales(window):
            short, long_ = (h, w) if h <= w else (w, h)
            size = (scale, int(scale * long_ / short)) if h <= w else (int(scale * long_ / short), scale)
            scaled = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)
            for y in window_starts(size[0], step, window):
                for x in window_starts(size[1], step, window):
                    patches.append(scaled[:, :, y:y + window, x:x + window])
                    places.append((y, x, size))
        stack = torch.cat(patches)
        with torch.no_grad():
            probs = torch.cat([torch.softmax(logits_of(model(stack[s:s + self.batch_size])), 1)[:, target]
                               for s in range(0, len(stack), self.batch_size)]).clamp_min(0)
        order = torch.argsort(probs, stable=True)[int(len(probs) * self.pre_filter):]
        best = float(probs[order[-1]])
        weights = probs / best if best > 0 else torch.ones_like(probs)
        total = image.new_zeros((h, w))
        count = image.new_zeros((h, w))
        for s in range(0, len(order), self.batch_size):
            index = order[s:s + self.batch_size]
            cams = self.base.run(model, stack[index], [target] * len(index), layer, **options).maps
            for cam, p in zip(cams, index.tolist()):
                y, x, size = places[p]
                canvas = image.new_zeros(size)
                canvas[y:y + window, x:x + window] = cam * weights[p]
                pasted = resize_maps(canvas[None], (h, w))[0]
                if self.pool == "max":
                    total = torch.maximum(total, pasted)
                else:
                    keep = pasted > self.theta
                    total = total + torch.where(keep, pasted, torch.zeros_like(pasted))
                    count = count + keep.to(count.dtype)
        fused = total if self.pool == "max" else torch.where(count > 0, total / count.clamp_min(1), total)
        if self.smooth:
            fused = gaussian_blur(fused[None, None], 5.0, 11)[0, 0]
        return fused

    def compute(self, ctx: AttributionContext) -> Tensor:
        return self.base.compute(ctx)
