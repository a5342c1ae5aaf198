"""Moving batches to a device and reading a data set's labels without loading its images."""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from medcam.errors import DataError

__all__ = ["to_device", "labels_of", "class_names_of", "class_counts"]


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """A copy of ``batch`` with its tensors (and lists of tensors, e.g. ``boxes``) on ``device``."""
    out: dict[str, Any] = {}
    non_blocking = device.type == "cuda"
    for key, value in batch.items():
        if isinstance(value, Tensor):
            out[key] = value.to(device, non_blocking=non_blocking)
        elif isinstance(value, list) and value and all(isinstance(v, Tensor) for v in value):
            out[key] = [v.to(device, non_blocking=non_blocking) for v in value]
        else:
            out[key] = value
    return out


def labels_of(dataset: Dataset) -> Tensor:
    """All labels of ``dataset``: ``(N,)`` int64 class indices or ``(N, K)`` float multi-hot.

    Reads the data set's ``labels`` (or ``targets``) attribute when it has one,
    follows :class:`torch.utils.data.Subset`, and otherwise reads every item
    (slow: it loads the images).
    """
    if isinstance(dataset, Subset):
        return labels_of(dataset.dataset)[torch.as_tensor(list(dataset.indices), dtype=torch.long)]
    for attr in ("labels", "targets"):
        value = getattr(dataset, attr, None)
        if value is not None and not callable(value):
            labels = torch.as_tensor(value)
            break
    else:
        items = [dataset[i]["label"] for i in range(len(dataset))]  # type: ignore[arg-type]
        labels = torch.stack([torch.as_tensor(v) for v in items]) if items else torch.zeros(0, dtype=torch.long)
    if labels.dim() == 1:
        return labels.long()
    if labels.dim() == 2:
        return labels.float()
    raise DataError(f"labels must be (N,) class indices or (N, K) multi-hot, got shape {tuple(labels.shape)}")


def class_names_of(dataset: Dataset) -> list[str] | None:
    """The data set's class names (``class_names`` or ``classes`` attribute), following Subsets."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    for attr in ("class_names", "classes"):
        value = getattr(dataset, attr, None)
        if value is not None and not callable(value):
            return [str(v) for v in value]
    return None


def class_counts(labels: Tensor, num_classes: int) -> list[int]:
    """Training count per class (multi-class) or positives per label (multi-label)."""
    if labels.dim() == 2:
        if labels.shape[1] != num_classes:
            raise DataError(f"multi-hot labels have {labels.shape[1]} columns but the model has {num_classes} classes")
        return [int(v) for v in (labels > 0.5).sum(0)]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise DataError(f"labels lie in [{int(labels.min())}, {int(labels.max())}] but the model has "
                        f"num_classes={num_classes}; set num_classes in the spec to the data set's number of classes")
    return [int(v) for v in torch.bincount(labels, minlength=num_classes)]
