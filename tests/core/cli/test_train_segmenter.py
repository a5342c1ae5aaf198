"""``medcam train`` / ``medcam eval`` on segmenter specs and checkpoints, through the real entry function."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

import medcam

SPEC = "name: unet\nencoder: {name: tiny_cnn, width: 4}\nin_chans: 1\npreprocess: {size: 32}\n"
# no --quiet: it sets TQDM_DISABLE in this process; bars show on terminals only anyway
FAST = ("--epochs", "1", "--batch-size", "4", "--val", "0.25", "--test", "0.25")


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "unet.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def trained(synthetic_busi, spec_file, tmp_path_factory) -> tuple[Path, dict]:
    """A 1-epoch segmenter run on the synthetic BUSI folder: (output folder, --json result)."""
    from medcam.cli import main

    out = tmp_path_factory.mktemp("segrun") / "run"
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            main(["train", str(spec_file), "--data", str(synthetic_busi), *FAST, "--out", str(out), "--json"])
    except SystemExit as stop:
        assert not stop.code, f"medcam train failed with exit status {stop.code}"
    return out, json.loads(printed.getvalue())


def _one_line_error(code: int, err: str) -> str:
    """``err`` after checking it is one ``error: ...`` line with exit status 2."""
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.slow
def test_train_reports_segmentation_metrics_and_eval_repeats_them(trained, synthetic_busi, cli):
    out, result = trained
    assert result["split"] == {"train": 6, "val": 3, "test": 3}
    assert result["test"]["n"] == 3 and {"dice", "iou", "box_acc", "per_class"} <= set(result["test"])
    assert isinstance(medcam.load(out / "best.pt"), medcam.MedcamSegmenter)
    code, text, _ = cli("eval", out / "best.pt", "--data", synthetic_busi, "--json")
    evaluated = json.loads(text)
    assert code == 0 and evaluated["kind"] == "segmenter" and evaluated["split"] == "test"
    for key in ("dice", "iou", "box_acc", "dice_all_images", "loss"):
        assert evaluated["metrics"][key] == pytest.approx(result["test"][key]), key
    code, text, _ = cli("eval", out / "best.pt", "--data", synthetic_busi)
    assert "(test, 3 images)" in text and "dice=" in text and "box_acc=" in text
    assert any(line.split()[:1] == ["benign"] for line in text.splitlines())  # a row per image class


@pytest.mark.slow
def test_mask_folder_layout_trains(synthetic_busi, spec_file, tmp_path, cli):
    root = tmp_path / "lungs"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for path in sorted(synthetic_busi.glob("*/*.png")):
        if "_mask" in path.stem:
            shutil.copy(path, root / "masks" / path.name.replace("_mask", ""))
        else:
            shutil.copy(path, root / "images" / path.name)
    code, text, _ = cli("train", spec_file, "--data", root, *FAST, "--out", tmp_path / "run", "--json")
    result = json.loads(text)
    assert code == 0 and result["data"]["dataset"] == "masks" and result["test"]["n"] == 3


@pytest.mark.slow
def test_folds_end_with_a_refit_segmenter(synthetic_busi, spec_file, tmp_path, cli):
    code, text, _ = cli("train", spec_file, "--data", synthetic_busi, "--epochs", "1", "--folds", "2",
                        "--batch-size", "4", "--out", tmp_path / "cv")
    assert code == 0 and "2-fold cross-validation" in text and "box_acc" in text and "final model: refit" in text
    assert isinstance(medcam.load(tmp_path / "cv" / "model.pt"), medcam.MedcamSegmenter)
    code, _, err = cli("train", spec_file, "--data", synthetic_busi, "--epochs", "1", "--folds", "2",
                       "--final", "ensemble", "--out", tmp_path / "cv2")
    message = _one_line_error(code, err)
    assert "--final refit" in message


def test_a_segmenter_spec_on_data_without_masks_is_one_line(synthetic_busi, spec_file, tmp_path, cli):
    plain = tmp_path / "plain"
    for path in sorted(synthetic_busi.glob("*/*.png")):
        if "_mask" not in path.stem:
            (plain / path.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, plain / path.parent.name / path.name)
    code, _, err = cli("train", spec_file, "--data", plain, *FAST, "--out", tmp_path / "run")
    message = _one_line_error(code, err)
    assert "(imagefolder layout) has no masks" in message and "busi, or masks (images/ + masks/" in message
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_classification_monitor_or_loss_for_a_segmenter_is_one_line(synthetic_busi, spec_file, tmp_path, cli):
    code, _, err = cli("train", spec_file, "--data", synthetic_busi, *FAST, "--monitor", "auc",
                       "--out", tmp_path / "run")
    message = _one_line_error(code, err)
    assert "train.monitor: 'auc' is not a metric of this model; it monitors dice" in message
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC + "loss: [ce]\n")
    code, _, err = cli("train", bad, "--data", synthetic_busi, *FAST, "--out", tmp_path / "run2")
    message = _one_line_error(code, err)
    assert "loss[0]: 'ce' is a classification loss" in message


@pytest.mark.slow
def test_checkpoints_of_the_wrong_kind_are_one_line(trained, synthetic_busi, tmp_path, cli):
    seg = trained[0] / "best.pt"
    classifier = medcam.save(medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 3,
                                                 "preprocess": {"size": 32}}), tmp_path / "cls.pt")
    image = next(p for p in sorted(synthetic_busi.glob("benign/*.png")) if "_mask" not in p.stem)
    code, _, err = cli("explain", seg, image, "--out", tmp_path / "x")
    message = _one_line_error(code, err)
    assert "holds a segmenter, not a classifier" in message
    code, _, err = cli("explain", classifier, image, "--segmenter", classifier, "--out", tmp_path / "x")
    message = _one_line_error(code, err)
    assert "holds a classifier, not a segmenter" in message
