"""Run a localization benchmark: train (or load) each model, score every method and baseline, write the report.

::

    from medcam.bench import run_benchmark
    result = run_benchmark("benchmarks/specs/busi_cpu.yaml", data="../shared/data/busi", out="results/")

For every model of the spec (:mod:`medcam.bench.spec`):

1. train it with :func:`medcam.engine.runs.train_on_folder` into
   ``out/models/<key>`` (stratified split, grouped by near-duplicates, seeded)
   and take its last epoch (or the best by validation balanced accuracy, as
   ``eval.checkpoint`` says), or load ``<checkpoints>/<key>/last.pt`` (or
   ``best.pt``) after checking that it was trained with the same model spec,
   training settings and split;
2. classify every held-out test image (accuracy, balanced accuracy);
3. try every attribution method (all registered names, plus the model's own
   ``attribution``) on two lesion images; methods that do not apply to the
   model are listed with the reason; the others are computed for every held-out
   image with a lesion, for its ground-truth class, and scored
   (:mod:`medcam.bench.localize`), timing the attribution calls;
4. score the same maps of the first ``faithfulness.images`` lesion images, and
   the baselines' maps, with the faithfulness and sanity metrics of the spec's
   ``faithfulness`` section (:mod:`medcam.bench.faithfulness`).

The model-free baselines (:mod:`medcam.bench.baselines`) are scored on the
same images. Outputs in ``out``: ``localization.md`` (tables, protocol, split,
versions, the faithfulness table), ``localization.json`` (every number, the resolved spec, seeds, the
held-out file list and its sha256, package versions), ``localization_bars.png``,
``localization_gallery.png`` and ``heldout_test.txt``.

Everything but the timings is a function of the spec, the data and the seed:
two runs with the same settings write the same numbers.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from medcam.progress import show_bar

from medcam.errors import DataError

from . import baselines as B
from . import faithfulness as F
from .localize import (HeldOut, at_thresholds, candidate_methods, classify, compute_maps, load_heldout,
                       method_seed, probe_method, score_maps)
from .obtain import compact, log, obtain_model
from .provenance import environment, file_digest, list_digest, relative_paths, state_digest
from .report import bar_plot, gallery, markdown_table, pivot_table
from .spec import BenchSpec, ModelEntry, load_bench_spec

__all__ = ["run_benchmark", "OUTPUT_FILES"]

#: Files written into the output folder.
OUTPUT_FILES = ("localization.md", "localization.json", "localization_bars.png", "localization_gallery.png",
                "heldout_test.txt")
_METRIC_KEYS = ("max_box_acc_v2", "box_acc_v2", "pxap", "gt_known_loc", "max_box_acc", "top1_loc", "mean_iou",
                "pixel_iou", "thresholds", "n_images")


def _data_config(spec: BenchSpec, data: str | Path, cache_dir: Path | None) -> Any:
    from medcam.engine.runs import DataConfig

    d = spec.data
    return DataConfig(path=str(data), dataset=d["dataset"], val=d["val"], test=d["test"], split_seed=d["split_seed"],
                      augment=d["augment"], cache_dir=str(cache_dir) if cache_dir else None, groups=d["groups"],
                      options=dict(d["options"]))


def _splits(data_cfg: Any, model_spec: Mapping[str, Any], progress: bool, need_val: bool,
            need_train: bool) -> dict[str, Any]:
    from medcam.engine.runs import open_dataset

    full = open_dataset(data_cfg, model_spec)
    if getattr(full, "multilabel", False):
        raise DataError(f"{data_cfg.path}: the benchmark scores single-label data; set data.options.task")
    parts = full.splits(data_cfg.val, data_cfg.test, seed=data_cfg.split_seed)
    if not parts["test"]:
        raise DataError(f"{data_cfg.path}: the split left no test images")
    out: dict[str, Any] = {"full": full, "indices": parts,
                           "test": load_heldout(full.subset(parts["test"], augment=None), progress=progress,
                                                desc="held-out test")}
    if need_val and parts["val"]:
        out["val"] = load_heldout(full.subset(parts["val"], augment=None), progress=progress, desc="validation")
    if need_train:
        out["train"] = load_heldout(full.subset(parts["train"], augment=None), progress=progress,
                                    desc="training boxes")
    return out


def _gallery_index(held: HeldOut, n: int) -> list[int]:
    """``n`` lesion images spread over the classes: evenly spaced in (label, path) order."""
    if n <= 0 or not held.lesion:
        return []
    order = sorted(held.lesion, key=lambda i: (int(held.labels[i]), held.paths[i]))
    picks = np.unique(np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int))
    return [order[k] for k in picks]


def _metrics_only(scores: Mapping[str, Any]) -> dict[str, Any]:
    return {k: scores[k] for k in _METRIC_KEYS}


def _evaluate_model(spec: BenchSpec, entry: ModelEntry, model: Any, heldout: Mapping[str, Any],
                    gallery_idx: Sequence[int], progress: bool,
                    faithfulness: Mapping[str, Any] | None = None) -> dict[str, Any]:
    from medcam.engine.seeding import seed_everything

    test: HeldOut = heldout["test"]
    val: HeldOut | None = heldout.get("val")
    ev = spec.eval
    names = model.spec.get("class_names") or [str(i) for i in range(model.num_classes)]
    cls = classify(model, test, names, batch_size=ev["batch_size"])
    correct = (cls["pred"] == test.labels)
    lesion = test.lesion
    images, targets = test.images[lesion], test.labels[lesion]
    probe = images[:2], targets[:2]
    methods = []
    for label, part in candidate_methods(model, entry.methods or ev["methods"],
                                         list(ev["exclude_methods"]) + list(entry.exclude_methods)):
        seed_everything(method_seed(spec.seed, entry.key, label, "probe"))
        reason = probe_method(model, part, *probe)
        methods.append({"label": label, "part": part, "applicable": reason is None, "reason": reason})
    results: dict[str, Any] = {}
    gallery_maps: dict[str, torch.Tensor] = {}
    faithful_maps: dict[str, torch.Tensor] = {}
    positions = [lesion.index(i) for i in gallery_idx]
    usable = [m for m in methods if m["applicable"]]
    bar = tqdm(total=len(usable) * (len(lesion) + (len(val.lesion) if val is not None and ev["val_threshold"]
                                                  else 0)),
               desc=f"{entry.key}: attribution", leave=False, disable=not show_bar(progress), file=sys.stderr)
    for m in usable:
        seed_everything(method_seed(spec.seed, entry.key, m["label"]))
        maps, seconds = compute_maps(model, m["part"], images, targets, batch_size=ev["batch_size"],
                                     progress=bar.update)
        scores = score_maps(maps, test, lesion, correct, interval=ev["interval"])
        row = _metrics_only(scores)
        row["time_ms"] = 1000.0 * seconds / max(len(lesion), 1)
        if val is not None and ev["val_threshold"] and val.lesion:
            seed_everything(method_seed(spec.seed, entry.key, m["label"], "val"))
            vmaps, _ = compute_maps(model, m["part"], val.images[val.lesion], val.labels[val.lesion],
                                    batch_size=ev["batch_size"], progress=bar.update)
            vscores = score_maps(vmaps, val, val.lesion, None, interval=ev["interval"])
            row.update(at_thresholds(scores, vscores))
            row["val"] = {k: vscores[k] for k in ("max_box_acc_v2", "pxap", "gt_known_loc", "mean_iou", "n_images")}
        results[m["label"]] = row
        gallery_maps[m["label"]] = maps[positions]
        if faithfulness is not None:
            faithful_maps[m["label"]] = maps[:faithfulness["count"]]
        log(f"[{entry.key}] {m['label']:<24} MaxBoxAccV2 {row['max_box_acc_v2']:5.1f}  "
             f"PxAP {math.nan if row['pxap'] is None else row['pxap']:5.1f}  {row['time_ms']:.1f} ms/image", progress)
    bar.close()
    parts = {m["label"]: m["part"] for m in methods}
    faithful = None
    if faithfulness is not None:
        faithful = F.score_model(spec, entry.key, model, test, faithfulness, faithful_maps, parts, progress)
    return {"classification": cls["metrics"], "methods": results, "gallery": gallery_maps,
            "not_applicable": {m["label"]: m["reason"] for m in methods if not m["applicable"]},
            "parts": parts, "faithfulness": faithful}


def _score_baselines(spec: BenchSpec, held: HeldOut, val: HeldOut | None, train_boxes: Sequence[torch.Tensor],
                     gallery_idx: Sequence[int]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    results, maps_out = {}, {}
    lesion = held.lesion
    keys = [Path(p).name for p in (held.paths[i] for i in lesion)]
    positions = [lesion.index(i) for i in gallery_idx]
    for part in B.usable_baselines(spec.baselines, train_boxes)[0]:
        label = part["name"]
        began = time.perf_counter()
        maps, fitted = B.baseline_maps(part, keys, held.size, seed=spec.seed, train_boxes=train_boxes)
        seconds = time.perf_counter() - began
        scores = score_maps(maps, held, lesion, None, interval=spec.eval["interval"])
        row = _metrics_only(scores)
        row["time_ms"] = 1000.0 * seconds / max(len(lesion), 1)
        row["params"] = {**{k: v for k, v in part.items() if k != "name"}, **fitted}
        if val is not None and val.lesion:
            vkeys = [Path(val.paths[i]).name for i in val.lesion]
            vmaps, _ = B.baseline_maps(part, vkeys, val.size, seed=spec.seed, train_boxes=train_boxes)
            vscores = score_maps(vmaps, val, val.lesion, None, interval=spec.eval["interval"])
            row.update(at_thresholds(scores, vscores))
            row["val"] = {k: vscores[k] for k in ("max_box_acc_v2", "pxap", "gt_known_loc", "mean_iou", "n_images")}
        results[label] = row
        maps_out[label] = maps[positions]
    return results, maps_out


def _backbone_name(model_spec: Mapping[str, Any]) -> str:
    bb = model_spec.get("backbone")
    return str(bb.get("name") if isinstance(bb, Mapping) else bb)


def _rows(baseline_results: Mapping[str, Any], models: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for label, r in baseline_results.items():
        rows.append({"model": None, "model_label": "baseline", "backbone": None, "method": label, "kind": "baseline",
                     **{k: r.get(k) for k in ("max_box_acc_v2", "pxap", "gt_known_loc", "top1_loc", "mean_iou",
                                              "pixel_iou", "box_acc_v2_at_val_tau")},
                     "val_max_box_acc_v2": (r.get("val") or {}).get("max_box_acc_v2"), "accuracy": None,
                     "balanced_accuracy": None,
                     "time_ms": r["time_ms"]})
    for m in models:
        cls = m["classification"]
        for label, r in m["methods"].items():
            rows.append({"model": m["key"], "model_label": m["label"], "backbone": m["backbone"], "method": label,
                         "kind": "method",
                         **{k: r.get(k) for k in ("max_box_acc_v2", "pxap", "gt_known_loc", "top1_loc", "mean_iou",
                                                  "pixel_iou", "box_acc_v2_at_val_tau")},
                         "val_max_box_acc_v2": (r.get("val") or {}).get("max_box_acc_v2"),
                         "accuracy": cls["accuracy"], "balanced_accuracy": cls["balanced_accuracy"],
                         "time_ms": r["time_ms"]})
    return rows


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value


def _markdown(record: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    spec, data = record["spec"], record["data"]
    env = record["environment"]
    lines = [f"# Localization benchmark: {spec['name']}", ""]
    if spec.get("description"):
        lines += [str(spec["description"]).strip(), ""]
    if record.get("command"):
        lines += ["Command:", "", f"    {record['command']}", ""]
    lines += [f"Wall time: {record['wall_time_s']:.0f} s ({record['wall_time_s'] / 60:.1f} min) with "
              f"{env['torch_threads']} torch thread(s) on {env['cpu_count']} CPU(s).", ""]
    t = data["held_out"]
    lines += [f"Data: `{data['path']}` ({data['dataset']}), split {data['split_sizes']} (stratified, "
              f"groups: {data['groups']}, split seed {data['split_seed']}); held-out test: {t['n_images']} images, "
              f"{t['n_lesion']} with a lesion mask or boxes (localization is scored on these; the "
              f"{t['n_images'] - t['n_lesion']} without a lesion count for classification only). "
              f"Held-out list sha256 `{t['sha256'][:16]}` "
              f"(`heldout_test.txt`). Input size {data['input_size'][0]} x {data['input_size'][1]} px, seed "
              f"{spec['seed']}.", ""]
    lines += ["Maps are computed for each image's ground-truth class and min-max normalized; box metrics follow "
              "Choe et al. (CVPR 2020) with a CAM-threshold step of "
              f"{spec['eval']['interval']} (best threshold per metric: part of MaxBoxAccV2's definition). "
              "MaxBoxAccV2, PxAP, GT-known Loc and BoxAccV2 @ val tau in %; BoxAccV2 @ val tau reads the test "
              "curves at the thresholds that are best on the validation split's lesion images; val MaxBoxAccV2 is "
              "the same metric on the validation split (what settings may be chosen on). mean IoU: mean best "
              "box IoU at its best threshold. acc / bal. acc: classification of all held-out images. "
              "ms / image: attribution wall time (the only column that changes between runs).", ""]
    lines += [markdown_table(rows), "MaxBoxAccV2 by method and model:", "", pivot_table(rows), ""]
    for m in record["models"]:
        lines.append(f"- **{m['label']}** (`{m['key']}`, backbone {m['backbone']}): "
                     + (f"trained {m['train_time_s']:.0f} s (best validation epoch {m.get('best_epoch')}); "
                        if m["trained"] else "loaded; ")
                     + f"evaluated `{Path(m['checkpoint']).name}`, "
                     + f"weights sha256 `{m['weights_sha256'][:16]}`.")
        for label, reason in m["not_applicable"].items():
            lines.append(f"  - `{label}` not applicable: {reason}")
    lines.append("")
    lines += [f"- baseline `{label}`: {r['params']}" for label, r in record["baselines"].items()]
    lines += [f"- baseline `{k}` not applicable: {why}" for k, why in record["baselines_not_applicable"].items()]
    lines += F.markdown_section(record)
    pk = env["packages"]
    lines += ["", f"Versions: python {env['python']}, " + ", ".join(f"{k} {v}" for k, v in pk.items() if v)
              + (f"; git {env['git']['commit'][:12]}{' (modified)' if env['git']['modified'] else ''}"
                 if env.get("git") else ""), ""]
    return "\n".join(lines)


def run_benchmark(spec: Any, data: str | Path, out: str | Path, *, checkpoints: str | Path | None = None,
                  overwrite: bool = False, models: Sequence[str] | None = None, size: int | None = None,
                  epochs: int | None = None, threads: int | None = None, progress: bool = True,
                  command: str | None = None) -> dict[str, Any]:
    """Run the benchmark ``spec`` on the data folder ``data`` and write the report into ``out``.

    Args:
        spec: benchmark spec (YAML/JSON path, mapping or :class:`BenchSpec`).
        data: the data set folder (BUSI layout).
        out: output folder (created); training runs go to ``out/models/<key>``.
        checkpoints: folder of earlier runs, ``<checkpoints>/<key>/{last,best}.pt``; models found there are
            loaded (after checking spec, settings and split), the others trained.
        overwrite: retrain models whose run folder in ``out/models`` already holds checkpoints.
        models: evaluate only these model keys.
        size, epochs, threads: override the spec's input size, epochs and torch threads.
        progress: progress bars and per-method lines on stderr.
        command: the command line, recorded in the report.

    Returns:
        the JSON record written to ``out/localization.json`` plus ``"rows"``.
    """
    began = time.perf_counter()
    source_text = None
    if isinstance(spec, (str, Path)) and Path(spec).is_file():
        source_text = {"path": str(spec), "sha256": file_digest(spec)}
    bench = load_bench_spec(spec).select(models).override(size=size, epochs=epochs, threads=threads)
    if bench.threads is not None:
        torch.set_num_threads(bench.threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_cfg = _data_config(bench, data, out / "cache")
    ckpt_root = Path(checkpoints) if checkpoints is not None else None
    if ckpt_root is not None and not ckpt_root.is_dir():
        raise FileNotFoundError(f"--checkpoints folder '{ckpt_root}' does not exist")
    import medcam

    model_records: list[dict[str, Any]] = []
    reference: dict[str, Any] | None = None
    gallery_idx: list[int] = []
    all_gallery: list[tuple[str, torch.Tensor]] = []
    obtained: dict[str, Path] = {}
    faithful_setup: dict[str, Any] | None = None
    for entry in bench.models:
        got = obtain_model(bench, entry, data_cfg, out, ckpt_root, overwrite, progress, obtained)
        obtained[entry.key] = Path(got["path"])
        model = medcam.load(got["path"])
        heldout = _splits(data_cfg, model.spec, progress, bench.eval["val_threshold"], reference is None)
        test: HeldOut = heldout["test"]
        if reference is None:
            reference = heldout
            if not test.lesion:
                raise DataError(f"{data_cfg.path}: no held-out test image has a lesion mask or boxes; nothing to "
                                f"localize (the benchmark needs masks (busi, masks) or boxes (nih, wsol_list))")
            gallery_idx = _gallery_index(test, bench.eval["gallery"])
        elif test.paths != reference["test"].paths:
            raise DataError(f"model {entry.key} sees other held-out images than {bench.models[0].key}; every model "
                            f"must use the same data settings")
        log(f"[{entry.key}] evaluating {len(test)} held-out images ({len(test.lesion)} with a lesion)", progress)
        if faithful_setup is None and bench.faithfulness["metrics"]:
            train_ref = reference["train"]
            faithful_setup = F.setup(bench, test, [train_ref.boxes[i] for i in train_ref.lesion])
        ev = _evaluate_model(bench, entry, model, heldout, gallery_idx, progress, faithful_setup)
        record = {"key": entry.key, "label": entry.label, "backbone": _backbone_name(model.spec),
                  "model_spec": model.spec, "train_settings": got["settings"], "trained": got["trained"],
                  "train_time_s": got["train_time_s"], "best_epoch": got.get("best_epoch"),
                  "init_from": entry.init_from,
                  "val_classification": got.get("val"),
                  "checkpoint": str(got["path"]), "weights_sha256": state_digest(model.state_dict()),
                  "input_size": list(test.size), "classification": compact(ev["classification"]),
                  "confusion_matrix": ev["classification"].get("confusion_matrix"),
                  "methods": ev["methods"], "method_parts": ev["parts"], "not_applicable": ev["not_applicable"],
                  "faithfulness": ev["faithfulness"], "notes": entry.notes}
        model_records.append(record)
        all_gallery += [(f"{entry.label}\n{label}", maps) for label, maps in ev["gallery"].items()]
        del model
    assert reference is not None
    test = reference["test"]
    train = reference["train"]
    if train.size != test.size:
        raise DataError(f"training and held-out images differ in size ({train.size} vs {test.size})")
    train_boxes = [train.boxes[i] for i in train.lesion]
    skipped_baselines = B.usable_baselines(bench.baselines, train_boxes)[1]
    baseline_results, baseline_gallery = _score_baselines(bench, test, reference.get("val"), train_boxes, gallery_idx)
    rows = _rows(baseline_results, model_records)
    heldout_files = relative_paths(test.paths, data)
    (out / "heldout_test.txt").write_text("".join(f"{p}\n" for p in heldout_files), encoding="utf-8")
    parts = reference["indices"]
    record = {
        "spec": bench.to_dict(), "spec_file": source_text, "command": command,
        "data": {"path": str(Path(data).resolve()), "dataset": bench.data["dataset"], "groups": bench.data["groups"],
                 "split_seed": bench.data["split_seed"], "split_sizes": {k: len(v) for k, v in parts.items()},
                 "input_size": list(test.size),
                 "held_out": {"n_images": len(test), "n_lesion": len(test.lesion),
                              "sha256": list_digest(heldout_files), "file": "heldout_test.txt",
                              "classes": {str(c): int((test.labels == c).sum())
                                          for c in test.labels.unique().tolist()}},
                 "train_sha256": list_digest(relative_paths([reference["full"].paths[i] for i in parts["train"]],
                                                            data)),
                 "val_sha256": list_digest(relative_paths([reference["full"].paths[i] for i in parts["val"]], data))},
        "baselines": baseline_results, "baselines_not_applicable": skipped_baselines,
        "models": model_records, "environment": environment(),
        "faithfulness": None if faithful_setup is None else {"n_images": faithful_setup["count"],
                                                             "columns": faithful_setup["columns"]},
    }
    record["wall_time_s"] = round(time.perf_counter() - began, 1)
    record["rows"] = rows
    record = _jsonable(record)
    record["faithfulness_rows"] = F.faithfulness_rows(record)
    (out / "localization.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    bar_plot(rows, out / "localization_bars.png", title=f"{bench.name}: held-out lesion localization")
    titles = [f"{Path(test.paths[i]).stem}" for i in gallery_idx]
    if gallery_idx:
        gallery(test.images[gallery_idx], [test.boxes[i] for i in gallery_idx], titles,
                [(f"baseline\n{k}", v) for k, v in baseline_gallery.items()] + all_gallery,
                out / "localization_gallery.png")
    (out / "localization.md").write_text(_markdown(record, rows), encoding="utf-8")
    return record
