"""Score attribution maps of one model against held-out lesion masks and boxes.

The protocol (weakly supervised object localization, Choe et al., "Evaluating
Weakly Supervised Object Localization Methods Right", CVPR 2020):

* maps are computed for each image's **ground-truth class** (GT-known), at the
  model's input resolution, min-max normalized per map;
* only images with a lesion (a non-empty mask, hence at least one box) are
  scored for localization; images without one (BUSI ``normal``) have no ground
  truth to localize and count only for classification, as in standard WSOL
  practice;
* MaxBoxAccV2 (mean over IoU 0.3 / 0.5 / 0.7 of the best box accuracy over
  the CAM-threshold sweep, all contours), PxAP against the masks, GT-known Loc
  (MaxBoxAcc at IoU 0.5, largest contour), Top-1 Loc and the mean best box IoU
  come from :class:`medcam.metrics.LocalizationAccumulator`; the sweep over
  thresholds is part of those metrics' definitions;
* optionally the thresholds are chosen on the **validation** split and read on
  the test split (``*_at_val_tau``), the paper's recommended protocol for a
  deployable operating point.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from medcam.errors import DataError, MedcamError
from medcam.metrics import LocalizationAccumulator
from medcam.metrics.classification import classification_metrics
from medcam.progress import show_bar

__all__ = ["HeldOut", "load_heldout", "method_label", "candidate_methods", "probe_method", "compute_maps",
           "score_maps", "score_boxes", "predict_logits", "box_regions", "at_thresholds", "classify",
           "localization_summary", "format_localization", "DELTAS"]

#: IoU thresholds of MaxBoxAccV2.
DELTAS = (0.3, 0.5, 0.7)


@dataclass
class HeldOut:
    """Preprocessed images of one split, in memory.

    Attributes:
        images: ``(N, C, H, W)`` float in [0, 1].
        labels: ``(N,)`` int64 class indices (``(N, K)`` multi-hot for multi-label data).
        masks: ``(N, H, W)`` bool lesion masks (all False without a lesion), or None for
            box-only data (NIH ChestX-ray14, WSOL lists).
        boxes: ``N`` tensors ``(m_i, 4)`` ``(x0, y0, x1, y1)``, exclusive ``x1``/``y1``, in input pixels.
        paths: ``N`` image files.
        box_labels: ``N`` tensors ``(m_i,)`` int64, the class of each box (None: each image's label).
    """

    images: Tensor
    labels: Tensor
    masks: Tensor | None
    boxes: list[Tensor]
    paths: list[str]
    box_labels: list[Tensor] | None = None
    lesion: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.lesion = [i for i, b in enumerate(self.boxes)
                       if b.shape[0] > 0 and (self.masks is None or bool(self.masks[i].any()))]

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[-2]), int(self.images.shape[-1])

    def regions(self, index: Sequence[int]) -> Tensor:
        """``(n, H, W)`` bool lesion regions of images ``index``: the masks, or the union of the boxes."""
        if self.masks is not None:
            return self.masks[list(index)]
        return box_regions([self.boxes[i] for i in index], self.size)

    def __len__(self) -> int:
        return int(self.images.shape[0])


def box_regions(boxes: Sequence[Tensor], size: tuple[int, int]) -> Tensor:
    """``(n, H, W)`` bool: the union of each of the ``n`` box sets ``(m_i, 4)`` (empty sets give no pixel)."""
    from medcam.boxes import region_mask

    out = torch.zeros(len(boxes), *size, dtype=torch.bool)
    for k, b in enumerate(boxes):
        if b.shape[0]:
            out[k] = region_mask(b, size, "inside").any(0)
    return out


def load_heldout(dataset: Any, *, batch_size: int = 32, progress: bool = False, desc: str = "loading") -> HeldOut:
    """Read every item of ``dataset`` (no augmentation) into a :class:`HeldOut`.

    Masks are kept when the items carry them (BUSI, mask folders); box-only
    layouts (NIH, WSOL lists) give ``masks=None``.
    """
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from medcam.data.base import collate

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    images, labels, masks, boxes, box_labels, paths = [], [], [], [], [], []
    for batch in tqdm(loader, desc=desc, leave=False, disable=not show_bar(progress)):
        images.append(batch["image"])
        labels.append(batch["label"])
        if "mask" in batch:
            masks.append(batch["mask"])
        boxes.extend(torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4) for b in batch.get("boxes", ()))
        box_labels.extend(torch.as_tensor(b, dtype=torch.long).reshape(-1) for b in batch.get("box_labels", ()))
        paths.extend(batch["path"])
    n = sum(x.shape[0] for x in images)
    if len(boxes) != n:
        boxes = [torch.zeros(0, 4) for _ in range(n)]
    all_masks = torch.cat(masks).bool() if masks and sum(m.shape[0] for m in masks) == n else None
    if not images:
        raise DataError("the data set is empty: nothing to localize")
    return HeldOut(torch.cat(images), torch.cat(labels).long(), all_masks, boxes, paths,
                   box_labels if len(box_labels) == n else None)


#: Method parameters that change how a method reports progress, not its maps (left out of labels).
QUIET_KEYS = ("progress",)


def method_label(part: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> str:
    """``gradcam``, or ``fpm(key=foreground)`` for parameters that differ from ``defaults``."""
    changed = {k: v for k, v in part.items()
               if k != "name" and k not in QUIET_KEYS and (defaults is None or defaults.get(k) != v)}
    if not changed:
        return str(part["name"])
    return f"{part['name']}(" + ", ".join(f"{k}={v}" for k, v in sorted(changed.items())) + ")"


def _resolve(part: Any) -> dict[str, Any]:
    from medcam.spec import resolve_part

    return resolve_part("attributions", part, "attribution")


def candidate_methods(model: nn.Module, methods: Any, exclude: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(label, resolved part)`` of every method to try on ``model``.

    ``methods="all"``: every registered attribution method (minus ``exclude``)
    with its default parameters, plus the model spec's own ``attribution`` when
    its parameters differ from the defaults (e.g. a WSOL model's ``fpm`` readout
    of the class-agnostic ``foreground`` map). A list: exactly those.
    """
    from medcam.registry import attributions, normalize_name

    excluded = {normalize_name(e) for e in exclude}
    parts: list[dict[str, Any]] = []
    if methods == "all":
        parts = [_resolve(name) for name in attributions.list() if normalize_name(name) not in excluded]
        own = (getattr(model, "spec", None) or {}).get("attribution")
        if own:
            own = _resolve(own)
            if own["name"] not in excluded and own not in parts:
                parts.append(own)
    else:
        parts = [_resolve(m) for m in methods]
    out, seen = [], set()
    for part in parts:
        for key in QUIET_KEYS:  # the benchmark shows its own progress bar
            if key in part:
                part[key] = False
        label = method_label(part, _resolve(part["name"]))
        if label not in seen:
            seen.add(label)
            out.append((label, part))
    return out


def _build(part: Mapping[str, Any]) -> Any:
    from medcam.build import build_attribution

    return build_attribution(dict(part))


def probe_method(model: nn.Module, part: Mapping[str, Any], images: Tensor, targets: Tensor) -> str | None:
    """None when the method runs on ``model`` (tried on a couple of images), else the reason it does not.

    A method that is not meant for a model (CAM without a pooled linear head, the
    FPM readout without a foreground map) raises a ``ValueError`` saying so.
    """
    try:
        method = _build(part)
        maps = method(model, images, target=targets)
    except (ValueError, NotImplementedError, MedcamError) as err:
        return str(err).split("\n")[0]
    if maps.shape != (images.shape[0], *images.shape[-2:]):
        return f"returned maps of shape {tuple(maps.shape)}, expected {(images.shape[0], *images.shape[-2:])}"
    return None


def method_seed(seed: int, *keys: str) -> int:
    """A seed for one (model, method) pair, independent of the order they run in."""
    from medcam.engine.seeding import derive_seed

    return derive_seed(seed, *[zlib.crc32(k.encode("utf-8")) for k in keys])


def compute_maps(model: nn.Module, part: Mapping[str, Any], images: Tensor, targets: Tensor, *, batch_size: int,
                 progress: Callable[[int], None] | None = None) -> tuple[Tensor, float]:
    """Maps ``(N, H, W)`` (CPU, float32, [0, 1]) for ``images`` and their ``targets`` ``(N,)``, and the wall seconds.

    The model runs in eval mode; batches are always the same ``batch_size``
    consecutive images, so batch-dependent heads give the same maps every run.
    """
    method = _build(part)
    device = next(model.parameters()).device
    out = []
    elapsed = 0.0
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].to(device)
        t = targets[start:start + batch_size].to(device)
        began = time.perf_counter()
        maps = method(model, x, target=t)
        elapsed += time.perf_counter() - began
        out.append(maps.detach().float().cpu())
        if progress is not None:
            progress(x.shape[0])
    if not out:
        return torch.zeros(0, *images.shape[-2:]), 0.0
    return torch.cat(out), elapsed


