"""How a spec merges over a preset: mappings deep-merge, lists of named parts merge by name.

A preset is a partial model spec; the user's spec is merged over it (see
:func:`deep_merge` for the rules). Lists of named parts (a model spec's
``loss``) merge part by part, matched by name, so overriding one parameter of
one part keeps the preset's other settings; a spec that means to replace a
preset value whole says so with ``replace: [paths]`` (kept in the resolved
spec, so the resolved spec rebuilds the same model)::

    {"name": "resnet50_attention_box", "loss": [{"name": "attention_box", "segmenter": "lungs.pt"}]}
        # the preset's attention_box loss with its rules, mode, target and adaptive lambda, plus the segmenter
    {"name": "resnet50_attention_box", "replace": ["loss"], "loss": [{"name": "ce"}]}
        # the preset's loss list replaced by plain cross-entropy
"""
from __future__ import annotations

import copy
from typing import Any, Iterable, Mapping

from .errors import SpecError, UnknownNameError
from .registry import did_you_mean, models, normalize_name
from .spec_path import has_path, part_name, split_path

__all__ = ["PART_LISTS", "deep_merge", "expand_preset", "replace_paths"]

#: Keys of a model spec that hold lists of named parts: a preset's list and the
#: user's merge part by part, matched by name (see :func:`deep_merge`).
PART_LISTS: tuple[str, ...] = ("loss",)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any], *, part_lists: tuple[str, ...] = (),
               replace: tuple[str, ...] | list[str] = (), path: str = "") -> dict[str, Any]:
    """``override`` over ``base``: mappings merge recursively, everything else replaces.

    * A part whose ``name`` changes is replaced whole (a preset's ResNet
      parameters make no sense for a VMamba), not merged. A part given by its
      name alone (``backbone: resnet18``) keeps that name when a mapping without
      ``name`` is merged over it (``{"pretrained": True}`` -> ``{"name": "resnet18",
      "pretrained": True}``).
    * The lists of named parts under the keys ``part_lists`` (a model spec's
      ``loss``) merge by part name: an override item merges over the base item
      of the same name, in its place (``[{"name": "attention_box", "segmenter":
      "lungs.pt"}]`` changes only that parameter of the preset's attention_box
      loss); an item with a new name is appended; base items the override does
      not name are kept. Two parts of one name in a list cannot be matched:
      that is an error asking for ``replace``.
    * ``replace`` lists dotted paths (:mod:`medcam.spec_path`, e.g. ``"loss"``,
      ``"loss.attention_box.rules"``) whose value the override replaces whole.

    Args:
        path: where ``base`` sits in the enclosing spec (for ``replace`` and errors).

    Raises:
        SpecError: an override list item without a name, or a name that two
            items share, in a list that merges by name.
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        here = f"{path}.{key}" if path else str(key)
        old = out.get(key)
        if here in replace or key not in out:
            out[key] = copy.deepcopy(value)
            continue
        if key in part_lists and isinstance(old, (list, tuple)) and isinstance(value, (list, tuple, str, Mapping)):
            out[key] = _merge_part_list(list(old), value, here, replace)
            continue
        if isinstance(old, str) and isinstance(value, Mapping) and "name" not in value:
            old = {"name": old}
        same_part = not (isinstance(old, Mapping) and isinstance(value, Mapping)
                         and "name" in value and "name" in old and normalize_name(str(value["name"])) != normalize_name(str(old["name"])))
        if isinstance(old, Mapping) and isinstance(value, Mapping) and same_part:
            out[key] = deep_merge(old, value, replace=replace, path=here)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_part_list(base: list[Any], override: Any, path: str, replace: tuple[str, ...] | list[str]) -> list[Any]:
    """The named parts of ``override`` merged into ``base`` by name (see :func:`deep_merge`)."""
    items = [override] if isinstance(override, (str, Mapping)) else list(override)
    hint = f"give the whole list and 'replace: [{path}]' to replace the preset's list"
    names = [part_name(item) for item in base]
    out = copy.deepcopy(base)
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = part_name(item)
        if name is None:
            raise SpecError(f"{path}[{i}]: missing 'name'; the parts of a preset's {path} list merge by name ({hint})")
        if name in seen:
            raise SpecError(f"{path}: two parts named '{name}' cannot be merged with the preset's by name; {hint}")
        seen.add(name)
        matches = [j for j, n in enumerate(names) if n == name]
        if len(matches) > 1:
            raise SpecError(f"{path}: the preset has {len(matches)} parts named '{name}', so '{name}' cannot be "
                            f"merged by name; {hint}")
        if not matches:
            out.append(copy.deepcopy(item))
            continue
        j = matches[0]
        old = out[j] if isinstance(out[j], Mapping) else {"name": out[j]}
        new = item if isinstance(item, Mapping) else {"name": item}
        out[j] = deep_merge(old, new, replace=replace, path=f"{path}.{name}")
    return out


def replace_paths(spec: Mapping[str, Any], keys: Iterable[str], optional: Iterable[str] = ()) -> list[str]:
    """The spec's ``replace`` list, validated: paths into what the spec sets, starting with one of ``keys``."""
    raw = spec.get("replace")
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, (list, tuple)) or not all(isinstance(p, str) for p in raw):
        raise SpecError(f"replace: expected a list of paths such as ['loss'], got {raw!r}")
    if not spec.get("name"):
        raise SpecError("replace: only used with a preset ('name'): it says which preset values this spec "
                        "replaces instead of merging")
    own = {k: v for k, v in spec.items() if k not in ("name", "replace")}
    allowed = [k for k in keys if k not in set(optional)]
    out = []
    for text in raw:
        parts = split_path(text)
        if parts[0] not in allowed:
            raise SpecError(f"replace: '{text}' does not start with a spec key{did_you_mean(parts[0], allowed)}")
        if not has_path(own, parts):
            raise SpecError(f"replace: '{text}' is not set in this spec, so nothing would replace the preset's value")
        out.append(".".join(parts))
    return out


def expand_preset(spec: dict[str, Any], keys: Iterable[str], optional: Iterable[str] = ()) -> dict[str, Any]:
    """``spec`` merged over the preset its ``name`` names (unchanged without a name).

    The preset's lists of named parts (:data:`PART_LISTS`) merge by name; the
    spec's ``replace`` paths replace the preset's values and stay in the result.
    ``keys`` are the spec's top-level keys, ``optional`` those ``replace`` cannot name.
    """
    if "name" not in spec or spec["name"] is None:
        if spec.get("replace"):
            replace_paths(spec, keys, optional)  # raises: replace needs a preset
        return spec
    name = spec["name"]
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"name: expected a preset name (medcam list models), got {name!r}")
    try:
        preset = models.get(name)
    except UnknownNameError as err:
        raise UnknownNameError(f"name: {err}") from None
    if not isinstance(preset, Mapping):
        raise SpecError(f"name: model preset '{name}' is a {type(preset).__name__}, not a spec mapping")
    replace = replace_paths(spec, keys, optional)
    base = {k: v for k, v in preset.items() if k != "name"}
    merged = deep_merge(base, {k: v for k, v in spec.items() if k not in ("name", "replace")},
                       part_lists=PART_LISTS, replace=tuple(replace))
    merged["name"] = normalize_name(name)
    if replace:
        merged["replace"] = replace
    return merged
