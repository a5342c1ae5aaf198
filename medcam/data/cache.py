"""A one-time on-disk cache of resized images (and masks), so each epoch skips decoding and resizing.

What is cached is the output of the deterministic steps 1-2 of
:mod:`medcam.data.preprocess` (read, rolling ball, channel conversion,
resize), before the crop/pad to ``size`` and the random augmentation, so a
cached data set still gets a fresh random crop and augmentation every epoch.

Keys, so a stale entry is never used:

* the directory is named after a hash of the preprocessing settings
  (``size``, ``resize``, ``resize_to``, ``downscale``, ``rolling_ball_radius``,
  channels) and :data:`CACHE_VERSION`; changing any of them starts a new
  directory (``params.json`` inside says which settings it holds);
* each entry is named after a hash of the source files' absolute paths, sizes
  and modification times (image and masks), so an edited file is re-read.

Entries are ``.bin`` files written atomically (temporary file + rename), so
parallel DataLoader workers never read half a file: an 8-byte little-endian
header length, a JSON header (shapes, geometry), the image as uint16
(``round(value * 65535)``: exact for 8-bit sources, ``v / 255 * 65535 = 257 v``)
and the mask as uint8. A plain layout reads several times faster than ``.npz``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .preprocess import Geometry, Preprocess

__all__ = ["ResizedCache", "CACHE_VERSION"]

#: Bump when the cached content or its meaning changes.
CACHE_VERSION = 1


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:20]


class ResizedCache:
    """Resized images on disk under ``root/<settings hash>/``.

    Args:
        root: cache folder (created when needed).
        preprocess: the settings whose resize stage is cached.
    """

    def __init__(self, root: str | os.PathLike[str], preprocess: Preprocess):
        settings = {"version": CACHE_VERSION, "preprocess": preprocess.to_dict()}
        self.root = Path(root)
        self.dir = self.root / _digest(settings)
        self.settings = settings

    def _ensure_dir(self) -> None:
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True, exist_ok=True)
        params = self.dir / "params.json"
        if not params.exists():
            self._atomic_write(params, json.dumps(self.settings, indent=2).encode())

    def _atomic_write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def entry(self, sources: Sequence[str]) -> Path:
        """The file caching the image whose source files are ``sources`` (image first, then masks)."""
        ident = []
        for src in sources:
            st = os.stat(src)
            ident.append([os.path.abspath(src), st.st_size, st.st_mtime_ns])
        return self.dir / f"{_digest(ident)}.bin"

    def load(self, sources: Sequence[str]) -> tuple[Tensor, Tensor | None, Geometry] | None:
        """``(image (C, h, w) float32, mask (h, w) bool or None, geometry)`` or None on a miss."""
        try:
            path = self.entry(sources)
            data = path.read_bytes()
        except OSError:
            return None
        try:
            n = int.from_bytes(data[:8], "little")
            head = json.loads(data[8:8 + n])
            c, h, w = head["image"]
            start = 8 + n
            stop = start + 2 * c * h * w
            image = np.frombuffer(data, dtype="<u2", count=c * h * w, offset=start).reshape(c, h, w)
            mask = None
            if head["mask"]:
                mask = torch.from_numpy(np.frombuffer(data, dtype=np.uint8, count=h * w, offset=stop)
                                        .reshape(h, w).astype(bool))
            g = head["geometry"]
            geometry = Geometry(tuple(g["original_size"]), tuple(g["output_size"]), tuple(g["scale"]),
                                tuple(g["offset"]))
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):  # damaged entry: recompute and overwrite
            return None
        return torch.from_numpy(image.astype(np.float32) / 65535.0), mask, geometry

    @staticmethod
    def quantized(image: Tensor) -> Tensor:
        """``image`` as :meth:`load` returns it after a round trip (16-bit steps), so hits and misses agree."""
        return torch.from_numpy(np.round(image.numpy() * 65535.0).astype("<u2").astype(np.float32) / 65535.0)

    def save(self, sources: Sequence[str], image: Tensor, mask: Tensor | None, geometry: Geometry) -> Path:
        """Store one resized image ``(C, h, w)`` in [0, 1], its mask and geometry; returns the entry path."""
        self._ensure_dir()
        path = self.entry(sources)
        pixels = np.round(image.numpy() * 65535.0).astype("<u2")
        head = json.dumps({"image": list(pixels.shape), "mask": mask is not None,
                           "geometry": geometry.to_dict()}).encode()
        parts = [len(head).to_bytes(8, "little"), head, pixels.tobytes()]
        if mask is not None:
            parts.append(mask.numpy().astype(np.uint8).tobytes())
        self._atomic_write(path, b"".join(parts))
        return path
