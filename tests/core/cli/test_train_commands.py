"""``medcam train`` / ``medcam eval`` / ``medcam demo`` through the real entry function."""
from __future__ import annotations

import json
import os

import pytest

from medcam.data.synthetic import write_busi_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_busi_folder(tmp_path_factory.mktemp("data") / "busi", [6, 6, 6], size=40, seed=0)


@pytest.fixture()
def spec_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("backbone: {name: tiny_cnn, width: 4}\nnum_classes: 3\npreprocess: {size: 32}\n")
    return path


def test_train_resume_and_eval(folder, spec_file, tmp_path, cli):
    out = tmp_path / "run"
    code, text, _ = cli("train", str(spec_file), "--data", str(folder), "--epochs", "1", "--batch-size", "4",
                        "--out", str(out), "--quiet", "--json", "--seed", "1")
    assert code == 0
    result = json.loads(text)
    assert result["split"] == {"train": 12, "val": 3, "test": 3} and result["test"]["n"] == 3
    code, _, err = cli("train", str(spec_file), "--data", str(folder), "--epochs", "1", "--out", str(out))
    assert code == 2 and err.startswith("error: ") and "pass --resume" in err and len(err.strip().splitlines()) == 1
    code, text, _ = cli("train", str(spec_file), "--data", str(folder), "--epochs", "1", "--batch-size", "4",
                        "--out", str(out), "--quiet", "--json", "--seed", "1", "--resume")
    assert json.loads(text)["test"] == result["test"]
    code, text, _ = cli("eval", str(out / "best.pt"), "--data", str(folder), "--quiet")
    assert "(test, 3 images)" in text and "balanced_accuracy=" in text


def test_train_folds(folder, spec_file, tmp_path, cli):
    code, text, _ = cli("train", str(spec_file), "--data", str(folder), "--epochs", "1", "--folds", "2",
                        "--batch-size", "4", "--out", str(tmp_path / "cv"), "--quiet")
    assert "2-fold cross-validation" in text and "mean +/- std" in text


def test_bad_options_are_one_line_errors(folder, spec_file, tmp_path, cli):
    code, _, err = cli("train", str(spec_file), "--data", str(folder), "--optimizer", "adamx",
                       "--out", str(tmp_path / "x"))
    assert code == 2 and "train.optimizer: expected one of sgd, adam, adamw, rmsprop, got 'adamx'; did you mean 'adam'" in err
    code, _, err = cli("train", str(spec_file), "--data", str(folder), "--dataset", "bussi",
                       "--out", str(tmp_path / "y"))
    assert code == 2 and "did you mean 'busi'" in err
    code, _, err = cli("train", str(spec_file), "--data", str(folder), "--folds", "2", "--refit",
                       "--out", str(tmp_path / "z"))
    assert code == 2 and "with --folds the final model is chosen by --final" in err


def test_train_refit_reports_the_refit_model(folder, spec_file, tmp_path, cli):
    code, text, err = cli("train", str(spec_file), "--data", str(folder), "--epochs", "2", "--batch-size", "4",
                          "--out", str(tmp_path / "run"), "--refit")
    assert code == 0, err
    assert "test (refit on train + val for " in text and str(tmp_path / "run" / "model.pt") in text


def test_commands_are_listed(cli):
    code, text, _ = cli("--help")
    assert all(name in text for name in ("train", "eval", "demo"))


def test_logs_get_a_line_per_epoch_not_a_redrawn_bar(folder, spec_file, tmp_path):
    """stderr that is not a terminal (a log, CI): no tqdm bar (no carriage returns), one line per epoch."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    run = subprocess.run([sys.executable, "-m", "medcam", "train", str(spec_file), "--data", str(folder),
                          "--epochs", "2", "--batch-size", "4", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, env=env, check=True)
    assert "\r" not in run.stderr
    epoch_lines = [line for line in run.stderr.splitlines() if line.lstrip().startswith("epoch")]
    assert len(epoch_lines) == 2, run.stderr
