"""Model-free baselines: exact maps, training-split fits, and their scores by hand."""
from __future__ import annotations

import pytest
import torch

from medcam.bench import baselines as B
from medcam.errors import SpecError
from medcam.metrics import max_box_acc_v2


def test_center_box_map_is_the_box() -> None:
    maps = B.center_box_maps(2, (10, 20), (0.5, 0.4))
    assert maps.shape == (2, 10, 20)
    box = B.center_box((10, 20), (0.5, 0.4))
    assert box == (5, 3, 15, 7)
    inside = torch.zeros(10, 20)
    inside[3:7, 5:15] = 1
    assert torch.equal(maps[0], inside) and torch.equal(maps[1], inside)


def test_center_box_scores_by_hand() -> None:
    # pixels 8..23 are on; the reference's contour box is (8, 8, 24, 24), measured inclusively (17 x 17)
    maps = B.center_box_maps(1, (32, 32), (0.5, 0.5))
    assert max_box_acc_v2(maps, [torch.tensor([[8.0, 8.0, 24.0, 24.0]])])["value"] == 100.0
    # half as tall: IoU = 17 * 9 / (17 * 17) = 0.53, a hit at IoU 0.3 and 0.5, a miss at 0.7
    half = max_box_acc_v2(maps, [torch.tensor([[8.0, 8.0, 24.0, 16.0]])])["value"]
    assert half == pytest.approx(100.0 * 2 / 3)


def test_fit_box_fraction_finds_the_common_box() -> None:
    size = (40, 40)
    gt = [torch.tensor([list(map(float, B.center_box(size, (0.5, 0.25))))]) for _ in range(5)]
    gt.append(torch.zeros(0, 4))  # an image without a lesion is skipped
    assert B.fit_box_fraction(gt, size) == (0.5, 0.25)
    with pytest.raises(ValueError, match="no image"):
        B.fit_box_fraction([torch.zeros(0, 4)], size)


def test_box_fraction_is_the_median_of_the_largest_boxes() -> None:
    boxes = [torch.tensor([[0.0, 0.0, 10.0, 5.0], [0.0, 0.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 20.0, 10.0]]),
             torch.tensor([[0.0, 0.0, 30.0, 30.0]])]
    assert B.box_fraction(boxes, (100, 100)) == (0.2, 0.1)


def test_center_gaussian_peaks_in_the_centre() -> None:
    maps = B.center_gaussian_maps(1, (9, 9), 0.25)[0]
    assert maps.max() == maps[4, 4] == pytest.approx(1.0)
    assert torch.allclose(maps, maps.flip(0)) and torch.allclose(maps, maps.T)
    with pytest.raises(SpecError):
        B.center_gaussian_maps(1, (9, 9), 0)


def test_random_maps_depend_on_key_not_batch() -> None:
    a = B.random_maps(["x", "y", "z"], (16, 16), grid=4, seed=1)
    b = B.random_maps(["z", "x"], (16, 16), grid=4, seed=1)
    assert torch.equal(a[0], b[1]) and torch.equal(a[2], b[0])
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a[0], B.random_maps(["x"], (16, 16), grid=4, seed=2)[0])
    assert a.min() >= 0 and a.max() <= 1


def test_resolve_params_and_dispatch() -> None:
    part = B.resolve_params({"name": "center_box"})
    assert part == {"name": "center_box", "fraction": "train_fit"}
    with pytest.raises(SpecError, match="did you mean 'sigma'"):
        B.resolve_params({"name": "center_gaussian", "sigm": 1})
    maps, fitted = B.baseline_maps(part, ["a", "b"], (20, 20),
                                   train_boxes=[torch.tensor([[5.0, 5.0, 15.0, 15.0]])])
    assert maps.shape == (2, 20, 20) and fitted == {"fraction_value": [0.5, 0.5]}
    with pytest.raises(ValueError, match="training split"):
        B.baseline_maps(part, ["a"], (20, 20))
    fixed, none = B.baseline_maps({"name": "center_box", "fraction": [1.0, 1.0]}, ["a"], (4, 4))
    assert fixed.sum() == 16 and none == {}


def test_baselines_fitted_on_training_boxes_need_some() -> None:
    from medcam.bench.baselines import usable_baselines

    parts = [{"name": "center_box"}, {"name": "center_box", "fraction": [0.5, 0.5]}, {"name": "random_map"}]
    usable, skipped = usable_baselines(parts[:1] + parts[2:], [])
    assert [p["name"] for p in usable] == ["random_map"] and "training images have none" in skipped["center_box"]
    usable, skipped = usable_baselines(parts[1:], [])
    assert [p["name"] for p in usable] == ["center_box", "random_map"] and skipped == {}
    usable, skipped = usable_baselines(parts[:1], [torch.tensor([[0.0, 0, 4, 4]])])
    assert [p["name"] for p in usable] == ["center_box"] and skipped == {}
