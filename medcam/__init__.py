"""medcam: localization-aware medical image classification.

Build any classifier, segmenter, attribution method or loss by name or spec,
see where the model looked, and measure how well that matches the lesion.

    import medcam
    model = medcam.build_model({"backbone": "resnet18", "num_classes": 3})
    medcam.save(model, "model.pt", note="first try")
    model = medcam.load("model.pt")

Attributes are imported lazily, so ``import medcam`` (and ``medcam list``)
stays fast and never imports torch or plugin code until it is needed.
"""
from __future__ import annotations

from typing import Any

from medcam._lazy import lazy_attributes

__version__ = "0.1.0"

_LAZY = {
    "build_model": "medcam.build",
    "build_backbone": "medcam.build",
    "build_head": "medcam.build",
    "build_segmenter": "medcam.build",
    "build_loss": "medcam.build",
    "build_attribution": "medcam.build",
    "build_metric": "medcam.build",
    "save": "medcam.checkpoint",
    "load": "medcam.checkpoint",
    "read_checkpoint": "medcam.checkpoint",
    "MedcamModel": "medcam.model",
    "MedcamSegmenter": "medcam.model",
    "ModelOutput": "medcam.model",
    "FeatureInfo": "medcam.features",
    "FeatureLevel": "medcam.features",
    "resolve_model_spec": "medcam.spec",
    "resolve_segmenter_spec": "medcam.spec_segmenter",
    "explain": "medcam.attribution",
    "registry": "medcam.registry",
    "errors": "medcam.errors",
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
__all__ = sorted(_LAZY) + ["list_names", "info", "__version__"]


def list_names(kind: str, pattern: str = "*") -> list[str]:
    """Registered names of one kind (``"backbones"``, ``"models"``, ...) matching a glob."""
    from .registry import get_registry

    return get_registry(kind).list(pattern)


def info(name: str, kind: str | None = None) -> dict[str, Any]:
    """Metadata of a registered name (searched in every registry unless ``kind`` is given)."""
    from .errors import UnknownNameError
    from .registry import REGISTRIES, did_you_mean, get_registry

    if kind is not None:
        return get_registry(kind).info(name)
    for registry in REGISTRIES.values():
        if name in registry:
            return registry.info(name)
    every = [n for r in REGISTRIES.values() for n in r.list()]
    raise UnknownNameError(f"unknown name '{name}'{did_you_mean(name, every)} (medcam list)")
