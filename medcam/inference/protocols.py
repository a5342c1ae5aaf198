"""Answer formats of the ``--serve`` service: medcam's record, or the dental screener's four keys.

``medcam``: the full record of :mod:`medcam.inference.record` (one JSON line,
plus ``id`` when the request had one).

``dental``: the answer of the dental osteoporosis screener's ``run_model.py``
(BrunoScholles98/Deep-Learning-for-Bone-Health-Classification-through-X-ray-Imaging),
byte for byte, so its clients keep working. Its README documents this exchange::

    -> {"img_path": "path/of/your/image.jpg","destination_path": "path/of/your/outputs"}
    <- {"result": "ok", "diagnosis": "Healthy Patient", "saliency_img_path": "/d01/scholles/gigasistemica/gigacandanga_exec/outputs/BrunoScholles-Radiography_saliency_20240212162822.png", "overlay_img_path": "/d01/scholles/gigasistemica/gigacandanga_exec/outputs/BrunoScholles-Radiography_overlay_20240212162822.png"}

and its code answers a failed request with
``{"result": "fail", "diagnosis": "", "saliency_img_path": "", "overlay_img_path": ""}``.
The rules reproduced here (read from the README and ``run_model.py``, no code
taken): exactly these four keys in this order; Python's ``json.dumps``
defaults (``", "`` and ``": "`` separators, non-ASCII escaped); the picture
paths are ``os.path.join(destination_path, "<stem>_<kind>_<YYYYmmddHHMMSS>.png")``
with the destination as the request wrote it; ``diagnosis`` is the predicted
class's shown name (the spec's ``display_names``, e.g. "Healthy Patient" /
"Patient with Osteoporosis"); a failure carries empty strings and no reason, so
medcam writes the reason to stderr instead (the original printed nothing useful).
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

__all__ = ["PROTOCOLS", "DENTAL_KEYS", "dental_answer", "encode"]

#: Answer formats ``medcam explain --serve --protocol`` accepts.
PROTOCOLS: tuple[str, ...] = ("medcam", "dental")

#: The dental screener's answer keys, in its order.
DENTAL_KEYS: tuple[str, ...] = ("result", "diagnosis", "saliency_img_path", "overlay_img_path")


def _join(destination: str | None, path: str | None) -> str:
    """``os.path.join(destination, file name)`` as the screener built it (the destination as written)."""
    if not path:
        return ""
    return os.path.join(destination, os.path.basename(path)) if destination is not None else path


def dental_answer(record: Mapping[str, Any], destination: str | None) -> dict[str, str]:
    """The screener's answer for a medcam record; ``destination`` is the request's folder as written."""
    if record.get("result") != "ok":
        return {"result": "fail", "diagnosis": "", "saliency_img_path": "", "overlay_img_path": ""}
    return {"result": "ok", "diagnosis": str(record["diagnosis"]),
            "saliency_img_path": _join(destination, record.get("saliency_path")),
            "overlay_img_path": _join(destination, record.get("overlay_path"))}


def encode(answer: Mapping[str, Any]) -> str:
    """One answer line (without the newline): ``json.dumps`` with Python's defaults, as both formats use."""
    return json.dumps(answer)
