"""The basic plugin's architecture numbers, torch-free: read by :mod:`medcam_basic.entries`
(registry metadata) and :mod:`medcam_basic.tiny_cnn` (the network) alike."""
from __future__ import annotations

TINY_CNN_CHANNELS = (1, 2, 4, 8)  # multiples of `width`, one per level
TINY_CNN_STRIDES = (4, 8, 16, 32)
