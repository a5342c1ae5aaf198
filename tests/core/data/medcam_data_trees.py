"""Builders of tiny data-set trees in the real layouts (BUSI, NIH ChestX-ray14, ...), shared by the data tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def save_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    """Write ``array`` (uint8/uint16/bool, (H, W) or (H, W, C)) as an image file, creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def noise_image(h: int, w: int, seed: int, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 1 else (h, w, channels)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def rect_mask(h: int, w: int, *rects: tuple[int, int, int, int]) -> np.ndarray:
    """Bool mask with the given ``(x0, y0, x1, y1)`` (exclusive) rectangles set."""
    m = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in rects:
        m[y0:y1, x0:x1] = True
    return m


def write_busi(root: Path) -> Path:
    """A BUSI-layout folder: 4 images per class, 40x48 px, names with spaces and parentheses.

    ``benign (2)`` has two masks (``_mask`` and ``_mask_1``, one lesion each);
    normal masks are empty; lesion rectangles are known from the file index.
    """
    h, w = 40, 48
    for k, cls in enumerate(("normal", "benign", "malignant")):
        for i in range(1, 5):
            stem = f"{cls} ({i})"
            save_png(root / cls / f"{stem}.png", noise_image(h, w, seed=10 * k + i))
            if cls == "normal":
                save_png(root / cls / f"{stem}_mask.png", rect_mask(h, w))
            else:
                save_png(root / cls / f"{stem}_mask.png", rect_mask(h, w, (4 + i, 6, 20 + i, 18)))
    save_png(root / "benign" / "benign (2)_mask_1.png", rect_mask(h, w, (30, 25, 40, 35)))
    return root


NIH_HEADER_V1 = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
                 "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],")

#: (image, findings, patient) rows of the generated NIH fixture.
NIH_ROWS = [
    ("00000001_000.png", "No Finding", 1),
    ("00000001_001.png", "Effusion", 1),
    ("00000002_000.png", "Effusion|Infiltration", 2),
    ("00000003_000.png", "Pneumothorax", 3),
    ("00000004_000.png", "No Finding", 4),
    ("00000005_000.png", "Effusion", 5),
    ("00000006_000.png", "Pneumothorax", 6),
    ("00000007_000.png", "No Finding", 7),
    ("00000008_000.png", "Infiltration", 8),
    ("00000009_000.png", "Cardiomegaly|Effusion", 9),
    ("00000010_000.png", "No Finding", 10),
    ("00000011_000.png", "Pneumothorax", 11),
]
NIH_SIZE = 64  # the generated images are 64x64 "downscaled copies" of 1024x1024 originals


def write_nih(root: Path, *, lists: bool = True, rows=NIH_ROWS, version: str = "v1") -> Path:
    """The NIH ChestX-ray14 release layout with the official quirks (odd box header, ``Infiltrate``)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [NIH_HEADER_V1 if version == "v1" else NIH_HEADER_V1.rstrip(",")]
    for name, findings, patient in rows:
        tail = "," if version == "v1" else ""
        lines.append(f"{name},{findings},0,{patient},50,M,PA,2500,2048,0.168,0.168{tail}")
    csv_name = "Data_Entry_2017.csv" if version == "v1" else "Data_Entry_2017_v2020.csv"
    (root / csv_name).write_text("\n".join(lines) + "\n")
    (root / "BBox_List_2017.csv").write_text(
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
        "00000002_000.png,Infiltrate,512.0,256.0,256.0,128.0\n"
        "00000002_000.png,Effusion,0,0,128,1024\n"
        "00000003_000.png,Pneumothorax,100.5,200.25,300,400\n"
        "99999999_000.png,Mass,1,2,3,4\n")
    for i, (name, _, _) in enumerate(rows):
        folder = "images_001" if i < len(rows) // 2 else "images_002"
        save_png(root / folder / "images" / name, noise_image(NIH_SIZE, NIH_SIZE, seed=i))
    if lists:
        test = {"00000003_000.png", "00000004_000.png", "00000006_000.png", "00000007_000.png"}
        (root / "test_list.txt").write_text("\n".join(n for n, _, _ in rows if n in test) + "\n")
        (root / "train_val_list.txt").write_text("\n".join(n for n, _, _ in rows if n not in test) + "\n")
    return root
