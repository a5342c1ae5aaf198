"""Light factories and presets of the WSOL plugin: metadata plus a deferred import.

Nothing heavy is imported here (no torch), so ``medcam list`` and ``medcam info``
read this module cheaply. Registered names:

* head ``fpm``: foreground prediction maps (SR / BAS);
* losses ``foreground_control`` (SR), ``bas`` (BAS), ``attention_box`` (segmentation-driven attention);
* models ``vmamba_wsol``, ``resnet50_wsol``, ``pvt_wsol`` (one method, three backbones),
  ``pvt_attention_box``, ``resnet50_attention_box``, ``vgg16_attention_box`` (the
  attention seed's settings), ``resnet18_lesion_attention`` (BUSI lesion boxes), and the
  pretrained start: ``efficientnet_lite0_wsol`` and ``efficientnet_lite0_lesion_attention``
  (ImageNet EfficientNet-Lite0, with their tuned input size, optimizer and learning rate).
"""
from __future__ import annotations

from typing import Any, Literal

from medcam.params import Fraction, FractionBelowOne, NonNegativeFloat, PositiveFloat, PositiveInt
from medcam.registry import Preset, describe

SR_CITATION = ("Wang, Huang, Xu, Huang, Weakly supervised chest X-ray abnormality localization with non-linear "
               "modulation and foreground control, Scientific Reports 2024 (doi 10.1038/s41598-024-79701-8)")
BAS_CITATION = ("Wu, Zhai, Cao, Background Activation Suppression for Weakly Supervised Object Localization, "
                "CVPR 2022")
ATTENTION_CITATION = ("Wu, Japkowicz, Gilbert, Corizzo, Localization-aware chest X-ray classification via "
                      "segmentation and gradient-based attention, Data Mining and Knowledge Discovery 2026 "
                      "(doi 10.1007/s10618-026-01214-x)")

#: The 8 ChestX-ray14 findings with boxes (the SR/BAS NIH localization classes).
NIH_BOX_CLASSES = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
                   "Pneumothorax"]
#: The attention seed's "nep" task (NIH task 'effusion_pneumothorax' in medcam.data).
SEED_CLASSES = ["No Finding", "Effusion", "Pneumothorax"]
SEED_RULES = {"Effusion": "lower", "Pneumothorax": "upper"}
#: Where the chest X-ray attention presets get their lung boxes by default (no file needed).
LUNG_SEGMENTER = "lung_fields"
BUSI_CLASSES = ["normal", "benign", "malignant"]

# The choices of the fpm head and attention_box loss (their modules read them from here).
Modulation = Literal["none", "nonlinear"]
Stats = Literal["batch", "image"]
#: The last activation of the classification branch: ``relu`` (BAS, SR) or ``softplus`` (medcam's option).
ClassActivation = Literal["relu", "softplus"]
Source = Literal["segmenter", "boxes", "mask"]
Mode = Literal["energy", "ratio"]
Target = Literal["label", "predicted"]
#: What a rule for a class the model does not have does: ``error`` (a typo is caught) or ``ignore``
#: (rules written for several tasks, e.g. the attention presets' Effusion and Pneumothorax rules on the
#: Effusion-only task).
MissingClasses = Literal["error", "ignore"]


@describe(
    summary="Foreground prediction map head: BAS class maps + SR's FPM (non-linear modulation, fusion)",
    citation=SR_CITATION + "; " + BAS_CITATION,
)
def fpm(feature_info: Any, num_classes: int, fpm_level: int = -2, cls_level: int = -1,
        modulation: Modulation = "nonlinear", fusion: bool = True, nu: PositiveFloat = 5.0, stats: Stats = "batch",
        top_k: PositiveInt = 1, hidden: PositiveInt = 1024, box_threshold: FractionBelowOne = 0.83,
        class_activation: ClassActivation = "relu") -> Any:
    """Class maps A on ``cls_level`` (logits = GAP(A)); foreground maps on ``fpm_level``.

    ``modulation``: ``nonlinear`` (Gaussian + Student-t branches, SR) or ``none`` (BAS);
    ``fusion``: per-class min-max of the branches' sum (SR) or their mean; ``nu``: Student-t
    degrees of freedom; ``stats``: Gaussian mean/std over the ``batch`` (SR) or each ``image``;
    ``top_k``: classes averaged into the class-agnostic map without labels; ``hidden``: width of the
    classification branch; ``box_threshold``: default threshold of ``head.boxes`` (SR 0.83, BAS 0.15);
    ``class_activation``: ``relu`` (the papers) or ``softplus`` (class maps that cannot die from scratch).
    """
    from .fpm_head import FPMHead

    return FPMHead(feature_info, num_classes, fpm_level=fpm_level, cls_level=cls_level, modulation=modulation,
                   fusion=fusion, nu=nu, stats=stats, top_k=top_k, hidden=hidden, box_threshold=box_threshold,
                   class_activation=class_activation)


