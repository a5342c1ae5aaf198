"""Where attention is allowed: reference boxes/masks per image and per-class region rules.

The segmentation-driven attention method (Wu, Japkowicz, Gilbert, Corizzo,
"Localization-aware chest X-ray classification via segmentation and
gradient-based attention", Data Mining and Knowledge Discovery 2026; code
rcorizzo/cxr-segmentation-attention) takes the *union box of all lung contours*
of a frozen U-Net's mask (``sigmoid > 0.5``; the whole image when the mask is
empty) and allows attention, per disease, in a part of it.

* :class:`ReferenceSource`: the reference ``(B, 4)`` boxes (and masks) of a batch,
  from a frozen segmenter run on the batch (batched, on the device, no
  gradient), or from the batch's own ``"boxes"`` / ``"mask"`` (e.g. BUSI lesions).
* :func:`resolve_rules`: a ``{class name or index: rule}`` mapping -> one rule per class.
* :func:`allowed_regions`: the ``(N, H, W)`` allowed pixels of (image, rule) pairs.

Rules: ``inside`` the box, ``upper`` / ``lower`` half of it, ``outside`` it
(:func:`medcam.boxes.region_mask`), ``mask`` (the reference mask's own pixels),
or ``None`` (no attention term for that class, e.g. "No Finding").
"""
from __future__ import annotations

import os
import typing
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medcam.boxes import region_mask, union_box
from medcam.errors import ShapeError, SpecError
from medcam.params import FractionBelowOne, check_choice, check_value
from medcam.registry import did_you_mean

from .entries import MissingClasses, Source

__all__ = ["RULES", "SOURCES", "MISSING_CLASSES", "ReferenceSource", "resolve_rules", "allowed_regions",
           "load_segmenter"]

RULES: tuple[str, ...] = ("inside", "upper", "lower", "outside", "mask")
SOURCES: tuple[str, ...] = typing.get_args(Source)


def check_rules(rules: Mapping[str, Any] | None, where: str = "attention_box.rules") -> dict[str, str | None] | None:
    """Validate the rule values of a ``{class: rule}`` mapping (class names are checked against the model later)."""
    if rules is None:
        return None
    if not isinstance(rules, Mapping):
        raise SpecError(f"{where}: expected a mapping {{class name or index: rule}}, got {rules!r}")
    out: dict[str, str | None] = {}
    for key, rule in rules.items():
        if rule is not None and rule not in RULES:
            raise SpecError(f"{where}.{key}: unknown rule {rule!r}{did_you_mean(str(rule), RULES)} "
                            f"(rules: {', '.join(RULES)}, or null for no attention term)")
        out[str(key)] = rule
    return out


#: What a rule for a class the model does not have does (:data:`medcam_wsol.entries.MissingClasses`).
MISSING_CLASSES: tuple[str, ...] = typing.get_args(MissingClasses)


def resolve_rules(rules: Mapping[str, str | None] | None, class_names: Sequence[str],
                  where: str = "attention_box.rules", missing: str = "error") -> list[str | None]:
    """One rule (or ``None``) per class.

    ``rules=None`` gives every class ``"inside"``. Keys are class names (exact,
    else case-insensitive) or indices written as strings (``"1"``); a key that is
    neither raises :class:`SpecError` with close matches, or is skipped with ``missing="ignore"``.
    """
    k = len(class_names)
    if rules is None:
        return ["inside"] * k
    out: list[str | None] = [None] * k
    lowered = {name.lower(): i for i, name in enumerate(class_names)}
    for key, rule in rules.items():
        if key in class_names:
            index = list(class_names).index(key)
        elif key.lower() in lowered:
            index = lowered[key.lower()]
        elif key.strip().lstrip("-").isdigit() and -k <= int(key) < k:
            index = int(key) % k
        elif missing == "ignore":
            continue
        else:
            raise SpecError(f"{where}: '{key}' is not a class of this model{did_you_mean(key, class_names)} "
                            f"(classes: {', '.join(class_names)}; or use an index 0..{k - 1}); remove the rule, "
                            f"set it to null, or set missing_classes: ignore")
        out[index] = rule
    return out


def load_segmenter(segmenter: Any) -> nn.Module:
    """A segmenter from a checkpoint path (``medcam.save`` of a segmenter), a registered name
    (``lung_fields``: training-free lung fields) or a segmenter spec
    (:func:`medcam.segmenter_source.open_segmenter`).

    A string that names an existing file, or ends in ``.pt``/``.pth``/``.ckpt``/``.bin``,
    is a checkpoint; any other string or mapping is a segmenter spec
    (:func:`medcam.build_segmenter`; random weights unless the spec loads some or,
    like ``lung_fields``, the segmenter needs none).
    """
    from medcam.segmenter_source import open_segmenter

    if segmenter is not None and not isinstance(segmenter, (str, os.PathLike, Mapping)):
        raise SpecError(f"attention_box.segmenter: expected a checkpoint path or a segmenter spec, got {segmenter!r}")
    return open_segmenter(segmenter, what="attention_box.segmenter")


