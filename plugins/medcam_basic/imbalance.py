"""Losses for imbalanced labels: per-batch class weights, focal loss, weighted BCE (W-CEL).

What the pneumothorax/ChestX-ray14 seed's users pick from:

* :func:`batch_class_weights`: weights counted in each batch (the seed's
  ``BCEWithLogitsLoss(pos_weight=#neg/#pos)``), used by ``ce`` with
  ``class_weights: batch``;
* :class:`FocalLoss`: Lin, Goyal, Girshick, He, Dollar, *Focal Loss for Dense
  Object Detection*, ICCV 2017, eq. 5: ``FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t)``;
* :class:`WeightedBCE`: the weighted cross-entropy loss W-CEL of Wang et al.,
  *ChestX-ray8*, CVPR 2017, eq. 1:
  ``L = -beta_P sum_{y_c=1} ln f(x_c) - beta_N sum_{y_c=0} ln(1 - f(x_c))`` with
  ``beta_P = (|P| + |N|) / |P|`` and ``beta_N = (|P| + |N|) / |N|`` counted in the batch
  (the seed's default loss; ``beta: null``), or fixed ``[beta_P, beta_N]``.

Logits are ``(B, K)``; labels ``(B,)`` class indices, or ``(B, K)`` multi-hot for
multi-label models.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medcam.errors import SpecError

__all__ = ["batch_class_weights", "FocalLoss", "WeightedBCE"]


def batch_class_weights(labels: Tensor, num_classes: int, multilabel: bool) -> Tensor:
    """Class weights counted in one batch.

    Single-label (``labels`` ``(B,)``): ``w_k = B / (K' n_k)`` for the ``K'``
    classes present (``n_k`` images of class ``k``), 0 for absent classes, so in
    the weighted mean every present class counts equally.

    Multi-label (``labels`` ``(B, K)`` multi-hot): one positive weight for every
    class, ``#negatives / #positives`` over all ``B * K`` entries (the pos_weight
    of ``BCEWithLogitsLoss``); 1 when the batch has no positive or no negative.

    Returns:
        ``(K,)`` float weights on the labels' device.
    """
    if multilabel:
        target = labels.float()
        positives = target.sum()
        negatives = target.numel() - positives
        ratio = negatives / positives if positives > 0 and negatives > 0 else torch.ones((), device=labels.device)
        return ratio.expand(num_classes).clone()
    counts = torch.bincount(labels.long(), minlength=num_classes).float()
    present = counts > 0
    weights = torch.zeros(num_classes, device=labels.device)
    weights[present] = labels.numel() / (int(present.sum()) * counts[present])
    return weights


def _alpha(alpha: float | Sequence[float] | None, num_classes: int, multilabel: bool) -> Tensor | None:
    """``alpha`` as a ``(K,)`` tensor (positive weight per class, or class weight), validated."""
    if alpha is None:
        return None
    if isinstance(alpha, bool):
        raise SpecError(f"alpha: expected a number in (0, 1), a list of {num_classes} weights or null, got {alpha!r}")
    if isinstance(alpha, (int, float)):
        if not 0.0 < float(alpha) < 1.0:
            raise SpecError(f"alpha: a single alpha must be in (0, 1), got {alpha}")
        if multilabel:
            return torch.full((num_classes,), float(alpha))
        if num_classes != 2:
            raise SpecError(f"alpha: a single number weighs the positive class of a 2-class model; this model has "
                            f"{num_classes} classes: give a list of {num_classes} class weights")
        return torch.tensor([1.0 - float(alpha), float(alpha)])
    values = [float(a) for a in alpha]
    if len(values) != num_classes:
        raise SpecError(f"alpha: {len(values)} weights for {num_classes} classes")
    if any(v < 0 for v in values) or (multilabel and any(v > 1 for v in values)):
        raise SpecError(f"alpha: weights must be {'in [0, 1]' if multilabel else '>= 0'}, got {values}")
    return torch.tensor(values)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017, eq. 5): ``-alpha_t (1 - p_t)^gamma log(p_t)``, averaged.

    * softmax models: ``p_t`` is the probability of the true class, ``alpha_t``
      the true class's weight (``alpha``: a list of K weights, or for 2 classes
      one number, the positive class's weight; None: 1);
    * multi-label models: every class is a binary problem, ``p_t = sigma(z)`` for
      a positive and ``1 - sigma(z)`` for a negative, ``alpha_t = alpha_k`` for a
      positive and ``1 - alpha_k`` for a negative (the paper's alpha = 0.25; None:
      both 1), averaged over the ``B * K`` entries.

    ``gamma = 0`` gives (weighted) cross-entropy. The registered ``focal`` and ``weighted_bce``
    factories (:mod:`medcam_basic.entries`) declare ``gamma >= 0`` and ``reduction``'s choices.
    """

    def __init__(self, num_classes: int, multilabel: bool, gamma: float = 2.0,
                 alpha: float | Sequence[float] | None = None):
        super().__init__()
        self.num_classes, self.multilabel, self.gamma = num_classes, multilabel, float(gamma)
        self.register_buffer("alpha", _alpha(alpha, num_classes, multilabel), persistent=False)

    def forward(self, output: Any, batch: Mapping[str, Any], model: Any = None) -> Tensor:
        logits: Tensor = output.logits.float()
        labels: Tensor = batch["label"].to(logits.device)
        alpha = None if self.alpha is None else self.alpha.to(logits.device)
        if self.multilabel:
            target = labels.float()
            if target.shape != logits.shape:
                raise ValueError(f"multi-label targets must be (B, K) = {tuple(logits.shape)}, got {tuple(target.shape)}")
            ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")  # -log p_t
            p_t = torch.exp(-ce)
            loss = (1.0 - p_t).pow(self.gamma) * ce
            if alpha is not None:
                loss = loss * (alpha * target + (1.0 - alpha) * (1.0 - target))
            return loss.mean()
        index = labels.long()
        log_p = F.log_softmax(logits, dim=1).gather(1, index[:, None])[:, 0]
        loss = -(1.0 - log_p.exp()).pow(self.gamma) * log_p
        if alpha is not None:
            loss = loss * alpha[index]
        return loss.mean()


