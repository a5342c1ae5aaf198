"""Reading images and masks from disk as float arrays in [0, 1].

Every reader raises :class:`medcam.errors.DataError` naming the file when it
is missing, empty or cannot be decoded, so a data set never yields a silently
wrong sample.

Pixel conventions:

* 8-bit images are divided by 255, 16-bit images (``I;16`` PNG/TIFF) by 65535,
  1-bit images map to {0, 1}; 32-bit float images must already lie in [0, 1].
* Colour is reduced to one channel with the ITU-R BT.601 luma weights
  (0.299 R + 0.587 G + 0.114 B, as Pillow's ``convert("L")``); grey is
  replicated to three channels.
* Alpha is composited over black (``value * alpha``), so an opaque RGBA image
  equals its RGB part.
* Masks are foreground wherever any channel is > 0.

Size limits (``docs/guarantees.md``): a file whose header claims more than
``max_pixels`` pixels (default :data:`medcam.limits.MAX_PIXELS`, 50 million) is refused before
its pixels are decoded, so a small file cannot expand into gigabytes. A reader
that wants fewer pixels passes ``reduce=r``: JPEGs are then decoded at a
reduced scale (``draft``), other files are decoded once and box-averaged over
``r x r`` blocks before any float copy exists.
"""
from __future__ import annotations

import math
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

import numpy as np

from ..errors import DataError
from ..limits import MAX_PIXELS

__all__ = [
    "IMAGE_EXTENSIONS",
    "is_image_file",
    "read_image",
    "read_mask",
    "image_size",
    "to_channels",
    "to_grey",
    "as_image_array",
    "reduce_array",
    "check_pixels",
]

PathLike = Union[str, "os.PathLike[str]"]

#: File name endings read as images (lowercase).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

_PIL_LIMIT_LOCK = threading.Lock()

#: Pillow modes that ``Image.reduce`` handles; others are converted first (bilevel -> L, 16-bit -> I).
_REDUCIBLE = {"L", "LA", "I", "F", "RGB", "RGBA", "RGBa", "La", "CMYK", "YCbCr"}


def is_image_file(name: str | os.PathLike[str]) -> bool:
    """True for a visible file name with an image extension (:data:`IMAGE_EXTENSIONS`)."""
    base = os.path.basename(os.fspath(name))
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def check_pixels(height: int, width: int, max_pixels: int | None, where: str) -> None:
    """Refuse an image of more than ``max_pixels`` pixels (None: :data:`medcam.limits.MAX_PIXELS`), naming it."""
    limit = MAX_PIXELS if max_pixels is None else int(max_pixels)
    if height * width > limit:
        raise DataError(f"{where}: {width}x{height} is {height * width / 1e6:.1f} Mpx, more than the limit of "
                        f"{limit / 1e6:.1f} Mpx (raise it with --max-pixels / max_pixels= if the image is "
                        f"genuine)")


