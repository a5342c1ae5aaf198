"""Gradient-weighted CAM methods: Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM, Grad-CAM
element-wise, Eigen-Grad-CAM, Seg-Eigen-CAM and Shapley-CAM.

Notation (every docstring below): ``A^k`` is channel ``k`` of the target
layer's activations ``(B, C, h, w)``, ``(i, j)`` a spatial position, ``y^c``
the logit of target class ``c`` and ``g^k_ij = dy^c / dA^k_ij`` its gradient.
Each method returns raw maps ``(B, T, h, w)`` (one per target) and reads its
gradients from :meth:`medcam.attribution.AttributionContext.gradients`, i.e.
one forward pass and one backward pass that stops at the target layer.
"""
from __future__ import annotations

import abc

import torch
import torch.nn.functional as F
from torch import Tensor

from medcam.attribution import Attribution, AttributionContext

__all__ = ["WeightedCAM", "GradCAM", "GradCAMPlusPlus", "XGradCAM", "LayerCAM", "HiResCAM", "GradCAMElementWise", "EigenGradCAM",
           "SegEigenCAM", "ShapleyCAM", "rest_scores", "weighted_sum"]


def weighted_sum(weights: Tensor, activations: Tensor) -> Tensor:
    """``sum_k w[b, t, k] A[b, k]``: weights ``(B, T, C)``, activations ``(B, C, h, w)`` -> ``(B, T, h, w)``."""
    return torch.einsum("btc,bchw->bthw", weights, activations)


class WeightedCAM(Attribution):
    """Methods of the form ``L^c = ReLU(sum_k w^c_k A^k)``: a subclass gives the weights
    ``(B, T, C)``; the per-channel terms ``w^c_k A^k`` serve eigen smoothing."""

    @abc.abstractmethod
    def channel_weights(self, ctx: AttributionContext) -> Tensor:
        """``(B, T, C)``: ``w^c_k`` of each image, target and channel."""

    def compute(self, ctx: AttributionContext) -> Tensor:
        return F.relu(weighted_sum(self.channel_weights(ctx), ctx.require_activations()))

    def channel_terms(self, ctx: AttributionContext) -> Tensor:
        """``(B, T, C, h, w)``: ``w^c_k A^k``."""
        return self.channel_weights(ctx)[..., None, None] * ctx.require_activations()[:, None]


class GradCAM(WeightedCAM):
    """Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks
    via Gradient-based Localization", ICCV 2017, eqs. 1-2).

    ``alpha^c_k = (1 / (h w)) sum_ij g^k_ij``  and  ``L^c = ReLU(sum_k alpha^c_k A^k)``.
    """

    uses_gradients = True

    def channel_weights(self, ctx: AttributionContext) -> Tensor:
        return ctx.gradients().mean(dim=(-2, -1))


class GradCAMPlusPlus(WeightedCAM):
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

    def channel_weights(self, ctx: AttributionContext) -> Tensor:
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
        return (alpha * F.relu(exp_score * grads)).sum(dim=(-2, -1))


class XGradCAM(WeightedCAM):
    """XGrad-CAM (Fu et al., "Axiom-based Grad-CAM: Towards Accurate Visualization and
    Explanation of CNNs", BMVC 2020, eq. 12).

    ``alpha^c_k = sum_ij (A^k_ij / sum_ab A^k_ab) g^k_ij``  (0 for a channel whose
    sum is 0)  and  ``L^c = ReLU(sum_k alpha^c_k A^k)``.

    pytorch-grad-cam adds ``1e-7`` to ``sum_ab A^k_ab``, which shrinks the weight
    of a channel by the relative amount ``1e-7 / sum_ab A^k_ab`` (noticeable for
    nearly silent channels).
    """

    uses_gradients = True

    def channel_weights(self, ctx: AttributionContext) -> Tensor:
        grads = ctx.gradients()
        acts = ctx.require_activations()
        total = acts.sum(dim=(-2, -1))[:, None]                     # (B, 1, C)
        numerator = (grads * acts[:, None]).sum(dim=(-2, -1))        # (B, T, C)
        nonzero = total != 0
        return torch.where(nonzero, numerator / torch.where(nonzero, total, torch.ones_like(total)),
                           torch.zeros_like(numerator))


class LayerCAM(Attribution):
    """LayerCAM (Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps
    for Localization", IEEE TIP 2021, eqs. 5-6).

    ``L^c = ReLU(sum_k ReLU(g^k) * A^k)``: every position is weighted by its own
    positive gradient, which keeps detail at shallow layers.
    """

    uses_gradients = True

    def channel_terms(self, ctx: AttributionContext) -> Tensor:
        return F.relu(ctx.gradients()) * ctx.require_activations()[:, None]

    def compute(self, ctx: AttributionContext) -> Tensor:
        return F.relu(self.channel_terms(ctx).sum(dim=2))


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

    def channel_terms(self, ctx: AttributionContext) -> Tensor:
        return ctx.gradients() * ctx.require_activations()[:, None]

    def compute(self, ctx: AttributionContext) -> Tensor:
        return self.channel_terms(ctx).sum(dim=2)


