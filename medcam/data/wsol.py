"""WSOL evaluation lists as used by BAS-derived code (BAS, the SR chest X-ray seed).

::

    root/
      train/<class>/*.png          optional training images (class folders)
      test/<class>/*.png           the listed images (or val/, or root itself)
      test_list.txt                one image a line: "<class>/<file>;<label>"
      test_gt.txt                  its ground-truth boxes

The image list (BAS ``test_list.txt`` / ``val_list.txt``; SR ``test_list.txt``)
holds ``relative/path;label`` per line, the label a class index (BAS) or a
class name (SR's inference script). The box list comes in two formats, both
read here:

* **named** (SR ``test_gt.txt``, BAS ImageNet ``val_gt.txt``):
  ``<name> <w> <h> ; x0 y0 x1 y1 [x0 y0 x1 y1 ...]`` (spaces around ``;``
  optional, any number of boxes), matched to the list by name, boxes in pixels
  of a ``w x h`` image;
* **aligned** (BAS CUB ``test_gt.txt``): ``x0 y0 x1 y1 <h> <w>`` per line, the
  n-th line belonging to the n-th listed image.

Sources: wpy1999/BAS ``CUB/DataLoader.py`` and ``ILSVRC/DataLoader.py``;
WTY321/SR ``DataLoader.py`` and ``inference.py`` (read, not copied). Boxes are
scaled from the ``w x h`` the file states to the size of the file read, then
follow the preprocessing like any box. ImageNet-style lists use inclusive
corner pixels (``0 0 499 374`` for a 500 x 375 image): pass
``box_end="inclusive"`` to add one pixel to ``x1``/``y1`` (medcam's boxes are
exclusive).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

from ..errors import DataError
from ..registry import did_you_mean
from .base import ErrorPolicy, MedcamDataset, Record
from .folder import check_root, class_folders, list_images

__all__ = ["WSOLList", "read_image_list", "read_box_list"]


def _norm_path(text: str) -> str:
    """Forward slashes (BAS writes ``n01751748\\\\ILSVRC2012_val_00000001.JPEG``), no leading ``./``."""
    out = re.sub(r"\\+", "/", text.strip())
    while out.startswith("./"):
        out = out[2:]
    return out


def read_image_list(path: Path) -> list[tuple[str, str, int]]:
    """``[(relative path, label text, line number)]`` from ``path;label`` lines."""
    if not path.is_file():
        raise DataError(f"{path}: image list not found")
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            if ";" not in line:
                raise DataError(f"{path}:{lineno}: expected '<relative path>;<label>', got {line!r}")
            name, label = line.rsplit(";", 1)
            if not name.strip() or not label.strip():
                raise DataError(f"{path}:{lineno}: expected '<relative path>;<label>', got {line!r}")
            out.append((_norm_path(name), label.strip(), lineno))
    if not out:
        raise DataError(f"{path}: empty image list")
    return out


def read_box_list(path: Path) -> tuple[str, list[tuple[str | None, tuple[float, float], list[tuple[float, ...]]]]]:
    """Parse a box list.

    Returns:
        ``(format, entries)``: format ``"named"`` or ``"aligned"``; entries
        ``(name or None, (h, w) of the reference image, [(x0, y0, x1, y1), ...])``.
    """
    if not path.is_file():
        raise DataError(f"{path}: box list not found")
    fmt = None
    entries: list[tuple[str | None, tuple[float, float], list[tuple[float, ...]]]] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            where = f"{path}:{lineno}"
            this = "named" if ";" in line else "aligned"
            if fmt is None:
                fmt = this
            elif fmt != this:
                raise DataError(f"{where}: mixes the named ('name w h; x0 y0 x1 y1') and aligned "
                                f"('x0 y0 x1 y1 h w') formats")
            try:
                if this == "named":
                    left, right = line.split(";", 1)
                    tokens = left.split()
                    if len(tokens) < 3:
                        raise ValueError("expected '<name> <w> <h>' before ';'")
                    name = _norm_path(" ".join(tokens[:-2]))
                    w, h = float(tokens[-2]), float(tokens[-1])
                    values = [float(v) for v in right.split()]
                    if not values or len(values) % 4:
                        raise ValueError(f"{len(values)} box values after ';' (need groups of 4)")
                    boxes = [tuple(values[i:i + 4]) for i in range(0, len(values), 4)]
                    entries.append((name, (h, w), boxes))
                else:
                    values = [float(v) for v in line.split()]
                    if len(values) != 6:
                        raise ValueError(f"{len(values)} values (need 'x0 y0 x1 y1 h w')")
                    entries.append((None, (values[4], values[5]), [tuple(values[:4])]))
            except ValueError as err:
                raise DataError(f"{where}: cannot read box line {line!r}: {err}") from None
            for b in entries[-1][2]:
                if b[2] < b[0] or b[3] < b[1]:
                    raise DataError(f"{where}: box {b} has x1 < x0 or y1 < y0")
            if min(entries[-1][1]) <= 0:
                raise DataError(f"{where}: image size must be positive, got {entries[-1][1]}")
    if fmt is None:
        raise DataError(f"{path}: empty box list")
    return fmt, entries


class WSOLList(MedcamDataset):
    """The images of a WSOL evaluation list with their ground-truth boxes (plus an optional ``train/`` folder).

    Args:
        root: the data folder.
        image_list: the list file, relative to ``root`` (``test_list.txt``).
        box_list: the box file, relative to ``root`` (``test_gt.txt``), or None.
        image_dir: folder the listed paths are relative to (default: the first of
            ``root``, ``root/test``, ``root/val`` that holds the first listed image).
        train_dir: class folders of training images added as the ``train`` split
            (default ``train``, used when present; None to leave out).
        split: the split of the listed images (``"test"``; None to let
            :meth:`splits` carve splits from them).
        class_names: the classes in label order (default: from the folders, or
            the sorted class names of the list).
        box_end: ``"exclusive"`` (default) or ``"inclusive"`` corner pixels in the box file.
        **options: shared dataset options (:class:`MedcamDataset`).
    """

    layout = "wsol_list"

    def __init__(self, root: str | os.PathLike[str], *, image_list: str = "test_list.txt",
                 box_list: str | None = "test_gt.txt", image_dir: str | None = None, train_dir: str | None = "train",
                 split: str | None = "test", class_names: Sequence[str] | None = None, box_end: str = "exclusive",
                 on_error: str = "raise", **options: Any):
        policy = ErrorPolicy(on_error)
        path = check_root(root)
        if box_end not in ("exclusive", "inclusive"):
            raise DataError(f"box_end: expected 'exclusive' or 'inclusive', got {box_end!r}"
                            f"{did_you_mean(str(box_end), ('exclusive', 'inclusive'))}")
        if split not in (None, "train", "val", "test"):
            raise DataError(f"split: expected 'train', 'val', 'test' or None, got {split!r}")
        listed = read_image_list(path / image_list)
        folder = self._image_dir(path, image_dir, listed[0][0])
        train = path / train_dir if train_dir is not None else None
        train_folders = class_folders(train) if train is not None and train.is_dir() else []
        names = self._class_names(class_names, listed, [d.name for d in train_folders], path / image_list)
        index = {n: i for i, n in enumerate(names)}
        labels: list[int | None] = []
        for _, text, lineno in listed:
            try:
                labels.append(self._parse_label(text, index, names, f"{path / image_list}:{lineno}"))
            except DataError as err:
                policy(str(err))
                labels.append(None)
        boxes: list[list[tuple[float, ...]]] = [[] for _ in listed]
        refs: list[tuple[int, int] | None] = [None] * len(listed)
        if box_list is not None:
            fmt, entries = read_box_list(path / box_list)
            if fmt == "aligned":
                if len(entries) != len(listed):
                    raise DataError(f"{path / box_list}: {len(entries)} box lines for {len(listed)} listed images "
                                    f"(the aligned 'x0 y0 x1 y1 h w' format needs one line per listed image)")
                matched = list(entries)
            else:
                by_name = {e[0]: e for e in entries}
                by_file: dict[str, list] = {}
                for e in entries:
                    by_file.setdefault(Path(str(e[0])).name, []).append(e)
                matched = []
                for rel, _, lineno in listed:
                    e = by_name.get(rel)
                    if e is None and len(by_file.get(Path(rel).name, [])) == 1:
                        e = by_file[Path(rel).name][0]
                    matched.append(e)
            for i, e in enumerate(matched):
                if e is None:
                    policy(f"{path / box_list}: no boxes for listed image {listed[i][0]}")
                    continue
                end = 1.0 if box_end == "inclusive" else 0.0
                boxes[i] = [(b[0], b[1], b[2] + end, b[3] + end) for b in e[2]]
                refs[i] = (int(round(e[1][0])), int(round(e[1][1])))
        records: list[Record] = []
        for (rel, _, lineno), label, bx, ref in zip(listed, labels, boxes, refs):
            if label is None:
                continue
            if box_list is not None and ref is None:
                continue  # reported above
            records.append(Record(path=str(folder / rel), label=label, boxes=tuple(tuple(b) for b in bx),  # type: ignore[misc]
                                  box_labels=tuple(label for _ in bx), box_reference=ref, split=split))
        for d in train_folders:
            if d.name not in index:
                policy(f"{d}: unknown class folder '{d.name}'{did_you_mean(d.name, names)} (classes: {', '.join(names)})")
                continue
            records.extend(Record(path=str(p), label=index[d.name], split="train") for p in list_images(d))
        super().__init__(records, names, root=path, on_error=on_error, policy=policy, **options)

    @staticmethod
    def _image_dir(root: Path, image_dir: str | None, first: str) -> Path:
        candidates = [root / image_dir] if image_dir is not None else [root, root / "test", root / "val"]
        for c in candidates:
            if (c / first).is_file():
                return c
        raise DataError(f"listed image {first!r} not found under {', '.join(str(c) for c in candidates)} "
                        f"(pass image_dir= for the folder the list's paths are relative to)")

    @staticmethod
    def _class_names(given: Sequence[str] | None, listed: list[tuple[str, str, int]], folders: list[str],
                     where: Path) -> list[str]:
        if given is not None:
            names = [str(n) for n in given]
            if len(set(names)) != len(names):
                raise DataError(f"class_names has duplicates: {names}")
            return names
        texts = [t for _, t, _ in listed]
        if all(re.fullmatch(r"\d+", t) for t in texts):
            # class indices: name each class after the folder its images lie in, if that is consistent
            ids = sorted({int(t) for t in texts})
            k = max(max(ids) + 1, len(folders))
            folder_of: dict[int, set[str]] = {}
            for rel, t, _ in listed:
                parts = rel.split("/")
                folder_of.setdefault(int(t), set()).add(parts[0] if len(parts) > 1 else "")
            by_folder = sorted(folders)
            if len(by_folder) == k:
                return by_folder
            if all(len(v) == 1 and "" not in v for v in folder_of.values()) and len(folder_of) == k:
                return [next(iter(folder_of[i])) for i in range(k)]
            return [f"class_{i}" for i in range(k)]
        return sorted(set(texts) | set(folders))

    @staticmethod
    def _parse_label(text: str, index: dict[str, int], names: list[str], where: str) -> int:
        if text in index:
            return index[text]
        if re.fullmatch(r"\d+", text):
            k = int(text)
            if k < len(names):
                return k
            raise DataError(f"{where}: label {k} is not a class index in 0..{len(names) - 1}")
        raise DataError(f"{where}: unknown class {text!r}{did_you_mean(text, names)} (classes: {', '.join(names)})")