@contextmanager
def _open(path: PathLike, max_pixels: int | None = None) -> Iterator["object"]:
    """Open an image file with Pillow (header only) and check its size, or raise a DataError naming it.

    Pillow's own decompression-bomb check is replaced by :func:`check_pixels`
    (the same idea with medcam's limit and message).
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        if not p.is_file():
            raise DataError(f"{p}: image file not found")
        size = p.stat().st_size
    except OSError as err:  # e.g. a file name too long for the file system
        raise DataError(f"{p}: cannot read ({err.strerror or err})") from err
    if size == 0:
        raise DataError(f"{p}: empty file (0 bytes)")
    with _PIL_LIMIT_LOCK:  # Pillow's limit is a module global: switch it off for this open only
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # the check below replaces Pillow's (which only warns below 179 Mpx)
        try:
            img = Image.open(p)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
            raise DataError(f"{p}: not a readable image ({err})") from err
        finally:
            Image.MAX_IMAGE_PIXELS = previous
    try:
        w, h = img.size
        check_pixels(int(h), int(w), max_pixels, str(p))
        yield img
    finally:
        img.close()


def image_size(path: PathLike, max_pixels: int | None = None) -> tuple[int, int]:
    """``(H, W)`` from the file header, without decoding the pixels (over ``max_pixels``: DataError)."""
    with _open(path, max_pixels) as img:
        w, h = img.size
    if h == 0 or w == 0:
        raise DataError(f"{path}: image has zero size ({w}x{h})")
    return int(h), int(w)


def _decode(path: PathLike, reduce: int = 1, max_pixels: int | None = None) -> np.ndarray:
    """Decoded pixels ``(H, W)`` or ``(H, W, 3)`` as float32 in [0, 1], reduced ``reduce`` times (ceil)."""
    with _open(path, max_pixels) as img:
        if reduce > 1:
            img = _reduced(img, reduce, str(path))
        return _pixels(img, str(path))


def _reduced(img, factor: int, where: str):
    """The Pillow image shrunk ``factor`` times per side (``ceil(W / factor) x ceil(H / factor)``).

    JPEGs are decoded at a reduced DCT scale (``draft``: 1/2, 1/4 or 1/8) where
    one fits in ``factor``, the remaining integer factor is a box average
    (``Image.reduce``, partial edge blocks averaged over their own pixels).
    """
    try:
        w, h = img.size
        target = (math.ceil(w / factor), math.ceil(h / factor))
        if img.format == "JPEG" and img.mode in ("L", "RGB", "CMYK", "YCbCr"):
            img.draft(img.mode, target)
        img.load()
        if img.mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif img.mode == "PA":
            img = img.convert("RGBA")
        elif img.mode == "1":
            img = img.convert("L")
        elif img.mode not in _REDUCIBLE:
            img = img.convert("I")  # 16-bit grey: exact in 32-bit integers
        rest = max(1, round(img.size[0] / target[0]))
        return img.reduce(rest) if rest > 1 else img
    except (OSError, ValueError, SyntaxError) as err:  # truncated or corrupt data
        raise DataError(f"{where}: corrupt image data ({err})") from err


def reduce_array(image: np.ndarray, factor: int) -> np.ndarray:
    """Box average of ``(H, W)`` or ``(H, W, C)`` over ``factor x factor`` blocks -> ``(ceil(H/f), ceil(W/f)[, C])``.

    Partial blocks at the bottom and right edges average their own pixels (as
    Pillow's ``Image.reduce``), so a constant image stays constant.
    """
    factor = int(factor)
    if factor <= 1:
        return image
    h, w = image.shape[:2]
    hh, ww = -(-h // factor), -(-w // factor)
    flat = image.reshape(h, w, -1).astype(np.float32, copy=False)
    sums = np.add.reduceat(np.add.reduceat(flat, np.arange(0, h, factor), axis=0), np.arange(0, w, factor), axis=1)
    rows = np.minimum(np.arange(1, hh + 1) * factor, h) - np.arange(hh) * factor
    cols = np.minimum(np.arange(1, ww + 1) * factor, w) - np.arange(ww) * factor
    out = sums / (rows[:, None, None] * cols[None, :, None]).astype(np.float32)
    return out.reshape((hh, ww) + image.shape[2:]).astype(np.float32, copy=False)


def _pixels(img, where: str) -> np.ndarray:
    """Pixels of an open Pillow image as float32 ``(H, W)`` or ``(H, W, 3)`` in [0, 1]."""
    try:
        img.load()
        mode = img.mode
        if mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            mode = img.mode
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            img = img.convert("RGB")
            mode = "RGB"
        elif mode == "PA":
            img = img.convert("RGBA")
            mode = "RGBA"
        arr = np.asarray(img)
    except (OSError, ValueError, SyntaxError) as err:  # truncated or corrupt data
        raise DataError(f"{where}: corrupt image data ({err})") from err
    if arr.size == 0:
        raise DataError(f"{where}: image has zero size {arr.shape}")
    if mode == "1":
        out = arr.astype(np.float32)
    elif arr.dtype == np.uint8:
        out = arr.astype(np.float32)
        out /= 255.0  # in place: one float copy of a large image, not two
    elif arr.dtype.kind == "u" and arr.dtype.itemsize == 2:
        out = arr.astype(np.float32)
        out /= 65535.0
    elif np.issubdtype(arr.dtype, np.integer):
        # Pillow opens some 16-bit files as 32-bit "I"; values beyond 16 bits are not images we can scale
        if arr.min() < 0 or arr.max() > 65535:
            raise DataError(f"{where}: integer pixel values outside [0, 65535] (min {arr.min()}, max {arr.max()})")
        out = arr.astype(np.float32)
        out /= 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.isfinite(out).all() or out.min() < 0 or out.max() > 1:
            raise DataError(f"{where}: floating point pixels must lie in [0, 1] "
                            f"(min {np.nanmin(out):.4g}, max {np.nanmax(out):.4g})")
    else:
        raise DataError(f"{where}: unsupported pixel type {arr.dtype} (mode {mode})")
    if out.ndim == 3 and mode in ("LA", "RGBA"):
        out = out[..., :-1] * out[..., -1:]
    if out.ndim == 3 and out.shape[2] == 1:
        out = out[..., 0]
    if out.ndim not in (2, 3) or (out.ndim == 3 and out.shape[2] != 3):
        raise DataError(f"{where}: unsupported image layout {arr.shape} (mode {mode})")
    return out


def to_grey(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` grey of an ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` image (BT.601 luma)."""
    if image.ndim == 2:
        return image.astype(np.float32, copy=False)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0].astype(np.float32, copy=False)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.clip(image.astype(np.float32) @ LUMA, 0.0, 1.0)
    raise DataError(f"cannot convert an image of shape {image.shape} to grey (expected (H, W) or (H, W, 1|3))")


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """``(H, W, channels)`` float32: grey replicated to 3 channels, or colour reduced to grey.

    Args:
        image: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` in [0, 1].
        channels: 1 or 3.
    """
    if channels not in (1, 3):
        raise DataError(f"images can be given 1 or 3 channels, not {channels}")
    if channels == 1:
        return to_grey(image)[..., None]
    if image.ndim == 3 and image.shape[2] == 3:
        return image.astype(np.float32, copy=False)
    grey = to_grey(image)
    return np.repeat(grey[..., None], 3, axis=2)


