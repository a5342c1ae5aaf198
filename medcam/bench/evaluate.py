"""Localization of one trained classifier's maps on a data set with masks or boxes (``medcam eval --localization``).

Each scored *entry* is an image and one class it has ground truth for: a
BUSI or mask-folder image with a non-empty lesion mask (its label, its mask
and the mask's boxes), or an NIH / WSOL-list image and one finding with boxes
(that finding's boxes; an image with boxes of two findings gives two
entries, as in Wang et al.'s ChestX-ray8 protocol). Every method's map is
computed for the entry's class (``target="label"``, the GT-known protocol) or
for the image's top-1 predicted class (``target="predicted"``) and scored with
the same code as the localization benchmark (:func:`medcam.bench.localize.score_boxes`):
MaxBoxAccV2, MaxBoxAcc / GT-known Loc, Top-1 Loc, mean IoU and, with masks,
PxAP (Choe et al., CVPR 2020). Box-only data (NIH, WSOL lists) also get the
ChestX-ray8 tables (Wang et al., CVPR 2017; :class:`medcam.metrics.ChestXray8Table`)
and the SR seed's fixed-threshold readout (:func:`medcam.metrics.threshold_box_accuracy`,
at the model head's declared box threshold, else SR's 0.83).

On the held-out split of a benchmark model the numbers equal the benchmark's
(same entries, targets, batches and threshold step); a test checks it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from medcam.errors import AttributionError, DataError, UnknownNameError

from .localize import (HeldOut, _resolve, box_regions, compute_maps, load_heldout, method_label, method_seed,
                       predict_logits, probe_method, score_boxes)
from .spec import EVAL_DEFAULTS

__all__ = ["TARGETS", "EXTRA_METHOD", "Entries", "entries_of", "resolve_methods", "chestxray_tables",
           "box_threshold_of", "evaluate_localization",
           "localize_checkpoint", "format_evaluation"]

#: What each map explains: the entry's own class (GT-known), or the image's top-1 prediction.
TARGETS = ("label", "predicted")
#: The method scored next to the model's own attribution by default.
EXTRA_METHOD = "gradcam"
#: Keys of a method's result that are percentages in the printed table, in order, with their titles.
TABLE = (("max_box_acc_v2", "MaxBoxAccV2"), ("max_box_acc", "MaxBoxAcc"), ("gt_known_loc", "GT-known Loc"),
         ("top1_loc", "Top-1 Loc"), ("pxap", "PxAP"), ("mean_iou", "mean IoU"))


@dataclass
class Entries:
    """The scored (image, class) pairs of a :class:`HeldOut`.

    Attributes:
        index: image index in the held-out set, per entry.
        classes: ``(n,)`` int64 class of each entry.
        boxes: ``n`` tensors ``(m_i, 4)``, that class's boxes in the image, input pixels.
    """

    index: list[int]
    classes: Tensor
    boxes: list[Tensor]

    def __len__(self) -> int:
        return len(self.index)


def entries_of(held: HeldOut) -> Entries:
    """One entry per lesion image and class with boxes (box classes, else the image's label)."""
    index, classes, boxes = [], [], []
    for i in held.lesion:
        b = held.boxes[i]
        if held.box_labels is not None and held.box_labels[i].numel() == b.shape[0]:
            labels = held.box_labels[i]
        else:
            labels = torch.full((b.shape[0],), int(held.labels[i]), dtype=torch.long)
        for c in torch.unique(labels).tolist():
            index.append(i)
            classes.append(int(c))
            boxes.append(b[labels == c])
    return Entries(index, torch.tensor(classes, dtype=torch.long), boxes)


def _method_part(text: Any) -> Any:
    """A ``--method`` value: a name, or a YAML/JSON mapping such as ``{name: fpm, key: fpm}``."""
    if isinstance(text, str) and text.strip().startswith("{"):
        import yaml

        return yaml.safe_load(text)
    return text


def resolve_methods(model: nn.Module, methods: Sequence[Any] | None) -> list[tuple[str, dict[str, Any]]]:
    """``(label, resolved part)`` per method: the given ones, or the model's own attribution plus Grad-CAM.

    Raises:
        UnknownNameError: an unknown method, with close matches.
    """
    if methods:
        raw = [_method_part(m) for m in methods]
    else:
        own = (getattr(model, "spec", None) or {}).get("attribution")
        raw = ([own] if own else []) + [EXTRA_METHOD]
    out, seen = [], set()
    for m in raw:
        try:
            part = _resolve(m)
        except UnknownNameError as err:
            raise UnknownNameError(f"--method {m if isinstance(m, str) else m.get('name')!r}: "
                                   f"{str(err).split(': ', 1)[-1]}") from None
        if "progress" in part:
            part["progress"] = False
        label = method_label(part, _resolve(part["name"]))
        if label not in seen:
            seen.add(label)
            out.append((label, part))
    return out


def chestxray_tables(maps: Tensor, boxes: Sequence[Tensor], findings: Sequence[str]) -> dict[str, Any]:
    """The ChestX-ray8 T(IoU) and T(IoBB) tables (Wang et al. 2017, Tables 7 and 4) of ``maps`` ``(n, H, W)``.

    Returns ``{"iou" | "iobb": {finding | "all": {"acc" {T: value}, "afp" {T: value}, "boxes", "images"}}}``.
    """
    from medcam.metrics import (CHESTXRAY8_IOBB_THRESHOLDS, CHESTXRAY8_IOU_THRESHOLDS, ChestXray8Table,
                                chestxray8_boxes)

    pred = chestxray8_boxes(maps)
    out = {}
    for criterion, thresholds in (("iou", CHESTXRAY8_IOU_THRESHOLDS), ("iobb", CHESTXRAY8_IOBB_THRESHOLDS)):
        table = ChestXray8Table(criterion=criterion, thresholds=thresholds)  # type: ignore[arg-type]
        table.update(pred, list(boxes), findings)
        out[criterion] = {name: {"acc": {str(t): v for t, v in r["acc"].items()},
                                 "afp": {str(t): v for t, v in r["afp"].items()},
                                 "boxes": r["boxes"], "images": r["images"]} for name, r in table.compute().items()}
    return out


def box_threshold_of(model: nn.Module) -> float | None:
    """The box threshold the model's head declares (``head.box_threshold``, e.g. 0.83 for ``fpm``), or None."""
    from medcam.model import BoxThresholdHead

    head = getattr(model, "head", None)
    return float(head.box_threshold) if isinstance(head, BoxThresholdHead) else None


def evaluate_localization(model: nn.Module, dataset: Any, *, methods: Sequence[Any] | None = None,
                          target: str = "label", interval: float = EVAL_DEFAULTS["interval"],
                          batch_size: int = EVAL_DEFAULTS["batch_size"], seed: int = 0,
                          faithfulness: bool = False, faithfulness_images: int | None = None,
                          progress: bool = False) -> dict[str, Any]:
    """Score ``model``'s attribution maps on every image of ``dataset`` that has a lesion mask or boxes.

    Args:
        model: a medcam classifier.
        dataset: items with ``image``, ``label`` and ``mask`` and/or ``boxes`` (any layout), no augmentation.
        methods: attribution names or part specs (default: the spec's ``attribution`` and Grad-CAM).
        target: ``"label"`` (each entry's class) or ``"predicted"`` (each image's top-1 class).
        interval: CAM threshold step of the WSOL metrics.
        batch_size: entries per attribution call (the benchmark's, so batch-dependent heads agree).
        seed: seeds each method's run (:func:`medcam.bench.localize.method_seed`).
        faithfulness: also score the maps with :mod:`medcam.bench.faithfulness`'s default metrics.
        faithfulness_images: the first N entries for faithfulness (default: the benchmark's ``images``).

    Returns:
        ``{"target", "ground_truth" ("masks" | "boxes"), "n_images", "n_annotated", "n_entries",
        "interval", "batch_size", "classes" {name: entries}, "methods" {label: {"part", WSOL metrics
        (:func:`score_boxes`, without curves), "chestxray8" and "sr" for box-only data}},
        "not_applicable" {label: reason}, "faithfulness"}``.

    Raises:
        DataError: no image has a lesion mask or boxes.
        AttributionError: a method given in ``methods`` does not apply to the model.
    """
    from medcam.engine.seeding import seed_everything
    from medcam.metrics import SR_IOU, SR_THRESHOLD, threshold_box_accuracy

    if target not in TARGETS:
        from medcam.registry import did_you_mean

        raise DataError(f"--target: expected {' or '.join(TARGETS)}, got {target!r}"
                        f"{did_you_mean(str(target), TARGETS)}")
    parts = resolve_methods(model, methods)
    held = load_heldout(dataset, batch_size=batch_size, progress=progress, desc="localization")
    entries = entries_of(held)
    if not len(entries):
        raise DataError("no image has a lesion mask or boxes, so there is nothing to localize; --localization "
                        "needs masks (busi, masks layouts) or boxes (nih with BBox_List_2017.csv, wsol_list)")
    names = list(getattr(model, "class_names", None) or getattr(dataset, "class_names", []))
    pred = predict_logits(model, held.images, batch_size=batch_size).argmax(1)
    images = held.images[entries.index]
    image_pred = pred[entries.index]
    targets = entries.classes if target == "label" else image_pred
    correct = image_pred == entries.classes
    masks = None if held.masks is None else held.masks[entries.index]
    findings = [names[c] if c < len(names) else str(c) for c in entries.classes.tolist()]
    box_only = masks is None
    threshold = box_threshold_of(model)
    threshold = SR_THRESHOLD if threshold is None else threshold
    result: dict[str, Any] = {
        "target": target, "ground_truth": "boxes" if box_only else "masks", "n_images": len(held),
        "n_annotated": len(held.lesion), "n_entries": len(entries), "interval": interval, "batch_size": batch_size,
        "classes": {n: findings.count(n) for n in sorted(set(findings))}, "methods": {}, "not_applicable": {},
        "faithfulness": None}
    computed: list[tuple[str, dict[str, Any], Tensor]] = []
    for label, part in parts:
        seed_everything(method_seed(seed, label, "probe"))
        reason = probe_method(model, part, images[:2], targets[:2])
        if reason is not None:
            if methods:
                raise AttributionError(f"--method {label} does not apply to this model: {reason}")
            result["not_applicable"][label] = reason
            continue
        seed_everything(method_seed(seed, label))
        maps, seconds = compute_maps(model, part, images, targets, batch_size=batch_size)
        scores = score_boxes(maps, entries.boxes, masks, correct, interval=interval)
        scores.pop("curves")
        row: dict[str, Any] = {"part": part, **scores, "time_ms": 1000.0 * seconds / len(entries)}
        if box_only:
            row["chestxray8"] = chestxray_tables(maps, entries.boxes, findings)
            sr = threshold_box_accuracy(maps, entries.boxes, findings, threshold=threshold, iou=SR_IOU,
                                        correct=correct)
            sr.pop("ious")
            row["sr"] = sr
        result["methods"][label] = row
        computed.append((label, part, maps))
    if faithfulness and computed:
        from .faithfulness import FAITHFULNESS_DEFAULTS, faithfulness_of

        n = FAITHFULNESS_DEFAULTS["images"] if faithfulness_images is None else int(faithfulness_images)
        keep = list(range(min(n, len(entries))))
        seed_everything(method_seed(seed, "faithfulness"))
        # the pointing games' regions: the entry's mask, or its own finding's boxes
        regions = masks[keep] if masks is not None else box_regions([entries.boxes[k] for k in keep], held.size)
        result["faithfulness"] = faithfulness_of(
            model, images[keep], targets[keep], regions,
            [Path(held.paths[entries.index[k]]).name for k in keep],
            [(label, part, maps[keep]) for label, part, maps in computed], batch_size=batch_size, seed=seed)
    return result


def localize_checkpoint(checkpoint: str | Path, data: Any, *, split: str = "auto", device: str = "auto",
                        sha256: str | None = None, **options: Any) -> dict[str, Any]:
    """:func:`evaluate_localization` of a saved classifier on the images :func:`medcam.engine.runs.eval_subset` picks.

    Returns the result plus ``"checkpoint"`` and ``"split"``.
    """
    import medcam
    from medcam.engine.distributed import resolve_device
    from medcam.engine.runs import eval_subset
    from medcam.model import MedcamModel

    model = medcam.load(checkpoint, map_location=resolve_device(device), sha256=sha256)
    if not isinstance(model, MedcamModel):
        from medcam.errors import CheckpointError

        raise CheckpointError(f"{checkpoint} holds a segmenter; --localization scores a classifier's maps")
    subset, split = eval_subset(checkpoint, model, data, split)
    annotated = subset.annotated()   # only these are read (NIH: the boxed images among thousands)
    if not annotated:
        raise DataError(f"{data.path}: no image in the '{split}' split has a lesion mask or boxes, so there is "
                        f"nothing to localize; --localization needs masks (busi, masks layouts) or boxes (nih with "
                        f"BBox_List_2017.csv, wsol_list)")
    result = evaluate_localization(model, subset.subset(annotated, augment=None), **options)
    return {"checkpoint": str(checkpoint), "split": split, **result, "n_images": len(subset)}


def _num(value: Any, pattern: str = "{:.1f}") -> str:
    return "-" if value is None else pattern.format(value)


def _method_table(result: Mapping[str, Any]) -> list[str]:
    keys = [(k, t) for k, t in TABLE if not (k == "pxap" and result["ground_truth"] == "boxes")]
    width = max(len("method"), *(len(k) for k in result["methods"]))
    lines = [f"  {'method':<{width}}" + "".join(f"{t:>14}" for _, t in keys)]
    for label, row in result["methods"].items():
        lines.append(f"  {label:<{width}}" + "".join(
            f"{_num(row[k], '{:.3f}' if k == 'mean_iou' else '{:.1f}'):>14}" for k, _ in keys))
    return lines


def _chestxray_lines(label: str, tables: Mapping[str, Any]) -> list[str]:
    lines = []
    for criterion, title in (("iou", "T(IoU)"), ("iobb", "T(IoBB)")):
        table = tables[criterion]
        names = [n for n in table if n != "all"] + ["all"]
        thresholds = list(table["all"]["acc"])
        lines += ["", f"ChestX-ray8 table, {title} (Wang et al. 2017), {label}:",
                  f"  {title:<10}" + "".join(f"{n[:12]:>13}" for n in names)]
        for t in thresholds:
            for kind, name in (("acc", "Acc."), ("afp", "AFP")):
                lines.append(f"  {t + ' ' + name:<10}" + "".join(f"{table[n][kind][t]:>13.4f}" for n in names))
    return lines


def format_evaluation(result: Mapping[str, Any]) -> str:
    """The text report of :func:`evaluate_localization` / :func:`localize_checkpoint`."""
    head = f"# localization of {result.get('checkpoint', 'the model')}"
    if "split" in result:
        head += f" ({result['split']} split)"
    counts = ", ".join(f"{n} {k}" for k, n in result["classes"].items())
    truth = "lesion masks" if result["ground_truth"] == "masks" else "boxes"
    explained = "each entry's class (GT-known)" if result["target"] == "label" else "the image's predicted class"
    lines = [head,
             f"# {result['n_entries']} scored ({counts}) on the {result['n_annotated']} of {result['n_images']} "
             f"images with {truth}; maps for {explained}, CAM threshold step {result['interval']}",
             "WSOL metrics (Choe et al. 2020; percent, mean IoU in [0, 1]):"]
    lines += _method_table(result)
    for label, reason in result["not_applicable"].items():
        lines.append(f"  {label}: not applicable ({reason})")
    for label, row in result["methods"].items():
        if "sr" not in row:
            continue
        sr = row["sr"]
        per = ", ".join(f"{k} {v:.1f}" for k, v in sr["per_class"].items())
        lines += ["", f"SR readout, {label}: accuracy at IoU > {sr['iou']:g} with threshold {sr['threshold']:g}: "
                      f"{sr['accuracy']:.1f}% of {sr['n']} (mean over classes {sr['mean_over_classes']:.1f}%; "
                      f"Cls-Loc {_num(sr['cls_loc'])}%); per class: {per}"]
        lines += _chestxray_lines(label, row["chestxray8"])
    if result.get("faithfulness"):
        from .faithfulness import format_faithfulness

        lines += ["", f"Faithfulness and sanity (first {result['faithfulness']['n_images']} scored entries):",
                  format_faithfulness(result["faithfulness"])]
    return "\n".join(lines)

