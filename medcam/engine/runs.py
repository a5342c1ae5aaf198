"""Whole runs from a data folder: split -> train -> test, k-fold cross-validation, checkpoint evaluation.

These are what ``medcam train`` and ``medcam eval`` call; use them from Python
the same way::

    from medcam.engine.runs import DataConfig, train_on_folder
    result = train_on_folder("tiny_classifier", DataConfig("../shared/data/busi", dataset="busi"),
                             {"epochs": 10, "balanced_sampler": True}, out_dir="runs/busi")
    result["test"]["balanced_accuracy"]

The model spec's ``num_classes``, ``class_names`` and ``multilabel`` are set
from the data set (a spec that names other classes is an error), and its
``preprocess`` settings tell the data set how to size the images.

A segmenter spec (:func:`medcam.spec.spec_kind`) runs the same way on a data set
with masks, trained by :class:`~medcam.engine.seg_trainer.SegmenterTrainer` and
scored with Dice, IoU and box accuracy (:mod:`medcam.metrics.segmentation`).
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from medcam.errors import CheckpointError, DataError, SpecError

from .config import TrainConfig
from .distributed import DistContext
from .logs import atomic_write_text, format_metrics, run_tag
from .run_data import (DataConfig, data_info, fit_spec_to_data, open_dataset, provisional_spec, spec_kind_of,
                       split_of)
from .seg_trainer import trainer_for
from .trainer import Callback

__all__ = ["DataConfig", "open_dataset", "fit_spec_to_data", "provisional_spec", "train_on_folder", "cross_validate",
           "evaluate_checkpoint", "eval_subset", "SCALAR_METRICS", "mean_std"]

#: Metrics summarized as mean +/- std over folds.
SCALAR_METRICS = ("accuracy", "balanced_accuracy", "auc", "macro_f1", "loss")
#: The same for a segmenter, and the per-class scores summarized for each kind.
SEGMENTER_SCALAR_METRICS = ("dice", "iou", "dice_per_image", "box_acc", "loss")
PER_CLASS_METRICS = {"model": ("precision", "recall", "f1", "auc"), "segmenter": ("dice", "iou", "box_acc")}
#: Columns of the k-fold table in cv_summary.txt: ``(header, metric)``.
CV_COLUMNS = {"model": (("accuracy", "accuracy"), ("bal_acc", "balanced_accuracy"), ("auc", "auc"),
                        ("macro_f1", "macro_f1"), ("loss", "loss")),
              "segmenter": (("dice", "dice"), ("iou", "iou"), ("dice_img", "dice_per_image"),
                            ("box_acc", "box_acc"), ("loss", "loss"))}


def _run_dir(out_dir: str | Path | None, name: str | None, spec: Mapping[str, Any], config: TrainConfig,
             data: DataConfig, **facts: Any) -> tuple[Path, str | None]:
    """``(output folder, run name)`` from the ``--out`` folder and ``--name`` template.

    The name template reads the resolved spec, the training and the data
    settings (:mod:`medcam.engine.naming`); without ``out_dir`` the folder is
    ``runs/<name>``; ``out_dir`` may itself hold fields, ``{name}`` included.
    """
    from .naming import render_name, render_path

    fields = {"spec": spec, "config": config, "data": {**data.to_dict(), **facts}}
    tag = run_tag(spec, config)
    run_name = render_name(name, **fields, extra={"tag": tag}) if name else None
    if out_dir is None:
        if run_name is None:
            raise SpecError("give an output folder (out_dir / --out) or a run name (name / --name)")
        return Path("runs") / run_name, run_name
    return render_path(out_dir, **fields, extra={"tag": tag, "name": run_name or tag}), run_name


def _check_out(out_dir: Path, resume: bool) -> None:
    last = out_dir / "last.pt"
    if last.is_file() and not resume:
        raise CheckpointError(f"{out_dir} already holds a training run ({last}); pass --resume to continue it "
                              f"or choose another --out folder")


def train_on_folder(spec: Any, data: DataConfig, config: TrainConfig | Mapping[str, Any] | None,
                    out_dir: str | Path | None, *, resume: bool = False, callbacks: Sequence[Callback] = (),
                    dist: DistContext | None = None,
                    test_evaluations: Mapping[str, Callable[[Any, Any], dict[str, Any]]] | None = None,
                    name: str | None = None, refit: bool = False, test_checkpoint: str = "best") -> dict[str, Any]:
    """Split the data, train with validation, then test the best checkpoint.

    Writes ``out_dir/{last,best}.pt``, ``metrics.jsonl``, ``summary_*.txt`` and
    ``results.json`` (split sizes, best epoch, validation and test metrics).

    Args:
        config: training settings over the spec's own ``train`` mapping (a mapping overrides
            its keys; a :class:`TrainConfig` is used as it is), see :meth:`TrainConfig.for_spec`.
        out_dir: the output folder; it may hold name-template fields
            (``runs/{name}``); None: ``runs/<name>``.
        name: a run name template (:mod:`medcam.engine.naming`), e.g.
            ``"{backbone}_lam{loss.attention_box.lam}"``; it names the summary
            file and is recorded in ``results.json``.
        test_evaluations: further evaluations of the best model on the test set,
            ``name -> fn(model, test_set) -> dict`` (e.g. localization metrics
            against the masks); their results go to ``result["test_extra"][name]``.
        test_checkpoint: ``best`` (the epoch with the best validation metric) or ``last``
            (the last epoch: for short schedules that end at a low learning rate, where a
            best-of-~100-images pick is noise; Choe et al. 2020 score WSOL models so).
        refit: after choosing the epoch count on the validation set, train once more on
            train + val for that many epochs (:func:`medcam.engine.refit.refit`; the same
            schedule), write ``out_dir/model.pt`` and test that model instead: the choice
            is made on ~15 % of the images, the final model learns from all of them.

    Returns:
        ``{"out", "name", "spec", "data", "split", "best_epoch", "stopped_early", "val", "test", "test_extra",
        "time_s"}``; ``val`` and ``test`` are :func:`~medcam.metrics.classification.classification_metrics`
        dicts (``test`` of the best checkpoint; ``None`` without a test part).
    """
    began = time.perf_counter()
    provisional = provisional_spec(spec)
    cfg = TrainConfig.for_spec(provisional, config)
    dist = dist or DistContext.from_env(cfg.device)
    if out_dir is not None and "{" not in os.fspath(out_dir):
        _check_out(Path(out_dir), resume)  # before reading the data
    full = open_dataset(data, provisional)
    resolved = fit_spec_to_data(spec, full)
    out, run_name = _run_dir(out_dir, name, resolved, cfg, data, dataset=getattr(full, "layout", data.dataset))
    _check_out(out, resume)
    parts = split_of(full, data)
    sizes = {k: len(v) for k, v in parts["indices"].items()}
    info = data_info(data, full, sizes)
    trainer = trainer_for(resolved)(resolved, cfg, out_dir=out, callbacks=callbacks, data_info=info, dist=dist,
                                    run_name=run_name)
    fit = trainer.fit(parts["train"], parts["val"], resume=resume)
    if test_checkpoint not in ("best", "last"):
        raise SpecError(f"test_checkpoint: expected 'best' or 'last', got {test_checkpoint!r}")
    if test_checkpoint == "best":
        trainer.load_best()
    refit_info = None
    if refit:
        from .refit import refit_after_validation

        trainer, refit_info = refit_after_validation(trainer, fit, full, parts, data.augment, cfg, out, info,
                                                     callbacks, dist)
    test = trainer.evaluate(parts["test"], desc="test") if parts["test"] is not None else None
    extra = {}
    if parts["test"] is not None:
        for name, fn in (test_evaluations or {}).items():
            extra[name] = fn(trainer.model, parts["test"])
    result = {"out": str(out), "name": trainer.run_name, "spec": resolved, "data": info, "split": sizes,
              "best_epoch": fit.best_epoch, "test_checkpoint": test_checkpoint,
              "stopped_early": fit.stopped_early, "val": fit.best_metrics, "test": test, "test_extra": extra,
              "time_s": round(time.perf_counter() - began, 1)}
    if refit_info is not None:
        result["refit"] = refit_info
    if dist.is_main:
        atomic_write_text(out / "results.json", json.dumps(result, indent=2) + "\n")
        if test is not None and trainer.files is not None and refit_info is None:
            trainer.files.write_summary(spec=resolved, config=cfg, history=fit.history, best=trainer.best_record(),
                                        data=info, status="finished",
                                        extra={(f"test set (best checkpoint, epoch {fit.best_epoch}):"
                                                if test_checkpoint == "best" else "test set (last epoch):"):
                                               format_metrics(test)})
    return result


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof=1; 0 for one value) of the defined values."""
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not xs:
        return None, None
    return float(np.mean(xs)), float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0