def score_maps(maps: Tensor, held: HeldOut, index: Sequence[int], correct: Tensor | None, *,
               interval: float) -> dict[str, Any]:
    """Every localization metric of ``maps`` (one per image of ``index``) against ``held``'s ground truth.

    See :func:`score_boxes`; ``correct`` is per image of ``held`` (indexed here).
    """
    idx = list(index)
    return score_boxes(maps, [held.boxes[i] for i in idx], None if held.masks is None else held.masks[idx],
                       None if correct is None else correct[idx], interval=interval)


def score_boxes(maps: Tensor, boxes: Sequence[Tensor], masks: Tensor | None, correct: Tensor | None, *,
                interval: float) -> dict[str, Any]:
    """Every localization metric of ``maps`` ``(n, H, W)`` against ``n`` box sets (and masks, when given).

    Args:
        maps: ``(n, H, W)`` maps, one per scored entry.
        boxes: ``n`` tensors ``(m_i, 4)``, ``m_i >= 1``, in map pixels.
        masks: ``(n, H, W)`` bool, or None (box-only data: no PxAP, no pixel IoU).
        correct: ``(n,)`` bool, whether each entry's image is classified right (Top-1 Loc), or None.

    Returns:
        ``{"max_box_acc_v2", "box_acc_v2" {delta: value}, "pxap", "gt_known_loc", "max_box_acc",
        "top1_loc", "mean_iou", "pixel_iou", "thresholds" {...}, "n_images", "curves"}``;
        ``pxap`` / ``pixel_iou`` are None without masks; ``curves`` (box accuracy per threshold,
        per delta and mode) stays out of JSON outputs.
    """
    acc = LocalizationAccumulator(interval=interval, iou_thresholds=DELTAS)
    acc.update(maps, boxes=list(boxes), masks=masks, correct=correct)
    r = acc.compute()
    box = r["box_acc"]
    pixel = r["pixel_iou"] or {"max": None, "threshold": None}
    return {
        "max_box_acc_v2": r["max_box_acc_v2"],
        "box_acc_v2": {str(d): box["all"][d]["max"] for d in DELTAS},
        "pxap": r["pxap"],
        "gt_known_loc": r["gt_known_loc"],
        "max_box_acc": r["max_box_acc"],
        "top1_loc": r["top1_loc"],
        "mean_iou": r["mean_box_iou"]["all"]["max"],
        "pixel_iou": pixel["max"],
        "thresholds": {"box_acc_v2": {str(d): box["all"][d]["threshold"] for d in DELTAS},
                       "gt_known_loc": box["largest"][0.5]["threshold"],
                       "mean_iou": r["mean_box_iou"]["all"]["threshold"],
                       "pixel_iou": pixel["threshold"]},
        "n_images": r["n_box_images"],
        "curves": {"thresholds": r["thresholds"],
                   "all": {str(d): box["all"][d]["curve"] for d in DELTAS},
                   "largest": {str(d): box["largest"][d]["curve"] for d in DELTAS}},
    }


