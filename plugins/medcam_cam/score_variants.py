"""Smoothed and integrated relatives of Score-CAM and Grad-CAM++ (torchcam 0.5's SS-CAM, IS-CAM and
Smooth Grad-CAM++).

Notation as in :mod:`medcam_cam.gradient`. SS-CAM and IS-CAM weight channels as
torchcam's Score-CAM family does: with ``H^k`` channel ``k`` min-max normalized
at the layer's resolution and bilinearly upsampled to the input, ``y^c`` the
target logit and ``X`` the image,

    ``w^c_k = softmax_k( (1/N) sum_i [ y^c(X * m_i(H^k)) - y^c(X) ] )``,  ``L^c = ReLU(sum_k w^c_k A^k)``,

where the masks ``m_i`` differ by method. Every masked image costs a forward
pass: ``B x C x N`` of them, ``batch_size`` at a time.
"""
from __future__ import annotations

import abc
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from medcam.attribution import AttributionContext, normalize_maps
from medcam.errors import SpecError

from .gradient import WeightedCAM

__all__ = ["SmoothGradCAMPlusPlus", "SSCAM", "ISCAM", "score_gains"]


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{name}: expected a positive integer, got {value!r}")
    return value


def score_gains(ctx: AttributionContext, masks: Callable[[int, Tensor], Tensor], samples: int, batch_size: int,
                desc: str, progress: bool) -> Tensor:
    """``(B, T, C)``: ``(1/N) sum_i [y^c(X * m_i(H^k)) - y^c(X)]`` for every image, target and channel.

    Args:
        masks: ``(i, H (B, C, H, W)) -> m_i(H)``, the ``i``-th masks of every channel.
    """
    acts = ctx.require_activations()
    images = ctx.images
    assert images is not None
    b, c = acts.shape[:2]
    base = normalize_maps(acts.detach().float())                                    # (B, C, h, w) in [0, 1]
    upsampled = F.interpolate(base, size=images.shape[-2:], mode="bilinear", align_corners=False)
    baseline = ctx.logits.detach().gather(1, ctx.targets)                           # (B, T)
    gains = acts.new_zeros((b, ctx.targets.shape[1], c), dtype=torch.float32)
    rows = torch.arange(b, device=acts.device).repeat_interleave(c)
    channels = torch.arange(c, device=acts.device).repeat(b)
    steps = range(0, b * c, batch_size)
    with torch.no_grad():
        for i in tqdm(range(samples), desc=desc, leave=False, disable=not progress or samples <= 1):
            mask = masks(i, upsampled)
            for start in steps:
                r, k = rows[start:start + batch_size], channels[start:start + batch_size]
                masked = images[r] * mask[r, k][:, None].to(images.dtype)
                logits = ctx.logits_for_images(masked).float()
                gains[r, :, k] += logits.gather(1, ctx.targets[r]) - baseline[r]
    return gains / samples


class _ScoreVariant(WeightedCAM):
    extra_passes = True

    def __init__(self, layer: int | str | None, samples: int, batch_size: int, progress: bool):
        super().__init__(layer)
        name = type(self).__name__.lower()
        self.samples = _positive_int(f"{name}.samples", samples)
        self.batch_size = _positive_int(f"{name}.batch_size", batch_size)
        self.progress = progress

    @abc.abstractmethod
    def masks(self, ctx: AttributionContext) -> Callable[[int, Tensor], Tensor]:
        """``(i, upsampled masks (B, C, H, W)) -> m_i``: the ``i``-th masks of every channel."""

    def channel_weights(self, ctx: AttributionContext) -> Tensor:
        gains = score_gains(ctx, self.masks(ctx), self.samples, self.batch_size, self.name, self.progress)
        return torch.softmax(gains, dim=2).to(ctx.require_activations().dtype)


class SSCAM(_ScoreVariant):
    """SS-CAM (Wang, Naidu et al., "SS-CAM: Smoothed Score-CAM for Sharper Visual Feature
    Localization", arXiv:2006.14255, 2020; torchcam's ``SSCAM``): Score-CAM's masks plus
    Gaussian noise, ``m_i(H^k) = H^k + N(0, std^2)`` (drawn per pixel, sample and channel),
    averaged over ``samples`` draws (module docstring for the weights).

    Args:
        layer: as every method.
        samples: noisy draws ``N`` (torchcam: 35).
        std: standard deviation of the noise on the [0, 1] masks (torchcam: 2.0).
        seed: seed of the noise (None: torch's global generator).
        batch_size: masked images per forward pass.
        progress: a progress bar over the draws.
    """

    def __init__(self, layer: int | str | None = None, samples: int = 35, std: float = 2.0, seed: int | None = 0,
                 batch_size: int = 32, progress: bool = True):
        super().__init__(layer, samples, batch_size, progress)
        self.std = float(std)
        self.seed = seed

    def masks(self, ctx: AttributionContext) -> Callable[[int, Tensor], Tensor]:
        generator = None
        if self.seed is not None:
            generator = torch.Generator(device=ctx.require_activations().device).manual_seed(int(self.seed))

        def noisy(_: int, upsampled: Tensor) -> Tensor:
            noise = torch.randn(upsampled.shape, generator=generator, device=upsampled.device,
                                dtype=upsampled.dtype)
            return upsampled + self.std * noise

        return noisy


