"""The deterministic image preprocessing shared by training, evaluation and inference.

A spec's ``preprocess`` mapping (see :data:`medcam.spec.PREPROCESS_DEFAULTS`)
turns a raw image into the ``(C, H, W)`` tensor in [0, 1] a model sees, in
three steps:

1. **prepare** (:func:`load_prepared`): read the file (any bit depth, grey, RGB,
   RGBA; an image of more than :data:`medcam.limits.REDUCE_ABOVE_PIXELS` pixels is reduced by
   an integer factor while it is decoded, see :meth:`Preprocess.reduction`),
   optionally subtract the rolling-ball background on the greyscale image,
   convert to ``in_chans`` channels;
2. **resize** (:func:`resize_stage`): ``square`` stretches to ``resize_to``
   (default ``size``); ``pad`` keeps the aspect ratio, fits the image into
   ``resize_to`` and pads the rest with zeros; ``none`` keeps the image's own
   scale, optionally shrunk by ``downscale``;
3. **fit** (:func:`fit_stage`): center-crop (random crop when training) and/or
   zero-pad to exactly ``size``.

Every step records how pixel coordinates move in a :class:`Geometry`, so maps
and boxes computed on the model input can be mapped back onto the original
image (``geometry.map_to_original``, ``geometry.boxes_to_original``).

Training datasets (:mod:`medcam.data.base`) call exactly these functions, and
:func:`preprocess_image` is what explain / app tools call for one image, so
training and inference preprocessing cannot drift apart.

Normalization (``mean``/``std``) is *not* applied here: the model does it.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError, ShapeError
from ..limits import REDUCE_ABOVE_PIXELS
from .geometry import Geometry, transform_boxes
from .io import as_image_array, image_size, read_image, reduce_array, to_channels, to_grey

__all__ = [
    "Preprocess",
    "Geometry",
    "PreparedImage",
    "preprocess_image",
    "load_prepared",
    "load_compact",
    "expand_channels",
    "subtract_background",
    "imagej_shrink",
    "resize_stage",
    "fit_stage",
    "transform_boxes",
]


# ---------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Preprocess:
    """Resolved preprocessing settings (the geometric part of a spec's ``preprocess`` + ``in_chans``).

    Build it with :meth:`from_spec`, which validates through
    :func:`medcam.spec.resolve_preprocess` (strict keys and values).
    """

    size: tuple[int, int] = (224, 224)
    resize: str = "square"
    resize_to: tuple[int, int] | None = None
    downscale: float | None = None
    rolling_ball_radius: int | None = None
    channels: int = 3

    @classmethod
    def from_spec(cls, source: Any = None, in_chans: int | None = None) -> "Preprocess":
        """Settings from a model/segmenter spec, a ``preprocess`` mapping, or defaults.

        Args:
            source: ``None`` (defaults: 224x224 square), a :class:`Preprocess`,
                a (resolved or raw) model or segmenter spec mapping that has a
                ``preprocess`` key, or a ``preprocess`` mapping itself.
            in_chans: output channels (1 or 3); default: the spec's ``in_chans``,
                else 3. Must agree with the spec's when both are given.
        """
        from ..spec import resolve_preprocess

        if isinstance(source, Preprocess):
            if in_chans is not None and in_chans != source.channels:
                return cls(**{**asdict(source), "channels": int(in_chans)})
            return source
        if source is None:
            source = {}
        if not isinstance(source, Mapping):
            raise DataError(f"preprocess: expected a spec, a preprocess mapping or Preprocess, got {type(source).__name__}")
        raw: Any = source
        if "preprocess" in source or "in_chans" in source:  # a whole model/segmenter spec
            spec_chans = source.get("in_chans")
            if in_chans is not None and spec_chans is not None and int(spec_chans) != int(in_chans):
                raise DataError(f"in_chans={in_chans} disagrees with the spec's in_chans={spec_chans}")
            in_chans = in_chans if in_chans is not None else spec_chans
            raw = source.get("preprocess") or {}
        channels = 3 if in_chans is None else int(in_chans)
        if channels not in (1, 3):
            raise DataError(f"in_chans: images can be given 1 or 3 channels, not {channels}")
        pre = resolve_preprocess(raw, channels)
        return cls(
            size=(int(pre["size"][0]), int(pre["size"][1])),
            resize=pre["resize"],
            resize_to=None if pre["resize_to"] is None else (int(pre["resize_to"][0]), int(pre["resize_to"][1])),
            downscale=pre["downscale"],
            rolling_ball_radius=pre["rolling_ball_radius"],
            channels=channels,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (lists for sizes); also the key of the resized cache."""
        out = asdict(self)
        out["size"] = list(self.size)
        out["resize_to"] = None if self.resize_to is None else list(self.resize_to)
        return out

    def reduction(self, height: int, width: int) -> int:
        """The integer factor an ``height x width`` image is reduced by while it is read (1: full size).

        1 up to :data:`medcam.limits.REDUCE_ABOVE_PIXELS`; above, the largest ``r`` for which
        the reduced image is still at least twice what the resize step makes of
        it: ``square``: ``min(H / h, W / w) / 2`` for a canvas ``(h, w)``;
        ``pad``: ``max(H / h, W / w) / 2``; ``none``: ``downscale / 2``. The
        resize that follows (antialiased) then sees a faithful downscale, and
        memory no longer grows with the file's pixel count.
        """
        if height * width <= REDUCE_ABOVE_PIXELS:
            return 1
        if self.resize == "none":
            ratio = (self.downscale or 1.0) / 2
        else:
            th, tw = self.canvas  # type: ignore[misc]
            ratios = (height / th, width / tw)
            ratio = (min(ratios) if self.resize == "square" else max(ratios)) / 2
        return max(1, int(ratio))

    @property
    def canvas(self) -> tuple[int, int] | None:
        """``(H, W)`` the resize step produces for ``square``/``pad`` (``resize_to`` or ``size``); None for ``none``."""
        if self.resize == "none":
            return None
        return self.resize_to or self.size


# ---------------------------------------------------------------------- step 1: prepare
def imagej_shrink(radius: float) -> int:
    """ImageJ's shrink factor for a rolling-ball radius: 1 (<= 10), 2 (<= 30), 4 (<= 100), else 8."""
    return 1 if radius <= 10 else 2 if radius <= 30 else 4 if radius <= 100 else 8


def subtract_background(grey: np.ndarray, radius: int, *, shrink: int | None = None) -> np.ndarray:
    """Rolling-ball background subtraction (Sternberg, *Biomedical image processing*, IEEE Computer 1983).

    The background is the surface traced by the top of a ball of ``radius``
    pixels rolled under the intensity landscape (dark background: the X-ray
    convention of the dental seed, which used radius 180); the result is
    ``clip(grey - background, 0, 1)``.

    As in ImageJ's *Subtract Background* (which the seed's ``cv2_rolling_ball``
    ports), the ball's height is measured on the 0-255 intensity scale, and for
    large radii the background is computed on a shrunk image: the minimum over
    ``shrink x shrink`` blocks, a ball of radius ``radius / shrink``
    (``skimage.restoration.rolling_ball``), then bilinear interpolation back to
    full size. ``shrink=None`` takes ImageJ's factor (:func:`imagej_shrink`:
    8 for radius 180); ``shrink=1`` rolls the exact ball on the full image,
    whose cost grows with the area times the radius squared (minutes per
    image at radius 180 on a few hundred pixels square, see docs/data.md).

    Args:
        grey: ``(H, W)`` float in [0, 1].
        radius: ball radius in pixels of ``grey``.
        shrink: shrink factor (None: ImageJ's rule).

    Returns:
        ``(H, W)`` float32 in [0, 1].
    """
    try:
        from skimage.restoration import rolling_ball
    except ImportError as err:  # scikit-image is optional
        raise DataError("preprocess.rolling_ball_radius needs scikit-image: pip install scikit-image") from err
    scaled = np.ascontiguousarray(grey, dtype=np.float32) * 255.0
    factor = imagej_shrink(radius) if shrink is None else int(shrink)
    if factor < 1:
        raise DataError(f"rolling ball shrink factor must be >= 1, got {shrink}")
    h, w = scaled.shape
    factor = max(1, min(factor, h, w))
    if factor == 1:
        background = rolling_ball(scaled, radius=radius)
    else:
        t = torch.from_numpy(scaled)[None, None]
        small = -F.max_pool2d(-t, kernel_size=factor, stride=factor, ceil_mode=True)
        small_bg = rolling_ball(small[0, 0].numpy(), radius=radius / factor)
        big = F.interpolate(torch.from_numpy(np.ascontiguousarray(small_bg))[None, None],
                            scale_factor=factor, mode="bilinear", align_corners=False)[0, 0, :h, :w]
        background = big.numpy()
    return np.clip((scaled - background) / 255.0, 0.0, 1.0).astype(np.float32)


def load_compact(image: Any, pre: Preprocess, max_pixels: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, int]:
    """Step 1 with the fewest channels: like :func:`load_prepared`, but grey stays ``(h, w, 1)``.

    The result has 1 channel when the output is grey-derived (``pre.channels``
    is 1, the source is grey, or the rolling ball ran) and 3 for colour sources
    going to 3 channels; :func:`expand_channels` gives the final channels
    (resizing one channel and replicating is 3x cheaper than resizing three).

    Returns:
        ``(original, prepared, factor)``: the arrays are ``(h, w, c)`` with
        ``(h, w) = ceil((H0, W0) / factor)``, ``factor`` from
        :meth:`Preprocess.reduction` (1 for all but huge images). The rolling
        ball's radius is divided by ``factor`` with the image.
    """
    if isinstance(image, (str, os.PathLike)):
        factor = pre.reduction(*image_size(image, max_pixels))
        raw = read_image(image, reduce=factor, max_pixels=max_pixels)
    else:
        raw = as_image_array(image)
        factor = pre.reduction(raw.shape[0], raw.shape[1])
        raw = reduce_array(raw, factor)
    keep = 3 if pre.channels == 3 and raw.shape[2] == 3 else 1
    original = to_channels(raw, keep)
    if pre.rolling_ball_radius is None:
        return original, original, factor
    grey = subtract_background(to_grey(raw), max(1, round(pre.rolling_ball_radius / factor)))
    return original, grey[..., None], factor


def expand_channels(image: Tensor, channels: int) -> Tensor:
    """``(c, H, W)`` with c in {1, 3} -> ``(channels, H, W)`` (grey replicated, or colour to BT.601 luma)."""
    c = image.shape[0]
    if c == channels:
        return image
    if c == 1 and channels == 3:
        return image.expand(3, -1, -1).contiguous()
    if c == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype).view(3, 1, 1)
        return (image * weights).sum(0, keepdim=True).clamp_(0.0, 1.0)
    raise ShapeError(f"cannot turn {c} channels into {channels}")


