"""The loss protocol and the weighted sum of the spec's ``loss`` list.

Every registered loss factory returns an ``nn.Module`` called as::

    loss(output, batch, model) -> Tensor (scalar)

* ``output``: the :class:`~medcam.model.ModelOutput` of ``model(batch["image"], batch["label"])``.
* ``batch``: a mapping with at least ``"image"`` ``(B, C, H, W)`` in [0, 1] and
  ``"label"`` (``(B,)`` int64 class indices, or ``(B, K)`` float multi-hot for
  multi-label models); optionally ``"mask"`` ``(B, H, W)``, ``"boxes"`` (a list
  of ``(N_i, 4)`` float boxes, x0 y0 x1 y1 in input pixels) and ``"epoch"``.
* ``model``: the :class:`~medcam.model.MedcamModel` (losses that re-run parts
  of it, such as attention or foreground-control terms, use it).

A segmentation loss (registered with ``task="segmentation"``, e.g. ``dice``)
is called the same way by a segmenter's trainer, with ``output`` the mask
logits ``(B, K, H, W)`` and the masks in ``batch["mask"]``.

A loss may also return a mapping of named scalar terms; their sum is its
value and each term is logged as ``<loss name>.<term>``.

A loss module that needs the training set's class counts (``"balanced"``
class weights) is a :class:`medcam.capabilities.ClassCountLoss`
(``set_class_counts(counts: list[int])``); the trainer calls it once before
training. A loss that reads ``output.features`` is a
:class:`medcam.capabilities.FeatureLoss` (``needs_features = True``).

A loss whose weights follow a schedule over the epochs (the attention loss's
adaptive lambda) is a :class:`ScheduledLoss`: ``schedule_values(epoch)``
returns the values it uses in that (0-based) epoch, e.g. ``{"lambda": 0.954}``;
the trainer writes them to ``metrics.jsonl`` with every epoch, as
``"<loss name>.<value>"`` next to the learning rate.
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor, nn

from .capabilities import ClassCountLoss, needs_features as reads_features

__all__ = ["CompositeLoss", "ScheduledLoss"]


@runtime_checkable
class ScheduledLoss(Protocol):
    """A loss with values that change with the epoch (see the module docstring)."""

    def schedule_values(self, epoch: int) -> Mapping[str, float]:
        """The schedule-driven values the loss uses in 0-based epoch ``epoch``."""
        ...


class CompositeLoss(nn.Module):
    """Weighted sum ``sum_i w_i * L_i`` of named losses, with every term reported.

    Args:
        terms: ``(name, weight, module)`` triples; names repeat get a ``#2`` suffix.
    """

    def __init__(self, terms: Sequence[tuple[str, float, nn.Module]]):
        super().__init__()
        from .spec import check_loss_weight

        if not terms:
            raise ValueError("CompositeLoss needs at least one loss")
        for name, weight, _ in terms:
            check_loss_weight(weight, f"{name}.weight")
        names: list[str] = []
        for name, _, _ in terms:
            unique, k = name, 2
            while unique in names:
                unique, k = f"{name}#{k}", k + 1
            names.append(unique)
        self.names = names
        self.weights = [float(w) for _, w, _ in terms]
        self.parts = nn.ModuleList([m for _, _, m in terms])

    @property
    def needs_features(self) -> bool:
        """True when a part reads ``output.features`` (call the model with ``return_features=True``)."""
        return any(reads_features(part) for part in self.parts)

    def set_class_counts(self, counts: Sequence[int]) -> None:
        """Pass the training set's per-class counts to every loss that wants them."""
        for part in self.parts:
            if isinstance(part, ClassCountLoss):
                part.set_class_counts(list(counts))

    def schedule_values(self, epoch: int) -> dict[str, float]:
        """``{"<loss name>.<value>": value}`` of every :class:`ScheduledLoss` part in 0-based epoch ``epoch``."""
        out: dict[str, float] = {}
        for name, part in zip(self.names, self.parts):
            if isinstance(part, ScheduledLoss):
                out.update({f"{name}.{key}": float(value) for key, value in part.schedule_values(epoch).items()})
        return out

    def forward(self, output: Any, batch: Mapping[str, Any], model: nn.Module) -> tuple[Tensor, dict[str, float]]:
        """Return ``(total, components)``: the weighted scalar and each term's detached value."""
        total: Tensor | None = None
        logs: dict[str, float] = {}
        for name, weight, part in zip(self.names, self.weights, self.parts):
            value = part(output, batch, model)
            if isinstance(value, Mapping):
                for term, v in value.items():
                    logs[f"{name}.{term}"] = float(v.detach())
                value = torch.stack([v for v in value.values()]).sum()
            if value.dim() != 0:
                raise ValueError(f"loss '{name}' returned shape {tuple(value.shape)}, expected a scalar")
            logs[name] = float(value.detach())
            contribution = weight * value
            total = contribution if total is None else total + contribution
        assert total is not None
        logs["total"] = float(total.detach())
        return total, logs