def _summarize_folds(rows: Sequence[Mapping[str, Any]], class_names: Sequence[str], kind: str = "model"
                     ) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for key in (SEGMENTER_SCALAR_METRICS if kind == "segmenter" else SCALAR_METRICS):
        m, s = mean_std([r.get(key) for r in rows])
        summary[key] = {"mean": m, "std": s}
    for name in class_names:
        for key in PER_CLASS_METRICS[kind]:  # a fold without images of a class has no row for it
            m, s = mean_std([(r["per_class"].get(name) or {}).get(key) for r in rows])
            summary[f"{name}.{key}"] = {"mean": m, "std": s}
    return summary


def _final_text(final: Mapping[str, Any] | None, monitor: str) -> list[str]:
    """The lines of cv_summary.txt that say which model the run ends with."""
    if final is None:
        return ["final model: none (final='none'); the fold models are in fold<i>/"]
    if final["kind"] == "ensemble":
        lines = [f"final model: an ensemble of the {len(final['members'])} fold models (each fold's last epoch; "
                 f"the mean of their logits): {final['path']}"]
    else:
        best = final["curve"][final["epochs"] - 1]
        epochs = f"{final['epochs']} epoch{'s' if final['epochs'] != 1 else ''}"
        lines = [f"final model: refit on all {final['train_images']} training images for {epochs} "
                 f"(chosen by {final['chosen_by']}: {best:.4f}): {final['path']} (run: {final['run']})"]
    if final.get("test"):
        lines.append("final model on the test part: " + format_metrics(final["test"]).splitlines()[0])
    return lines


