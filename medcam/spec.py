"""Specs: a name, a dict or a YAML/JSON file -> a validated, fully resolved dict.

A *part spec* names one registered factory and its parameters::

    {"name": "resnet50", "pretrained": False}      # or just "resnet50"

A *model spec* assembles parts (every key is documented in :data:`MODEL_KEYS`)::

    {"name": "vmamba_wsol",                        # optional preset to start from
     "backbone": {"name": "vmamba_tiny", "pretrained": False},
     "head": {"name": "fpm"},
     "num_classes": 3,
     "loss": [{"name": "ce"}, {"name": "foreground_control", "weight": 0.1}],
     "attribution": {"name": "fpm"}}

Resolution is two-staged: the structure first (known keys, types), then each
part's parameters against its factory's signature. Every error names the spec
path and, for a typo, the close matches::

    backbone.pretrianed: unknown parameter; did you mean 'pretrained'?

The resolved spec has every default filled in, so it can be saved, printed,
diffed and rebuilt: ``build_model(model.spec)`` gives the same architecture.
"""
from __future__ import annotations

import copy
import inspect
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

from ._lazy import lazy_attributes
from .errors import PluginError, SpecError, UnknownNameError
from .limits import MAX_CLASSES, MAX_IN_CHANS
from .params import Range, check_choice, check_keys, check_number, check_value, parameter_hints
from .registry import Registry, did_you_mean, get_registry, normalize_name
from .spec_merge import PART_LISTS, deep_merge, expand_preset
from .weights import default_normalization

__all__ = [
    "MODEL_KEYS",
    "check_loss_weight",
    "SEGMENTER_KEYS",
    "PART_LISTS",
    "PREPROCESS_DEFAULTS",
    "load_spec",
    "deep_merge",
    "resolve_part",
    "resolve_model_spec",
    "resolve_segmenter_spec",
    "spec_kind",
    "DEFAULT_SEGMENTER_LOSS",
    "resolve_losses",
    "resolve_preprocess",
    "resolve_train",
    "resolve_display_names",
    "dump_spec",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Top-level keys of a model spec and what they mean.
MODEL_KEYS: dict[str, str] = {
    "name": "preset to start from (medcam list models); the other keys deep-merge over it",
    "backbone": "part spec of the backbone (medcam list backbones)",
    "head": "part spec of the head (default: 'linear')",
    "num_classes": "number of output classes K (logits are (B, K))",
    "in_chans": "image channels: 1 (greyscale) or 3 (default 3)",
    "multilabel": "true: one sigmoid per class (ChestX-ray14 style); false: softmax (default)",
    "class_names": "optional list of K class names (the data's folder or label names, in label order)",
    "display_names": "optional names shown for the classes (verdicts, app): a list of K, or {class name: shown "
                     "name}; class_names stay the data's names",
    "loss": "list of loss part specs, each with an optional combination 'weight' (default [{'name': 'ce'}])",
    "attribution": "default attribution method part spec, or null (methods: medcam list attributions)",
    "preprocess": "how a raw image becomes the model input; see PREPROCESS_DEFAULTS",
    "train": "training settings the model is tuned with (medcam.engine.TrainConfig keys, e.g. optimizer, lr); "
             "medcam train starts from them, a --config file and command-line options override them",
    "replace": "paths whose preset value this spec replaces instead of merging, e.g. ['loss'] or "
               "['loss.attention_box.rules'] (kept in the resolved spec)",
    "ensemble": "{members: k}: the model is k copies of this architecture whose logits are averaged (a k-fold "
                "ensemble; written by medcam train --folds K --final ensemble)",
}

#: Keys a resolved spec carries only when they are set.
OPTIONAL_KEYS: tuple[str, ...] = ("name", "replace", "ensemble")

#: Preprocessing keys, their defaults and meaning. ``mean``/``std`` default to what the
#: backbone's declared pretrained weights expect (``medcam info <name>.in1k``), else ImageNet
#: statistics; averaged over RGB for 1-channel input.
PREPROCESS_DEFAULTS: dict[str, Any] = {
    "size": [224, 224],          # [H, W] the model sees (an int means square)
    "resize": "square",          # square | pad (keep aspect, pad) | none (keep the image's own scale)
    "resize_to": None,           # [H, W] (or int) >= size to resize to first, then crop to size (center; random in training)
    "downscale": None,           # with resize 'none': shrink by this factor (e.g. 3) before cropping/padding to size
    "mean": None,                # per-channel mean, applied inside the model
    "std": None,                 # per-channel std, applied inside the model
    "rolling_ball_radius": None,  # background subtraction radius in pixels (dental radiographs), or null
}
RESIZE_MODES = ("square", "pad", "none")


# ---------------------------------------------------------------------- loading
def load_spec(source: Any) -> dict[str, Any]:
    """Read a spec: a mapping (copied), a YAML/JSON file path, or a bare name.

    A string that names an existing file, or ends in ``.yaml``/``.yml``/``.json``,
    is read as a file; any other string is a preset name, ``{"name": source}``.
    """
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source))
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if not text.strip():
            raise SpecError("spec: empty name; give a preset name (medcam list models) or a YAML/JSON spec file")
        path = Path(text)
        is_file_name = path.suffix.lower() in (".yaml", ".yml", ".json")
        if path.is_file() or is_file_name:
            if not path.is_file():
                raise FileNotFoundError(f"spec file '{text}' does not exist")
            return _read_spec_file(path)
        return {"name": text}
    raise SpecError(f"a spec must be a name, a mapping or a YAML/JSON path, got {type(source).__name__}")