def load_prepared(image: Any, pre: Preprocess) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: read an image and apply the per-pixel preprocessing.

    Args:
        image: a file path, or an in-memory image (NumPy array, PIL image, tensor).
        pre: the settings.

    Returns:
        ``(original, prepared)``, both ``(H0, W0, C)`` float32 in [0, 1] with
        ``C = pre.channels``: the image as read, and after rolling-ball background
        subtraction (which runs on the greyscale image; the result is grey
        replicated to C channels). Without ``rolling_ball_radius`` both are the
        same array. (Huge images come reduced, see :func:`load_compact`.)
    """
    original, prepared, _ = load_compact(image, pre)
    same = prepared is original
    original = to_channels(original, pre.channels)
    return original, original if same else to_channels(prepared, pre.channels)


# ---------------------------------------------------------------------- step 2: resize
def _resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear (antialiased when shrinking) resize of ``(C, h, w)`` to ``size``."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return out.clamp_(0.0, 1.0)


def _resize_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour (pixel-centre aligned) resize of an ``(h, w)`` bool mask."""
    if tuple(mask.shape) == tuple(size):
        return mask
    return F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0] > 0.5


def resize_stage(image: Tensor, mask: Tensor | None, pre: Preprocess) -> tuple[Tensor, Tensor | None, Geometry]:
    """Step 2: resize ``(C, H0, W0)`` (and its ``(H0, W0)`` bool mask) per ``pre.resize``.

    Returns:
        ``(image, mask, geometry)``: the resized image ``(C, h, w)``, mask
        ``(h, w)`` or None, and the geometry from the original to this canvas.
    """
    if image.dim() != 3:
        raise ShapeError(f"image must be (C, H, W), got {tuple(image.shape)}")
    h0, w0 = int(image.shape[1]), int(image.shape[2])
    if mask is not None and tuple(mask.shape) != (h0, w0):
        raise ShapeError(f"mask {tuple(mask.shape)} does not match the image size {(h0, w0)}")
    if pre.resize == "square":
        th, tw = pre.canvas  # type: ignore[misc]
        out = _resize(image, (th, tw))
        m = None if mask is None else _resize_mask(mask, (th, tw))
        return out, m, Geometry((h0, w0), (th, tw), (th / h0, tw / w0))
    if pre.resize == "pad":
        th, tw = pre.canvas  # type: ignore[misc]
        s = min(th / h0, tw / w0)
        h1, w1 = max(1, min(th, round(h0 * s))), max(1, min(tw, round(w0 * s)))
        top, left = (th - h1) // 2, (tw - w1) // 2
        small = _resize(image, (h1, w1))
        out = image.new_zeros((image.shape[0], th, tw))
        out[:, top:top + h1, left:left + w1] = small
        m = None
        if mask is not None:
            m = torch.zeros((th, tw), dtype=torch.bool)
            m[top:top + h1, left:left + w1] = _resize_mask(mask, (h1, w1))
        return out, m, Geometry((h0, w0), (th, tw), (h1 / h0, w1 / w0), (-float(top), -float(left)))
    # none: own scale, optionally shrunk
    factor = pre.downscale or 1.0
    h1, w1 = max(1, round(h0 / factor)), max(1, round(w0 / factor))
    out = _resize(image, (h1, w1))
    m = None if mask is None else _resize_mask(mask, (h1, w1))
    return out, m, Geometry((h0, w0), (h1, w1), (h1 / h0, w1 / w0))


