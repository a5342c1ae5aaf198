"""NIH ChestX-ray14, read from the files of the official release as they are.

::

    nih/
      Data_Entry_2017.csv          (or Data_Entry_2017_v2020.csv) labels, "A|B" or "No Finding"
      BBox_List_2017.csv           optional boxes [x, y, w, h] in 1024 x 1024 pixels
      train_val_list.txt           optional official split (image names, one a line)
      test_list.txt
      images_001/images/00000001_000.png
      images_002/images/...

Wang X, Peng Y, Lu L, Lu Z, Bagheri M, Summers RM. *ChestX-ray8: Hospital-scale
Chest X-ray Database and Benchmarks on Weakly-Supervised Classification and
Localization of Common Thorax Diseases.* CVPR 2017.

Quirks handled here:

* the label file is found as ``Data_Entry_2017*.csv``; columns are found by
  header name (``Image Index``, ``Finding Labels``, ``Patient ID``); extra or
  split header cells (``OriginalImage[Width,Height]``) do not matter;
* the box file's irregular header (``Image Index,Finding Label,Bbox [x,y,w,h],,,``)
  is read by position; its ``Infiltrate`` is the label file's ``Infiltration``;
  ``[x, y, w, h]`` becomes ``(x, y, x + w, y + h)`` and is scaled from the
  1024 x 1024 originals to the size of the file actually read;
* without the official lists, splits group images by ``Patient ID``, so no
  patient is in two splits (with the lists, validation is carved from
  ``train_val_list.txt`` by patient).

Tasks: ``"multilabel"`` (the 14 findings, multi-hot; "No Finding" is all
zeros), or a class subset such as ``["No Finding", "Effusion", "Pneumothorax"]``:
single-label classification on the images whose *only* label is one of them
(as the localization-aware seed did). Named subsets are in :data:`NIH_TASKS`.

``multilabel=True`` with a subset is the multi-label form of it: labels are
multi-hot over the subset's findings ("No Finding" is all zeros, not a class),
and the images kept are those with *any* of the subset's findings, plus the
"No Finding" images; images with only other findings are left out
(``other_findings="negative"`` keeps them as all-zero negatives). On the
shared 621-image sample the single-label ``effusion`` task has 12 Effusion
images; its multi-label form has 82 (every image with Effusion among its findings).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

from ..errors import DataError
from ..registry import did_you_mean
from .base import ErrorPolicy, MedcamDataset, Record, logger
from .folder import check_root
from .io import is_image_file

__all__ = ["NIHChestXray", "NIH_LABELS", "NIH_TASKS", "NO_FINDING", "OTHER_SET_LABELS", "read_labels_csv",
           "read_bbox_csv"]

#: The 14 ChestX-ray14 findings, in the usual (CheXNet) order.
NIH_LABELS: tuple[str, ...] = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
    "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)
NO_FINDING = "No Finding"

#: Named tasks: None = the 14-label multi-label task; a tuple = single-label classes.
NIH_TASKS: dict[str, tuple[str, ...] | None] = {
    "multilabel": None,
    "effusion": (NO_FINDING, "Effusion"),
    "pneumothorax": (NO_FINDING, "Pneumothorax"),
    "effusion_pneumothorax": (NO_FINDING, "Effusion", "Pneumothorax"),
}

_ALIASES = {"infiltrate": "Infiltration"}

#: Labels of other chest X-ray sets users bring to NIH tasks, and where they come from.
OTHER_SET_LABELS: dict[str, str] = {
    "subcutaneousemphysema": "Subcutaneous Emphysema is a label of the Ottawa set (the attention seed's private "
                             "data, its task 'neps'), not a ChestX-ray14 finding; NIH's 'Emphysema' is lung emphysema",
    "subcuemphysema": "SubcuEmphysema (Subcutaneous Emphysema) is a label of the Ottawa set (the attention seed's "
                      "private data, its task 'neps'), not a ChestX-ray14 finding; NIH's 'Emphysema' is lung emphysema",
}
#: What to do with images that have none of a multi-label subset's findings (and are not "No Finding").
OTHER_FINDINGS = ("drop", "negative")


def _norm(label: str) -> str:
    return "".join(ch for ch in label.lower() if ch.isalnum())


_CANONICAL = {_norm(x): x for x in (*NIH_LABELS, NO_FINDING)}
_CANONICAL.update({_norm(k): v for k, v in _ALIASES.items()})


def canonical_label(label: str, where: str) -> str:
    """The release's spelling of a finding (``Infiltrate`` -> ``Infiltration``, ``pleural thickening`` -> ``Pleural_Thickening``)."""
    found = _CANONICAL.get(_norm(label))
    if found is None:
        other = OTHER_SET_LABELS.get(_norm(label))
        if other is not None:
            raise DataError(f"{where}: unknown finding {label!r}: {other} (findings: {', '.join(NIH_LABELS)}, "
                            f"{NO_FINDING})")
        raise DataError(f"{where}: unknown finding {label!r}{did_you_mean(label, (*NIH_LABELS, NO_FINDING))} "
                        f"(findings: {', '.join(NIH_LABELS)}, {NO_FINDING})")
    return found


