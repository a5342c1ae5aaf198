"""medcam.data.synthetic: deterministic generated lesions, consistent masks and boxes, BUSI-layout export."""
from __future__ import annotations

import pytest
import torch

from medcam.data.busi import BUSI, BUSI_CLASSES
from medcam.data.synthetic import CLASS_NAMES, SyntheticLesions, render_lesion_image, write_busi_folder
from medcam.errors import DataError


def test_items_follow_the_contract_and_are_deterministic():
    data = SyntheticLesions([2, 2, 2], size=48, channels=3, seed=5)
    assert len(data) == 6 and sorted(data.labels) == [0, 0, 1, 1, 2, 2] and CLASS_NAMES == BUSI_CLASSES
    again = SyntheticLesions([2, 2, 2], size=48, channels=3, seed=5)
    for i in (4, 0):  # any access order gives the same item
        a, b = data[i], again[i]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    item = data[0]
    assert item["image"].shape == (3, 48, 48) and item["image"].dtype == torch.float32
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["mask"].shape == (48, 48) and item["mask"].dtype == torch.bool and item["index"] == 0
    other = SyntheticLesions([2, 2, 2], size=48, seed=6)
    assert not torch.equal(other.generate(0)[0], data.generate(0)[0])


def test_masks_and_boxes_match_the_class():
    data = SyntheticLesions([3, 3, 3], size=64, channels=1, seed=0)
    for i in range(len(data)):
        item = data[i]
        if item["label"] == 0:  # normal
            assert not item["mask"].any() and item["boxes"].shape == (0, 4)
        else:
            ys, xs = torch.nonzero(item["mask"], as_tuple=True)
            assert 0.005 < item["mask"].float().mean() < 0.5
            box = item["boxes"]
            assert box[:, 0].min() == xs.min() and box[:, 2].max() == xs.max() + 1  # exclusive x1
            assert box[:, 1].min() == ys.min() and box[:, 3].max() == ys.max() + 1
            inside = item["image"][0][item["mask"]].mean()
            assert inside < item["image"][0][~item["mask"]].mean()  # lesions are hypoechoic


def test_bad_arguments():
    with pytest.raises(DataError, match="count >= 0 per class"):
        SyntheticLesions([1, 2])
    with pytest.raises(DataError, match="channels must be 1 or 3"):
        SyntheticLesions(1, channels=2)
    with pytest.raises(DataError, match="at least 16"):
        SyntheticLesions(1, size=8)
    with pytest.raises(DataError, match="label must be 0"):
        render_lesion_image(3, 32, torch.Generator())
    with pytest.raises(IndexError):
        SyntheticLesions(1).generate(3)


def test_busi_folder_reads_back(tmp_path):
    root = write_busi_folder(tmp_path / "synth", [2, 3, 1], size=40, seed=1)
    assert sorted(p.name for p in (root / "benign").iterdir()) == [
        "benign (1).png", "benign (1)_mask.png", "benign (2).png", "benign (2)_mask.png",
        "benign (3).png", "benign (3)_mask.png"]
    data = BUSI(root, preprocess={"size": [40, 40]}, in_chans=1)
    assert data.class_counts() == {"normal": 2, "benign": 3, "malignant": 1}
    source = SyntheticLesions([2, 3, 1], size=40, channels=1, seed=1)
    first_benign = next(i for i, y in enumerate(source.labels) if y == 1)
    j = data.paths.index(str(root / "benign" / "benign (1).png"))
    image, mask = source.generate(first_benign)
    item = data[j]
    assert torch.equal(item["mask"], mask)
    assert (item["image"][0] - image).abs().max() <= 0.5 / 255 + 1e-6  # 8-bit rounding only