def _cv_text(folds: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], k: int,
             final: Mapping[str, Any] | None = None, monitor: str = "balanced_accuracy", kind: str = "model") -> str:
    columns = CV_COLUMNS[kind]
    lines = [f"{k}-fold cross-validation: metrics of each fold's final model on its held-out fold", "",
             f"{'fold':>4}  {'n':>5}  " + "  ".join(f"{h:>{max(6, len(h))}}" for h, _ in columns)]

    def num(v: Any) -> str:
        return "-" if v is None else f"{v:.4f}"

    for f in folds:
        m = f["val"]
        lines.append(f"{f['fold']:>4}  {m['n']:>5}  "
                     + "  ".join(f"{num(m.get(key)):>{max(6, len(h))}}" for h, key in columns))
    lines.append("")
    lines.append("mean +/- std (sample std over folds):")
    for key, row in summary.items():
        if row["mean"] is not None:
            lines.append(f"  {key:<24} {row['mean']:.4f} +/- {row['std']:.4f}")
    lines += [""] + _final_text(final, monitor)
    return "\n".join(lines) + "\n"


def cross_validate(spec: Any, data: DataConfig, config: TrainConfig | Mapping[str, Any] | None,
                   out_dir: str | Path | None, *, folds: int = 5, resume: bool = False,
                   callbacks: Sequence[Callback] = (), dist: DistContext | None = None, final: str | None = None,
                   name: str | None = None) -> dict[str, Any]:
    """Stratified k-fold cross-validation: train one model per fold in ``out_dir/fold<i>``, then one to serve.

    Each fold trains on k-1 folds and is scored, after its last epoch, on the
    held-out fold (the best-epoch checkpoint is kept too, but selecting it on the
    fold it is scored on would bias the estimate upwards). A test part the
    layout fixes (e.g. a ``test/`` folder) is held out of every fold and scored
    as well. Then the run ends with one model, ``out_dir/model.pt``
    (:func:`medcam.engine.refit.finish_folds`): ``final="ensemble"`` (the fold
    models, logits averaged; the default for classifiers), ``"refit"`` (trained
    on every non-test image for the epoch count with the best mean validation
    metric over the folds; the default, and the only one, for segmenters) or ``"none"``. Writes ``cv_results.json`` and ``cv_summary.txt`` with per-fold
    results, mean +/- std and which final model was made.

    Args:
        out_dir, name: the output folder and a run name template, as in :func:`train_on_folder`.

    Returns:
        ``{"folds": [{"fold", "sizes", "val", "test"}, ...], "mean_std": {metric: {"mean", "std"}},
        "test_mean_std": ... | None, "final": {"kind", "path", ..., "test"} | None, "out", "name"}``.
    """
    from .refit import FINAL_MODES, finish_folds

    provisional = provisional_spec(spec)
    kind = spec_kind_of(provisional)
    if final is None:
        final = "refit" if kind == "segmenter" else "ensemble"
    if final not in FINAL_MODES:
        from medcam.registry import did_you_mean

        raise SpecError(f"final: unknown value {final!r}{did_you_mean(str(final), FINAL_MODES)} "
                        f"(choices: {', '.join(FINAL_MODES)})")
    if kind == "segmenter" and final == "ensemble":
        raise SpecError("final: a fold ensemble averages classifier logits; end a segmenter's k-fold run with "
                        "--final refit or --final none")
    cfg = TrainConfig.for_spec(provisional, config)
    dist = dist or DistContext.from_env(cfg.device)
    full = open_dataset(data, provisional)
    resolved = fit_spec_to_data(spec, full)
    out, run_name = _run_dir(out_dir, name, resolved, cfg, data, folds=folds,
                             dataset=getattr(full, "layout", data.dataset))
    if not resume and any((out / f"fold{i + 1}" / "last.pt").is_file() for i in range(folds)):
        raise CheckpointError(f"{out} already holds a cross-validation run; pass --resume to continue it or "
                              f"choose another --out folder")
    parts = full.folds(folds, seed=data.split_seed)
    rows: list[dict[str, Any]] = []
    histories = []
    for i, part in enumerate(parts):
        train = full.subset(part["train"], augment=data.augment)
        val = full.subset(part["val"], augment=None)
        test = full.subset(part["test"], augment=None) if part["test"] else None
        sizes = {k: len(v) for k, v in part.items()}
        info = {**data_info(data, full, sizes), "fold": i + 1, "folds": folds}
        trainer = trainer_for(resolved)(resolved, cfg, out_dir=out / f"fold{i + 1}", callbacks=callbacks,
                                        data_info=info, dist=dist,
                                        run_name=f"{run_name}_fold{i + 1}" if run_name else None)
        if dist.is_main and cfg.progress:
            trainer.log(f"fold {i + 1}/{folds}: {sizes['train']} training, {sizes['val']} held-out images")
        histories.append(trainer.fit(train, val, resume=resume).history)
        row = {"fold": i + 1, "sizes": sizes, "val": trainer.evaluate(val, desc=f"fold {i + 1}"),
               "test": trainer.evaluate(test, desc="test") if test is not None else None}
        rows.append(row)
    finished = None
    if final != "none" and parts:
        pool = sorted(parts[0]["train"] + parts[0]["val"])  # every image outside a fixed test part
        sizes = {"train": len(pool), "val": 0, "test": len(parts[0]["test"])}
        model, finished = finish_folds(final, spec=resolved, config=cfg, out=out, histories=histories,
                                       train_set=full.subset(pool, augment=data.augment),
                                       data_info={**data_info(data, full, sizes), "folds": folds},
                                       callbacks=callbacks, dist=dist, resume=resume, run_name=run_name)
        if parts[0]["test"]:
            finished["test"] = _evaluate(model, full.subset(parts[0]["test"], augment=None),
                                         batch_size=cfg.eval_batch, progress=cfg.progress, desc="final on test",
                                         class_names=list(full.class_names))
    names = list(full.class_names)
    result = {"out": str(out), "name": run_name, "folds": rows,
              "mean_std": _summarize_folds([r["val"] for r in rows], names, kind),
              "test_mean_std": (_summarize_folds([r["test"] for r in rows], names, kind) if rows and rows[0]["test"]
                                else None), "final": finished, "spec": resolved}
    if dist.is_main:
        atomic_write_text(out / "cv_results.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(out / "cv_summary.txt", _cv_text(rows, result["mean_std"], folds, finished, cfg.monitor,
                                                           kind))
    return result


