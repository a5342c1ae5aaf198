"""Segmenter specs: what kind a spec is, and a segmenter spec resolved.

A segmenter spec (every key in :data:`SEGMENTER_KEYS`)::

    {"segmenter": {"name": "unet", "encoder": "resnet34"}, "in_chans": 1, "num_classes": 1,
     "preprocess": {"size": 256}, "loss": [{"name": "dice"}, {"name": "mask_bce"}], "train": {"lr": 0.002}}

or the flat form ``{"name": "unet", "encoder": "resnet34", "in_chans": 1}``, or
the ``name`` of a model preset that holds a ``segmenter`` with keys merged over
it. The names here are also reachable as ``medcam.spec.<name>``.
"""
from __future__ import annotations

from typing import Any, Mapping

from .limits import MAX_CLASSES, MAX_IN_CHANS
from .params import check_keys
from .registry import get_registry
from .spec import _positive_int, load_spec, resolve_losses, resolve_part, resolve_preprocess, resolve_train
from .spec_merge import expand_preset

__all__ = ["SEGMENTER_KEYS", "DEFAULT_SEGMENTER_LOSS", "spec_kind", "resolve_segmenter_spec"]

#: Top-level keys of a segmenter spec.
SEGMENTER_KEYS: dict[str, str] = {
    "segmenter": "part spec of the segmenter (medcam list segmenters)",
    "in_chans": "image channels: 1 or 3 (default 3)",
    "num_classes": "mask channels (default 1: binary foreground)",
    "preprocess": "how a raw image becomes the model input; see PREPROCESS_DEFAULTS",
    "loss": "list of segmentation loss part specs with optional 'weight' (default: DEFAULT_SEGMENTER_LOSS)",
    "train": "training settings the segmenter is tuned with (medcam.engine.TrainConfig keys)",
}

#: What a segmenter trains with unless its spec says otherwise: soft Dice + binary cross-entropy
#: on the mask logits (the losses registered with ``task="segmentation"``, ``medcam list losses``).
DEFAULT_SEGMENTER_LOSS: tuple[dict[str, Any], ...] = ({"name": "dice", "weight": 1.0},
                                                      {"name": "mask_bce", "weight": 1.0})


def _segmenter_preset(spec: Mapping[str, Any]) -> bool:
    """True when ``spec['name']`` is a model preset (``medcam list models``) that holds a ``segmenter``."""
    name = spec.get("name")
    if not isinstance(name, str) or name not in get_registry("models"):
        return False
    preset = get_registry("models").get(name)
    return isinstance(preset, Mapping) and "segmenter" in preset


def spec_kind(source: Any) -> str:
    """``"segmenter"`` or ``"model"``: what a spec (name, mapping or YAML/JSON path) builds.

    A segmenter spec has a ``segmenter`` part, or its ``name`` is a registered
    segmenter (the flat form ``{"name": "unet", "encoder": ...}``) or a preset
    holding a ``segmenter``; anything else is a (classification) model spec.
    """
    spec = load_spec(source)
    if "segmenter" in spec or _segmenter_preset(spec):
        return "segmenter"
    name = spec.get("name")
    if "backbone" in spec or not isinstance(name, str) or name in get_registry("models"):
        return "model"
    return "segmenter" if name in get_registry("segmenters") else "model"


def resolve_segmenter_spec(source: Any) -> dict[str, Any]:
    """A fully resolved segmenter spec.

    Accepts ``{"segmenter": {...}, "in_chans": 1, "num_classes": 1}``, the
    flat form ``{"name": "unet", "encoder": "resnet34", "in_chans": 1}``, where
    the keys of :data:`SEGMENTER_KEYS` are lifted to the top level, or a preset
    (``name`` of a model preset that holds a ``segmenter``) with keys merged over it.
    ``loss`` defaults to :data:`DEFAULT_SEGMENTER_LOSS`, ``train`` to ``{}``.
    """
    spec = load_spec(source)
    preset = None
    if _segmenter_preset(spec):
        spec = expand_preset(spec, SEGMENTER_KEYS)
        preset = spec.pop("name")
    if "segmenter" not in spec:
        part = {k: v for k, v in spec.items() if k not in SEGMENTER_KEYS}
        spec = {k: v for k, v in spec.items() if k in SEGMENTER_KEYS}
        spec["segmenter"] = part
    check_keys(spec, SEGMENTER_KEYS)
    in_chans = _positive_int(spec.get("in_chans", 3), "in_chans", MAX_IN_CHANS)
    out: dict[str, Any] = {"name": preset} if preset else {}
    out.update({
        "segmenter": resolve_part("segmenters", spec["segmenter"], "segmenter"),
        "in_chans": in_chans,
        "num_classes": _positive_int(spec.get("num_classes", 1), "num_classes", MAX_CLASSES),
        "preprocess": resolve_preprocess(spec.get("preprocess"), in_chans),
        "loss": resolve_losses(spec.get("loss", [dict(p) for p in DEFAULT_SEGMENTER_LOSS]), segmenter=True),
        "train": resolve_train(spec.get("train")),
    })
    return out
