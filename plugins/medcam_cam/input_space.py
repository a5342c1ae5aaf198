"""Attributions at input resolution (no layer): Integrated Gradients, input x gradient, occlusion.

The classic non-CAM baselines (as Captum implements them). Notation: ``x`` the
image ``(C, H, W)`` in [0, 1] (the model normalizes it itself), ``x'`` a
baseline image, ``y^c(x)`` the logit of target ``c``. Every method returns raw
maps ``(B, T, H, W)``: the per-channel attribution summed over channels (signed),
which the core resizes (a no-op) and min-max normalizes like any map.
All extra forward/backward passes run ``batch_size`` images at a time.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from medcam.attribution import Attribution, AttributionContext, logits_of
from medcam.errors import SpecError
from medcam.faithfulness.perturb import SUBSTRATES, substrate

__all__ = ["IntegratedGradients", "InputXGradient", "Occlusion", "SobelCAM", "integration_rule", "RULES", "input_gradients"]

#: Integration rules of Integrated Gradients: ``steps -> (alphas, weights)`` on [0, 1].
RULES = ("gausslegendre", "riemann_right", "riemann_left", "riemann_middle", "riemann_trapezoid")


def integration_rule(rule: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``alpha_k`` in [0, 1] and weights ``w_k`` (summing to 1) of ``int_0^1 f(a) da ~ sum_k w_k f(alpha_k)``."""
    k = np.arange(steps, dtype=np.float64)
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    if rule == "riemann_right":
        return (k + 1) / steps, np.full(steps, 1 / steps)
    if rule == "riemann_left":
        return k / steps, np.full(steps, 1 / steps)
    if rule == "riemann_middle":
        return (k + 0.5) / steps, np.full(steps, 1 / steps)
    if rule == "riemann_trapezoid":
        if steps < 2:
            raise SpecError("integratedgradients.steps: the trapezoid rule needs at least 2 steps")
        weights = np.full(steps, 1 / (steps - 1))
        weights[[0, -1]] /= 2
        return k / (steps - 1), weights
    raise SpecError(f"integratedgradients.rule: expected one of {', '.join(RULES)}, got {rule!r}")


