"""The VMamba backbone (VSSM) as a medcam feature extractor.

Liu et al., "VMamba: Visual State Space Model", NeurIPS 2024. A stride-4 patch
embedding is followed by four stages of VSS blocks; stage ``i`` works on
``dims * 2**i`` channels at stride ``4 * 2**i`` and ends with a 2x downsampling
(except the last). A VSS block is (pre-norm, with stochastic depth)::

    x = x + DropPath(SS2D(LN(x)))
    x = x + DropPath(MLP(LN(x)))        # when mlp_ratio > 0

**Where a level is taken.** Level ``i`` is the output of stage ``i``'s blocks,
*before* its downsampling, at stride ``4 * 2**i`` with ``dims * 2**i`` channels,
passed through the level's own LayerNorm ``outnorm{i}`` (``out_norm=True``, the
default) and returned as a map ``(B, C, H, W)``. This is exactly VMamba's
``Backbone_VSSM`` (the detection/segmentation backbone), so its dense
checkpoints load as they are. With ``out_norm=False`` levels are the raw
residual stream (no parameters), as the classification model feeds its head.

Parameter names follow the official classification model (``patch_embed.*``,
``layers.{i}.blocks.{j}.{norm,op,norm2,mlp}.*``, ``layers.{i}.downsample.*``,
``outnorm{i}.*``), so official weights map one to one
(:mod:`medcam_vmamba.checkpoint`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as grad_checkpoint

from medcam.errors import ShapeError, SpecError
from medcam.features import FeatureInfo, FeatureLevel, normalize_out_indices
from medcam.model import check_images

from .configs import STRIDES, VMambaConfig
from .layers import LevelOutput, Mlp, make_downsample, make_patch_embed
from .ss2d import SS2D

__all__ = ["VSSBlock", "VSSStage", "VMamba"]


class DropPath(nn.Module):
    """Stochastic depth (Huang et al., ECCV 2016): zero a sample's residual branch with
    probability ``p`` during training, scaling the kept ones by ``1 / (1 - p)``."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p:.3f}"


