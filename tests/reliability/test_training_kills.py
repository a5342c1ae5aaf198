"""Training under bad input and kills: empty sets, label mismatches, NaN losses, changed settings, and a
SIGKILL at the moments an epoch's files are written (resume must end with an uninterrupted run's files)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from medcam.checkpoint import read_checkpoint
from medcam.errors import CheckpointError, DataError, TrainingError

from _reliability import expect_error

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "engine"))
from _train_child import child_env, kill_at_marker  # noqa: E402  (tests/core/engine: the engine's child run)

CHILD = Path(__file__).resolve().parents[1] / "core" / "engine" / "_train_child.py"
SPEC = {"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 3, "preprocess": {"size": 32}}
CONFIG = {"epochs": 1, "batch_size": 4, "lr": 1e-3, "progress": False}


@pytest.fixture(scope="module")
def lesions():
    from medcam.data.synthetic import SyntheticLesions

    source = SyntheticLesions([4, 4, 4], size=32, seed=1)
    return [source[i] for i in range(len(source))]


class _Items(torch.utils.data.Dataset):
    def __init__(self, items, labels=None):
        self.items = [dict(x) for x in items]
        self.labels = labels if labels is not None else [x["label"] for x in items]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return {**self.items[i], "label": self.labels[i]}


class _NaNLoss(nn.Module):
    def forward(self, output, batch, model):
        return output.logits.sum() * math.nan


def test_bad_training_input(lesions, tmp_path):
    from medcam.engine import Trainer
    from medcam.registry import losses

    expect_error(lambda: Trainer(SPEC, CONFIG).fit(_Items([])), DataError, "the training set is empty")
    expect_error(lambda: Trainer(SPEC, CONFIG).fit(_Items(lesions, [5] * len(lesions))), DataError, "num_classes=3")
    expect_error(lambda: Trainer({**SPEC, "multilabel": True}, CONFIG).fit(_Items(lesions)), DataError,
                 "multi-label")
    losses.register(lambda num_classes, multilabel: _NaNLoss(), name="nan_loss_test")
    try:
        expect_error(lambda: Trainer({**SPEC, "loss": ["nan_loss_test"]}, CONFIG).fit(_Items(lesions)),
                     TrainingError, "the loss became nan")
    finally:
        losses.unregister("nan_loss_test")
    Trainer(SPEC, CONFIG, out_dir=tmp_path).fit(_Items(lesions))
    expect_error(lambda: Trainer(SPEC, {**CONFIG, "lr": 0.5}, out_dir=tmp_path).fit(_Items(lesions), resume=True),
                 CheckpointError, "the training settings changed")
    expect_error(lambda: Trainer({**SPEC, "num_classes": 4}, CONFIG, out_dir=tmp_path).fit(_Items(lesions),
                                                                                            resume=True),
                 CheckpointError, "different model spec")


def _run(out: Path, *extra: str) -> None:
    subprocess.run([sys.executable, str(CHILD), "--out", str(out), *extra], check=True, env=child_env())


def _records(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "run"
    _run(out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["checkpoint", "metrics"])
def test_sigkill_between_an_epochs_files_resumes_to_the_uninterrupted_files(clean_run, tmp_path, moment):
    """Before: killed right after the last epoch's last.pt, metrics.jsonl stayed one epoch short forever
    (resume said "nothing to do")."""
    killed = tmp_path / "killed"
    kill_at_marker(["--out", str(killed), "--pause-after", moment])
    _run(killed, "--resume")
    assert _records(killed) == _records(clean_run)
    a, b = read_checkpoint(killed / "last.pt"), read_checkpoint(clean_run / "last.pt")
    assert a.metadata["epoch"] == b.metadata["epoch"] == 2
    assert max((a.state_dict[k].double() - b.state_dict[k].double()).abs().max().item() for k in a.state_dict) <= 1e-6