@describe(
    summary="SR foreground control: CE + 0.5 CE(score_2) + 1.5 max(0, 0.5 - S_fg/S) + 1.2 mean(M) (fpm head)",
    citation=SR_CITATION,
)
def foreground_control(num_classes: int, multilabel: bool, cls_weight: NonNegativeFloat = 1.0,
                       ce2_weight: NonNegativeFloat = 0.5, fg_weight: NonNegativeFloat = 1.5,
                       target_ratio: NonNegativeFloat = 0.5, area_weight: NonNegativeFloat = 1.2,
                       eps: NonNegativeFloat = 1e-8, class_weights: list[float] | str | None = None,
                       label_smoothing: FractionBelowOne = 0.0) -> Any:
    """Needs the ``fpm`` head; the foreground-masked re-score runs with frozen weights."""
    from .erasing import ForegroundControlLoss

    return ForegroundControlLoss(num_classes, multilabel, cls_weight=cls_weight, ce2_weight=ce2_weight,
                                 fg_weight=fg_weight, target_ratio=target_ratio, area_weight=area_weight, eps=eps,
                                 class_weights=class_weights, label_smoothing=label_smoothing)


@describe(
    summary="BAS background activation suppression: CE + 0.5 CE(score_2) + S_bg/S + 1.2 mean(M) (fpm head)",
    citation=BAS_CITATION,
)
def bas(num_classes: int, multilabel: bool, cls_weight: NonNegativeFloat = 1.0, ce2_weight: NonNegativeFloat = 0.5,
        bg_weight: NonNegativeFloat = 1.0, area_weight: NonNegativeFloat = 1.2, eps: NonNegativeFloat = 1e-8,
        class_weights: list[float] | str | None = None, label_smoothing: FractionBelowOne = 0.0) -> Any:
    """Needs the ``fpm`` head; the background-masked re-score runs with frozen weights."""
    from .erasing import BASLoss

    return BASLoss(num_classes, multilabel, cls_weight=cls_weight, ce2_weight=ce2_weight, bg_weight=bg_weight,
                   area_weight=area_weight, eps=eps, class_weights=class_weights, label_smoothing=label_smoothing)


@describe(
    summary="lambda CE + (1 - lambda) attention: differentiable Grad-CAM energy outside a segmenter/batch box region",
    citation=ATTENTION_CITATION,
)
def attention_box(num_classes: int, multilabel: bool, source: Source = "segmenter", segmenter: Any = None,
                  segmenter_threshold: FractionBelowOne = 0.5, rules: dict[str, Any] | None = None,
                  method: str = "gradcam", layer: int | None = None, target: Target = "label", mode: Mode = "energy",
                  thresh: FractionBelowOne = 0.3, sharpness: PositiveFloat = 20.0, lam: Fraction = 0.5,
                  adaptive: bool = False, lam_min: Fraction = 0.2, lam_rate: NonNegativeFloat = 0.023,
                  class_weights: list[float] | str | None = None, label_smoothing: FractionBelowOne = 0.0,
                  eps: NonNegativeFloat = 1e-8, missing_classes: MissingClasses = "error") -> Any:
    """``source``: segmenter | boxes | mask; ``segmenter``: checkpoint path, segmenter name or spec;
    ``rules``: {class: inside | upper | lower | outside | mask | null}; ``mode``: energy | ratio;
    ``target``: label | predicted; lambda fixed (``lam``) or ``adaptive`` max(lam_min, 1 - lam_rate epoch);
    ``missing_classes``: error | ignore, for a rule whose class the model does not have."""
    from .attention import AttentionBoxLoss

    return AttentionBoxLoss(num_classes, multilabel, source=source, segmenter=segmenter,
                            segmenter_threshold=segmenter_threshold, rules=rules, method=method, layer=layer,
                            target=target, mode=mode, thresh=thresh, sharpness=sharpness, lam=lam,
                            adaptive=adaptive, lam_min=lam_min, lam_rate=lam_rate, class_weights=class_weights,
                            label_smoothing=label_smoothing, eps=eps, missing_classes=missing_classes)


# ---------------------------------------------------------------------- presets
def _wsol(backbone: str, summary: str) -> Preset:
    return Preset(
        {"backbone": {"name": backbone},
         "head": {"name": "fpm", "modulation": "nonlinear", "fusion": True, "top_k": 4, "box_threshold": 0.83},
         "num_classes": len(NIH_BOX_CLASSES), "class_names": list(NIH_BOX_CLASSES),
         "loss": [{"name": "foreground_control"}],
         "attribution": {"name": "fpm", "key": "foreground"},
         "preprocess": {"size": [256, 256]}},
        summary=summary, citation=SR_CITATION,
    )


vmamba_wsol = _wsol("vmamba_tiny_sr", "SR method: VMamba-T (SR's 0220 configuration) + fpm head + foreground "
                                      "control, 8 NIH box classes, 256 px")
