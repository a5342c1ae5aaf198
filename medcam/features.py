"""The backbone contract: feature levels and their metadata.

A medcam backbone is an ``nn.Module`` whose ``forward(x)`` takes images
``(B, in_chans, H, W)`` and returns a ``list`` of feature maps, one per level,
``(B, C_i, H / s_i, W / s_i)`` (ceil for sizes not divisible by the stride),
ordered by increasing stride. Token models (PVT, VMamba) reshape their tokens
to maps so heads, CAMs and decoders never special-case them.

It carries ``feature_info``, a :class:`FeatureInfo`: the channels ``C_i`` and
strides ``s_i`` of the levels it returns, the module that produces each level
(a dotted name inside the backbone, usable for hooks), and ``cam_level``, the
index of the level CAM methods target by default.

Optionally a backbone implements ``forward_from(x, level)``: given the output
of level ``level`` it runs the remaining stages and returns the later levels
(used by WSOL losses that re-score a masked feature map). When its levels are
exactly what the next stage consumes, ``forward_from(levels[k], k)`` equals
``levels[k+1:]``; a backbone whose levels pass through an extra output norm
sets ``forward_from_exact = False`` (the later stages then see the normed map).

This module is torch-free so registry metadata can use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .errors import SpecError

__all__ = ["FeatureLevel", "FeatureInfo", "normalize_out_indices"]


@dataclass(frozen=True)
class FeatureLevel:
    """One level a backbone returns: ``channels``, ``stride`` (pixels per map cell)
    and ``module`` (dotted module name inside the backbone, "" if none)."""

    channels: int
    stride: int
    module: str = ""


class FeatureInfo:
    """Channels, strides and module names of the levels a backbone returns.

    Args:
        levels: the levels, in the order ``forward`` returns them (increasing stride).
        cam_level: index (negative allowed) of the default level for CAM methods.
    """

    def __init__(self, levels: Iterable[FeatureLevel | dict[str, Any]], cam_level: int = -1):
        parsed = [lv if isinstance(lv, FeatureLevel) else FeatureLevel(**lv) for lv in levels]
        if not parsed:
            raise ValueError("a backbone must return at least one feature level")
        for i, lv in enumerate(parsed):
            if lv.channels <= 0 or lv.stride <= 0:
                raise ValueError(f"feature level {i}: channels and stride must be positive, got {lv}")
            if i and lv.stride < parsed[i - 1].stride:
                raise ValueError(f"feature levels must be ordered by increasing stride, got {[l.stride for l in parsed]}")
        self.levels: tuple[FeatureLevel, ...] = tuple(parsed)
        if not -len(parsed) <= cam_level < len(parsed):
            raise ValueError(f"cam_level {cam_level} out of range for {len(parsed)} levels")
        self.cam_level = cam_level % len(parsed)

    def __len__(self) -> int:
        return len(self.levels)

    def __getitem__(self, index: int) -> FeatureLevel:
        return self.levels[index]

    def __iter__(self):
        return iter(self.levels)

    def channels(self) -> list[int]:
        return [lv.channels for lv in self.levels]

    def strides(self) -> list[int]:
        return [lv.stride for lv in self.levels]

    def modules(self) -> list[str]:
        return [lv.module for lv in self.levels]

    def to_dict(self) -> dict[str, Any]:
        return {"channels": self.channels(), "strides": self.strides(), "modules": self.modules(),
                "cam_level": self.cam_level}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureInfo) and (self.levels, self.cam_level) == (other.levels, other.cam_level)

    def __repr__(self) -> str:
        return f"FeatureInfo(channels={self.channels()}, strides={self.strides()}, cam_level={self.cam_level})"


def normalize_out_indices(out_indices: Sequence[int] | int | None, num_levels: int) -> tuple[int, ...]:
    """Validate ``out_indices`` against ``num_levels`` available levels, eagerly.

    ``None`` means all levels; an int ``n`` means the last ``n``; a sequence may
    hold negative indices. Out-of-range or repeated indices raise
    :class:`SpecError` naming the valid range (never silently dropped).
    Returns sorted non-negative indices.
    """
    if out_indices is None:
        return tuple(range(num_levels))
    if isinstance(out_indices, bool):
        raise SpecError(f"out_indices must be a list of ints, got {out_indices!r}")
    if isinstance(out_indices, int):
        if not 1 <= out_indices <= num_levels:
            raise SpecError(f"out_indices={out_indices}: asks for the last {out_indices} levels, "
                            f"but this backbone has {num_levels}")
        return tuple(range(num_levels - out_indices, num_levels))
    result = []
    for raw in out_indices:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise SpecError(f"out_indices must hold ints, got {raw!r}")
        if not -num_levels <= raw < num_levels:
            raise SpecError(f"out_indices: index {raw} is out of range; this backbone has {num_levels} levels "
                            f"(valid: 0..{num_levels - 1} or -{num_levels}..-1)")
        result.append(raw % num_levels)
    if len(set(result)) != len(result):
        raise SpecError(f"out_indices {list(out_indices)} name a level twice")
    if not result:
        raise SpecError("out_indices is empty")
    return tuple(sorted(result))
