"""Attention residual U-Net: residual units (He et al. 2016; Zhang et al. 2018) with additive
attention gates on the skip connections (Oktay et al. 2018).

References:
    He, Zhang, Ren, Sun, Identity Mappings in Deep Residual Networks, ECCV 2016.
    Zhang, Liu, Wang, Road Extraction by Deep Residual U-Net, IEEE GRSL 15(5), 2018.
    Oktay et al., Attention U-Net: Learning Where to Look for the Pancreas, MIDL 2018.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medcam.model import check_images
from medcam.params import Range, check_number

__all__ = ["ResidualUnit", "AttentionGate", "AttentionResUNet"]


class ResidualUnit(nn.Module):
    """Pre-activation residual unit: ``y = F(x) + shortcut(x)``.

    ``F`` = BN -> ReLU -> 3x3 conv (stride ``stride``) -> BN -> ReLU -> 3x3 conv
    (He et al. 2016, "full pre-activation"). With ``first=True`` the leading BN-ReLU
    is dropped (the unit reads the image, as in Zhang et al. 2018's first unit).
    ``shortcut`` is the identity when shape is kept, else a 1x1 conv (stride
    ``stride``) followed by BN. ``(B, C_in, H, W) -> (B, C_out, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, first: bool = False):
        super().__init__()
        pre = [] if first else [nn.BatchNorm2d(in_channels), nn.ReLU(inplace=False)]
        self.body = nn.Sequential(
            *pre,
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        )
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.shortcut(x)


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018, Eq. 1-2), computed on the gating grid.

    For a skip ``x`` ``(B, F_x, H, W)`` and a gating signal ``g`` ``(B, F_g, H/2, W/2)`` (the
    coarser decoder features)::

        q     = psi^T ReLU(W_x^T x_s + W_g^T g + b_g) + b_psi
        alpha = sigmoid(q)                       (B, 1, H/2, W/2)
        out   = x * upsample_bilinear(alpha)     (B, F_x, H, W)

    ``W_x`` is a 2x2 convolution with stride 2 and no bias (it brings ``x`` to the grid of
    ``g``, as in the paper, where ``x`` is downsampled to the gating resolution and the
    coefficients are resampled back); ``W_g`` and ``psi`` are 1x1 convolutions with biases
    ``b_g`` and ``b_psi``; ``F_int`` intermediate channels. The last ``alpha`` is kept in
    :attr:`last_alpha` (detached) for inspection.
    """

    def __init__(self, skip_channels: int, gate_channels: int, inter_channels: int):
        super().__init__()
        self.w_x = nn.Conv2d(skip_channels, inter_channels, 2, stride=2, bias=False)
        self.w_g = nn.Conv2d(gate_channels, inter_channels, 1, bias=True)
        self.psi = nn.Conv2d(inter_channels, 1, 1, bias=True)
        self.last_alpha: Tensor | None = None

    def coefficients(self, x: Tensor, g: Tensor) -> Tensor:
        """Attention coefficients ``alpha`` ``(B, 1, H, W)`` in (0, 1) at the skip's resolution."""
        q = self.psi(F.relu(self.w_x(x) + self.w_g(g)))
        alpha = torch.sigmoid(q)
        return F.interpolate(alpha, size=x.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        alpha = self.coefficients(x, g)
        self.last_alpha = alpha.detach()
        return x * alpha


class AttentionResUNet(nn.Module):
    """Residual U-Net with attention-gated skips: normalized ``(B, in_chans, H, W)`` ->
    logits ``(B, num_classes, H, W)``; H and W divisible by ``2 ** depth``.

    Block structure (channels ``c_i = base_channels * 2**i``, ``i = 0..depth``):

    * encoder level 0: ``ResidualUnit(in_chans, c_0, first=True)`` at full resolution;
    * encoder level ``i = 1..depth``: ``ResidualUnit(c_{i-1}, c_i, stride=2)`` (strided
      convolution instead of pooling, as Zhang et al.); level ``depth`` is the bridge;
    * decoder level ``i = depth-1..0``: gate the skip ``e_i`` with the coarser decoder map
      ``d_{i+1}`` (``AttentionGate(c_i, c_{i+1}, c_i // 2)``), upsample ``d_{i+1}`` 2x
      (bilinear), concatenate ``[up(d_{i+1}), gated e_i]`` and apply
      ``ResidualUnit(c_{i+1} + c_i, c_i)``;
    * head: BN -> ReLU -> 1x1 conv to ``num_classes`` (the units are pre-activation).

    Args:
        in_chans: image channels.
        num_classes: output channels (1 for a binary mask).
        base_channels: ``c_0``.
        depth: number of stride-2 levels (1 to 6).
    """

    def __init__(self, in_chans: int = 3, num_classes: int = 1, base_channels: int = 32, depth: int = 4):
        super().__init__()
        for name, value in (("in_chans", in_chans), ("num_classes", num_classes)):  # base_channels, depth:
            check_number(value, f"attention_resunet.{name}", Range(1), integer=True)  # declared by the factory
        self.in_chans, self.num_classes, self.depth = in_chans, num_classes, depth
        ch = [base_channels * 2 ** i for i in range(depth + 1)]
        self.channels = ch
        self.encoder = nn.ModuleList([ResidualUnit(in_chans, ch[0], first=True)]
                                     + [ResidualUnit(ch[i - 1], ch[i], stride=2) for i in range(1, depth + 1)])
        self.gates = nn.ModuleList(AttentionGate(ch[i], ch[i + 1], max(1, ch[i] // 2)) for i in range(depth))
        self.decoder = nn.ModuleList(ResidualUnit(ch[i + 1] + ch[i], ch[i]) for i in range(depth))
        self.head = nn.Sequential(nn.BatchNorm2d(ch[0]), nn.ReLU(inplace=True), nn.Conv2d(ch[0], num_classes, 1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def input_multiple(self) -> int:
        return 2 ** self.depth

    @property
    def cam_layer(self) -> str:
        """The module CAM methods read by default: the bridge (deepest encoder unit)."""
        return f"encoder.{self.depth}"

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self.in_chans, multiple=self.input_multiple, what="attention_resunet input")
        skips = []
        for unit in self.encoder:
            x = unit(x)
            skips.append(x)
        d = skips.pop()
        for i in reversed(range(self.depth)):
            gated = self.gates[i](skips[i], d)
            up = F.interpolate(d, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            d = self.decoder[i](torch.cat([up, gated], dim=1))
        return self.head(d)

    def attention_maps(self) -> list[Tensor]:
        """The gates' coefficients from the last forward, finest first: ``[(B, 1, H/2**i, W/2**i), ...]``."""
        return [g.last_alpha for g in self.gates if g.last_alpha is not None]
