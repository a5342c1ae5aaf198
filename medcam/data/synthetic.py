"""A generated breast-ultrasound-like lesion data set, so demos and tests run anywhere.

Three classes in BUSI's label order (``normal``, ``benign``, ``malignant``, as
:data:`medcam.data.busi.BUSI_CLASSES`), drawn from the sonographic features
radiologists use to tell them apart (BI-RADS ultrasound lexicon; Stavros et al.,
Radiology 196:123-134, 1995):

* **normal**: speckled, layered breast tissue with no lesion (empty mask);
* **benign**: a dark (hypoechoic), homogeneous, oval lesion, *wider than tall*,
  with a smooth margin and posterior acoustic *enhancement* (a brighter band below it);
* **malignant**: a dark, heterogeneous lesion with an *irregular, spiculated*
  margin, often *taller than wide*, with posterior acoustic *shadowing* (a darker band below).

The parameters overlap between classes (size, contrast, orientation, noise),
so the task is learnable but not trivial. Every item is a pure function of
``(seed, index)``: generated lazily, identical in any order or process.

Items follow the data-set contract (``docs/architecture.md``, "Batch")::

    {"image": (C, H, W) float in [0, 1], "label": int, "mask": (H, W) bool,
     "boxes": (N, 4) float (x0, y0, x1, y1, exclusive), "path": str, "index": int}

:func:`write_busi_folder` writes the same images as a BUSI-layout folder
(``<class>/<class> (i).png`` and ``<class> (i)_mask.png``), so every BUSI
reader works on it unchanged.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ..boxes import component_boxes, connected_components
from ..errors import DataError
from ..progress import show_bar

__all__ = ["SyntheticLesions", "CLASS_NAMES", "write_busi_folder", "render_lesion_image"]

CLASS_NAMES: tuple[str, ...] = ("normal", "benign", "malignant")
NORMAL, BENIGN, MALIGNANT = 0, 1, 2


def _smooth_noise(size: int, cells: int, g: torch.Generator) -> Tensor:
    """Low-frequency noise ``(size, size)`` with about ``cells`` blobs per side, unit variance."""
    coarse = torch.randn(1, 1, cells + 1, cells + 1, generator=g)
    fine = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)[0, 0]
    return fine / fine.std().clamp_min(1e-6)


def _speckle(size: int, g: torch.Generator) -> Tensor:
    """Multiplicative speckle ``(size, size)``, mean ~1: the magnitude of a complex Gaussian
    (Rayleigh-distributed, as fully developed ultrasound speckle), lightly blurred."""
    re, im = torch.randn(2, 1, 1, size, size, generator=g)
    mag = torch.sqrt(re**2 + im**2)
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    mag = F.conv2d(mag, kernel[None, None], padding=1)[0, 0]
    return mag / mag.mean()


def _u(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def render_lesion_image(label: int, size: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """One greyscale image ``(size, size)`` in [0, 1] and its lesion mask ``(size, size)`` bool.

    ``label``: 0 normal, 1 benign, 2 malignant (see the module docstring).
    """
    if label not in (BENIGN, MALIGNANT, NORMAL):
        raise DataError(f"synthetic lesion label must be 0 (normal), 1 (benign) or 2 (malignant), got {label}")
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    # tissue: skin line, layered glandular tissue, depth attenuation
    layers = torch.sin(2 * math.pi * (ys * _u(g, 2.0, 5.0) + 0.15 * _smooth_noise(size, 3, g) * 0.3)
                       + _u(g, 0, 2 * math.pi))
    tissue = 0.45 + 0.12 * layers + 0.10 * _smooth_noise(size, 6, g)
    tissue = tissue + 0.25 * torch.exp(-((ys - _u(g, 0.02, 0.08)) / 0.03) ** 2)  # bright skin line
    tissue = tissue * (1.0 - _u(g, 0.25, 0.5) * ys)  # attenuation with depth
    mask = torch.zeros(size, size, dtype=torch.bool)
    if label != NORMAL:
        cx, cy = _u(g, 0.3, 0.7), _u(g, 0.3, 0.6)
        r = _u(g, 0.09, 0.2)
        if label == BENIGN:  # oval, wider than tall (aspect overlaps with malignant)
            ax, ay = r * _u(g, 1.05, 1.6), r * _u(g, 0.7, 1.0)
        else:  # tending to taller than wide
            ax, ay = r * _u(g, 0.75, 1.15), r * _u(g, 0.9, 1.3)
        theta = torch.atan2((ys - cy) / ay, (xs - cx) / ax)
        dist = torch.sqrt(((xs - cx) / ax) ** 2 + ((ys - cy) / ay) ** 2)
        if label == BENIGN:
            boundary = 1.0 + 0.05 * torch.cos(2 * theta + _u(g, 0, 6.3))  # smooth, gently lobulated
        else:
            boundary = torch.ones_like(theta)
            for k in range(3, 8):  # angular, irregular margin
                boundary = boundary + _u(g, 0.04, 0.12) / math.sqrt(k - 2) * torch.cos(k * theta + _u(g, 0, 6.3))
            n_spikes = int(_u(g, 5, 12))
            boundary = boundary + _u(g, 0.12, 0.3) * torch.cos(n_spikes * theta + _u(g, 0, 6.3)).clamp_min(0) ** 6
        inside = dist <= boundary
        mask = inside
        darkness = _u(g, 0.55, 0.85)
        edge = torch.sigmoid((boundary - dist) / (0.04 if label == BENIGN else 0.015))
        interior = 1.0 - darkness * edge
        if label == MALIGNANT:  # heterogeneous internal echoes
            interior = interior + 0.15 * edge * _smooth_noise(size, 12, g)
        tissue = tissue * interior.clamp(0.05, 1.0)
        # posterior acoustic feature: a band below the lesion, as wide as the lesion
        below = torch.sigmoid((ys - cy) / 0.02) * torch.exp(-(((xs - cx) / (ax * 0.9)) ** 2))
        below = below * torch.exp(-((ys - cy - ay) / _u(g, 0.2, 0.4)).clamp_min(0))
        strength = _u(g, 0.15, 0.45)
        sign = 1.0 if label == BENIGN else -1.0  # enhancement below benign lesions, shadowing below malignant
        tissue = tissue * (1 + sign * strength * below * (1 - edge))
    image = (tissue.clamp_min(0) * _speckle(size, g)).clamp(0, 1)
    gain = _u(g, 0.8, 1.2)
    return (image * gain).clamp(0, 1), mask


class SyntheticLesions(Dataset):
    """Generated lesion images: ``normal`` / ``benign`` / ``malignant`` (see the module docstring).

    Args:
        num_per_class: images per class, or one count per class in :data:`CLASS_NAMES` order.
        size: image height and width in pixels.
        channels: 1 (grey) or 3 (grey replicated, for ImageNet-style models).
        seed: images are a function of ``(seed, index)``.
        transform: optional callable on the item dict (e.g. :class:`medcam.data.transforms.Augment`),
            applied after generation; it must keep the keys.
    """

    class_names: tuple[str, ...] = CLASS_NAMES

    def __init__(self, num_per_class: int | Sequence[int] = 50, *, size: int = 128, channels: int = 3, seed: int = 0,
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        counts = [num_per_class] * 3 if isinstance(num_per_class, int) else list(num_per_class)
        if len(counts) != 3 or any((not isinstance(c, int)) or c < 0 for c in counts) or sum(counts) == 0:
            raise DataError(f"num_per_class: expected a count >= 0 per class {CLASS_NAMES}, got {num_per_class!r}")
        if size < 16:
            raise DataError(f"size must be at least 16 pixels, got {size}")
        if channels not in (1, 3):
            raise DataError(f"channels must be 1 or 3, got {channels}")
        self.size, self.channels, self.seed, self.transform = size, channels, seed, transform
        order = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
        np.random.default_rng(seed).shuffle(order)
        self.labels: list[int] = [int(v) for v in order]

    def __len__(self) -> int:
        return len(self.labels)

    def generate(self, index: int) -> tuple[Tensor, Tensor]:
        """Image ``(size, size)`` in [0, 1] and mask ``(size, size)`` bool of item ``index`` (no transform)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} synthetic images")
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0]))
        return render_lesion_image(self.labels[index], self.size, g)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, mask = self.generate(index)
        labels, counts = connected_components(mask[None])
        item = {"image": image[None].expand(self.channels, -1, -1).contiguous(), "label": self.labels[index],
                "mask": mask, "boxes": component_boxes(labels, counts)[0],
                "path": f"synthetic/{CLASS_NAMES[self.labels[index]]}/{index}", "index": index}
        return self.transform(item) if self.transform is not None else item


