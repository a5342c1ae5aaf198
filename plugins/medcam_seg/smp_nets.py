"""U-Net, UNet++, FPN and DeepLabV3+ decoders from segmentation-models-pytorch on any medcam backbone.

smp's decoders expect smp's own encoders: a list ``[input, stride 2, 4, 8, 16,
32]``. Here the encoder is any registered medcam backbone, and each network
feeds its decoder from the levels the backbone's ``feature_info`` declares:

* **unet**: every level is a skip; each decoder block upsamples to the size of the
  next finer level, the last one to the input size. Works for any strides
  (2-first ResNets, 4-first PVT/VMamba/tiny_cnn, 1-first VGG).
* **unet++**: the nested decoder upsamples by exactly 2 per block, so the levels
  must have doubling strides; its output is at half the finest level's stride. A
  stride-1 level is used as smp uses its own stride-1 input (not as a skip).
* **fpn**: the last four levels (doubling strides) form the pyramid; the merged
  map is at the stride of the finest of them.
* **deeplabv3+**: ASPP on the last level, fused with the stride-4 level (or the
  finest level between stride 1 and the last stride). The encoders are not
  dilated, so ASPP runs at the last level's stride (32 for most backbones) and
  the default atrous rates are the paper's (6, 12, 18) at output stride 16,
  rescaled to the same size in pixels.

Logits are upsampled bilinearly to the input size when the decoder stops short
of it. Inputs must have H and W divisible by the encoder's largest stride (the
error suggests a padded size).

Requires segmentation-models-pytorch >= 0.5 (list-style decoder ``forward``,
``use_norm`` and ``aspp_separable`` arguments).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medcam.errors import SpecError
from medcam.model import check_images
from medcam.registry import did_you_mean

from .bridge import EncoderBridge, check_length, doubling

__all__ = ["SmpSegmenter", "UnetNet", "UnetPlusPlusNet", "FPNNet", "DeepLabV3PlusNet", "build_smp_segmenter",
           "default_decoder_channels"]



def default_decoder_channels(n: int) -> list[int]:
    """smp's U-Net default ``256, 128, 64, 32, 16`` for ``n`` blocks (truncated, or extended with 16)."""
    base = [256, 128, 64, 32, 16]
    return base[:n] if n <= len(base) else base + [16] * (n - len(base))


def _check_attention(value: str | None, decoder_channels: Sequence[int], encoder_channels: Sequence[int]) -> None:
    """``scse`` needs 16 channels everywhere (the choices themselves are declared by the registered factories)."""
    if value == "scse" and min([*decoder_channels, *encoder_channels]) < 16:
        # smp's SCSE squeezes channels by 16: fewer than 16 would leave a zero-channel conv
        where = " and encoder level" if encoder_channels else ""
        got = f" and encoder channels {list(encoder_channels)}" if encoder_channels else ""
        raise SpecError(f"segmenter.attention_type: 'scse' needs at least 16 channels in every decoder block"
                        f"{where}, got decoder_channels {list(decoder_channels)}{got}")


def _init(decoder: nn.Module, head: nn.Module) -> None:
    from segmentation_models_pytorch.base.initialization import initialize_decoder, initialize_head

    initialize_decoder(decoder)
    initialize_head(head)


class SmpSegmenter(nn.Module, ABC):
    """Encoder (any medcam backbone) -> smp decoder -> smp segmentation head -> resize to input.

    Subclasses build ``self.decoder`` and ``self.head`` and implement :meth:`decode`.
    ``forward(x)``: normalized images ``(B, in_chans, H, W)``, H and W divisible by
    :attr:`input_multiple` -> logits ``(B, num_classes, H, W)``.
    """

    arch = "smp"

    def __init__(self, encoder: EncoderBridge, num_classes: int):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise SpecError(f"num_classes: expected a positive integer, got {num_classes!r}")
        self.encoder = encoder
        self.num_classes = num_classes

    @property
    def input_multiple(self) -> int:
        """H and W must be divisible by this (the encoder's largest stride)."""
        return self.encoder.max_stride

    @property
    def cam_layer(self) -> str:
        """The module CAM methods read by default: the encoder backbone's ``cam_level`` (its deepest map)."""
        info = self.encoder.backbone.feature_info
        module = info[info.cam_level].module
        return f"encoder.backbone.{module}" if module else "encoder.backbone"

    @abstractmethod
    def decode(self, x: Tensor, feats: list[Tensor]) -> Tensor:
        """Decoder features for the normalized input ``x`` and the encoder levels ``feats``."""

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self.encoder.in_chans, multiple=self.input_multiple,
                     what=f"{self.arch} input (encoder '{self.encoder.name}')")
        logits = self.head(self.decode(x, self.encoder(x)))
        if logits.shape[-2:] != x.shape[-2:]:
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits

    def extra_repr(self) -> str:
        return (f"arch={self.arch!r}, encoder={self.encoder.name!r}, strides={self.encoder.strides}, "
                f"num_classes={self.num_classes}")


