"""One image in, a verdict, an attribution map, a mask and boxes out.

:class:`Explainer` holds a trained classifier (and optionally a segmenter) and
explains images one at a time, reusing medcam's parts: the spec's
preprocessing (:func:`medcam.data.preprocess_image`), attribution methods
(:func:`medcam.attribution.explain`), the mapping back onto the original image
(:class:`medcam.data.Geometry`), connected-component boxes (:mod:`medcam.boxes`)
and overlays (:mod:`medcam.viz`)::

    ex = Explainer.from_checkpoint("runs/busi/best.pt", segmenter="runs/seg/best.pt")
    record = ex.run("benign (1).png", out_dir="out/")      # a JSON-ready dict; never raises
    explanation = ex.explain("benign (1).png")             # arrays and tensors; raises on bad input

``run`` is what ``medcam explain`` calls per image: any problem with the
image (missing, empty, unreadable, corrupt, too small, ...) becomes a
``fail`` record with the reason, so one bad file never stops a batch.
"""
from __future__ import annotations

import os
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import CheckpointError, DataError, MedcamError, UnknownNameError
from .record import fail_record, ok_record
from .render import attribution_overlay, mask_overlay, saliency_image, timestamp, write_pngs
from .settings import merge_preprocess

__all__ = ["Explainer", "Explanation", "DEFAULT_METHOD"]

#: Attribution method used when neither the caller nor the checkpoint's spec names one.
DEFAULT_METHOD = "gradcam"
#: The ``target`` that means "each image's predicted class" (the default).
PREDICTED = "predicted"


@dataclass
class Explanation:
    """Everything computed for one image, on the original image's pixel grid ``(H0, W0)``.

    Attributes:
        record: the JSON-ready result (see :mod:`medcam.inference.record`), without file paths.
        original: ``(H0, W0, C)`` float32 in [0, 1], the image as read.
        heatmap: ``(H0, W0)`` float attribution map in [0, 1] (CPU).
        saliency: ``(H0, W0, 3)`` uint8, the colorized map.
        overlay: ``(H0, W0, 3)`` uint8, the map over the image with the attribution boxes.
        mask: ``(H0, W0)`` bool segmenter mask (CPU), or None without a segmenter.
        mask_overlay: ``(H0, W0, 3)`` uint8, the mask over the image with its boxes, or None.
    """

    record: dict[str, Any]
    original: np.ndarray
    heatmap: Tensor
    saliency: np.ndarray
    overlay: np.ndarray
    mask: Tensor | None = None
    mask_overlay: np.ndarray | None = None

    def pictures(self) -> dict[str, np.ndarray]:
        """``{"saliency": ..., "overlay": ..., "mask": ...}`` (mask only with a segmenter)."""
        out = {"saliency": self.saliency, "overlay": self.overlay}
        if self.mask_overlay is not None:
            out["mask"] = self.mask_overlay
        return out


