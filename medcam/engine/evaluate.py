"""Predict a data set and score the predictions.

:func:`predict` runs a model over a data set (sharded over processes when
training under ``torchrun``) and returns every probability in data-set order;
:func:`evaluate` turns them into :func:`~medcam.metrics.classification.classification_metrics`.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm
from medcam.progress import show_bar

from medcam.errors import DataError
from medcam.metrics.classification import classification_metrics

from .batch import class_names_of, to_device
from .distributed import DistContext

__all__ = ["Predictions", "predict", "evaluate", "default_collate"]


def default_collate() -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """The data package's collate function (stacks images, labels, masks; keeps boxes and paths as lists)."""
    from medcam.data.base import collate

    return collate


@dataclass
class Predictions:
    """Model outputs for a whole data set, in data-set order.

    Attributes:
        probs: ``(N, K)`` float32 softmax (or per-label sigmoid) probabilities.
        labels: ``(N,)`` int64 class indices or ``(N, K)`` float multi-hot targets.
        loss: mean cross-entropy (binary cross-entropy per label for multi-label models).
    """

    probs: Tensor
    labels: Tensor
    loss: float


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, *, batch_size: int = 64, device: torch.device | str | None = None,
            num_workers: int = 0, collate_fn: Callable[..., Any] | None = None, dist: DistContext | None = None,
            amp_dtype: torch.dtype | None = None, progress: bool = False, desc: str = "eval") -> Predictions:
    """Probabilities of ``model`` on every item of ``dataset``.

    Under a multi-process :class:`DistContext` each process predicts every W-th
    item and the results are gathered, so every process returns all N rows.
    The model's train/eval mode is restored afterwards.

    Args:
        model: a :class:`~medcam.model.MedcamModel` (or a module returning its ``ModelOutput``).
        dataset: items ``{"image": (C, H, W), "label": int | (K,), ...}``.
        batch_size: items per forward pass.
        device: defaults to the model's device.
    """
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise DataError("cannot evaluate on an empty data set")
    dist = dist or DistContext()
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    multilabel = bool(getattr(model, "multilabel", False))
    indices = list(range(dist.rank, n, dist.world_size))
    loader = DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_fn or default_collate())
    was_training = model.training
    model.eval()
    probs, labels = [], []
    loss_sum = 0.0
    try:
        bar = tqdm(loader, desc=desc, leave=False, disable=not show_bar(progress and dist.is_main), file=sys.stderr,
                   dynamic_ncols=True)
        for batch in bar:
            batch = to_device(batch, device)
            with _autocast(device, amp_dtype):
                logits = model(batch["image"]).logits
            logits = logits.float()
            y = batch["label"]
            if multilabel:
                loss_sum += float(F.binary_cross_entropy_with_logits(logits, y.float(), reduction="sum"))
                probs.append(torch.sigmoid(logits).cpu())
            else:
                loss_sum += float(F.cross_entropy(logits, y.long(), reduction="sum"))
                probs.append(torch.softmax(logits, dim=1).cpu())
            labels.append(y.cpu())
    finally:
        model.train(was_training)
    local = (torch.cat(probs) if probs else torch.zeros(0), torch.cat(labels) if labels else torch.zeros(0),
             torch.tensor(indices, dtype=torch.long), loss_sum)
    parts = dist.gather(local)
    order = torch.cat([p[2] for p in parts]).argsort()
    all_probs = torch.cat([p[0] for p in parts if p[0].numel()])[order]
    all_labels = torch.cat([p[1] for p in parts if p[1].numel()])[order]
    total_loss = sum(p[3] for p in parts)
    divisor = n * all_probs.shape[1] if multilabel else n
    return Predictions(probs=all_probs, labels=all_labels, loss=total_loss / divisor)


def evaluate(model: nn.Module, dataset: Dataset, *, class_names: Sequence[str] | None = None,
             **predict_kwargs: Any) -> dict[str, Any]:
    """Classification metrics of ``model`` on ``dataset`` plus its mean ``loss``.

    Returns the dict of :func:`~medcam.metrics.classification.classification_metrics`
    (accuracy, balanced accuracy, AUC, per-class precision/recall/F1/AUC,
    confusion matrix) with ``"loss"`` added. Class names default to the
    model's, then the data set's.
    """
    preds = predict(model, dataset, **predict_kwargs)
    names = class_names or getattr(model, "spec", {}).get("class_names") or class_names_of(dataset)
    if names is not None and len(names) != preds.probs.shape[1]:
        names = None
    metrics = classification_metrics(preds.probs, preds.labels, multilabel=bool(getattr(model, "multilabel", False)),
                                     class_names=names)
    metrics["loss"] = preds.loss
    return metrics
