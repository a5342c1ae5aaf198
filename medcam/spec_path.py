"""Dotted paths into specs: ``loss.attention_box.lam``, ``backbone.name``, ``preprocess.size``.

One syntax names a value inside a (resolved or raw) spec wherever medcam needs
it: the ``replace`` marker of a spec that overrides a preset, and the fields of
a run name template (:mod:`medcam.engine.naming`)::

    get_path(spec, "loss.attention_box.lam")      # the lambda of the loss part named attention_box
    get_path(spec, "loss[attention_box].lam")     # the same ([...] is accepted for list items)
    get_path(spec, "loss.0.weight")               # list items also by position
    get_path(spec, "backbone")                    # a part: the whole mapping

A segment selects a mapping's key; in a list it selects the item at that
position (digits) or the *named part* with that name (a mapping whose
``name`` is it, or the bare string). Names compare normalized (lowercase,
``-`` -> ``_``), as registry names do.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from .errors import SpecError
from .registry import did_you_mean

__all__ = ["split_path", "get_path", "has_path", "part_name", "MISSING"]

_BRACKET = re.compile(r"\[([^\]]*)\]")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: Returned by :func:`get_path` with ``default=MISSING`` semantics (see :func:`has_path`).
MISSING: Any = _Missing()


def _norm(text: str) -> str:
    return text.strip().lower().replace("-", "_")


def split_path(path: str) -> list[str]:
    """``"loss[attention_box].lam"`` -> ``["loss", "attention_box", "lam"]``.

    Raises:
        SpecError: an empty path or an empty segment (``"loss..lam"``).
    """
    if not isinstance(path, str) or not path.strip():
        raise SpecError(f"expected a path such as 'loss.attention_box.lam', got {path!r}")
    text = _BRACKET.sub(lambda m: "." + m.group(1), path.strip())
    parts = text.split(".")
    if any(not p.strip() for p in parts):
        raise SpecError(f"'{path}': empty segment in the path (segments are separated by '.')")
    return [p.strip() for p in parts]


def part_name(item: Any) -> str | None:
    """The normalized name of a named part (``"ce"`` or ``{"name": "ce", ...}``), else None."""
    if isinstance(item, str) and item.strip():
        return _norm(item)
    if isinstance(item, Mapping) and isinstance(item.get("name"), str) and item["name"].strip():
        return _norm(item["name"])
    return None


def _step(value: Any, segment: str, where: str) -> Any:
    """One segment down from ``value``; ``MISSING`` when absent. ``where`` is the path so far."""
    if isinstance(value, Mapping):
        if segment in value:
            return value[segment]
        return MISSING
    if isinstance(value, (list, tuple)):
        if segment.lstrip("-").isdigit():
            index = int(segment)
            return value[index] if -len(value) <= index < len(value) else MISSING
        matches = [item for item in value if part_name(item) == _norm(segment)]
        if len(matches) > 1:
            raise SpecError(f"{where}: {len(matches)} parts are named '{segment}'; select one by position "
                            f"({where}.0, {where}.1, ...)")
        return matches[0] if matches else MISSING
    if isinstance(value, str) and segment == "name":  # a part given by its name alone
        return value
    return MISSING


def _choices(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [str(k) for k in value]
    if isinstance(value, (list, tuple)):
        return [n for n in (part_name(item) for item in value) if n] + [str(i) for i in range(len(value))]
    return []


def get_path(spec: Mapping[str, Any], path: str | Sequence[str], *, what: str = "spec") -> Any:
    """The value at ``path`` in ``spec``.

    Raises:
        SpecError: a segment that does not exist, naming the segment, the close
            matches and the keys (or part names) available there.
    """
    parts = split_path(path) if isinstance(path, str) else list(path)
    text = path if isinstance(path, str) else ".".join(parts)
    value: Any = spec
    walked: list[str] = []
    for segment in parts:
        where = ".".join(walked) or what
        nxt = _step(value, segment, where)
        if nxt is MISSING:
            choices = _choices(value)
            if not choices:
                raise SpecError(f"'{text}': {where} is {value!r}, which has no '{segment}'")
            raise SpecError(f"'{text}': {where} has no '{segment}'{did_you_mean(segment, choices)} "
                            f"(there: {', '.join(choices)})")
        value = nxt
        walked.append(segment)
    return value


def has_path(spec: Mapping[str, Any], path: str | Sequence[str]) -> bool:
    """Whether :func:`get_path` finds ``path`` (a path naming two parts still raises)."""
    parts = split_path(path) if isinstance(path, str) else list(path)
    value: Any = spec
    for i, segment in enumerate(parts):
        value = _step(value, segment, ".".join(parts[:i]) or "spec")
        if value is MISSING:
            return False
    return True
