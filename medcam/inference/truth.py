"""The ground truth an image file comes with, found from its path (``medcam explain`` draws it).

Looked up, in this order, for an image file ``.../<stem>.<ext>``:

* **masks next to the image** (BUSI): ``<stem>_mask.<ext>``, ``<stem>_mask_1.<ext>``, ... in
  the same folder, OR-ed (BUSI has one mask file per lesion);
* **a mask folder** (``images/`` + ``masks/``): ``../masks/<stem>.<ext>`` (and ``<stem>_1`` ...)
  when the image lies in a folder called ``images``;
* **NIH boxes**: a ``BBox_List_2017.csv`` in the image's folder or up to three folders
  above it (the release unpacks to ``images_001/images/<name>.png``), rows of the image's
  file name; ``[x, y, w, h]`` in 1024 x 1024 pixels, scaled to the file's size;
* **WSOL lists** (SR / BAS): a ``*_gt.txt`` box list of the named format
  (``<name> <w> <h>; x0 y0 x1 y1``) in the same folders, the line whose name ends
  with the image's path (or file name), scaled from the stated ``w x h``.

Boxes are ``(x0, y0, x1, y1)`` in pixels of the file as read (exclusive ends).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError

__all__ = ["GroundTruth", "find_ground_truth", "SEARCH_DEPTH"]

#: How many folders above the image a box file is looked for.
SEARCH_DEPTH = 3
#: Pixel size of the original NIH images the box file refers to.
NIH_BOX_REFERENCE = 1024


@dataclass
class GroundTruth:
    """What is known about where the lesion is.

    Attributes:
        source: the file(s) it was read from.
        boxes: ``(N, 4)`` float boxes in original-image pixels.
        labels: ``N`` finding names (empty strings where the file names none).
        mask: ``(H0, W0)`` bool lesion mask, or None for box annotations.
    """

    source: str
    boxes: Tensor
    labels: list[str] = field(default_factory=list)
    mask: np.ndarray | None = None

    def to_record(self) -> dict:
        """``{"source", "boxes" [[x0, y0, x1, y1] ...] (integers), "labels"}``."""
        return {"source": self.source, "boxes": [[int(round(v)) for v in b] for b in self.boxes.tolist()],
                "labels": list(self.labels)}


def _mask_files(path: Path) -> list[Path]:
    from ..data.io import is_image_file

    stem = path.stem
    found = []
    for folder, prefix in ((path.parent, f"{stem}_mask"),
                           (path.parent.parent / "masks" if path.parent.name == "images" else None, stem)):
        if folder is None or not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f == path or not is_image_file(f.name):
                continue
            rest = f.stem[len(prefix):] if f.stem.startswith(prefix) else None
            if rest is not None and (rest == "" or (rest.startswith("_") and rest[1:].isdigit())):
                found.append(f)
        if found:
            return found
    return []


def _mask_truth(files: list[Path], size: tuple[int, int]) -> GroundTruth:
    from ..boxes import component_boxes, connected_components
    from ..data.io import read_mask

    mask = np.zeros(size, dtype=bool)
    for f in files:
        m = read_mask(f)
        if m.shape != size:
            raise DataError(f"{f}: mask is {m.shape[0]}x{m.shape[1]} pixels, its image {size[0]}x{size[1]}")
        mask |= m
    labels, counts = connected_components(torch.from_numpy(mask)[None])
    boxes = component_boxes(labels, counts)[0].float()
    return GroundTruth(", ".join(str(f) for f in files), boxes, [""] * boxes.shape[0], mask)


@lru_cache(maxsize=8)
def _nih_boxes(path: str, mtime: float) -> dict:
    from ..data.nih import read_bbox_csv

    return read_bbox_csv(Path(path))


@lru_cache(maxsize=8)
def _list_boxes(path: str, mtime: float) -> dict:
    from ..data.wsol import read_box_list

    fmt, entries = read_box_list(Path(path))
    return {str(name): (ref, boxes) for name, ref, boxes in entries} if fmt == "named" else {}


def _ancestors(path: Path) -> list[Path]:
    return [path.parent, *list(path.parent.parents)[:SEARCH_DEPTH]]


def _box_truth(path: Path, size: tuple[int, int]) -> GroundTruth | None:
    h0, w0 = size
    for folder in _ancestors(path):
        csv_file = folder / "BBox_List_2017.csv"
        if csv_file.is_file():
            rows = _nih_boxes(str(csv_file), csv_file.stat().st_mtime).get(path.name)
            if rows:
                scale = torch.tensor([w0, h0, w0, h0], dtype=torch.float32) / NIH_BOX_REFERENCE
                boxes = torch.tensor([b for _, b in rows], dtype=torch.float32) * scale
                return GroundTruth(str(csv_file), boxes, [f for f, _ in rows])
        for gt_file in sorted(folder.glob("*_gt.txt")):
            table = _list_boxes(str(gt_file), gt_file.stat().st_mtime)
            rel = path.relative_to(folder).as_posix() if folder in path.parents else path.name
            hit = next((v for k, v in table.items() if rel == k or rel.endswith("/" + k)), None)
            if hit is None:
                hit = next((v for k, v in table.items() if Path(k).name == path.name), None)
            if hit is not None:
                (ref_h, ref_w), boxes = hit
                scale = torch.tensor([w0 / ref_w, h0 / ref_h, w0 / ref_w, h0 / ref_h], dtype=torch.float32)
                return GroundTruth(str(gt_file), torch.tensor(boxes, dtype=torch.float32) * scale,
                                   [""] * len(boxes))
    return None


def find_ground_truth(path: str | Path, size: tuple[int, int]) -> GroundTruth | None:
    """The ground truth of the image file ``path`` of ``size`` ``(H0, W0)`` pixels, or None (module docstring).

    Raises:
        DataError: a mask file that cannot be read or does not match the image's size.
    """
    path = Path(path)
    files = _mask_files(path)
    if files:
        return _mask_truth(files, (int(size[0]), int(size[1])))
    return _box_truth(path, (int(size[0]), int(size[1])))
