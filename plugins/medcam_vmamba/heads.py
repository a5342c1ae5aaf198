"""VMamba's classification head: LayerNorm -> global average pooling -> Linear."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from medcam.errors import SpecError
from medcam.features import FeatureInfo
from medcam.model import ModelOutput

__all__ = ["VMambaClassifierHead"]


class VMambaClassifierHead(nn.Module):
    """The official VMamba classifier (``VSSM.classifier``) as a medcam head.

    ``logits = fc(dropout(mean_{h,w} LN(F_level)))`` where ``F_level`` is
    ``(B, C, h, w)`` and the LayerNorm normalizes the C channels of each position.
    On a backbone built with ``out_norm=False`` this is, parameter for
    parameter, the official ``classifier.norm`` + ``classifier.head``, so official
    checkpoints reproduce the official logits (Liu et al., VMamba, NeurIPS 2024).

    Since the LayerNorm sits between the features and the pooling, the class
    activation map of class k is ``sum_c W[k, c] LN(F)[c]``: :meth:`class_maps`
    returns it (its spatial mean plus the bias is exactly the logit).

    Args:
        feature_info: the backbone's levels.
        num_classes: K.
        level: the level to classify (default ``feature_info.cam_level``).
        dropout: dropout before the linear layer.
    """

    def __init__(self, feature_info: FeatureInfo, num_classes: int, level: int | None = None, dropout: float = 0.0):
        super().__init__()
        n = len(feature_info)
        level = feature_info.cam_level if level is None else level
        if isinstance(level, bool) or not isinstance(level, int) or not -n <= level < n:
            raise SpecError(f"head.level: {level!r} is out of range for a backbone with {n} levels")
        if not 0.0 <= dropout < 1.0:
            raise SpecError(f"head.dropout: must be in [0, 1), got {dropout}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise SpecError(f"num_classes: expected a positive int, got {num_classes!r}")
        self.level = level % n
        channels = feature_info[self.level].channels
        self.norm = nn.LayerNorm(channels)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.02)
        nn.init.zeros_(self.fc.bias)

    def normalized(self, features: list[Tensor]) -> Tensor:
        """``LN(F_level)`` as a map ``(B, C, h, w)``."""
        x = features[self.level]
        return F.layer_norm(x.permute(0, 2, 3, 1), self.norm.normalized_shape, self.norm.weight, self.norm.bias,
                            self.norm.eps).permute(0, 3, 1, 2)

    def class_maps(self, features: list[Tensor]) -> Tensor:
        """Class activation maps ``(B, K, h, w)``: ``W . LN(F)`` per position (no bias)."""
        return F.conv2d(self.normalized(features), self.fc.weight[:, :, None, None])

    def forward(self, features: list[Tensor], labels: Tensor | None = None) -> ModelOutput:
        pooled = self.normalized(features).mean(dim=(2, 3))
        return ModelOutput(logits=self.fc(self.dropout(pooled)))
