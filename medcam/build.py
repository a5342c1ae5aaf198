"""Build models and parts from names or specs.

Everything here goes through the registries: the core never imports model
code, it calls the factory a plugin registered under the requested name.

Example::

    import medcam
    model = medcam.build_model("tiny_classifier")                  # a preset
    model = medcam.build_model({"backbone": "resnet18", "num_classes": 3})
    model = medcam.build_model("configs/busi.yaml")                 # a file
    same = medcam.build_model(model.spec)                           # round trip
"""
from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from .capabilities import ModelCheck
from .errors import CapabilityError, PluginError, SpecError
from .features import FeatureInfo
from .loss import CompositeLoss
from .model import MedcamModel, MedcamSegmenter
from .registry import attributions, backbones, heads, losses, metrics, segmenters
from .spec import resolve_model_spec, resolve_part, split_part
from .spec_segmenter import resolve_segmenter_spec

__all__ = [
    "build_model",
    "build_backbone",
    "build_head",
    "build_segmenter",
    "build_loss",
    "build_attribution",
    "build_metric",
]


def _call(registry: Any, part: Mapping[str, Any], path: str, **injected: Any) -> Any:
    name, kwargs = split_part(part, extra_keys=("weight",) if registry is losses else ())
    factory = registry.get(name)
    try:
        return factory(**kwargs, **injected)
    except (SpecError, PluginError):
        raise
    except TypeError as err:
        raise SpecError(f"{path} ({name}): {err}") from err


def build_backbone(spec: Any, *, in_chans: int = 3) -> nn.Module:
    """Build a backbone from a name or part spec.

    Returns a module whose ``forward(x)`` maps ``(B, in_chans, H, W)`` to a list of
    ``(B, C_i, H/s_i, W/s_i)`` levels and whose ``feature_info`` describes them.
    The resolved part spec is stored as ``backbone.spec``.
    """
    part = resolve_part("backbones", spec, "backbone")
    module = _call(backbones, part, "backbone", in_chans=in_chans)
    info = getattr(module, "feature_info", None)
    if not isinstance(info, FeatureInfo):
        raise PluginError(f"backbone '{part['name']}' ({backbones.entry(part['name']).value}) has no "
                          f"FeatureInfo 'feature_info' attribute (see medcam.features for the contract)")
    module.spec = part
    return module


def build_head(spec: Any, *, feature_info: FeatureInfo, num_classes: int) -> nn.Module:
    """Build a head for backbone levels described by ``feature_info``; see :class:`MedcamModel`."""
    part = resolve_part("heads", spec, "head")
    return _call(heads, part, "head", feature_info=feature_info, num_classes=num_classes)


def build_model(spec: Any) -> MedcamModel:
    """Assemble a :class:`~medcam.model.MedcamModel` from a preset name, a dict or a YAML/JSON path.

    The model's ``spec`` attribute holds the fully resolved spec (all defaults
    filled); ``build_model(model.spec)`` rebuilds the same architecture.
    Validation errors name the spec path, e.g.
    ``backbone.pretrianed: unknown parameter; did you mean 'pretrained'?``.
    A spec with ``ensemble: {members: k}`` builds a
    :class:`~medcam.ensemble.MedcamEnsemble` of k copies (a MedcamModel too).
    """
    resolved = resolve_model_spec(spec)
    if resolved.get("ensemble"):
        from .ensemble import MedcamEnsemble, member_spec

        one = member_spec(resolved)
        return MedcamEnsemble(resolved, [_assemble(one) for _ in range(resolved["ensemble"]["members"])])
    return _assemble(resolved)


def _assemble(resolved: dict[str, Any]) -> MedcamModel:
    """Backbone + head of a resolved (single-model) spec."""
    backbone = _call(backbones, resolved["backbone"], "backbone", in_chans=resolved["in_chans"])
    info = getattr(backbone, "feature_info", None)
    if not isinstance(info, FeatureInfo):
        name = resolved["backbone"]["name"]
        raise PluginError(f"backbone '{name}' ({backbones.entry(name).value}) has no FeatureInfo "
                          f"'feature_info' attribute (see medcam.features for the contract)")
    backbone.spec = resolved["backbone"]
    head = _call(heads, resolved["head"], "head", feature_info=info, num_classes=resolved["num_classes"])
    model = MedcamModel(resolved, backbone, head)
    _check_attribution(model, resolved.get("attribution"))
    return model


def _check_attribution(model: MedcamModel, part: Mapping[str, Any] | None) -> None:
    """Refuse a spec whose ``attribution`` needs a capability (``medcam.capabilities``) the model lacks."""
    if not part:
        return
    method = _call(attributions, part, "attribution")
    if isinstance(method, ModelCheck):
        try:
            method.check_model(model)
        except CapabilityError as err:
            raise CapabilityError(f"attribution ({part['name']}): {err}") from err


def build_segmenter(spec: Any) -> MedcamSegmenter:
    """Assemble a :class:`~medcam.model.MedcamSegmenter` (mask logits ``(B, K, H, W)``).

    ``spec`` is a name (``"unet"``), a flat mapping (``{"name": "unet",
    "encoder": "resnet34", "in_chans": 1}``), a nested one
    (``{"segmenter": {...}, "num_classes": 1}``) or a YAML/JSON path.
    """
    resolved = resolve_segmenter_spec(spec)
    net = _call(segmenters, resolved["segmenter"], "segmenter", in_chans=resolved["in_chans"],
                num_classes=resolved["num_classes"])
    return MedcamSegmenter(resolved, net)


def build_loss(spec: Any, *, num_classes: int, multilabel: bool = False) -> CompositeLoss:
    """Build the weighted loss of a model spec's ``loss`` list (or one loss spec).

    ``spec`` may be a resolved model spec (its ``loss`` list is used), a list of
    loss part specs with optional ``weight``, or a single name/spec.
    """
    if isinstance(spec, Mapping) and "loss" in spec:
        spec = spec["loss"]
    items = spec if isinstance(spec, (list, tuple)) else [spec]
    terms = []
    for i, item in enumerate(items):
        part = resolve_part("losses", item, f"loss[{i}]", extra_keys=("weight",))
        module = _call(losses, part, f"loss[{i}]", num_classes=num_classes, multilabel=multilabel)
        terms.append((part["name"], float(part.get("weight", 1.0)), module))
    return CompositeLoss(terms)


def build_attribution(spec: Any) -> Any:
    """Build an attribution method (CAM, Grad-CAM, ...) from a name or part spec.

    See :mod:`medcam.attribution` for the protocol the returned object follows.
    """
    return _build_with_spec(attributions, spec, "attribution")


def build_metric(spec: Any) -> Any:
    """Build an attribution metric (deletion, ROAD, pointing game, ...) from a name or part spec.

    See :mod:`medcam.faithfulness.base` for the protocol the returned object follows.
    """
    return _build_with_spec(metrics, spec, "metric")


def _build_with_spec(registry: Any, spec: Any, path: str) -> Any:
    """Build a part that records its resolved part spec on itself (``.spec``) when it can."""
    part = resolve_part(registry, spec, path)
    built = _call(registry, part, path)
    try:
        built.spec = part
    except AttributeError:
        pass
    return built
