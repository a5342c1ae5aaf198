"""Any medcam backbone as a segmentation encoder, described by its ``feature_info``.

Decoders never assume a fixed layout (smp's "input, then strides 2, 4, 8, 16,
32"): they read the channels and strides of the levels the backbone actually
returns. A backbone whose first level is at stride 4 (PVT, VMamba, tiny_cnn)
simply has one level fewer; nothing is padded with fake zero-channel maps, and
the segmenters upsample their logits to the input size at the end.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from torch import Tensor, nn

from medcam.build import build_backbone
from medcam.errors import ShapeError, SpecError
from medcam.spec import resolve_part

__all__ = ["EncoderBridge", "doubling", "check_length"]


class EncoderBridge(nn.Module):
    """A medcam backbone built from a name or part spec, plus the checks decoders rely on.

    Args:
        encoder: backbone name or part spec (``"resnet34"``, ``{"name": "tiny_cnn", "width": 8}``);
            validated with the spec path ``path`` so a typo reads
            ``segmenter.encoder.widht: unknown parameter; did you mean 'width'?``.
        in_chans: image channels, passed to the backbone.
        path: where the encoder sits in the enclosing spec (for error messages).

    ``forward(x)`` maps ``(B, in_chans, H, W)`` to the backbone's levels
    ``[(B, C_i, H / s_i, W / s_i), ...]``, checks each against ``feature_info`` and returns
    one level per stride (:attr:`levels`; the last of levels sharing a stride), described by
    :attr:`channels` and :attr:`strides`.
    """

    def __init__(self, encoder: Any, in_chans: int, path: str = "segmenter.encoder"):
        super().__init__()
        part = resolve_part("backbones", encoder, path)
        self.backbone = build_backbone(part, in_chans=in_chans)
        self.spec: dict[str, Any] = part
        self.in_chans = in_chans
        info = self.backbone.feature_info
        self.all_channels: list[int] = info.channels()
        self.all_strides: list[int] = info.strides()
        # one level per stride: where several share a stride (EfficientNet's last stage and conv head),
        # the decoder takes the last, deepest one
        self.levels: list[int] = [i for i, s in enumerate(self.all_strides)
                                  if i + 1 == len(self.all_strides) or self.all_strides[i + 1] != s]
        self.channels: list[int] = [self.all_channels[i] for i in self.levels]
        self.strides: list[int] = [self.all_strides[i] for i in self.levels]

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def max_stride(self) -> int:
        """The largest stride: H and W must be divisible by it."""
        return max(self.strides)

    def forward(self, x: Tensor) -> list[Tensor]:
        """The levels the decoders use (one per stride, see :attr:`levels`), checked against ``feature_info``."""
        feats = list(self.backbone(x))
        if len(feats) != len(self.all_strides):
            raise ShapeError(f"encoder '{self.name}' returned {len(feats)} levels but its feature_info "
                             f"declares {len(self.all_strides)}")
        h, w = x.shape[-2:]
        for i, (f, c, s) in enumerate(zip(feats, self.all_channels, self.all_strides)):
            expected = (c, math.ceil(h / s), math.ceil(w / s))
            if f.dim() != 4 or tuple(f.shape[1:]) != expected:
                raise ShapeError(f"encoder '{self.name}' level {i}: got shape {tuple(f.shape)}, but its "
                                 f"feature_info (channels {c}, stride {s}) means (B, *{expected}) for input {(h, w)}")
        return [feats[i] for i in self.levels]


def doubling(strides: Sequence[int]) -> bool:
    """True if each stride is twice the previous one (what fixed 2x upsampling decoders need)."""
    return all(b == 2 * a for a, b in zip(strides, strides[1:]))


def check_length(values: Sequence[int] | None, n: int, path: str, what: str) -> None:
    """``values`` must be ``n`` positive ints (``None`` passes), else a SpecError naming ``path``."""
    if values is None:
        return
    if (not isinstance(values, (list, tuple)) or len(values) != n
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)):
        raise SpecError(f"{path}: expected {n} positive integers ({what}), got {values!r}")
