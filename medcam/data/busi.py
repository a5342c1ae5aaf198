"""BUSI breast ultrasound layout: class folders with ``<stem>_mask*.png`` lesion masks next to the images.

::

    busi/
      benign/     benign (1).png     benign (1)_mask.png     benign (4)_mask_1.png ...
      malignant/  malignant (1).png  malignant (1)_mask.png
      normal/     normal (1).png     normal (1)_mask.png      (empty masks)

Al-Dhabyani W, Gomaa M, Khaled H, Fahmy A. *Dataset of breast ultrasound
images.* Data in Brief 28 (2020) 104863 (the Kaggle "Dataset_BUSI_with_GT"
layout). An image's lesion mask is the pixel-wise OR of all its masks
(``_mask``, ``_mask_1``, ...: one per lesion); its boxes are the mask's
connected components (8-connectivity, :mod:`medcam.boxes`), recomputed after
augmentation. Normal images have empty masks and no boxes.

Labels follow ``class_names``, by default ``normal=0, benign=1, malignant=2``.
Known issues of the data (Pawlowska et al., *Data in Brief* 2023): near-
duplicate images (split with ``groups="near_duplicates"`` or your own group
file), lesions in both the benign and malignant folders, burned-in annotations.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from ..errors import DataError
from .base import ErrorPolicy, MedcamDataset, Record, logger
from .folder import check_root, class_folders, collect_class_folders, list_images
from .masks import _is_mask_name, pair_masks

__all__ = ["BUSI", "BUSI_CLASSES"]

#: BUSI's classes in label order.
BUSI_CLASSES: tuple[str, ...] = ("normal", "benign", "malignant")


class BUSI(MedcamDataset):
    """BUSI-style class folders with per-lesion masks; items have ``mask`` and ``boxes``.

    Args:
        root: the folder holding the class folders (optionally inside
            ``train/`` ``val/`` ``test/`` split folders).
        class_names: the classes in label order (default ``normal, benign, malignant``);
            any other folder is an unknown class.
        exclude: class folders to leave out (e.g. ``["normal"]`` with
            ``class_names=["benign", "malignant"]``).
        mask_suffix: what a mask's name adds to its image's (``_mask``).
        **options: shared dataset options (:class:`MedcamDataset`).
    """

    layout = "busi"

    def __init__(self, root: str | os.PathLike[str], *, class_names: Sequence[str] = BUSI_CLASSES,
                 exclude: Sequence[str] = (), mask_suffix: str = "_mask", on_error: str = "raise", **options: Any):
        policy = ErrorPolicy(on_error)
        path = check_root(root)
        names = list(class_names)
        if len(set(names)) != len(names):
            raise DataError(f"class_names has duplicates: {names}")
        if not mask_suffix:
            raise DataError("busi: mask_suffix must not be empty (masks lie next to the images)")
        try:
            folders = collect_class_folders(path, names, list(exclude), policy)
        except DataError as err:
            raise DataError(f"{err}{self._nested_hint(path, names)}") from None
        if not folders:
            raise DataError(f"{path}: none of the class folders {names} found{self._nested_hint(path, names)}")
        index = {n: i for i, n in enumerate(names)}
        records: list[Record] = []
        for split, name, folder in folders:
            files = list_images(folder)
            images = [f for f in files if not _is_mask_name(f, mask_suffix)]
            masks = [f for f in files if _is_mask_name(f, mask_suffix)]
            pairs, orphans = pair_masks(images, masks, mask_suffix, folder, folder)
            for m in orphans:
                policy(f"{m}: mask without an image (expected the image without '{mask_suffix}...' next to it)")
            for img, ms in pairs.items():
                if not ms:
                    policy(f"{img}: missing mask (expected '{img.stem}{mask_suffix}.png' next to it)")
                    continue
                records.append(Record(path=str(img), label=index[name], masks=tuple(str(m) for m in ms), split=split))
        found = {name for _, name, _ in folders}
        for name in names:
            if name not in found:
                logger.warning("%s: no '%s' class folder; the class has no images", path, name)
        super().__init__(records, names, has_masks=True, boxes_from_mask=True, root=path, on_error=on_error,
                         policy=policy, **options)

    @staticmethod
    def _nested_hint(path: Path, names: Sequence[str]) -> str:
        """A hint when the class folders sit one level deeper (e.g. ``Dataset_BUSI_with_GT/``)."""
        for sub in class_folders(path):
            inner = {d.name for d in class_folders(sub)}
            if inner & set(names):
                return f"; the class folders are in {sub}: point the data path there"
        return ""
