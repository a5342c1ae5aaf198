"""Report outputs: table text, pivot, PNG files."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from medcam.bench.report import bar_plot, gallery, markdown_table, pivot_table

ROWS = [
    {"model": None, "model_label": "baseline", "method": "center_box", "kind": "baseline", "max_box_acc_v2": 14.7,
     "pxap": 16.1, "gt_known_loc": 13.0, "mean_iou": 0.218, "box_acc_v2_at_val_tau": None, "val_max_box_acc_v2": 19.0,
     "accuracy": None, "balanced_accuracy": None, "time_ms": 0.01},
    {"model": "a", "model_label": "ResNet-18 CE", "method": "gradcam", "kind": "method", "max_box_acc_v2": 8.25,
     "pxap": 20.0, "gt_known_loc": 5.0, "mean_iou": 0.1, "box_acc_v2_at_val_tau": 7.0, "accuracy": 0.61,
     "balanced_accuracy": 0.55, "time_ms": 12.34},
    {"model": "b", "model_label": "WSOL", "method": "fpm", "kind": "method", "max_box_acc_v2": 30.0,
     "pxap": float("nan"), "gt_known_loc": 25.0, "mean_iou": 0.4, "box_acc_v2_at_val_tau": 28.0,
     "val_max_box_acc_v2": 11.0, "accuracy": 0.5,
     "balanced_accuracy": 0.5, "time_ms": 3.0},
]


def test_markdown_table() -> None:
    text = markdown_table(ROWS)
    lines = text.strip().split("\n")
    assert lines[0].startswith("| model | method | MaxBoxAccV2 | PxAP |") and len(lines) == 2 + len(ROWS)
    assert "| baseline | center_box | 14.7 | 16.1 | 13.0 | 0.218 | - | **19.0** | - | - | 0.0 |" in text
    assert "| ResNet-18 CE | gradcam | 8.2 | **20.0** | 5.0 | 0.100 | 7.0 | - | 0.610 | 0.550 | 12.3 |" in text
    assert "| WSOL | fpm | **30.0** | - | **25.0** | **0.400** | **28.0** | 11.0 |" in text


def test_pivot_table() -> None:
    text = pivot_table(ROWS)
    assert text.split("\n")[0] == "| method | baseline | ResNet-18 CE | WSOL |"
    assert "| gradcam | - | 8.2 | - |" in text and "| center_box | 14.7 | - | - |" in text


def test_pngs(tmp_path: Path) -> None:
    bars = bar_plot(ROWS, tmp_path / "bars.png", title="t")
    images = torch.rand(2, 3, 20, 24)
    maps = torch.rand(2, 20, 24)
    grid = gallery(images, [torch.tensor([[2.0, 2.0, 10.0, 10.0]]), torch.zeros(0, 4)], ["a", "b"],
                   [("m1", maps), ("m2", maps)], tmp_path / "sub" / "gallery.png")
    for path in (bars, grid):
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100
