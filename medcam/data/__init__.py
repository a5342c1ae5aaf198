"""Datasets, splits, transforms and the image preprocessing shared by training and inference.

Layouts (see docs/data.md): :class:`ImageFolder` (class folders, optional
``train/val/test``), :class:`BUSI` (class folders with ``_mask`` files),
:class:`NIHChestXray` (the ChestX-ray14 release files), :class:`MaskFolder`
(images + masks for segmenters), :class:`WSOLList` (BAS/SR evaluation lists).
:func:`build_dataset` builds any of them by name; :func:`collate` batches items;
:func:`preprocess_image` prepares one image for a model exactly as training did.

Attributes are imported lazily, so ``import medcam.data`` is cheap.
"""
from __future__ import annotations

from medcam._lazy import lazy_attributes

_LAZY = {
    "MedcamDataset": "medcam.data.base",
    "Record": "medcam.data.base",
    "collate": "medcam.data.base",
    "ImageFolder": "medcam.data.folder",
    "BUSI": "medcam.data.busi",
    "BUSI_CLASSES": "medcam.data.busi",
    "NIHChestXray": "medcam.data.nih",
    "NIH_LABELS": "medcam.data.nih",
    "NIH_TASKS": "medcam.data.nih",
    "MaskFolder": "medcam.data.masks",
    "WSOLList": "medcam.data.wsol",
    "Augment": "medcam.data.transforms",
    "AUGMENT_PRESETS": "medcam.data.transforms",
    "Preprocess": "medcam.data.preprocess",
    "Geometry": "medcam.data.geometry",
    "PreparedImage": "medcam.data.preprocess",
    "preprocess_image": "medcam.data.preprocess",
    "ResizedCache": "medcam.data.cache",
    "stratified_split": "medcam.data.splits",
    "kfold_splits": "medcam.data.splits",
    "resolve_groups": "medcam.data.groups",
    "near_duplicate_groups": "medcam.data.groups",
    "read_image": "medcam.data.io",
    "read_mask": "medcam.data.io",
    "build_dataset": "medcam.data.factory",
    "detect_layout": "medcam.data.factory",
    "dataset_names": "medcam.data.factory",
    "dataset_options": "medcam.data.factory",
    "parse_options": "medcam.data.factory",
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
__all__ = sorted(_LAZY)