def _evaluate(model: Any, dataset: Any, **kwargs: Any) -> dict[str, Any]:
    """Classification metrics of a model, or segmentation metrics of a segmenter, on ``dataset``."""
    from medcam.model import MedcamSegmenter

    if isinstance(model, MedcamSegmenter):
        from .seg_evaluate import evaluate_segmenter

        return evaluate_segmenter(model, dataset, **kwargs)
    from .evaluate import evaluate

    return evaluate(model, dataset, **kwargs)


def eval_subset(checkpoint: str | Path, model: Any, data: DataConfig, split: str = "auto") -> tuple[Any, str]:
    """The images a saved model is evaluated on, and the split name they are.

    Args:
        checkpoint: the checkpoint's path (for messages).
        model: the loaded model (its ``spec`` and ``checkpoint_metadata`` say how it was trained).
        data: the data; images are prepared as the model's spec says.
        split: ``all`` (every image), ``train``/``val``/``test`` (the split the
            training run used, recomputed from the fractions and seed it stored),
            or ``auto``: ``test`` when the checkpoint was trained on this same
            folder, else ``all``. On the training folder, the run's layout options,
            groups and image cache (if it still exists) are used unless ``data`` sets them.

    Returns:
        ``(dataset without augmentation, split name)``.
    """
    from medcam.model import MedcamSegmenter

    choices = ("auto", "all", "train", "val", "test")
    if split not in choices:
        from medcam.registry import did_you_mean

        raise SpecError(f"split: unknown value {split!r}{did_you_mean(split, choices)} (choices: {', '.join(choices)})")
    meta = getattr(model, "checkpoint_metadata", {}) or {}
    trained = meta.get("data") or {}
    same_folder = bool(trained.get("path")) and Path(trained["path"]).resolve() == Path(data.path).resolve()
    if split == "auto":
        split = "test" if same_folder and trained.get("split_sizes", {}).get("test") else "all"
    if split != "all" and not same_folder:
        raise CheckpointError(f"--split {split}: {checkpoint} was not trained on {data.path} (or has no record of "
                              f"its training split); use --split all")
    if same_folder:  # the training run's layout, options and split settings unless told otherwise
        data = DataConfig(**{**data.to_dict(), "val": trained.get("val", data.val),
                             "test": trained.get("test", data.test),
                             "split_seed": trained.get("split_seed", data.split_seed),
                             "dataset": data.dataset or trained.get("dataset"),
                             "options": data.options or dict(trained.get("options") or {}),
                             "groups": data.groups if data.groups is not None else trained.get("groups"),
                             # the run's resized-image cache, when it still exists: the very pixels it was
                             # trained and tested on (the cache stores them as uint16, a few 1e-6 off)
                             "cache_dir": data.cache_dir or (trained.get("cache_dir")
                                                             if trained.get("cache_dir")
                                                             and Path(trained["cache_dir"]).is_dir() else None)})
    full = open_dataset(data, model.spec)
    names = list(full.class_names)
    if isinstance(model, MedcamSegmenter):
        from .seg_evaluate import require_masks

        require_masks(full, str(data.path))
    elif model.spec.get("class_names") and list(model.spec["class_names"]) != names:
        raise DataError(f"{data.path}: classes {names} do not match the checkpoint's {model.spec['class_names']}")
    if split == "all":
        return full.with_augment(None), split
    subset = full.subset(full.splits(data.val, data.test, seed=data.split_seed)[split], augment=None)
    if len(subset) == 0:
        raise DataError(f"{data.path}: the '{split}' split is empty")
    return subset, split


