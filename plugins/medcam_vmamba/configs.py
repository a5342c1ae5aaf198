"""The VMamba configurations medcam registers, as plain data (torch-free).

Every official ImageNet-1K classification configuration of VMamba (Liu et al.,
"VMamba: Visual State Space Model", NeurIPS 2024; ``MzeroMiko/VMamba``,
``classification/models/vmamba.py`` and ``classification/configs/vssm/*.yaml``)
plus the depth-[2, 2, 4, 2], d_state-1 "VMamba-T (0220)" configuration that the
SR weakly supervised chest X-ray method builds on (Wang et al., Scientific
Reports 2024; ``WTY321/SR``, ``Model/vmamba.py:get_vmamba_model``).

Each configuration fixes the architecture; the backbone factories in
:mod:`medcam_vmamba.entries` add only run-time options (input channels,
``out_indices``, drop-path rate, checkpoints). This module imports only the
standard library so registry metadata can use it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from medcam.errors import SpecError
from medcam.registry import did_you_mean

__all__ = ["VMambaConfig", "CONFIGS", "ALIASES", "STRIDES", "RELEASE", "get_config", "make_config"]

#: Output strides of the four levels (patch embedding 4, then one 2x downsample per stage).
STRIDES = (4, 8, 16, 32)

#: Where the official checkpoints are published.
RELEASE = "https://github.com/MzeroMiko/VMamba/releases/download"

DOWNSAMPLE_VERSIONS = ("v1", "v2", "v3")
PATCH_EMBED_VERSIONS = ("v1", "v2")


@dataclass(frozen=True)
class VMambaConfig:
    """One VMamba architecture.

    Attributes:
        depths: VSS blocks per stage (4 stages).
        dims: channels of stage 1; stage ``i`` has ``dims * 2**i``.
        d_state: SSM state size N per channel.
        ssm_ratio: SS2D inner width ``d_inner = int(ssm_ratio * dim)``.
        mlp_ratio: hidden width of the block MLP relative to ``dim``; 0 = no MLP branch.
        gate: multiply the SS2D output by ``SiLU(z)`` from a second half of the
            input projection (official ``forward_type`` ``v0``/``v2``); ``False`` is
            ``*_noz`` (the v2 release models, ``v05_noz``).
        conv_bias: bias of the depth-wise convolution in SS2D.
        downsample: ``"v1"`` patch merging (2x2 concat, LayerNorm, Linear 4C->2C),
            ``"v2"`` conv 2x2 stride 2 + LayerNorm, ``"v3"`` conv 3x3 stride 2 + LayerNorm.
        patch_embed: ``"v1"`` conv 4x4 stride 4 + LayerNorm; ``"v2"`` two conv 3x3
            stride 2 with LayerNorm, GELU, LayerNorm.
        drop_path_rate: stochastic depth of the last block (linear from 0).
        dt_rank: rank R of the step-size projection; ``None`` = ``ceil(dims / 16)``
            per stage (official ``"auto"``).
        d_conv: kernel size of the depth-wise convolution.
        official: name of the official factory / model card (documentation).
        forward_type: the official ``forward_type`` string (documentation).
        norm: the official norm layout, ``"ln2d"`` (channel-first) or ``"ln"``
            (channel-last). medcam computes channel-last either way; the weights
            are the same tensors.
        checkpoint: file name of the official ImageNet-1K checkpoint under
            :data:`RELEASE` (``None`` if there is none).
        top1: ImageNet-1K top-1 at 224 px reported by the authors (documentation).
    """

    depths: tuple[int, ...]
    dims: int
    d_state: int
    ssm_ratio: float
    mlp_ratio: float
    gate: bool
    conv_bias: bool
    downsample: str
    patch_embed: str
    drop_path_rate: float
    dt_rank: int | None = None
    d_conv: int = 3
    official: str = ""
    forward_type: str = ""
    norm: str = "ln"
    checkpoint: str | None = None
    top1: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if len(self.depths) != 4 or any(not isinstance(d, int) or d < 1 for d in self.depths):
            raise SpecError(f"depths: expected 4 positive ints (blocks per stage), got {list(self.depths)}")
        if not isinstance(self.dims, int) or self.dims < 2 or self.dims % 2:
            raise SpecError(f"dims: expected an even positive int (channels of stage 1), got {self.dims!r}")
        if not isinstance(self.d_state, int) or self.d_state < 1:
            raise SpecError(f"d_state: expected a positive int, got {self.d_state!r}")
        if self.ssm_ratio <= 0 or int(self.ssm_ratio * self.dims) < 1:
            raise SpecError(f"ssm_ratio: expected a positive number, got {self.ssm_ratio!r}")
        if self.mlp_ratio < 0:
            raise SpecError(f"mlp_ratio: expected >= 0 (0 = no MLP), got {self.mlp_ratio!r}")
        if self.downsample not in DOWNSAMPLE_VERSIONS:
            raise SpecError(f"downsample: expected one of {', '.join(DOWNSAMPLE_VERSIONS)}, got {self.downsample!r}"
                            f"{did_you_mean(str(self.downsample), DOWNSAMPLE_VERSIONS)}")
        if self.patch_embed not in PATCH_EMBED_VERSIONS:
            raise SpecError(f"patch_embed: expected one of {', '.join(PATCH_EMBED_VERSIONS)}, "
                            f"got {self.patch_embed!r}{did_you_mean(str(self.patch_embed), PATCH_EMBED_VERSIONS)}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise SpecError(f"drop_path_rate: expected a number in [0, 1), got {self.drop_path_rate!r}")
        if self.dt_rank is not None and (not isinstance(self.dt_rank, int) or self.dt_rank < 1):
            raise SpecError(f"dt_rank: expected a positive int or null (ceil(dim / 16)), got {self.dt_rank!r}")
        if not isinstance(self.d_conv, int) or self.d_conv < 1 or (self.d_conv > 1 and self.d_conv % 2 == 0):
            raise SpecError(f"d_conv: expected 1 (no convolution) or an odd kernel size, got {self.d_conv!r}")

    @property
    def channels(self) -> list[int]:
        """Channels of the four levels: ``dims * (1, 2, 4, 8)``."""
        return [self.dims * 2**i for i in range(4)]

    def d_inner(self, stage: int) -> int:
        """SS2D inner width of ``stage``."""
        return int(self.ssm_ratio * self.channels[stage])

    def rank(self, stage: int) -> int:
        """Step-size projection rank R of ``stage``."""
        return self.dt_rank if self.dt_rank is not None else math.ceil(self.channels[stage] / 16)

    @property
    def url(self) -> str | None:
        """Download address of the official checkpoint, if any."""
        return f"{RELEASE}/{self.checkpoint}" if self.checkpoint else None

    def num_params(self, num_classes: int | None = 1000, in_chans: int = 3,
                   out_norm_levels: tuple[int, ...] = ()) -> int:
        """Parameter count by formula (no model is built).

        ``num_classes``: add the official classifier (LayerNorm + Linear), ``None``
        for the backbone alone; ``out_norm_levels``: the levels that have a LayerNorm
        ``outnorm{i}`` (a backbone built with ``out_norm=True``).
        """
        c0 = self.dims
        if self.patch_embed == "v1":
            total = in_chans * c0 * 16 + c0 + 2 * c0
        else:
            half = c0 // 2
            total = in_chans * half * 9 + half + 2 * half + half * c0 * 9 + c0 + 2 * c0
        for i, depth in enumerate(self.depths):
            c, d, r, n = self.channels[i], self.d_inner(i), self.rank(i), self.d_state
            block = 2 * c + c * d * (2 if self.gate else 1)
            if self.d_conv > 1:
                block += d * self.d_conv**2 + (d if self.conv_bias else 0)
            block += 4 * (r + 2 * n) * d + 4 * d * r + 4 * d + 4 * d * n + 4 * d + 2 * d + d * c
            if self.mlp_ratio > 0:
                hidden = int(c * self.mlp_ratio)
                block += 2 * c + c * hidden + hidden + hidden * c + c
            total += depth * block
            if i < 3:
                if self.downsample == "v1":
                    total += 8 * c + 4 * c * 2 * c
                else:
                    k = 4 if self.downsample == "v2" else 9
                    total += c * 2 * c * k + 2 * c + 4 * c
        total += sum(2 * self.channels[i] for i in out_norm_levels)
        if num_classes:
            total += 2 * self.channels[3] + self.channels[3] * num_classes + num_classes
        return total

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["depths"] = list(self.depths)
        out.pop("extra")
        return out


def _vanilla(depths: tuple[int, ...], dims: int, dpr: float, official: str, ckpt: str, top1: float) -> VMambaConfig:
    return VMambaConfig(depths=depths, dims=dims, d_state=16, ssm_ratio=2.0, mlp_ratio=0.0, gate=True,
                        conv_bias=True, downsample="v1", patch_embed="v1", drop_path_rate=dpr,
                        official=official, forward_type="v0", norm="ln", checkpoint=f"%23v0cls/{ckpt}", top1=top1)


def _v2(depths: tuple[int, ...], dims: int, ratio: float, dpr: float, official: str, ckpt: str,
        top1: float) -> VMambaConfig:
    return VMambaConfig(depths=depths, dims=dims, d_state=1, ssm_ratio=ratio, mlp_ratio=4.0, gate=False,
                        conv_bias=False, downsample="v3", patch_embed="v2", drop_path_rate=dpr,
                        official=official, forward_type="v05_noz", norm="ln2d", checkpoint=f"%23v2cls/{ckpt}",
                        top1=top1)


#: name -> configuration. Drop-path rates, checkpoints and top-1 are the official ones.
CONFIGS: dict[str, VMambaConfig] = {
    "vanilla_vmamba_tiny": _vanilla((2, 2, 9, 2), 96, 0.2, "Vanilla-VMamba-T", "vssmtiny_dp01_ckpt_epoch_292.pth",
                                    82.2),
    "vanilla_vmamba_small": _vanilla((2, 2, 27, 2), 96, 0.3, "Vanilla-VMamba-S", "vssmsmall_dp03_ckpt_epoch_238.pth",
                                     83.5),
    "vanilla_vmamba_base": _vanilla((2, 2, 27, 2), 128, 0.6, "Vanilla-VMamba-B", "vssmbase_dp06_ckpt_epoch_241.pth",
                                    83.7),
    "vmamba_tiny_s2l5": _v2((2, 2, 5, 2), 96, 2.0, 0.2, "VMamba-T[s2l5]", "vssm_tiny_0230_ckpt_epoch_262.pth", 82.5),
    "vmamba_small_s2l15": _v2((2, 2, 15, 2), 96, 2.0, 0.3, "VMamba-S[s2l15]", "vssm_small_0229_ckpt_epoch_222.pth",
                              83.6),
    "vmamba_base_s2l15": _v2((2, 2, 15, 2), 128, 2.0, 0.6, "VMamba-B[s2l15]", "vssm_base_0229_ckpt_epoch_237.pth",
                             83.9),
    "vmamba_tiny_s1l8": _v2((2, 2, 8, 2), 96, 1.0, 0.2, "VMamba-T[s1l8]", "vssm1_tiny_0230s_ckpt_epoch_264.pth", 82.6),
    "vmamba_small_s1l20": _v2((2, 2, 20, 2), 96, 1.0, 0.3, "VMamba-S[s1l20]", "vssm1_small_0229s_ckpt_epoch_240.pth",
                              83.3),
    "vmamba_base_s1l20": _v2((2, 2, 20, 2), 128, 1.0, 0.5, "VMamba-B[s1l20]", "vssm1_base_0229s_ckpt_epoch_225.pth",
                             83.8),
    # VMamba-T (0220) = classification/configs/vssm1/vssm_tiny_224_0220.yaml, the backbone of WTY321/SR:
    # forward_type "v2" (gated), channel-last LayerNorm, d_state 1, ssm_ratio 2, v3 downsample, v2 patch embed.
    "vmamba_tiny_sr": VMambaConfig(depths=(2, 2, 4, 2), dims=96, d_state=1, ssm_ratio=2.0, mlp_ratio=4.0, gate=True,
                                   conv_bias=False, downsample="v3", patch_embed="v2", drop_path_rate=0.2,
                                   official="VMamba-T(0220), SR backbone", forward_type="v2", norm="ln",
                                   checkpoint="%2320240220/vssmtiny_dp02_ckpt_epoch_258.pth", top1=82.5),
}

#: Short names -> the configuration they stand for (the s1l* models, the fastest of each size).
ALIASES: dict[str, str] = {
    "vmamba_tiny": "vmamba_tiny_s1l8",
    "vmamba_small": "vmamba_small_s1l20",
    "vmamba_base": "vmamba_base_s1l20",
}


def get_config(name: str) -> VMambaConfig:
    """The configuration registered as ``name`` (an alias resolves to its target)."""
    key = ALIASES.get(name, name)
    if key not in CONFIGS:
        known = list(CONFIGS) + list(ALIASES)
        raise SpecError(f"unknown VMamba configuration '{name}'{did_you_mean(name, known)} "
                        f"(known: {', '.join(known)})")
    return CONFIGS[key]


def make_config(**params: Any) -> VMambaConfig:
    """A custom configuration from JSON-friendly parameters (lists become tuples); validated."""
    if "depths" in params:
        depths = params["depths"]
        if not isinstance(depths, (list, tuple)):
            raise SpecError(f"depths: expected a list of 4 ints, got {depths!r}")
        params["depths"] = tuple(depths)
    return VMambaConfig(**params)