resnet50_wsol = _wsol("resnet50", "SR method on ResNet-50 (fpm head on layer3/layer4 + foreground control)")
pvt_wsol = _wsol("pvt_v2_b2", "SR method on PVT v2-B2 (fpm head on stages 3/4 + foreground control)")


def _attention(backbone: str, layer: int | None, summary: str) -> Preset:
    loss = {"name": "attention_box", "source": "segmenter", "segmenter": LUNG_SEGMENTER, "segmenter_threshold": 0.5,
            "rules": dict(SEED_RULES), "method": "gradcam", "target": "predicted", "mode": "ratio",
            "thresh": 0.3, "adaptive": True, "lam_min": 0.2, "lam_rate": 0.023,
            "missing_classes": "ignore"}  # the rules serve the seed's three tasks (task=effusion has no Pneumothorax)
    if layer is not None:
        loss["layer"] = layer
    return Preset(
        {"backbone": {"name": backbone}, "head": {"name": "linear"},
         "num_classes": len(SEED_CLASSES), "class_names": list(SEED_CLASSES),
         "loss": [loss], "attribution": {"name": "gradcam"} if layer is None else {"name": "gradcam", "layer": layer},
         "preprocess": {"size": [224, 224], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}},
        summary=summary + f"; lung boxes from the training-free '{LUNG_SEGMENTER}' segmenter (a lung U-Net "
                          f"checkpoint in loss[0].segmenter replaces it)", citation=ATTENTION_CITATION,
    )


pvt_attention_box = _attention("pvt_v2_b2", None, "Segmentation-driven attention (seed settings) on PVT v2-B2")
resnet50_attention_box = _attention("resnet50", None, "Segmentation-driven attention (seed settings) on ResNet-50")
vgg16_attention_box = _attention("vgg16", 4, "Segmentation-driven attention (seed settings) on VGG-16, "
                                             "Grad-CAM at the last conv block (level 4)")

resnet18_lesion_attention = Preset(
    {"backbone": {"name": "resnet18"}, "head": {"name": "linear"},
     "num_classes": len(BUSI_CLASSES), "class_names": list(BUSI_CLASSES),
     "loss": [{"name": "attention_box", "source": "boxes", "rules": {"benign": "inside", "malignant": "inside"},
               "mode": "energy", "target": "label", "lam": 0.5}],
     "attribution": {"name": "gradcam"},
     "preprocess": {"size": [224, 224]}},
    summary="ResNet-18 + attention_box on the batch's lesion boxes (BUSI: benign/malignant inside the box)",
    citation=ATTENTION_CITATION,
)


# ---------------------------------------------------------------------- the pretrained start
#: Training settings shared by the pretrained EfficientNet-Lite0 presets (medcam.engine.TrainConfig keys):
#: measured on BUSI in docs/results.md (benchmarks/specs/busi_pretrained.yaml).
LITE0_TRAIN = {"epochs": 8, "batch_size": 32, "optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-4,
               "scheduler": "cosine", "warmup_epochs": 0.5, "balanced_sampler": True}
_LITE0 = {"name": "efficientnet_lite0", "pretrained": True}

efficientnet_lite0_wsol = Preset(
    {"backbone": dict(_LITE0),
     # foreground maps on the stride-16 level (14 x 14 at 224 px), class maps on the last (7 x 7)
     "head": {"name": "fpm", "modulation": "nonlinear", "fusion": True, "fpm_level": 3, "cls_level": -1,
              "hidden": 256, "box_threshold": 0.83},
     "num_classes": len(BUSI_CLASSES), "class_names": list(BUSI_CLASSES),
     "loss": [{"name": "foreground_control"}],
     "attribution": {"name": "fpm", "key": "foreground"},
     "preprocess": {"size": [224, 224]},
     "train": dict(LITE0_TRAIN)},
    summary="SR method on ImageNet EfficientNet-Lite0: fpm head (non-linear modulation, fusion) + foreground "
            "control, image labels only, 224 px, AdamW 1e-3 for 8 epochs",
    citation=SR_CITATION,
)

efficientnet_lite0_lesion_attention = Preset(
    {"backbone": dict(_LITE0), "head": {"name": "linear"},
     "num_classes": len(BUSI_CLASSES), "class_names": list(BUSI_CLASSES),
     "loss": [{"name": "attention_box", "source": "boxes", "rules": {"benign": "inside", "malignant": "inside"},
               "mode": "energy", "target": "label", "lam": 0.5}],
     "attribution": {"name": "gradcam"},
     "preprocess": {"size": [224, 224]},
     "train": dict(LITE0_TRAIN)},
    summary="ImageNet EfficientNet-Lite0 + attention_box on the batch's lesion boxes (BUSI: benign/malignant inside "
            "the box), 224 px, AdamW 1e-3 for 8 epochs",
    citation=ATTENTION_CITATION,
)
