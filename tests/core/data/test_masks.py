from __future__ import annotations

import numpy as np
import pytest
from medcam_data_trees import noise_image, rect_mask, save_png

from medcam.data.masks import MaskFolder, pair_masks
from medcam.errors import DataError


def _tree(root, suffix="", same_dir=False):
    mdir = "images" if same_dir else "masks"
    for i, rects in enumerate([[(2, 2, 8, 8)], [], [(0, 0, 4, 4)]]):
        save_png(root / "images" / f"case {i}.jpg" if i == 0 else root / "images" / f"case {i}.png",
                 noise_image(16, 20, seed=i))
        save_png(root / mdir / f"case {i}{suffix}.png", rect_mask(16, 20, *rects))
    save_png(root / mdir / f"case 2{suffix}_1.png", rect_mask(16, 20, (10, 10, 14, 12)))
    return root


def test_pairs_by_name_or_masks_and_labels_lesion_presence(tmp_path):
    ds = MaskFolder(_tree(tmp_path / "d"), preprocess={"size": [16, 20]})
    assert ds.class_names == ["no_lesion", "lesion"] and ds.targets.tolist() == [1, 0, 1]
    item = ds[2]
    assert np.array_equal(item["mask"].numpy(), rect_mask(16, 20, (0, 0, 4, 4), (10, 10, 14, 12)))
    assert sorted(item["boxes"].tolist()) == [[0, 0, 4, 4], [10, 10, 14, 12]]
    assert ds.paths[0].endswith("case 0.jpg")  # masks match across extensions


def test_suffix_in_the_same_folder(tmp_path):
    ds = MaskFolder(_tree(tmp_path / "d", suffix="_seg", same_dir=True), mask_dir="images", mask_suffix="_seg")
    assert len(ds) == 3 and ds.targets.tolist() == [1, 0, 1]
    with pytest.raises(DataError, match="need a mask_suffix"):
        MaskFolder(tmp_path / "d", mask_dir="images")


def test_missing_and_orphan_masks(tmp_path):
    root = _tree(tmp_path / "d")
    save_png(root / "masks" / "ghost.png", rect_mask(16, 20))
    with pytest.raises(DataError, match="ghost.png: mask without an image"):
        MaskFolder(root)
    (root / "masks" / "ghost.png").unlink()
    (root / "masks" / "case 1.png").unlink()
    with pytest.raises(DataError, match=r"case 1.png: missing mask"):
        MaskFolder(root)
    assert len(MaskFolder(root, on_error="skip")) == 2


def test_split_folders_and_missing_mask_dir(tmp_path):
    _tree(tmp_path / "d" / "train")
    _tree(tmp_path / "d" / "test")
    ds = MaskFolder(tmp_path / "d")
    assert ds.splits(seed=0)["test"] == [i for i, p in enumerate(ds.paths) if "/test/" in p]
    (tmp_path / "e" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="mask_dir folder not found"):
        MaskFolder(tmp_path / "e")


def test_pair_masks_numbering(tmp_path):
    imgs = [tmp_path / "a.png", tmp_path / "a_1.png"]
    masks = [tmp_path / "m" / "a_mask_2.png", tmp_path / "m" / "a_mask.png", tmp_path / "m" / "a_1_mask.png"]
    pairs, orphans = pair_masks(imgs, masks, "_mask", tmp_path, tmp_path / "m")
    assert pairs[imgs[0]] == [masks[1], masks[0]] and pairs[imgs[1]] == [masks[2]] and orphans == []