def _read_spec_file(path: Path) -> dict[str, Any]:
    raw = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            import yaml

            data = yaml.safe_load(raw)
    except Exception as err:  # yaml.YAMLError, json.JSONDecodeError
        raise SpecError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {err}") from err
    if not isinstance(data, Mapping):
        raise SpecError(f"{path}: a spec file must hold a mapping at the top level, got {type(data).__name__}")
    return dict(data)


def dump_spec(spec: Mapping[str, Any], fmt: str = "yaml") -> str:
    """Text of a spec, ``"yaml"`` (key order kept) or ``"json"``."""
    if fmt == "json":
        return json.dumps(spec, indent=2)
    import yaml

    return yaml.safe_dump(dict(spec), sort_keys=False, default_flow_style=None)


# ---------------------------------------------------------------------- parts
def _plain(value: Any, path: str) -> Any:
    """JSON-compatible copy of ``value`` (tuples -> lists), or a SpecError."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise SpecError(f"{path}: value {value!r} of type {type(value).__name__} cannot be stored in a spec "
                    f"(use numbers, strings, lists and mappings)")


def _check_parameter(value: Any, hint: Any, default: Any, path: str) -> None:
    """Check a part parameter against its factory's annotation (:mod:`medcam.params`: types,
    ``Literal`` choices, ``Range`` bounds); an unannotated parameter by its default's type."""
    if hint is None:
        if value is None or not isinstance(default, (bool, int, float, str)):
            return
        hint = type(default)
    known = default is not inspect.Parameter.empty and default is not None
    check_value(value, hint, path, note=f"default {default!r}" if known else "")


def _signature(factory: Callable[..., Any], where: str) -> inspect.Signature:
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError) as err:
        raise PluginError(f"{where}: the registered factory has no inspectable signature: {err}") from err


