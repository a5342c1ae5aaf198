"""medcam.engine.runs: split/train/test on a folder, k-fold cross-validation, checkpoint evaluation."""
from __future__ import annotations

import json

import pytest

from medcam.data.synthetic import write_busi_folder
from medcam.engine.runs import DataConfig, cross_validate, evaluate_checkpoint, mean_std, train_on_folder
from medcam.errors import CheckpointError, SpecError

SPEC = {"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 2, "preprocess": {"size": 32}}
CONFIG = {"epochs": 1, "batch_size": 8, "progress": False}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_busi_folder(tmp_path_factory.mktemp("data") / "busi", [8, 8, 8], size=40, seed=0)


def test_train_on_folder_then_evaluate_checkpoint(folder, tmp_path):
    data = DataConfig(str(folder), dataset="busi", val=0.25, test=0.25, augment="flip")
    result = train_on_folder(SPEC, data, CONFIG, tmp_path / "run",
                             test_evaluations={"count": lambda model, ds: {"n": len(ds)}})
    assert result["spec"]["num_classes"] == 3 and result["spec"]["class_names"] == ["normal", "benign", "malignant"]
    assert result["split"] == {"train": 12, "val": 6, "test": 6}
    assert result["test"]["n"] == 6 and result["test_extra"] == {"count": {"n": 6}}
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["test"]["balanced_accuracy"] == result["test"]["balanced_accuracy"]
    assert "test set (best checkpoint" in next((tmp_path / "run").glob("summary_*.txt")).read_text()
    auto = evaluate_checkpoint(tmp_path / "run" / "best.pt", DataConfig(str(folder)), progress=False)
    assert auto["split"] == "test" and auto["n"] == 6
    assert auto["metrics"]["balanced_accuracy"] == pytest.approx(result["test"]["balanced_accuracy"])
    every = evaluate_checkpoint(tmp_path / "run" / "best.pt", DataConfig(str(folder)), split="all", progress=False)
    assert every["n"] == 24
    with pytest.raises(CheckpointError, match="pass --resume"):
        train_on_folder(SPEC, data, CONFIG, tmp_path / "run")
    with pytest.raises(SpecError, match="did you mean 'test'"):
        evaluate_checkpoint(tmp_path / "run" / "best.pt", DataConfig(str(folder)), split="tset")


def test_spec_class_names_must_match_the_data(folder, tmp_path):
    spec = {**SPEC, "num_classes": 3, "class_names": ["a", "b", "c"]}
    with pytest.raises(SpecError, match=r"class_names: the spec says \['a', 'b', 'c'\]"):
        train_on_folder(spec, DataConfig(str(folder)), CONFIG, tmp_path / "run")


def test_display_names_are_kept_apart_from_the_data_class_names(folder, tmp_path):
    from medcam.engine.runs import fit_spec_to_data, open_dataset

    data = DataConfig(str(folder), dataset="busi")
    full = open_dataset(data, {"preprocess": {"size": 32}, "in_chans": 3})
    spec = fit_spec_to_data({**SPEC, "display_names": {"malignant": "Malignant lesion"}}, full)
    assert spec["class_names"] == ["normal", "benign", "malignant"]
    assert spec["display_names"] == ["normal", "benign", "Malignant lesion"]
    listed = fit_spec_to_data({**SPEC, "display_names": ["N", "B", "M"]}, full)
    assert listed["display_names"] == ["N", "B", "M"]
    with pytest.raises(SpecError, match="to show other names for the classes, use display_names"):
        fit_spec_to_data({**SPEC, "class_names": ["Healthy Patient", "x", "y"]}, full)


def test_cross_validation_writes_folds_and_mean_std(folder, tmp_path):
    result = cross_validate(SPEC, DataConfig(str(folder), test=0.0), CONFIG, tmp_path / "cv", folds=3)
    assert [f["fold"] for f in result["folds"]] == [1, 2, 3]
    assert sorted(n for f in result["folds"] for n in [f["val"]["n"]]) == [8, 8, 8]
    values = [f["val"]["balanced_accuracy"] for f in result["folds"]]
    assert result["mean_std"]["balanced_accuracy"]["mean"] == pytest.approx(sum(values) / 3)
    assert (tmp_path / "cv" / "fold3" / "best.pt").is_file()
    text = (tmp_path / "cv" / "cv_summary.txt").read_text()
    assert "3-fold cross-validation" in text and "balanced_accuracy" in text
    again = cross_validate(SPEC, DataConfig(str(folder), test=0.0), CONFIG, tmp_path / "cv", folds=3, resume=True)
    assert again["mean_std"]["balanced_accuracy"] == result["mean_std"]["balanced_accuracy"]


def test_cross_validation_ends_with_a_fold_ensemble_by_default(folder, tmp_path):
    import torch

    import medcam
    from medcam.ensemble import MedcamEnsemble

    result = cross_validate(SPEC, DataConfig(str(folder), test=0.0), CONFIG, tmp_path / "cv", folds=3)
    final = result["final"]
    assert final["kind"] == "ensemble" and final["path"] == str(tmp_path / "cv" / "model.pt")
    model = medcam.load(final["path"])
    assert isinstance(model, MedcamEnsemble) and model.spec["ensemble"] == {"members": 3}
    folds = [medcam.load(tmp_path / "cv" / f"fold{i}" / "last.pt") for i in (1, 2, 3)]
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x).logits, torch.stack([f(x).logits for f in folds]).mean(0), atol=1e-6)
    text = (tmp_path / "cv" / "cv_summary.txt").read_text()
    assert "final model: an ensemble of the 3 fold models" in text and str(tmp_path / "cv" / "model.pt") in text


