"""Image + mask pairs for segmenters: ``root/images/<name>.png`` with ``root/masks/<name><suffix>.png``.

::

    root/                              root/  (split folders are optional)
      images/  case1.png case2.jpg       train/ images/ ...  masks/ ...
      masks/   case1.png case2.png       test/  images/ ...  masks/ ...

A mask belongs to the image whose file name (without extension) plus
``mask_suffix`` is its own name, e.g. ``case1_mask.png`` for ``case1.jpg`` with
``mask_suffix="_mask"``; ``<name><suffix>_1.png``, ``_2`` ... are further masks
of the same image and are OR-ed (one mask per lesion, as in BUSI). With
``mask_dir == image_dir`` the masks lie next to the images and the suffix
tells them apart.

Masks are binary: foreground wherever a pixel (any channel) is > 0. Items get
``label`` 1 when the mask has foreground (lesion present), 0 otherwise
(``class_names = ["no_lesion", "lesion"]``); to know it, every mask is read
once at construction.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import DataError
from ..progress import show_bar
from .base import ErrorPolicy, MedcamDataset, Record
from .folder import check_root, list_images, split_folders
from .io import read_mask

__all__ = ["MaskFolder", "pair_masks"]


def pair_masks(images: Iterable[Path], masks: Iterable[Path], suffix: str, image_root: Path,
               mask_root: Path) -> tuple[dict[Path, list[Path]], list[Path]]:
    """Match mask files to image files by name.

    A mask at ``<mask_root>/<sub>/<stem><suffix>[_<n>].<ext>`` belongs to the image
    ``<image_root>/<sub>/<stem>.<any ext>``. With an empty suffix, ``<stem>.<ext>``
    is the first mask and ``<stem>_<n>`` the further ones.

    Returns:
        ``({image: [masks in order: plain, _1, _2, ...]}, [masks without an image])``.
    """
    image_list = list(images)
    by_key = {(img.parent.relative_to(image_root).as_posix(), img.stem): img for img in image_list}
    numbered = re.compile("^(?P<stem>.*)" + re.escape(suffix) + r"_(?P<n>\d+)$")
    out: dict[Path, list[tuple[int, Path]]] = {img: [] for img in image_list}
    orphans: list[Path] = []
    for m in masks:
        sub = m.parent.relative_to(mask_root).as_posix()
        target, n = None, 0
        if m.stem.endswith(suffix):
            target = by_key.get((sub, m.stem[:len(m.stem) - len(suffix)] if suffix else m.stem))
        if target is None:
            match = numbered.match(m.stem)
            if match:
                target, n = by_key.get((sub, match.group("stem"))), int(match.group("n")) + 1
        if target is None:
            orphans.append(m)
        else:
            out[target].append((n, m))
    return {img: [m for _, m in sorted(ms)] for img, ms in out.items()}, orphans


def _is_mask_name(path: Path, suffix: str) -> bool:
    return bool(suffix) and re.search(re.escape(suffix) + r"(_\d+)?$", path.stem) is not None


class MaskFolder(MedcamDataset):
    """Images with segmentation masks, for segmenters (and localization checks).

    Args:
        root: the data folder (optionally with ``train/`` ``val/`` ``test/`` inside).
        image_dir: sub-folder with the images (default ``images``).
        mask_dir: sub-folder with the masks (default ``masks``; may equal ``image_dir``).
        mask_suffix: what a mask's name adds to its image's name (default ``""``).
        **options: shared dataset options (:class:`MedcamDataset`).
    """

    layout = "masks"
    every_class_needed = False  # lesion / no_lesion follow from the masks: all-lesion folders are normal

    def __init__(self, root: str | os.PathLike[str], *, image_dir: str = "images", mask_dir: str = "masks",
                 mask_suffix: str = "", on_error: str = "raise", **options: Any):
        policy = ErrorPolicy(on_error)
        path = check_root(root)
        if image_dir == mask_dir and not mask_suffix:
            raise DataError("masks: with image_dir == mask_dir the masks need a mask_suffix (e.g. '_mask')")
        splits = split_folders(path)
        bases: list[tuple[str | None, Path]] = list(splits.items()) if splits else [(None, path)]
        records: list[Record] = []
        for split, base in bases:
            idir, mdir = base / image_dir, base / mask_dir
            for d, what in ((idir, "image_dir"), (mdir, "mask_dir")):
                if not d.is_dir():
                    raise DataError(f"{d}: {what} folder not found (layout: {base}/{image_dir}/<name>.png with "
                                    f"{base}/{mask_dir}/<name>{mask_suffix}.png)")
            files = list_images(idir)
            if image_dir == mask_dir:
                images = [f for f in files if not _is_mask_name(f, mask_suffix)]
                mask_files: Sequence[Path] = [f for f in files if _is_mask_name(f, mask_suffix)]
            else:
                images, mask_files = files, list_images(mdir)
            pairs, orphans = pair_masks(images, mask_files, mask_suffix, idir, mdir)
            for m in orphans:
                policy(f"{m}: mask without an image (expected an image named like it minus "
                       f"'{mask_suffix}' in {idir})")
            for img, ms in pairs.items():
                if not ms:
                    policy(f"{img}: missing mask (no {mdir}/{img.stem}{mask_suffix}.<ext>)")
                    continue
                records.append(Record(path=str(img), label=0, masks=tuple(str(m) for m in ms), split=split))
        records = self._lesion_labels(records, policy)
        super().__init__(records, ["no_lesion", "lesion"], has_masks=True, boxes_from_mask=True, root=path,
                         on_error=on_error, policy=policy, **options)

    @staticmethod
    def _lesion_labels(records: list[Record], policy: ErrorPolicy) -> list[Record]:
        from dataclasses import replace

        from tqdm.auto import tqdm

        out = []
        for r in tqdm(records, desc="reading masks", unit="mask", leave=False, disable=len(records) < 2000 or not show_bar()):
            try:
                fg = any(read_mask(m).any() for m in r.masks)
            except DataError as err:
                policy(str(err))
                continue
            out.append(replace(r, label=int(fg)))
        return out
