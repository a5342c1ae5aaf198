"""The result record of one explained image (one JSON line), and its text form.

Every record has the same keys (JSON Schema: ``docs/explain.schema.json``)::

    {"result": "ok" | "fail", "image": "path/or/name.png",
     "diagnosis": "benign", "probabilities": {"normal": 0.1, "benign": 0.8, "malignant": 0.1},
     "method": "gradcam", "target": "benign",
     "saliency_path": ".../benign (1)_saliency_20260101120000.png",
     "overlay_path": ".../benign (1)_overlay_20260101120000.png",
     "mask_path": null, "segmenter_method": null, "segmenter_map_path": null,
     "boxes": [[x0, y0, x1, y1], ...], "box_source": "attribution",
     "attribution_boxes": [[...]], "box_threshold": 0.5, "image_size": [H, W],
     "ground_truth": {"source": ".../benign (1)_mask.png", "boxes": [[...]], "labels": [""]} | null,
     "warnings": [], "error": null}

Boxes are in pixels of the original image, ``x1``/``y1`` exclusive. ``ground_truth`` is what the
image file comes with (:mod:`medcam.inference.truth`), null when nothing was found. A ``fail``
record has ``error`` set to the reason and nulls (empty box lists) elsewhere.
``segmenter_method`` / ``segmenter_map_path``: with ``--segmenter-method``, the attribution method of
the segmenter's own map (what it looked at to segment its region) and that picture; null otherwise.
``warnings`` lists what the user should know about an ``ok`` result, e.g. an
empty attribution map and what to try instead.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["RECORD_KEYS", "fail_record", "ok_record", "format_row", "summary_line"]

#: Keys of every record, in output order.
RECORD_KEYS: tuple[str, ...] = (
    "result", "image", "diagnosis", "probabilities", "method", "target", "saliency_path", "overlay_path",
    "mask_path", "segmenter_method", "segmenter_map_path", "boxes", "box_source", "attribution_boxes", "box_threshold", "image_size", "ground_truth",
    "warnings", "error",
)


def _box_list(boxes: Any) -> list[list[int]]:
    """``(N, 4)`` boxes (tensor, array or lists) as a list of integer ``[x0, y0, x1, y1]``."""
    rows = boxes.tolist() if hasattr(boxes, "tolist") else list(boxes)
    return [[int(round(float(v))) for v in row] for row in rows]


def ok_record(*, image: str, diagnosis: str, probabilities: Mapping[str, float], method: str, target: str,
              boxes: Any, box_source: str, attribution_boxes: Any, image_size: Sequence[int],
              saliency_path: str | None = None, overlay_path: str | None = None,
              box_threshold: float, mask_path: str | None = None, warnings: Sequence[str] = (),
              ground_truth: Mapping[str, Any] | None = None, segmenter_method: str | None = None,
              segmenter_map_path: str | None = None) -> dict[str, Any]:
    """A successful record (see the module docstring); boxes are ``(N, 4)`` in original pixels."""
    return {
        "result": "ok",
        "image": image,
        "diagnosis": diagnosis,
        "probabilities": {str(k): round(float(v), 6) for k, v in probabilities.items()},
        "method": method,
        "target": target,
        "saliency_path": saliency_path,
        "overlay_path": overlay_path,
        "mask_path": mask_path,
        "segmenter_method": segmenter_method,
        "segmenter_map_path": segmenter_map_path,
        "boxes": _box_list(boxes),
        "box_source": box_source,
        "attribution_boxes": _box_list(attribution_boxes),
        "box_threshold": float(box_threshold),
        "image_size": [int(image_size[0]), int(image_size[1])],
        "ground_truth": None if ground_truth is None else dict(ground_truth),
        "warnings": [str(w) for w in warnings],
        "error": None,
    }


def fail_record(image: str | None, error: str, method: str | None = None) -> dict[str, Any]:
    """A ``fail`` record carrying ``error`` (one line) for ``image`` (None when the request named none)."""
    reason = " ".join(str(error).split()) or "unknown error"
    return {
        "result": "fail",
        "image": image,
        "diagnosis": None,
        "probabilities": None,
        "method": method,
        "target": None,
        "saliency_path": None,
        "overlay_path": None,
        "mask_path": None,
        "segmenter_method": None,
        "segmenter_map_path": None,
        "boxes": [],
        "box_source": None,
        "attribution_boxes": [],
        "box_threshold": None,
        "image_size": None,
        "ground_truth": None,
        "warnings": [],
        "error": reason,
    }


def format_row(record: Mapping[str, Any]) -> str:
    """One readable line: ``ok    benign (1).png   benign 0.91   2 boxes   <overlay path>``."""
    image = str(record.get("image"))
    if record["result"] != "ok":
        return f"fail  {image}  error: {record['error']}"
    probs = record["probabilities"]
    p = probs.get(record["diagnosis"], max(probs.values()) if probs else 0.0)
    n = len(record["boxes"])
    where = record["overlay_path"] or ""
    mask = f"  mask: {record['mask_path']}" if record.get("mask_path") else ""
    mask += f"  segmenter map: {record['segmenter_map_path']}" if record.get("segmenter_map_path") else ""
    notes = "".join(f"  warning: {w}" for w in record.get("warnings") or ())
    return (f"ok    {image}  {record['diagnosis']} {p:.3f}  {n} box{'es' if n != 1 else ''} "
            f"({record['box_source']})  {where}{mask}").rstrip() + notes


def summary_line(records: Sequence[Mapping[str, Any]]) -> str:
    """``# 5 images: 4 ok, 1 failed``."""
    ok = sum(r["result"] == "ok" for r in records)
    return f"# {len(records)} image{'s' if len(records) != 1 else ''}: {ok} ok, {len(records) - ok} failed"