# ---------------------------------------------------------------------- step 3: fit
def _axis_offset(have: int, want: int, random: bool, generator: torch.Generator | None) -> int:
    if have > want:
        if random:
            return int(torch.randint(0, have - want + 1, (1,), generator=generator))
        return (have - want) // 2
    return -((want - have) // 2)  # pad (or 0 when equal)


def fit_stage(image: Tensor, mask: Tensor | None, size: Sequence[int], *, random: bool = False,
              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None, tuple[int, int]]:
    """Step 3: crop (centered, or random when ``random``) and/or zero-pad ``(C, h, w)`` to ``size``.

    Returns:
        ``(image (C, H, W), mask (H, W) or None, (oy, ox))`` where the offset is
        positive for a crop and negative for padding (``out = in - offset``).
    """
    H, W = int(size[0]), int(size[1])
    h, w = int(image.shape[-2]), int(image.shape[-1])
    if (h, w) == (H, W):
        return image, mask, (0, 0)
    oy = _axis_offset(h, H, random, generator)
    ox = _axis_offset(w, W, random, generator)
    # source window [sy0, sy1) x [sx0, sx1) -> destination at (dy0, dx0)
    sy0, sx0 = max(oy, 0), max(ox, 0)
    dy0, dx0 = max(-oy, 0), max(-ox, 0)
    ch, cw = min(h - sy0, H - dy0), min(w - sx0, W - dx0)
    out = image.new_zeros((image.shape[0], H, W))
    out[:, dy0:dy0 + ch, dx0:dx0 + cw] = image[:, sy0:sy0 + ch, sx0:sx0 + cw]
    m = None
    if mask is not None:
        m = torch.zeros((H, W), dtype=torch.bool)
        m[dy0:dy0 + ch, dx0:dx0 + cw] = mask[sy0:sy0 + ch, sx0:sx0 + cw]
    return out, m, (oy, ox)


# ---------------------------------------------------------------------- one image
@dataclass
class PreparedImage:
    """One image ready for a model, and how to map results back onto it.

    Attributes:
        image: ``(1, C, H, W)`` float32 in [0, 1] (the model normalizes).
        geometry: original (full size) <-> model-input coordinates (:class:`Geometry`).
        compact: ``(h, w, c)`` float32 in [0, 1], the image as read with the fewest
            channels (1 for grey sources; see :func:`load_compact`): ``(H0, W0)``, or
            ``ceil((H0, W0) / factor)`` for huge images reduced on load.
        compact_prepared: ``compact`` after rolling-ball subtraction (``compact`` itself without it).
        path: the file it came from, if any.
        settings: the preprocessing (``settings.channels`` = C).
        factor: the reduction on load (:meth:`Preprocess.reduction`; 1 = full size).

    ``original`` and ``prepared`` give them with the model's C channels (grey
    replicated), made when asked for: the compact form is what is kept.
    """

    image: Tensor
    geometry: Geometry
    compact: np.ndarray
    compact_prepared: np.ndarray
    path: str | None = None
    settings: Preprocess = field(default_factory=Preprocess)
    factor: int = 1

    @property
    def original(self) -> np.ndarray:
        """``(h, w, C)`` float32 in [0, 1]: the image as read, with the model's channels."""
        return to_channels(self.compact, self.settings.channels)

    @property
    def prepared(self) -> np.ndarray:
        """``(h, w, C)`` after rolling-ball subtraction (equal to :attr:`original` without it)."""
        return to_channels(self.compact_prepared, self.settings.channels)


def preprocess_image(image: Any, preprocess: Any = None, in_chans: int | None = None, *,
                     max_pixels: int | None = None) -> PreparedImage:
    """Turn one image into the model input exactly as the training datasets do (without augmentation).

    Args:
        image: a file path, or a NumPy array / PIL image / tensor in [0, 1]
            (uint8 and uint16 arrays are scaled by their range).
        preprocess: a model or segmenter spec (``model.spec``), its
            ``preprocess`` mapping, or a :class:`Preprocess`; None = defaults.
        in_chans: channels if ``preprocess`` does not say (default 3).
        max_pixels: refuse files of more pixels (None: :data:`medcam.limits.MAX_PIXELS`).

    Returns:
        a :class:`PreparedImage` with ``image`` ``(1, C, H, W)`` float32 in [0, 1]
        and its ``geometry``; e.g. ``prep.geometry.map_to_original(cam)`` gives a
        CAM ``(B, H0, W0)`` on the original image.

    Example:
        >>> prep = preprocess_image("benign (1).png", model.spec)   # doctest: +SKIP
        >>> logits = model(prep.image).logits                      # doctest: +SKIP
    """
    pre = Preprocess.from_spec(preprocess, in_chans)
    path = os.fspath(image) if isinstance(image, (str, os.PathLike)) else None
    if path is None:
        image = as_image_array(image)
        full_size = image.shape[:2]
    else:
        full_size = image_size(path, max_pixels)
    original, prepared, factor = load_compact(image, pre, max_pixels)
    tensor = torch.from_numpy(np.ascontiguousarray(prepared.transpose(2, 0, 1)))
    resized, _, geometry = resize_stage(tensor, None, pre)
    fitted, _, offset = fit_stage(resized, None, pre.size)
    geometry = geometry.shifted(offset, pre.size)
    if factor > 1:
        geometry = geometry.after_reduction(factor, full_size)
    return PreparedImage(expand_channels(fitted, pre.channels)[None].contiguous(), geometry, original, prepared,
                         path, pre, factor)

