"""SegmenterTrainer: the classifier's engine (checkpoints, logs, resume) training a segmenter on masks."""
from __future__ import annotations

import json

import pytest
import torch

import medcam
from medcam.checkpoint import read_checkpoint
from medcam.data import build_dataset
from medcam.engine import SegmenterTrainer, Trainer
from medcam.engine.seg_trainer import trainer_for
from medcam.errors import SpecError
from medcam.model import MedcamSegmenter

SPEC = {"name": "unet", "encoder": {"name": "tiny_cnn", "width": 4}, "in_chans": 1, "preprocess": {"size": 32}}
CONFIG = {"epochs": 3, "batch_size": 4, "lr": 0.01, "progress": False, "seed": 0}


@pytest.fixture(scope="module")
def parts(synthetic_busi):
    full = build_dataset("busi", synthetic_busi, preprocess=medcam.build_segmenter(SPEC).spec)
    split = full.splits(0.25, 0.0, seed=0)
    return full.subset(split["train"], augment=None), full.subset(split["val"], augment=None)


@pytest.mark.slow
def test_fit_writes_segmenter_checkpoints_and_logs(parts, tmp_path):
    train, val = parts
    trainer = SegmenterTrainer(SPEC, CONFIG, out_dir=tmp_path)
    assert trainer.config.monitor == "dice"
    fit = trainer.fit(train, val)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert {"loss", "mean_dice", "dice", "mask_bce"} <= set(records[0]["train"])  # loss terms and the score
    assert {"dice", "iou", "box_acc", "loss", "per_class"} <= set(records[0]["val"])
    assert records[-1]["train"]["loss"] < records[0]["train"]["loss"]
    best = max(records, key=lambda r: r["val"]["dice"])["epoch"]
    assert fit.best_epoch == best
    ckpt = read_checkpoint(tmp_path / "best.pt")
    assert ckpt.kind == "segmenter" and ckpt.metadata["epoch"] == best and ckpt.metadata["monitor"] == "dice"
    assert isinstance(medcam.load(tmp_path / "best.pt"), MedcamSegmenter)
    summary = next(tmp_path.glob("summary_unet-tiny_cnn_32px_*.txt")).read_text()
    assert "train_dice" in summary and "val_box_acc" in summary and "best epoch" in summary


@pytest.mark.slow
def test_resume_ends_with_the_weights_of_an_uninterrupted_run(parts, tmp_path):
    train, val = parts
    SegmenterTrainer(SPEC, CONFIG, out_dir=tmp_path / "whole").fit(train, val)
    SegmenterTrainer(SPEC, CONFIG, out_dir=tmp_path / "cut").fit(train, val, stop_after=1)
    SegmenterTrainer(SPEC, CONFIG, out_dir=tmp_path / "cut").fit(train, val, resume=True)
    whole = read_checkpoint(tmp_path / "whole" / "last.pt").state_dict
    cut = read_checkpoint(tmp_path / "cut" / "last.pt").state_dict
    assert all(torch.equal(whole[k], cut[k]) for k in whole)


def test_monitors_belong_to_the_kind_of_model():
    with pytest.raises(SpecError, match="train.monitor: 'balanced_accuracy' is not a metric of this model; it "
                                        "monitors dice, iou"):
        SegmenterTrainer(SPEC, {"monitor": "balanced_accuracy"})
    with pytest.raises(SpecError, match="train.monitor: 'dice' is not a metric of this model"):
        Trainer({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 2}, {"monitor": "dice"})


def test_only_one_channel_segmenters_and_no_classifiers():
    with pytest.raises(SpecError, match="num_classes: the data sets' masks are binary"):
        SegmenterTrainer({**SPEC, "num_classes": 2})
    classifier = medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 2})
    with pytest.raises(SpecError, match="SegmenterTrainer trains segmenters .* got a MedcamModel"):
        SegmenterTrainer(classifier)


def test_trainer_for_picks_the_trainer_of_the_spec(tmp_path):
    path = tmp_path / "seg.yaml"
    path.write_text("name: unet\nencoder: tiny_cnn\n")
    assert trainer_for(SPEC) is SegmenterTrainer and trainer_for(str(path)) is SegmenterTrainer
    assert trainer_for("tiny_classifier") is Trainer


def test_header_names_the_data_classes_of_a_segmenter(parts, capsys):
    """A segmenter's spec has no class names: the run header takes the data's (what stratified the split)."""
    train, _ = parts
    SegmenterTrainer(SPEC, {**CONFIG, "epochs": 1, "progress": True},
                     data_info={"class_names": ["normal", "benign", "malignant"]}).fit(train)
    header = capsys.readouterr().err.splitlines()[0]
    assert header.startswith(f"train: {len(train)} images (normal ") and ", benign " in header and ", malignant " in header
