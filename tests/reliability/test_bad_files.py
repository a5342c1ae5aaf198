"""Bad files: missing, empty, not images, truncated, too many pixels, odd paths, empty class folders,
output paths that are files. Each is named in one line; a batch goes on; memory stays bounded."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medcam.errors import DataError, OutputError

from _reliability import expect_error, header_only_png, one_line, write_png


def _truncated(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _float_tiff(path: Path) -> Path:
    Image.fromarray(np.full((40, 40), 7.5, dtype=np.float32)).save(path.with_suffix(".tif"))
    return path.with_suffix(".tif")


FILES = [
    pytest.param(lambda p: p, "image file not found", id="missing-file"),
    pytest.param(lambda p: (p.write_bytes(b""), p)[1], "empty file", id="empty-file"),
    pytest.param(lambda p: (p.write_text("hello"), p)[1], "not a readable image", id="text-as-png"),
    pytest.param(_truncated, "corrupt image data", id="truncated-png"),
    pytest.param(lambda p: (p.mkdir(), p)[1], "is a folder", id="folder-as-image"),
    pytest.param(_float_tiff, "must lie in [0, 1]", id="float-tiff-out-of-range"),
    pytest.param(lambda p: write_png(p, 8, 400), "wrong size", id="too-thin"),
    pytest.param(lambda p: header_only_png(p, 9000, 9000), "more than the limit", id="over-pixel-limit"),
    pytest.param(lambda p: header_only_png(p, 30000, 30000), "more than the limit", id="decompression-bomb"),
    pytest.param(lambda p: p.with_name("x" * 300 + ".png"), "file name too long", id="name-too-long"),
]


@pytest.mark.parametrize("make, fragment", FILES)
def test_bad_image_file_is_a_fail_record_naming_the_problem(explainer, tmp_path, make, fragment):
    path = make(tmp_path / "scan.png")
    expect_error(lambda: explainer.explain(path), DataError, fragment)
    record = explainer.run(path, tmp_path / "out")
    assert record["result"] == "fail" and fragment.lower() in record["error"].lower(), record["error"]
    assert one_line(record["error"]) and "Traceback" not in record["error"]


def test_the_pixel_limit_is_configurable(tiny_model, tmp_path):
    from medcam.data.io import read_image
    from medcam.inference import Explainer

    big = write_png(tmp_path / "big.png", 1200, 1000)
    expect_error(lambda: read_image(big, max_pixels=1_000_000), DataError, "1.2 Mpx")
    assert read_image(big, max_pixels=2_000_000).shape == (1200, 1000, 1)
    record = Explainer(tiny_model, max_pixels=1_000_000).run(big)
    assert record["result"] == "fail" and "--max-pixels" in record["error"]
    assert Explainer(tiny_model, max_pixels=2_000_000).run(big)["result"] == "ok"
    expect_error(lambda: Explainer(tiny_model, max_pixels=0), ValueError, "max_pixels")


def test_large_images_are_rendered_at_a_bounded_size_with_boxes_in_original_pixels(tiny_model, tmp_path):
    from medcam.inference import Explainer

    from medcam.viz import map_boxes

    path = write_png(tmp_path / "wide.png", 900, 1500)
    explainer = Explainer(tiny_model, render_size=300, method="eigencam")
    explanation = explainer.explain(path)
    assert explanation.overlay.shape == (180, 300, 3) and explanation.heatmap.shape == (180, 300)
    assert explanation.factor == 5
    record = explanation.record
    assert record["image_size"] == [900, 1500]
    on_grid = map_boxes(explanation.heatmap, 0.5)
    assert len(on_grid) > 0
    assert record["boxes"] == (on_grid * 5).clamp(max=1500).int().tolist()  # original pixels
    paths = explainer.run(path, tmp_path / "out")
    assert Image.open(paths["overlay_path"]).size == (300, 180)
    small = Explainer(tiny_model, render_size=300).explain(write_png(tmp_path / "small.png", 120, 200))
    assert small.overlay.shape == (120, 200, 3)  # images within the bound keep their own size


def test_huge_images_are_reduced_on_load_as_in_training(tmp_path):
    """Above REDUCE_ABOVE_PIXELS the file is reduced while it is decoded (an integer factor that keeps at
    least twice the model's input size); the training data sets read it through the same function."""
    from medcam.data import ImageFolder, preprocess_image
    from medcam.data.preprocess import Preprocess
    from medcam.limits import REDUCE_ABOVE_PIXELS

    side = int(REDUCE_ABOVE_PIXELS ** 0.5) + 8
    path = write_png(tmp_path / "data" / "a" / "huge.png", side, side)
    write_png(tmp_path / "data" / "b" / "small.png", 40, 40)
    pre = Preprocess.from_spec({"size": 64})
    assert pre.reduction(side, side) == side // 128 and pre.reduction(4000, 4000) == 1
    prep = preprocess_image(path, pre)
    assert prep.original.shape[:2] == (-(-side // (side // 128)),) * 2
    assert prep.geometry.original_size == (side, side)
    item = ImageFolder(tmp_path / "data", preprocess=pre)[0]
    np.testing.assert_array_equal(item["image"].numpy(), prep.image[0].numpy())


def test_a_long_path_argument_does_not_abort_the_batch(cli, tiny_checkpoint, good_png, tmp_path):
    """Before: collect_images stat'ed the argument and the OSError ended the command with a traceback."""
    long = tmp_path / ("x" * 300 + ".png")
    code, out, err = cli("explain", tiny_checkpoint, long, good_png, "--out", tmp_path / "out", "--quiet")
    lines = out.strip().splitlines()
    assert code == 1 and "Traceback" not in err
    assert lines[0].startswith("fail") and "file name too long" in lines[0].lower()
    assert lines[1].startswith("ok")


def test_out_that_is_a_file_is_refused_before_any_work(cli, tiny_checkpoint, good_png, tmp_path):
    target = tmp_path / "taken"
    target.write_text("a file")
    code, out, err = cli("explain", tiny_checkpoint, good_png, "--out", target)
    assert code == 2 and one_line(err) and "is a file, not a folder" in err and out == ""


def test_training_out_that_is_a_file_is_refused_before_the_first_epoch(tmp_path):
    from medcam.engine import Trainer

    target = tmp_path / "taken"
    target.write_text("a file")
    expect_error(lambda: Trainer({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 2},
                                 {"epochs": 1, "progress": False}, out_dir=target), OutputError,
                 "is a file, not a folder")


def test_write_pngs_into_a_file_path_is_an_output_error(tmp_path):
    from medcam.inference.render import write_pngs

    target = tmp_path / "taken"
    target.write_text("a file")
    expect_error(lambda: write_pngs({"overlay": np.zeros((4, 4, 3), np.uint8)}, target, "x"), OutputError,
                 "is a file, not a folder")


@pytest.mark.parametrize("layout", ["flat", "split"])
def test_an_empty_class_folder_is_refused_by_name(tmp_path, layout):
    """Before: a 3-class model with a class of support 0, and only a log line."""
    from medcam.data import ImageFolder

    root = tmp_path / "data"
    base = root / "train" if layout == "split" else root
    write_png(base / "benign" / "a.png", 40, 40)
    write_png(base / "malignant" / "b.png", 40, 40)
    (base / "normal").mkdir(parents=True)
    err = expect_error(lambda: ImageFolder(root), DataError, "class folder without images")
    assert "normal" in str(err) and "allow_empty_classes" in str(err)
    allowed = ImageFolder(root, allow_empty_classes=True)
    assert allowed.class_names == ["benign", "malignant", "normal"] and len(allowed) == 2


def test_a_named_class_without_a_folder_is_refused(tmp_path):
    from medcam.data import ImageFolder

    write_png(tmp_path / "benign" / "a.png", 40, 40)
    write_png(tmp_path / "malignant" / "b.png", 40, 40)
    expect_error(lambda: ImageFolder(tmp_path, class_names=["benign", "malignant", "normal"]), DataError,
                 "class 'normal' has no images")
