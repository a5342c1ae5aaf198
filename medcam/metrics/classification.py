"""Classification metrics, vectorized in torch: confusion matrix, accuracy,
balanced accuracy, per-class precision / recall / F1 and ROC-AUC.

Inputs follow the batch conventions of :mod:`medcam`:

* multi-class: ``probs`` ``(N, K)`` class scores (probabilities or logits: only
  their order matters for AUC; the prediction is the arg-max) and ``labels``
  ``(N,)`` integer class indices in ``[0, K)``;
* multi-label: ``probs`` ``(N, K)`` per-label probabilities and ``labels``
  ``(N, K)`` multi-hot targets; a label is predicted when ``prob >= threshold``.

Every function accepts torch tensors or NumPy arrays and returns torch tensors
or Python floats; :func:`classification_metrics` returns a JSON-ready dict.
The definitions match scikit-learn's (``confusion_matrix``,
``balanced_accuracy_score``, ``precision_recall_fscore_support`` with
``zero_division=0``, ``roc_auc_score``), which the tests check.

ROC-AUC is computed from ranks (the Mann-Whitney U statistic; Hanley & McNeil,
Radiology 1982): with ``R_+`` the sum of the 1-based ranks of the ``P``
positive scores among all ``N`` (ties get their average rank),

    AUC = (R_+ - P (P + 1) / 2) / (P (N - P)),

the probability that a random positive scores above a random negative (ties
count one half). It is undefined (``nan``) when a class has no positive or no
negative sample.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from medcam.errors import ShapeError

__all__ = [
    "confusion_matrix",
    "multilabel_confusion_matrix",
    "accuracy",
    "balanced_accuracy",
    "precision_recall_f1",
    "roc_auc",
    "classification_metrics",
]


def _tensor(x: Any, what: str) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach().cpu()
    if isinstance(x, (np.ndarray, list, tuple)):
        return torch.as_tensor(np.asarray(x))
    raise ShapeError(f"{what} must be a torch.Tensor or NumPy array, got {type(x).__name__}")


def _class_indices(labels: Any, num_classes: int, what: str = "labels") -> Tensor:
    t = _tensor(labels, what)
    if t.dim() != 1:
        raise ShapeError(f"{what} must be (N,) class indices, got shape {tuple(t.shape)}")
    if t.is_floating_point():
        if not torch.equal(t, t.round()):
            raise ShapeError(f"{what} must be integer class indices, got non-integer floats")
    t = t.long()
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ShapeError(f"{what} must lie in [0, {num_classes}), got values in [{int(t.min())}, {int(t.max())}]")
    return t


def confusion_matrix(labels: Any, preds: Any, num_classes: int) -> Tensor:
    """``(K, K)`` int64 counts; row = true class, column = predicted class.

    Args:
        labels: ``(N,)`` true class indices in ``[0, K)``.
        preds: ``(N,)`` predicted class indices in ``[0, K)``.
        num_classes: K.
    """
    y = _class_indices(labels, num_classes, "labels")
    p = _class_indices(preds, num_classes, "preds")
    if y.shape != p.shape:
        raise ShapeError(f"labels {tuple(y.shape)} and preds {tuple(p.shape)} must have the same length")
    return torch.bincount(y * num_classes + p, minlength=num_classes * num_classes).view(num_classes, num_classes)


def multilabel_confusion_matrix(targets: Any, preds: Any) -> Tensor:
    """``(K, 2, 2)`` int64: per label ``[[TN, FP], [FN, TP]]`` (scikit-learn's layout).

    Args:
        targets: ``(N, K)`` multi-hot truth (0/1 or bool).
        preds: ``(N, K)`` multi-hot predictions.
    """
    t = _tensor(targets, "targets")
    p = _tensor(preds, "preds")
    if t.dim() != 2 or t.shape != p.shape:
        raise ShapeError(f"targets and preds must both be (N, K), got {tuple(t.shape)} and {tuple(p.shape)}")
    t, p = t.bool(), p.bool()
    tp = (t & p).sum(0)
    fp = (~t & p).sum(0)
    fn = (t & ~p).sum(0)
    tn = (~t & ~p).sum(0)
    return torch.stack([torch.stack([tn, fp], -1), torch.stack([fn, tp], -1)], -2).long()


def accuracy(labels: Any, preds: Any) -> float:
    """Fraction of exact matches: ``(N,)`` indices, or ``(N, K)`` multi-hot rows (subset accuracy)."""
    y, p = _tensor(labels, "labels"), _tensor(preds, "preds")
    if y.shape != p.shape:
        raise ShapeError(f"labels {tuple(y.shape)} and preds {tuple(p.shape)} must have the same shape")
    if y.numel() == 0:
        raise ShapeError("accuracy of an empty set is undefined")
    eq = y.long() == p.long()
    if eq.dim() == 2:
        eq = eq.all(1)
    return float(eq.double().mean())


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    num, den = num.double(), den.double()
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.zeros_like(num))


def _prf_from_counts(tp: Tensor, fp: Tensor, fn: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    return precision, recall, f1


def precision_recall_f1(labels: Any, preds: Any, num_classes: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-class ``(precision, recall, f1, support)``, each ``(K,)`` (a ratio with zero denominator is 0).

    Args:
        labels: ``(N,)`` true class indices.
        preds: ``(N,)`` predicted class indices.
        num_classes: K.
    """
    cm = confusion_matrix(labels, preds, num_classes)
    tp = cm.diagonal()
    precision, recall, f1 = _prf_from_counts(tp, cm.sum(0) - tp, cm.sum(1) - tp)
    return precision, recall, f1, cm.sum(1)


def balanced_accuracy(labels: Any, preds: Any, num_classes: int) -> float:
    """Mean recall over the classes present in ``labels`` (``(N,)`` indices).

    For two classes this is ``(sensitivity + specificity) / 2``; chance level is ``1 / K``.
    """
    _, recall, _, support = precision_recall_f1(labels, preds, num_classes)
    present = support > 0
    if not bool(present.any()):
        raise ShapeError("balanced accuracy of an empty set is undefined")
    return float(recall[present].mean())


def _average_ranks(scores: Tensor) -> Tensor:
    """1-based ranks of every column of ``scores`` ``(N, K)`` within its column; ties share their mean rank."""
    n, k = scores.shape
    order = scores.argsort(dim=0, stable=True)
    ordered = scores.gather(0, order)
    new_group = torch.ones_like(ordered, dtype=torch.bool)
    new_group[1:] = ordered[1:] != ordered[:-1]
    group = new_group.long().cumsum(0) - 1 + torch.arange(k).mul(n)[None, :]  # unique id per (column, tie group)
    position = torch.arange(1, n + 1, dtype=torch.float64)[:, None].expand(n, k)
    flat = group.reshape(-1)
    total = torch.zeros(n * k, dtype=torch.float64).index_add_(0, flat, position.reshape(-1))
    count = torch.zeros(n * k, dtype=torch.float64).index_add_(0, flat, torch.ones(n * k, dtype=torch.float64))
    mean_rank = (total / count.clamp_min(1))[group]
    ranks = torch.empty_like(mean_rank)
    ranks.scatter_(0, order, mean_rank)
    return ranks


def roc_auc(scores: Any, targets: Any) -> Tensor:
    """Per-column ROC-AUC ``(K,)`` float64; ``nan`` where a column lacks positives or negatives.

    Args:
        scores: ``(N, K)`` scores (higher = more positive) or ``(N,)`` for one column.
        targets: ``(N, K)`` binary truth, or ``(N,)`` integer class indices for a
            multi-class problem (then column k is one-vs-rest: class k against the others).
    """
    s = _tensor(scores, "scores").double()
    if s.dim() == 1:
        s = s[:, None]
    if s.dim() != 2:
        raise ShapeError(f"scores must be (N, K) or (N,), got {tuple(s.shape)}")
    t = _tensor(targets, "targets")
    if t.dim() == 1 and s.shape[1] > 1:
        t = torch.nn.functional.one_hot(_class_indices(t, s.shape[1], "targets"), s.shape[1])
    elif t.dim() == 1:
        t = t[:, None]
    if t.shape != s.shape:
        raise ShapeError(f"targets {tuple(t.shape)} do not match scores {tuple(s.shape)}")
    if torch.isnan(s).any():
        raise ShapeError("scores contain NaN")
    pos = t.bool()
    n_pos = pos.sum(0).double()
    n_neg = s.shape[0] - n_pos
    rank_sum = (_average_ranks(s) * pos).sum(0)
    auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return torch.where((n_pos > 0) & (n_neg > 0), auc, torch.full_like(auc, math.nan))


def _nanmean(values: Tensor) -> float | None:
    ok = ~torch.isnan(values)
    return float(values[ok].mean()) if bool(ok.any()) else None


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def classification_metrics(probs: Any, labels: Any, *, multilabel: bool = False,
                           class_names: Sequence[str] | None = None, threshold: float = 0.5) -> dict[str, Any]:
    """Every classification metric medcam reports, as a JSON-ready dict.

    Args:
        probs: ``(N, K)`` class probabilities (softmax rows, or per-label sigmoids).
        labels: ``(N,)`` class indices, or ``(N, K)`` multi-hot targets when ``multilabel``.
        multilabel: one independent decision per label (threshold) instead of arg-max.
        class_names: K names used as keys of ``per_class`` (default ``"0"``, ``"1"``, ...).
        threshold: multi-label decision threshold on ``probs``.

    Returns:
        ``{"n", "accuracy", "balanced_accuracy", "auc", "macro_f1", "per_class":
        {name: {"precision", "recall", "f1", "auc", "support"}}, "confusion_matrix"}``.
        Multi-class: ``accuracy`` is top-1, ``balanced_accuracy`` the mean per-class
        recall, ``auc`` the macro one-vs-rest AUC over classes where it is defined
        (for K = 2, the AUC of class 1's score, as scikit-learn's binary AUC),
        ``confusion_matrix`` ``K x K`` (rows true). Multi-label: ``accuracy`` is the
        exact-match ratio, ``balanced_accuracy`` the mean over labels of
        ``(TPR + TNR) / 2``, ``auc`` the mean per-label AUC, ``confusion_matrix``
        ``K x 2 x 2`` (``[[TN, FP], [FN, TP]]`` per label). Undefined values are ``None``.
    """
    p = _tensor(probs, "probs").double()
    if p.dim() != 2:
        raise ShapeError(f"probs must be (N, K), got shape {tuple(p.shape)}")
    n, k = p.shape
    if n == 0:
        raise ShapeError("cannot compute metrics on an empty set (N = 0)")
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ShapeError(f"{len(names)} class names for {k} score columns")
    y = _tensor(labels, "labels")
    if multilabel:
        if y.shape != p.shape:
            raise ShapeError(f"multi-label targets must be (N, K) = {tuple(p.shape)}, got {tuple(y.shape)}")
        target = y.bool()
        pred = p >= threshold
        mcm = multilabel_confusion_matrix(target, pred)
        tn, fp, fn, tp = mcm[:, 0, 0], mcm[:, 0, 1], mcm[:, 1, 0], mcm[:, 1, 1]
        precision, recall, f1 = _prf_from_counts(tp, fp, fn)
        specificity = _safe_div(tn, tn + fp)
        support = tp + fn
        auc = roc_auc(p, target)
        return {
            "n": n,
            "accuracy": accuracy(target, pred),
            "balanced_accuracy": float(((recall + specificity) / 2).mean()),
            "auc": _nanmean(auc),
            "macro_f1": float(f1.mean()),
            "per_class": {names[i]: {"precision": float(precision[i]), "recall": float(recall[i]),
                                     "f1": float(f1[i]), "auc": _finite(float(auc[i])), "support": int(support[i])}
                          for i in range(k)},
            "confusion_matrix": mcm.tolist(),
        }
    y = _class_indices(y, k, "labels")
    if y.shape[0] != n:
        raise ShapeError(f"{y.shape[0]} labels for {n} rows of probs")
    pred = p.argmax(1)
    cm = confusion_matrix(y, pred, k)
    tp = cm.diagonal()
    precision, recall, f1 = _prf_from_counts(tp, cm.sum(0) - tp, cm.sum(1) - tp)
    support = cm.sum(1)
    auc = roc_auc(p, y)
    return {
        "n": n,
        "accuracy": float(tp.sum()) / n,
        "balanced_accuracy": float(recall[support > 0].mean()),
        "auc": _finite(float(auc[1])) if k == 2 else _nanmean(auc),
        "macro_f1": float(f1.mean()),
        "per_class": {names[i]: {"precision": float(precision[i]), "recall": float(recall[i]),
                                 "f1": float(f1[i]), "auc": _finite(float(auc[i])), "support": int(support[i])}
                      for i in range(k)},
        "confusion_matrix": cm.tolist(),
    }