def read_image(path: PathLike, channels: int | None = None, *, reduce: int = 1,
               max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as float32 in [0, 1].

    Args:
        path: any format Pillow reads (PNG, JPEG, TIFF, BMP, ...), 8 or 16 bit,
            grey, grey+alpha, palette, RGB or RGBA.
        channels: ``None`` keeps grey ``(H, W, 1)`` or colour ``(H, W, 3)``;
            1 or 3 converts (see :func:`to_channels`).
        reduce: shrink ``reduce`` times per side while decoding (JPEG draft, box
            average): ``(ceil(H / reduce), ceil(W / reduce), C)``.
        max_pixels: refuse files of more pixels (None: :data:`medcam.limits.MAX_PIXELS`).

    Returns:
        ``(H, W, C)`` float32 in [0, 1].

    Raises:
        DataError: the file is missing, empty, not an image, corrupt or over the pixel limit.
    """
    image = _decode(path, reduce, max_pixels)
    if channels is None:
        return image[..., None] if image.ndim == 2 else image
    return to_channels(image, channels)


def read_mask(path: PathLike, max_pixels: int | None = None) -> np.ndarray:
    """Read a mask file as ``(H, W)`` bool: foreground where any channel is > 0."""
    mask = _decode(path, 1, max_pixels)
    return mask.any(axis=2) if mask.ndim == 3 else mask > 0


def as_image_array(image: object, where: str = "image") -> np.ndarray:
    """An in-memory image (NumPy array, PIL image or torch tensor) as ``(H, W, C)`` float32 in [0, 1].

    Accepted: ``(H, W)``, ``(H, W, C)`` NumPy arrays (uint8 / uint16 scaled by
    their range, floats taken as [0, 1]); PIL images; torch tensors ``(C, H, W)``
    or ``(H, W)`` in [0, 1]. C is 1, 3 or 4 (alpha composited over black).
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        return _as_hwc(_pixels(image, where), where)
    try:
        import torch

        if isinstance(image, torch.Tensor):
            t = image.detach().cpu().float()
            if t.dim() == 3:
                t = t.permute(1, 2, 0)
            image = t.numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if not isinstance(image, np.ndarray):
        raise DataError(f"{where}: expected a file path, NumPy array, PIL image or tensor, got {type(image).__name__}")
    arr = image
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
        if arr.size and (not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1):
            raise DataError(f"{where}: floating point images must lie in [0, 1] (min {np.nanmin(arr):.4g}, "
                            f"max {np.nanmax(arr):.4g})")
    else:
        raise DataError(f"{where}: unsupported array dtype {arr.dtype} (use uint8, uint16 or float in [0, 1])")
    return _as_hwc(arr, where)


def _as_hwc(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{where}: expected an image (H, W), (H, W, C) or (C, H, W) with C in 1..4, got {arr.shape}")
    if arr.shape[2] in (2, 4):
        arr = arr[..., :-1] * arr[..., -1:]
    return arr.astype(np.float32, copy=False)
