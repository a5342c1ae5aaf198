"""Run names from templates that carry hyperparameters: ``--name "{backbone}_lam{loss.attention_box.lam}"``.

The seed projects named their result files after their settings (the
attention seed: ``{backbone}_{dataset}_{task}_la{lambda}{a}_t{thresh}.pt``).
A template does the same from the resolved spec, the training settings and
the data settings::

    render_name("{backbone}_{dataset}_{task}_la{loss.attention_box.lam}{loss.attention_box.adaptive:a}"
                "_t{loss.attention_box.thresh}", spec=spec, config=config, data=data)
    # -> "resnet50_nih_effusion_pneumothorax_la0.5a_t0.3"

Fields (``{field}`` or ``{field:format}``; ``{{`` and ``}}`` are literal braces):

* a dotted path into the resolved model spec (:mod:`medcam.spec_path`):
  ``backbone`` (a part shows its name), ``backbone.pretrained``,
  ``loss.attention_box.lam``, ``preprocess.size``, ``name`` (the preset);
* a training setting (:class:`~medcam.engine.TrainConfig`): ``lr``, ``epochs``, ``seed``, ...;
* a data setting: ``dataset``, ``split_seed``, ``folds``, ... and the layout
  options, e.g. ``task`` (``-o task=effusion``);
* ``tag``: medcam's default name (model, size, optimizer, lr, batch, epochs, schedule, seed).

``spec.``, ``train.`` and ``data.`` prefixes make a field explicit. Values
print plainly: numbers as Python writes them (``0.001``, ``1e-05``), lists
joined by ``x`` (``224x224``), booleans as ``true``/``false``; a format
applies Python's format spec, except for booleans, where ``{flag:a}`` prints
``a`` when true and nothing when false, and ``{flag:yes|no}`` chooses.
The result is made file-name safe (other characters become ``-``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

from medcam.errors import SpecError
from medcam.registry import did_you_mean

from .config import TrainConfig

__all__ = ["render_name", "render_path", "name_fields", "format_value", "slug"]

_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=-]+")
PREFIXES = ("spec", "train", "data")


def slug(text: str) -> str:
    """``text`` with every run of characters other than letters, digits and ``_ . + = -`` replaced by ``-``."""
    return _UNSAFE.sub("-", text).strip("-")


def format_value(value: Any, fmt: str = "") -> str:
    """How a field's value prints in a name (see the module docstring)."""
    if isinstance(value, bool):
        if fmt:
            yes, _, no = fmt.partition("|")
            return yes if value else no
        return "true" if value else "false"
    if fmt:
        try:
            return format(value, fmt)
        except (TypeError, ValueError) as err:
            raise SpecError(f"format '{fmt}' does not apply to {value!r}: {err}") from err
    if value is None:
        return "none"
    if isinstance(value, Mapping):
        name = value.get("name")
        if isinstance(name, str):
            return name
        return "-".join(f"{k}={format_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        joiner = "x" if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) else "-"
        return joiner.join(format_value(v) for v in value)
    return str(value)


def name_fields(spec: Mapping[str, Any], config: TrainConfig | Mapping[str, Any] | None = None,
                data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The namespaces a template reads: ``{"spec": ..., "train": ..., "data": ...}``.

    ``data`` is a :class:`~medcam.engine.runs.DataConfig` as a dict (its
    ``options`` are lifted to the top of the data namespace) plus any extra
    facts such as ``folds``.
    """
    train = TrainConfig.from_dict(config).to_dict() if not isinstance(config, Mapping) else dict(config)
    flat = dict(data or {})
    for key, value in dict(flat.pop("options", None) or {}).items():
        flat.setdefault(key, value)
    return {"spec": dict(spec), "train": train, "data": flat}


def _lookup(field: str, fields: Mapping[str, Mapping[str, Any]], template: str) -> Any:
    from medcam.spec_path import get_path, split_path

    parts = split_path(field)
    if parts[0] in PREFIXES and len(parts) > 1:
        return get_path(fields[parts[0]], parts[1:], what=parts[0])
    for space in PREFIXES:
        if parts[0] in fields[space]:
            return get_path(fields[space], parts, what=space)
    known = [k for space in PREFIXES for k in fields[space]]
    raise SpecError(f"name template '{template}': unknown field '{field}'{did_you_mean(parts[0], known)} "
                    f"(fields: spec keys and paths such as loss.attention_box.lam, training settings such as lr, "
                    f"data settings such as dataset or task, and tag)")


def render_name(template: str, *, spec: Mapping[str, Any], config: TrainConfig | Mapping[str, Any] | None = None,
                data: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> str:
    """The run name for ``template`` (see the module docstring).

    Args:
        spec: the resolved model spec.
        config: the training settings.
        data: the data settings (``DataConfig.to_dict()``, plus e.g. ``folds``).
        extra: further top-level fields, e.g. ``{"tag": ..., "name": ...}`` (they win over the spec's).

    Raises:
        SpecError: an unknown field (with close matches), an unbalanced brace,
            a bad format, or a template that renders to an empty name.
    """
    if not isinstance(template, str) or not template.strip():
        raise SpecError(f"name template: expected a non-empty string, got {template!r}")
    fields = name_fields(spec, config, data)
    if extra:
        fields["data"] = {**fields["data"], **extra}
        fields["spec"] = {k: v for k, v in fields["spec"].items() if k not in extra}
    out: list[str] = []
    pos = 0
    for match in _FIELD.finditer(template):
        out.append(template[pos:match.start()])
        pos = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            out.append(token[0])
            continue
        if match.group(1) is None:
            raise SpecError(f"name template '{template}': unbalanced '{token}' at position {match.start()} "
                            f"(write '{token}{token}' for a literal brace)")
        field, _, fmt = match.group(1).partition(":")
        if not field.strip():
            raise SpecError(f"name template '{template}': empty field '{{}}' at position {match.start()}")
        try:
            out.append(format_value(_lookup(field.strip(), fields, template), fmt))
        except SpecError as err:
            text = str(err)
            raise SpecError(text if text.startswith("name template") else
                            f"name template '{template}', field '{field.strip()}': {text}") from None
    out.append(template[pos:])
    name = slug("".join(out))
    if not name:
        raise SpecError(f"name template '{template}' gives an empty name")
    return name


def render_path(template: str | os.PathLike[str], **fields: Any) -> Path:
    """A folder path whose components may hold fields (``runs/{name}``, ``results/{backbone}/{seed}``).

    Each component with a ``{`` is rendered by :func:`render_name` (so made file-name
    safe); the others, and the separators, stay as given. ``fields`` are
    :func:`render_name`'s keyword arguments.
    """
    path = Path(template)
    parts = [render_name(part, **fields) if "{" in part or "}" in part else part for part in path.parts]
    return Path(*parts)