def at_thresholds(test: Mapping[str, Any], val: Mapping[str, Any]) -> dict[str, Any]:
    """Test box accuracies read at the thresholds that are best on the validation split.

    Returns ``{"box_acc_v2_at_val_tau", "gt_known_loc_at_val_tau", "val_tau" {delta: tau}}``.
    """
    taus = np.asarray(test["curves"]["thresholds"])
    out_v2, chosen = [], {}
    for d in (str(x) for x in DELTAS):
        best = int(np.argmax(val["curves"]["all"][d]))
        chosen[d] = float(taus[best])
        out_v2.append(float(test["curves"]["all"][d][best]))
    best50 = int(np.argmax(val["curves"]["largest"]["0.5"]))
    return {"box_acc_v2_at_val_tau": float(np.mean(out_v2)),
            "gt_known_loc_at_val_tau": float(test["curves"]["largest"]["0.5"][best50]),
            "val_tau": {"box_acc_v2": chosen, "gt_known_loc": float(taus[best50])}}


@torch.no_grad()
def predict_logits(model: nn.Module, images: Tensor, *, batch_size: int = 32) -> Tensor:
    """Logits ``(N, K)`` (CPU, float32) of ``images`` ``(N, C, H, W)``, in eval mode (the mode is restored)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    try:
        for start in range(0, images.shape[0], batch_size):
            out.append(model(images[start:start + batch_size].to(device)).logits.float().cpu())
    finally:
        model.train(was)
    return torch.cat(out) if out else torch.zeros(0, getattr(model, "num_classes", 0))


def classify(model: nn.Module, held: HeldOut, class_names: Sequence[str], *, batch_size: int = 32) -> dict[str, Any]:
    """Classification of every held-out image (lesion or not).

    Returns ``{"metrics": classification_metrics(...), "pred": (N,) int64}``.
    """
    p = torch.softmax(predict_logits(model, held.images, batch_size=batch_size), 1)
    metrics = classification_metrics(p, held.labels, class_names=list(class_names))
    return {"metrics": metrics, "pred": p.argmax(1)}


#: The columns of :func:`localization_summary` rows and their printed names.
SUMMARY_KEYS = (("max_box_acc_v2", "MaxBoxAccV2"), ("pxap", "PxAP"), ("gt_known_loc", "GT-known Loc"),
                ("mean_iou", "mean IoU"))


def localization_summary(model: nn.Module, dataset: Any, *, methods: Sequence[Any] = ("gradcam",),
                         interval: float = 0.01, batch_size: int = 16, progress: bool = False) -> dict[str, Any]:
    """Score attribution methods of ``model`` on ``dataset``'s lesion images, next to a model-free floor.

    Maps are computed for each image's ground-truth class and scored with
    :func:`score_maps` (MaxBoxAccV2, PxAP, GT-known Loc, mean IoU; Choe et al.,
    CVPR 2020); the floor is a centred Gaussian (sigma 0.25 of the side), whose
    threshold sweep tries every centred box. Images without a lesion mask are
    skipped (they have nothing to localize).

    Args:
        model: a medcam model.
        dataset: items with ``image``, ``label``, ``mask`` and ``boxes`` (BUSI layouts), no augmentation.
        methods: attribution names or part specs, all scored (none is picked by its score).

    Returns:
        ``{"methods", "n_images", "rows": {label: {"max_box_acc_v2", "pxap", "gt_known_loc", "mean_iou"}}}``
        with a row per method and ``"center_gaussian"``; ``n_images`` 0 and empty rows without lesions.
    """
    from .baselines import center_gaussian_maps

    parts = [_resolve(m) for m in methods]
    labels = [method_label(p, _resolve(p["name"])) for p in parts]
    held = load_heldout(dataset, batch_size=batch_size, progress=progress, desc="localization")
    idx = held.lesion
    if not idx:
        return {"methods": labels, "n_images": 0, "rows": {}}
    candidates = [(label, compute_maps(model, part, held.images[idx], held.labels[idx], batch_size=batch_size)[0])
                  for label, part in zip(labels, parts)]   # attribution runs in eval mode, then restores the mode
    candidates.append(("center_gaussian", center_gaussian_maps(len(idx), held.size)))
    rows = {}
    for name, maps in candidates:
        scores = score_maps(maps, held, idx, None, interval=interval)
        rows[name] = {key: scores[key] for key, _ in SUMMARY_KEYS}
    return {"methods": labels, "n_images": len(idx), "rows": rows}


def format_localization(summary: Mapping[str, Any]) -> str:
    """The text table of a :func:`localization_summary` (percentages; mean IoU in [0, 1])."""
    if not summary["n_images"]:
        return "no held-out image has a lesion mask or boxes: nothing to localize"
    width = max(len("centre Gaussian (floor)"), *(len(k) for k in summary["rows"]))
    head = f"  {'':<{width}}" + "".join(f"{title:>14}" for _, title in SUMMARY_KEYS)
    lines = [head]
    for name, row in summary["rows"].items():
        shown = "centre Gaussian (floor)" if name == "center_gaussian" else name
        cells = "".join(f"{row[k]:>14.3f}" if k == "mean_iou" else f"{row[k]:>14.1f}" for k, _ in SUMMARY_KEYS)
        lines.append(f"  {shown:<{width}}{cells}")
    return "\n".join(lines)
