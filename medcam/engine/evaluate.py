"""Predict a data set and score the predictions.

:func:`predict` runs a model over a data set (sharded over processes when
training under ``torchrun``) and returns every probability in data-set order;
:func:`evaluate` turns them into :func:`~medcam.metrics.classification.classification_metrics`.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

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

__all__ = ["Predictions", "predict", "evaluate", "default_collate", "autocast_context", "eval_batches",
           "gather_in_order"]


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


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """Autocast to ``dtype`` on ``device``, or nothing when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def eval_batches(model: nn.Module, dataset: Dataset, indices: Sequence[int], *, batch_size: int,
                 device: torch.device, num_workers: int = 0, collate_fn: Callable[..., Any] | None = None,
                 progress: bool = False, desc: str = "eval") -> Iterator[dict[str, Any]]:
    """The items ``indices`` of ``dataset`` in batches on ``device``, with ``model`` in eval mode meanwhile.

    The model's train/eval mode is restored when the iteration ends (or stops early).
    """
    loader = DataLoader(Subset(dataset, list(indices)), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, collate_fn=collate_fn or default_collate())
    was_training = model.training
    model.eval()
    try:
        for batch in tqdm(loader, desc=desc, leave=False, disable=not show_bar(progress), file=sys.stderr,
                          dynamic_ncols=True):
            yield to_device(batch, device)
    finally:
        model.train(was_training)


def gather_in_order(dist: DistContext, rows: Sequence[Tensor], indices: Sequence[int], total: float
                    ) -> tuple[list[Tensor], float]:
    """Every process's ``rows`` (one tensor per quantity, a row per item of ``indices``) in data-set order,
    and the sum of their ``total``."""
    parts = dist.gather((*rows, torch.tensor(list(indices), dtype=torch.long), total))
    k = len(rows)
    order = torch.cat([p[k] for p in parts]).argsort()
    return [torch.cat([p[i] for p in parts if p[i].numel()])[order] for i in range(k)], sum(p[k + 1] for p in parts)


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
    device = torch.device(device if device is not None else next(model.parameters()).device)
    multilabel = bool(getattr(model, "multilabel", False))
    indices = list(range(dist.rank, n, dist.world_size))
    probs, labels = [], []
    loss_sum = 0.0
    for batch in eval_batches(model, dataset, indices, batch_size=batch_size, device=device, num_workers=num_workers,
                              collate_fn=collate_fn, progress=progress and dist.is_main, desc=desc):
        with autocast_context(device, amp_dtype):
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
    local = [torch.cat(probs) if probs else torch.zeros(0), torch.cat(labels) if labels else torch.zeros(0)]
    (all_probs, all_labels), total_loss = gather_in_order(dist, local, indices, loss_sum)
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