def write_busi_folder(root: str | os.PathLike[str], num_per_class: int | Sequence[int] = 60, *, size: int = 160,
                      seed: int = 0, progress: bool = False) -> Path:
    """Write a :class:`SyntheticLesions` set in the BUSI layout and return ``root``.

    ``root/<class>/<class> (<i>).png`` (8-bit grey) and ``<class> (<i>)_mask.png``
    (0/255; empty for ``normal``), ``i`` from 1 per class, as in the original data set.
    Existing files with those names are overwritten.
    """
    from PIL import Image
    from tqdm.auto import tqdm

    data = SyntheticLesions(num_per_class, size=size, channels=1, seed=seed)
    root = Path(root)
    counters = {name: 0 for name in CLASS_NAMES}
    for name in CLASS_NAMES:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(len(data)), desc="generating synthetic lesions", disable=not show_bar(progress), leave=False):
        image, mask = data.generate(i)
        name = CLASS_NAMES[data.labels[i]]
        counters[name] += 1
        stem = f"{name} ({counters[name]})"
        Image.fromarray((image.numpy() * 255).round().astype(np.uint8)).save(root / name / f"{stem}.png")
        Image.fromarray(mask.numpy().astype(np.uint8) * 255).save(root / name / f"{stem}_mask.png")
    return root
