"""MiniVGG, the architecture code (imported only when the backbone is built)."""
from __future__ import annotations

from torch import Tensor, nn

from medcam.features import FeatureInfo, FeatureLevel


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(2, ceil_mode=True),
    )


class MiniVGG(nn.Module):
    """Input ``(B, in_chans, H, W)``; output ``[(B, w, H/2, W/2), (B, 2w, H/4, W/4), (B, 4w, H/8, W/8)]``."""

    def __init__(self, in_chans: int = 3, width: int = 32):
        super().__init__()
        widths = [width, 2 * width, 4 * width]
        self.blocks = nn.ModuleList()
        cin = in_chans
        for w in widths:
            self.blocks.append(_block(cin, w))
            cin = w
        self.feature_info = FeatureInfo([FeatureLevel(w, 2 ** (i + 1), f"blocks.{i}") for i, w in enumerate(widths)])

    def forward(self, x: Tensor) -> list[Tensor]:
        levels = []
        for block in self.blocks:
            x = block(x)
            levels.append(x)
        return levels
