"""``lung_fields``: a training-free lung-field segmenter for frontal chest radiographs.

No weights, no training data: a fixed image-processing pipeline (numpy, SciPy,
scikit-image) behind the segmenter contract, so that a chest X-ray classifier
can get lung boxes offline (``attention_box`` with ``segmenter: lung_fields``,
``medcam explain --segmenter lung_fields``, the web app, pseudo-labels for a
U-Net with ``medcam segment``).

Per image, at a fixed working size (``work_size`` x ``work_size``):

1. **grey and contrast normalization**: channel mean; a 1st-99th percentile
   stretch to [0, 1] (invariant to any increasing affine map of the input, so
   the spec's ``preprocess.mean/std`` do not change the answer); CLAHE
   (Zuiderveld 1994); Gaussian smoothing (sigma 2 px).
2. **lung seeds**: inside two prior ellipses where the lungs of a PA/AP film
   lie (centres at 42 % of the height and 30 % / 70 % of the width), the
   pixels darker than the ellipse's 40th percentile, opened, largest component.
3. **body mask**: outside air is the pixels much darker than the seeds
   (below 0.6 x their 5th percentile) connected to the image border; it is
   background, with a border band, a central mediastinal strip and the
   brightest pixels (above the 85th percentile: bone, heart, diaphragm, abdomen).
4. **marker-controlled watershed** (Beucher and Meyer 1993) of the Sobel
   gradient magnitude from the two lung seeds and the background marker: each
   lung grows until the strongest edge towards the chest wall, mediastinum or
   diaphragm.
5. **thresholding and clean-up**: each lung region keeps the pixels darker than
   ``seed median + 0.6 (85th percentile - seed median)`` (grey-level
   thresholding inside the thorax, as Armato et al. 1998), is opened, reduced to
   its largest component, and its holes are filled (ribs, vessels, devices).

The output is the signed distance to the mask boundary (working-size pixels,
positive inside) divided by ``temperature``: logits whose ``sigmoid > 0.5`` is
exactly the mask, and whose higher (lower) thresholds shrink (grow) it by
``temperature * logit(threshold)`` pixels; resized bilinearly to the input size.

It is a heuristic: it finds two dark lung fields on ordinary PA/AP films and
fails on opacified lungs, very low contrast portable films and lateral views
(measured on the NIH sample in docs/segmentation.md, ``benchmarks/lung_fields.py``).

References:
    Armato, Giger, MacMahon, Automated lung segmentation in digitized posteroanterior chest
    radiographs, Academic Radiology 5(4), 1998.
    Beucher, Meyer, The morphological approach to segmentation: the watershed transformation,
    in Mathematical Morphology in Image Processing, 1993.
    Zuiderveld, Contrast limited adaptive histogram equalization, Graphics Gems IV, 1994.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medcam.errors import ShapeError, SpecError

from .configs import LUNG_FIELDS_MIN_SIZE

__all__ = ["LungFields", "lung_field_mask", "LungFieldSettings", "MIN_SIZE", "PLAUSIBLE_FRACTION", "mask_plausibility"]

#: Smallest input side (pixels) the pipeline accepts.
MIN_SIZE = LUNG_FIELDS_MIN_SIZE
#: Foreground fraction of a plausible lung-field mask of a frontal film (both lungs of an adult PA film
#: cover roughly a quarter of it).
PLAUSIBLE_FRACTION = (0.08, 0.45)
#: Logits are clipped to +-LOGIT_CLIP (sigmoid 1 - 2e-9 at 20).
LOGIT_CLIP = 20.0


@dataclass(frozen=True)
class LungFieldSettings:
    """The pipeline's constants (module docstring); fractions are of the working image's height / width."""

    stretch_percentiles: tuple[float, float] = (1.0, 99.0)
    clahe_clip: float = 0.01
    smooth_sigma: float = 2.0
    prior_centre_y: float = 0.42
    prior_centre_x: tuple[float, float] = (0.30, 0.70)
    prior_radii: tuple[float, float] = (0.18, 0.09)
    seed_percentile: float = 40.0
    air_factor: float = 0.6
    border_band: float = 0.02
    mediastinum: tuple[float, float, float, float] = (0.25, 0.90, 0.48, 0.52)  # y0, y1, x0, x1
    bright_percentile: float = 85.0
    dark_fraction: float = 0.6
    open_iterations: int = 2


SETTINGS = LungFieldSettings()


def _largest(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a bool mask (the mask itself when empty)."""
    from scipy import ndimage as ndi

    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return labels == 1 + int(np.argmax(sizes))