def resolve_part(kind: str | Registry[Any], spec: Any, path: str, *, extra_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """Validate one part spec against its factory and fill every default.

    Args:
        kind: registry kind (``"backbones"``) or the registry itself.
        spec: a name or a mapping with ``name`` and parameters.
        path: where this part sits in the enclosing spec, for error messages.
        extra_keys: keys the enclosing spec owns (e.g. a loss's ``weight``);
            kept as they are and not passed to the factory.

    Returns:
        ``{"name": normalized name, **extra keys, **every factory parameter}``
        without the parameters medcam injects (``registry.injected``).
    """
    registry = kind if isinstance(kind, Registry) else get_registry(kind)
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping):
        raise SpecError(f"{path}: expected a {registry.singular} name or a mapping with 'name', got {spec!r}")
    if "name" not in spec or not isinstance(spec["name"], str) or not spec["name"].strip():
        raise SpecError(f"{path}: missing 'name' (the {registry.singular} to build; medcam list {registry.kind})")
    name = normalize_name(spec["name"])
    try:
        factory = registry.get(name)
    except UnknownNameError as err:
        raise UnknownNameError(f"{path}.name: {err}") from None
    signature = _signature(factory, f"{path} ({name})")
    hints = parameter_hints(factory)
    params = [p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    accepted = {p.name: p for p in params}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    for needed in registry.injected:
        if needed not in accepted and not takes_any:
            raise PluginError(f"{registry.singular} '{name}' ({registry.entry(name).value}) must accept the "
                              f"parameter '{needed}', which medcam passes to every {registry.singular}")
    out: dict[str, Any] = {"name": name}
    for key in extra_keys:
        if key in spec:
            out[key] = _plain(spec[key], f"{path}.{key}")
    settable = [n for n in accepted if n not in registry.injected]
    for key, value in spec.items():
        if key == "name" or key in extra_keys:
            continue
        if key in registry.injected:
            raise SpecError(f"{path}.{key}: set by medcam from the enclosing spec; remove it here")
        if key not in accepted and not takes_any:
            raise SpecError(f"{path}.{key}: unknown parameter{did_you_mean(key, settable)}"
                            f" (parameters of '{name}': {', '.join(settable) or 'none'})")
    for pname in settable:
        p = accepted[pname]
        if pname in spec:
            out[pname] = _plain(spec[pname], f"{path}.{pname}")  # tuples -> lists, paths -> str, then checked
            _check_parameter(out[pname], hints.get(pname), p.default, f"{path}.{pname}")
        elif p.default is inspect.Parameter.empty:
            raise SpecError(f"{path}.{pname}: missing required parameter of '{name}'")
        else:
            out[pname] = _plain(p.default, f"{path}.{pname}")
    if takes_any:
        for key, value in spec.items():
            if key not in out and key != "name":
                out[key] = _plain(value, f"{path}.{key}")
    return out


def split_part(part: Mapping[str, Any], extra_keys: tuple[str, ...] = ()) -> tuple[str, dict[str, Any]]:
    """``(name, factory kwargs)`` of a resolved part spec."""
    kwargs = {k: copy.deepcopy(v) for k, v in part.items() if k != "name" and k not in extra_keys}
    return part["name"], kwargs


# ---------------------------------------------------------------------- top level
def _positive_int(value: Any, path: str, most: int | None = None) -> int:
    check_number(value, path, Range(1), integer=True)
    if most is not None and value > most:
        raise SpecError(f"{path}: at most {most:,} is supported, got {value:,}")
    return value


def check_loss_weight(value: Any, path: str) -> float:
    """A loss's combination weight: a finite number >= 0 (a negative one would train towards a higher loss)."""
    return check_number(value, path, Range(0.0), note="a negative weight trains towards a higher loss")


def resolve_preprocess(raw: Any, in_chans: int, path: str = "preprocess",
                       normalization: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """Validate the ``preprocess`` mapping and fill its defaults (see :data:`PREPROCESS_DEFAULTS`).

    ``normalization``: the ``(mean, std)`` (RGB) to use when the mapping gives none, e.g. what
    a backbone's declared weights expect (:func:`medcam.weights.default_normalization`);
    ``None``: ImageNet statistics.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SpecError(f"{path}: expected a mapping, got {raw!r}")
    check_keys(raw, PREPROCESS_DEFAULTS, path)
    out = deep_merge(PREPROCESS_DEFAULTS, raw)
    size = out["size"]
    if isinstance(size, int) and not isinstance(size, bool):
        size = [size, size]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        raise SpecError(f"{path}.size: expected [height, width] in pixels or one int, got {out['size']!r}")
    out["size"] = [int(size[0]), int(size[1])]
    check_choice(out["resize"], RESIZE_MODES, f"{path}.resize")
    mean, std = normalization or (IMAGENET_MEAN, IMAGENET_STD)
    for key, default in (("mean", mean), ("std", std)):
        value = out[key]
        if value is None:
            value = list(default) if in_chans == 3 else [round(sum(default) / 3, 4)] * in_chans
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [float(value)] * in_chans
        if not isinstance(value, (list, tuple)) or len(value) != in_chans:
            raise SpecError(f"{path}.{key}: expected {in_chans} values (one per input channel), got {value!r}")
        if key == "std" and any(v <= 0 for v in value):
            raise SpecError(f"{path}.std: values must be positive, got {value!r}")
        out[key] = [float(v) for v in value]
    radius = out["rolling_ball_radius"]
    if radius is not None:
        _positive_int(radius, f"{path}.rolling_ball_radius")
    resize_to = out["resize_to"]
    if resize_to is not None:
        if out["resize"] == "none":
            raise SpecError(f"{path}.resize_to: only used with resize 'square' or 'pad' (resize is 'none'); "
                            f"use downscale to shrink the image, or remove resize_to")
        if isinstance(resize_to, int) and not isinstance(resize_to, bool):
            resize_to = [resize_to, resize_to]
        if (not isinstance(resize_to, (list, tuple)) or len(resize_to) != 2
                or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in resize_to)):
            raise SpecError(f"{path}.resize_to: expected [height, width] in pixels or one int, got {out['resize_to']!r}")
        if resize_to[0] < out["size"][0] or resize_to[1] < out["size"][1]:
            raise SpecError(f"{path}.resize_to: {list(resize_to)} is smaller than size {out['size']}; the image is "
                            f"resized to resize_to and then cropped to size")
        out["resize_to"] = [int(resize_to[0]), int(resize_to[1])]
    factor = out["downscale"]
    if factor is not None:
        check_number(factor, f"{path}.downscale", Range(1), note="e.g. 3 to shrink 3x")
        if out["resize"] != "none":
            raise SpecError(f"{path}.downscale: only used with resize 'none' (resize is {out['resize']!r}): "
                            f"the image is shrunk by this factor, then center-cropped or padded to size")
        out["downscale"] = float(factor)
    return _plain(out, path)


def resolve_display_names(raw: Any, class_names: list[str] | None, num_classes: int) -> list[str] | None:
    """The ``display_names`` of a spec as a list of K strings (or None).

    ``raw`` is a list of K names in label order, or a mapping ``{class name:
    shown name}`` (classes it omits keep their class name), which needs
    ``class_names``. YAML reads a folder called ``3`` as the number 3; keys are
    compared as strings.
    """
    if raw is None:
        return None
    if isinstance(raw, Mapping):
        if class_names is None:
            raise SpecError("display_names: a mapping {class name: shown name} needs class_names (from the data "
                            "when training); or give a list of num_classes names")
        shown = {str(k): v for k, v in raw.items()}
        for key in shown:
            if key not in class_names:
                raise SpecError(f"display_names.{key}: not a class{did_you_mean(key, class_names)} "
                                f"(classes: {', '.join(class_names)})")
        names = [shown.get(c, c) for c in class_names]
    elif isinstance(raw, (list, tuple)):
        names = list(raw)
        if len(names) != num_classes:
            raise SpecError(f"display_names: {len(names)} names for num_classes={num_classes}")
    else:
        raise SpecError(f"display_names: expected a list of names or a mapping {{class name: shown name}}, got {raw!r}")
    for i, value in enumerate(names):
        if not isinstance(value, str) or not value.strip():
            raise SpecError(f"display_names[{i}]: expected a non-empty string, got {value!r}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SpecError(f"display_names: '{repeated[0]}' is shown for two classes; each class needs its own name")
    return [str(n) for n in names]


def _resolve_ensemble(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) - {"members"} or "members" not in raw:
        raise SpecError(f"ensemble: expected {{members: k}} (k >= 2 copies of the model), got {raw!r}")
    members = _positive_int(raw["members"], "ensemble.members")
    if members < 2:
        raise SpecError(f"ensemble.members: an ensemble needs at least 2 members, got {members}")
    return {"members": members}


def resolve_model_spec(source: Any) -> dict[str, Any]:
    """A fully resolved model spec from a preset name, mapping or file.

    Raises:
        SpecError: malformed structure or parameters (message starts with the spec path).
        UnknownNameError: an unregistered preset or part name, with close matches.
        FileNotFoundError: a spec file that does not exist.
    """
    raw = load_spec(source)
    names = raw.get("class_names")
    if "num_classes" not in raw and isinstance(names, (list, tuple)) and names:
        raw["num_classes"] = len(names)  # the spec's own class names win over a preset's count
    spec = expand_preset(raw, MODEL_KEYS, OPTIONAL_KEYS)
    check_keys(spec, MODEL_KEYS)
    if "backbone" not in spec:
        raise SpecError("backbone: missing (every model needs a backbone; medcam list backbones)")
    class_names = spec.get("class_names")
    if "num_classes" not in spec:
        if not isinstance(class_names, (list, tuple)) or not class_names:
            raise SpecError("num_classes: missing (the number of classes the model predicts; give num_classes or "
                            "class_names, or medcam build --num-classes K)")
        spec["num_classes"] = len(class_names)
    num_classes = _positive_int(spec["num_classes"], "num_classes", MAX_CLASSES)
    in_chans = _positive_int(spec.get("in_chans", 3), "in_chans", MAX_IN_CHANS)
    multilabel = spec.get("multilabel", False)
    if not isinstance(multilabel, bool):
        raise SpecError(f"multilabel: expected true or false, got {multilabel!r}")
    if class_names is not None:
        if not isinstance(class_names, (list, tuple)) or not all(isinstance(c, str) for c in class_names):
            raise SpecError(f"class_names: expected a list of strings, got {class_names!r}")
        if len(class_names) != num_classes:
            raise SpecError(f"class_names: {len(class_names)} names for num_classes={num_classes}")
        repeated = sorted({c for c in class_names if class_names.count(c) > 1})
        if repeated:
            raise SpecError(f"class_names: '{repeated[0]}' appears twice; every class needs its own name "
                            f"(answers map names to probabilities)")
    resolved_losses = resolve_losses(spec.get("loss", [{"name": "ce"}]), segmenter=False)
    attribution = spec.get("attribution")
    out: dict[str, Any] = {}
    if spec.get("name"):
        out["name"] = spec["name"]
    out["backbone"] = resolve_part("backbones", spec["backbone"], "backbone")
    out["head"] = resolve_part("heads", spec.get("head", "linear"), "head")
    out["num_classes"] = num_classes
    out["in_chans"] = in_chans
    out["multilabel"] = multilabel
    out["class_names"] = list(class_names) if class_names is not None else None
    out["display_names"] = resolve_display_names(spec.get("display_names"), out["class_names"], num_classes)
    out["loss"] = resolved_losses
    out["attribution"] = None if attribution is None else resolve_part("attributions", attribution, "attribution")
    out["preprocess"] = resolve_preprocess(spec.get("preprocess"), in_chans,
                                           normalization=default_normalization(out["backbone"]["name"]))
    out["train"] = resolve_train(spec.get("train"))
    if spec.get("replace"):
        out["replace"] = list(spec["replace"])
    ensemble = _resolve_ensemble(spec.get("ensemble"))
    if ensemble is not None:
        out["ensemble"] = ensemble
    return out


def _is_segmentation_loss(name: str) -> bool:
    return get_registry("losses").info(name).get("task") == "segmentation"


def resolve_losses(raw: Any, *, segmenter: bool) -> list[dict[str, Any]]:
    """The ``loss`` list of a model (``segmenter=False``) or segmenter spec, resolved.

    Each item gets its combination ``weight`` (default 1) and every parameter.
    Segmentation losses (registered with ``task="segmentation"``) read mask
    logits and masks; the others read class logits and labels; a spec may only
    use the kind that fits it.

    Raises:
        SpecError: not a non-empty list, a bad weight, or a loss of the other kind.
    """
    losses = [raw] if isinstance(raw, (str, Mapping)) else raw
    if not isinstance(losses, (list, tuple)) or not losses:
        raise SpecError(f"loss: expected a non-empty list of loss specs, got {raw!r}")
    out = []
    for i, part in enumerate(losses):
        item = resolve_part("losses", part, f"loss[{i}]", extra_keys=("weight",))
        if _is_segmentation_loss(item["name"]) != segmenter:
            fits = [n for n in get_registry("losses").list() if _is_segmentation_loss(n) == segmenter]
            what = "segmentation loss (mask logits vs masks)" if not segmenter else "classification loss"
            raise SpecError(f"loss[{i}]: '{item['name']}' is a {what}; a {'segmenter' if segmenter else 'classifier'} "
                            f"trains with {', '.join(fits)} (medcam info {item['name']})")
        weight = check_loss_weight(item.pop("weight", 1.0), f"loss[{i}].weight")
        out.append({"name": item.pop("name"), "weight": weight, **item})
    return out


def resolve_train(raw: Any, path: str = "train") -> dict[str, Any]:
    """Validate a spec's ``train`` mapping (the keys given, not every default).

    Raises:
        SpecError: not a mapping, or an unknown key / bad value (``train.optimzer: unknown key; ...``).
    """
    from .engine.config import TrainConfig  # torch-free

    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SpecError(f"{path}: expected a mapping of training settings (medcam.engine.TrainConfig keys), "
                        f"got {raw!r}")
    TrainConfig.from_dict(raw)
    return _plain(dict(raw), path)


# Segmenter specs live in medcam.spec_segmenter (which imports this module); their names resolve here lazily.
__getattr__, __dir__ = lazy_attributes(__name__, {name: "medcam.spec_segmenter" for name in (
    "SEGMENTER_KEYS", "DEFAULT_SEGMENTER_LOSS", "spec_kind", "resolve_segmenter_spec")}, globals())
