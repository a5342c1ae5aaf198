"""Explainer: verdicts, maps and boxes on the original image, segmenter masks, fail records, settings."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

import medcam
from medcam.data import preprocess_image
from medcam.errors import CheckpointError, DataError, UnknownNameError
from medcam.inference.pipeline import Explainer


@pytest.fixture(scope="module")
def explainer(trained_checkpoint):
    return Explainer.from_checkpoint(trained_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def wide_image(tmp_path_factory):
    """A 40 x 60 grey image with a dark blob: not square, so the geometry matters."""
    rng = np.random.default_rng(0)
    pixels = (rng.random((40, 60)) * 80 + 120).astype(np.uint8)
    pixels[10:25, 30:50] = 20
    path = tmp_path_factory.mktemp("img") / "wide scan.png"
    Image.fromarray(pixels).save(path)
    return path


def test_verdict_matches_the_model_run_independently(explainer, trained_checkpoint, wide_image):
    model = medcam.load(trained_checkpoint)
    prep = preprocess_image(wide_image, model.spec)
    probs = model.predict_proba(prep.image)[0]
    result = explainer.explain(wide_image)
    record = result.record
    assert record["result"] == "ok" and record["image"] == str(wide_image)
    assert list(record["probabilities"]) == ["normal", "benign", "malignant"] == model.class_names
    np.testing.assert_allclose(list(record["probabilities"].values()), probs.tolist(), atol=1e-6)
    assert record["diagnosis"] == model.class_names[int(probs.argmax())] == record["target"]
    assert record["method"] == "gradcam" and record["image_size"] == [40, 60]


def test_map_and_boxes_are_on_the_original_image(explainer, trained_checkpoint, wide_image):
    model = medcam.load(trained_checkpoint)
    prep = preprocess_image(wide_image, model.spec)
    maps = medcam.explain(model, prep.image, "gradcam")
    expected = prep.geometry.map_to_original(maps)[0]
    result = explainer.explain(wide_image)
    assert result.heatmap.shape == (40, 60) and result.original.shape == (40, 60, 3)
    torch.testing.assert_close(result.heatmap, expected.clamp(0, 1))
    boxes = result.record["attribution_boxes"]
    assert result.record["boxes"] == boxes and result.record["box_source"] == "attribution"
    assert boxes, "a min-max normalized map always has a region above 0.5"
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= 60 and 0 <= y0 < y1 <= 40
        assert float(result.heatmap[y0:y1, x0:x1].max()) > 0.5
    above = result.heatmap > 0.5
    covered = torch.zeros_like(above)
    for x0, y0, x1, y1 in boxes:
        covered[y0:y1, x0:x1] = True
    assert bool((above <= covered).all()), "every pixel above the threshold lies in a box"
    assert result.overlay.shape == (40, 60, 3) and result.saliency.shape == (40, 60, 3)


def test_threshold_and_target_and_method(explainer, wide_image):
    high = explainer.explain(wide_image, threshold=1.0).record["attribution_boxes"]
    assert high == []  # nothing is strictly above the maximum
    record = explainer.explain(wide_image, target="malignant", method="gradcam++").record
    assert record["target"] == "malignant" and record["method"] == "gradcam++"
    assert explainer.explain(wide_image, target=0).record["target"] == "normal"
    with pytest.raises(UnknownNameError, match="did you mean 'benign'"):
        explainer.explain(wide_image, target="bengin")
    with pytest.raises(ValueError, match="out of range"):
        explainer.explain(wide_image, target=7)
    with pytest.raises(UnknownNameError, match="did you mean 'gradcam'"):
        explainer.explain(wide_image, method="gradcma")


def test_run_writes_named_pngs(explainer, wide_image, tmp_path):
    record = explainer.run(wide_image, tmp_path / "out", stamp="20260304050607")
    assert record["saliency_path"] == str(tmp_path / "out" / "wide scan_saliency_20260304050607.png")
    assert record["overlay_path"] == str(tmp_path / "out" / "wide scan_overlay_20260304050607.png")
    assert record["mask_path"] is None
    assert Image.open(record["overlay_path"]).size == (60, 40)
    again = explainer.run(wide_image, tmp_path / "out", stamp="20260304050607")
    assert again["overlay_path"].endswith("_20260304050607_1.png")
    fresh = explainer.run(wide_image, tmp_path / "fresh")
    assert re.fullmatch(r"wide scan_saliency_\d{14}\.png", fresh["saliency_path"].rsplit("/", 1)[1])


def test_bad_images_become_fail_records(explainer, tmp_path, corrupt_png):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((8, 100), np.uint8)).save(tiny)
    cases = {corrupt_png(tmp_path / "corrupt.png"): "corrupt.png: not a readable image",
             empty: "empty file (0 bytes)", text: "not a readable image", tmp_path / "gone.png": "image file not found",
             tiny: "wrong size: 8x100 pixels is smaller than the minimum of 16", tmp_path: "is a folder"}
    for path, reason in cases.items():
        record = explainer.run(path, tmp_path / "out")
        assert record["result"] == "fail" and reason in record["error"], record
        assert record["image"] == str(path) and record["overlay_path"] is None and record["method"] == "gradcam"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    with pytest.raises(DataError, match="empty file"):
        explainer.explain(empty)


def test_truncated_pixel_data_fails(explainer, wide_image, tmp_path):
    data = wide_image.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    record = explainer.run(cut)
    assert record["result"] == "fail" and "cut.png" in record["error"]


def test_segmenter_mask_and_boxes(trained_checkpoint, segmenter_checkpoint, wide_image, tmp_path):
    from medcam.boxes import component_boxes, connected_components

    ex = Explainer.from_checkpoint(trained_checkpoint, segmenter_checkpoint, device="cpu", mask_threshold=0.5)
    result = ex.explain(wide_image)
    seg = medcam.load(segmenter_checkpoint)
    prep = preprocess_image(wide_image, seg.spec)
    probs = torch.sigmoid(seg(prep.image))[:, 0]
    expected = prep.geometry.map_to_original(probs)[0] > 0.5
    assert result.mask.shape == (40, 60) and torch.equal(result.mask, expected)
    labels, counts = connected_components(expected[None])
    assert result.record["boxes"] == component_boxes(labels, counts)[0].long().tolist()
    assert result.record["box_source"] == "segmenter" and result.mask_overlay.shape == (40, 60, 3)
    everything = ex.explain(wide_image, mask_threshold=0.0).record["boxes"]
    assert everything == [[0, 0, 60, 40]]
    record = ex.run(wide_image, tmp_path)
    assert re.fullmatch(r"wide scan_mask_\d{14}\.png", record["mask_path"].rsplit("/", 1)[1])


def test_wrong_checkpoint_kinds(trained_checkpoint, segmenter_checkpoint):
    with pytest.raises(CheckpointError, match="holds a segmenter.*--segmenter"):
        Explainer.from_checkpoint(segmenter_checkpoint, device="cpu")
    with pytest.raises(CheckpointError, match="--segmenter .* holds a classifier"):
        Explainer.from_checkpoint(trained_checkpoint, trained_checkpoint, device="cpu")


def test_preprocessing_overrides_reach_the_model_input(trained_checkpoint, wide_image):
    ex = Explainer.from_checkpoint(trained_checkpoint, device="cpu",
                                   preprocess={"rolling_ball_radius": 180, "resize": "pad", "size": [48, 48]})
    assert ex.preprocess.rolling_ball_radius == 180 and ex.preprocess.resize == "pad" and ex.preprocess.size == (48, 48)
    result = ex.explain(wide_image)
    assert result.record["result"] == "ok" and result.heatmap.shape == (40, 60)
    # pad keeps the aspect ratio: 40 x 60 -> 32 x 48 centred in 48 x 48
    prep = preprocess_image(ex.read(wide_image), ex.preprocess)
    assert prep.geometry.scale == pytest.approx((0.8, 0.8)) and prep.geometry.offset == (-8.0, 0.0)


def test_grey_converts_colour_input(trained_checkpoint, tmp_path):
    rgb = np.zeros((20, 20, 3), np.uint8)
    rgb[..., 0] = 200
    path = tmp_path / "red.png"
    Image.fromarray(rgb).save(path)
    ex = Explainer.from_checkpoint(trained_checkpoint, device="cpu", grey=True)
    raw = ex.read(path)
    assert raw.shape == (20, 20, 1)
    np.testing.assert_allclose(raw[..., 0], 0.299 * 200 / 255, atol=1e-6)
    assert ex.explain(path).original.shape == (20, 20, 3)  # grey, replicated to the model's 3 channels
    assert np.ptp(ex.explain(path).original, axis=2).max() == 0


def test_in_memory_images(explainer):
    array = (np.random.default_rng(1).random((30, 30)) * 255).astype(np.uint8)
    record = explainer.run(array, name="upload.png")
    assert record["result"] == "ok" and record["image"] == "upload.png" and record["image_size"] == [30, 30]


def test_bad_settings_are_refused(trained_checkpoint):
    model = medcam.load(trained_checkpoint)
    with pytest.raises(ValueError, match="threshold must be in"):
        Explainer(model, threshold=1.5)
    with pytest.raises(UnknownNameError, match="did you mean"):
        Explainer(model, method="gradcma")
    with pytest.raises(ValueError, match="unknown colormap 'jett'; did you mean 'jet'"):
        Explainer(model, cmap="jett")
    with pytest.raises(CheckpointError, match="classifier"):
        Explainer(medcam.build_segmenter({"name": "unet", "encoder": {"name": "tiny_cnn", "width": 4}}))


def _negative_class_model(tmp_path, image, display_names=None):
    """A 3-class tiny_cnn whose class 2 has negative head weights but one small positive one (on the channel
    most active on ``image``): Grad-CAM of class 2 is empty, LayerCAM is not."""
    torch.manual_seed(0)
    spec = {"name": "tiny_classifier", "class_names": ["1", "2", "3"], "preprocess": {"size": 96}}  # 3x3 maps
    if display_names:
        spec["display_names"] = display_names
    model = medcam.build_model(spec).eval()
    with torch.no_grad():
        active = int(model.forward_features(preprocess_image(image, model.spec).image)[-1].mean((0, 2, 3)).argmax())
        model.head.fc.weight[2] = -0.5
        model.head.fc.weight[2, active] = 0.01
        model.head.fc.bias.copy_(torch.tensor([5.0, 0.0, -5.0]))  # class 0 is predicted
    return medcam.save(model, tmp_path / "neg.pt")


def test_display_names_are_shown_and_folder_names_still_select(tmp_path, wide_image):
    path = _negative_class_model(tmp_path, wide_image, {"1": "Healthy Patient", "3": "Patient with Osteoporosis"})
    ex = Explainer.from_checkpoint(path, target="3")
    record = ex.explain(wide_image).record
    assert list(record["probabilities"]) == ["Healthy Patient", "2", "Patient with Osteoporosis"]
    assert record["diagnosis"] == "Healthy Patient" and record["target"] == "Patient with Osteoporosis"
    assert ex.class_index("Patient with Osteoporosis") == 2 == ex.class_index("3")
    assert ex.explain(wide_image, target="predicted").record["target"] == "Healthy Patient"


def test_an_empty_map_is_said_in_the_record_and_the_row(tmp_path, wide_image):
    import warnings

    from medcam.inference.record import format_row

    ex = Explainer.from_checkpoint(_negative_class_model(tmp_path, wide_image), target=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the explainer says it in the record, not as a Python warning
        record = ex.explain(wide_image).record
    assert record["target"] == "3" and len(record["warnings"]) == 1
    assert record["warnings"][0].startswith("gradcam: the map is empty (all zero) for class '3'")
    assert "try --method gradcam++ or layercam, or --target predicted" in record["warnings"][0]
    assert "warning: gradcam: the map is empty" in format_row(record)
    other = ex.explain(wide_image, method="layercam").record
    assert other["warnings"] == []  # LayerCAM keeps the one positive weight's evidence


def _magenta(picture: np.ndarray) -> int:
    from medcam.inference.render import GROUND_TRUTH_COLOR

    return int((picture == np.asarray(GROUND_TRUTH_COLOR, dtype=np.uint8)).all(-1).sum())


def test_ground_truth_is_found_and_drawn(explainer, synthetic_busi):
    image = synthetic_busi / "benign" / "benign (1).png"
    got = explainer.explain(image)
    truth = got.record["ground_truth"]
    assert truth is not None and truth["source"].endswith("benign (1)_mask.png") and truth["boxes"]
    assert _magenta(got.overlay) > 0                       # the mask's outline, in its own colour
    off = Explainer(explainer.model, ground_truth=False).explain(image)
    assert off.record["ground_truth"] is None and _magenta(off.overlay) == 0
    normal = explainer.explain(synthetic_busi / "normal" / "normal (1).png")  # an empty mask: nothing to draw
    assert normal.record["ground_truth"]["boxes"] == [] and _magenta(normal.overlay) == 0


def test_box_threshold_defaults_to_the_heads_own():
    wsol = medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 2,
                               "preprocess": {"size": 32}, "head": {"name": "fpm", "hidden": 8, "stats": "image"}})
    assert Explainer(wsol).threshold == 0.83                 # the fpm head's declared box_threshold (SR)
    assert Explainer(wsol, threshold=0.4).threshold == 0.4
    plain = medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 2})
    assert Explainer(plain).threshold == 0.5
    record = Explainer(wsol).explain(np.zeros((40, 40), dtype=np.uint8)).record
    assert record["box_threshold"] == 0.83 and record["ground_truth"] is None


def test_segmenter_map_is_the_region_attribution_on_the_original_image(trained_checkpoint, segmenter_checkpoint,
                                                                       wide_image, tmp_path):
    from medcam.attribution_segmentation import explain_segmenter

    ex = Explainer.from_checkpoint(trained_checkpoint, segmenter_checkpoint, device="cpu", mask_threshold=0.3,
                                   segmenter_method="gradcam")
    result = ex.explain(wide_image)
    seg = medcam.load(segmenter_checkpoint)
    prep = preprocess_image(wide_image, seg.spec)
    expected = prep.geometry.map_to_original(explain_segmenter(seg, prep.image, "gradcam", threshold=0.3))[0]
    assert result.segmenter_heatmap.shape == (40, 60) and result.segmenter_overlay.shape == (40, 60, 3)
    torch.testing.assert_close(result.segmenter_heatmap, expected.clamp(0, 1))
    assert result.record["segmenter_method"] == "gradcam" and ex.segmenter_method_label == "gradcam"
    record = ex.run(wide_image, tmp_path)
    assert re.fullmatch(r"wide scan_segmap_\d{14}\.png", record["segmenter_map_path"].rsplit("/", 1)[1])
    with Image.open(record["segmenter_map_path"]) as picture:
        assert picture.size == (60, 40)
    off = ex.explain(wide_image, segmenter_method="none")
    assert off.segmenter_heatmap is None and off.record["segmenter_method"] is None
    assert "segmap" not in off.pictures() and "mask" in off.pictures()


def test_segmenter_map_is_switched_on_per_call_and_says_when_the_region_is_empty(trained_checkpoint,
                                                                               segmenter_checkpoint, wide_image):
    ex = Explainer.from_checkpoint(trained_checkpoint, segmenter_checkpoint, device="cpu")
    assert ex.explain(wide_image).segmenter_heatmap is None
    empty = ex.explain(wide_image, segmenter_method="layercam", mask_threshold=1.0)
    assert not bool(empty.mask.any()) and float(empty.segmenter_heatmap.max()) == 0.0
    assert any("segmenter found no region" in w for w in empty.record["warnings"])


def test_segmenter_map_refusals(trained_checkpoint, segmenter_checkpoint):
    with pytest.raises(ValueError, match="needs a segmenter"):
        Explainer.from_checkpoint(trained_checkpoint, device="cpu", segmenter_method="gradcam")
    with pytest.raises(ValueError, match="'cam' reads a classifier head"):
        Explainer.from_checkpoint(trained_checkpoint, segmenter_checkpoint, device="cpu", segmenter_method="cam")
    with pytest.raises(ValueError, match="'lung_fields' has no learned layers"):
        Explainer.from_checkpoint(trained_checkpoint, "lung_fields", device="cpu", segmenter_method="gradcam")
    with pytest.raises(UnknownNameError, match="gradcam"):
        Explainer.from_checkpoint(trained_checkpoint, segmenter_checkpoint, device="cpu", segmenter_method="gradcm")
