"""The Gradio page: upload -> class with confidences, attribution overlay, mask overlay, boxes, JSON.

Everything shown is computed by :class:`medcam.inference.Explainer`, the same
code as ``medcam explain``, so the page and the command line agree on every
number. The page loads no fonts or scripts from other hosts (system fonts,
Gradio analytics off), so it works on machines without internet access.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..limits import APP_FILE_LIFETIME_S
from . import require_gradio

__all__ = ["build_app", "launch", "upload_error", "ELEMENT_IDS"]

#: HTML ids of the page's parts (used by the browser test and by custom CSS).
ELEMENT_IDS = {
    "input": "medcam-input",
    "method": "medcam-method",
    "threshold": "medcam-threshold",
    "mask_threshold": "medcam-mask-threshold",
    "label": "medcam-label",
    "overlay": "medcam-overlay",
    "mask": "medcam-mask",
    "segmenter_method": "medcam-segmenter-method",
    "segmenter_map": "medcam-segmenter-map",
    "boxes": "medcam-boxes",
    "json": "medcam-json",
    "download": "medcam-download",
}

_MAX_ROWS = 10  # box table rows shown on the page
_SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
_MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def _theme(gr: Any) -> Any:
    """Gradio's default theme with system fonts (the default pulls web fonts from another host)."""
    return gr.themes.Default(font=_SYSTEM_FONTS, font_mono=_MONO_FONTS)


def _boxes_text(record: dict[str, Any]) -> str:
    """The box table, after any warning about the result (e.g. an empty attribution map)."""
    notes = "".join(f"**Warning:** {w}\n\n" for w in record.get("warnings") or ())
    return notes + _box_table(record)


def _box_table(record: dict[str, Any]) -> str:
    boxes = record["boxes"]
    source = "segmentation mask" if record["box_source"] == "segmenter" else "attribution map"
    if not boxes:
        return f"No box: nothing above the threshold in the {source}."
    rows = "\n".join(f"| {i + 1} | {b[0]} | {b[1]} | {b[2]} | {b[3]} |" for i, b in enumerate(boxes[:_MAX_ROWS]))
    more = f"\n\n... and {len(boxes) - _MAX_ROWS} more (all in the JSON)." if len(boxes) > _MAX_ROWS else ""
    return (f"**{len(boxes)} box{'es' if len(boxes) != 1 else ''}** from the {source}, in pixels of the uploaded "
            f"image (x1, y1 exclusive):\n\n| # | x0 | y0 | x1 | y1 |\n|---|---|---|---|---|\n{rows}{more}")


def _model_summary(explainer: Any, checkpoint: str | None) -> str:
    spec = explainer.model.spec
    backbone = spec.get("backbone", {}).get("name", "?")
    head = (spec.get("head") or {}).get("name", "?")
    size = "x".join(str(v) for v in explainer.preprocess.size)
    where = f"`{os.path.basename(checkpoint)}`: " if checkpoint else ""
    seg = ""
    if explainer.segmenter is not None:
        part = explainer.segmenter.spec.get("segmenter", {})
        seg = f" Segmenter: {part.get('name', '?')}."
    return (f"{where}{backbone} + {head}, {len(explainer.class_names)} classes "
            f"({', '.join(explainer.class_names)}), input {size}.{seg} "
            f"Research software: not a medical device.")


def upload_error(err: BaseException, path: str | os.PathLike[str], name: str) -> str:
    """The message shown for an upload that failed: medcam's one-line reason, starting with the file's
    own name, the server's copy of the file (a temporary path) never named."""
    from ..inference.pipeline import failure_reason

    server_path = os.fspath(path)
    text = failure_reason(err).replace(server_path, name).replace(os.path.dirname(server_path) + os.sep, "")
    return text if text.startswith(f"{name}: ") else f"{name}: {text}"


def _paths_unopened(image: Any) -> Any:
    """Make a ``gr.Image`` (``type="filepath"``) hand the uploaded file's path over without opening it.

    Gradio's own preprocessing opens every upload with Pillow first, so a file
    that is not an image, or a decompression bomb, fails there with "Could not
    preprocess input" and a server path; this way :meth:`Explainer.explain`
    reads it, with medcam's checks (the pixel limit from the header) and
    messages. (The instance's method is replaced: a subclass would make Gradio
    write a ``.pyi`` stub next to this module.)
    """
    gradio_preprocess = image.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is None or getattr(payload, "path", None) is None:
            return gradio_preprocess(payload)  # data: URLs (pasted images) go through Gradio
        return str(payload.path)

    image.preprocess = preprocess
    return image


