"""Score a segmenter on a data set with masks: its loss, Dice, IoU and box accuracy, overall and per image class.

The segmentation counterpart of :func:`medcam.engine.evaluate.evaluate`: the
same sharding over processes under ``torchrun``, the same batches; the
scores are those of :func:`medcam.metrics.segmentation.segmentation_metrics`.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset

from medcam.errors import DataError
from medcam.metrics.segmentation import mask_stats, segmentation_metrics

from .batch import class_names_of
from .distributed import DistContext
from .evaluate import autocast_context, eval_batches, gather_in_order

__all__ = ["evaluate_segmenter", "require_masks", "MASK_THRESHOLD"]

#: A pixel is foreground when ``sigmoid(logit) > MASK_THRESHOLD`` (as :meth:`MedcamSegmenter.predict_mask`).
MASK_THRESHOLD = 0.5


def require_masks(dataset: Any, where: str = "the data set") -> None:
    """Raise unless ``dataset`` yields masks (``has_masks``, following Subsets; else its first item's keys).

    Raises:
        DataError: one line naming the layouts that have masks.
    """
    base = dataset
    while isinstance(base, Subset):
        base = base.dataset
    has = getattr(base, "has_masks", None)
    if has is None:
        has = len(dataset) > 0 and "mask" in dataset[0]
    if not has:
        layout = getattr(base, "layout", None)
        raise DataError(f"{where}{f' ({layout} layout)' if layout else ''} has no masks, and a segmenter trains "
                        f"and is scored on masks; use a layout with masks: busi, or masks (images/ + masks/ "
                        f"folders with matching file names)")


def _loss_fn(model: nn.Module) -> Callable[..., Any] | None:
    """The segmenter spec's loss (for the validation loss), or None when the spec has none."""
    spec = getattr(model, "spec", None) or {}
    if not spec.get("loss"):
        return None
    from medcam.build import build_loss

    return build_loss(spec, num_classes=int(spec.get("num_classes", 1)), multilabel=False)


@torch.no_grad()
def evaluate_segmenter(model: nn.Module, dataset: Dataset, *, batch_size: int = 64,
                       device: torch.device | str | None = None, num_workers: int = 0,
                       collate_fn: Callable[..., Any] | None = None, dist: DistContext | None = None,
                       amp_dtype: torch.dtype | None = None, progress: bool = False, desc: str = "eval",
                       threshold: float = MASK_THRESHOLD, class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Scores of a one-channel segmenter's masks (``sigmoid > threshold``) against the data set's masks.

    Args:
        model: a :class:`~medcam.model.MedcamSegmenter` (images ``(B, C, H, W)`` in [0, 1] ->
            logits ``(B, 1, H, W)``); its train/eval mode is restored afterwards.
        dataset: items with ``"image"``, ``"mask"`` ``(H, W)`` bool and ``"label"`` (the image class).
        class_names: names of the image classes (default: the data set's).

    Returns:
        :func:`~medcam.metrics.segmentation.segmentation_metrics` of every item, plus
        ``"loss"``: the spec's loss averaged over the batches, weighted by their size
        (``None`` when the spec has no loss).
    """
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise DataError("cannot evaluate on an empty data set")
    require_masks(dataset)
    dist = dist or DistContext()
    device = torch.device(device if device is not None else next(model.parameters()).device)
    indices = list(range(dist.rank, n, dist.world_size))
    loss_fn = _loss_fn(model)
    if loss_fn is not None:
        loss_fn.to(device)
    stats: list[Tensor] = []
    labels: list[Tensor] = []
    loss_sum = 0.0
    for batch in eval_batches(model, dataset, indices, batch_size=batch_size, device=device, num_workers=num_workers,
                              collate_fn=collate_fn, progress=progress and dist.is_main, desc=desc):
        with autocast_context(device, amp_dtype):
            logits = model(batch["image"])
        logits = logits.float()
        if loss_fn is not None:
            loss_sum += float(loss_fn(logits, batch, model)[0]) * logits.shape[0]
        stats.append(mask_stats(torch.sigmoid(logits[:, 0]) > threshold, batch["mask"]))
        labels.append(torch.as_tensor(batch["label"]).cpu())
    local = [torch.cat(stats) if stats else torch.zeros(0), torch.cat(labels) if labels else torch.zeros(0)]
    (all_stats, all_labels), total_loss = gather_in_order(dist, local, indices, loss_sum)
    names = class_names or class_names_of(dataset)
    metrics = segmentation_metrics(all_stats, all_labels if all_labels.dim() == 1 else None, names)
    metrics["loss"] = total_loss / n if loss_fn is not None else None
    return metrics
