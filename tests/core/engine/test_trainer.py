"""medcam.engine.trainer: reproducibility, files, resume (in-process and after SIGKILL), early stopping, errors."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from medcam.checkpoint import read_checkpoint
from medcam.data.synthetic import SyntheticLesions
from medcam.engine import Callback, Trainer
from medcam.engine.trainer import EarlyStopping
from medcam.errors import CheckpointError, DataError, SpecError, TrainingError
from medcam.registry import losses

from _train_child import Materialized, child_env, kill_at_marker  # noqa: E402  (next to this file)

CHILD = Path(__file__).with_name("_train_child.py")
SPEC = {"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 3, "preprocess": {"size": 32},
        "class_names": ["normal", "benign", "malignant"]}
CONFIG = {"epochs": 2, "batch_size": 8, "lr": 3e-3, "progress": False, "seed": 3}


@pytest.fixture(scope="module")
def data():
    return (Materialized(SyntheticLesions([6, 6, 6], size=32, seed=1)),
            Materialized(SyntheticLesions([3, 3, 3], size=32, seed=2)))


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def test_same_seed_same_weights(data):
    train, val = data
    runs = [Trainer(SPEC, {**CONFIG, "seed": s}) for s in (3, 3, 4)]
    for t in runs:
        t.fit(train, val)
    w = [_weights(t.model) for t in runs]
    assert _max_diff(w[0], w[1]) == 0.0
    assert _max_diff(w[0], w[2]) > 1e-4


def test_files_checkpoints_and_logs(data, tmp_path):
    train, val = data
    result = Trainer(SPEC, CONFIG, out_dir=tmp_path, data_info={"source": "synthetic"}).fit(train, val)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    record = json.loads(lines[-1])
    assert set(record) == {"epoch", "lr", "time_s", "schedule", "train", "val"}
    assert record["val"]["n"] == len(val) and "balanced_accuracy" in record["val"] and "loss" in record["train"]
    summaries = list(tmp_path.glob("summary_*.txt"))
    assert [p.name for p in summaries] == ["summary_tiny_cnn_32px_adamw_lr0.003_bs8_ep2_cosine_seed3.txt"]
    text = summaries[0].read_text()
    assert "status: finished" in text and "best epoch" in text and "confusion matrix" in text
    last = read_checkpoint(tmp_path / "last.pt")
    assert last.metadata["epoch"] == 2 and last.metadata["config"]["lr"] == 0.003
    assert last.metadata["data"]["source"] == "synthetic" and last.metadata["data"]["class_counts"] == [6, 6, 6]
    assert set(last.training_state) >= {"epoch", "optimizer", "schedule", "stopper"}
    best = read_checkpoint(tmp_path / "best.pt")
    assert best.metadata["epoch"] == result.best_epoch and best.training_state is None
    assert best.metadata["metrics"]["balanced_accuracy"] == result.best_metrics["balanced_accuracy"]


class Interrupt(Callback):
    def on_step_end(self, trainer, epoch, step, logs):
        if (epoch, step) == (1, 0):
            raise KeyboardInterrupt


def test_resume_in_process_matches_uninterrupted(data, tmp_path):
    train, val = data
    config = {**CONFIG, "epochs": 3}
    full = Trainer(SPEC, config, out_dir=tmp_path / "full")
    full.fit(train, val)
    with pytest.raises(KeyboardInterrupt):
        Trainer(SPEC, config, out_dir=tmp_path / "cut", callbacks=[Interrupt()]).fit(train, val)
    assert read_checkpoint(tmp_path / "cut" / "last.pt").metadata["epoch"] == 1
    resumed = Trainer(SPEC, config, out_dir=tmp_path / "cut")
    result = resumed.fit(train, val, resume=True)
    assert _max_diff(_weights(resumed.model), _weights(full.model)) == 0.0
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    again = Trainer(SPEC, config, out_dir=tmp_path / "cut").fit(train, val, resume=True)  # finished: nothing to do
    assert len(again.history) == 3


def test_resume_refuses_other_settings(data, tmp_path):
    train, val = data
    Trainer(SPEC, {**CONFIG, "epochs": 1}, out_dir=tmp_path).fit(train, val)
    with pytest.raises(CheckpointError, match=r"settings changed \(lr: 0\.003 -> 0\.01\)"):
        Trainer(SPEC, {**CONFIG, "epochs": 1, "lr": 0.01}, out_dir=tmp_path).fit(train, val, resume=True)
    with pytest.raises(CheckpointError, match="cosine schedule depends on the total"):
        Trainer(SPEC, {**CONFIG, "epochs": 3}, out_dir=tmp_path).fit(train, val, resume=True)


def test_early_stopping_and_best_checkpoint(data, tmp_path, monkeypatch):
    train, val = data
    trainer = Trainer(SPEC, {**CONFIG, "epochs": 6, "early_stopping": 2}, out_dir=tmp_path)
    scripted = iter([0.5, 0.7, 0.6, 0.7, 0.9])  # best at epoch 2; epochs 3 and 4 do not improve

    def fake_evaluate(dataset, desc=""):
        v = next(scripted)
        return {"n": 9, "accuracy": v, "balanced_accuracy": v, "auc": v, "macro_f1": v, "loss": 1 - v,
                "per_class": {}, "confusion_matrix": []}

    monkeypatch.setattr(trainer, "evaluate", fake_evaluate)
    result = trainer.fit(train, val)
    assert result.stopped_early and [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    assert result.best_epoch == 2 and result.best_metrics["balanced_accuracy"] == 0.7
    assert read_checkpoint(tmp_path / "best.pt").metadata["epoch"] == 2
    assert read_checkpoint(tmp_path / "last.pt").metadata["stopped_early"] is True


def test_early_stopping_logic():
    stop = EarlyStopping("min", patience=2)
    assert stop.update(1.0, 1) and not stop.update(1.0, 2) and not stop.should_stop
    assert not stop.update(math.nan, 3) and stop.should_stop and stop.best_epoch == 1


class _RecordEpoch(nn.Module):
    seen: list[int] = []

    def forward(self, output, batch, model):
        _RecordEpoch.seen.append(batch["epoch"])
        return torch.nn.functional.cross_entropy(output.logits, batch["label"])


def _record_epoch(num_classes: int, multilabel: bool) -> nn.Module:
    return _RecordEpoch()


def _nan_loss(num_classes: int, multilabel: bool) -> nn.Module:
    class NaN(nn.Module):
        def forward(self, output, batch, model):
            return output.logits.sum() * math.nan

    return NaN()


def test_epoch_reaches_losses_and_balanced_class_weights(data):
    train, _ = data
    losses.register(_record_epoch, name="record_epoch_test")
    try:
        _RecordEpoch.seen = []
        spec = {**SPEC, "loss": [{"name": "record_epoch_test"}, {"name": "ce", "class_weights": "balanced"}]}
        Trainer(spec, {**CONFIG, "balanced_sampler": True}).fit(train)
        assert _RecordEpoch.seen == [0, 0, 1, 1]  # 18 images, batch 8, last partial batch dropped
    finally:
        losses.unregister("record_epoch_test")


class _Scheduled(nn.Module):
    """Cross-entropy times a weight that falls by 0.25 per epoch (a ScheduledLoss)."""

    def schedule_values(self, epoch):
        return {"lambda": 1.0 - 0.25 * epoch}

    def forward(self, output, batch, model):
        return self.schedule_values(batch["epoch"])["lambda"] * torch.nn.functional.cross_entropy(output.logits,
                                                                                                  batch["label"])


def _scheduled(num_classes: int, multilabel: bool) -> nn.Module:
    return _Scheduled()


def test_schedule_driven_values_are_logged_per_epoch(data, tmp_path):
    train, val = data
    losses.register(_scheduled, name="scheduled_test")
    try:
        Trainer({**SPEC, "loss": [{"name": "scheduled_test"}]}, {**CONFIG, "epochs": 3}, out_dir=tmp_path,
                run_name="lam1_seed3").fit(train, val)
    finally:
        losses.unregister("scheduled_test")
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["schedule"]["scheduled_test.lambda"] for r in records] == [1.0, 0.75, 0.5]
    steps = 2  # 18 images, batch 8, last partial batch dropped
    total = 3 * steps
    for e, r in enumerate(records):  # cosine from lr 3e-3 to 0 over 6 steps
        first, last = e * steps, e * steps + steps - 1
        assert r["schedule"]["lr"] == pytest.approx(3e-3 * 0.5 * (1 + math.cos(math.pi * first / total)))
        assert r["schedule"]["lr_last_step"] == pytest.approx(3e-3 * 0.5 * (1 + math.cos(math.pi * last / total)))
        assert r["lr"] == r["schedule"]["lr"]
    assert (tmp_path / "summary_lam1_seed3.txt").is_file()


class _Snapshot(Callback):
    def __init__(self, epoch):
        self.epoch, self.weights = epoch, None

    def on_epoch_end(self, trainer, epoch, record):
        if epoch == self.epoch:
            self.weights = _weights(trainer.model)


def test_stop_after_gives_the_weights_a_longer_schedule_had_at_that_epoch(data):
    train, _ = data
    snap = _Snapshot(epoch=1)
    Trainer(SPEC, {**CONFIG, "epochs": 4}, callbacks=[snap]).fit(train)
    short = Trainer(SPEC, {**CONFIG, "epochs": 4})
    result = short.fit(train, stop_after=2)
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert _max_diff(_weights(short.model), snap.weights) == 0.0
    with pytest.raises(SpecError, match=r"stop_after: expected 1..4"):
        Trainer(SPEC, {**CONFIG, "epochs": 4}).fit(train, stop_after=5)


def test_an_ensemble_spec_is_not_trained(data):
    with pytest.raises(SpecError, match="an ensemble is made of trained models"):
        Trainer({**SPEC, "ensemble": {"members": 2}}, CONFIG)


def test_nan_loss_stops_with_advice(data):
    losses.register(_nan_loss, name="nan_loss_test")
    try:
        with pytest.raises(TrainingError, match="lower the learning rate"):
            Trainer({**SPEC, "loss": [{"name": "nan_loss_test"}]}, CONFIG).fit(data[0])
    finally:
        losses.unregister("nan_loss_test")


class _MultiLabel(Dataset):
    def __init__(self, n: int):
        g = torch.Generator().manual_seed(0)
        self.labels = (torch.rand(n, 3, generator=g) < 0.4).float()
        self.images = torch.rand(n, 3, 32, 32, generator=g)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": self.labels[i], "path": str(i), "index": i}


def test_multilabel_training_and_metrics():
    data = _MultiLabel(16)
    result = Trainer({**SPEC, "multilabel": True}, {**CONFIG, "epochs": 1}).fit(data, data)
    assert len(result.best_metrics["confusion_matrix"]) == 3  # one 2x2 matrix per label
    with pytest.raises(DataError, match="single-label but the training labels have shape"):
        Trainer(SPEC, CONFIG).fit(data)


def test_bad_data_errors(data):
    class Shifted(Dataset):
        labels = [0, 1, 5]

        def __len__(self):
            return 3

    with pytest.raises(DataError, match="num_classes=3"):
        Trainer(SPEC, CONFIG).fit(Shifted())
    with pytest.raises(DataError, match="empty"):
        Trainer(SPEC, CONFIG).fit(torch.utils.data.Subset(data[0], []))


@pytest.mark.slow
def test_resume_after_sigkill_mid_epoch_matches_uninterrupted(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    kill_at_marker(["--out", str(killed), "--kill-at", "1", "1"])
    assert read_checkpoint(killed / "last.pt").metadata["epoch"] == 1  # killed during epoch 2 (of 2)
    subprocess.run([sys.executable, str(CHILD), "--out", str(killed), "--resume"], check=True, env=child_env())
    subprocess.run([sys.executable, str(CHILD), "--out", str(clean)], check=True, env=child_env())
    a, b = read_checkpoint(killed / "last.pt"), read_checkpoint(clean / "last.pt")
    assert a.metadata["epoch"] == b.metadata["epoch"] == 2
    assert _max_diff(a.state_dict, b.state_dict) <= 1e-6
    strip = [{k: v for k, v in json.loads(line).items() if k != "time_s"}
             for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert strip == [{k: v for k, v in json.loads(line).items() if k != "time_s"}
                     for line in (clean / "metrics.jsonl").read_text().splitlines()]


def test_header_states_the_data_balance_and_threads(capsys):
    imbalanced = Materialized(SyntheticLesions([2, 10, 4], size=32, seed=5))
    torch.set_num_threads(1)
    Trainer(SPEC, {**CONFIG, "epochs": 1, "progress": True}).fit(imbalanced)
    header = capsys.readouterr().err.splitlines()[0]
    assert header == ("train: 16 images (normal 2, benign 10, malignant 4); balanced sampling on (auto: largest class "
                      "5.0x the smallest, > 1.5); adamw lr 0.003, cosine, 1 epochs of batch 8; seed 3; cpu, 1 threads")
