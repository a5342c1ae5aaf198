"""CrossEntropy: the classification loss, multi-class or multi-label."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medcam.errors import SpecError


class CrossEntropy(nn.Module):
    """Softmax cross-entropy on ``output.logits`` ``(B, K)`` with ``batch["label"]`` ``(B,)``,
    or, for multi-label models, binary cross-entropy with ``(B, K)`` multi-hot labels.

    ``class_weights="balanced"`` weights class ``k`` by ``N / (K * n_k)`` (n_k its
    training count; for multi-label, the positive weight ``(N - n_k) / n_k``), once
    :meth:`set_class_counts` has been called. ``class_weights="batch"`` counts
    in every batch instead (:func:`medcam_basic.imbalance.batch_class_weights`:
    ``B / (K' n_k)`` over the classes present; for multi-label one positive
    weight ``#negatives / #positives`` over the batch's labels). ``label_smoothing`` in ``[0, 1)``
    is declared and checked by the registered ``ce`` factory (:mod:`medcam_basic.entries`).
    """

    def __init__(self, num_classes: int, multilabel: bool, class_weights: Sequence[float] | str | None = None,
                 label_smoothing: float = 0.0):
        super().__init__()
        self.num_classes, self.multilabel = num_classes, multilabel
        self.label_smoothing = label_smoothing
        self.balanced = class_weights == "balanced"
        self.per_batch = class_weights == "batch"
        if isinstance(class_weights, str) and not (self.balanced or self.per_batch):
            raise SpecError(f"class_weights: expected a list of {num_classes} numbers, 'balanced', 'batch' or null, "
                            f"got {class_weights!r}")
        weights = None
        if class_weights is not None and not isinstance(class_weights, str):
            if len(class_weights) != num_classes:
                raise SpecError(f"class_weights: {len(class_weights)} weights for {num_classes} classes")
            weights = torch.tensor([float(w) for w in class_weights])
        self.register_buffer("weight", weights, persistent=False)

    def set_class_counts(self, counts: Sequence[int]) -> None:
        """Derive ``"balanced"`` weights from per-class training counts (ignored otherwise)."""
        if not self.balanced:
            return
        if len(counts) != self.num_classes:
            raise ValueError(f"{len(counts)} class counts for {self.num_classes} classes")
        n = torch.tensor([max(int(c), 1) for c in counts], dtype=torch.float32)
        total = float(sum(int(c) for c in counts))
        self.weight = ((total - n) / n) if self.multilabel else total / (self.num_classes * n)

    def forward(self, output: Any, batch: Mapping[str, Any], model: Any = None) -> Tensor:
        logits: Tensor = output.logits
        labels: Tensor = batch["label"].to(logits.device)
        weight = self.weight.to(logits.device) if self.weight is not None else None
        if self.per_batch:
            from .imbalance import batch_class_weights

            weight = batch_class_weights(labels, self.num_classes, self.multilabel)
        if self.balanced and weight is None:
            raise RuntimeError("class_weights='balanced' needs set_class_counts() before the first step")
        if self.multilabel:
            target = labels.float()
            if target.shape != logits.shape:
                raise ValueError(f"multi-label targets must be (B, K) = {tuple(logits.shape)}, got {tuple(target.shape)}")
            if self.label_smoothing:
                target = target * (1 - self.label_smoothing) + self.label_smoothing / 2
            return F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)
        return F.cross_entropy(logits, labels.long(), weight=weight, label_smoothing=self.label_smoothing)