def build_app(explainer: Any, *, checkpoint: str | None = None, title: str = "medcam: explain an image",
              work_dir: str | os.PathLike[str] | None = None) -> Any:
    """The Gradio ``Blocks`` of the app.

    Args:
        explainer: a :class:`medcam.inference.Explainer` (classifier, optional segmenter, settings).
        checkpoint: shown in the page header.
        title: page title.
        work_dir: where the downloadable JSON files are written (default: a new temporary folder).

    Returns:
        ``gradio.Blocks``; serve it with :func:`launch` or ``blocks.launch(...)``.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    gr = require_gradio()
    from ..registry import get_registry
    from ..attribution_segmentation import CLASSIFIER_HEAD_METHODS
    from ..inference.pipeline import NO_METHOD
    from ..inference.render import timestamp

    out_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="medcam-app-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    methods = get_registry("attributions").list()
    current = explainer.method_label
    if current not in methods:
        methods = [current, *methods]
    has_mask = explainer.segmenter is not None
    has_seg_map = explainer.segmenter_has_maps
    seg_current = explainer.segmenter_method_label or NO_METHOD
    seg_methods = [NO_METHOD, *(m for m in methods if m not in CLASSIFIER_HEAD_METHODS)]

    def analyse(path: str | None, method: str, threshold: float, mask_threshold: float,
                seg_method: str) -> tuple[Any, ...]:
        if not path:
            raise gr.Error("Upload an image first.")
        name = Path(path).name
        try:
            result = explainer.explain(path, name=name, method=method, threshold=threshold,
                                       mask_threshold=mask_threshold if has_mask else None,
                                       segmenter_method=seg_method if has_seg_map else None)
        except Exception as err:  # shown on the page, the app keeps running
            raise gr.Error(upload_error(err, path, name)) from err
        record = result.record
        for note in record["warnings"]:
            gr.Warning(note)
        json_path = out_dir / f"{Path(name).stem}_result_{timestamp()}.json"
        json_path.write_text(json.dumps(record, indent=2))
        return (record["probabilities"], result.overlay, result.mask_overlay,
                gr.Image(value=result.segmenter_overlay, visible=result.segmenter_overlay is not None),
                _boxes_text(record), record, gr.DownloadButton(value=str(json_path), interactive=True))

    lifetime = APP_FILE_LIFETIME_S  # uploads and served pictures are deleted after this (a long-running app)
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(lifetime // 2, lifetime)) as blocks:
        gr.Markdown(f"# {title}\n{_model_summary(explainer, checkpoint)}")
        with gr.Row():
            with gr.Column(scale=1):
                image = _paths_unopened(gr.Image(label="Image", type="filepath", image_mode=None, sources=["upload"],
                                                 elem_id=ELEMENT_IDS["input"]))
                method = gr.Dropdown(methods, value=current, label="Attribution method (medcam list attributions)",
                                     elem_id=ELEMENT_IDS["method"])
                threshold = gr.Slider(0.0, 1.0, value=explainer.threshold, step=0.05,
                                      label="Box threshold on the attribution map", elem_id=ELEMENT_IDS["threshold"])
                mask_threshold = gr.Slider(0.0, 1.0, value=explainer.mask_threshold, step=0.05,
                                           label="Mask threshold (segmenter probability)", visible=has_mask,
                                           elem_id=ELEMENT_IDS["mask_threshold"])
                seg_method = gr.Dropdown(seg_methods, value=seg_current, visible=has_seg_map,
                                         label="What the segmenter looked at: attribution of its region (none: off)",
                                         elem_id=ELEMENT_IDS["segmenter_method"])
                button = gr.Button("Explain", variant="primary")
            with gr.Column(scale=2):
                label = gr.Label(label="Predicted class", num_top_classes=len(explainer.class_names),
                                 elem_id=ELEMENT_IDS["label"])
                with gr.Row():
                    overlay = gr.Image(label="Attribution overlay (white boxes)", format="png", interactive=False,
                                       elem_id=ELEMENT_IDS["overlay"])
                    mask = gr.Image(label="Segmentation mask (yellow boxes)", format="png", interactive=False,
                                    visible=has_mask, elem_id=ELEMENT_IDS["mask"])
                    seg_map = gr.Image(label="Segmenter attribution (its region's score)", format="png",
                                       interactive=False, visible=seg_current != NO_METHOD,
                                       elem_id=ELEMENT_IDS["segmenter_map"])
                boxes = gr.Markdown(elem_id=ELEMENT_IDS["boxes"])
                with gr.Accordion("JSON result", open=False):
                    record = gr.JSON(elem_id=ELEMENT_IDS["json"])
                download = gr.DownloadButton("Download JSON", interactive=False, elem_id=ELEMENT_IDS["download"])
        inputs = [image, method, threshold, mask_threshold, seg_method]
        outputs = [label, overlay, mask, seg_map, boxes, record, download]
        image.upload(analyse, inputs, outputs, trigger_mode="always_last")
        button.click(analyse, inputs, outputs, trigger_mode="always_last")
        for control in (method, threshold, mask_threshold, seg_method):
            control.change(lambda p, *rest: analyse(p, *rest) if p else (gr.skip(),) * len(outputs), inputs, outputs,
                           trigger_mode="always_last")
    blocks.medcam_work_dir = out_dir
    return blocks


def launch(explainer: Any, *, host: str = "127.0.0.1", port: int = 7860, checkpoint: str | None = None,
           block: bool = True, **options: Any) -> Any:
    """Serve the app on ``http://host:port``.

    Args:
        explainer: see :func:`build_app`.
        host: interface to listen on; the default keeps the app on this machine.
        port: TCP port.
        block: wait until interrupted (the CLI); False returns at once (tests, notebooks).
        **options: passed to ``gradio.Blocks.launch``.

    Returns:
        the ``Blocks`` (call ``.close()`` to stop a non-blocking app).
    """
    gr = require_gradio()
    blocks = build_app(explainer, checkpoint=checkpoint)
    blocks.queue(default_concurrency_limit=1)
    blocks.launch(server_name=host, server_port=port, theme=_theme(gr), ssr_mode=False, share=False,
                  prevent_thread_lock=not block, show_error=True, quiet=True,
                  allowed_paths=[str(blocks.medcam_work_dir)], **options)
    return blocks
