"""Small building blocks of VMamba: patch embedding, downsampling, MLP, level outputs.

Every module here works on channel-last tensors ``(B, H, W, C)`` between
stages (LayerNorm and Linear act on the last dimension), which is VMamba's
``norm_layer="ln"`` layout. The official v2 models compute channel-first
(``"ln2d"``, 1x1 convolutions); the parameters are the same tensors, so their
weights load unchanged (see :mod:`medcam_vmamba.checkpoint`).

Module indices inside the ``nn.Sequential`` containers follow the official
classification model, so state-dict keys are the official ones
(``patch_embed.0.weight``, ``layers.0.downsample.1.weight``, ...).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Permute", "PatchMerging", "make_patch_embed", "make_downsample", "Mlp", "LevelOutput"]


class Permute(nn.Module):
    """``x.permute(*dims)`` as a module (no parameters)."""

    def __init__(self, *dims: int):
        super().__init__()
        self.dims = dims

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return ", ".join(map(str, self.dims))


class PatchMerging(nn.Module):
    """Swin-style 2x downsampling: concatenate each 2x2 cell, LayerNorm(4C), Linear(4C -> C_out).

    Input ``(B, H, W, C)``, output ``(B, ceil(H/2), ceil(W/2), C_out)`` (odd sizes
    are zero-padded at the bottom/right). The concatenation order is
    ``[x(2i, 2j), x(2i+1, 2j), x(2i, 2j+1), x(2i+1, 2j+1)]``, as in VMamba's
    ``PatchMerging2D`` (and Swin), which the ``reduction`` weights depend on.
    """

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, out_dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[1], x.shape[2]
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


def make_patch_embed(version: str, in_chans: int, dim: int) -> nn.Sequential:
    """Stride-4 stem: images ``(B, in_chans, H, W)`` -> tokens ``(B, H/4, W/4, dim)``.

    ``"v1"``: Conv 4x4 stride 4 -> LayerNorm (indices 0, 2).
    ``"v2"``: Conv 3x3 stride 2 (dim/2) -> LayerNorm -> GELU -> Conv 3x3 stride 2 (dim)
    -> LayerNorm (indices 0, 2, 5, 7).
    """
    if version == "v1":
        return nn.Sequential(nn.Conv2d(in_chans, dim, kernel_size=4, stride=4), Permute(0, 2, 3, 1), nn.LayerNorm(dim))
    if version == "v2":
        half = dim // 2
        return nn.Sequential(
            nn.Conv2d(in_chans, half, kernel_size=3, stride=2, padding=1),
            Permute(0, 2, 3, 1),
            nn.LayerNorm(half),
            Permute(0, 3, 1, 2),
            nn.GELU(),
            nn.Conv2d(half, dim, kernel_size=3, stride=2, padding=1),
            Permute(0, 2, 3, 1),
            nn.LayerNorm(dim),
        )
    raise ValueError(f"unknown patch embedding version {version!r}")


def make_downsample(version: str, dim: int, out_dim: int) -> nn.Module:
    """2x downsampling between stages, ``(B, H, W, dim)`` -> ``(B, ceil(H/2), ceil(W/2), out_dim)``.

    ``"v1"``: :class:`PatchMerging`; ``"v2"``: Conv 2x2 stride 2 -> LayerNorm;
    ``"v3"``: Conv 3x3 stride 2 padding 1 -> LayerNorm (conv at index 1, norm at 3).
    """
    if version == "v1":
        return PatchMerging(dim, out_dim)
    if version in ("v2", "v3"):
        conv = (nn.Conv2d(dim, out_dim, kernel_size=2, stride=2) if version == "v2"
                else nn.Conv2d(dim, out_dim, kernel_size=3, stride=2, padding=1))
        return nn.Sequential(Permute(0, 3, 1, 2), conv, Permute(0, 2, 3, 1), nn.LayerNorm(out_dim))
    raise ValueError(f"unknown downsample version {version!r}")


class Mlp(nn.Module):
    """Token MLP ``fc2(drop(GELU(fc1(x))))`` on ``(..., dim)``."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class LevelOutput(nn.Module):
    """Turns a stage's channel-last tokens ``(B, H, W, C)`` into a level map ``(B, C, H, W)``.

    With ``norm=True`` it first applies a LayerNorm over C (the ``outnorm{i}`` of
    VMamba's ``Backbone_VSSM``; its parameters are ``weight``/``bias`` of shape
    ``(C,)``). Hooks registered on this module see the map ``(B, C, H, W)``.
    """

    def __init__(self, dim: int, norm: bool = True, eps: float = 1e-5):
        super().__init__()
        self.dim, self.eps, self.norm = dim, eps, norm
        if norm:
            self.weight = nn.Parameter(torch.ones(dim))
            self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        if self.norm:
            x = F.layer_norm(x, (self.dim,), self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2).contiguous()

    def extra_repr(self) -> str:
        return f"{self.dim}, norm={self.norm}"