class WeightedBCE(nn.Module):
    """W-CEL (Wang et al. 2017, eq. 1) on sigmoid outputs, for multi-label models.

    ``beta=None`` counts ``|P|`` (ones) and ``|N|`` (zeros) in each batch's
    ``(B, K)`` labels, pooled over classes or, with ``per_class``, per class
    column; a batch (or column) without positives or without negatives is
    unweighted (beta = 1), as the seed did. ``beta=[beta_P, beta_N]`` fixes
    the weights. ``reduction``: ``"mean"`` over the ``B * K`` terms or ``"sum"``
    (the seed's choice; its scale grows with the batch size).
    """

    def __init__(self, num_classes: int, multilabel: bool, beta: Sequence[float] | None = None,
                 per_class: bool = False, reduction: str = "mean"):
        super().__init__()
        if not multilabel:
            raise SpecError("weighted_bce is a multi-label loss (one sigmoid per class, multilabel: true); for a "
                            "softmax model use ce with class_weights: batch, or focal")
        fixed = None
        if beta is not None:
            values = list(beta) if isinstance(beta, (list, tuple)) else [beta]
            if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0
                                        for v in values):
                raise SpecError(f"beta: expected null (counted in each batch) or two positive numbers "
                                f"[beta_P, beta_N], got {beta!r}")
            fixed = torch.tensor([float(v) for v in values])
        self.num_classes, self.per_class, self.reduction = num_classes, bool(per_class), reduction
        self.register_buffer("fixed", fixed, persistent=False)

    def betas(self, target: Tensor) -> tuple[Tensor, Tensor]:
        """``(beta_P, beta_N)``: scalars, or ``(K,)`` with ``per_class``, for ``(B, K)`` float labels."""
        if self.fixed is not None:
            beta = self.fixed.to(target.device)
            return beta[0], beta[1]
        dims = 0 if self.per_class else None
        positives = target.sum(dims) if dims is not None else target.sum()
        total = float(target.shape[0]) if self.per_class else float(target.numel())
        negatives = total - positives
        both = (positives > 0) & (negatives > 0)
        beta_p = torch.where(both, total / positives.clamp_min(1.0), torch.ones_like(positives))
        beta_n = torch.where(both, total / negatives.clamp_min(1.0), torch.ones_like(negatives))
        return beta_p, beta_n

    def forward(self, output: Any, batch: Mapping[str, Any], model: Any = None) -> Tensor:
        logits: Tensor = output.logits.float()
        target = batch["label"].to(logits.device).float()
        if target.shape != logits.shape:
            raise ValueError(f"multi-label targets must be (B, K) = {tuple(logits.shape)}, got {tuple(target.shape)}")
        beta_p, beta_n = self.betas(target)
        # -ln f(x) = softplus(-z) and -ln(1 - f(x)) = softplus(z), computed without forming f(x)
        loss = beta_p * target * F.softplus(-logits) + beta_n * (1.0 - target) * F.softplus(logits)
        return loss.sum() if self.reduction == "sum" else loss.mean()
