"""Build a dataset from a layout name and options (what ``medcam train --dataset NAME --data PATH`` calls).

Layouts are the ``datasets`` registry (:data:`medcam.registry.datasets`): each is a
light :class:`medcam.data.layouts.DatasetLayout` (its dataset class as ``"module:Class"``)
declared by an entry point in the group ``medcam.datasets``, the bundled ones
(``busi``, ``imagefolder``, ``nih``, ``masks``, ``wsol_list``) in medcam's own
``pyproject.toml``, a third party's in theirs. This module imports
no torch at module level, so CLI help and error messages stay fast; the dataset
class is imported when it is built.
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Iterable

from ..errors import DataError, SpecError, UnknownNameError
from ..registry import datasets, did_you_mean, normalize_name

__all__ = ["dataset_names", "dataset_class", "dataset_options", "build_dataset", "detect_layout", "parse_options"]

#: Other spellings users type for the bundled layouts.
ALIASES: dict[str, str] = {
    "image_folder": "imagefolder", "folder": "imagefolder", "folders": "imagefolder",
    "chestxray14": "nih", "chestx_ray14": "nih", "nih_chestxray14": "nih", "nih_chest_xray": "nih",
    "mask_folder": "masks", "maskfolder": "masks", "segmentation": "masks",
    "wsol": "wsol_list", "wsollist": "wsol_list",
}

#: Base-class parameters set by the layouts themselves, not by users.
_INTERNAL = {"self", "records", "has_masks", "boxes_from_mask", "root", "policy"}


def dataset_names() -> list[str]:
    """The layout names :func:`build_dataset` accepts (the ``datasets`` registry; reads metadata only)."""
    return sorted(datasets.list())


def _resolve_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise UnknownNameError(f"dataset: expected a layout name ({', '.join(dataset_names())}), got {name!r}")
    key = normalize_name(name.replace(" ", "_"))
    key = ALIASES.get(key, key)
    if key not in datasets:
        raise UnknownNameError(f"unknown dataset layout '{name}'{did_you_mean(key, [*datasets.list(), *ALIASES])} "
                               f"(layouts: {', '.join(dataset_names())}; medcam list datasets)")
    return key


def dataset_class(name: str) -> type:
    """The dataset class registered for a layout name (aliases and close matches handled)."""
    return datasets.get(_resolve_name(name)).load()


def dataset_options(name: str) -> dict[str, Any]:
    """Every option a layout accepts, with its default (``inspect.Parameter.empty`` if required)."""
    from .base import MedcamDataset

    cls = dataset_class(name)
    out: dict[str, Any] = {}
    for klass in (cls, MedcamDataset):
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in _INTERNAL or p.name in out:
                continue
            if klass is MedcamDataset and p.name in ("class_names", "multilabel"):
                continue
            out[p.name] = p.default
    return out


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``["task=effusion", "val=0.2", "class_names=[a, b]"]`` -> a dict; values are read as YAML."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise SpecError(f"dataset option {pair!r}: expected KEY=VALUE")
        key, text = pair.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as err:
            raise SpecError(f"dataset option {key.strip()}: cannot read value {text!r}: {err}") from err
    return out


def build_dataset(name: str | None, root: str | os.PathLike[str], **options: Any):
    """A dataset of layout ``name`` (or the detected layout when ``name`` is None) at ``root``.

    Args:
        name: a registered layout (``busi``, ``imagefolder``, ``nih``, ``masks``, ``wsol_list``,
            a third party's; ``medcam list datasets``) or an alias, or None.
        root: the data folder.
        **options: the layout's options and the shared ones (``preprocess``,
            ``augment``, ``on_error``, ``check``, ``cache_dir``, ``groups``, ...);
            see :func:`dataset_options`.

    Raises:
        UnknownNameError: an unknown layout (with close matches).
        SpecError: an unknown option (with close matches).
        DataError: the folder does not hold that layout, or bad data.
    """
    if name is None:
        name = detect_layout(root)
    key = _resolve_name(name)
    accepted = dataset_options(key)
    for opt in options:
        if opt not in accepted:
            raise SpecError(f"dataset option '{opt}': unknown for the '{key}' layout{did_you_mean(opt, accepted)} "
                            f"(options: {', '.join(accepted)})")
    return dataset_class(key)(root, **options)


def _has_class_folders_with(root: Path, predicate) -> bool:
    from .folder import SPLIT_DIRS

    bases = [d for d in root.iterdir() if d.is_dir() and d.name.lower() in SPLIT_DIRS] or [root]
    for base in bases:
        for d in base.iterdir():
            if d.is_dir() and not d.name.startswith(".") and predicate(d):
                return True
    return False


def detect_layout(root: str | os.PathLike[str]) -> str:
    """Guess the layout of a data folder from the files the layouts require.

    ``nih``: a ``Data_Entry_2017*.csv``; ``wsol_list``: a ``*_list.txt`` with a
    ``*_gt.txt``; ``masks``: ``images/`` and ``masks/`` folders (or inside split
    folders); ``busi``: class folders holding ``*_mask*`` images;
    ``imagefolder``: class folders holding images.

    Raises:
        DataError: when none fits (pass the layout name instead).
    """
    from .folder import SPLIT_DIRS, check_root
    from .io import is_image_file

    path = check_root(root)
    if any(path.glob("Data_Entry_2017*.csv")):
        return "nih"
    if any(path.glob("*_list.txt")) and any(path.glob("*_gt.txt")):
        return "wsol_list"
    bases = [d for d in path.iterdir() if d.is_dir() and d.name.lower() in SPLIT_DIRS] or [path]
    if all((b / "images").is_dir() and (b / "masks").is_dir() for b in bases):
        return "masks"

    def has_masks(folder: Path) -> bool:
        return any(is_image_file(f.name) and "_mask" in f.stem.lower() for f in folder.iterdir() if f.is_file())

    def has_images(folder: Path) -> bool:
        for _, _, files in os.walk(folder):
            if any(is_image_file(f) for f in files):
                return True
        return False

    if _has_class_folders_with(path, has_masks):
        return "busi"
    if _has_class_folders_with(path, has_images):
        return "imagefolder"
    raise DataError(f"{path}: cannot tell the data set layout (no Data_Entry_2017*.csv, no *_list.txt + *_gt.txt, "
                    f"no images/ + masks/ folders, no class folders with images); pass the layout name "
                    f"({', '.join(dataset_names())})")

