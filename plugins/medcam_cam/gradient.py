"""Gradient-weighted CAM methods: Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM.

Notation (every docstring below): ``A^k`` is channel ``k`` of the target
layer's activations ``(B, C, h, w)``, ``(i, j)`` a spatial position, ``y^c``
the logit of target class ``c`` and ``g^k_ij = dy^c / dA^k_ij`` its gradient.
Each method returns raw maps ``(B, T, h, w)`` (one per target) and reads its
gradients from :meth:`medcam.attribution.AttributionContext.gradients`, i.e.
one forward pass and one backward pass that stops at the target layer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from medcam.attribution import Attribution, AttributionContext

__all__ = ["GradCAM", "GradCAMPlusPlus", "XGradCAM", "LayerCAM", "HiResCAM", "weighted_sum"]


def weighted_sum(weights: Tensor, activations: Tensor) -> Tensor:
    """``sum_k w[b, t, k] A[b, k]``: weights ``(B, T, C)``, activations ``(B, C, h, w)`` -> ``(B, T, h, w)``."""
    return torch.einsum("btc,bchw->bthw", weights, activations)


class GradCAM(Attribution):
    """Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks
    via Gradient-based Localization", ICCV 2017, eqs. 1-2).

    ``alpha^c_k = (1 / (h w)) sum_ij g^k_ij``  and  ``L^c = ReLU(sum_k alpha^c_k A^k)``.
    """

    uses_gradients = True

    def compute(self, ctx: AttributionContext) -> Tensor:
        weights = ctx.gradients().mean(dim=(-2, -1))
        return F.relu(weighted_sum(weights, ctx.require_activations()))


class GradCAMPlusPlus(Attribution):
    """Grad-CAM++ (Chattopadhay et al., "Grad-CAM++: Generalized Gradient-based Visual
    Explanations for Deep Convolutional Networks", WACV 2018, eqs. 9 and 19).

    With the exponential score ``Y^c = exp(y^c)`` of the paper (so that
    ``dY^c/dA = exp(y^c) g``):

    ``alpha^kc_ij = g_ij^2 / (2 g_ij^2 + sum_ab A^k_ab g_ij^3)``  (0 where the denominator is 0),
    ``w^c_k = sum_ij alpha^kc_ij ReLU(exp(y^c) g^k_ij)``  and  ``L^c = ReLU(sum_k w^c_k A^k)``.

    pytorch-grad-cam drops the ``exp(y^c)`` factor (a positive per-map scale, so
    the normalized maps agree) and adds ``1e-6`` to the denominator, which
    changes ``alpha`` by about 0.5% where ``|g| = 1e-2`` and by a third where
    ``|g| = 1e-3`` (deep-layer gradients are often that small); medcam follows the paper. ``y^c`` is clamped at 80 inside ``exp``
    so float32 stays finite (this only rescales maps of logits above 80).
    """

    uses_gradients = True

    def compute(self, ctx: AttributionContext) -> Tensor:
        grads = ctx.gradients()                          # (B, T, C, h, w)
        acts = ctx.require_activations()                 # (B, C, h, w)
        g2 = grads.pow(2)
        g3 = g2 * grads
        total = acts.sum(dim=(-2, -1))[:, None, :, None, None]
        denominator = 2 * g2 + total * g3
        nonzero = denominator != 0
        alpha = torch.where(nonzero, g2 / torch.where(nonzero, denominator, torch.ones_like(denominator)),
                            torch.zeros_like(denominator))
        exp_score = torch.exp(ctx.scores.clamp(max=80.0))[:, :, None, None, None]
        weights = (alpha * F.relu(exp_score * grads)).sum(dim=(-2, -1))
        return F.relu(weighted_sum(weights, acts))


class XGradCAM(Attribution):
    """XGrad-CAM (Fu et al., "Axiom-based Grad-CAM: Towards Accurate Visualization and
    Explanation of CNNs", BMVC 2020, eq. 12).

    ``alpha^c_k = sum_ij (A^k_ij / sum_ab A^k_ab) g^k_ij``  (0 for a channel whose
    sum is 0)  and  ``L^c = ReLU(sum_k alpha^c_k A^k)``.

    pytorch-grad-cam adds ``1e-7`` to ``sum_ab A^k_ab``, which shrinks the weight
    of a channel by the relative amount ``1e-7 / sum_ab A^k_ab`` (noticeable for
    nearly silent channels).
    """

    uses_gradients = True

    def compute(self, ctx: AttributionContext) -> Tensor:
        grads = ctx.gradients()
        acts = ctx.require_activations()
        total = acts.sum(dim=(-2, -1))[:, None]                     # (B, 1, C)
        numerator = (grads * acts[:, None]).sum(dim=(-2, -1))        # (B, T, C)
        nonzero = total != 0
        weights = torch.where(nonzero, numerator / torch.where(nonzero, total, torch.ones_like(total)),
                              torch.zeros_like(numerator))
        return F.relu(weighted_sum(weights, acts))


class LayerCAM(Attribution):
    """LayerCAM (Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps
    for Localization", IEEE TIP 2021, eqs. 5-6).

    ``L^c = ReLU(sum_k ReLU(g^k) * A^k)``: every position is weighted by its own
    positive gradient, which keeps detail at shallow layers.
    """

    uses_gradients = True

    def compute(self, ctx: AttributionContext) -> Tensor:
        grads = ctx.gradients()
        acts = ctx.require_activations()
        return F.relu((F.relu(grads) * acts[:, None]).sum(dim=2))


class HiResCAM(Attribution):
    """HiResCAM (Draelos & Carin, "Use HiResCAM instead of Grad-CAM for faithful
    explanations of convolutional neural networks", arXiv:2011.08891, 2020).

    ``L^c = sum_k g^k * A^k`` (element-wise, no gradient averaging, no ReLU).
    For a head that average-pools then applies a linear layer this is exactly
    CAM divided by ``h w`` (the paper's equivalence theorem).
    pytorch-grad-cam applies a ReLU to every map before normalizing; medcam
    keeps the signed map and min-max normalizes it.
    """

    uses_gradients = True

    def compute(self, ctx: AttributionContext) -> Tensor:
        grads = ctx.gradients()
        return (grads * ctx.require_activations()[:, None]).sum(dim=2)