def _check_int(name: str, value: int, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpecError(f"{name}: expected an integer >= {low}, got {value!r}")
    return value


def _check_baseline(name: str, baseline: str) -> str:
    if baseline not in SUBSTRATES:
        raise SpecError(f"{name}.baseline: expected one of {', '.join(SUBSTRATES)}, got {baseline!r}")
    return baseline


def _chunks(total: int, size: int, desc: str, progress: bool) -> Iterator[slice]:
    starts = range(0, total, size)
    for start in tqdm(starts, desc=desc, leave=False, disable=not progress or len(starts) <= 1):
        yield slice(start, min(start + size, total))


def input_gradients(forward: Callable[[Tensor], Tensor], images: Tensor, targets: Tensor,
                    create_graph: bool = False) -> Tensor:
    """``d y^{targets[n]}(images[n]) / d images[n]``: images ``(N, C, H, W)``, targets ``(N,)`` -> ``(N, C, H, W)``.

    One backward of the summed target logits (each image's logit depends only on itself in eval mode).
    """
    with torch.enable_grad():
        x = images if images.requires_grad else images.detach().requires_grad_(True)
        logits = logits_of(forward(x))
        total = logits.gather(1, targets[:, None]).sum()
        (grad,) = torch.autograd.grad(total, x, create_graph=create_graph)
    return grad


class _InputMethod(Attribution):
    """Methods that read the image, not a layer; they re-run the model themselves."""

    uses_layer = False
    uses_gradients = True
    extra_passes = True

    def _model_forward(self, ctx: AttributionContext) -> Callable[[Tensor], Tensor]:
        assert ctx.model is not None
        return ctx.model


class InputXGradient(_InputMethod):
    """Input x gradient (Shrikumar et al., "Not Just a Black Box: Learning Important Features
    Through Propagating Activation Differences", arXiv:1605.01713, 2016; Ancona et al., ICLR 2018):

    ``L^c_ij = sum_ch x_ch,ij * dy^c / dx_ch,ij``.
    """

    def __init__(self, batch_size: int = 32):
        super().__init__(None)
        self.batch_size = _check_int("inputxgradient.batch_size", batch_size)

    def compute(self, ctx: AttributionContext) -> Tensor:
        images = ctx.images
        assert images is not None
        b, t = ctx.targets.shape
        out = []
        for col in range(t):
            grads = torch.cat([input_gradients(self._model_forward(ctx), images[part], ctx.targets[part, col],
                                               ctx.differentiable)
                               for part in _chunks(b, self.batch_size, "inputxgradient", False)])
            out.append((images * grads).sum(dim=1))
        return torch.stack(out, dim=1)


class IntegratedGradients(_InputMethod):
    """Integrated Gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep
    Networks", ICML 2017, eqs. 1 and 3):

    ``IG_ch,ij = (x - x')_ch,ij * int_0^1 dy^c(x' + a (x - x')) / dx_ch,ij da``,
    approximated by ``sum_k w_k`` at nodes ``alpha_k`` of ``rule`` (Captum's default:
    Gauss-Legendre, 50 steps; the paper's eq. 3 is ``riemann_right``), and
    ``L^c_ij = sum_ch IG_ch,ij``. Completeness: ``sum_ij L^c_ij ~ y^c(x) - y^c(x')``.

    Args:
        steps: number of integration nodes.
        rule: ``gausslegendre``, ``riemann_right``, ``riemann_left``, ``riemann_middle`` or ``riemann_trapezoid``.
        baseline: ``black`` (zeros), ``blur`` (the blurred image) or ``mean`` (per-channel mean) as ``x'``.
        batch_size: interpolated images per forward/backward pass.
        progress: a progress bar over the passes.
    """

    def __init__(self, steps: int = 50, rule: str = "gausslegendre", baseline: str = "black", batch_size: int = 32,
                 progress: bool = True):
        super().__init__(None)
        self.steps = _check_int("integratedgradients.steps", steps)
        self.alphas, self.weights = integration_rule(rule, self.steps)
        self.rule = rule
        self.baseline = _check_baseline("integratedgradients", baseline)
        self.batch_size = _check_int("integratedgradients.batch_size", batch_size)
        self.progress = progress

    def compute(self, ctx: AttributionContext) -> Tensor:
        images = ctx.images
        assert images is not None
        b, t = ctx.targets.shape
        reference = substrate(images, self.baseline)
        delta = images - reference
        alphas = torch.as_tensor(self.alphas, dtype=images.dtype, device=images.device)
        weights = torch.as_tensor(self.weights, dtype=images.dtype, device=images.device)
        rows = torch.arange(b, device=images.device).repeat_interleave(self.steps)
        nodes = torch.arange(self.steps, device=images.device).repeat(b)
        out = []
        for col in range(t):
            total = torch.zeros_like(images)
            for part in _chunks(rows.numel(), self.batch_size, "integratedgradients", self.progress):
                r, k = rows[part], nodes[part]
                points = reference[r] + alphas[k].view(-1, 1, 1, 1) * delta[r]
                grads = input_gradients(self._model_forward(ctx), points, ctx.targets[r, col], ctx.differentiable)
                total = total.index_add(0, r, grads * weights[k].view(-1, 1, 1, 1))
            out.append((delta * total).sum(dim=1))
        return torch.stack(out, dim=1)


class Occlusion(_InputMethod):
    """Occlusion (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks",
    ECCV 2014, sec. 4.2; Captum's ``Occlusion``):

    a ``window`` x ``window`` patch (all channels) slides with ``stride`` over the
    image and is replaced by the ``baseline``; each pixel gets the mean, over the
    patches that cover it, of ``y^c(x) - y^c(x with the patch occluded)`` (0 for a
    pixel no patch covers). Patches start at 0 and stay inside the image.

    Args:
        window: patch side in pixels.
        stride: step between patches in pixels.
        baseline: ``black``, ``blur`` or ``mean``: what the occluded patch shows.
        batch_size: occluded images per forward pass.
        progress: a progress bar over the passes.
    """

    uses_gradients = False

    def __init__(self, window: int = 16, stride: int = 8, baseline: str = "black", batch_size: int = 64,
                 progress: bool = True):
        super().__init__(None)
        self.window = _check_int("occlusion.window", window)
        self.stride = _check_int("occlusion.stride", stride)
        self.baseline = _check_baseline("occlusion", baseline)
        self.batch_size = _check_int("occlusion.batch_size", batch_size)
        self.progress = progress

    def compute(self, ctx: AttributionContext) -> Tensor:
        images = ctx.images
        assert images is not None and ctx.model is not None
        b, _, h, w = images.shape
        t = ctx.targets.shape[1]
        kh, kw = min(self.window, h), min(self.window, w)
        ys = torch.arange(0, h - kh + 1, self.stride, device=images.device)
        xs = torch.arange(0, w - kw + 1, self.stride, device=images.device)
        corners = torch.cartesian_prod(ys, xs).view(-1, 2)                          # (P, 2)
        grid_y = torch.arange(h, device=images.device)
        grid_x = torch.arange(w, device=images.device)
        inside_y = (grid_y[None] >= corners[:, :1]) & (grid_y[None] < corners[:, :1] + kh)   # (P, H)
        inside_x = (grid_x[None] >= corners[:, 1:]) & (grid_x[None] < corners[:, 1:] + kw)   # (P, W)
        patches = inside_y[:, :, None] & inside_x[:, None, :]                          # (P, H, W)
        count = patches.sum(dim=0).to(images.dtype)                                  # (H, W)
        reference = substrate(images, self.baseline)
        with torch.set_grad_enabled(ctx.differentiable):
            base = ctx.scores.to(images.dtype)                                      # (B, T)
            n_patches = corners.shape[0]
            rows = torch.arange(b, device=images.device).repeat_interleave(n_patches)
            which = torch.arange(n_patches, device=images.device).repeat(b)
            total = images.new_zeros((b, t, h, w))
            for part in _chunks(rows.numel(), self.batch_size, "occlusion", self.progress):
                r, p = rows[part], which[part]
                mask = patches[p][:, None]                                          # (n, 1, H, W)
                occluded = torch.where(mask, reference[r], images[r])
                logits = logits_of(ctx.model(occluded))
                drop = base[r] - logits.gather(1, ctx.targets[r])                  # (n, T)
                total = total.index_add(0, r, drop[:, :, None, None] * mask.to(images.dtype))
        return total / count.clamp_min(1)


class SobelCAM(_InputMethod):
    """Sobel edge map, an image-only baseline (pytorch-grad-cam's ``sobel_cam``; Sobel &
    Feldman 1968): with ``G`` the grey image (BT.601 luma ``0.299 R + 0.587 G + 0.114 B``;
    the channel mean for other channel counts) and ``S_x``, ``S_y`` the 3 x 3 Sobel
    derivatives (reflected borders), ``L = (|S_x * G| + |S_y * G|) / 2``. It ignores the model
    and the target: a map that only finds edges, for comparison.
    """

    uses_gradients = False

    def __init__(self) -> None:
        super().__init__(None)

    def compute(self, ctx: AttributionContext) -> Tensor:
        images = ctx.images
        assert images is not None
        if images.shape[1] == 3:
            luma = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype, device=images.device)
            grey = torch.einsum("bchw,c->bhw", images, luma)[:, None]
        else:
            grey = images.mean(dim=1, keepdim=True)
        kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=images.dtype,
                          device=images.device)
        kernels = torch.stack([kx, kx.t()])[:, None]                           # (2, 1, 3, 3)
        padded = torch.nn.functional.pad(grey, (1, 1, 1, 1), mode="reflect")
        edges = torch.nn.functional.conv2d(padded, kernels).abs().mean(dim=1)  # (B, H, W)
        return edges[:, None].expand(-1, ctx.targets.shape[1], -1, -1)
