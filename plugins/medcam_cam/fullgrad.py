"""FullGrad (Srinivas & Fleuret, "Full-Gradient Representation for Neural Network
Visualization", NeurIPS 2019, eqs. 5-6), at input resolution.

With ``y^c`` the target logit, ``x`` the image and, for every convolution and
batch norm ``l`` with a bias, ``z_l`` its output and ``b_l`` its bias (for a batch
norm in eval mode the effective bias ``beta - mu gamma / sqrt(var + eps)``):

    ``L^c = sum_ch psi(|x * dy^c/dx|)_ch + sum_l sum_{k in channels(l)} psi(|b_l,k * dy^c/dz_l,k|)``,

``psi`` = min-max rescaling of each map to [0, 1] and bilinear upsampling to the
image size. The paper lists the upsampling first; medcam rescales first, as
pytorch-grad-cam does (the two differ only where the interpolation blurs a
map's extremes), which lets each layer's channels be summed before its single
upsampling. Every such layer takes part (FullGrad reads no layer of its own choosing).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from medcam.attribution import Attribution, AttributionContext, logits_of, normalize_maps, resize_maps

__all__ = ["FullGrad", "bias_layers", "effective_bias", "fullgrad_terms"]


def bias_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every ``Conv2d`` and ``BatchNorm2d`` with a bias, in ``named_modules()`` order."""
    return [(name, m) for name, m in model.named_modules()
            if type(m) in (nn.Conv2d, nn.BatchNorm2d) and getattr(m, "bias", None) is not None]


def effective_bias(module: nn.Module) -> Tensor:
    """``(C,)`` the bias a layer adds: a convolution's ``bias``; a batch norm's ``beta - mu gamma / sqrt(var + eps)``."""
    if isinstance(module, nn.BatchNorm2d):
        mean = module.running_mean if module.running_mean is not None else torch.zeros_like(module.bias)
        var = module.running_var if module.running_var is not None else torch.ones_like(module.bias)
        weight = module.weight if module.weight is not None else torch.ones_like(module.bias)
        return module.bias - mean * weight / torch.sqrt(var + module.eps)
    return module.bias


def fullgrad_terms(model: nn.Module, images: Tensor, targets: Tensor, create_graph: bool = False
                   ) -> tuple[Tensor, list[Tensor]]:
    """The un-processed FullGrad terms of one target per image.

    Returns:
        ``(|x * dy/dx|`` ``(B, C, H, W)``, ``[|b_l * dy/dz_l|`` ``(B, C_l, h_l, w_l)`` per bias layer]).
    """
    layers = bias_layers(model)
    outputs: list[Tensor] = []

    def keep(_m: nn.Module, _i: Any, out: Tensor) -> Tensor:
        outputs.append(out)
        return out.clone()          # in-place ops downstream (ReLU(inplace=True)) act on the copy

    handles = [m.register_forward_hook(keep) for _, m in layers]
    try:
        with torch.enable_grad():
            x = images.detach().requires_grad_(True)
            logits = logits_of(model(x))
            total = logits.gather(1, targets[:, None]).sum()
            grads = torch.autograd.grad(total, [x] + outputs, create_graph=create_graph, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    if len(outputs) != len(layers):
        raise ValueError("FullGrad needs every bias layer to run exactly once per forward pass")
    input_term = (x * grads[0]).abs()
    bias_terms = []
    for (_, module), grad, out in zip(layers, grads[1:], outputs):
        grad = torch.zeros_like(out) if grad is None else grad
        bias_terms.append((effective_bias(module).view(1, -1, 1, 1).to(grad.dtype) * grad).abs())
    if not create_graph:
        return input_term.detach(), [t.detach() for t in bias_terms]
    return input_term, bias_terms


def _psi_sum(terms: Tensor, size: tuple[int, int]) -> Tensor:
    """``sum_k psi(terms_k)``: ``(B, K, h, w)`` -> ``(B, H, W)``, rescaled per map, summed, then upsampled
    (upsampling is linear, so summing first is exact)."""
    return resize_maps(normalize_maps(terms).sum(dim=1), size)


class FullGrad(Attribution):
    """FullGrad (Srinivas & Fleuret, NeurIPS 2019; formula in the module docstring)."""

    uses_layer = False
    uses_gradients = True
    extra_passes = True

    def compute(self, ctx: AttributionContext) -> Tensor:
        images, model = ctx.images, ctx.model
        assert images is not None and model is not None
        size = (int(images.shape[-2]), int(images.shape[-1]))
        columns = []
        for t in range(ctx.targets.shape[1]):
            input_term, bias_terms = fullgrad_terms(model, images, ctx.targets[:, t], ctx.differentiable)
            total = _psi_sum(input_term, size)
            for term in bias_terms:
                total = total + _psi_sum(term, size)
            columns.append(total)
        return torch.stack(columns, dim=1)
