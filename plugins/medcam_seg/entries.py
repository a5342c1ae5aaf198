"""Light factories of the segmentation plugin: metadata plus a deferred import.

Nothing heavy is imported here (no torch, no segmentation-models-pytorch), so
``medcam list`` and ``medcam info`` can read this module cheaply. The Tiramisu
configurations are plain numbers in :mod:`medcam_seg.configs` (read by this module
and by :mod:`medcam_seg.tiramisu`), so the registry reports the encoder backbones'
channels and strides without building anything.

Segmenter factories receive ``in_chans`` and ``num_classes`` from the segmenter
spec (medcam injects them) and return a module mapping normalized images
``(B, in_chans, H, W)`` to mask logits ``(B, num_classes, H, W)``.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from medcam.params import FractionBelowOne, PositiveFloat, PositiveInt, Range
from medcam.registry import describe

from .configs import (LUNG_FIELDS_MIN_SIZE, TIRAMISU_CITATION, TIRAMISU_CONFIGS, TIRAMISU_PARAMS, TIRAMISU_STRIDES,
                      tiramisu_encoder_channels)

# ---------------------------------------------------------------------------
# Segmenters with segmentation-models-pytorch decoders on any medcam backbone
# ---------------------------------------------------------------------------
# The encoder default is a mapping (not the string "resnet34") so the spec
# validator accepts both a name and a part spec; it is copied, never mutated.
_DEFAULT_ENCODER = {"name": "resnet34"}
_ENCODER_NOTE = ("encoder: any registered backbone name or part spec (medcam list backbones); "
                 "H and W must be divisible by its largest stride")


@describe(
    summary="U-Net decoder (segmentation-models-pytorch) on any medcam backbone",
    citation="Ronneberger, Fischer, Brox, U-Net: Convolutional Networks for Biomedical Image Segmentation, MICCAI 2015",
    note=_ENCODER_NOTE,
)
def unet(in_chans: int = 3, num_classes: int = 1, encoder: Any = _DEFAULT_ENCODER,
         decoder_channels: list[int] | None = None, attention_type: Literal["scse"] | None = None) -> Any:
    """U-Net: one decoder block per encoder level, each upsampling to the next finer level and
    concatenating it; the last block upsamples to the input size.

    Args:
        encoder: backbone name or part spec, e.g. ``{"name": "resnet34", "pretrained": true}``.
        decoder_channels: output channels of each decoder block, one per encoder level
            (default ``256, 128, 64, 32, 16`` truncated or extended with 16).
        attention_type: ``None`` or ``"scse"`` (squeeze-and-excitation in the decoder blocks).
    """
    from .smp_nets import build_smp_segmenter

    return build_smp_segmenter("unet", in_chans=in_chans, num_classes=num_classes, encoder=encoder,
                               decoder_channels=decoder_channels, attention_type=attention_type)


@describe(
    summary="UNet++ nested decoder (segmentation-models-pytorch) on any medcam backbone",
    citation="Zhou, Siddiquee, Tajbakhsh, Liang, UNet++: A Nested U-Net Architecture for Medical Image "
             "Segmentation, DLMIA 2018",
    note=_ENCODER_NOTE + "; levels must have doubling strides",
)
def unet_plus_plus(in_chans: int = 3, num_classes: int = 1, encoder: Any = _DEFAULT_ENCODER,
                   decoder_channels: list[int] | None = None, attention_type: Literal["scse"] | None = None) -> Any:
    """UNet++: nested, densely connected skip pathways between encoder and decoder.

    Args:
        encoder: backbone name or part spec; its levels must have doubling strides
            (e.g. 2, 4, 8, 16, 32 or 4, 8, 16, 32).
        decoder_channels: one per encoder level (same default as ``unet``).
        attention_type: ``None`` or ``"scse"``.
    """
    from .smp_nets import build_smp_segmenter

    return build_smp_segmenter("unet++", in_chans=in_chans, num_classes=num_classes, encoder=encoder,
                               decoder_channels=decoder_channels, attention_type=attention_type)


@describe(
    summary="FPN semantic-segmentation decoder (segmentation-models-pytorch) on any medcam backbone",
    citation="Lin et al., Feature Pyramid Networks for Object Detection, CVPR 2017; Kirillov et al., "
             "Panoptic Feature Pyramid Networks, CVPR 2019",
    note=_ENCODER_NOTE + "; uses the last 4 levels, which must have doubling strides",
)
def fpn(in_chans: int = 3, num_classes: int = 1, encoder: Any = _DEFAULT_ENCODER, pyramid_channels: PositiveInt = 256,
        segmentation_channels: PositiveInt = 128, dropout: FractionBelowOne = 0.2,
        merge_policy: Literal["add", "cat"] = "add") -> Any:
    """FPN: a top-down pyramid over the encoder's last four levels, each upsampled to the finest
    of them and merged (``"add"`` or ``"cat"``); logits are upsampled to the input size.

    Args:
        pyramid_channels: channels of the lateral/top-down pyramid.
        segmentation_channels: channels per pyramid level after its conv blocks (multiple of 32:
            the blocks use GroupNorm with 32 groups).
        dropout: spatial dropout before the segmentation head.
        merge_policy: ``"add"`` or ``"cat"``.
    """
    from .smp_nets import build_smp_segmenter

    return build_smp_segmenter("fpn", in_chans=in_chans, num_classes=num_classes, encoder=encoder,
                               pyramid_channels=pyramid_channels, segmentation_channels=segmentation_channels,
                               dropout=dropout, merge_policy=merge_policy)


@describe(
    summary="DeepLabV3+ decoder (ASPP + low-level skip, segmentation-models-pytorch) on any medcam backbone",
    citation="Chen, Zhu, Papandreou, Schroff, Adam, Encoder-Decoder with Atrous Separable Convolution for "
             "Semantic Image Segmentation, ECCV 2018",
    note=_ENCODER_NOTE + "; ASPP on the last level, skip from the stride-4 level",
)
def deeplabv3_plus(in_chans: int = 3, num_classes: int = 1, encoder: Any = _DEFAULT_ENCODER,
                   decoder_channels: PositiveInt = 256, atrous_rates: list[int] | None = None,
                   aspp_separable: bool = True, aspp_dropout: FractionBelowOne = 0.5) -> Any:
    """DeepLabV3+: atrous spatial pyramid pooling on the encoder's last level, upsampled to the
    stride-4 level (or the finest level above stride 1) and fused with it; logits are
    upsampled to the input size.

    Args:
        decoder_channels: channels of the ASPP and fusion convolutions.
        atrous_rates: three dilation rates; default ``(6, 12, 18) * 16 / s`` for the last
            level's stride ``s`` (the paper's rates at output stride 16, kept constant in pixels).
        aspp_separable: depthwise-separable ASPP convolutions.
        aspp_dropout: dropout after the ASPP projection.
    """
    from .smp_nets import build_smp_segmenter

    return build_smp_segmenter("deeplabv3+", in_chans=in_chans, num_classes=num_classes, encoder=encoder,
                               decoder_channels=decoder_channels, atrous_rates=atrous_rates,
                               aspp_separable=aspp_separable, aspp_dropout=aspp_dropout)


# ---------------------------------------------------------------------------
# Segmentation losses (task="segmentation": a segmenter spec's loss list takes only these)
# ---------------------------------------------------------------------------
@describe(
    summary="1 - soft Dice of sigmoid(mask logits) and the masks, summed over the batch (or per image)",
    citation="Milletari, Navab, Ahmadi, V-Net: Fully Convolutional Neural Networks for Volumetric Medical Image "
             "Segmentation, 3DV 2016",
    task="segmentation",
)
def dice(num_classes: int, multilabel: bool, smooth: PositiveFloat = 1.0, per_image: bool = False) -> Any:
    """``smooth``: additive smoothing (> 0); ``per_image``: Dice per image and channel, averaged."""
    from .losses import SoftDiceLoss

    return SoftDiceLoss(smooth=smooth, per_image=per_image)


@describe(
    summary="Binary cross-entropy of the mask logits per pixel, optionally weighting foreground pixels",
    citation=None,
    task="segmentation",
)
def mask_bce(num_classes: int, multilabel: bool, pos_weight: PositiveFloat | None = None) -> Any:
    """``pos_weight``: weight of foreground pixels (null: 1)."""
    from .losses import MaskBCELoss

    return MaskBCELoss(pos_weight=pos_weight)


# ---------------------------------------------------------------------------
# Tiramisu (FC-DenseNet) segmenters and their encoders as backbones
# ---------------------------------------------------------------------------
def _tiramisu(depth: int, in_chans: int, num_classes: int, drop_rate: float, encoder_checkpoint: str | None) -> Any:
    from .tiramisu import FCDenseNet

    return FCDenseNet(depth, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                      encoder_checkpoint=encoder_checkpoint)


def _tiramisu_encoder(depth: int, in_chans: int, pretrained: bool, drop_rate: float,
                      out_indices: list[int] | None, checkpoint_path: str | None) -> Any:
    from .tiramisu import TiramisuBackbone

    return TiramisuBackbone(depth, in_chans=in_chans, pretrained=pretrained, drop_rate=drop_rate,
                            out_indices=out_indices, checkpoint_path=checkpoint_path)


_SEG_DOC = """FC-DenseNet{depth} segmenter (Jegou et al. 2017, Table 2 configuration).

    Args:
        drop_rate: dropout after every dense-layer and transition-down convolution (paper: 0.2).
        encoder_checkpoint: optional state dict file of a ``tiramisu{depth}_encoder`` backbone
            (bare, or under ``backbone.``/``encoder.`` prefixes) to initialize the down path.
    """
_ENC_DOC = """FC-DenseNet{depth} down path as a classification backbone (levels at strides 2..32).

    Args:
        pretrained: no public weights exist; ``True`` raises (use ``checkpoint_path``).
        drop_rate: dropout after every dense-layer and transition-down convolution.
        out_indices: levels to return (default all five).
        checkpoint_path: state dict file of this backbone, of a medcam classifier built on it
            (``backbone.`` prefix) or of a ``tiramisu{depth}`` segmenter (``encoder.`` prefix).
    """


def _seg_meta(depth: int) -> dict[str, Any]:
    cfg = TIRAMISU_CONFIGS[depth]
    return {"summary": f"FC-DenseNet{depth} (growth {cfg['growth']}, {TIRAMISU_PARAMS[depth] / 1e6:.2f}M "
                       f"parameters at 11 classes) for segmentation; any input size",
            "citation": TIRAMISU_CITATION}


def _enc_meta(depth: int) -> dict[str, Any]:
    return {"summary": f"FC-DenseNet{depth} down path (dense blocks + transitions down + bottleneck) as a backbone",
            "citation": TIRAMISU_CITATION, "channels": tiramisu_encoder_channels(depth),
            "strides": list(TIRAMISU_STRIDES), "cam_level": -1, "layout": "map",
            "modules": [f"encoder.transitions.{i}" for i in range(4)] + ["final_norm"]}


@describe(**_seg_meta(56))
def tiramisu56(in_chans: int = 3, num_classes: int = 1, drop_rate: FractionBelowOne = 0.2,
               encoder_checkpoint: str | None = None) -> Any:
    return _tiramisu(56, in_chans, num_classes, drop_rate, encoder_checkpoint)


@describe(**_seg_meta(67))
def tiramisu67(in_chans: int = 3, num_classes: int = 1, drop_rate: FractionBelowOne = 0.2,
               encoder_checkpoint: str | None = None) -> Any:
    return _tiramisu(67, in_chans, num_classes, drop_rate, encoder_checkpoint)


@describe(**_seg_meta(103))
def tiramisu103(in_chans: int = 3, num_classes: int = 1, drop_rate: FractionBelowOne = 0.2,
                encoder_checkpoint: str | None = None) -> Any:
    return _tiramisu(103, in_chans, num_classes, drop_rate, encoder_checkpoint)


@describe(**_enc_meta(56))
def tiramisu56_encoder(in_chans: int = 3, pretrained: bool = False, drop_rate: FractionBelowOne = 0.2,
                       out_indices: list[int] | None = None, checkpoint_path: str | None = None) -> Any:
    return _tiramisu_encoder(56, in_chans, pretrained, drop_rate, out_indices, checkpoint_path)


@describe(**_enc_meta(67))
def tiramisu67_encoder(in_chans: int = 3, pretrained: bool = False, drop_rate: FractionBelowOne = 0.2,
                       out_indices: list[int] | None = None, checkpoint_path: str | None = None) -> Any:
    return _tiramisu_encoder(67, in_chans, pretrained, drop_rate, out_indices, checkpoint_path)


@describe(**_enc_meta(103))
def tiramisu103_encoder(in_chans: int = 3, pretrained: bool = False, drop_rate: FractionBelowOne = 0.2,
                        out_indices: list[int] | None = None, checkpoint_path: str | None = None) -> Any:
    return _tiramisu_encoder(103, in_chans, pretrained, drop_rate, out_indices, checkpoint_path)


for _depth in TIRAMISU_CONFIGS:
    globals()[f"tiramisu{_depth}"].__doc__ = _SEG_DOC.format(depth=_depth)
    globals()[f"tiramisu{_depth}_encoder"].__doc__ = _ENC_DOC.format(depth=_depth)
del _depth


# ---------------------------------------------------------------------------
# Attention residual U-Net
# ---------------------------------------------------------------------------
@describe(
    summary="Residual U-Net with additive attention gates on the skip connections",
    citation="Oktay et al., Attention U-Net: Learning Where to Look for the Pancreas, MIDL 2018; "
             "Zhang, Liu, Wang, Road Extraction by Deep Residual U-Net, IEEE GRSL 2018; "
             "He, Zhang, Ren, Sun, Identity Mappings in Deep Residual Networks, ECCV 2016",
    note="H and W must be divisible by 2**depth",
)
def attention_resunet(in_chans: int = 3, num_classes: int = 1, base_channels: Annotated[int, Range(2)] = 32,
                      depth: Annotated[int, Range(1, 6)] = 4) -> Any:
    """Attention residual U-Net (block structure in :class:`medcam_seg.attention_resunet.AttentionResUNet`).

    Args:
        base_channels: channels at full resolution; level ``i`` has ``base_channels * 2**i``.
        depth: number of stride-2 residual stages (H and W must be divisible by ``2**depth``).
    """
    from .attention_resunet import AttentionResUNet

    return AttentionResUNet(in_chans=in_chans, num_classes=num_classes, base_channels=base_channels, depth=depth)


# ---------------------------------------------------------------------------
# Training-free lung fields of chest radiographs
# ---------------------------------------------------------------------------
@describe(
    summary="Training-free lung fields of frontal chest radiographs (contrast normalization, body mask, "
            "marker-controlled watershed, thresholding, clean-up); no weights",
    citation="Armato, Giger, MacMahon, Automated lung segmentation in digitized posteroanterior chest radiographs, "
             "Academic Radiology 1998; Beucher, Meyer, The morphological approach to segmentation: the watershed "
             "transformation, 1993; Zuiderveld, Contrast limited adaptive histogram equalization, "
             "Graphics Gems IV 1994",
    note="num_classes must be 1; any input size >= 32 px; CPU (numpy) pipeline, no gradient; "
         "quality on the NIH sample in docs/segmentation.md",
)
def lung_fields(in_chans: int = 3, num_classes: int = 1, work_size: Annotated[int, Range(LUNG_FIELDS_MIN_SIZE)] = 256,
                temperature: PositiveFloat = 2.0) -> Any:
    """Lung-field masks of chest radiographs without training (:mod:`medcam_seg.lung_fields`).

    Args:
        work_size: side of the square working image the pipeline runs at (pixels).
        temperature: working-size pixels per logit unit; ``sigmoid > 0.5`` is the mask, a higher
            threshold ``t`` shrinks it by ``temperature * log(t / (1 - t))`` pixels.
    """
    from .lung_fields import LungFields

    return LungFields(in_chans=in_chans, num_classes=num_classes, work_size=work_size, temperature=temperature)
