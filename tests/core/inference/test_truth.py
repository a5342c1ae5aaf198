"""Ground truth found from an image file's path: BUSI masks, mask folders, NIH boxes, WSOL lists."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medcam.errors import DataError
from medcam.inference.truth import find_ground_truth


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def _rect(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


def test_busi_masks_next_to_the_image_are_or_ed(tmp_path: Path) -> None:
    image = _png(tmp_path / "benign" / "benign (1).png", np.zeros((20, 24)))
    _png(tmp_path / "benign" / "benign (1)_mask.png", _rect(20, 24, 2, 3, 6, 8))
    _png(tmp_path / "benign" / "benign (1)_mask_1.png", _rect(20, 24, 15, 10, 20, 18))
    _png(tmp_path / "benign" / "benign (10)_mask.png", _rect(20, 24, 0, 0, 24, 20))   # another image's mask
    gt = find_ground_truth(image, (20, 24))
    assert gt is not None and gt.mask is not None and int(gt.mask.sum()) == 4 * 5 + 5 * 8
    assert sorted(gt.boxes.tolist()) == [[2, 3, 6, 8], [15, 10, 20, 18]]
    assert "benign (1)_mask.png" in gt.source and "benign (1)_mask_1.png" in gt.source
    assert "(10)" not in gt.source
    assert gt.to_record()["boxes"] == [[int(v) for v in b] for b in gt.boxes.tolist()]


def test_mask_folder_layout(tmp_path: Path) -> None:
    image = _png(tmp_path / "images" / "case1.jpg", np.zeros((16, 16)))
    _png(tmp_path / "masks" / "case1.png", _rect(16, 16, 4, 4, 8, 12))
    gt = find_ground_truth(image, (16, 16))
    assert gt is not None and gt.boxes.tolist() == [[4, 4, 8, 12]]


def test_nih_boxes_scaled_from_1024_pixels(tmp_path: Path) -> None:
    image = _png(tmp_path / "images_001" / "images" / "00000002_000.png", np.zeros((64, 64)))
    (tmp_path / "BBox_List_2017.csv").write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
                                                 "00000002_000.png,Infiltrate,512,256,256,128\n"
                                                 "00000009_000.png,Mass,1,2,3,4\n")
    gt = find_ground_truth(image, (64, 64))
    assert gt is not None and gt.mask is None and gt.labels == ["Infiltration"]
    assert gt.boxes.tolist() == [[32.0, 16.0, 48.0, 24.0]]   # (512, 256, 768, 384) / 16


def test_wsol_list_boxes_scaled_from_the_stated_size(tmp_path: Path) -> None:
    image = _png(tmp_path / "test" / "Mass" / "im.png", np.zeros((25, 50)))
    (tmp_path / "test_list.txt").write_text("Mass/im.png;Mass\n")
    (tmp_path / "test_gt.txt").write_text("Mass/other.png 100 50;0 0 1 1\nMass/im.png 100 50;10 10 50 40\n")
    gt = find_ground_truth(image, (25, 50))
    assert gt is not None and gt.boxes.tolist() == [[5.0, 5.0, 25.0, 20.0]]


def test_nothing_found_and_bad_masks(tmp_path: Path) -> None:
    image = _png(tmp_path / "plain" / "x.png", np.zeros((8, 8)))
    assert find_ground_truth(image, (8, 8)) is None
    _png(tmp_path / "plain" / "x_mask.png", np.zeros((4, 4)))
    with pytest.raises(DataError, match="mask is 4x4 pixels, its image 8x8"):
        find_ground_truth(image, (8, 8))
