from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from medcam_data_trees import noise_image, rect_mask, save_png

from medcam.data.base import collate
from medcam.data.busi import BUSI
from medcam.errors import DataError


def test_busi_items_have_or_ed_masks_and_component_boxes(busi_tree):
    ds = BUSI(busi_tree, preprocess={"size": [40, 48]})
    assert ds.class_names == ["normal", "benign", "malignant"]
    assert ds.class_counts() == {"normal": 4, "benign": 4, "malignant": 4}
    i = ds.paths.index(str(busi_tree / "benign" / "benign (2).png"))
    item = ds[i]
    assert item["label"] == 1 and item["mask"].shape == (40, 48)
    expected = rect_mask(40, 48, (6, 6, 22, 18), (30, 25, 40, 35))  # both lesion masks OR-ed
    assert np.array_equal(item["mask"].numpy(), expected)
    assert sorted(item["boxes"].tolist()) == [[6.0, 6.0, 22.0, 18.0], [30.0, 25.0, 40.0, 35.0]]
    assert item["box_labels"].tolist() == [1, 1]
    normal = ds[ds.paths.index(str(busi_tree / "normal" / "normal (1).png"))]
    assert not normal["mask"].any() and normal["boxes"].shape == (0, 4)


def test_boxes_follow_resizing_and_augmentation(busi_tree):
    ds = BUSI(busi_tree, preprocess={"size": [20, 24]}, augment={"hflip": 1.0})
    item = ds[ds.paths.index(str(busi_tree / "malignant" / "malignant (1).png"))]
    # lesion (5, 6, 21, 18) at 48x40 -> (2.5, 3, 10.5, 9) at 24x20 -> mirrored; boxes come from the final mask
    mask = item["mask"]
    ys, xs = torch.nonzero(mask, as_tuple=True)
    assert item["boxes"].tolist() == [[float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]]
    assert xs.min() >= 12  # moved to the right half
    batch = collate([ds[0], ds[1]])
    assert batch["mask"].shape == (2, 20, 24) and len(batch["boxes"]) == 2


def test_missing_mask_raises_or_skips(busi_tree, caplog):
    (busi_tree / "benign" / "benign (3)_mask.png").unlink()
    with pytest.raises(DataError, match=r"benign \(3\).png: missing mask"):
        BUSI(busi_tree)
    with caplog.at_level(logging.WARNING, logger="medcam.data"):
        ds = BUSI(busi_tree, on_error="skip")
    assert len(ds) == 11 and "missing mask" in caplog.text


def test_mask_of_the_wrong_size_names_both_files(busi_tree):
    save_png(busi_tree / "malignant" / "malignant (2)_mask.png", rect_mask(20, 20, (1, 1, 5, 5)))
    with pytest.raises(DataError, match=r"malignant \(2\)_mask.png: mask is 20x20 \(WxH\) but its image "
                                        r".*malignant \(2\).png is 48x40"):
        BUSI(busi_tree)
    assert len(BUSI(busi_tree, on_error="skip")) == 11


def test_orphan_mask_and_unknown_class_folder(busi_tree):
    save_png(busi_tree / "benign" / "benign (99)_mask.png", rect_mask(40, 48))
    with pytest.raises(DataError, match=r"benign \(99\)_mask.png: mask without an image"):
        BUSI(busi_tree)
    (busi_tree / "benign" / "benign (99)_mask.png").unlink()
    save_png(busi_tree / "Benign " / "x.png", noise_image(40, 48, seed=0))
    with pytest.raises(DataError, match=r"unknown class folder 'Benign '; did you mean 'benign'\?"):
        BUSI(busi_tree)


def test_corrupt_image_is_caught_by_the_header_check(busi_tree):
    (busi_tree / "normal" / "normal (4).png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=r"normal \(4\).png: not a readable image"):
        BUSI(busi_tree)
    assert len(BUSI(busi_tree, on_error="skip")) == 11


def test_nested_download_folder_gets_a_hint(busi_tree, tmp_path):
    with pytest.raises(DataError, match="the class folders are in .*busi: point the data path there"):
        BUSI(tmp_path)


def test_near_duplicate_groups_keep_duplicates_in_one_split(busi_tree):
    dup = busi_tree / "benign" / "benign (1).png"
    save_png(busi_tree / "malignant" / "malignant (5).png", np.asarray(__import__("PIL.Image").Image.open(dup)))
    save_png(busi_tree / "malignant" / "malignant (5)_mask.png", rect_mask(40, 48, (1, 1, 4, 4)))
    ds = BUSI(busi_tree, groups="near_duplicates")
    a = ds.paths.index(str(dup))
    b = ds.paths.index(str(busi_tree / "malignant" / "malignant (5).png"))
    assert ds.groups[a] == ds.groups[b]
    for seed in range(3):
        parts = ds.splits(val=0.25, test=0.25, seed=seed)
        assert [a in p for p in parts.values()] == [b in p for p in parts.values()]


@pytest.mark.data
def test_real_busi(busi_dir):
    ds = BUSI(busi_dir, preprocess={"size": 128})
    assert len(ds) == 624 and ds.class_counts() == {"normal": 107, "benign": 350, "malignant": 167}
    multi = [r for r in ds.records if len(r.masks) > 1]
    assert len(multi) == 10 and all(r.label in (1, 2) for r in multi)
    item = ds[ds.paths.index(str(busi_dir / "benign" / "benign (163).png"))]  # two lesion masks
    assert item["image"].shape == (3, 128, 128) and len(item["boxes"]) == 2 and item["mask"].any()
    normal = ds[int(np.flatnonzero(ds.targets == 0)[0])]
    assert not normal["mask"].any() and len(normal["boxes"]) == 0
    parts = ds.splits(seed=0)
    assert sorted(len(p) for p in parts.values()) == [93, 94, 437]
