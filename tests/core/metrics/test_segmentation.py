"""medcam.metrics.segmentation: per-image counts and the data-set scores built from them."""
from __future__ import annotations

import pytest
import torch

from medcam.errors import ShapeError
from medcam.metrics import dice, mask_iou
from medcam.metrics.segmentation import STAT_FIELDS, mask_stats, segmentation_metrics


def _rect(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> torch.Tensor:
    m = torch.zeros(h, w, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


def _random_masks(seed: int, n: int = 6, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(n, size, size, generator=g) > 0.6
    target = torch.rand(n, size, size, generator=g) > 0.7
    target[0] = False  # an image without foreground
    pred[1] = False    # an empty prediction on an image with foreground
    return pred, target


def test_box_iou_of_two_overlapping_squares():
    pred = _rect(8, 8, 0, 0, 4, 4)[None]
    target = _rect(8, 8, 2, 2, 6, 6)[None]
    stats = mask_stats(pred, target)
    assert stats.shape == (1, len(STAT_FIELDS))
    inter, p, g, union, box = stats[0].tolist()
    assert (inter, p, g, union) == (4, 16, 16, 28)
    assert box == pytest.approx(4 / 28)  # the boxes are the masks themselves


def test_box_iou_uses_the_box_around_all_foreground():
    pred = (_rect(10, 10, 0, 0, 2, 2) | _rect(10, 10, 8, 8, 10, 10))[None]  # two corners: box is the whole image
    target = _rect(10, 10, 0, 0, 10, 10)[None]
    assert mask_stats(pred, target)[0, 4].item() == pytest.approx(1.0)


def test_pooled_and_per_image_scores_match_the_mask_metrics():
    pred, target = _random_masks(0)
    m = segmentation_metrics(mask_stats(pred, target))
    w = target.shape[-1]
    assert m["dice"] == pytest.approx(float(dice(pred.reshape(-1, w), target.reshape(-1, w))))
    assert m["iou"] == pytest.approx(float(mask_iou(pred.reshape(-1, w), target.reshape(-1, w))))
    has = target.flatten(1).any(1)
    assert m["n"] == 6 and m["n_with_mask"] == int(has.sum())
    assert m["dice_per_image"] == pytest.approx(float(dice(pred[has], target[has], reduction="mean")))
    assert m["iou_per_image"] == pytest.approx(float(mask_iou(pred[has], target[has], reduction="mean")))
    assert m["dice_all_images"] == pytest.approx(float(dice(pred, target, empty=1.0, reduction="mean")))
    assert m["empty_acc"] == 0.0  # the one image without foreground has a non-empty prediction


def test_box_accuracy_counts_images_with_foreground_at_iou_half():
    target = torch.stack([_rect(8, 8, 0, 0, 4, 4), _rect(8, 8, 0, 0, 4, 4), _rect(8, 8, 0, 0, 4, 4),
                          torch.zeros(8, 8, dtype=torch.bool)])
    pred = torch.stack([_rect(8, 8, 0, 0, 4, 3),   # IoU 12/16 = 0.75 -> hit
                        _rect(8, 8, 0, 0, 2, 4),   # IoU 8/16 = 0.5 -> hit (>= 0.5)
                        torch.zeros(8, 8, dtype=torch.bool),  # nothing predicted -> IoU 0
                        torch.zeros(8, 8, dtype=torch.bool)])  # no truth: not counted, but empty_acc 1
    m = segmentation_metrics(mask_stats(pred, target))
    assert m["box_acc"] == pytest.approx(2 / 3)
    assert m["box_iou"] == pytest.approx((0.75 + 0.5 + 0.0) / 3)
    assert m["empty_acc"] == 1.0


def test_per_class_rows_are_the_scores_of_each_class_alone():
    pred, target = _random_masks(1, n=8)
    labels = torch.tensor([0, 1, 1, 2, 0, 2, 1, 1])
    stats = mask_stats(pred, target)
    m = segmentation_metrics(stats, labels, ["normal", "benign", "malignant"])
    for k, name in enumerate(["normal", "benign", "malignant"]):
        alone = segmentation_metrics(stats[labels == k])
        assert m["per_class"][name] == {key: v for key, v in alone.items() if key != "per_class"}
    absent = segmentation_metrics(stats[:2], torch.tensor([0, 0]), ["a", "b"])
    assert list(absent["per_class"]) == ["a"]


def test_nothing_predicted_nor_true_scores_one_and_undefined_means_are_none():
    empty = torch.zeros(2, 4, 4, dtype=torch.bool)
    m = segmentation_metrics(mask_stats(empty, empty))
    assert m["dice"] == 1.0 and m["iou"] == 1.0 and m["dice_all_images"] == 1.0
    assert m["dice_per_image"] is None and m["box_acc"] is None and m["empty_acc"] == 1.0


def test_bad_shapes_are_refused():
    with pytest.raises(ShapeError, match=r"\(B, H, W\)"):
        mask_stats(torch.zeros(2, 1, 4, 4, dtype=torch.bool), torch.zeros(2, 1, 4, 4, dtype=torch.bool))
    with pytest.raises(ShapeError, match="rows of mask_stats"):
        segmentation_metrics(torch.zeros(3, 4))
    with pytest.raises(ShapeError, match="labels: 2 for 3"):
        segmentation_metrics(torch.zeros(3, 5), torch.tensor([0, 1]))
