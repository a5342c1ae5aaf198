"""The data side of a run: where the data is and how it is split (:class:`DataConfig`), opening it for a
spec, and fitting the spec's classes to it (what :mod:`medcam.engine.runs` trains and evaluates on)."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from medcam.errors import DataError, SpecError

__all__ = ["DataConfig", "open_dataset", "fit_spec_to_data", "provisional_spec", "split_of", "data_info",
           "spec_kind_of"]


@dataclass
class DataConfig:
    """Where the data is and how it is split.

    Attributes:
        path: the data set folder.
        dataset: layout name (``busi``, ``imagefolder``, ``nih``, ...); ``None`` detects it.
        val: fraction held out for validation (model selection), unless the layout fixes a val part.
        test: fraction held out for the final test, unless the layout fixes a test part.
        split_seed: seed of the stratified split (separate from the training seed,
            so several training seeds share one split).
        augment: training augmentation (a preset name of :mod:`medcam.data.transforms`, a mapping or None).
        cache_dir: folder for a one-time resized copy of the images (faster epochs), or None.
        groups: group keys so related images stay in one split (e.g. ``"near_duplicates"``), or None.
        options: further keyword arguments of the layout (e.g. NIH ``task``).
    """

    path: str
    dataset: str | None = None
    val: float = 0.15
    test: float = 0.15
    split_seed: int = 0
    augment: Any = "default"
    cache_dir: str | None = None
    groups: Any = None
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = os.fspath(self.path)
        return out


def open_dataset(data: DataConfig, spec: Mapping[str, Any]) -> Any:
    """The full data set (every split), preprocessed for the resolved model ``spec``."""
    from medcam.data import build_dataset

    options = dict(data.options)
    if data.cache_dir is not None:
        options["cache_dir"] = data.cache_dir
    if data.groups is not None:
        options["groups"] = data.groups
    dataset = build_dataset(data.dataset, data.path, preprocess=spec, **options)
    if data.cache_dir is not None:
        # Fill the cache before training: every epoch, including the first, then reads the same
        # cached pixels, so a run gives the same result with a cold or a warm cache.
        dataset.build_cache()
    return dataset


def spec_kind_of(spec: Mapping[str, Any]) -> str:
    """``"segmenter"`` or ``"model"`` for a resolved spec."""
    return "segmenter" if "segmenter" in spec else "model"


def fit_spec_to_data(spec_source: Any, dataset: Any) -> dict[str, Any]:
    """The resolved model spec with ``num_classes``, ``class_names`` and ``multilabel`` of ``dataset``;
    for a segmenter spec, the resolved spec once ``dataset`` is known to have masks.

    Raises:
        SpecError: the spec names class names that differ from the data set's; a segmenter
            spec with more than one mask channel.
        DataError: a segmenter spec on a data set without masks.
    """
    from medcam.spec import load_spec, resolve_model_spec
    from medcam.spec_segmenter import resolve_segmenter_spec, spec_kind

    if spec_kind(spec_source) == "segmenter":
        from .seg_evaluate import require_masks
        from .seg_trainer import check_segmenter_classes

        require_masks(dataset, str(getattr(dataset, "root", None) or "the data set"))
        resolved = resolve_segmenter_spec(spec_source)
        check_segmenter_classes(resolved)
        return resolved
    raw = load_spec(spec_source)
    names = [str(c) for c in dataset.class_names]
    given = raw.get("class_names")
    if given is not None and [str(c) for c in given] != names:
        raise SpecError(f"class_names: the spec says {list(given)} but the data set has {names} (in label order); "
                        f"remove class_names from the spec or match the data; to show other names for the "
                        f"classes, use display_names (e.g. display_names: {{{names[0]}: ...}})")
    raw["num_classes"] = len(names)
    raw["class_names"] = names
    raw["multilabel"] = bool(getattr(dataset, "multilabel", False))
    return resolve_model_spec(raw)


def provisional_spec(spec_source: Any) -> dict[str, Any]:
    """The spec resolved for its ``preprocess``, ``in_chans`` and ``train`` only (classes come from the data later);
    a segmenter spec is resolved as it is."""
    from medcam.spec import load_spec, resolve_model_spec
    from medcam.spec_segmenter import resolve_segmenter_spec, spec_kind

    if spec_kind(spec_source) == "segmenter":
        return resolve_segmenter_spec(spec_source)
    raw = load_spec(spec_source)
    raw["class_names"] = None  # None, not absent: a preset's class names would clash with the provisional count
    raw["display_names"] = None  # they need the data's class names
    raw["num_classes"] = 1  # provisional: set from the data set by fit_spec_to_data
    return resolve_model_spec(raw)


def split_of(full: Any, data: DataConfig) -> dict[str, Any]:
    parts = full.splits(data.val, data.test, seed=data.split_seed)
    out: dict[str, Any] = {"indices": parts}
    if not parts["train"]:
        raise DataError(f"{data.path}: the split left no training images")
    out["train"] = full.subset(parts["train"], augment=data.augment)
    out["val"] = full.subset(parts["val"], augment=None) if parts["val"] else None
    out["test"] = full.subset(parts["test"], augment=None) if parts["test"] else None
    return out


def data_info(data: DataConfig, full: Any, sizes: Mapping[str, int]) -> dict[str, Any]:
    info = data.to_dict()
    info["dataset"] = getattr(full, "layout", data.dataset)
    info["path"] = str(Path(data.path).resolve())
    info["split_sizes"] = dict(sizes)
    info["class_names"] = list(full.class_names)
    return json.loads(json.dumps(info, default=str))
