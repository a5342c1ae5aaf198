"""Explain single images with a trained checkpoint: verdict, attribution map, mask, boxes, PNGs.

What ``medcam explain`` and ``medcam app`` run (see ``docs/app.md``)::

    from medcam.inference import Explainer
    ex = Explainer.from_checkpoint("runs/busi/best.pt", method="gradcam")
    record = ex.run("scan.png", out_dir="out/")   # {"result": "ok", "diagnosis": ..., "boxes": ..., ...}

Modules: :mod:`~medcam.inference.pipeline` (:class:`Explainer`),
:mod:`~medcam.inference.record` (the JSON record), :mod:`~medcam.inference.render`
(pictures and file names), :mod:`~medcam.inference.inputs` (files and folders),
:mod:`~medcam.inference.settings` (preprocessing overrides),
:mod:`~medcam.inference.serve` (the stdin/stdout JSON-lines service).
Attributes are imported lazily, so importing this package stays cheap. (The package is not
called ``medcam.explain``: that name is the attribution function ``medcam.explain(model, images)``,
which a subpackage of the same name would shadow once imported.)
"""
from __future__ import annotations

from medcam._lazy import lazy_attributes

_LAZY = {
    "Explainer": "medcam.inference.pipeline",
    "Explanation": "medcam.inference.explanation",
    "DEFAULT_METHOD": "medcam.inference.pipeline",
    "collect_images": "medcam.inference.inputs",
    "RECORD_KEYS": "medcam.inference.record",
    "ok_record": "medcam.inference.record",
    "fail_record": "medcam.inference.record",
    "merge_preprocess": "medcam.inference.settings",
    "serve": "medcam.inference.serve",
    "handle_request": "medcam.inference.serve",
    "write_pngs": "medcam.inference.render",
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
__all__ = sorted(_LAZY)