class GradCAMElementWise(Attribution):
    """Grad-CAM element-wise (pytorch-grad-cam's ``GradCAMElementWise``; the element-wise
    product of HiResCAM with LayerCAM's positivity):

    ``L^c = ReLU(sum_k ReLU(g^k * A^k))``.
    """

    uses_gradients = True

    def channel_terms(self, ctx: AttributionContext) -> Tensor:
        return F.relu(ctx.gradients() * ctx.require_activations()[:, None])

    def compute(self, ctx: AttributionContext) -> Tensor:
        return F.relu(self.channel_terms(ctx).sum(dim=2))


class EigenGradCAM(Attribution):
    """Eigen-Grad-CAM (pytorch-grad-cam; Eigen-CAM of Muhammad & Yeasin, IJCNN 2020, applied to
    gradient-weighted activations): the first principal component of ``g^k * A^k``:

    ``L^c = O v_1`` with ``O`` the ``(h w, C)`` matrix of ``g * A`` (centred when ``center``)
    and ``v_1`` its first right singular vector; the sign makes ``L^c`` correlate positively
    with ``sum_k g^k * A^k`` (pytorch-grad-cam leaves it arbitrary).
    """

    uses_gradients = True

    def __init__(self, layer: int | str | None = None, center: bool = True):
        super().__init__(layer)
        self.center = bool(center)

    def compute(self, ctx: AttributionContext) -> Tensor:
        from medcam.projection import first_component

        terms = ctx.gradients() * ctx.require_activations()[:, None]          # (B, T, C, h, w)
        b, t = terms.shape[:2]
        return first_component(terms.flatten(0, 1), self.center).view(b, t, *terms.shape[-2:])


class SegEigenCAM(Attribution):
    """Seg-Eigen-CAM (Chung & Ying, "Seg-Eigen-CAM: Eigen-Value-Based Visual Explanations for
    Semantic Segmentation Models", Applied Sciences 15(13):7562, 2025, eqs. 10-13):

    the first principal component of the centred ``|g^k| * A^k`` (eqs. 10-12), its sign flipped
    when ``|min| > |max|`` (eq. 13), so that the salient region is positive.
    """

    uses_gradients = True

    def compute(self, ctx: AttributionContext) -> Tensor:
        from medcam.projection import first_component

        terms = ctx.gradients().abs() * ctx.require_activations()[:, None]
        b, t = terms.shape[:2]
        return first_component(terms.flatten(0, 1), center=True, sign="extreme").view(b, t, *terms.shape[-2:])


def rest_scores(logits: Tensor, targets: Tensor) -> Tensor:
    """ReST (Cai et al., arXiv:2501.06261, sec. 4.3): ``z_c - CE(z, c) = z_c + log softmax(z)_c``, per image."""
    return logits.gather(1, targets) + torch.log_softmax(logits, dim=1).gather(1, targets)


class ShapleyCAM(WeightedCAM):
    """Shapley-CAM (Cai, Luo, Wang & Chen, "CAMs as Shapley Value-based Explainers",
    arXiv:2501.06261, 2025, eq. 11): channel weights from the gradient and the Hessian-vector
    product of the score with the activations,

    ``w^c_k = mean_ij (g^k_ij - 1/2 (H A)^k_ij)``,  ``H A = d(g . A)/dA |_{A fixed}``,
    ``L^c = ReLU(sum_k w^c_k A^k)``.

    Args:
        layer: as every method.
        score: ``logit`` (the target logit) or ``rest`` (``z_c - CE(z, c)``, the paper's
            ReST target; per image, so no coupling across the batch).
    """

    uses_gradients = True
    SCORES = ("logit", "rest")

    def __init__(self, layer: int | str | None = None, score: str = "logit"):
        super().__init__(layer)
        if score not in self.SCORES:
            from medcam.errors import SpecError

            raise SpecError(f"shapleycam.score: expected one of {', '.join(self.SCORES)}, got {score!r}")
        self.score = score
        self.target_scores = rest_scores if score == "rest" else None

    def channel_weights(self, ctx: AttributionContext) -> Tensor:
        acts = ctx.require_activations()
        columns = []
        with torch.enable_grad():
            scores = ctx.scores
            for t in range(scores.shape[1]):
                (grad,) = torch.autograd.grad(scores[:, t].sum(), acts, create_graph=True, retain_graph=True)
                (hvp,) = torch.autograd.grad(grad, acts, grad_outputs=acts.detach(), retain_graph=True,
                                             create_graph=ctx.differentiable, allow_unused=True)
                if hvp is None:                          # the score is linear in the activations
                    hvp = torch.zeros_like(acts)
                weight = grad - 0.5 * hvp
                columns.append((weight if ctx.differentiable else weight.detach()).mean(dim=(-2, -1)))
        return torch.stack(columns, dim=1)
