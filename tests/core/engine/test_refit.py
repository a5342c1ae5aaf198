"""Choosing the epoch count from validation curves; refitting without validation; fold ensembles on disk."""
from __future__ import annotations

import math

import pytest
import torch

import medcam
from medcam.data.synthetic import SyntheticLesions
from medcam.engine.refit import choose_epochs, refit, save_fold_ensemble
from medcam.errors import SpecError

SPEC = {"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 3, "preprocess": {"size": 32}}


def _history(values, key="balanced_accuracy"):
    return [{"epoch": i + 1, "val": {key: v}} for i, v in enumerate(values)]


def test_choose_epochs_takes_the_best_mean_over_folds():
    histories = [_history([0.5, 0.7, 0.6, 0.9]), _history([0.6, 0.8, 0.7]), _history([0.4, 0.6, 0.9])]
    epochs, curve = choose_epochs(histories, "balanced_accuracy", "max")
    assert curve == pytest.approx([0.5, 0.7, 2.2 / 3])  # epoch 4 was reached by one fold only
    assert epochs == 3
    epochs, _ = choose_epochs([_history([0.3, 0.2, 0.2], "loss")], "loss", "min")
    assert epochs == 2  # ties go to the earlier epoch
    nan = choose_epochs([_history([math.nan, 0.4]), _history([0.2, 0.1])], "balanced_accuracy", "max")
    assert nan == (2, [0.2, 0.25])  # a NaN is left out of the mean
    with pytest.raises(SpecError, match="no run has a validation 'auc'"):
        choose_epochs([_history([0.5])], "auc", "max")


def test_refit_trains_without_validation_and_stops_at_the_chosen_epoch(tmp_path):
    data = SyntheticLesions([4, 4, 4], size=32, seed=0)
    config = {"epochs": 4, "batch_size": 4, "early_stopping": 2, "progress": False}
    trainer, fit = refit(SPEC, config, data, epochs=2, out_dir=tmp_path / "refit")
    assert [r["epoch"] for r in fit.history] == [1, 2] and all(r["val"] is None for r in fit.history)
    assert trainer.config.early_stopping is None and trainer.config.epochs == 4  # the folds' schedule
    assert medcam.load(tmp_path / "refit" / "best.pt").checkpoint_metadata["epoch"] == 2
    with pytest.raises(SpecError, match=r"refit: epochs must be in 1..4"):
        refit(SPEC, config, data, epochs=5, out_dir=None)


def test_save_fold_ensemble(tmp_path):
    paths = []
    for i in range(2):
        torch.manual_seed(i)
        paths.append(medcam.save(medcam.build_model(SPEC), tmp_path / f"fold{i}.pt"))
    ensemble = save_fold_ensemble(paths, tmp_path / "model.pt", folds=2)
    loaded = medcam.load(tmp_path / "model.pt")
    assert loaded.checkpoint_metadata["members"] == [str(p) for p in paths]
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, ensemble(x).logits)
