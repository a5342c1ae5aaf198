"""Random training augmentations that keep image, mask and boxes consistent.

They run after the deterministic preprocessing (:mod:`medcam.data.preprocess`),
on a sample dict with

* ``"image"``: ``(C, H, W)`` float in [0, 1],
* ``"mask"`` (optional): ``(H, W)`` bool,
* ``"boxes"`` (optional): ``(N, 4)`` float ``(x0, y0, x1, y1)`` in pixels of
  the image, exclusive ``x1``/``y1``, and ``"box_labels"`` ``(N,)``.

Geometric transforms move all three together: the mask is resampled with the
same mapping (nearest neighbour), boxes have their corners mapped and are
replaced by the box around them, clipped to the image; boxes pushed fully
outside are dropped with their labels. (Datasets whose boxes come from a mask
recompute them from the transformed mask instead, which is exact.)

Randomness comes from torch's generator (``generator=`` or the global one),
so ``torch.manual_seed`` and DataLoader worker seeding make runs repeatable.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import SpecError
from ..params import check_keys
from ..registry import did_you_mean

__all__ = ["Augment", "AUGMENT_PRESETS", "hflip", "affine", "intensity"]

#: Named augmentation settings (``augment="default"``).
AUGMENT_PRESETS: dict[str, dict[str, Any]] = {
    "none": {"random_crop": False},
    "flip": {"hflip": 0.5},
    "light": {"hflip": 0.5, "degrees": 5.0, "translate": 0.03, "scale": [0.95, 1.05],
              "brightness": 0.05, "contrast": 0.05},
    "default": {"hflip": 0.5, "degrees": 10.0, "translate": 0.05, "scale": [0.9, 1.1],
                "brightness": 0.1, "contrast": 0.1},
}


def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator))


# ---------------------------------------------------------------------- single operations
def hflip(sample: Mapping[str, Any]) -> dict[str, Any]:
    """Mirror left-right: image and mask columns reversed, box ``x -> W - x``."""
    out = dict(sample)
    image = sample["image"]
    w = image.shape[-1]
    out["image"] = image.flip(-1)
    if sample.get("mask") is not None:
        out["mask"] = sample["mask"].flip(-1)
    if sample.get("boxes") is not None and len(sample["boxes"]):
        b = sample["boxes"]
        out["boxes"] = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
    return out


def vflip(sample: Mapping[str, Any]) -> dict[str, Any]:
    """Mirror top-bottom: image and mask rows reversed, box ``y -> H - y``."""
    out = dict(sample)
    image = sample["image"]
    h = image.shape[-2]
    out["image"] = image.flip(-2)
    if sample.get("mask") is not None:
        out["mask"] = sample["mask"].flip(-2)
    if sample.get("boxes") is not None and len(sample["boxes"]):
        b = sample["boxes"]
        out["boxes"] = torch.stack([b[:, 0], h - b[:, 3], b[:, 2], h - b[:, 1]], 1)
    return out


def affine(sample: Mapping[str, Any], angle: float, translate: tuple[float, float], scale: float) -> dict[str, Any]:
    """Rotate by ``angle`` degrees about the image centre, scale, then shift by ``translate`` ``(tx, ty)`` pixels.

    A point ``p`` (pixel-edge coordinates) moves to ``c + t + s R(angle) (p - c)``;
    the image is resampled bilinearly with zero fill, the mask by nearest
    neighbour, boxes by their mapped corners.
    """
    image = sample["image"]
    h, w = image.shape[-2:]
    cx, cy = w / 2.0, h / 2.0
    tx, ty = float(translate[0]), float(translate[1])
    a = math.radians(angle)
    cos, sin = math.cos(a), math.sin(a)
    # inverse map: output pixel centre -> input position
    ys = torch.arange(h, dtype=torch.float32) + 0.5
    xs = torch.arange(w, dtype=torch.float32) + 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    dx, dy = (gx - cx - tx) / scale, (gy - cy - ty) / scale
    in_x = cos * dx + sin * dy + cx
    in_y = -sin * dx + cos * dy + cy
    grid = torch.stack([2 * in_x / w - 1, 2 * in_y / h - 1], -1)[None]
    out = dict(sample)
    out["image"] = F.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode="zeros",
                                 align_corners=False)[0].clamp_(0.0, 1.0)
    if sample.get("mask") is not None:
        m = sample["mask"][None, None].float()
        out["mask"] = F.grid_sample(m, grid, mode="nearest", padding_mode="zeros", align_corners=False)[0, 0] > 0.5
    boxes = sample.get("boxes")
    if boxes is not None and len(boxes):
        corners = torch.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [0, 3]], boxes[:, [2, 3]]], 1)  # (N,4,2)
        px, py = corners[..., 0] - cx, corners[..., 1] - cy
        qx = scale * (cos * px - sin * py) + cx + tx
        qy = scale * (sin * px + cos * py) + cy + ty
        new = torch.stack([qx.amin(1).clamp(0, w), qy.amin(1).clamp(0, h),
                           qx.amax(1).clamp(0, w), qy.amax(1).clamp(0, h)], 1)
        keep = (new[:, 2] > new[:, 0]) & (new[:, 3] > new[:, 1])
        out["boxes"] = new[keep]
        if sample.get("box_labels") is not None:
            out["box_labels"] = sample["box_labels"][keep]
    return out


def intensity(image: Tensor, brightness: float = 0.0, contrast: float = 1.0, gamma: float = 1.0) -> Tensor:
    """``clip(((image ** gamma) - mean) * contrast + mean + brightness, 0, 1)`` for ``(C, H, W)`` in [0, 1]."""
    out = image.clamp(0.0, 1.0)
    if gamma != 1.0:
        out = out.pow(gamma)
    if contrast != 1.0:
        mean = out.mean()
        out = (out - mean) * contrast + mean
    if brightness:
        out = out + brightness
    return out.clamp(0.0, 1.0)


# ---------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class Augment:
    """Random training augmentation settings; call it on a sample dict.

    Attributes:
        hflip, vflip: probabilities of a left-right / top-bottom mirror.
        degrees: rotation drawn from ``[-degrees, degrees]``.
        translate: shift drawn from ``[-t, t]`` times the width / height.
        scale: zoom drawn from ``[lo, hi]``.
        brightness: additive shift drawn from ``[-b, b]``.
        contrast: factor drawn from ``[1 - c, 1 + c]`` around the image mean.
        gamma: exponent ``exp(u)``, ``u`` drawn from ``[-g, g]``.
        random_crop: when the preprocessing crops (``resize_to`` > ``size``, or
            ``resize: none``), take a random window instead of the centre one.
    """

    hflip: float = 0.0
    vflip: float = 0.0
    degrees: float = 0.0
    translate: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    brightness: float = 0.0
    contrast: float = 0.0
    gamma: float = 0.0
    random_crop: bool = True

    def __post_init__(self) -> None:
        for name in ("hflip", "vflip"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise SpecError(f"augment.{name}: a probability in [0, 1], got {p!r}")
        if not 0.0 <= self.degrees <= 180.0:
            raise SpecError(f"augment.degrees: expected 0..180, got {self.degrees!r}")
        if not 0.0 <= self.translate <= 0.5:
            raise SpecError(f"augment.translate: a fraction of the image size in [0, 0.5], got {self.translate!r}")
        lo, hi = self.scale
        if not 0.0 < lo <= hi:
            raise SpecError(f"augment.scale: expected [low, high] with 0 < low <= high, got {list(self.scale)!r}")
        for name in ("brightness", "contrast"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise SpecError(f"augment.{name}: expected a value in [0, 1), got {v!r}")
        if not 0.0 <= self.gamma <= 2.0:
            raise SpecError(f"augment.gamma: expected 0..2, got {self.gamma!r}")

    @classmethod
    def from_config(cls, config: Any) -> "Augment | None":
        """Settings from ``None``/``False`` (no augmentation), a preset name
        (:data:`AUGMENT_PRESETS`), a mapping of fields (optionally with
        ``preset``) or an :class:`Augment`. Unknown keys raise :class:`SpecError`.
        """
        if config is None or config is False:
            return None
        if isinstance(config, Augment):
            return config
        if config is True:
            config = "default"
        if isinstance(config, str):
            if config not in AUGMENT_PRESETS:
                raise SpecError(f"augment: unknown preset {config!r}{did_you_mean(config, AUGMENT_PRESETS)} "
                                f"(presets: {', '.join(AUGMENT_PRESETS)})")
            config = {"preset": config}
        if not isinstance(config, Mapping):
            raise SpecError(f"augment: expected a preset name or a mapping, got {config!r}")
        names = [f.name for f in fields(cls)]
        values: dict[str, Any] = {}
        preset = config.get("preset")
        if preset is not None:
            if preset not in AUGMENT_PRESETS:
                raise SpecError(f"augment.preset: unknown preset {preset!r}{did_you_mean(str(preset), AUGMENT_PRESETS)}")
            values.update(AUGMENT_PRESETS[preset])
        check_keys(config, ["preset", *names], "augment")
        values.update({key: value for key, value in config.items() if key != "preset"})
        if "scale" in values:
            s = values["scale"]
            if isinstance(s, (int, float)) and not isinstance(s, bool):
                s = [1.0 - float(s), 1.0 + float(s)]
            if not isinstance(s, (list, tuple)) or len(s) != 2:
                raise SpecError(f"augment.scale: expected [low, high] or one number d for [1-d, 1+d], got {s!r}")
            values["scale"] = (float(s[0]), float(s[1]))
        for key, value in values.items():
            if key in ("scale", "random_crop"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecError(f"augment.{key}: expected a number, got {value!r}")
            values[key] = float(value)
        if "random_crop" in values and not isinstance(values["random_crop"], bool):
            raise SpecError(f"augment.random_crop: expected true or false, got {values['random_crop']!r}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["scale"] = list(self.scale)
        return out

    @property
    def geometric(self) -> bool:
        """True if any transform moves pixels (flip, rotation, shift or zoom)."""
        return bool(self.hflip or self.vflip or self.degrees or self.translate or self.scale != (1.0, 1.0))

    def __call__(self, sample: Mapping[str, Any], generator: torch.Generator | None = None) -> dict[str, Any]:
        """One random draw applied to ``sample`` (see the module docstring); returns a new dict."""
        out = dict(sample)
        if self.hflip and float(torch.rand((), generator=generator)) < self.hflip:
            out = hflip(out)
        if self.vflip and float(torch.rand((), generator=generator)) < self.vflip:
            out = vflip(out)
        if self.degrees or self.translate or self.scale != (1.0, 1.0):
            h, w = out["image"].shape[-2:]
            angle = _uniform(-self.degrees, self.degrees, generator) if self.degrees else 0.0
            t = (_uniform(-self.translate, self.translate, generator) * w,
                 _uniform(-self.translate, self.translate, generator) * h) if self.translate else (0.0, 0.0)
            s = _uniform(*self.scale, generator) if self.scale != (1.0, 1.0) else 1.0
            out = affine(out, angle, t, s)
        if self.brightness or self.contrast or self.gamma:
            b = _uniform(-self.brightness, self.brightness, generator) if self.brightness else 0.0
            c = _uniform(1 - self.contrast, 1 + self.contrast, generator) if self.contrast else 1.0
            g = math.exp(_uniform(-self.gamma, self.gamma, generator)) if self.gamma else 1.0
            out["image"] = intensity(out["image"], b, c, g)
        return out
