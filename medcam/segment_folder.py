"""Write a segmenter's masks for every image of a data set as an ``images/`` + ``masks/`` folder.

The folder is the ``masks`` layout (:class:`medcam.data.MaskFolder`), so the masks
serve as pseudo-labels for training a segmenter with ``medcam train``; e.g. the
training-free ``lung_fields`` masks of the NIH radiographs for a lung U-Net::

    medcam segment lung_fields --data ../shared/data/nih_sample --out lungs_pseudo

    lungs_pseudo/
      images/  00000075_000.png ...   copies of the original files
      masks/   00000075_000.png ...   uint8 0 / 255, at the original image size

A mask is ``sigmoid(logits) > threshold`` (any class of a multi-class segmenter)
on the segmenter's input, mapped back onto the original image with the
preprocessing geometry (:func:`medcam.data.preprocess_image`).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from .errors import DataError, OutputError

__all__ = ["SegmentSummary", "segment_image", "write_mask_folder"]


@dataclass
class SegmentSummary:
    """What :func:`write_mask_folder` wrote: image count, empty masks, mean foreground fraction, the folder."""

    images: int
    empty: int
    mean_fraction: float
    out: str

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "empty": self.empty, "mean_fraction": round(self.mean_fraction, 4),
                "out": self.out}


@torch.no_grad()
def segment_image(segmenter: Any, image: Any, threshold: float = 0.5) -> np.ndarray:
    """``(H0, W0)`` bool mask of one image (a path or an array) at its original size."""
    from .data.preprocess import preprocess_image

    prep = preprocess_image(image, segmenter.spec)
    device = next(segmenter.buffers(), torch.empty(0)).device
    probs = torch.sigmoid(segmenter(prep.image.to(device)).float()).amax(1)  # (1, h, w)
    return (prep.geometry.map_to_original(probs.cpu())[0] > threshold).numpy()


def _targets(paths: list[str], out: Path) -> list[tuple[Path, Path, Path]]:
    """``(source, image copy, mask file)`` per path; two sources with one file name are a DataError."""
    seen: dict[str, str] = {}
    rows = []
    for path in paths:
        src = Path(path)
        if src.stem in seen:
            raise DataError(f"two images are named '{src.stem}' ({seen[src.stem]} and {path}); the images/ + masks/ "
                            f"layout pairs files by name: segment the folders separately")
        seen[src.stem] = path
        rows.append((src, out / "images" / src.name, out / "masks" / f"{src.stem}.png"))
    return rows


def write_mask_folder(segmenter: Any, paths: Iterable[str], out: str | Path, *, threshold: float = 0.5,
                      progress: bool = True) -> SegmentSummary:
    """Segment every image in ``paths`` and write ``out/images/`` (copies) and ``out/masks/`` (PNG 0/255).

    Raises:
        OutputError: ``out`` cannot be written, or its ``masks/`` already holds files.
        DataError: two images share a file name.
    """
    from PIL import Image
    from tqdm import tqdm

    from .outputs import output_folder
    from .progress import show_bar

    root = output_folder(out)
    masks_dir = root / "masks"
    if masks_dir.is_dir() and any(masks_dir.iterdir()):
        raise OutputError(f"--out '{root}': masks/ already holds files; give a new folder (masks of two runs "
                          f"would mix)")
    rows = _targets(list(paths), root)
    (root / "images").mkdir(exist_ok=True)
    masks_dir.mkdir(exist_ok=True)
    empty, fractions = 0, []
    segmenter = segmenter.eval()
    for src, image_copy, mask_file in tqdm(rows, desc="segment", unit="image", disable=not show_bar(progress)):
        mask = segment_image(segmenter, src, threshold)
        Image.fromarray(mask.astype(np.uint8) * 255).save(mask_file)
        shutil.copyfile(src, image_copy)
        empty += int(not mask.any())
        fractions.append(float(mask.mean()))
    return SegmentSummary(images=len(rows), empty=empty, mean_fraction=float(np.mean(fractions)) if fractions else 0.0,
                          out=str(root))
