"""medcam.engine.logs: run tags, metrics text, summary and JSON-lines files."""
from __future__ import annotations

import json
import os
import stat

from medcam.engine.config import TrainConfig
from medcam.engine.logs import RunFiles, atomic_write_text, format_metrics, run_tag
from medcam.metrics.classification import classification_metrics

SPEC = {"name": "tiny_classifier", "backbone": {"name": "tiny_cnn"}, "preprocess": {"size": [128, 96]}}


def test_run_tag_encodes_hyperparameters():
    tag = run_tag(SPEC, TrainConfig(lr=3e-4, batch_size=16, epochs=5, balanced_sampler=True, seed=2))
    assert tag == "tiny_classifier-tiny_cnn_128x96px_adamw_lr0.0003_bs16_ep5_cosine_balanced_seed2"


def test_format_metrics_table():
    m = classification_metrics([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], [0, 1, 1], class_names=["neg", "pos"])
    text = format_metrics(m)
    assert "balanced_accuracy=0.7500" in text and "auc=1.0000" in text
    assert "confusion matrix (rows: true, columns: predicted)" in text
    assert text.splitlines()[-1].split() == ["pos", "1", "1"]


def test_run_files(tmp_path):
    files = RunFiles(tmp_path / "run", "tag")
    history = [{"epoch": 1, "lr": 0.1, "time_s": 1.0, "train": {"loss": 1.0, "accuracy": 0.5}, "val": None}]
    files.write_history(history)
    assert [json.loads(x) for x in files.metrics.read_text().splitlines()] == history
    files.write_summary(spec=SPEC, config=TrainConfig(), history=history, best=None, data={"path": "x"},
                        status="running", extra={"note:": "hello"})
    text = files.summary.read_text()
    assert files.summary.name == "summary_tag.txt" and "status: running" in text and "hello" in text
    assert "    1        0.1      1.0000" in text


def test_atomic_write_uses_normal_permissions(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