class VSSBlock(nn.Module):
    """One VSS block on channel-last tokens ``(B, H, W, dim)`` (shape preserved).

    Args:
        dim: token channels.
        config: the architecture (state size, ratios, gating, ...).
        drop_path: stochastic-depth probability of both residual branches.
        kernel_backend: scan kernels (see :class:`~medcam_vmamba.ss2d.SS2D`).
    """

    def __init__(self, dim: int, config: VMambaConfig, drop_path: float = 0.0, kernel_backend: str = "auto"):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.op = SS2D(dim, d_state=config.d_state, ssm_ratio=config.ssm_ratio, dt_rank=config.dt_rank,
                       d_conv=config.d_conv, conv_bias=config.conv_bias, gate=config.gate, backend=kernel_backend)
        self.drop_path = DropPath(drop_path)
        self.has_mlp = config.mlp_ratio > 0
        if self.has_mlp:
            self.norm2 = nn.LayerNorm(dim)
            self.mlp = Mlp(dim, int(dim * config.mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.op(self.norm(x)))
        if self.has_mlp:
            x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class VSSStage(nn.Module):
    """``blocks`` (a sequence of :class:`VSSBlock`) then ``downsample`` (``Identity`` for the last stage)."""

    def __init__(self, blocks: Sequence[nn.Module], downsample: nn.Module):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.downsample = downsample


def _init_weights(module: nn.Module) -> None:
    """The official initialization: Linear ~ trunc-normal(std 0.02), bias 0; LayerNorm 1, 0."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class VMamba(nn.Module):
    """VMamba backbone returning four feature maps.

    Input: normalized images ``(B, in_chans, H, W)`` with H and W divisible by 32
    (any such size: nothing depends on a fixed grid). Output: a list with the
    levels of ``out_indices``, level ``i`` of shape ``(B, dims * 2**i, H / 4 / 2**i,
    W / 4 / 2**i)``; ``feature_info`` gives channels, strides 4/8/16/32, the
    modules ``outnorm{i}`` that produce them (hooks see the ``(B, C, H, W)`` map)
    and ``cam_level`` (the last level).

    Args:
        config: the architecture (:class:`~medcam_vmamba.configs.VMambaConfig`).
        in_chans: image channels (1 for greyscale radiographs, 3 for RGB).
        out_indices: levels to return (``None``: all four; see
            :func:`medcam.features.normalize_out_indices`).
        drop_path_rate: stochastic depth of the last block (``None``: the config's).
        out_norm: pass each level through its own LayerNorm (``outnorm{i}``).
        grad_checkpointing: recompute blocks in the backward pass to save memory.
        kernel_backend: ``"auto"`` (by device: CPU -> chunked PyTorch scan; CUDA ->
            mamba-ssm if installed, else medcam's Triton kernels), or force
            ``"torch"``, ``"triton"`` or ``"mamba"`` (an error if it cannot run, never
            a silent fallback).
        name: the registered name (used in messages and to find the official
            checkpoint for ``pretrained``).
    """

    def __init__(self, config: VMambaConfig, in_chans: int = 3, out_indices: Sequence[int] | int | None = None,
                 drop_path_rate: float | None = None, out_norm: bool = True, grad_checkpointing: bool = False,
                 kernel_backend: str = "auto", name: str = "vmamba"):
        super().__init__()
        if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
            raise SpecError(f"{name}: in_chans must be a positive int, got {in_chans!r}")
        rate = config.drop_path_rate if drop_path_rate is None else float(drop_path_rate)
        if not 0.0 <= rate < 1.0:
            raise SpecError(f"{name}: drop_path_rate must be in [0, 1), got {drop_path_rate!r}")
        self.config, self.name, self.in_chans = config, name, in_chans
        self.out_indices = normalize_out_indices(out_indices, len(STRIDES))
        self.out_norm = bool(out_norm)
        # forward_from(levels[k], k) reproduces levels[k+1:] only on raw (un-normalized) levels
        self.forward_from_exact = not self.out_norm
        self.grad_checkpointing = bool(grad_checkpointing)
        self.kernel_backend = kernel_backend
        dims = config.channels

        self.patch_embed = make_patch_embed(config.patch_embed, in_chans, dims[0])
        total = sum(config.depths)
        rates = [rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]  # linear 0 .. rate
        self.layers = nn.ModuleList()
        start = 0
        for i, depth in enumerate(config.depths):
            blocks = [VSSBlock(dims[i], config, rates[start + j], kernel_backend) for j in range(depth)]
            start += depth
            down = make_downsample(config.downsample, dims[i], dims[i + 1]) if i < 3 else nn.Identity()
            self.layers.append(VSSStage(blocks, down))
        for i in self.out_indices:
            self.add_module(f"outnorm{i}", LevelOutput(dims[i], norm=self.out_norm))
        self.apply(_init_weights)
        self.feature_info = FeatureInfo(
            [FeatureLevel(dims[i], STRIDES[i], f"outnorm{i}") for i in self.out_indices], cam_level=-1)

    # ------------------------------------------------------------------ forward
    def _blocks(self, stage: int, x: Tensor) -> Tensor:
        blocks = self.layers[stage].blocks
        if self.grad_checkpointing and torch.is_grad_enabled():
            for block in blocks:
                x = grad_checkpoint(block, x, use_reentrant=False)
            return x
        return blocks(x)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Levels ``[(B, C_i, H / s_i, W / s_i) for i in out_indices]`` for normalized images
        ``(B, in_chans, H, W)``."""
        check_images(x, self.in_chans, multiple=32, what=f"{self.name} input")
        t = self.patch_embed(x)  # (B, H/4, W/4, C0)
        outs: list[Tensor] = []
        last = self.out_indices[-1]
        for i in range(last + 1):
            t = self._blocks(i, t)
            if i in self.out_indices:
                outs.append(getattr(self, f"outnorm{i}")(t))
            if i < last:
                t = self.layers[i].downsample(t)
        return outs

    def forward_from(self, x: Tensor, level: int) -> list[Tensor]:
        """Run the stages after output level ``level`` on ``x``, a map of that level.

        ``x`` is ``(B, C, h, w)`` with the channels of level ``level`` (usually the
        level's output, possibly masked, e.g. by the SR method's foreground map).
        It enters stage ``i + 1`` exactly as stage ``i``'s tokens would: through
        stage ``i``'s downsampling. Returns the later levels of ``out_indices``
        (an empty list for the last level). With ``out_norm=False`` this
        reproduces ``forward``'s later levels from an unchanged level map; with
        ``out_norm=True`` the later stages see the LayerNorm-ed map, as SR feeds its
        normalized stage-3 map into the last stage.
        """
        n = len(self.out_indices)
        if isinstance(level, bool) or not isinstance(level, int) or not -n <= level < n:
            raise ShapeError(f"{self.name}.forward_from: level must be an int in [-{n}, {n - 1}] "
                             f"(this backbone returns {n} levels), got {level!r}")
        stage = self.out_indices[level % n]
        channels = self.config.channels[stage]
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != channels:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(f"{self.name}.forward_from: level {level} maps must have shape "
                             f"(B, {channels}, h, w), got {got}")
        t = x.permute(0, 2, 3, 1)
        outs: list[Tensor] = []
        for i in range(stage + 1, self.out_indices[-1] + 1):
            t = self._blocks(i, self.layers[i - 1].downsample(t))
            if i in self.out_indices:
                outs.append(getattr(self, f"outnorm{i}")(t))
        return outs

    # ------------------------------------------------------------------ helpers
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block in the backward pass (less memory, ~30% more time)."""
        self.grad_checkpointing = bool(enable)

    def no_weight_decay(self) -> set[str]:
        """Names of parameters that should not be weight-decayed (``A_logs``, ``Ds``)."""
        return {name for name, p in self.named_parameters() if getattr(p, "_no_weight_decay", False)}

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, depths={list(self.config.depths)}, dims={self.config.dims}, "
                f"d_state={self.config.d_state}, in_chans={self.in_chans}, out_indices={list(self.out_indices)}, "
                f"out_norm={self.out_norm}, kernel_backend={self.kernel_backend!r}")
