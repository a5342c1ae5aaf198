"""State-dict key conversion into timm's names, per family.

``checkpoint_path`` files come in three dialects:

* timm's own names (``timm.create_model(name).state_dict()``): kept as they are;
* torchvision's: ResNet and VGG convolutions already share timm's names (their
  classifiers are dropped), DenseNet too (legacy ``norm.1``-style keys of old
  torchvision and CheXNet files are renamed), EfficientNet is renamed block by
  block (:func:`torchvision_efficientnet_to_timm`);
* the official PVT v2 release (whai362/PVT): renamed by timm's own
  ``timm.models.pvt_v2.checkpoint_filter_fn``.

:func:`to_timm` detects the dialect from the key names.
"""
from __future__ import annotations

import re
from typing import Mapping

from torch import Tensor

__all__ = ["to_timm", "torchvision_efficientnet_to_timm", "legacy_densenet_to_timm", "TORCHVISION_BN_EPS"]

#: torchvision builds EfficientNet-B5..B7 with BatchNorm eps 1e-3 (their weights are TensorFlow
#: ports); timm's efficientnet_b* use 1e-5. Loading those weights sets eps to match.
TORCHVISION_BN_EPS = {"efficientnet_b5": 1e-3, "efficientnet_b6": 1e-3, "efficientnet_b7": 1e-3}

# torchvision MBConv: block.<i> is a Conv2dNormActivation (.0 conv, .1 BN) or the
# squeeze-excitation (.fc1 / .fc2). Blocks without expansion (the first stage) have 3 parts.
_TV_DEPTHWISE_SEPARABLE = {"0.0": "conv_dw", "0.1": "bn1", "1.fc1": "se.conv_reduce", "1.fc2": "se.conv_expand",
                           "2.0": "conv_pw", "2.1": "bn2"}
_TV_INVERTED_RESIDUAL = {"0.0": "conv_pw", "0.1": "bn1", "1.0": "conv_dw", "1.1": "bn2", "2.fc1": "se.conv_reduce",
                         "2.fc2": "se.conv_expand", "3.0": "conv_pwl", "3.1": "bn3"}
_TV_BLOCK_KEY = re.compile(r"^features\.(\d+)\.(\d+)\.block\.(\d+)\.(\d+|fc1|fc2)\.(.+)$")
_TV_EDGE_KEY = re.compile(r"^features\.(\d+)\.([01])\.(.+)$")
_TV_CONV_KEY = re.compile(r"^features\.(\d+)\.0\.weight$")
_LEGACY_DENSE_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(weight|bias|running_mean|running_var|num_batches_tracked)$")


def torchvision_efficientnet_to_timm(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """torchvision ``efficientnet_b*`` keys -> timm ``efficientnet_b*`` keys.

    ``features.0`` (stem conv + BN) -> ``conv_stem``/``bn1``; ``features.<s>.<b>.block``
    (stages 1-7) -> ``blocks.<s-1>.<b>`` with the layer names above; ``features.8``
    (1x1 head conv + BN) -> ``conv_head``/``bn2``; ``classifier.*`` is kept (dropped later
    as the classifier). Keys that match none of these are kept unchanged, so they
    show up as unexpected keys.
    """
    parts_per_block: dict[tuple[str, str], int] = {}
    for key in state:
        m = _TV_BLOCK_KEY.match(key)
        if m:
            block = (m.group(1), m.group(2))
            parts_per_block[block] = max(parts_per_block.get(block, 0), int(m.group(3)) + 1)
    convs = [int(m.group(1)) for k in state if (m := _TV_CONV_KEY.match(k))]  # stem (0) and head (last)
    head_stage = str(max(convs)) if convs else None
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        m = _TV_BLOCK_KEY.match(key)
        if m:
            stage, index, part, layer, rest = m.groups()
            names = _TV_DEPTHWISE_SEPARABLE if parts_per_block[(stage, index)] == 3 else _TV_INVERTED_RESIDUAL
            new = names.get(f"{part}.{layer}")
            out[f"blocks.{int(stage) - 1}.{index}.{new}.{rest}" if new else key] = value
            continue
        m = _TV_EDGE_KEY.match(key)
        if m and m.group(1) == "0":
            out[f"{'conv_stem' if m.group(2) == '0' else 'bn1'}.{m.group(3)}"] = value
        elif m and m.group(1) == head_stage:
            out[f"{'conv_head' if m.group(2) == '0' else 'bn2'}.{m.group(3)}"] = value
        else:
            out[key] = value
    return out


def legacy_densenet_to_timm(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Old torchvision / CheXNet DenseNet keys ``denselayer1.norm.1.weight`` -> ``denselayer1.norm1.weight``."""
    out = {}
    for key, value in state.items():
        m = _LEGACY_DENSE_KEY.match(key)
        out[f"{m.group(1)}{m.group(2)}.{m.group(3)}" if m else key] = value
    return out


def to_timm(family: str | None, state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], str]:
    """Convert ``state`` to timm key names for ``family``; returns ``(state, dialect)``.

    ``dialect`` is ``"timm"``, ``"torchvision"`` or ``"official"`` (PVT v2 release).
    ``family`` ``None`` (``timm/<name>``) accepts timm names only.
    """
    state = dict(state)
    if family == "efficientnet" and "features.0.0.weight" in state:
        return torchvision_efficientnet_to_timm(state), "torchvision"
    if family == "densenet":
        legacy = any(_LEGACY_DENSE_KEY.match(k) for k in state)
        return legacy_densenet_to_timm(state), "torchvision" if legacy else "timm"
    if family == "vgg" and any(k.startswith("classifier.") for k in state):
        # torchvision's fc6-fc8 (classifier.0/3/6); the backbone ends at the last max-pool
        return {k: v for k, v in state.items() if not k.startswith("classifier.")}, "torchvision"
    if family == "pvt_v2" and "patch_embed1.proj.weight" in state:
        from timm.models.pvt_v2 import checkpoint_filter_fn

        return dict(checkpoint_filter_fn(state, None)), "official"
    return state, "timm"
