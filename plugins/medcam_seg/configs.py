"""Tiramisu (FC-DenseNet) configurations and the lung-field size limit as plain numbers, torch-free.

Read by :mod:`medcam_seg.entries` (registry metadata: channels and strides without
building anything; declared parameter ranges) and the networks alike.
"""
from __future__ import annotations

from typing import Any

# ---------------------------------------------------------------------------
# Tiramisu (FC-DenseNet) configurations, Jegou et al. 2017, Table 2.
# ---------------------------------------------------------------------------
TIRAMISU_FIRST_CONV = 48
TIRAMISU_CONFIGS: dict[int, dict[str, Any]] = {
    56: {"growth": 12, "down": (4, 4, 4, 4, 4), "bottleneck": 4, "up": (4, 4, 4, 4, 4)},
    67: {"growth": 16, "down": (5, 5, 5, 5, 5), "bottleneck": 5, "up": (5, 5, 5, 5, 5)},
    103: {"growth": 16, "down": (4, 5, 7, 10, 12), "bottleneck": 15, "up": (12, 10, 7, 5, 4)},
}
#: Parameter counts printed in the paper's Table 2 (3-channel input, 11 CamVid classes).
TIRAMISU_PAPER_PARAMS = {56: 1.5e6, 67: 3.5e6, 103: 9.4e6}
# Trainable parameters of this implementation with 3 input channels and CamVid's 11 classes (as in Table 2);
# asserted against a closed-form count in tests/plugins/medcam_seg/test_tiramisu.py.
TIRAMISU_PARAMS = {56: 1_376_795, 67: 3_463_243, 103: 9_322_091}
TIRAMISU_STRIDES = (2, 4, 8, 16, 32)

TIRAMISU_CITATION = ("Jegou, Drozdzal, Vazquez, Romero, Bengio, The One Hundred Layers Tiramisu: "
                     "Fully Convolutional DenseNets for Semantic Segmentation, CVPR Workshops 2017")


def tiramisu_encoder_channels(depth: int) -> list[int]:
    """Channels of the encoder levels (strides 2, 4, 8, 16, 32) of FC-DenseNet``depth``.

    Levels 0-3 are the transition-down outputs (a transition keeps the channel
    count of its dense block's concatenated output); level 4 is the bottleneck
    dense block's full concatenated output (input + new feature maps).
    """
    cfg = TIRAMISU_CONFIGS[depth]
    channels, out = TIRAMISU_FIRST_CONV, []
    for layers in cfg["down"]:
        channels += layers * cfg["growth"]
        out.append(channels)
    out[-1] += cfg["bottleneck"] * cfg["growth"]
    return out


#: The smallest image side (pixels) the training-free ``lung_fields`` segmenter works at.
LUNG_FIELDS_MIN_SIZE = 32
