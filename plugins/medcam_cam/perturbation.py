"""Perturbation CAM methods: Score-CAM and Ablation-CAM.

Both weight the channels ``A^k`` of the target layer by how the target score
changes when the model sees a perturbed input or layer, so they run extra
forward passes: one per (image, channel) pair, batched ``batch_size`` at a
time with a progress bar. Raw maps are ``(B, T, h, w)``.
"""
from __future__ import annotations

import warnings
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm
from medcam.progress import show_bar

from medcam.attribution import Attribution, AttributionContext, normalize_maps
from medcam.errors import SpecError
from medcam.model import MedcamModel

from .gradient import weighted_sum

__all__ = ["ScoreCAM", "AblationCAM", "masked_input_scores", "ablation_scores", "SCORES", "MAX_CHUNK_PIXELS"]

#: Score-CAM's masked batch ``(n, C_in, H, W)`` holds at most ``n * H * W`` = this many pixels per
#: forward pass (2**24: 256 masked images of 256 x 256, 16 of 1024 x 1024); a larger ``batch_size``
#: is lowered for that call, with a warning, so memory does not grow with batch_size x H x W.
MAX_CHUNK_PIXELS = 1 << 24

#: How Score-CAM turns logits ``(N, K)`` into the score of each class.
SCORES: dict[str, Callable[[Tensor], Tensor]] = {
    "softmax": lambda logits: torch.softmax(logits, dim=1),
    "sigmoid": torch.sigmoid,
    "logit": lambda logits: logits,
}


