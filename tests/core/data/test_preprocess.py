from __future__ import annotations

import numpy as np
import pytest
import torch
from medcam_data_trees import save_png

from medcam.data.preprocess import (Geometry, Preprocess, fit_stage, imagej_shrink, preprocess_image, resize_stage,
                                    subtract_background, transform_boxes)
from medcam.errors import DataError, SpecError


def test_from_spec_reads_a_model_spec_a_mapping_or_defaults():
    assert Preprocess.from_spec(None) == Preprocess()
    spec = {"in_chans": 1, "preprocess": {"size": [32, 48], "resize": "pad"}}
    pre = Preprocess.from_spec(spec)
    assert (pre.size, pre.resize, pre.channels) == ((32, 48), "pad", 1)
    assert Preprocess.from_spec({"size": 16}, in_chans=3).size == (16, 16)
    with pytest.raises(DataError, match="disagrees"):
        Preprocess.from_spec(spec, in_chans=3)


@pytest.mark.parametrize("raw, message", [
    ({"resize": "none", "resize_to": 300}, "preprocess.resize_to: only used with resize 'square' or 'pad'"),
    ({"size": 224, "resize_to": 200}, "preprocess.resize_to: [200, 200] is smaller than size"),
    ({"downscale": 3}, "preprocess.downscale: only used with resize 'none'"),
    ({"resize": "none", "downscale": 0.5}, "preprocess.downscale: expected a number >= 1"),
    ({"downscal": 3}, "preprocess.downscal: unknown key; did you mean 'downscale'?"),
])
def test_new_preprocess_keys_are_validated_strictly(raw, message):
    with pytest.raises(SpecError) as err:
        Preprocess.from_spec(raw)
    assert str(err.value).startswith(message), str(err.value)


def _ramp(h: int, w: int) -> torch.Tensor:
    return (torch.arange(h * w, dtype=torch.float32).reshape(1, h, w) / (h * w))


def test_square_resize_geometry_maps_boxes_both_ways():
    pre = Preprocess(size=(50, 100))
    image, mask, g = resize_stage(_ramp(100, 400), torch.ones(100, 400, dtype=torch.bool), pre)
    assert image.shape == (1, 50, 100) and mask.shape == (50, 100)
    assert g.scale == (0.5, 0.25) and g.offset == (0.0, 0.0)
    box = torch.tensor([[40.0, 20.0, 200.0, 60.0]])
    out = g.boxes_to_output(box)
    assert out.tolist() == [[10.0, 10.0, 50.0, 30.0]]
    assert torch.allclose(g.boxes_to_original(out), box)


def test_pad_mode_keeps_aspect_and_centres_the_image():
    pre = Preprocess(size=(64, 64), resize="pad")
    image, mask, g = resize_stage(torch.ones(1, 32, 64), torch.ones(32, 64, dtype=torch.bool), pre)
    assert g.scale == (1.0, 1.0) and g.offset == (-16.0, 0.0)
    assert image[0, :16].sum() == 0 and image[0, 48:].sum() == 0 and torch.all(image[0, 16:48] == 1)
    assert mask[16:48].all() and not mask[:16].any()
    assert g.boxes_to_output(torch.tensor([[0.0, 0.0, 64.0, 32.0]])).tolist() == [[0.0, 16.0, 64.0, 48.0]]
    # a map covering the padded input maps back onto exactly the original image
    cam = torch.zeros(1, 64, 64)
    cam[0, 16:48] = 1.0
    back = g.map_to_original(cam)
    assert back.shape == (1, 32, 64) and torch.allclose(back, torch.ones(1, 32, 64))


def test_downscale_then_center_crop_or_pad_to_size():
    pre = Preprocess.from_spec({"resize": "none", "downscale": 3, "size": [40, 60]})
    image, _, g = resize_stage(torch.rand(1, 90, 240), None, pre)
    assert image.shape == (1, 30, 80) and g.scale == (1 / 3, 1 / 3)
    out, _, off = fit_stage(image, None, pre.size)
    assert out.shape == (1, 40, 60) and off == (-5, 10)  # pad 5 rows top, crop 10 columns left
    assert torch.equal(out[:, 5:35, :], image[:, :, 10:70])
    g2 = g.shifted(off, pre.size)
    # original pixel edges (30, 0) -> (30/3 - 10, 0/3 + 5)
    assert g2.boxes_to_output(torch.tensor([[30.0, 0.0, 60.0, 30.0]])).tolist() == [[0.0, 5.0, 10.0, 15.0]]


def test_random_crop_stays_inside_and_uses_the_generator():
    image = _ramp(20, 20)
    g1 = torch.Generator().manual_seed(3)
    g2 = torch.Generator().manual_seed(3)
    a, _, off_a = fit_stage(image, None, (8, 8), random=True, generator=g1)
    b, _, off_b = fit_stage(image, None, (8, 8), random=True, generator=g2)
    assert off_a == off_b and torch.equal(a, b)
    oy, ox = off_a
    assert 0 <= oy <= 12 and 0 <= ox <= 12 and torch.equal(a, image[:, oy:oy + 8, ox:ox + 8])


def test_transform_boxes_drops_boxes_cropped_away():
    boxes, keep = transform_boxes(torch.tensor([[0.0, 0.0, 4.0, 4.0], [10.0, 10.0, 30.0, 30.0]]), (1.0, 1.0),
                                  (8.0, 8.0), (16, 16))
    assert keep.tolist() == [False, True] and boxes[1].tolist() == [2.0, 2.0, 16.0, 16.0]


