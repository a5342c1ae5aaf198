"""evaluate_segmenter: the scores of the segmenter's own masks, in any batch size, and the masks check."""
from __future__ import annotations

import shutil

import pytest
import torch

import medcam
from medcam.build import build_loss
from medcam.data import build_dataset
from medcam.errors import DataError
from medcam.engine.seg_evaluate import evaluate_segmenter, require_masks
from medcam.metrics.segmentation import mask_stats, segmentation_metrics

SPEC = {"name": "unet", "encoder": {"name": "tiny_cnn", "width": 4}, "in_chans": 1, "preprocess": {"size": 32}}


@pytest.fixture(scope="module")
def seg_and_data(synthetic_busi):
    torch.manual_seed(0)
    seg = medcam.build_segmenter(SPEC)
    return seg, build_dataset("busi", synthetic_busi, preprocess=seg.spec)


def test_scores_equal_those_of_predict_mask_in_one_batch(seg_and_data):
    seg, data = seg_and_data
    items = [data[i] for i in range(len(data))]
    images = torch.stack([it["image"] for it in items])
    masks = torch.stack([it["mask"] for it in items])
    labels = torch.tensor([it["label"] for it in items])
    seg.eval()
    expected = segmentation_metrics(mask_stats(seg.predict_mask(images), masks), labels, data.class_names)
    loss_fn = build_loss(seg.spec, num_classes=1)
    expected_loss = float(loss_fn(seg(images).detach(), {"mask": masks}, seg)[0])
    seg.train()
    got = evaluate_segmenter(seg, data, batch_size=len(data))
    assert seg.training  # the mode is restored
    assert got.pop("loss") == pytest.approx(expected_loss, rel=1e-5)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if key != "per_class":
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert got["per_class"].keys() == {"normal", "benign", "malignant"}


def test_the_batch_size_does_not_change_the_scores(seg_and_data):
    seg, data = seg_and_data
    one = evaluate_segmenter(seg, data, batch_size=len(data))
    small = evaluate_segmenter(seg, data, batch_size=5)
    for key in ("dice", "iou", "box_acc", "dice_all_images", "empty_acc"):
        assert small[key] == pytest.approx(one[key]), key
    assert small["per_class"]["benign"]["dice"] == pytest.approx(one["per_class"]["benign"]["dice"])


def test_data_without_masks_is_refused_in_one_line(synthetic_busi, tmp_path):
    folder = tmp_path / "plain"
    for cls in ("benign", "normal"):
        (folder / cls).mkdir(parents=True)
        for src in sorted((synthetic_busi / cls).glob("*.png")):
            if "_mask" not in src.stem:
                shutil.copy(src, folder / cls / src.name)
    data = build_dataset("imagefolder", folder, preprocess=SPEC)
    with pytest.raises(DataError, match=r"^the training set \(imagefolder layout\) has no masks.*busi, or masks"):
        require_masks(data, "the training set")
    with pytest.raises(DataError, match="has no masks"):
        evaluate_segmenter(medcam.build_segmenter(SPEC), data)