class UnetNet(SmpSegmenter):
    """U-Net decoder (Ronneberger et al. 2015; smp's ``UnetDecoder``): one block per encoder level.

    Block ``j`` upsamples (nearest) to the size of the next finer level, concatenates
    it and applies two conv-BN-ReLU; the last block upsamples to the input size
    without a skip. The input itself is passed where smp expects its stride-1
    entry, which the decoder uses only for the target size.
    """

    arch = "unet"

    def __init__(self, encoder: EncoderBridge, num_classes: int, decoder_channels: Sequence[int] | None = None,
                 attention_type: str | None = None):
        super().__init__(encoder, num_classes)
        from segmentation_models_pytorch.base.heads import SegmentationHead
        from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder

        n = len(encoder.channels)
        check_length(decoder_channels, n, "segmenter.decoder_channels",
                     f"one per encoder level, strides {encoder.strides}")
        channels = list(decoder_channels) if decoder_channels is not None else default_decoder_channels(n)
        _check_attention(attention_type, channels, [])
        self.decoder = UnetDecoder(encoder_channels=[encoder.in_chans, *encoder.channels],
                                   decoder_channels=channels, n_blocks=n, attention_type=attention_type)
        self.head = SegmentationHead(channels[-1], num_classes, kernel_size=3)
        _init(self.decoder, self.head)

    def decode(self, x: Tensor, feats: list[Tensor]) -> Tensor:
        return self.decoder([x, *feats])


class UnetPlusPlusNet(SmpSegmenter):
    """UNet++ nested decoder (Zhou et al. 2018; smp's ``UnetPlusPlusDecoder``).

    Uses the levels with stride >= 2, which must double from one to the next; a
    stride-1 level (VGG) takes the place of smp's stride-1 entry. The decoder ends
    at half the finest used stride; logits are then resized to the input.
    """

    arch = "unet++"

    def __init__(self, encoder: EncoderBridge, num_classes: int, decoder_channels: Sequence[int] | None = None,
                 attention_type: str | None = None):
        super().__init__(encoder, num_classes)
        from segmentation_models_pytorch.base.heads import SegmentationHead
        from segmentation_models_pytorch.decoders.unetplusplus.decoder import UnetPlusPlusDecoder

        self.first = 1 if encoder.strides[0] == 1 else 0  # a stride-1 level stands in for smp's input entry
        used_strides = encoder.strides[self.first:]
        used_channels = encoder.channels[self.first:]
        if len(used_strides) < 2 or not doubling(used_strides):
            raise SpecError(f"segmenter.encoder: unet++ needs at least 2 levels with doubling strides, but "
                            f"'{encoder.name}' gives strides {encoder.strides}; use 'unet', or choose consecutive "
                            f"levels with the backbone's out_indices")
        n = len(used_strides)
        check_length(decoder_channels, n, "segmenter.decoder_channels",
                     f"one per encoder level with stride >= 2, strides {used_strides}")
        channels = list(decoder_channels) if decoder_channels is not None else default_decoder_channels(n)
        _check_attention(attention_type, channels, used_channels)
        first_channels = encoder.channels[0] if self.first else encoder.in_chans
        self.decoder = UnetPlusPlusDecoder(encoder_channels=[first_channels, *used_channels],
                                           decoder_channels=channels, n_blocks=n, attention_type=attention_type)
        self.head = SegmentationHead(channels[-1], num_classes, kernel_size=3)
        _init(self.decoder, self.head)

    def decode(self, x: Tensor, feats: list[Tensor]) -> Tensor:
        first = feats[0] if self.first else x
        return self.decoder([first, *feats[self.first:]])


class FPNNet(SmpSegmenter):
    """Feature-pyramid decoder (Lin et al. 2017; semantic branch of Kirillov et al. 2019; smp's ``FPNDecoder``).

    The last four levels (doubling strides) feed a top-down pyramid of
    ``pyramid_channels``; each pyramid level goes through conv-GroupNorm-ReLU blocks
    (upsampling 2x each) to the finest of the four, they are merged, dropped out,
    and a 1x1 head gives logits that are resized to the input.
    """

    arch = "fpn"

    def __init__(self, encoder: EncoderBridge, num_classes: int, pyramid_channels: int = 256,
                 segmentation_channels: int = 128, dropout: float = 0.2, merge_policy: str = "add"):
        super().__init__(encoder, num_classes)
        from segmentation_models_pytorch.base.heads import SegmentationHead
        from segmentation_models_pytorch.decoders.fpn.decoder import FPNDecoder

        strides = encoder.strides
        if len(strides) < 4 or not doubling(strides[-4:]):
            raise SpecError(f"segmenter.encoder: fpn needs at least 4 levels whose last 4 strides double, but "
                            f"'{encoder.name}' gives strides {strides}; use 'unet' or 'deeplabv3+'")
        if segmentation_channels < 32 or segmentation_channels % 32:
            raise SpecError(f"segmenter.segmentation_channels: must be a positive multiple of 32 "
                            f"(GroupNorm with 32 groups), got {segmentation_channels}")
        self.decoder = FPNDecoder(encoder_channels=list(encoder.channels[-4:]), encoder_depth=3,
                                  pyramid_channels=pyramid_channels, segmentation_channels=segmentation_channels,
                                  dropout=dropout, merge_policy=merge_policy)
        self.head = SegmentationHead(self.decoder.out_channels, num_classes, kernel_size=1)
        _init(self.decoder, self.head)

    def decode(self, x: Tensor, feats: list[Tensor]) -> Tensor:
        return self.decoder(feats[-4:])


