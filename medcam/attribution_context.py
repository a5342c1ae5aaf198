"""The context an attribution method computes from: one forward pass at the target layer.

:class:`AttributionContext` holds the activations, logits and targets of a
batch and computes gradients and re-scored forward passes on demand. Methods
receive one in :meth:`medcam.attribution.Attribution.compute`; the protocol
module re-exports it.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from .capabilities import RescorableBackbone
from .attribution_inputs import TargetLayer, capture_output, logits_of, replace_output
from .errors import AttributionError
from .memory_format import backbone_input
from .model import MedcamModel

__all__ = ["AttributionContext"]


class AttributionContext:
    """One forward pass at the target layer, and what methods read from it.

    Attributes:
        model: the model being explained.
        images: ``(B, C, H, W)`` input in [0, 1] (on the model's device).
        layer: the :class:`TargetLayer`.
        targets: ``(B, T)`` int64 class indices.
        output: the model's :class:`ModelOutput` (or raw output) of this pass.
        logits: ``(B, K)``.
        features: backbone levels ``[(B, C_i, h_i, w_i)]`` (MedcamModel only, else None).
        activations: ``(B, C, h, w)`` at ``layer`` (``None`` when the method reads no layer).
        differentiable: whether maps must stay in the autograd graph.
        several: the caller asked for ``(B, T)`` targets (maps keep the ``T`` axis).

    Gradients are computed on demand by :meth:`gradients`. Build contexts with
    :meth:`Attribution.run` (a forward pass) or :meth:`Attribution.from_output`.
    """

    def __init__(self, *, model: nn.Module | None, images: Tensor | None, layer: TargetLayer | None,
                 output: Any, logits: Tensor, features: list[Tensor] | None, activations: Tensor | None,
                 targets: Tensor, differentiable: bool, several: bool = False,
                 score_fn: Callable[[Tensor, Tensor], Tensor] | None = None):
        self.model = model
        self.images = images
        self.layer = layer
        self.output = output
        self.logits = logits
        self.features = features
        self.activations = activations
        self.targets = targets
        self.differentiable = differentiable
        self.several = several
        self.score_fn = score_fn
        self._gradients: Tensor | None = None

    @property
    def scores(self) -> Tensor:
        """``(B, T)`` target scores: the logits ``logits[b, targets[b, t]]``, or the method's
        :meth:`Attribution.target_scores` when it defines another score (Finer-CAM, ReST)."""
        if self.score_fn is not None:
            return self.score_fn(self.logits, self.targets)
        return self.logits.gather(1, self.targets)

    def require_activations(self) -> Tensor:
        """The layer's activations ``(B, C, h, w)``; an error for a context without a layer."""
        if self.activations is None:
            raise RuntimeError("this attribution context has no layer activations")
        return self.activations

    def gradients(self) -> Tensor:
        """``(B, T, C, h, w)``: ``d score[b, t] / d activations[b]``.

        Image ``b``'s score depends only on its own activations in eval mode, so
        one backward of ``sum_b score[b, t]`` per target column ``t`` gives every
        per-image gradient. With ``differentiable`` the gradients are themselves
        in the graph (``create_graph=True``).
        """
        if self._gradients is not None:
            return self._gradients
        acts = self.require_activations()
        if not acts.requires_grad:
            raise RuntimeError(f"the activations at {self.layer.name if self.layer else 'the layer'} are not in the "
                               f"autograd graph; gradient methods need them (for from_output, pass an output "
                               f"computed with return_features=True and gradients enabled)")
        with torch.enable_grad():
            scores = self.scores
            totals = [scores[:, t].sum() for t in range(scores.shape[1])]
        columns = []
        for t, total in enumerate(totals):
            keep = self.differentiable or t < len(totals) - 1
            (grad,) = torch.autograd.grad(total, acts, retain_graph=keep, create_graph=self.differentiable)
            columns.append(grad)
        self._gradients = torch.stack(columns, 1)
        return self._gradients

    def gradients_for_images(self, images: Tensor) -> Tensor:
        """``(B, T, C, h, w)``: gradients of the same targets' scores at the same layer for other
        images ``(B, C, H, W)`` (e.g. noisy copies, SmoothGrad-style), from a new forward pass."""
        if self.model is None or self.layer is None:
            raise RuntimeError("this method runs extra forward passes; call it with a model, not from_output")
        with torch.enable_grad():
            x = images.detach().requires_grad_(True)
            if self.layer.level is not None:
                output = self.model(x, return_features=True)
                acts = output.features[self.layer.level]
            else:
                assert self.layer.module is not None
                with capture_output(self.layer.module) as outputs:
                    output = self.model(x)
                acts = outputs[0]
            logits = logits_of(output)
            scores = self.score_fn(logits, self.targets) if self.score_fn is not None else logits.gather(1, self.targets)
            columns = []
            for t in range(scores.shape[1]):
                (grad,) = torch.autograd.grad(scores[:, t].sum(), acts, retain_graph=t < scores.shape[1] - 1,
                                              create_graph=self.differentiable)
                columns.append(grad)
        return torch.stack(columns, dim=1)

    # -- re-scoring helpers for perturbation methods --------------------------------
    def _forward_logits(self, images: Tensor) -> Tensor:
        assert self.model is not None
        return logits_of(self.model(images))

    def logits_for_images(self, images: Tensor) -> Tensor:
        """``(N, K)`` logits of a forward pass on other images ``(N, C, H, W)`` (no graph unless differentiable)."""
        if self.model is None:
            raise RuntimeError("this method runs extra forward passes; call it with a model, not from_output")
        if self.differentiable:
            return self._forward_logits(images)
        with torch.no_grad():
            return self._forward_logits(backbone_input(self.model, images))

    def logits_with_activations(self, activations: Tensor, index: Tensor) -> Tensor:
        """``(N, K)`` logits when the target layer outputs ``activations`` ``(N, C, h, w)``
        instead of its real output, for images ``index`` ``(N,)`` of the batch.

        For a backbone level the rest of the model is re-run from that level
        (the head, plus ``backbone.forward_from`` for later levels); for a hooked
        module the whole model runs on ``images[index]`` with the module's output replaced.
        """
        if self.model is None or self.layer is None:
            raise RuntimeError("this method runs extra forward passes; call it with a model, not from_output")
        with torch.set_grad_enabled(self.differentiable):
            if self.layer.level is not None:
                return self._head_from_level(activations, index)
            assert self.images is not None and self.layer.module is not None
            with replace_output(self.layer.module, activations):
                return self._forward_logits(self.images[index])

    def _head_from_level(self, activations: Tensor, index: Tensor) -> Tensor:
        model = self.model
        assert isinstance(model, MedcamModel) and self.features is not None and self.layer is not None
        level = self.layer.level
        assert level is not None
        earlier = [_take(f, index) for f in self.features[:level]]
        later: list[Tensor] = []
        if level < len(self.features) - 1:
            if not isinstance(model.backbone, RescorableBackbone):
                raise AttributionError(f"re-scoring level {level} needs the backbone to implement forward_from() "
                                 f"(its later levels depend on it); use the last level or a module name")
            later = list(model.backbone.forward_from(activations, level))
        return logits_of(model.head(earlier + [activations] + later))


def _take(tensor: Tensor, index: Tensor) -> Tensor:
    """``tensor[index]``; a broadcast view (no copy) when every index is the same image."""
    if index.numel() and bool((index == index[0]).all()):
        return tensor[index[:1]].expand(index.numel(), *tensor.shape[1:])
    return tensor[index]
