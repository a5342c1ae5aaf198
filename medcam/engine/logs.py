"""The files of a training run in its ``--out`` folder.

    <out>/metrics.jsonl                    one JSON object per finished epoch
    <out>/summary_<hyperparameters>.txt    human-readable: settings, per-epoch table, best epoch
    <out>/last.pt                          the latest end-of-epoch checkpoint (resumable)
    <out>/best.pt                          the checkpoint with the best monitored metric

The summary's file name encodes the main hyperparameters (model, input size,
optimizer, learning rate, batch size, epochs, seed), the convenience of the
seed projects' ``.txt`` performance logs: a folder of runs lists them by setting.
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config import TrainConfig

__all__ = ["RunFiles", "run_tag", "format_metrics", "atomic_write_text"]


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-") or "model"


def run_tag(spec: Mapping[str, Any], config: TrainConfig) -> str:
    """``<model>_<H>px_<optimizer>_lr<lr>_bs<batch>_ep<epochs>_seed<seed>`` (file-name safe)."""
    part = spec.get("backbone") or spec.get("segmenter") or {}
    model = spec.get("name") or part.get("name", "model")
    backbone = part.get("name")
    encoder = part.get("encoder") if "segmenter" in spec else None
    if encoder:  # a segmenter on a backbone: unet-resnet34
        backbone = encoder if isinstance(encoder, str) else encoder.get("name", "encoder")
    if backbone and backbone != model:
        model = f"{model}-{backbone}"
    h, w = spec.get("preprocess", {}).get("size", [0, 0])
    size = f"{h}px" if h == w else f"{h}x{w}px"
    extras = {True: "_balanced", False: "", "auto": ""}[config.balanced_sampler]
    return _slug(f"{model}_{size}_{config.optimizer}_lr{config.lr:g}_bs{config.batch_size}_ep{config.epochs}"
                 f"_{config.scheduler}{extras}_seed{config.seed}")


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_metrics(metrics: Mapping[str, Any], class_names: Sequence[str] | None = None) -> str:
    """Multi-line text of a :func:`~medcam.metrics.classification.classification_metrics` dict
    (or of a :func:`~medcam.metrics.segmentation.segmentation_metrics` one)."""
    if "dice" in metrics:
        return format_segmentation_metrics(metrics)
    lines = [f"n={metrics.get('n')}  accuracy={_num(metrics.get('accuracy'))}  "
             f"balanced_accuracy={_num(metrics.get('balanced_accuracy'))}  auc={_num(metrics.get('auc'))}  "
             f"macro_f1={_num(metrics.get('macro_f1'))}"
             + (f"  loss={_num(metrics.get('loss'))}" if metrics.get("loss") is not None else "")]
    per_class = metrics.get("per_class") or {}
    if per_class:
        width = max(8, *(len(n) for n in per_class))
        lines.append(f"  {'class':<{width}}  precision  recall     f1     auc  support")
        for name, row in per_class.items():
            lines.append(f"  {name:<{width}}  {_num(row['precision']):>9}  {_num(row['recall']):>6}  "
                         f"{_num(row['f1']):>6}  {_num(row['auc']):>6}  {row['support']:>7}")
    cm = metrics.get("confusion_matrix")
    if cm and isinstance(cm[0][0], int):
        names = list(per_class) if per_class else [str(i) for i in range(len(cm))]
        width = max(8, *(len(n) for n in names))
        col = max(6, *(len(n) for n in names))
        lines.append("  confusion matrix (rows: true, columns: predicted)")
        lines.append(f"  {'':<{width}}  " + "  ".join(f"{n:>{col}}" for n in names))
        for name, row in zip(names, cm):
            lines.append(f"  {name:<{width}}  " + "  ".join(f"{v:>{col}}" for v in row))
    return "\n".join(lines)


def format_segmentation_metrics(metrics: Mapping[str, Any]) -> str:
    """Multi-line text of a :func:`~medcam.metrics.segmentation.segmentation_metrics` dict: overall, then per class."""
    keys = (("dice", "dice"), ("iou", "iou"), ("dice_img", "dice_per_image"), ("iou_img", "iou_per_image"),
            ("box_acc", "box_acc"), ("box_iou", "box_iou"), ("empty_acc", "empty_acc"))
    rows = {"all images": metrics, **(metrics.get("per_class") or {})}
    width = max(10, *(len(n) for n in rows))
    lines = ([f"n={metrics.get('n')} ({metrics.get('n_with_mask')} with foreground)  dice={_num(metrics.get('dice'))}  "
              f"iou={_num(metrics.get('iou'))}  box_acc={_num(metrics.get('box_acc'))}"
              + (f"  loss={_num(metrics.get('loss'))}" if metrics.get("loss") is not None else ""),
              f"  {'images':<{width}}  {'n':>5}  {'w/ mask':>7}  " + "  ".join(f"{h:>9}" for h, _ in keys)])
    for name, row in rows.items():
        lines.append(f"  {name:<{width}}  {row['n']:>5}  {row['n_with_mask']:>7}  "
                     + "  ".join(f"{_num(row.get(k)):>9}" for _, k in keys))
    return "\n".join(lines)


#: Columns of the summary's per-epoch table: ``(header, record part, metric)``.
CLASSIFIER_COLUMNS = (("train_loss", "train", "loss"), ("train_acc", "train", "accuracy"), ("val_loss", "val", "loss"),
                      ("val_acc", "val", "accuracy"), ("val_bacc", "val", "balanced_accuracy"), ("val_auc", "val", "auc"))
SEGMENTER_COLUMNS = (("train_loss", "train", "loss"), ("train_dice", "train", "mean_dice"), ("val_loss", "val", "loss"),
                     ("val_dice", "val", "dice"), ("val_iou", "val", "iou"), ("val_box_acc", "val", "box_acc"))


class RunFiles:
    """Paths and writers of one run's output folder (written by the main process only)."""

    def __init__(self, out_dir: str | os.PathLike[str], tag: str):
        self.dir = Path(out_dir)
        self.tag = tag
        self.metrics = self.dir / "metrics.jsonl"
        self.summary = self.dir / f"summary_{tag}.txt"
        self.last = self.dir / "last.pt"
        self.best = self.dir / "best.pt"

    def write_history(self, history: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite ``metrics.jsonl`` from ``history`` (one line per epoch), atomically."""
        atomic_write_text(self.metrics, "".join(json.dumps(r, sort_keys=False) + "\n" for r in history))

    def write_summary(self, *, spec: Mapping[str, Any], config: TrainConfig, history: Sequence[Mapping[str, Any]],
                      best: Mapping[str, Any] | None, data: Mapping[str, Any] | None, status: str,
                      extra: Mapping[str, str] | None = None) -> None:
        """Rewrite the human-readable summary."""
        lines = [f"medcam training run: {self.tag}", f"status: {status}", ""]
        lines.append("model: " + json.dumps(spec, sort_keys=False))
        lines.append("training: " + ", ".join(f"{k}={v}" for k, v in config.to_dict().items()))
        if data:
            lines.append("data: " + ", ".join(f"{k}={v}" for k, v in data.items()))
        columns = SEGMENTER_COLUMNS if "segmenter" in spec else CLASSIFIER_COLUMNS
        lines += ["", f"{'epoch':>5}  {'lr':>9}  " + "".join(f"{h:>{len(h)}}  " for h, _, _ in columns)
                  + f"{'time_s':>6}"]
        for r in history:
            mark = "  *" if best and r["epoch"] == best.get("epoch") else ""
            cells = "".join(f"{_num((r.get(part) or {}).get(key)):>{len(h)}}  " for h, part, key in columns)
            lines.append(f"{r['epoch']:>5}  {r['lr']:>9.3g}  {cells}{r['time_s']:>6.1f}{mark}")
        if best and best.get("metrics"):
            lines += ["", f"best epoch {best['epoch']} by {config.monitor} ({config.mode}) on the validation set:",
                      format_metrics(best["metrics"])]
        for title, text in (extra or {}).items():
            lines += ["", title, text]
        atomic_write_text(self.summary, "\n".join(lines) + "\n")
