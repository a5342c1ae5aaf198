"""The ``attention_box`` loss: a differentiable Grad-CAM pushed into an allowed region.

Source: Wu, Japkowicz, Gilbert, Corizzo, "Localization-aware chest X-ray
classification via segmentation and gradient-based attention", Data Mining and
Knowledge Discovery 2026 (doi 10.1007/s10618-026-01214-x; code
rcorizzo/cxr-segmentation-attention, ``scripts/model_loss_attent.py``).

For image ``i`` with label ``y_i``, reference box ``b_i`` (a frozen segmenter's
lung box, or the batch's lesion boxes; :mod:`medcam_wsol.regions`), allowed
region ``R_i = rule(y_i)(b_i)`` and Grad-CAM ``G_i`` of the target class (from
the same forward pass, in the autograd graph; :mod:`medcam.attribution`)::

    energy (default):  L_att,i = 1 - sum_{p in R_i} ReLU(G_i)_p / (sum_p ReLU(G_i)_p + eps)
    ratio (the seed):  L_att,i = 1 - mean_{p in R_i} sigmoid(s (norm(G_i)_p - thresh))

    L = lambda CE + (1 - lambda) (1/B) sum_i [y_i has a rule] L_att,i
    lambda = lam (fixed), or max(lam_min, 1 - lam_rate * epoch) (adaptive)

``norm`` is the per-map min-max, and ``s`` the sigmoid's ``sharpness``. The
energy term is the share of the positive Grad-CAM energy outside ``R_i``,
written as one minus the share inside so that a map with no positive energy
costs 1: written as ``outside / (total + eps)`` it would cost 0, and training
finds that degenerate minimum (on BUSI a tiny CNN learned Grad-CAMs that are
negative everywhere for most images, loss 0, maps useless). The seed
counts the pixels of ``R_i`` with ``norm(G_i) > thresh`` (thresh 0.3); that count
is the limit ``s -> inf`` of the ratio mode, and it has no gradient, which is why
the seed's attention term (a NumPy Grad-CAM on a deep copy) never steers the
model. Here both modes keep the CAM in the graph, so the term moves the
attention. For multi-label models every positive class with a rule contributes
(averaged per image).

The CAM is computed at the head's level (or ``layer``) from
``output.features``, so the loss sets ``needs_features = True`` and the trainer
calls the model with ``return_features=True``.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from medcam.attribution import Attribution, normalize_maps, resize_maps
from medcam.errors import SpecError
from medcam.registry import losses

from .regions import ReferenceSource, allowed_regions, check_rules, resolve_rules

__all__ = ["AttentionBoxLoss"]


class AttentionBoxLoss(nn.Module):
    """Segmentation-driven attention loss (module docstring for the equations).

    Built through the registered ``attention_box`` factory (:mod:`medcam_wsol.entries`), whose
    signature declares the choices and ranges checked at spec validation.

    Args:
        num_classes, multilabel: injected by medcam.
        source: ``"segmenter"``, ``"boxes"`` or ``"mask"`` (:class:`~medcam_wsol.regions.ReferenceSource`).
        segmenter: checkpoint path or segmenter spec (``source="segmenter"``).
        segmenter_threshold: ``sigmoid > threshold`` is the segmenter's foreground (0.5).
        rules: ``{class name or index: rule}`` with rules ``inside``, ``upper``,
            ``lower``, ``outside``, ``mask`` or ``null``; classes not listed get no
            attention term. ``None``: every class ``inside``.
        method: attribution method computed from the forward pass (``gradcam``).
        layer: backbone level of the CAM (``None``: the level the head classifies,
            ``model.head.level``, else the backbone's ``cam_level``).
        target: the CAM's class: ``"label"`` or ``"predicted"`` (the seed; single-label only).
        mode: ``"energy"`` or ``"ratio"``.
        thresh: CAM threshold of the ratio mode (0.3).
        sharpness: slope of the ratio mode's sigmoid relaxation.
        lam: the fixed lambda (weight of CE; ``1 - lam`` weighs the attention term).
        adaptive: use ``max(lam_min, 1 - lam_rate * batch["epoch"])`` instead of ``lam``.
        lam_min, lam_rate: the adaptive schedule (0.2, 0.023 in the seed).
        class_weights, label_smoothing: of the cross-entropy, as the ``ce`` loss.
        eps: added to the CAM energy.
        missing_classes: a rule for a class the model does not have: ``"error"`` (default: catches
            typos) or ``"ignore"`` (rules written for several tasks; the chest X-ray presets).

    Returns (called as ``loss(output, batch, model)``) ``{"ce": lambda * CE,
    "attention": (1 - lambda) * L_att}``.
    """

    needs_features = True

    def __init__(self, num_classes: int, multilabel: bool = False, source: str = "segmenter", segmenter: Any = None,
                 segmenter_threshold: float = 0.5, rules: Mapping[str, str | None] | None = None,
                 method: str = "gradcam", layer: int | None = None, target: str = "label", mode: str = "energy",
                 thresh: float = 0.3, sharpness: float = 20.0, lam: float = 0.5, adaptive: bool = False,
                 lam_min: float = 0.2, lam_rate: float = 0.023, class_weights: Sequence[float] | str | None = None,
                 label_smoothing: float = 0.0, eps: float = 1e-8, missing_classes: str = "error"):
        super().__init__()
        from medcam.build import build_attribution

        self.num_classes, self.multilabel = int(num_classes), bool(multilabel)
        self.rules = check_rules(rules)
        self.missing_classes, self.target, self.mode = missing_classes, target, mode
        if self.multilabel and self.target == "predicted":
            raise SpecError("attention_box.target: 'predicted' is for single-label models; multi-label models "
                            "explain every positive class that has a rule (target 'label')")
        self.thresh, self.sharpness, self.lam = float(thresh), float(sharpness), float(lam)
        self.adaptive, self.lam_min, self.lam_rate = bool(adaptive), float(lam_min), float(lam_rate)
        self.layer = layer
        self.eps = float(eps)
        self.method = build_attribution(method)
        if not isinstance(self.method, Attribution) or self.method.extra_passes:
            raise SpecError(f"attention_box.method: '{method}' re-runs the model per channel and cannot be computed "
                            f"from the training forward pass; use gradcam, gradcam++, xgradcam, layercam or hirescam")
        self.reference = ReferenceSource(source, segmenter, segmenter_threshold)
        self.ce = losses.get("ce")(num_classes, multilabel, class_weights=class_weights,
                                   label_smoothing=label_smoothing)  # the registered 'ce', by name
        self._resolved: tuple[tuple[str, ...], list[str | None]] | None = None

    def set_class_counts(self, counts: Sequence[int]) -> None:
        """Forward the training class counts to the cross-entropy (``class_weights="balanced"``)."""
        self.ce.set_class_counts(counts)

    # ------------------------------------------------------------------ pieces
    def schedule_values(self, epoch: int) -> dict[str, float]:
        """``{"lambda": lambda in 0-based epoch epoch}`` (logged per epoch by the trainer)."""
        return {"lambda": self.lambda_at(epoch)}

    def lambda_at(self, epoch: int | None) -> float:
        """``lam``, or ``max(lam_min, 1 - lam_rate * epoch)`` when adaptive (epoch 0-based)."""
        if not self.adaptive:
            return self.lam
        if epoch is None:
            raise SpecError("attention_box.adaptive needs batch['epoch'] (the trainer sets it; pass it yourself "
                            "when calling the loss directly)")
        return max(self.lam_min, 1.0 - self.lam_rate * float(epoch))

    def class_rules(self, class_names: Sequence[str]) -> list[str | None]:
        """One rule (or ``None``) per class of the model (resolved once per set of class names)."""
        key = tuple(class_names)
        if self._resolved is None or self._resolved[0] != key:
            if len(key) != self.num_classes:
                raise SpecError(f"attention_box: the model has {len(key)} classes, the loss was built for "
                                f"{self.num_classes}")
            self._resolved = (key, resolve_rules(self.rules, key, missing=self.missing_classes))
        return self._resolved[1]

    def _pairs(self, labels: Tensor, logits: Tensor, rules: list[str | None]) -> tuple[Tensor, list[str], Tensor]:
        """``(targets (B, T), rules of the B*T pairs, weights (B, T))``."""
        b = logits.shape[0]
        if not self.multilabel:
            y = labels.long().view(-1)
            if y.shape[0] != b:
                raise SpecError(f"attention_box: expected (B,) = ({b},) labels, got {tuple(labels.shape)}")
            targets = y if self.target == "label" else logits.detach().argmax(1)
            pair_rules = [rules[int(c)] for c in y.tolist()]
            weights = torch.tensor([r is not None for r in pair_rules], dtype=logits.dtype, device=logits.device)
            return targets[:, None], [r or "inside" for r in pair_rules], weights[:, None]
        ruled = [k for k, r in enumerate(rules) if r is not None]
        targets = torch.tensor(ruled, device=logits.device).expand(b, len(ruled))
        weights = (labels[:, ruled] > 0).to(logits.dtype)
        return targets, [rules[k] for _ in range(b) for k in ruled], weights  # type: ignore[misc]

    def pair_losses(self, cams: Tensor, allowed: Tensor) -> Tensor:
        """Attention loss of each (image, target) pair: cams ``(N, H, W)`` raw, allowed ``(N, H, W)`` -> ``(N,)``."""
        if self.mode == "energy":
            energy = torch.relu(cams).flatten(1)
            inside = (energy * allowed.flatten(1).to(energy.dtype)).sum(1)
            return 1 - inside / (energy.sum(1) + self.eps)
        soft = torch.sigmoid(self.sharpness * (normalize_maps(cams) - self.thresh)).flatten(1)
        region = allowed.flatten(1).to(soft.dtype)
        return 1 - (soft * region).sum(1) / region.sum(1).clamp_min(1)

    # ------------------------------------------------------------------ forward
    def forward(self, output: Any, batch: Mapping[str, Any], model: Any) -> dict[str, Tensor]:
        logits: Tensor = output.logits
        lam = self.lambda_at(batch.get("epoch"))
        ce = self.ce(output, batch)
        attention = self.attention(output, batch, model) if lam < 1.0 else logits.new_zeros(())
        return {"ce": lam * ce, "attention": (1.0 - lam) * attention}

    def attention(self, output: Any, batch: Mapping[str, Any], model: Any) -> Tensor:
        """``(1/B) sum_i L_att,i`` (a scalar in the graph), before the lambda weighting."""
        logits: Tensor = output.logits
        images: Tensor = batch["image"]
        b = logits.shape[0]
        h, w = int(images.shape[-2]), int(images.shape[-1])
        names = list(getattr(model, "class_names", [str(i) for i in range(logits.shape[1])]))
        rules = self.class_rules(names)
        targets, pair_rules, weights = self._pairs(batch["label"].to(logits.device), logits, rules)
        if targets.shape[1] == 0 or not bool((weights > 0).any()):
            return logits.new_zeros(())
        if not getattr(output, "features", None):
            raise SpecError("attention_box reads output.features: call the model with return_features=True "
                            "(the trainer does this for losses with needs_features)")
        layer = self.layer
        if layer is None:  # the level the head classifies (the logits depend on it), else the backbone's cam_level
            layer = getattr(getattr(model, "head", None), "level", None)
        result = self.method.from_output(output, target=targets, size=(h, w), model=model, layer=layer,
                                         raw=True, differentiable=True)
        t = targets.shape[1]
        cams = resize_maps(result.maps.reshape(b, t, *result.maps.shape[-2:]).float(), (h, w)).reshape(b * t, h, w)
        boxes, masks = self.reference(batch, images.to(logits.device))
        boxes = boxes.repeat_interleave(t, 0)
        masks = masks.repeat_interleave(t, 0) if masks is not None else None
        allowed = allowed_regions(boxes, masks, pair_rules, (h, w))
        losses = self.pair_losses(cams, allowed).view(b, t)
        per_image = (losses * weights).sum(1) / weights.sum(1).clamp_min(1)
        return per_image.mean()

    def extra_repr(self) -> str:
        schedule = (f"lambda=max({self.lam_min:g}, 1 - {self.lam_rate:g} epoch)" if self.adaptive
                    else f"lambda={self.lam:g}")
        return f"source={self.reference.source!r}, mode={self.mode!r}, target={self.target!r}, {schedule}"