def _deeplab_fusion_class() -> type:
    from segmentation_models_pytorch.decoders.deeplabv3.decoder import DeepLabV3PlusDecoder

    class DeepLabV3PlusFusion(DeepLabV3PlusDecoder):
        """smp's DeepLabV3+ decoder modules (ASPP, low-level 1x1 to 48 channels, separable fusion conv)
        with the ASPP output resized to the low-level map's size instead of a fixed 2x/4x factor."""

        def forward(self, low: Tensor, high: Tensor) -> Tensor:  # type: ignore[override]
            aspp = self.aspp(high)
            aspp = F.interpolate(aspp, size=low.shape[-2:], mode="bilinear", align_corners=True)
            return self.block2(torch.cat([aspp, self.block1(low)], dim=1))

    return DeepLabV3PlusFusion


def low_level_index(strides: Sequence[int]) -> int | None:
    """The DeepLabV3+ low-level skip: the stride-4 level, else the level in ``(1, last stride)``
    whose stride is closest to 4 (``None`` if there is none)."""
    candidates = [i for i, s in enumerate(strides[:-1]) if 1 < s < strides[-1]]
    if not candidates:
        return None
    return min(candidates, key=lambda i: (abs(math.log2(strides[i] / 4)), i))


class DeepLabV3PlusNet(SmpSegmenter):
    """DeepLabV3+ (Chen et al. 2018): ASPP on the last level, upsampled and fused with a low-level skip.

    ASPP = 1x1 conv, three 3x3 (separable) convs with dilations ``atrous_rates``
    and image pooling, concatenated and projected to ``decoder_channels``;
    it is resized to the low-level level (stride 4 when the encoder has one),
    concatenated with that level reduced to 48 channels, fused by a separable 3x3
    conv; a 1x1 head gives logits, resized to the input.
    """

    arch = "deeplabv3+"

    def __init__(self, encoder: EncoderBridge, num_classes: int, decoder_channels: int = 256,
                 atrous_rates: Sequence[int] | None = None, aspp_separable: bool = True, aspp_dropout: float = 0.5):
        super().__init__(encoder, num_classes)
        from segmentation_models_pytorch.base.heads import SegmentationHead

        strides = encoder.strides
        low = low_level_index(strides)
        if low is None:
            raise SpecError(f"segmenter.encoder: deeplabv3+ needs a low-level level between stride 1 and the last "
                            f"stride, but '{encoder.name}' gives strides {strides}")
        self.low = low
        if atrous_rates is None:
            scale = 16 / strides[-1]
            atrous_rates = [max(1, round(r * scale)) for r in (6, 12, 18)]
        check_length(atrous_rates, 3, "segmenter.atrous_rates", "three dilation rates")
        self.atrous_rates = list(atrous_rates)
        fusion = _deeplab_fusion_class()
        c_low, c_high = encoder.channels[low], encoder.channels[-1]
        self.decoder = fusion(encoder_channels=[encoder.in_chans, encoder.in_chans, c_low, c_high], encoder_depth=3,
                              out_channels=decoder_channels, atrous_rates=tuple(self.atrous_rates), output_stride=16,
                              aspp_separable=aspp_separable, aspp_dropout=aspp_dropout)
        del self.decoder.up  # replaced by the size-targeted resize in DeepLabV3PlusFusion.forward
        self.head = SegmentationHead(decoder_channels, num_classes, kernel_size=1)
        _init(self.decoder, self.head)

    def decode(self, x: Tensor, feats: list[Tensor]) -> Tensor:
        return self.decoder(feats[self.low], feats[-1])


ARCHITECTURES: dict[str, type[SmpSegmenter]] = {
    "unet": UnetNet,
    "unet++": UnetPlusPlusNet,
    "fpn": FPNNet,
    "deeplabv3+": DeepLabV3PlusNet,
}


def build_smp_segmenter(arch: str, *, in_chans: int, num_classes: int, encoder: Any, **options: Any) -> SmpSegmenter:
    """Build ``arch`` (``unet``, ``unet++``, ``fpn``, ``deeplabv3+``) on the medcam backbone ``encoder``.

    ``encoder`` is validated as the part spec ``segmenter.encoder``; ``options`` are
    the architecture's decoder parameters (see each class).
    """
    if arch not in ARCHITECTURES:
        raise SpecError(f"unknown smp architecture '{arch}'{did_you_mean(arch, ARCHITECTURES)}")
    bridge = EncoderBridge(encoder, in_chans=in_chans)
    return ARCHITECTURES[arch](bridge, num_classes, **options)
