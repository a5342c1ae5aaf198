"""The bundled data set layouts, declared light (no torch): what ``medcam.datasets`` entry points name.

A :class:`DatasetLayout` names its dataset class as ``"module:Class"`` and carries
the registry metadata, so ``medcam list datasets`` and ``medcam info busi`` read it
without importing the data code; :meth:`DatasetLayout.load` imports the class when
a data set is built (:func:`medcam.data.build_dataset`). A third party declares
its own layout the same way in its light module.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..registry import META_ATTRIBUTE

__all__ = ["DatasetLayout", "busi", "imagefolder", "nih", "masks", "wsol_list"]


@dataclass(frozen=True)
class DatasetLayout:
    """A data set layout: its dataset class (``"module:Class"``, built as ``cls(root, **options)``),
    a one-line summary and the paper of the data set."""

    target: str
    summary: str
    citation: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, META_ATTRIBUTE, {"summary": self.summary, "citation": self.citation,
                                                  "dataset_class": self.target})

    def load(self) -> type:
        """The dataset class (imports its module)."""
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)


busi = DatasetLayout("medcam.data.busi:BUSI",
                     "BUSI breast ultrasound: class folders (normal, benign, malignant) with *_mask images",
                     "Al-Dhabyani, Gomaa, Khaled, Fahmy, Dataset of breast ultrasound images, Data in Brief 28, 2020")
imagefolder = DatasetLayout("medcam.data.folder:ImageFolder",
                            "Class folders of images, optionally under train/val/test split folders")
nih = DatasetLayout("medcam.data.nih:NIHChestXray",
                    "NIH ChestX-ray14 release: Data_Entry_2017*.csv, official train/test lists, BBox_List_2017.csv",
                    "Wang, Peng, Lu, Lu, Bagheri, Summers, ChestX-ray8: Hospital-scale Chest X-ray Database and "
                    "Benchmarks on Weakly-Supervised Classification and Localization of Common Thorax Diseases, "
                    "CVPR 2017")
masks = DatasetLayout("medcam.data.masks:MaskFolder", "Segmentation pairs: images/ and masks/ folders")
wsol_list = DatasetLayout("medcam.data.wsol:WSOLList",
                          "WSOL lists: <split>_list.txt labels with <split>_gt.txt boxes",
                          "Choe, Oh, Lee, Chun, Akata, Shim, Evaluating Weakly Supervised Object Localization "
                          "Methods Right, CVPR 2020")
