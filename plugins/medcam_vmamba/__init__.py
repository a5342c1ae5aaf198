"""medcam's VMamba plugin: VMamba backbones (Liu et al., NeurIPS 2024), their cross-scan and selective-scan kernels.

Modules: :mod:`~medcam_vmamba.entries` (light registry factories),
:mod:`~medcam_vmamba.configs` (the configurations, torch-free),
:mod:`~medcam_vmamba.vssm` (the backbone), :mod:`~medcam_vmamba.ss2d` (the SS2D
mixer), :mod:`~medcam_vmamba.layers`, :mod:`~medcam_vmamba.heads` (the official
classifier as a head), :mod:`~medcam_vmamba.checkpoint` (official weights) and
:mod:`~medcam_vmamba.kernels` (scan kernels). See ``docs/vmamba.md``.

``medcam_vmamba.load_official_checkpoint(model, path_or_name)`` loads official
weights into a medcam model; it is imported on first use, so importing this
package (as the registry does) stays light.
"""
from __future__ import annotations

from typing import Any

__all__ = ["load_official_checkpoint"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'medcam_vmamba' has no attribute '{name}'")
