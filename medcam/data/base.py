"""The dataset base class every layout builds on, and the batch ``collate`` function.

A dataset is a list of :class:`Record` (file paths, label, mask files, boxes,
group, predefined split) plus class names. Nothing is decoded until an item is
requested, so ``targets``, ``class_counts()``, ``splits()`` and ``folds()``
are instant.

An item (``dataset[i]``) is a dict:

=============== ==========================================================
``image``       ``(C, H, W)`` float32 in [0, 1] (the model normalizes)
``label``       int class index, or ``(K,)`` float32 multi-hot (``multilabel``)
``mask``        ``(H, W)`` bool lesion mask (only data sets with masks)
``boxes``       ``(N, 4)`` float32 ``(x0, y0, x1, y1)`` in pixels of ``image``,
                exclusive ``x1``/``y1`` (``N`` may be 0)
``box_labels``  ``(N,)`` int64 class index of each box
``path``        str, the image file
``index``       int, the position in this dataset
=============== ==========================================================

and :func:`collate` stacks items into a batch (``boxes`` stay a list).

Bad data: with ``on_error="raise"`` (default) a missing, empty, corrupt or
inconsistent file raises :class:`medcam.errors.DataError` naming it; with
``on_error="skip"`` it is logged (logger ``medcam.data``) and left out: at
construction when the check finds it, or, for a file that only fails to decode
later, by returning the next readable item in its place.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..boxes import component_boxes, connected_components
from ..errors import DataError
from ..progress import show_bar
from .cache import ResizedCache
from .batching import collate
from .io import image_size, read_mask, reduce_array
from .preprocess import (Geometry, Preprocess, expand_channels, fit_stage, load_compact, resize_stage,
                         transform_boxes)
from .splits import kfold_splits, stratified_split
from .transforms import Augment

__all__ = ["Record", "MedcamDataset", "collate", "ErrorPolicy", "logger", "EMPTY_CLASS_HINT"]

logger = logging.getLogger("medcam.data")

SPLIT_NAMES = ("train", "val", "test")

#: How to accept a class without images on purpose (said by every error that refuses one).
EMPTY_CLASS_HINT = ("Add its images, leave it out (exclude=[...] / class_names=[...]), or pass "
                    "allow_empty_classes=True (medcam train: -o allow_empty_classes=true)")
CHECK_MODES = ("header", "full", "none")


@dataclass(frozen=True)
class Record:
    """One item of a data set, before anything is read.

    Attributes:
        path: the image file.
        label: class index, or for multi-label data the tuple of positive class indices.
        masks: mask files OR-ed into the item's mask (empty: no mask files).
        boxes: ``(x0, y0, x1, y1)`` boxes in pixels of ``box_reference`` (or of the image).
        box_labels: class index per box.
        box_reference: ``(H, W)`` of the image the boxes were drawn on, when it is
            not the file itself (NIH: 1024 x 1024 originals); boxes are scaled to the file.
        group: group key for splits (patient, near-duplicate cluster), or None.
        split: a split fixed by the layout (``train``/``val``/``test``/``trainval``), or None.
    """

    path: str
    label: int | tuple[int, ...]
    masks: tuple[str, ...] = ()
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    box_labels: tuple[int, ...] = ()
    box_reference: tuple[int, int] | None = None
    group: str | None = None
    split: str | None = None


class ErrorPolicy:
    """``on_error="raise"``: raise a DataError; ``"skip"``: log a warning and remember the message."""

    def __init__(self, on_error: str = "raise"):
        if on_error not in ("raise", "skip"):
            from ..registry import did_you_mean

            raise DataError(f"on_error: expected 'raise' or 'skip', got {on_error!r}"
                            f"{did_you_mean(str(on_error), ('raise', 'skip'))}")
        self.on_error = on_error
        self.skipped: list[str] = []

    @property
    def skip(self) -> bool:
        return self.on_error == "skip"

    def __call__(self, message: str) -> None:
        if not self.skip:
            raise DataError(message)
        logger.warning("%s (skipped)", message)
        self.skipped.append(message)


class MedcamDataset(Dataset):
    """Base class: records + class names -> preprocessed, augmented items.

    Subclasses build the records from a layout on disk and call
    ``super().__init__``. The keyword options below are shared by every layout.

    Args:
        records: the items.
        class_names: the K class names; labels index into them.
        multilabel: True if labels are sets of classes (items get a ``(K,)`` multi-hot label).
        has_masks: True if items carry a mask (the OR of ``Record.masks``).
        boxes_from_mask: True to derive ``boxes`` from the final mask's connected
            components (:func:`medcam.boxes.connected_components`), exact under augmentation.
        root: the data set folder (for messages and group files).
        preprocess: a model/segmenter spec, its ``preprocess`` mapping or a
            :class:`Preprocess` (default: 224 x 224 square, 3 channels).
        in_chans: 1 or 3 output channels if ``preprocess`` does not say.
        augment: None (evaluation), a preset name (``"default"``, ``"light"``,
            ``"flip"``), a mapping or an :class:`Augment`.
        on_error: ``"raise"`` or ``"skip"`` (see the module docstring).
        check: at construction, ``"header"`` reads every image and mask header
            (sizes, unreadable or empty files; fast), ``"full"`` decodes every
            file, ``"none"`` trusts the files until they are loaded.
        cache_dir: folder of the resized cache (:class:`ResizedCache`) or None.
        allow_empty_classes: accept a single-label data set in which a class has no
            image (a class of support 0 in training and evaluation). Default False:
            such a class is a DataError naming it (usually an empty or missing folder).
        groups: group keys for splits: None (the layout's, e.g. NIH patients),
            a sequence (one per record), a mapping or CSV file ``image,group``
            (image as a path relative to ``root`` or a file name), a callable
            ``path -> key``, or ``"near_duplicates"`` (perceptual-hash clusters,
            :func:`medcam.data.groups.near_duplicate_groups`).
    """

    #: Layout name used by :func:`medcam.data.build_dataset`.
    layout: str = "base"
    #: Whether a class without images is an error (see ``allow_empty_classes``); False for layouts whose
    #: labels are derived, not chosen (the lesion / no-lesion labels of mask folders).
    every_class_needed: bool = True

    def __init__(self, records: Sequence[Record], class_names: Sequence[str], *, multilabel: bool = False,
                 has_masks: bool = False, boxes_from_mask: bool = False, root: str | os.PathLike[str] | None = None,
                 preprocess: Any = None, in_chans: int | None = None, augment: Any = None,
                 on_error: str = "raise", check: str = "header", cache_dir: str | os.PathLike[str] | None = None,
                 groups: Any = None, allow_empty_classes: bool = False, policy: ErrorPolicy | None = None):
        self.policy = policy or ErrorPolicy(on_error)
        if check not in CHECK_MODES:
            from ..registry import did_you_mean

            raise DataError(f"check: expected one of {', '.join(CHECK_MODES)}, got {check!r}"
                            f"{did_you_mean(str(check), CHECK_MODES)}")
        self.root = None if root is None else str(root)
        self.class_names = [str(c) for c in class_names]
        if not self.class_names:
            raise DataError(f"{self.root or 'data set'}: no classes")
        self.multilabel = bool(multilabel)
        self.has_masks = bool(has_masks)
        self.boxes_from_mask = bool(boxes_from_mask)
        self.preprocess = Preprocess.from_spec(preprocess, in_chans)
        self.augment = Augment.from_config(augment)
        self.cache = None if cache_dir is None else ResizedCache(cache_dir, self.preprocess)
        self.records: list[Record] = list(records)
        self._check_labels()
        if groups is not None:
            from .groups import resolve_groups

            keys = resolve_groups(groups, [r.path for r in self.records], self.root)
            self.records = [dataclasses.replace(r, group=k) for r, k in zip(self.records, keys)]
        if check != "none":
            self.records = self._check_files(self.records, full=check == "full")
        if not self.records:
            raise DataError(f"{self.root or 'data set'}: no usable images"
                            + (f" ({len(self.policy.skipped)} skipped)" if self.policy.skipped else ""))
        self.allow_empty_classes = bool(allow_empty_classes)
        if self.every_class_needed and not self.multilabel and not self.allow_empty_classes:
            empty = [name for name, n in self.class_counts().items() if n == 0]
            if empty:
                raise DataError(f"{self.root or 'data set'}: class '{empty[0]}' has no images"
                                + (f" ({len(self.policy.skipped)} files skipped)" if self.policy.skipped else "")
                                + f"; a model would get a class of support 0. {EMPTY_CLASS_HINT}")
        self._bad: set[int] = set()

    # ------------------------------------------------------------------ description
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.records]

    @property
    def groups(self) -> list[str | None]:
        return [r.group for r in self.records]

    @property
    def targets(self) -> np.ndarray:
        """Labels without reading images: ``(N,)`` int64, or ``(N, K)`` uint8 multi-hot for multi-label data."""
        if self.multilabel:
            out = np.zeros((len(self.records), self.num_classes), dtype=np.uint8)
            for i, r in enumerate(self.records):
                out[i, list(r.label)] = 1  # type: ignore[arg-type]
            return out
        return np.array([int(r.label) for r in self.records], dtype=np.int64)  # type: ignore[arg-type]

    def class_counts(self) -> dict[str, int]:
        """Items per class (positives per class for multi-label data), in class order."""
        t = self.targets
        counts = t.sum(0) if self.multilabel else np.bincount(t, minlength=self.num_classes)
        return {name: int(c) for name, c in zip(self.class_names, counts)}

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.class_counts().items())
        extra = "; masks" if self.has_masks else ""
        extra += "; multi-label" if self.multilabel else ""
        return (f"{type(self).__name__}({len(self)} images, {self.num_classes} classes: {counts}{extra}"
                f"{'; root=' + self.root if self.root else ''})")

    # ------------------------------------------------------------------ checks
    def _check_labels(self) -> None:
        k = self.num_classes
        for r in self.records:
            labels = r.label if isinstance(r.label, tuple) else (r.label,)
            if self.multilabel != isinstance(r.label, tuple):
                raise DataError(f"{r.path}: label {r.label!r} does not match multilabel={self.multilabel}")
            for lab in labels:
                if isinstance(lab, bool) or not isinstance(lab, (int, np.integer)) or not 0 <= int(lab) < k:
                    raise DataError(f"{r.path}: label {lab!r} is not a class index in 0..{k - 1}")

    def _check_files(self, records: list[Record], *, full: bool) -> list[Record]:
        from tqdm.auto import tqdm

        kept = []
        bar = tqdm(records, desc=f"checking {self.layout} files", unit="img", leave=False,
                   disable=len(records) < 2000 or not show_bar())
        for r in bar:
            try:
                if full:
                    prepared, factor = self._read_prepared(r)
                    if self.has_masks:
                        self._read_mask(r, self._image_size(r), factor)
                else:
                    size = self._image_size(r)
                    for m in r.masks:
                        msize = image_size(m)
                        if msize != size:
                            raise DataError(f"{m}: mask is {msize[1]}x{msize[0]} (WxH) but its image {r.path} is "
                                            f"{size[1]}x{size[0]}")
            except DataError as err:
                self.policy(str(err))
                continue
            kept.append(r)
        return kept

    # ------------------------------------------------------------------ reading (override for in-memory data)
    def _image_size(self, record: Record) -> tuple[int, int]:
        """``(H, W)`` of the record's image from its header."""
        return image_size(record.path)

    def _read_prepared(self, record: Record) -> tuple[np.ndarray, int]:
        """Step 1 of the preprocessing: ``(h, w, c)`` float32 in [0, 1], c = 1 for grey-derived
        output, else 3 (:func:`medcam.data.preprocess.load_compact`; channels are expanded after resizing),
        and the factor huge images were reduced by while read (1: ``(h, w) = (H0, W0)``)."""
        _, prepared, factor = load_compact(record.path, self.preprocess)
        return prepared, factor

    def _read_mask(self, record: Record, size: tuple[int, int], factor: int = 1) -> np.ndarray:
        """The OR of the record's masks, ``(H0, W0)`` bool (reduced ``factor`` times, a pixel being
        foreground when any pixel of its block is); a mask of another size than ``size`` raises DataError."""
        out = np.zeros(size, dtype=bool)
        for m in record.masks:
            mask = read_mask(m)
            if mask.shape != tuple(size):
                raise DataError(f"{m}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image {record.path} "
                                f"is {size[1]}x{size[0]}")
            out |= mask
        return out if factor == 1 else reduce_array(out, factor) > 0

    def _sources(self, record: Record) -> list[str]:
        return [record.path, *record.masks]

    def _resized(self, record: Record) -> tuple[Tensor, Tensor | None, Geometry]:
        """Steps 1-2 (read, rolling ball, channels, resize), through the cache when there is one."""
        if self.cache is not None:
            hit = self.cache.load(self._sources(record))
            if hit is not None:
                return hit
        prepared, factor = self._read_prepared(record)
        size = (int(prepared.shape[0]), int(prepared.shape[1]))
        full = size if factor == 1 else self._image_size(record)
        mask = torch.from_numpy(self._read_mask(record, full, factor)) if self.has_masks else None
        image = torch.from_numpy(np.ascontiguousarray(prepared.transpose(2, 0, 1)))
        image, mask, geometry = resize_stage(image, mask, self.preprocess)
        if factor > 1:
            geometry = geometry.after_reduction(factor, full)
        if self.cache is not None:
            self.cache.save(self._sources(record), image, mask, geometry)
            image = self.cache.quantized(image)  # what a later hit returns: a cold and a warm cache agree
        return image, mask, geometry

    def build_cache(self) -> int:
        """Fill the resized cache for every item now (one pass with a progress bar); returns the count cached."""
        if self.cache is None:
            raise DataError("build_cache: this dataset has no cache_dir")
        from tqdm.auto import tqdm

        done = 0
        for record in tqdm(self.records, desc="caching resized images", unit="img", leave=False,
                              disable=not show_bar()):
            try:
                self._resized(record)
                done += 1
            except DataError as err:
                self.policy(str(err))
        return done

    # ------------------------------------------------------------------ items
    def _label(self, record: Record) -> int | Tensor:
        if self.multilabel:
            out = torch.zeros(self.num_classes, dtype=torch.float32)
            out[list(record.label)] = 1.0  # type: ignore[arg-type]
            return out
        return int(record.label)  # type: ignore[arg-type]

    def _boxes(self, record: Record, geometry: Geometry) -> tuple[Tensor, Tensor]:
        """The record's boxes in pixels of the resized canvas ``(N, 4)``, and their labels ``(N,)``."""
        if not record.boxes:
            return torch.zeros((0, 4)), torch.zeros((0,), dtype=torch.long)
        boxes = torch.tensor(record.boxes, dtype=torch.float32)
        labels = torch.tensor(record.box_labels, dtype=torch.long)
        sy, sx = geometry.scale
        if record.box_reference is not None:
            h0, w0 = geometry.original_size
            sy, sx = sy * h0 / record.box_reference[0], sx * w0 / record.box_reference[1]
        boxes, keep = transform_boxes(boxes, (sy, sx), geometry.offset, geometry.output_size)
        return boxes[keep], labels[keep]

    def load_item(self, index: int) -> dict[str, Any]:
        """Item ``index`` (see the module docstring); raises DataError on bad data whatever ``on_error``."""
        record = self.records[index]
        image, mask, geometry = self._resized(record)
        boxes, box_labels = self._boxes(record, geometry)
        random_crop = self.augment is not None and self.augment.random_crop
        image, mask, offset = fit_stage(image, mask, self.preprocess.size, random=random_crop)
        boxes, keep = transform_boxes(boxes, (1.0, 1.0), offset, self.preprocess.size)
        sample: dict[str, Any] = {"image": image, "mask": mask, "boxes": boxes[keep], "box_labels": box_labels[keep]}
        if self.augment is not None:
            sample = self.augment(sample)
        label = self._label(record)
        if self.boxes_from_mask and sample["mask"] is not None:
            labels, counts = connected_components(sample["mask"][None])
            sample["boxes"] = component_boxes(labels, counts)[0]
            fill = int(record.label) if not self.multilabel else 0  # type: ignore[arg-type]
            sample["box_labels"] = torch.full((int(counts[0]),), fill, dtype=torch.long)
        image = expand_channels(sample["image"].float(), self.preprocess.channels)
        item: dict[str, Any] = {"image": image.contiguous(), "label": label}
        if self.has_masks:
            item["mask"] = sample["mask"].bool().contiguous()
        item["boxes"] = sample["boxes"].float().reshape(-1, 4)
        item["box_labels"] = sample["box_labels"].long().reshape(-1)
        item["path"] = record.path
        item["index"] = index
        return item

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = index % len(self)
        try:
            return self.load_item(index)
        except DataError as err:
            if not self.policy.skip:
                raise
            if index not in self._bad:
                self._bad.add(index)
                logger.warning("%s (skipped; item %d replaced by the next readable one)", err, index)
        for step in range(1, len(self)):
            j = (index + step) % len(self)
            if j in self._bad:
                continue
            try:
                return self.load_item(j)
            except DataError as err:
                self._bad.add(j)
                logger.warning("%s (skipped)", err)
        raise DataError(f"{self.root or 'data set'}: no readable item left ({len(self._bad)} unreadable)")

    # ------------------------------------------------------------------ views and splits
    def subset(self, indices: Sequence[int], *, augment: Any = "keep") -> "MedcamDataset":
        """A dataset of the items at ``indices`` (same class names and settings), optionally with other augmentation."""
        view = copy.copy(self)
        n = len(self.records)
        bad = [i for i in indices if not -n <= int(i) < n]
        if bad:
            raise DataError(f"subset: indices {bad[:5]} out of range for {n} items")
        view.records = [self.records[int(i)] for i in indices]
        view._bad = set()
        if not isinstance(augment, str) or augment != "keep":
            view.augment = Augment.from_config(augment)
        return view

    def with_augment(self, augment: Any) -> "MedcamDataset":
        """The same items with other augmentation settings (None for evaluation)."""
        return self.subset(range(len(self)), augment=augment)

    def _split_groups(self, indices: Sequence[int]) -> list[Hashable] | None:
        groups = [self.records[i].group for i in indices]
        if all(g is None for g in groups):
            return None
        return [g if g is not None else f"__item{i}" for g, i in zip(groups, indices)]

    def splits(self, val: float = 0.15, test: float = 0.15, *, seed: int = 0) -> dict[str, list[int]]:
        """Train / val / test indices: the layout's own splits where it has them, the rest carved out.

        Parts the layout fixes (a ``test/`` folder, NIH's ``test_list.txt``) are
        kept. The missing ones are carved, stratified by class and grouped by
        ``groups`` (patients, near-duplicates) when the records have them, from
        the remaining items: ``val`` and ``test`` are fractions of those items.

        Returns:
            ``{"train": [...], "val": [...], "test": [...]}`` sorted index lists.
        """
        for name, f in (("val", val), ("test", test)):
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f < 1:
                raise DataError(f"splits: {name} must be a fraction in [0, 1), got {f!r}")
        fixed = {s: [i for i, r in enumerate(self.records) if r.split == s] for s in ("val", "test")}
        v = 0.0 if fixed["val"] else float(val)
        t = 0.0 if fixed["test"] else float(test)
        if v + t >= 1:
            raise DataError(f"splits: val + test = {v + t} leaves nothing to train on")
        pool = [i for i, r in enumerate(self.records) if r.split not in ("val", "test")]
        out = {"train": [], "val": list(fixed["val"]), "test": list(fixed["test"])}
        if pool:
            parts = stratified_split(self.targets[pool], {"train": 1 - v - t, "val": v, "test": t}, seed=seed,
                                     groups=self._split_groups(pool))
            for name, part in parts.items():
                out[name].extend(pool[j] for j in part)
        return {k: sorted(v_) for k, v_ in out.items()}

    def folds(self, k: int = 5, *, seed: int = 0, test: float = 0.0) -> list[dict[str, list[int]]]:
        """Stratified (and grouped, when the records have groups) k-fold cross-validation indices.

        The layout's fixed ``test`` part (or a ``test`` fraction carved first) is
        held out of every fold; the other items are dealt into ``k`` folds.

        Returns:
            ``k`` dicts ``{"train": [...], "val": [...], "test": [...]}``.
        """
        held = [i for i, r in enumerate(self.records) if r.split == "test"]
        rest = [i for i, r in enumerate(self.records) if r.split != "test"]
        if not held and test:
            if not 0 < test < 1:
                raise DataError(f"folds: test must be a fraction in [0, 1), got {test!r}")
            parts = stratified_split(self.targets[rest], {"rest": 1 - test, "test": test}, seed=seed,
                                     groups=self._split_groups(rest))
            held = [rest[j] for j in parts["test"]]
            rest = [rest[j] for j in parts["rest"]]
        folds = kfold_splits(self.targets[rest], k, seed=seed, groups=self._split_groups(rest))
        return [{"train": sorted(rest[j] for j in tr), "val": sorted(rest[j] for j in va), "test": sorted(held)}
                for tr, va in folds]

    def annotated(self) -> list[int]:
        """Indices of items with localization ground truth (a non-empty mask file list or boxes)."""
        return [i for i, r in enumerate(self.records) if r.boxes or r.masks]