def _device_of(module: nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    return torch.device("cpu")


def _name_of(image: Any, name: str | None) -> str:
    if name is not None:
        return str(name)
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    return "<image>"


def _reason(err: BaseException) -> str:
    """A one-line reason for a fail record: medcam's own message, or the exception type and message."""
    if isinstance(err, (MedcamError, FileNotFoundError)):
        return str(err)
    return f"{type(err).__name__}: {err}"


class Explainer:
    """Explain images with a trained classifier (and optionally a segmenter).

    Args:
        model: a :class:`~medcam.model.MedcamModel` (e.g. ``medcam.load(path)``).
        segmenter: a :class:`~medcam.model.MedcamSegmenter` for the mask and its boxes, or None.
        method: attribution method name or part spec (``medcam list attributions``);
            default: the spec's ``attribution``, else ``gradcam``.
        target: class to explain (name or index); None = each image's predicted class.
        threshold: boxes of the attribution map are its connected regions above this value (maps are in [0, 1]).
        mask_threshold: the segmenter's foreground is ``sigmoid(logit) > mask_threshold``
            (any class, for multi-class segmenters).
        preprocess: overrides of the classifier's ``preprocess`` (keys of
            :data:`medcam.inference.settings.OVERRIDE_KEYS`); the segmenter keeps its own.
        grey: convert every input to greyscale (BT.601 luma) before preprocessing, for
            models trained on grey images that receive colour files (screenshots, annotated exports).
        min_size: images whose height or width is below this many pixels fail with "wrong size".
        cmap, alpha: colormap and blending weight of the attribution overlay.
    """

    def __init__(self, model: nn.Module, *, segmenter: nn.Module | None = None,
                 method: str | Mapping[str, Any] | None = None, target: str | int | None = None,
                 threshold: float = 0.5, mask_threshold: float = 0.5,
                 preprocess: Mapping[str, Any] | None = None, grey: bool = False, min_size: int = 16,
                 cmap: str = "jet", alpha: float = 0.5):
        from ..data.preprocess import Preprocess
        from ..model import MedcamModel, MedcamSegmenter

        if not isinstance(model, MedcamModel):
            raise CheckpointError(f"Explainer needs a classifier (MedcamModel), got {type(model).__name__}"
                                  + (": pass segmenters as segmenter=" if isinstance(model, MedcamSegmenter) else ""))
        if segmenter is not None and not isinstance(segmenter, MedcamSegmenter):
            raise CheckpointError(f"segmenter must be a MedcamSegmenter, got {type(segmenter).__name__}")
        for label, value in (("threshold", threshold), ("mask_threshold", mask_threshold)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{label} must be in [0, 1], got {value}")
        if int(min_size) < 1:
            raise ValueError(f"min_size must be at least 1 pixel, got {min_size}")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        saliency_image(torch.zeros(1, 1), cmap)  # an unknown colormap fails here, not on every image
        self.model = model.eval()
        self.segmenter = None if segmenter is None else segmenter.eval()
        merged = merge_preprocess(model.spec, preprocess)
        self.preprocess = Preprocess.from_spec({"preprocess": merged, "in_chans": model.in_chans})
        self.segmenter_preprocess = None if segmenter is None else Preprocess.from_spec(segmenter.spec)
        self.grey = bool(grey)
        self.min_size = int(min_size)
        self.threshold = float(threshold)
        self.mask_threshold = float(mask_threshold)
        self.cmap = cmap
        self.alpha = float(alpha)
        self._methods: dict[str, Any] = {}
        self.method = self.method_name(method)
        self.target = self.target_index(target)

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike[str], segmenter: str | os.PathLike[str] | None = None,
                        *, device: str = "auto", **options: Any) -> "Explainer":
        """Load a classifier checkpoint (and a segmenter checkpoint) written by ``medcam train`` / ``medcam.save``.

        Raises:
            FileNotFoundError, CheckpointError: a missing or bad file, or a checkpoint of the wrong kind.
        """
        from ..checkpoint import load
        from ..engine.distributed import resolve_device
        from ..model import MedcamModel, MedcamSegmenter

        where = resolve_device(device)
        model = load(checkpoint, map_location=where)
        if not isinstance(model, MedcamModel):
            raise CheckpointError(f"CHECKPOINT '{checkpoint}' holds a segmenter, not a classifier; pass segmenter "
                                  f"checkpoints with --segmenter")
        seg = None
        if segmenter is not None:
            seg = load(segmenter, map_location=where)
            if not isinstance(seg, MedcamSegmenter):
                raise CheckpointError(f"--segmenter '{segmenter}' holds a classifier, not a segmenter; --segmenter "
                                      f"needs a segmenter checkpoint (medcam.build_segmenter + medcam.save)")
        return cls(model, segmenter=seg, **options)

    # -- names -------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        """The names records and pages show: the spec's ``display_names``, else its ``class_names``."""
        return self.model.display_names

    def class_index(self, target: str | int) -> int:
        """A class given by name or index (``"benign"``, ``1``, ``"1"``) as its index.

        Names are the shown names or the data's class names (a folder called
        ``3`` shown as "Patient with Osteoporosis" answers to both).
        """
        names = self.class_names
        data_names = self.model.class_names
        if isinstance(target, bool):
            raise ValueError(f"target must be a class name or index, got {target!r}")
        if isinstance(target, str) and target in data_names and target not in names:
            return data_names.index(target)
        if isinstance(target, int) or (isinstance(target, str) and target.strip().lstrip("-").isdigit()
                                       and target.strip() not in names):
            index = int(target)
            if not 0 <= index < len(names):
                raise ValueError(f"target class {index} is out of range: the model has {len(names)} classes "
                                 f"(0..{len(names) - 1}: {', '.join(names)})")
            return index
        if target in names:
            return names.index(target)
        from ..registry import did_you_mean

        raise UnknownNameError(f"unknown class '{target}'{did_you_mean(str(target), names)} "
                               f"(the model's classes: {', '.join(names)})")

    def target_index(self, target: str | int | None) -> int | None:
        """``None`` for the predicted class (``None`` or ``"predicted"``), else :meth:`class_index`."""
        if target is None or (target == PREDICTED and PREDICTED not in self.class_names + self.model.class_names):
            return None
        return self.class_index(target)

    def method_name(self, method: str | Mapping[str, Any] | None) -> str:
        """Build (once) and validate an attribution method; returns the key to use it by."""
        if method is None:
            method = self.model.spec.get("attribution") or DEFAULT_METHOD
        key = method if isinstance(method, str) else repr(sorted(dict(method).items()))
        if key not in self._methods:
            from ..build import build_attribution

            self._methods[key] = build_attribution(method)
        return key

    def _method(self, method: str | Mapping[str, Any] | None) -> Any:
        return self._methods[self.method_name(self.method if method is None else method)]

    # -- reading -----------------------------------------------------------------
    def read(self, image: Any) -> np.ndarray:
        """The image as ``(H0, W0, C)`` float32 in [0, 1] (grey if ``grey``), or a DataError naming the problem."""
        from ..data.io import as_image_array, read_image, to_grey

        if isinstance(image, (str, os.PathLike)):
            path = Path(image)
            if path.is_dir():
                raise DataError(f"{path}: is a folder, not an image file")
            raw = read_image(path)
        else:
            raw = as_image_array(image)
        if self.grey and raw.shape[2] != 1:
            raw = to_grey(raw)[..., None]
        h, w = raw.shape[:2]
        if min(h, w) < self.min_size:
            raise DataError(f"{_name_of(image, None)}: wrong size: {h}x{w} pixels is smaller than the minimum of "
                            f"{self.min_size} pixels per side (min_size)")
        return raw

    # -- the work ----------------------------------------------------------------
    def explain(self, image: Any, *, name: str | None = None, method: str | Mapping[str, Any] | None = None,
                target: str | int | None = None, threshold: float | None = None,
                mask_threshold: float | None = None) -> Explanation:
        """Classify, attribute and (with a segmenter) segment one image.

        Args:
            image: a file path, or an array / PIL image / tensor (see :func:`medcam.data.preprocess_image`).
            name: what the record calls the image (default: the path).
            method, target, threshold, mask_threshold: per-call overrides of the constructor's settings.

        Returns:
            an :class:`Explanation`; its record has no file paths yet (see :meth:`run`).

        Raises:
            DataError: the image is missing, empty, unreadable, corrupt or too small.
            MedcamError, ValueError: a bad method, target or threshold.
        """
        from ..attribution import EmptyMapWarning, empty_map_advice
        from ..attribution import explain as attribute
        from ..data.preprocess import preprocess_image
        from ..viz import map_boxes

        built = self._method(method)
        target_index = self.target if target is None else self.target_index(target)
        cut = self.threshold if threshold is None else float(threshold)
        raw = self.read(image)
        prep = preprocess_image(raw, self.preprocess)
        with warnings.catch_warnings():  # said in the record instead, in command-line terms
            warnings.simplefilter("ignore", EmptyMapWarning)
            result = attribute(self.model, prep.image.to(_device_of(self.model)), built, target=target_index,
                               details=True)
        logits = result.logits.detach().float().cpu()[0]
        probs = torch.sigmoid(logits) if self.model.multilabel else torch.softmax(logits, dim=0)
        names = self.class_names
        heatmap = prep.geometry.map_to_original(result.maps.detach().float())[0].cpu().clamp(0.0, 1.0)
        attr_boxes = map_boxes(heatmap, cut, mode="all")
        original = prep.original
        mask = mask_picture = None
        boxes, source = attr_boxes, "attribution"
        if self.segmenter is not None:
            mask, boxes = self._segment(raw, mask_threshold)
            source = "segmenter"
            mask_picture = mask_overlay(original, mask, boxes)
        explained = names[int(result.targets[0, 0])]
        notes = []
        if result.empty is not None and bool(result.empty.reshape(-1)[0]):
            predicted = int(result.targets[0, 0]) == int(probs.argmax())
            notes.append(empty_map_advice(built.name, 1, 1, [explained], cli=True, predicted=predicted))
        record = ok_record(
            image=_name_of(image, name), diagnosis=names[int(probs.argmax())],
            probabilities={n: float(p) for n, p in zip(names, probs.tolist())}, method=built.name,
            target=explained, boxes=boxes, box_source=source, attribution_boxes=attr_boxes,
            image_size=original.shape[:2], warnings=notes)
        return Explanation(record=record, original=original, heatmap=heatmap,
                           saliency=saliency_image(heatmap, self.cmap),
                           overlay=attribution_overlay(original, heatmap, attr_boxes, cmap=self.cmap, alpha=self.alpha),
                           mask=mask, mask_overlay=mask_picture)

    @torch.no_grad()
    def _segment(self, raw: np.ndarray, mask_threshold: float | None) -> tuple[Tensor, Tensor]:
        """The segmenter's mask ``(H0, W0)`` bool on the original grid and its component boxes ``(N, 4)``."""
        from ..boxes import component_boxes, connected_components
        from ..data.preprocess import preprocess_image

        assert self.segmenter is not None and self.segmenter_preprocess is not None
        cut = self.mask_threshold if mask_threshold is None else float(mask_threshold)
        prep = preprocess_image(raw, self.segmenter_preprocess)
        probs = torch.sigmoid(self.segmenter(prep.image.to(_device_of(self.segmenter))).float()).amax(1)  # (1, h, w)
        mask = prep.geometry.map_to_original(probs)[0].cpu() > cut
        labels, counts = connected_components(mask[None])
        return mask, component_boxes(labels, counts)[0]

    def run(self, image: Any, out_dir: str | os.PathLike[str] | None = None, *, name: str | None = None,
            stamp: str | None = None, **options: Any) -> dict[str, Any]:
        """Explain one image and write its PNGs; never raises for a bad image.

        Args:
            image: a file path or an in-memory image.
            out_dir: folder for ``<stem>_saliency_<stamp>.png``, ``<stem>_overlay_<stamp>.png``
                (and ``<stem>_mask_<stamp>.png`` with a segmenter); None writes nothing.
            name: the record's ``image`` (default: the path).
            stamp: timestamp for the file names (default: now, ``YYYYmmddHHMMSS``).
            **options: per-call ``method``, ``target``, ``threshold``, ``mask_threshold``.

        Returns:
            the record: ``result`` ``"ok"`` with paths filled in, or ``"fail"`` with ``error``.
        """
        label = _name_of(image, name)
        try:
            explanation = self.explain(image, name=name, **options)
            record = explanation.record
            if out_dir is not None:
                stem = Path(label).stem if isinstance(image, (str, os.PathLike)) or name else "image"
                paths = write_pngs(explanation.pictures(), out_dir, stem or "image", stamp or timestamp())
                record["saliency_path"] = paths["saliency"]
                record["overlay_path"] = paths["overlay"]
                record["mask_path"] = paths.get("mask")
            return record
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # one bad image never stops a batch: report it
            if os.environ.get("MEDCAM_DEBUG"):
                traceback.print_exc()
            method = options.get("method")
            return fail_record(label, _reason(err), method if isinstance(method, str) else self.method_label)

    @property
    def method_label(self) -> str:
        """The registered name of the default attribution method (e.g. ``"gradcam"``)."""
        return self._methods[self.method].name
