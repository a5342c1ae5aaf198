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
image (missing, empty, unreadable, corrupt, too small, too many pixels, ...)
becomes a ``fail`` record with the reason, so one bad file never stops a batch.

Memory stays bounded whatever the file (``docs/guarantees.md``): a file of more
than ``max_pixels`` pixels is refused from its header, huge images are reduced
while they are read (:meth:`medcam.data.Preprocess.reduction`, as in training),
and the maps, masks and pictures are computed on a *picture grid* of at most
``render_size`` pixels per side (the image's own grid when it is smaller).
Boxes and ``image_size`` in the record are always in original-image pixels.
"""
from __future__ import annotations

import os
import traceback
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import AttributionError, CheckpointError, DataError, UnknownNameError
from ..limits import RENDER_SIZE
from ..viz import to_rgb
from .explanation import Explanation, device_of, failure_reason, name_of, to_original
from .record import fail_record, ok_record
from .render import attribution_overlay, mask_overlay, saliency_image, timestamp, write_pngs
from .settings import merge_preprocess

__all__ = ["Explainer", "Explanation", "failure_reason", "DEFAULT_METHOD", "DEFAULT_THRESHOLD", "NO_METHOD"]

#: Attribution method used when neither the caller nor the checkpoint's spec names one.
DEFAULT_METHOD = "gradcam"
#: Attribution box threshold when neither the caller nor the model's head (``head.box_threshold``) gives one.
DEFAULT_THRESHOLD = 0.5
#: The ``target`` that means "each image's predicted class" (the default).
PREDICTED = "predicted"
#: The per-call ``segmenter_method`` that switches the segmenter's map off (the web app's choice).
NO_METHOD = "none"


class Explainer:
    """Explain images with a trained classifier (and optionally a segmenter).

    Args:
        model: a :class:`~medcam.model.MedcamModel` (e.g. ``medcam.load(path)``).
        segmenter: a :class:`~medcam.model.MedcamSegmenter` for the mask and its boxes, or None.
        method: attribution method name or part spec (``medcam list attributions``);
            default: the spec's ``attribution``, else ``gradcam``.
        target: class to explain (name or index); None = each image's predicted class.
        threshold: boxes of the attribution map are its connected regions above this value (maps are in [0, 1]);
            default: the threshold the model's head declares for its own box readout
            (:class:`medcam.model.BoxThresholdHead`, 0.83 for the SR/WSOL ``fpm`` head), else 0.5.
        ground_truth: for image files, find and draw their ground truth (a BUSI or mask-folder mask's
            outline, NIH or WSOL-list boxes; :mod:`medcam.inference.truth`) in a colour of its own.
        mask_threshold: the segmenter's foreground is ``sigmoid(logit) > mask_threshold``
            (any class, for multi-class segmenters).
        segmenter_method: also map what the segmenter looked at: this attribution method applied to the score
            of its predicted region (:func:`medcam.attribution_segmentation.explain_segmenter`; the class
            with the largest region for multi-class segmenters); None: no segmenter map. Needs a segmenter
            with learned layers (not the training-free ``lung_fields``).
        preprocess: overrides of the classifier's ``preprocess`` (keys of
            :data:`medcam.inference.settings.OVERRIDE_KEYS`); the segmenter keeps its own.
        grey: convert every input to greyscale (BT.601 luma) before preprocessing, for
            models trained on grey images that receive colour files (screenshots, annotated exports).
        min_size: images whose height or width is below this many pixels fail with "wrong size".
        max_pixels: images of more pixels (height x width) fail before they are decoded
            (default :data:`medcam.limits.MAX_PIXELS`, 50 million).
        render_size: longest side of the maps and pictures (:data:`medcam.limits.RENDER_SIZE`); larger images
            are shown reduced by an integer factor (see :class:`Explanation`).
        cmap, alpha: colormap and blending weight of the attribution overlay.
    """

    def __init__(self, model: nn.Module, *, segmenter: nn.Module | None = None,
                 method: str | Mapping[str, Any] | None = None, target: str | int | None = None,
                 threshold: float | None = None, mask_threshold: float = 0.5,
                 segmenter_method: str | Mapping[str, Any] | None = None, ground_truth: bool = True,
                 preprocess: Mapping[str, Any] | None = None, grey: bool = False, min_size: int = 16,
                 max_pixels: int | None = None, render_size: int = RENDER_SIZE, cmap: str = "jet",
                 alpha: float = 0.5):
        from ..data.preprocess import Preprocess
        from ..model import MedcamModel, MedcamSegmenter

        if not isinstance(model, MedcamModel):
            raise CheckpointError(f"Explainer needs a classifier (MedcamModel), got {type(model).__name__}"
                                  + (": pass segmenters as segmenter=" if isinstance(model, MedcamSegmenter) else ""))
        if segmenter is not None and not isinstance(segmenter, MedcamSegmenter):
            raise CheckpointError(f"segmenter must be a MedcamSegmenter, got {type(segmenter).__name__}")
        if threshold is None:
            from ..model import BoxThresholdHead

            head = getattr(model, "head", None)
            threshold = float(head.box_threshold) if isinstance(head, BoxThresholdHead) else DEFAULT_THRESHOLD
        for label, value in (("threshold", threshold), ("mask_threshold", mask_threshold)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{label} must be in [0, 1], got {value}")
        if int(min_size) < 1:
            raise ValueError(f"min_size must be at least 1 pixel, got {min_size}")
        if max_pixels is not None and (isinstance(max_pixels, bool) or int(max_pixels) < 1):
            raise ValueError(f"max_pixels must be a positive number of pixels, got {max_pixels}")
        if isinstance(render_size, bool) or int(render_size) < 16:
            raise ValueError(f"render_size must be at least 16 pixels, got {render_size}")
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
        self.max_pixels = None if max_pixels is None else int(max_pixels)
        self.render_size = int(render_size)
        self.threshold = float(threshold)
        self.mask_threshold = float(mask_threshold)
        self.ground_truth = bool(ground_truth)
        self.cmap = cmap
        self.alpha = float(alpha)
        self._methods: dict[str, Any] = {}
        self.method = self.method_name(method)
        self.target = self.target_index(target)
        self.segmenter_method = None if segmenter_method is None else self.segmenter_method_name(segmenter_method)

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike[str], segmenter: str | os.PathLike[str] | None = None,
                        *, device: str = "auto", sha256: str | None = None, segmenter_sha256: str | None = None,
                        **options: Any) -> "Explainer":
        """Load a classifier checkpoint written by ``medcam train`` / ``medcam.save``, and a segmenter: a checkpoint,
        a registered name such as ``lung_fields`` or a spec (:func:`medcam.segmenter_source.open_segmenter`).

        ``sha256`` / ``segmenter_sha256``: the files' expected digests (see :func:`medcam.load`).

        Raises:
            FileNotFoundError, CheckpointError: a missing or bad file, a checkpoint of the wrong kind,
                or a file whose sha256 differs from the one given.
        """
        from ..checkpoint import load
        from ..engine.distributed import resolve_device
        from ..model import MedcamModel

        where = resolve_device(device)
        model = load(checkpoint, map_location=where, sha256=sha256)
        if not isinstance(model, MedcamModel):
            raise CheckpointError(f"CHECKPOINT '{checkpoint}' holds a segmenter, not a classifier; pass segmenter "
                                  f"checkpoints with --segmenter")
        seg = None
        if segmenter is not None:
            from ..segmenter_source import open_segmenter

            seg = open_segmenter(segmenter, what="--segmenter", map_location=where, sha256=segmenter_sha256)
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
            raise AttributionError(f"target must be a class name or index, got {target!r}")
        if isinstance(target, str) and target in data_names and target not in names:
            return data_names.index(target)
        if isinstance(target, int) or (isinstance(target, str) and target.strip().lstrip("-").isdigit()
                                       and target.strip() not in names):
            index = int(target)
            if not 0 <= index < len(names):
                raise AttributionError(f"target class {index} is out of range: the model has {len(names)} classes "
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

    def segmenter_method_name(self, method: str | Mapping[str, Any]) -> str:
        """Validate an attribution method for the segmenter's map (:meth:`method_name`); returns its key.

        Raises:
            ValueError: no segmenter, a segmenter without learned layers, or a layer method and a
                segmenter that declares no ``cam_layer``.
        """
        from ..attribution_segmentation import CLASSIFIER_HEAD_METHODS, segmenter_layer

        if self.segmenter is None:
            raise ValueError("segmenter_method needs a segmenter (--segmenter): it maps what the segmenter looked at")
        if not self.segmenter_has_maps:
            name = (self.segmenter.spec.get("segmenter") or {}).get("name", type(self.segmenter).__name__)
            raise ValueError(f"segmenter '{name}' has no learned layers, so it has no attribution map; "
                             f"segmenter maps need a trained segmenter (medcam train on a segmenter spec)")
        key = self.method_name(method)
        built = self._methods[key]
        if built.name in CLASSIFIER_HEAD_METHODS:
            raise ValueError(f"segmenter method '{built.name}' reads a classifier head's class maps, which a "
                             f"segmenter has not; use gradcam or another method of medcam list attributions")
        if built.uses_layer:
            segmenter_layer(self.segmenter, None)
        return key

    @property
    def segmenter_has_maps(self) -> bool:
        """A segmenter with learned layers, so an attribution map of what it looked at exists (not ``lung_fields``)."""
        return self.segmenter is not None and any(p.requires_grad for p in self.segmenter.parameters())

    @property
    def segmenter_method_label(self) -> str | None:
        """The registered name of the segmenter map's method (e.g. ``"gradcam"``), or None when it is off."""
        return None if self.segmenter_method is None else self._methods[self.segmenter_method].name

    def _method(self, method: str | Mapping[str, Any] | None) -> Any:
        return self._methods[self.method_name(self.method if method is None else method)]

    # -- reading -----------------------------------------------------------------
    def check(self, image: Any) -> tuple[Any, tuple[int, int]]:
        """``(source, (H0, W0))``: the file path, or the in-memory image as an ``(H0, W0, C)`` array,
        after the checks that need no decoding (folder, size, pixel limit).

        Raises:
            DataError: naming the problem (missing, empty, not an image, a folder, too small, too many pixels).
        """
        from ..data.io import as_image_array, check_pixels, image_size

        where = name_of(image, None)
        if isinstance(image, (str, os.PathLike)):
            path = Path(image)
            try:
                folder = path.is_dir()
            except OSError as err:
                raise DataError(f"{path}: cannot read ({err.strerror or err})") from err
            if folder:
                raise DataError(f"{path}: is a folder, not an image file")
            source: Any = path
            h, w = image_size(path, self.max_pixels)
        else:
            source = as_image_array(image)
            h, w = source.shape[:2]
            check_pixels(h, w, self.max_pixels, where)
        if min(h, w) < self.min_size:
            raise DataError(f"{where}: wrong size: {h}x{w} pixels is smaller than the minimum of "
                            f"{self.min_size} pixels per side (min_size)")
        return source, (h, w)

    def read(self, image: Any) -> np.ndarray:
        """The image as ``(H0, W0, C)`` float32 in [0, 1] (grey if ``grey``), or a DataError naming the problem."""
        from ..data.io import read_image, to_grey

        source, _ = self.check(image)
        raw = read_image(source, max_pixels=self.max_pixels) if isinstance(source, Path) else source
        if self.grey and raw.shape[2] != 1:
            raw = to_grey(raw)[..., None]
        return raw

    def _prepare(self, source: Any, pre: Any) -> Any:
        """:func:`medcam.data.preprocess_image` with ``--grey`` (read as one channel, then replicated)."""
        from dataclasses import replace

        from ..data.preprocess import expand_channels, preprocess_image

        if not self.grey or pre.channels == 1:
            return preprocess_image(source, pre, max_pixels=self.max_pixels)
        prep = preprocess_image(source, replace(pre, channels=1), max_pixels=self.max_pixels)
        prep.image = expand_channels(prep.image[0], pre.channels)[None].contiguous()
        return prep

    def _picture(self, source: Any, prep: Any, factor: int) -> np.ndarray:
        """The image on the picture grid (reduced ``factor`` times), with the model's channels."""
        from ..data.io import read_image, reduce_array, to_channels

        if prep.factor == factor:
            base = prep.compact
        elif prep.factor == 1:
            base = reduce_array(prep.compact, factor)
        elif isinstance(source, Path):  # a huge file, read reduced for the model: read again for the picture
            base = read_image(source, reduce=factor, max_pixels=self.max_pixels)
        else:
            base = reduce_array(source, factor)
        if self.grey:
            base = to_channels(base, 1)
        return to_channels(base, self.model.in_chans)

    # -- the work ----------------------------------------------------------------
    def explain(self, image: Any, *, name: str | None = None, method: str | Mapping[str, Any] | None = None,
                target: str | int | None = None, threshold: float | None = None,
                mask_threshold: float | None = None,
                segmenter_method: str | Mapping[str, Any] | None = None) -> Explanation:
        """Classify, attribute and (with a segmenter) segment one image.

        Args:
            image: a file path, or an array / PIL image / tensor (see :func:`medcam.data.preprocess_image`).
            name: what the record calls the image (default: the path).
            method, target, threshold, mask_threshold, segmenter_method: per-call overrides of the
                constructor's settings (a segmenter method switches the segmenter map on for this call,
                ``"none"`` off).

        Returns:
            an :class:`Explanation` on the picture grid; its record (boxes in original pixels) has no
            file paths yet (see :meth:`run`).

        Raises:
            DataError: the image is missing, empty, unreadable, corrupt, too small or over the pixel limit.
            MedcamError, ValueError: a bad method, target or threshold.
        """
        from ..attribution import EmptyMapWarning, empty_map_advice
        from ..attribution import explain as attribute
        from ..viz import map_boxes

        built = self._method(method)
        target_index = self.target if target is None else self.target_index(target)
        cut = self.threshold if threshold is None else float(threshold)
        source, (h0, w0) = self.check(image)
        prep = self._prepare(source, self.preprocess)
        with warnings.catch_warnings():  # said in the record instead, in command-line terms
            warnings.simplefilter("ignore", EmptyMapWarning)
            result = attribute(self.model, prep.image.to(device_of(self.model)), built, target=target_index,
                               details=True)
        logits = result.logits.detach().float().cpu()[0]
        probs = torch.sigmoid(logits) if self.model.multilabel else torch.softmax(logits, dim=0)
        names = self.class_names
        factor = max(1, -(-max(h0, w0) // self.render_size))
        grid = prep.geometry.on_grid(factor)
        heatmap = grid.map_to_original(result.maps.detach().float())[0].cpu().clamp(0.0, 1.0)
        attr_boxes = map_boxes(heatmap, cut, mode="all")
        picture = self._picture(source, prep, factor)
        del prep
        rgb = to_rgb(picture)  # once, for both overlays
        truth = self._truth(source, (h0, w0)) if self.ground_truth else None
        truth_mask, truth_boxes = self._truth_on_grid(truth, factor, picture.shape[:2])
        mask = mask_picture = seg_map = seg_picture = None
        boxes, source_name = attr_boxes, "attribution"
        notes = []
        if segmenter_method is None:
            seg_key = self.segmenter_method
        else:
            seg_key = None if segmenter_method == NO_METHOD else self.segmenter_method_name(segmenter_method)
        if self.segmenter is not None:
            mask, boxes, seg_map = self._segment(source, factor, mask_threshold, seg_key)
            source_name = "segmenter"
            mask_picture = mask_overlay(rgb, mask, boxes)
            if seg_map is not None:
                seg_picture = attribution_overlay(rgb, seg_map, boxes, cmap=self.cmap, alpha=self.alpha)
                if not bool(mask.any()):
                    notes.append("the segmenter found no region above the mask threshold, so its map is empty; "
                                 "lower --mask-threshold to see what it looked at")
        explained = names[int(result.targets[0, 0])]
        if result.empty is not None and bool(result.empty.reshape(-1)[0]):
            predicted = int(result.targets[0, 0]) == int(probs.argmax())
            notes.append(empty_map_advice(built.name, 1, 1, [explained], cli=True, predicted=predicted))
        record = ok_record(
            image=name_of(image, name), diagnosis=names[int(probs.argmax())],
            probabilities={n: float(p) for n, p in zip(names, probs.tolist())}, method=built.name,
            target=explained, boxes=to_original(boxes, factor, (h0, w0)),
            box_source=source_name, attribution_boxes=to_original(attr_boxes, factor, (h0, w0)),
            image_size=(h0, w0), warnings=notes, box_threshold=cut,
            ground_truth=None if truth is None else truth.to_record(),
            segmenter_method=None if seg_key is None else self._methods[seg_key].name)
        return Explanation(record=record, original=picture, heatmap=heatmap,
                           saliency=saliency_image(heatmap, self.cmap),
                           overlay=attribution_overlay(rgb, heatmap, attr_boxes, cmap=self.cmap, alpha=self.alpha,
                                                       truth_boxes=truth_boxes, truth_mask=truth_mask),
                           mask=mask, mask_overlay=mask_picture, factor=factor, segmenter_heatmap=seg_map,
                           segmenter_overlay=seg_picture)

    @staticmethod
    def _truth(source: Any, size: tuple[int, int]) -> Any:
        """The image file's ground truth (:func:`medcam.inference.truth.find_ground_truth`), or None."""
        if not isinstance(source, Path):
            return None
        from .truth import find_ground_truth

        return find_ground_truth(source, size)

    @staticmethod
    def _truth_on_grid(truth: Any, factor: int, grid: tuple[int, int]) -> tuple[np.ndarray | None, Tensor]:
        """``(mask (h, w) bool or None, boxes (N, 4))`` of the ground truth on the picture grid.

        A mask is drawn as its outline and needs no boxes; box annotations are drawn as boxes.
        """
        if truth is None:
            return None, torch.zeros(0, 4)
        if truth.mask is None:
            return None, truth.boxes / factor
        mask = torch.from_numpy(truth.mask)[None, None].float()
        if factor > 1:
            mask = torch.nn.functional.adaptive_max_pool2d(mask, grid)
        return mask[0, 0].numpy() > 0, torch.zeros(0, 4)

    def _segment(self, source: Any, factor: int, mask_threshold: float | None,
                 method: str | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """The segmenter's mask ``(h, w)`` bool on the picture grid, its component boxes ``(N, 4)`` and, for a
        ``method`` key, its attribution map ``(h, w)`` in [0, 1] (else None)."""
        from ..attribution import EmptyMapWarning
        from ..attribution_segmentation import explain_segmenter
        from ..boxes import component_boxes, connected_components

        assert self.segmenter is not None and self.segmenter_preprocess is not None
        cut = self.mask_threshold if mask_threshold is None else float(mask_threshold)
        if not 0.0 <= cut <= 1.0:
            raise ValueError(f"mask_threshold must be in [0, 1], got {mask_threshold}")
        prep = self._prepare(source, self.segmenter_preprocess)
        image = prep.image.to(device_of(self.segmenter))
        grid = prep.geometry.on_grid(factor)
        with torch.no_grad():
            probs = torch.sigmoid(self.segmenter(image).float()).amax(1)  # (1, h, w)
        mask = grid.map_to_original(probs)[0].cpu() > cut
        labels, counts = connected_components(mask[None])
        seg_map = None
        if method is not None:
            with warnings.catch_warnings():  # an empty region is said in the record's warnings
                warnings.simplefilter("ignore", EmptyMapWarning)
                maps = explain_segmenter(self.segmenter, image, self._methods[method], threshold=cut)  # (1, h, w)
            seg_map = grid.map_to_original(maps.detach().float())[0].cpu().clamp(0.0, 1.0)
        return mask, component_boxes(labels, counts)[0], seg_map

    def run(self, image: Any, out_dir: str | os.PathLike[str] | None = None, *, name: str | None = None,
            stamp: str | None = None, **options: Any) -> dict[str, Any]:
        """Explain one image and write its PNGs; never raises for a bad image.

        Args:
            image: a file path or an in-memory image.
            out_dir: folder for ``<stem>_saliency_<stamp>.png``, ``<stem>_overlay_<stamp>.png``
                (and ``<stem>_mask_<stamp>.png`` with a segmenter, ``<stem>_segmap_<stamp>.png`` with a
                segmenter method); None writes nothing.
            name: the record's ``image`` (default: the path).
            stamp: timestamp for the file names (default: now, ``YYYYmmddHHMMSS``).
            **options: per-call ``method``, ``target``, ``threshold``, ``mask_threshold``, ``segmenter_method``.

        Returns:
            the record: ``result`` ``"ok"`` with paths filled in, or ``"fail"`` with ``error``.
        """
        label = name_of(image, name)
        try:
            explanation = self.explain(image, name=name, **options)
            record = explanation.record
            if out_dir is not None:
                stem = Path(label).stem if isinstance(image, (str, os.PathLike)) or name else "image"
                paths = write_pngs(explanation.pictures(), out_dir, stem or "image", stamp or timestamp())
                record["saliency_path"] = paths["saliency"]
                record["overlay_path"] = paths["overlay"]
                record["mask_path"] = paths.get("mask")
                record["segmenter_map_path"] = paths.get("segmap")
            return record
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # one bad image never stops a batch: report it
            if os.environ.get("MEDCAM_DEBUG"):
                traceback.print_exc()
            method = options.get("method")
            return fail_record(label, failure_reason(err), method if isinstance(method, str) else self.method_label)

    @property
    def method_label(self) -> str:
        """The registered name of the default attribution method (e.g. ``"gradcam"``)."""
        return self._methods[self.method].name
