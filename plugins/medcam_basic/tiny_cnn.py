"""TinyCNN: a small real convolutional backbone for tests, demos and CPU runs."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from medcam.errors import SpecError
from medcam.features import FeatureInfo, FeatureLevel, normalize_out_indices
from medcam.state_dict import load_weights

from .configs import TINY_CNN_CHANNELS, TINY_CNN_STRIDES


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyCNN(nn.Module):
    """Stem conv (stride 2) then four stages; stage ``i`` halves the size and has
    ``width * (1, 2, 4, 8)[i]`` channels, giving levels at strides 4, 8, 16, 32.

    Input ``(B, in_chans, H, W)``; output a list of ``(B, C_i, ceil(H/s_i), ceil(W/s_i))``
    for the levels in ``out_indices`` (default all four).
    """

    #: forward_from(levels[k], k) reproduces levels[k + 1:] (medcam.capabilities.RescorableBackbone)
    forward_from_exact = True

    def __init__(self, in_chans: int = 3, width: int = 16, out_indices: Sequence[int] | None = None,
                 checkpoint_path: str | None = None):
        super().__init__()
        if in_chans < 1 or width < 1:
            raise SpecError(f"tiny_cnn: in_chans and width must be positive, got {in_chans}, {width}")
        self.out_indices = normalize_out_indices(out_indices, len(TINY_CNN_CHANNELS))
        self.stem = _conv_bn_relu(in_chans, width, 2)
        stages, cin = [], width
        for mult in TINY_CNN_CHANNELS:
            cout = width * mult
            stages.append(nn.Sequential(_conv_bn_relu(cin, cout, 2), _conv_bn_relu(cout, cout, 1)))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.feature_info = FeatureInfo(
            [FeatureLevel(width * TINY_CNN_CHANNELS[i], TINY_CNN_STRIDES[i], f"stages.{i}") for i in self.out_indices]
        )
        if checkpoint_path:  # its own layout: bare, wrapped, or the backbone of a medcam checkpoint
            load_weights(self, checkpoint_path, what=f"tiny_cnn (width={width}, in_chans={in_chans})")

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        out = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                out.append(x)
            if i >= self.out_indices[-1]:
                break
        return out

    def forward_from(self, x: Tensor, level: int) -> list[Tensor]:
        """Run the stages after output level ``level`` on ``x`` (that level's map); return the later levels."""
        stage_index = self.out_indices[level]
        out = []
        for i in range(stage_index + 1, len(self.stages)):
            x = self.stages[i](x)
            if i in self.out_indices:
                out.append(x)
        return out
