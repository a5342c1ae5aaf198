"""Build VMamba backbones and heads from registry parameters (weights included).

The light factories in :mod:`medcam_vmamba.entries` call these after
importing them, so torch and the architecture load only when a model is built.
"""
from __future__ import annotations

from typing import Any, Sequence

from medcam.errors import CheckpointError, SpecError
from medcam.features import FeatureInfo

from .configs import VMambaConfig

__all__ = ["build_backbone", "build_classifier_head"]


def build_backbone(name: str, config: VMambaConfig, *, in_chans: int = 3, pretrained: bool = False,
                   checkpoint_path: str | None = None, out_indices: Sequence[int] | int | None = None,
                   drop_path_rate: float | None = None, out_norm: bool = True,
                   grad_checkpointing: bool = False, kernel_backend: str = "auto") -> Any:
    """A :class:`~medcam_vmamba.vssm.VMamba` for ``config``, optionally with weights.

    ``pretrained=True`` loads the official ImageNet-1K checkpoint of ``name``
    (downloaded once into the torch hub cache); ``checkpoint_path`` loads a file
    (official or Backbone_VSSM layout, see :mod:`medcam_vmamba.checkpoint`).
    Both only fill the backbone; the classifier part of the file is left out.
    """
    from .checkpoint import download_official, load_official_checkpoint
    from .vssm import VMamba

    if pretrained and checkpoint_path:
        raise SpecError(f"{name}: give either pretrained=true or checkpoint_path, not both")
    if pretrained and config.url is None:
        raise CheckpointError(f"{name}: there is no official checkpoint for this configuration; "
                              f"pass checkpoint_path= instead")
    model = VMamba(config, in_chans=in_chans, out_indices=out_indices, drop_path_rate=drop_path_rate,
                   out_norm=out_norm, grad_checkpointing=grad_checkpointing, kernel_backend=kernel_backend,
                   name=name)
    if pretrained:
        model.load_report = load_official_checkpoint(model, download_official(config), include_head=False)
    elif checkpoint_path:
        model.load_report = load_official_checkpoint(model, checkpoint_path, include_head=False)
    return model


def build_classifier_head(feature_info: FeatureInfo, num_classes: int, level: int | None = None,
                          dropout: float = 0.0, checkpoint_path: str | None = None) -> Any:
    """A :class:`~medcam_vmamba.heads.VMambaClassifierHead`; ``checkpoint_path`` loads the
    official ``classifier.norm`` / ``classifier.head`` of a VMamba checkpoint into it."""
    from .checkpoint import load_official_checkpoint
    from .heads import VMambaClassifierHead

    head = VMambaClassifierHead(feature_info, num_classes, level=level, dropout=dropout)
    if checkpoint_path:
        head.load_report = load_official_checkpoint(head, checkpoint_path)
    return head