class ReferenceSource(nn.Module):
    """Reference boxes ``(B, 4)`` and masks ``(B, H, W)`` of a batch, in input pixels.

    Args:
        source: ``"segmenter"`` (a frozen segmenter's mask), ``"boxes"`` (the union
            of ``batch["boxes"][i]``) or ``"mask"`` (``batch["mask"]``).
        segmenter: for ``"segmenter"``: a checkpoint path or segmenter spec.
        threshold: foreground is ``sigmoid(logits) > threshold`` (any output channel).

    The segmenter sees the batch images resized (bilinear) to its own
    ``preprocess.size`` and with its channel count (grey <-> RGB); its mask is
    resized back (nearest) to the input size. An empty mask (or no boxes) gives
    the whole image as box, as the reference code does.
    """

    def __init__(self, source: str = "segmenter", segmenter: Any = None, threshold: float = 0.5):
        super().__init__()
        self.source = check_choice(source, SOURCES, "attention_box.source")
        self.threshold = check_value(threshold, FractionBelowOne, "attention_box.segmenter_threshold")
        self.segmenter: nn.Module | None = None
        if source == "segmenter":
            if segmenter is None:
                raise SpecError("attention_box.segmenter: source 'segmenter' needs a segmenter checkpoint path "
                                "(e.g. a lung U-Net saved with medcam.save; see docs/segmentation.md) or a "
                                "segmenter spec; or use source 'boxes' / 'mask' to take the regions from the batch")
            net = load_segmenter(segmenter)
            for p in net.parameters():
                p.requires_grad_(False)
            self.segmenter = net.eval()
        elif segmenter is not None:
            raise SpecError(f"attention_box.segmenter is only used with source 'segmenter' (source is {source!r})")

    def train(self, mode: bool = True) -> "ReferenceSource":
        """The segmenter stays in eval mode (it is frozen)."""
        super().train(mode)
        if self.segmenter is not None:
            self.segmenter.eval()
        return self

    @torch.no_grad()
    def segment(self, images: Tensor) -> Tensor:
        """Foreground masks ``(B, H, W)`` bool of images ``(B, C, H, W)`` in [0, 1]."""
        net = self.segmenter
        assert net is not None
        h, w = images.shape[-2:]
        x = images.float()
        want = int(net.in_chans)
        if x.shape[1] != want:
            if want == 1:
                x = x.mean(1, keepdim=True)
            elif x.shape[1] == 1:
                x = x.expand(-1, want, -1, -1)
            else:
                raise ShapeError(f"attention_box.segmenter takes {want} channels; the images have {x.shape[1]}")
        size = tuple(net.input_size)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        device = next(net.parameters(), torch.empty(0, device=images.device)).device
        probs = torch.sigmoid(net(x.to(device)).float())
        masks = (probs > self.threshold).any(1, keepdim=True).float()
        if tuple(masks.shape[-2:]) != (h, w):
            masks = F.interpolate(masks, size=(h, w), mode="nearest")
        return masks[:, 0].to(images.device) > 0.5

    def forward(self, batch: Mapping[str, Any], images: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(boxes (B, 4), masks (B, H, W) bool or None)`` for the batch whose images are ``images``."""
        b, _, h, w = images.shape
        if self.source == "segmenter":
            masks = self.segment(images)
            return union_box(masks, empty="image"), masks
        if self.source == "mask":
            if "mask" not in batch:
                raise SpecError("attention_box.source 'mask' needs batch['mask'] (B, H, W); use a data set with "
                                "masks (e.g. BUSI) or another source")
            masks = batch["mask"].to(images.device)
            if masks.dim() != 3 or tuple(masks.shape) != (b, h, w):
                raise ShapeError(f"batch['mask'] must be (B, H, W) = ({b}, {h}, {w}), got {tuple(masks.shape)}")
            masks = masks > 0
            return union_box(masks, empty="image"), masks
        if "boxes" not in batch:
            raise SpecError("attention_box.source 'boxes' needs batch['boxes'] (a list of (N_i, 4) boxes); use a "
                            "data set with boxes or masks (e.g. BUSI) or another source")
        items = batch["boxes"]
        if len(items) != b:
            raise ShapeError(f"batch['boxes'] has {len(items)} entries for {b} images")
        whole = torch.tensor([0.0, 0.0, float(w), float(h)], device=images.device)
        rows = []
        for bx in items:
            bx = torch.as_tensor(bx, dtype=torch.float32, device=images.device).reshape(-1, 4)
            rows.append(whole if bx.shape[0] == 0 else torch.cat([bx[:, :2].amin(0), bx[:, 2:].amax(0)]))
        return torch.stack(rows), None


def allowed_regions(boxes: Tensor, masks: Tensor | None, rules: Sequence[str], size: Sequence[int]) -> Tensor:
    """Allowed pixels ``(N, H, W)`` bool for ``N`` (box, rule) pairs.

    Args:
        boxes: ``(N, 4)`` reference boxes in pixels of ``size``.
        masks: ``(N, H, W)`` reference masks (needed only for the ``"mask"`` rule).
        rules: ``N`` rules from :data:`RULES`.
        size: ``(H, W)``.
    """
    n = boxes.shape[0]
    if len(rules) != n:
        raise ShapeError(f"{len(rules)} rules for {n} boxes")
    box_rules = [r if r != "mask" else "image" for r in rules]
    out = region_mask(boxes, size, box_rules)
    uses_mask = torch.tensor([r == "mask" for r in rules], device=boxes.device)
    if bool(uses_mask.any()):
        if masks is None:
            raise SpecError("attention_box rule 'mask' needs a mask source (source 'segmenter' or 'mask'); "
                            "source 'boxes' gives boxes only")
        out = torch.where(uses_mask.view(n, 1, 1), masks.bool(), out)
    return out