def test_map_to_original_of_a_feature_map_after_square_resize():
    g = Geometry((40, 80), (20, 20), (0.5, 0.25))
    low = torch.zeros(2, 3, 4, 4)
    low[:, :, :, :2] = 1.0  # left half of the model input
    back = g.map_to_original(low)
    assert back.shape == (2, 3, 40, 80)
    # map-pixel centres of columns 1 and 2 land at x = 30 and 50: bilinear in between
    assert torch.all(back[..., :30] > 0.99) and torch.all(back[..., 50:] < 0.01)
    assert torch.allclose(back[..., 40], torch.full_like(back[..., 40], 0.5 - 0.5 / 20), atol=1e-5)


def test_preprocess_image_is_deterministic_and_reports_geometry(tmp_path):
    path = save_png(tmp_path / "x (1).png", (np.arange(30 * 40).reshape(30, 40) % 256).astype(np.uint8))
    spec = {"in_chans": 3, "preprocess": {"size": 32, "resize": "pad"}}
    prep = preprocess_image(path, spec)
    assert prep.image.shape == (1, 3, 32, 32) and prep.image.dtype == torch.float32
    assert 0.0 <= prep.image.min() and prep.image.max() <= 1.0
    assert prep.original.shape == (30, 40, 3) and prep.geometry.original_size == (30, 40)
    assert prep.geometry.offset == (-4.0, 0.0) and prep.path == str(path)
    again = preprocess_image(np.asarray(prep.original[..., 0] * 255, dtype=np.uint8), spec)
    assert torch.allclose(again.image, prep.image, atol=1e-6)


def test_rolling_ball_removes_a_smooth_background():
    pytest.importorskip("skimage")
    from skimage.restoration import rolling_ball

    y, x = np.mgrid[0:48, 0:48]
    background = 0.2 + 0.05 * x / 47.0 + 0.05 * y / 47.0  # a gentle illumination gradient
    image = background.copy()
    image[20:24, 20:24] += 0.4  # a small bright object
    out = subtract_background(image.astype(np.float32), radius=10)
    assert out[21, 21] > 0.35 and np.abs(out[:, :16]).max() < 0.01  # object kept, gradient removed
    # the ball's height is on the 0-255 scale, as for the seed's 8-bit radiographs
    expected = np.clip(image - rolling_ball(255 * image.astype(np.float32), radius=10) / 255, 0, 1)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_large_radius_shrinks_like_imagej_and_stays_close_to_the_exact_ball():
    pytest.importorskip("skimage")
    assert [imagej_shrink(r) for r in (10, 11, 30, 100, 180)] == [1, 2, 2, 4, 8]
    y, x = np.mgrid[0:96, 0:96]
    image = (0.3 + 0.05 * x / 95 + 0.05 * y / 95).astype(np.float32)
    image[40:46, 50:56] += 0.4
    exact = subtract_background(image, radius=40, shrink=1)
    fast = subtract_background(image, radius=40)  # shrink 4: min over 4x4 blocks, ball of radius 10
    assert fast.shape == image.shape and fast[42, 52] > 0.35 and np.abs(fast[:30, :30]).max() < 0.02
    assert np.abs(fast - exact).max() < 0.02


def test_rolling_ball_runs_on_grey_and_is_replicated(tmp_path):
    pytest.importorskip("skimage")
    rgb = np.zeros((24, 24, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[8:12, 8:12] = 255
    path = save_png(tmp_path / "c.png", rgb)
    prep = preprocess_image(path, {"in_chans": 3, "preprocess": {"size": 24, "rolling_ball_radius": 5}})
    img = prep.image[0]
    assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
    assert float(img[0, 0, 0]) < 0.01 and float(img[0, 10, 10]) > 0.2
    assert prep.original[0, 0, 0] == pytest.approx(200 / 255)  # the image as read is kept for display


def test_reduction_on_load_only_above_the_limit_keeping_twice_the_resize():
    square = Preprocess.from_spec({"size": 100})
    assert square.reduction(4096, 4096) == 1  # 16.8 Mpx: not above medcam.limits.REDUCE_ABOVE_PIXELS
    assert square.reduction(5000, 9000) == 25  # min(5000 / 100, 9000 / 100) / 2
    assert Preprocess.from_spec({"size": 100, "resize": "pad"}).reduction(5000, 9000) == 45
    assert Preprocess.from_spec({"size": 100, "resize": "none", "downscale": 8}).reduction(5000, 9000) == 4
    assert Preprocess.from_spec({"size": 100, "resize": "none"}).reduction(5000, 9000) == 1  # own scale: never


def test_huge_array_is_reduced_and_its_geometry_refers_to_the_original():
    image = np.zeros((4200, 4100), np.float32)
    image[1000:2000, 2000:3000] = 1.0
    prep = preprocess_image(image, {"size": 64}, in_chans=1)
    assert prep.factor == 32 and prep.original.shape == (132, 129, 1)
    assert prep.geometry.original_size == (4200, 4100)
    box = prep.geometry.boxes_to_output(torch.tensor([[2000.0, 1000.0, 3000.0, 2000.0]]))[0]
    bright = (prep.image[0, 0] > 0.5).nonzero()
    assert abs(float(box[0]) - int(bright[:, 1].min())) <= 1 and abs(float(box[3]) - (int(bright[:, 0].max()) + 1)) <= 1