def find_labels_csv(root: Path) -> Path:
    candidates = sorted(root.glob("Data_Entry_2017*.csv"))
    if not candidates:
        raise DataError(f"{root}: no Data_Entry_2017*.csv label file (the NIH ChestX-ray14 layout has "
                        f"Data_Entry_2017.csv next to the images_*/ folders)")
    if len(candidates) > 1:
        logger.warning("%s: several label files %s; using %s (pass labels_csv= to choose)", root,
                       [c.name for c in candidates], candidates[-1].name)
    return candidates[-1]


def read_labels_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of ``Data_Entry_2017*.csv``: ``{"image", "findings" (list of str), "patient", "line"}``."""
    if not path.is_file():
        raise DataError(f"{path}: label file not found")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: empty label file")
        cols = {h.strip().lower(): i for i, h in enumerate(header)}
        need = {"image": "image index", "findings": "finding labels", "patient": "patient id"}
        missing = [v for v in need.values() if v not in cols]
        if missing:
            raise DataError(f"{path}: header lacks {missing} (found {header[:6]})")
        idx = {k: cols[v] for k, v in need.items()}
        rows = []
        for lineno, row in enumerate(reader, start=2):
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) <= max(idx.values()):
                raise DataError(f"{path}:{lineno}: expected at least {max(idx.values()) + 1} columns, got {row!r}")
            findings = [f.strip() for f in row[idx["findings"]].split("|") if f.strip()]
            rows.append({"image": row[idx["image"]].strip(), "findings": findings,
                         "patient": row[idx["patient"]].strip(), "line": lineno})
    return rows


def read_bbox_csv(path: Path) -> dict[str, list[tuple[str, tuple[float, float, float, float]]]]:
    """``BBox_List_2017.csv`` -> ``{image: [(finding, (x0, y0, x1, y1)), ...]}`` in 1024-px coordinates."""
    out: dict[str, list[tuple[str, tuple[float, float, float, float]]]] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or header[0].strip().lower() != "image index" or header[1].strip().lower() != "finding label":
            raise DataError(f"{path}: expected the header 'Image Index,Finding Label,Bbox [x,y,w,h],,,', got {header!r}")
        for lineno, row in enumerate(reader, start=2):
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) < 6:
                raise DataError(f"{path}:{lineno}: expected image, finding, x, y, w, h; got {row!r}")
            try:
                x, y, w, h = (float(v) for v in row[2:6])
            except ValueError as err:
                raise DataError(f"{path}:{lineno}: box values are not numbers: {row[2:6]!r}") from err
            if w <= 0 or h <= 0:
                raise DataError(f"{path}:{lineno}: box with non-positive width or height: {row[2:6]!r}")
            finding = canonical_label(row[1].strip(), f"{path}:{lineno}")
            out.setdefault(row[0].strip(), []).append((finding, (x, y, x + w, y + h)))
    return out


def _read_list(path: Path) -> set[str]:
    with open(path, encoding="utf-8") as fh:
        return {line.strip() for line in fh if line.strip()}


def _index_images(root: Path, image_dirs: Sequence[str] | None) -> dict[str, Path]:
    """``{file name: path}`` of the images under ``root/images*/`` (or the given folders), recursively."""
    if image_dirs is None:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name.lower().startswith("images"))
    else:
        folders = [root / d for d in image_dirs]
        for f in folders:
            if not f.is_dir():
                raise DataError(f"{f}: image folder not found")
    out: dict[str, Path] = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if not is_image_file(name):
                    continue
                path = Path(dirpath) / name
                if name in out:
                    raise DataError(f"{name} is in two image folders: {out[name]} and {path} "
                                    f"(pass image_dirs=[...] to choose)")
                out[name] = path
    return out


def _task_classes(task: Any, multilabel: bool | None) -> tuple[list[str], bool]:
    """``(class names, multilabel)`` of a task name or list of findings."""
    if isinstance(task, str):
        if task not in NIH_TASKS:
            raise DataError(f"task: unknown NIH task {task!r}{did_you_mean(task, NIH_TASKS)} "
                            f"(tasks: {', '.join(NIH_TASKS)}, or a list of findings)")
        classes = NIH_TASKS[task]
        if classes is None:
            if multilabel is False:
                raise DataError("task 'multilabel' is multi-label; multilabel=False contradicts it")
            return list(NIH_LABELS), True
        task = list(classes)
    if not isinstance(task, (list, tuple)) or not task or not all(isinstance(t, str) for t in task):
        raise DataError(f"task: expected a task name or a list of findings, got {task!r}")
    names = [canonical_label(t, "task") for t in task]
    if len(set(names)) != len(names):
        raise DataError(f"task: duplicate findings in {list(task)}")
    if multilabel:
        names = [n for n in names if n != NO_FINDING]  # "No Finding" is all zeros, not a class
        if not names:
            raise DataError("task: a multi-label task needs at least one finding besides 'No Finding'")
        return names, True
    if len(names) < 2:
        raise DataError(f"task: a single-label task needs at least 2 classes, got {names}")
    return names, False


class NIHChestXray(MedcamDataset):
    """NIH ChestX-ray14 (official file layout): multi-label or class-subset tasks, boxes where annotated.

    Args:
        root: the release folder (label CSV, optional box CSV and lists, ``images_*/``).
        task: ``"multilabel"`` (14 findings), a name in :data:`NIH_TASKS`, or a
            list of findings (``"No Finding"`` allowed for single-label tasks).
        multilabel: with a subset task, True gives its multi-label form: multi-hot
            labels over the subset's findings, on the images with any of them plus
            the "No Finding" images (see the module docstring).
        other_findings: with ``multilabel=True`` and a subset, what happens to images
            with only other findings: ``"drop"`` (default) or ``"negative"`` (kept, all zeros).
        labels_csv: the label file (default: ``root/Data_Entry_2017*.csv``).
        bbox_csv: the box file (default: ``root/BBox_List_2017.csv`` if present; False: no boxes).
        box_reference_size: the pixel size the boxes refer to (1024, the originals).
        image_dirs: image folders relative to ``root`` (default: every ``images*`` folder).
        **options: shared dataset options (:class:`MedcamDataset`); ``groups``
            replaces the patient grouping.
    """

    layout = "nih"

    def __init__(self, root: str | os.PathLike[str], *, task: Any = "multilabel", multilabel: bool | None = None,
                 labels_csv: str | os.PathLike[str] | None = None, bbox_csv: Any = None,
                 box_reference_size: int = 1024, image_dirs: Sequence[str] | None = None,
                 other_findings: str = "drop", on_error: str = "raise", **options: Any):
        policy = ErrorPolicy(on_error)
        path = check_root(root)
        names, is_multilabel = _task_classes(task, multilabel)
        if other_findings not in OTHER_FINDINGS:
            raise DataError(f"other_findings: expected {' or '.join(OTHER_FINDINGS)}, got {other_findings!r}"
                            f"{did_you_mean(str(other_findings), OTHER_FINDINGS)}")
        self.task = task
        label_file = Path(labels_csv) if labels_csv is not None else find_labels_csv(path)
        rows = read_labels_csv(label_file)
        boxes: dict[str, list[tuple[str, tuple[float, float, float, float]]]] = {}
        if bbox_csv is not False:
            box_file = Path(bbox_csv) if bbox_csv not in (None, True) else path / "BBox_List_2017.csv"
            if box_file.is_file():
                boxes = read_bbox_csv(box_file)
            elif bbox_csv not in (None,):
                raise DataError(f"{box_file}: box file not found")
        lists = {name: path / f for name, f in (("trainval", "train_val_list.txt"), ("test", "test_list.txt"))}
        split_of: dict[str, str] = {}
        if all(p.is_file() for p in lists.values()):
            for name, p in lists.items():
                for img in _read_list(p):
                    split_of[img] = name
        elif any(p.is_file() for p in lists.values()):
            logger.warning("%s: only one of train_val_list.txt / test_list.txt; ignoring it and splitting by patient",
                           path)
        files = _index_images(path, image_dirs)
        index = {n: i for i, n in enumerate(names)}
        records: list[Record] = []
        missing: list[str] = []
        unlisted = 0
        for row in rows:
            where = f"{label_file}:{row['line']}"
            try:
                findings = [canonical_label(f, where) for f in row["findings"]]
            except DataError as err:
                policy(str(err))
                continue
            if not findings:
                policy(f"{where}: empty 'Finding Labels' for {row['image']}")
                continue
            if NO_FINDING in findings and len(findings) > 1:
                policy(f"{where}: 'No Finding' together with findings {findings} for {row['image']}")
                continue
            if is_multilabel:
                label: int | tuple[int, ...] = tuple(sorted(index[f] for f in findings if f in index))
                if not label and findings != [NO_FINDING] and other_findings == "drop":
                    continue  # only findings outside the task: neither a positive nor a "No Finding" negative
            else:
                if len(findings) != 1 or findings[0] not in index:
                    continue  # not a single-label image of this task
                label = index[findings[0]]
            file = files.get(row["image"])
            if file is None:
                missing.append(row["image"])
                continue
            item_boxes = [(index[f], b) for f, b in boxes.get(row["image"], []) if f in index]
            split = split_of.get(row["image"]) if split_of else None
            if split_of and split is None:
                unlisted += 1
            records.append(Record(path=str(file), label=label, boxes=tuple(b for _, b in item_boxes),
                                  box_labels=tuple(k for k, _ in item_boxes),
                                  box_reference=(box_reference_size, box_reference_size) if item_boxes else None,
                                  group=f"patient{row['patient']}", split=split))
        if missing:
            where = ", ".join(sorted({p.name for p in path.iterdir() if p.is_dir()})[:5]) or "none"
            policy(f"{label_file}: {len(missing)} of {len(rows)} listed images not found under {path}/images*/ "
                   f"(e.g. {missing[:3]}; image folders: {where})")
        if unlisted:
            logger.warning("%s: %d images are in neither train_val_list.txt nor test_list.txt", path, unlisted)
        super().__init__(records, names, multilabel=is_multilabel, root=path, on_error=on_error, policy=policy,
                         **options)