def _check_batch_size(name: str, batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SpecError(f"{name}.batch_size: expected a positive integer, got {batch_size!r}")
    return batch_size


def _pair_chunks(b: int, c: int, device: torch.device, batch_size: int, desc: str,
                 progress: bool) -> Iterator[tuple[Tensor, Tensor]]:
    """Every (image, channel) index pair, image-major, ``batch_size`` pairs at a time:
    ``(image index (n,), channel index (n,))`` per chunk, with a progress bar when there are several."""
    images = torch.arange(b, device=device).repeat_interleave(c)
    channels = torch.arange(c, device=device).repeat(b)
    chunks = range(0, b * c, batch_size)
    for start in tqdm(chunks, desc=desc, leave=False, disable=not show_bar(progress) or len(chunks) <= 1):
        yield images[start:start + batch_size], channels[start:start + batch_size]


def masked_input_scores(forward: Callable[[Tensor], Tensor], images: Tensor, activations: Tensor,
                        targets: Tensor, score: Callable[[Tensor], Tensor], batch_size: int = 32,
                        progress: bool = True) -> Tensor:
    """Score-CAM's channel scores ``s[b, t, k] = score(f(X_b * H^k_b))[targets[b, t]]``.

    Args:
        forward: images ``(N, C_in, H, W)`` -> logits ``(N, K)``.
        images: ``(B, C_in, H, W)`` the inputs ``X`` (in [0, 1]).
        activations: ``(B, C, h, w)``; ``H^k_b`` is channel ``k`` upsampled
            (bilinear) to ``(H, W)`` and min-max normalized to [0, 1].
        targets: ``(B, T)`` class indices.
        score: logits ``(N, K)`` -> class scores ``(N, K)``.
        batch_size: masked images per forward pass (lowered to ``MAX_CHUNK_PIXELS // (H * W)``
            with a warning when larger).

    A constant channel gives an all-zero mask, hence the all-zero input for
    every image: that input is scored once and shared, not re-run per channel.

    Returns:
        ``(B, T, C)``.
    """
    b, c = activations.shape[:2]
    size = images.shape[-2:]
    limit = max(1, MAX_CHUNK_PIXELS // (int(size[0]) * int(size[1])))
    if batch_size > limit:
        warnings.warn(f"scorecam: batch_size {batch_size} of {size[0]}x{size[1]} masked images would hold "
                      f"{batch_size * size[0] * size[1] / 1e6:.0f} M pixels per forward pass; using {limit} "
                      f"(medcam_cam.perturbation.MAX_CHUNK_PIXELS = {MAX_CHUNK_PIXELS:,})", stacklevel=2)
        batch_size = limit
    out = activations.new_zeros((b, targets.shape[1], c))
    blank_scores: Tensor | None = None  # (1, K): the score of an all-zero input, shared by every constant channel
    for bi, ki in _pair_chunks(b, c, activations.device, batch_size, "scorecam", progress):
        upsampled = F.interpolate(activations[bi, ki][:, None], size=size, mode="bilinear", align_corners=False)
        masks = normalize_maps(upsampled).to(images.dtype)                 # (n, 1, H, W)
        blank = masks.flatten(1).amax(1) <= 0                              # a constant channel masks everything
        live = torch.nonzero(~blank).flatten()
        scores: Tensor | None = None
        if len(live):
            chosen = bi[live]
            single = bool((chosen == chosen[0]).all())                     # one image: broadcast, no copy
            found = score(forward((images[chosen[:1]] if single else images[chosen]) * masks[live]))  # (m, K)
            scores = found.new_empty((len(bi), found.shape[1]))
            scores[live] = found
        if bool(blank.any()):
            if blank_scores is None:
                blank_scores = score(forward(torch.zeros_like(images[:1])))
            scores = blank_scores.expand(len(bi), -1).clone() if scores is None else scores
            scores[blank] = blank_scores
        assert scores is not None
        out[bi, :, ki] = scores.gather(1, targets[bi]).to(out.dtype)
    return out


def ablation_scores(rescore: Callable[[Tensor, Tensor], Tensor], activations: Tensor, targets: Tensor,
                    batch_size: int = 64, progress: bool = True) -> Tensor:
    """Ablation-CAM's ablated scores ``y^c_k``: the target logit with channel ``k`` set to 0.

    Args:
        rescore: ``(activations (N, C, h, w), image index (N,)) -> logits (N, K)``,
            the model re-run from the target layer.
        activations: ``(B, C, h, w)``.
        targets: ``(B, T)`` class indices.

    Returns:
        ``(B, T, C)``.
    """
    b, c = activations.shape[:2]
    out = activations.new_zeros((b, targets.shape[1], c))
    for bi, ki in _pair_chunks(b, c, activations.device, batch_size, "ablationcam", progress):
        ablated = activations[bi].clone()
        ablated[torch.arange(len(bi), device=ablated.device), ki] = 0
        logits = rescore(ablated, bi)
        out[bi, :, ki] = logits.gather(1, targets[bi]).to(out.dtype)
    return out


class ScoreCAM(Attribution):
    """Score-CAM (Wang et al., "Score-CAM: Score-Weighted Visual Explanations for
    Convolutional Neural Networks", CVPR Workshops 2020, eqs. 3-5 and the authors' code).

    ``H^k = s(Up(A^k))`` (bilinear upsampling to the input size, min-max ``s``),
    ``alpha^c_k = softmax(f(X * H^k))_c``  and  ``L^c = ReLU(sum_k alpha^c_k A^k)``:
    the weight of a channel is the target's probability when the model sees
    only the input region that channel highlights.

    Args:
        layer: as every method.
        batch_size: masked images per forward pass (memory vs speed).
        score: ``"softmax"`` over classes (the paper), ``"sigmoid"`` (multi-label),
            ``"logit"``, or ``"auto"``: sigmoid for multi-label models, else softmax.
        progress: show a progress bar over the ``B * C`` forward passes.

    pytorch-grad-cam instead takes a softmax over *channels* of the target
    logits, ``alpha_k = softmax_k(f(X * H^k)_c)``, and upsamples with
    ``align_corners=True``.
    """

    uses_layer = True
    extra_passes = True

    def __init__(self, layer: int | str | None = None, batch_size: int = 32, score: str = "auto",
                 progress: bool = True):
        super().__init__(layer)
        self.batch_size = _check_batch_size("scorecam", batch_size)
        if score != "auto" and score not in SCORES:
            raise SpecError(f"scorecam.score: expected auto, {', '.join(SCORES)}; got {score!r}")
        self.score = score
        self.progress = progress

    def score_function(self, ctx: AttributionContext) -> Callable[[Tensor], Tensor]:
        if self.score != "auto":
            return SCORES[self.score]
        multilabel = isinstance(ctx.model, MedcamModel) and ctx.model.multilabel
        return SCORES["sigmoid" if multilabel else "softmax"]

    def compute(self, ctx: AttributionContext) -> Tensor:
        acts = ctx.require_activations()
        assert ctx.images is not None
        weights = masked_input_scores(ctx.logits_for_images, ctx.images, acts, ctx.targets,
                                      self.score_function(ctx), self.batch_size, self.progress)
        return F.relu(weighted_sum(weights, acts))

    def channel_terms(self, ctx: AttributionContext) -> Tensor:
        """``(B, T, C, h, w)``: ``alpha^c_k A^k`` (eigen smoothing)."""
        acts = ctx.require_activations()
        assert ctx.images is not None
        weights = masked_input_scores(ctx.logits_for_images, ctx.images, acts, ctx.targets,
                                      self.score_function(ctx), self.batch_size, self.progress)
        return weights[..., None, None] * acts[:, None]


class AblationCAM(Attribution):
    """Ablation-CAM (Desai & Ramaswamy, "Ablation-CAM: Visual Explanations for Deep
    Convolutional Network via Gradient-free Localization", WACV 2020, eqs. 2-3).

    ``w^c_k = (y^c - y^c_k) / y^c`` with ``y^c_k`` the target logit when channel
    ``A^k`` is set to zero, and ``L^c = ReLU(sum_k w^c_k A^k)``. The model is
    re-run from the target layer only (the head for the last backbone level).
    A logit of exactly 0 is replaced by ``1e-12`` in the denominator.

    pytorch-grad-cam ablates to 0 only when the layer's minimum is 0 and to
    ``min - 1e7`` otherwise; medcam always ablates to 0, as the paper does.
    """

    extra_passes = True

    def __init__(self, layer: int | str | None = None, batch_size: int = 64, progress: bool = True):
        super().__init__(layer)
        self.batch_size = _check_batch_size("ablationcam", batch_size)
        self.progress = progress

    def compute(self, ctx: AttributionContext) -> Tensor:
        acts = ctx.require_activations()
        ablated = ablation_scores(ctx.logits_with_activations, acts, ctx.targets, self.batch_size, self.progress)
        base = ctx.scores.to(ablated.dtype)[:, :, None]
        tiny = torch.full_like(base, 1e-12)
        denominator = torch.where(base.abs() < 1e-12, torch.where(base < 0, -tiny, tiny), base)
        return F.relu(weighted_sum((base - ablated) / denominator, acts))

    def channel_terms(self, ctx: AttributionContext) -> Tensor:
        """``(B, T, C, h, w)``: ``w^c_k A^k`` (eigen smoothing)."""
        acts = ctx.require_activations()
        ablated = ablation_scores(ctx.logits_with_activations, acts, ctx.targets, self.batch_size, self.progress)
        base = ctx.scores.to(ablated.dtype)[:, :, None]
        tiny = torch.full_like(base, 1e-12)
        denominator = torch.where(base.abs() < 1e-12, torch.where(base < 0, -tiny, tiny), base)
        return ((base - ablated) / denominator)[..., None, None] * acts[:, None]
