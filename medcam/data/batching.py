"""Batches of data-set items: :func:`collate` (the engine's default ``collate_fn``)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from ..errors import DataError

__all__ = ["collate"]


def collate(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack dataset items into a batch.

    Returns:
        ``{"image": (B, C, H, W), "label": (B,) int64 or (B, K) float32,
        "mask": (B, H, W) bool (if the items have masks), "boxes": list of (N_i, 4),
        "box_labels": list of (N_i,), "path": list of str, "index": (B,) int64}``.

    Raises:
        DataError: items of different image sizes (use ``resize: square`` or
        ``pad``, or a ``size`` crop) or with different keys.
    """
    if not items:
        raise DataError("collate: empty batch")
    keys = set(items[0])
    for it in items[1:]:
        if set(it) != keys:
            raise DataError(f"collate: items have different keys ({sorted(keys)} vs {sorted(it)})")
    shapes = {tuple(it["image"].shape) for it in items}
    if len(shapes) > 1:
        raise DataError(f"collate: images in one batch differ in size {sorted(shapes)}; preprocess them to one "
                        f"size (preprocess.resize 'square' or 'pad', or a crop to preprocess.size)")
    batch: dict[str, Any] = {"image": torch.stack([it["image"] for it in items])}
    labels = [it["label"] for it in items]
    if isinstance(labels[0], Tensor) and labels[0].dim() == 1:
        batch["label"] = torch.stack(labels).float()
    else:
        batch["label"] = torch.as_tensor([int(x) for x in labels], dtype=torch.long)
    if "mask" in keys:
        batch["mask"] = torch.stack([it["mask"] for it in items]).bool()
    if "boxes" in keys:
        batch["boxes"] = [it["boxes"] for it in items]
    if "box_labels" in keys:
        batch["box_labels"] = [it["box_labels"] for it in items]
    if "path" in keys:
        batch["path"] = [it["path"] for it in items]
    if "index" in keys:
        batch["index"] = torch.as_tensor([int(it["index"]) for it in items], dtype=torch.long)
    for key in keys - {"image", "label", "mask", "boxes", "box_labels", "path", "index"}:
        values = [it[key] for it in items]
        batch[key] = torch.stack(values) if isinstance(values[0], Tensor) else values
    return batch