class ISCAM(_ScoreVariant):
    """IS-CAM (Naidu, Ghosh, Maurya, Nayak & Kundu, "IS-CAM: Integrated Score-CAM for
    Axiomatic-based Explanations", arXiv:2010.03023, 2020): Score-CAM's gains integrated along
    the path from no mask to the full mask, ``m_i(H^k) = a_i H^k`` with ``a_i = i / N``
    (``i = 1..N``; module docstring for the weights).

    ``coefficients="cumulative"`` uses torchcam 0.5's ``a_i = sum_{j <= i} j / N`` instead
    (which grows past 1: ``a_N = (N + 1) / 2``).

    Args:
        layer: as every method.
        samples: integration steps ``N`` (torchcam: 10).
        coefficients: ``linear`` (``i / N``) or ``cumulative`` (torchcam's).
        batch_size: masked images per forward pass.
        progress: a progress bar over the steps.
    """

    COEFFICIENTS = ("linear", "cumulative")

    def __init__(self, layer: int | str | None = None, samples: int = 10, coefficients: str = "linear",
                 batch_size: int = 32, progress: bool = True):
        super().__init__(layer, samples, batch_size, progress)
        if coefficients not in self.COEFFICIENTS:
            raise SpecError(f"iscam.coefficients: expected one of {', '.join(self.COEFFICIENTS)}, got "
                            f"{coefficients!r}")
        self.coefficients = coefficients

    def coefficient(self, i: int) -> float:
        n = self.samples
        if self.coefficients == "linear":
            return (i + 1) / n
        return sum(j / n for j in range(1, i + 2))

    def masks(self, ctx: AttributionContext) -> Callable[[int, Tensor], Tensor]:
        return lambda i, upsampled: self.coefficient(i) * upsampled


class SmoothGradCAMPlusPlus(WeightedCAM):
    """Smooth Grad-CAM++ (Omeiza, Speakman, Cintas & Weldemariam, "Smooth Grad-CAM++: An Enhanced
    Inference Level Visualization Technique for Deep Convolutional Neural Network Models",
    arXiv:1908.01224, 2019, eqs. 5-7): Grad-CAM++ with SmoothGrad estimates of the derivatives.
    With ``g_n`` the gradients at the layer for the image plus noise ``N(0, std^2)`` (``n = 1..N``)
    and ``A`` the activations of the image itself:

    ``alpha^kc_ij = mean_n(g^2) / (2 mean_n(g^2) + sum_ab A^k_ab mean_n(g^3))`` (0 where the
    denominator is 0), ``w^c_k = sum_ij alpha^kc_ij ReLU(mean_n g_ij)``, ``L^c = ReLU(sum_k w^c_k A^k)``.

    torchcam 0.5 weights ``ReLU`` of the *last* sample's gradient instead of the mean (and, its
    hooks staying on, multiplies the weights with that last noisy pass's activations), sums
    ``A^k_ab g^3_ab`` over positions in the denominator (the paper: ``sum_ab A^k_ab`` times
    ``g^3_ij``; the two agree where the gradients are spatially constant, e.g. before a GAP +
    linear head) and adds ``1e-8`` to it; the numerator is the mean second derivative in both
    (the paper prints the first, a typo torchcam points out).

    Args:
        layer: as every method.
        samples: noisy copies ``N`` (torchcam: 4).
        std: noise standard deviation on the [0, 1] image (torchcam: 0.3 on its normalized input).
        seed: seed of the noise (None: torch's global generator).
    """

    uses_gradients = True
    extra_passes = True

    def __init__(self, layer: int | str | None = None, samples: int = 4, std: float = 0.3, seed: int | None = 0):
        super().__init__(layer)
        self.samples = _positive_int("smoothgradcam++.samples", samples)
        self.std = float(std)
        self.seed = seed

    def channel_weights(self, ctx: AttributionContext) -> Tensor:
        images = ctx.images
        assert images is not None
        acts = ctx.require_activations()
        generator = None
        if self.seed is not None:
            generator = torch.Generator(device=images.device).manual_seed(int(self.seed))
        g1 = g2 = g3 = None
        for _ in range(self.samples):
            noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
            grads = ctx.gradients_for_images(images + self.std * noise)                 # (B, T, C, h, w)
            g1 = grads if g1 is None else g1 + grads
            g2 = grads.pow(2) if g2 is None else g2 + grads.pow(2)
            g3 = grads.pow(3) if g3 is None else g3 + grads.pow(3)
        assert g1 is not None and g2 is not None and g3 is not None
        g1, g2, g3 = g1 / self.samples, g2 / self.samples, g3 / self.samples
        total = acts.sum(dim=(-2, -1))[:, None, :, None, None]
        denominator = 2 * g2 + total * g3
        nonzero = denominator != 0
        alpha = torch.where(nonzero, g2 / torch.where(nonzero, denominator, torch.ones_like(denominator)),
                            torch.zeros_like(denominator))
        weights = (alpha * F.relu(g1)).sum(dim=(-2, -1))
        return weights if ctx.differentiable else weights.detach()