def evaluate_checkpoint(checkpoint: str | Path, data: DataConfig, *, split: str = "auto", batch_size: int = 64,
                        device: str = "auto", progress: bool = True, sha256: str | None = None) -> dict[str, Any]:
    """Metrics of a saved model on a data folder.

    Args:
        checkpoint: a ``.pt`` written by :func:`medcam.save` (e.g. ``best.pt``).
        data: the data; images are prepared as the checkpoint's spec says.
        split: which images (see :func:`eval_subset`).
        sha256: the checkpoint file's expected digest (see :func:`medcam.load`).

    Returns:
        ``{"checkpoint", "kind", "split", "n", "metrics"}``: classification metrics of a classifier
        (``kind`` "model"), Dice, IoU and box accuracy (:mod:`medcam.metrics.segmentation`) of a
        segmenter (``kind`` "segmenter").
    """
    import medcam
    from medcam.engine.distributed import resolve_device
    from medcam.model import MedcamSegmenter

    dev = resolve_device(device)
    model = medcam.load(checkpoint, map_location=dev, sha256=sha256)
    subset, split = eval_subset(checkpoint, model, data, split)
    metrics = _evaluate(model, subset, batch_size=batch_size, device=dev, progress=progress, desc=f"eval {split}")
    return {"checkpoint": str(checkpoint), "kind": "segmenter" if isinstance(model, MedcamSegmenter) else "model",
            "split": split, "n": len(subset), "metrics": metrics}
