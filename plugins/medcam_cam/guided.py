"""Guided backpropagation and Guided Grad-CAM (maps at input resolution).

Guided backpropagation (Springenberg, Dosovitskiy, Brox & Riedmiller, "Striving for
Simplicity: The All Convolutional Net", ICLR Workshops 2015, sec. 3.4, fig. 1):
the gradient of the target logit with respect to the image, where every ReLU
passes back only positive gradients at positions where its input was positive,

    ``R_l = 1[f_l > 0] * 1[R_{l+1} > 0] * R_{l+1}``.

During the call every ``nn.ReLU`` module of the model is swapped for a guided
one and put back afterwards (also when the call raises); ReLUs written as
functions inside a ``forward`` (``F.relu``) are not guided.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medcam.attribution import Attribution, AttributionContext, resize_maps

from .gradient import GradCAM
from .input_space import input_gradients

__all__ = ["GuidedBackprop", "GuidedGradCAM", "guided_relus"]


class _GuidedReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * ((x > 0) & (grad > 0)).to(grad.dtype)


class GuidedReLU(nn.Module):
    """``ReLU`` forward; guided backward (positive gradients at positive inputs only)."""

    def forward(self, x: Tensor) -> Tensor:
        return _GuidedReLUFunction.apply(x)


@contextlib.contextmanager
def guided_relus(model: nn.Module) -> Iterator[int]:
    """Swap every ``nn.ReLU`` of ``model`` for a :class:`GuidedReLU` while the context is open; yields the count."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.ReLU:
                swapped.append((parent, name, child))
    try:
        for parent, name, _ in swapped:
            setattr(parent, name, GuidedReLU())
        yield len(swapped)
    finally:
        for parent, name, original in swapped:
            setattr(parent, name, original)


def guided_gradients(ctx: AttributionContext, batch_size: int) -> Tensor:
    """``(B, T, C, H, W)`` guided-backpropagation gradients of each target logit with respect to the image."""
    images, model = ctx.images, ctx.model
    assert images is not None and model is not None
    b, t = ctx.targets.shape
    columns = []
    with guided_relus(model):
        for col in range(t):
            parts = [input_gradients(model, images[s:s + batch_size], ctx.targets[s:s + batch_size, col],
                                     ctx.differentiable) for s in range(0, b, batch_size)]
            columns.append(torch.cat(parts))
    return torch.stack(columns, dim=1)


class GuidedBackprop(Attribution):
    """Guided backpropagation (Springenberg et al., ICLR Workshops 2015; module docstring):
    ``L^c = sum_ch R_0`` at input resolution (signed; the core min-max normalizes it)."""

    uses_layer = False
    uses_gradients = True
    extra_passes = True

    def __init__(self, batch_size: int = 32):
        super().__init__(None)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            from medcam.errors import SpecError

            raise SpecError(f"guidedbackprop.batch_size: expected a positive integer, got {batch_size!r}")
        self.batch_size = batch_size

    def compute(self, ctx: AttributionContext) -> Tensor:
        return guided_gradients(ctx, self.batch_size).sum(dim=2)


class GuidedGradCAM(Attribution):
    """Guided Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks
    via Gradient-based Localization", ICCV 2017, sec. 3.1): guided backpropagation times the
    Grad-CAM map bilinearly upsampled to the image,

    ``L^c = (sum_ch R_0) * Up(ReLU(sum_k alpha^c_k A^k))``.
    """

    uses_gradients = True
    extra_passes = True

    def __init__(self, layer: int | str | None = None, batch_size: int = 32):
        super().__init__(layer)
        self.guided = GuidedBackprop(batch_size)
        self.gradcam = GradCAM(layer)

    def compute(self, ctx: AttributionContext) -> Tensor:
        assert ctx.images is not None
        cam = resize_maps(self.gradcam.compute(ctx), ctx.images.shape[-2:])
        return self.guided.compute(ctx) * F.relu(cam)