def test_cross_validation_refit_uses_the_epoch_count_the_folds_chose(folder, tmp_path):
    import medcam
    from medcam.engine.refit import choose_epochs

    config = {**CONFIG, "epochs": 3}
    result = cross_validate(SPEC, DataConfig(str(folder), test=0.0), config, tmp_path / "cv", folds=2,
                            final="refit", name="{backbone}_cv")
    final = result["final"]
    histories = [[json.loads(line) for line in (tmp_path / "cv" / f"fold{i}" / "metrics.jsonl").read_text().splitlines()]
                 for i in (1, 2)]
    epochs, curve = choose_epochs(histories, "balanced_accuracy", "max")
    assert final["kind"] == "refit" and final["epochs"] == epochs and final["curve"] == curve
    assert final["train_images"] == 24  # every image: no fixed test part
    refit_log = (tmp_path / "cv" / "refit" / "metrics.jsonl").read_text().splitlines()
    assert len(refit_log) == epochs and all(json.loads(r)["val"] is None for r in refit_log)
    model = medcam.load(final["path"])
    assert model.checkpoint_metadata["final"] == "refit" and model.checkpoint_metadata["epochs"] == epochs
    assert result["name"] == "tiny_cnn_cv" and (tmp_path / "cv" / "fold1" / "summary_tiny_cnn_cv_fold1.txt").is_file()
    assert f"refit on all 24 training images for {epochs} epoch" in (tmp_path / "cv" / "cv_summary.txt").read_text()
    with pytest.raises(SpecError, match="final: unknown value 'refti'; did you mean 'refit'"):
        cross_validate(SPEC, DataConfig(str(folder)), config, tmp_path / "x", folds=2, final="refti")


def test_run_name_template_names_the_folder_and_summary(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = DataConfig(str(folder), val=0.25, test=0.25)  # the layout is detected: {dataset} is what was found
    result = train_on_folder(SPEC, data, CONFIG, None, name="{backbone}_lr{lr}_{dataset}_ep{epochs}")
    assert result["name"] == "tiny_cnn_lr0.001_busi_ep1" and result["out"] == "runs/tiny_cnn_lr0.001_busi_ep1"
    assert (tmp_path / "runs" / result["name"] / f"summary_{result['name']}.txt").is_file()
    placed = train_on_folder(SPEC, data, CONFIG, tmp_path / "out" / "{name}_s{seed}", name="{backbone}")
    assert placed["out"] == str(tmp_path / "out" / "tiny_cnn_s0")
    with pytest.raises(SpecError, match="unknown field 'backbon'; did you mean 'backbone'"):
        train_on_folder(SPEC, data, CONFIG, None, name="{backbon}")


def test_mean_std():
    assert mean_std([1.0, 3.0, None]) == (2.0, pytest.approx(2 ** 0.5))
    assert mean_std([None]) == (None, None) and mean_std([2.0]) == (2.0, 0.0)


def test_the_spec_train_settings_are_the_base_and_the_config_overrides_them(folder, tmp_path):
    import medcam

    spec = {**SPEC, "train": {"optimizer": "sgd", "lr": 0.05, "epochs": 3}}
    train_on_folder(spec, DataConfig(str(folder), val=0.25, test=0.25), CONFIG, tmp_path / "run")
    used = medcam.load(tmp_path / "run" / "last.pt").checkpoint_metadata["config"]
    assert (used["optimizer"], used["lr"], used["epochs"]) == ("sgd", 0.05, 1)  # epochs: CONFIG wins


def test_refit_trains_on_train_and_val_for_the_chosen_epochs_and_tests_that_model(folder, tmp_path):
    import medcam
    from medcam.engine.refit import choose_epochs

    data = DataConfig(str(folder), dataset="busi", val=0.25, test=0.25)
    result = train_on_folder(SPEC, data, {**CONFIG, "epochs": 3}, tmp_path / "run", refit=True)
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    epochs, _ = choose_epochs([history], "balanced_accuracy", "max")
    assert result["refit"] == {"epochs": epochs, "images": 18, "path": str(tmp_path / "run" / "model.pt")}
    refit_log = (tmp_path / "run" / "refit" / "metrics.jsonl").read_text().splitlines()
    assert len(refit_log) == epochs and all(json.loads(r)["val"] is None for r in refit_log)
    model = medcam.load(tmp_path / "run" / "model.pt")
    again = evaluate_checkpoint(tmp_path / "run" / "model.pt", DataConfig(str(folder)), progress=False)
    assert again["split"] == "test" and again["n"] == 6
    assert again["metrics"]["balanced_accuracy"] == pytest.approx(result["test"]["balanced_accuracy"])
    assert model.spec["num_classes"] == 3
    with pytest.raises(SpecError, match="refit: needs a validation part"):
        train_on_folder(SPEC, DataConfig(str(folder), dataset="busi", val=0.0, test=0.25), CONFIG,
                        tmp_path / "noval", refit=True)


def test_test_checkpoint_last_tests_the_last_epoch(folder, tmp_path):
    data = DataConfig(str(folder), dataset="busi", val=0.25, test=0.25)
    result = train_on_folder(SPEC, data, {**CONFIG, "epochs": 2}, tmp_path / "run", test_checkpoint="last")
    again = evaluate_checkpoint(tmp_path / "run" / "last.pt", DataConfig(str(folder)), progress=False)
    assert result["test_checkpoint"] == "last"
    assert again["metrics"]["loss"] == pytest.approx(result["test"]["loss"])
    assert "test set (last epoch):" in next((tmp_path / "run").glob("summary_*.txt")).read_text()
    with pytest.raises(SpecError, match="test_checkpoint: expected 'best' or 'last', got 'first'"):
        train_on_folder(SPEC, data, CONFIG, tmp_path / "x", test_checkpoint="first")
