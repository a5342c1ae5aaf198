"""LinearHead: global average pooling + linear classifier (the CAM architecture)."""
from __future__ import annotations

from torch import Tensor, nn

from medcam.errors import SpecError
from medcam.features import FeatureInfo
from medcam.model import ModelOutput


class LinearHead(nn.Module):
    """``logits = W . GAP(F_level) + b``.

    Because pooling comes before the linear map, the class activation map of
    class ``k`` is ``sum_c W[k, c] F_level[c]`` (Zhou et al., CVPR 2016):
    :meth:`cam_weights` exposes ``W`` ``(K, C)`` for the ``cam`` method.

    Args:
        feature_info: the backbone's levels; input ``features[level]`` is ``(B, C, h, w)``.
        num_classes: K.
        level: which level to classify (default ``feature_info.cam_level``).
        dropout: dropout before the linear layer, in ``[0, 1)`` (declared and checked by the
            registered ``linear`` factory, :mod:`medcam_basic.entries`).
    """

    def __init__(self, feature_info: FeatureInfo, num_classes: int, level: int | None = None, dropout: float = 0.0):
        super().__init__()
        n = len(feature_info)
        level = feature_info.cam_level if level is None else level
        if not -n <= level < n:
            raise SpecError(f"head.level: {level} is out of range for a backbone with {n} levels")
        self.level = level % n
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(feature_info[self.level].channels, num_classes)

    def cam_weights(self) -> Tensor:
        """Classifier weights ``(K, C)`` that turn level ``self.level`` into class activation maps."""
        return self.fc.weight

    def forward(self, features: list[Tensor], labels: Tensor | None = None) -> ModelOutput:
        pooled = features[self.level].mean(dim=(2, 3))
        return ModelOutput(logits=self.fc(self.dropout(pooled)))