def _ellipse(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _normalized(grey: np.ndarray, s: LungFieldSettings) -> np.ndarray | None:
    """Steps 1: stretched, equalized, smoothed ``(h, w)`` float in [0, 1]; None for an image without contrast."""
    from skimage import exposure, filters

    lo, hi = np.percentile(grey, s.stretch_percentiles)
    if not hi - lo > 1e-6 * max(1.0, abs(hi)):
        return None
    g = np.clip((grey - lo) / (hi - lo), 0.0, 1.0)
    g = exposure.equalize_adapthist(g, clip_limit=s.clahe_clip)
    return filters.gaussian(g, sigma=s.smooth_sigma)


def _markers(g: np.ndarray, s: LungFieldSettings) -> tuple[np.ndarray, float, float]:
    """Steps 2-3: ``(markers, lung level, bright level)``; markers ``(h, w)`` int32: 1 the lung on the image's
    left, 2 the one on its right, 3 background, 0 to be flooded."""
    from scipy import ndimage as ndi

    h, w = g.shape
    markers = np.zeros((h, w), np.int32)
    for label, cx in zip((1, 2), s.prior_centre_x):
        prior = _ellipse((h, w), s.prior_centre_y * h, cx * w, s.prior_radii[0] * h, s.prior_radii[1] * w)
        seed = prior & (g < np.percentile(g[prior], s.seed_percentile))
        seed = _largest(ndi.binary_opening(seed))
        markers[seed] = label
    seeds = markers > 0
    lung_level = float(np.median(g[seeds])) if seeds.any() else float(np.percentile(g, 20))
    bright_level = float(np.percentile(g, s.bright_percentile))
    background = np.zeros((h, w), bool)
    band = max(2, int(round(s.border_band * min(h, w))))
    background[:band] = background[-band:] = True
    background[:, :band] = background[:, -band:] = True
    y0, y1, x0, x1 = s.mediastinum
    background[int(y0 * h): int(y1 * h), int(x0 * w): int(np.ceil(x1 * w))] = True
    if seeds.any():  # outside air: much darker than the lungs and connected to the border
        air = g < s.air_factor * float(np.percentile(g[seeds], 5))
        labels, _ = ndi.label(air)
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        background |= np.isin(labels, edge[edge > 0])
    background |= ndi.binary_erosion(g > bright_level, iterations=2)
    markers[background & (markers == 0)] = 3
    return markers, lung_level, bright_level


def lung_field_mask(grey: np.ndarray, settings: LungFieldSettings = SETTINGS) -> np.ndarray:
    """Lung-field mask of one radiograph.

    Args:
        grey: ``(h, w)`` float image (any increasing affine scale; [0, 1] or normalized).
        settings: the pipeline's constants.

    Returns:
        ``(h, w)`` bool mask: up to two components (right and left lung); empty for an image
        without contrast.
    """
    from scipy import ndimage as ndi
    from skimage import filters, segmentation

    if grey.ndim != 2:
        raise ShapeError(f"lung_field_mask takes one (h, w) grey image, got shape {grey.shape}")
    g = _normalized(grey.astype(np.float64), settings)
    if g is None:
        return np.zeros(grey.shape, bool)
    markers, lung_level, bright_level = _markers(g, settings)
    regions = segmentation.watershed(filters.sobel(g), markers)
    dark = g < lung_level + settings.dark_fraction * (bright_level - lung_level)
    mask = np.zeros(g.shape, bool)
    for label in (1, 2):
        lung = (regions == label) & dark
        lung = ndi.binary_opening(lung, iterations=settings.open_iterations)
        if lung.any():
            mask |= ndi.binary_fill_holes(_largest(lung))
    return mask


def mask_plausibility(mask: np.ndarray) -> dict:
    """Is a ``(h, w)`` bool mask plausible lung fields: two components, one on each side of the image centre
    (``left_right``), foreground fraction in :data:`PLAUSIBLE_FRACTION`? Also gives the component boxes and
    their union box ``(x0, y0, x1, y1)`` (exclusive ``x1``/``y1``)."""
    from .postprocess import mask_boxes

    result = mask_boxes(torch.from_numpy(np.asarray(mask, bool))[None])
    boxes = result.boxes[0]
    n = int(result.counts[0])
    centre = mask.shape[1] / 2
    left_right = n == 2 and float(boxes[:, 2].min()) <= centre + 1 and float(boxes[:, 0].max()) >= centre - 1
    fraction = float(np.mean(mask))
    plausible = left_right and PLAUSIBLE_FRACTION[0] <= fraction <= PLAUSIBLE_FRACTION[1]
    return {"components": n, "fraction": fraction, "left_right": left_right, "plausible": plausible,
            "union": result.union[0].tolist(), "boxes": boxes.tolist()}


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """``(h, w)`` float: distance to the nearest pixel of the other side, positive inside ``mask``
    (every pixel has |d| >= 1; an empty mask gives ``-LOGIT_CLIP``, a full one ``+LOGIT_CLIP``)."""
    from scipy import ndimage as ndi

    if not mask.any():
        return np.full(mask.shape, -LOGIT_CLIP)
    if mask.all():
        return np.full(mask.shape, LOGIT_CLIP)
    return ndi.distance_transform_edt(mask) - ndi.distance_transform_edt(~mask)


class LungFields(nn.Module):
    """The lung-field pipeline as a segmenter: images ``(B, in_chans, H, W)`` -> logits ``(B, 1, H, W)``.

    No parameters and no gradient: the logits are computed on the CPU with numpy and
    returned on the input's device and dtype. Input values may be [0, 1] or normalized
    (``MedcamSegmenter`` passes ``(x - mean) / std``): the percentile stretch makes the
    result independent of any increasing affine map shared by the channels.

    Args:
        in_chans: channels of the input (their mean is the grey image).
        num_classes: must be 1 (one lung-field class; both lungs are its components).
        work_size: side of the square working image (pixels); the constants are tuned at 256.
        temperature: working-size pixels per logit unit of the signed-distance logits.
    """

    def __init__(self, in_chans: int = 1, num_classes: int = 1, work_size: int = 256, temperature: float = 2.0):
        super().__init__()
        if num_classes != 1:
            raise SpecError(f"segmenter.num_classes: lung_fields segments one class (the lung fields; both lungs "
                            f"are its components), got {num_classes}; set num_classes: 1")
        self.in_chans, self.work_size, self.temperature = int(in_chans), int(work_size), float(temperature)

    def _check(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(f"lung_fields takes images (B, {self.in_chans}, H, W), got {shape}")
        if x.shape[1] != self.in_chans:
            raise ShapeError(f"lung_fields was built for in_chans={self.in_chans} but the images have {x.shape[1]} "
                             f"channels (shape {tuple(x.shape)}); build it with in_chans={x.shape[1]}")
        if min(x.shape[-2:]) < MIN_SIZE:
            raise ShapeError(f"lung_fields needs images of at least {MIN_SIZE} x {MIN_SIZE} pixels, got "
                             f"{tuple(x.shape[-2:])} (an empty or tiny image holds no lung fields)")

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """Signed-distance logits ``(B, 1, H, W)`` of images ``(B, in_chans, H, W)``."""
        self._check(x)
        h, w = x.shape[-2:]
        grey = x.detach().float().mean(1, keepdim=True)
        if (h, w) != (self.work_size, self.work_size):
            grey = F.interpolate(grey, size=(self.work_size, self.work_size), mode="bilinear", align_corners=False,
                                 antialias=True)
        rows = []
        for image in grey[:, 0].cpu().numpy():
            mask = lung_field_mask(image)
            rows.append(np.clip(signed_distance(mask) / self.temperature, -LOGIT_CLIP, LOGIT_CLIP))
        logits = torch.from_numpy(np.stack(rows)).float()[:, None]
        if (h, w) != (self.work_size, self.work_size):
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return logits.to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)

    def extra_repr(self) -> str:
        return f"in_chans={self.in_chans}, work_size={self.work_size}, temperature={self.temperature:g}"
