"""Class folders: ``root/<class>/*.png``, or ``root/{train,val,test}/<class>/*.png``.

::

    root/                         root/
      normal/  a.png ...            train/  normal/ ...  disease/ ...
      disease/ b.png ...            val/    normal/ ...  disease/ ...
                                    test/   normal/ ...  disease/ ...

The class of an image is the name of the folder under ``root`` (or under the
split folder) it lies in, at any depth. Classes are ordered alphabetically
unless ``class_names`` gives the order; with ``class_names`` a folder that is
not a class is an error (or skipped with ``on_error="skip"``), never a silent
new label. Split folders (``train``, ``val``/``valid``/``validation``,
``test``) fix the splits; without them :meth:`MedcamDataset.splits` carves
stratified, seeded ones.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

from ..errors import DataError
from ..registry import did_you_mean
from .base import EMPTY_CLASS_HINT, ErrorPolicy, MedcamDataset, Record, logger
from .io import is_image_file

__all__ = ["ImageFolder", "SPLIT_DIRS", "list_images", "class_folders"]

#: Folder names recognized as split folders (lowercase) and the split they hold.
SPLIT_DIRS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
              "test": "test", "testing": "test"}

_MASK_NAME = re.compile(r"_mask(_\d+)?$", re.IGNORECASE)


def class_folders(folder: Path) -> list[Path]:
    """Visible sub-folders, sorted by name."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (visible, image extensions), sorted by path."""
    out: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            out.extend(Path(dirpath) / f for f in sorted(filenames) if is_image_file(f))
    else:
        out = [p for p in sorted(folder.iterdir()) if p.is_file() and is_image_file(p.name)]
    return sorted(out)


def check_root(root: str | os.PathLike[str]) -> Path:
    path = Path(root)
    if not path.exists():
        raise DataError(f"{path}: data folder not found")
    if not path.is_dir():
        raise DataError(f"{path}: not a folder (point --data at the data set folder)")
    return path


def split_folders(root: Path) -> dict[str, Path]:
    """``{split: folder}`` for the split folders directly under ``root``."""
    out: dict[str, Path] = {}
    for d in class_folders(root):
        split = SPLIT_DIRS.get(d.name.lower())
        if split is not None:
            if split in out:
                raise DataError(f"{root}: two folders for the {split} split: {out[split].name} and {d.name}")
            out[split] = d
    return out


def collect_class_folders(root: Path, class_names: Sequence[str] | None, exclude: Sequence[str],
                          policy: ErrorPolicy, what: str = "class folder") -> list[tuple[str | None, str, Path]]:
    """``(split, class name, folder)`` for every class folder under ``root`` or its split folders."""
    splits = split_folders(root)
    entries: list[tuple[str | None, Path]] = []
    if splits:
        others = [d.name for d in class_folders(root) if d.name.lower() not in SPLIT_DIRS and d.name not in exclude]
        if others:
            logger.warning("%s: split folders (%s) found; ignoring the other folders %s", root,
                           ", ".join(p.name for p in splits.values()), others)
        for split, folder in splits.items():
            entries.extend((split, d) for d in class_folders(folder))
    else:
        entries = [(None, d) for d in class_folders(root)]
    out = []
    for split, folder in entries:
        name = folder.name
        if name in exclude:
            continue
        if class_names is not None and name not in class_names:
            hint = did_you_mean(name, class_names)
            policy(f"{folder}: unknown {what} '{name}'{hint} (classes: {', '.join(class_names)}; "
                   f"pass exclude=['{name}'] to ignore it)")
            continue
        out.append((split, name, folder))
    return out


class ImageFolder(MedcamDataset):
    """Images in class folders, optionally inside ``train/`` ``val/`` ``test/`` split folders.

    Args:
        root: the data folder.
        class_names: the classes in label order (default: the folder names, sorted);
            any other folder is an unknown class.
        exclude: folder names to ignore.
        **options: shared dataset options (:class:`MedcamDataset`: ``preprocess``,
            ``augment``, ``on_error``, ``check``, ``cache_dir``, ``groups``, ...).
    """

    layout = "imagefolder"

    def __init__(self, root: str | os.PathLike[str], *, class_names: Sequence[str] | None = None,
                 exclude: Sequence[str] = (), on_error: str = "raise", **options: Any):
        policy = ErrorPolicy(on_error)
        path = check_root(root)
        folders = collect_class_folders(path, None if class_names is None else list(class_names), list(exclude), policy)
        if not folders:
            raise DataError(f"{path}: no class folders (expected {path}/<class>/<image> or "
                            f"{path}/train/<class>/<image>)")
        names = list(class_names) if class_names is not None else sorted({name for _, name, _ in folders})
        if len(set(names)) != len(names):
            raise DataError(f"class_names has duplicates: {names}")
        index = {n: i for i, n in enumerate(names)}
        records: list[Record] = []
        mask_like = []
        for split, name, folder in folders:
            images = list_images(folder)
            if not images and not options.get("allow_empty_classes"):
                raise DataError(f"{folder}: class folder without images (class '{name}'); a model would get a "
                                f"class of support 0. {EMPTY_CLASS_HINT}")
            if not images:
                logger.warning("%s: class folder without images (allow_empty_classes)", folder)
            for img in images:
                if _MASK_NAME.search(img.stem):
                    mask_like.append(img)
                records.append(Record(path=str(img), label=index[name], split=split))
        splits_seen = {s for s, _, _ in folders}
        if "train" in splits_seen:
            train_classes = {n for s, n, _ in folders if s == "train"}
            for s, n, folder in folders:
                if s != "train" and n not in train_classes:
                    logger.warning("%s: class '%s' has no train/ folder", folder, n)
        if mask_like:
            logger.warning("%s: %d files look like masks (e.g. %s) and are read as images of their class; "
                           "for images with masks use the 'busi' or 'masks' layout", path, len(mask_like),
                           mask_like[0].name)
        for img in (list_images(path, recursive=False) if not split_folders(path) else []):
            policy(f"{img}: image outside the class folders (no class)")
        super().__init__(records, names, root=path, on_error=on_error, policy=policy, **options)
