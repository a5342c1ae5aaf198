"""Registration, light entry module, presets, and a few training steps of every preset on BUSI images."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

import medcam
from medcam.registry import heads, losses, models
from medcam.spec import resolve_model_spec

WSOL_PRESETS = ["vmamba_wsol", "resnet50_wsol", "pvt_wsol"]
ATTENTION_PRESETS = ["pvt_attention_box", "resnet50_attention_box", "vgg16_attention_box"]
PRESETS = WSOL_PRESETS + ATTENTION_PRESETS + ["resnet18_lesion_attention"]


def test_names_are_registered():
    assert "fpm" in heads.list()
    assert {"foreground_control", "bas", "attention_box"} <= set(losses.list())
    assert set(PRESETS) <= set(models.list())
    assert "Scientific Reports 2024" in medcam.info("vmamba_wsol", "models")["citation"]


def test_entry_module_imports_no_torch():
    code = ("import sys, medcam_wsol.entries as e; e.vmamba_wsol; "
            "print(sorted(m for m in ('torch', 'timm', 'medcam_wsol.fpm_head', 'medcam_wsol.attention') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", PRESETS)
def test_presets_resolve(name):
    spec = resolve_model_spec(name)
    if name in WSOL_PRESETS:
        assert spec["head"]["name"] == "fpm" and spec["head"]["modulation"] == "nonlinear" and spec["head"]["fusion"]
        assert spec["loss"][0]["name"] == "foreground_control" and spec["loss"][0]["area_weight"] == 1.2
        assert spec["attribution"] == {"name": "fpm", "key": "foreground"}
    else:
        assert spec["loss"][0]["name"] == "attention_box"
    if name in ATTENTION_PRESETS:  # the seed's settings
        loss = spec["loss"][0]
        assert (loss["thresh"], loss["adaptive"], loss["lam_min"], loss["lam_rate"]) == (0.3, True, 0.2, 0.023)
        assert loss["rules"] == {"Effusion": "lower", "Pneumothorax": "upper"} and loss["source"] == "segmenter"
        assert spec["class_names"][0] == "No Finding"


def test_attention_presets_default_to_lung_fields_and_a_missing_segmenter_says_what_to_set():
    spec = resolve_model_spec("pvt_attention_box")
    assert spec["loss"][0]["segmenter"] == "lung_fields"
    assert "lung_fields" in models.info("pvt_attention_box")["summary"]
    two = medcam.build_loss(spec, num_classes=2).parts[0]  # task=effusion: the Pneumothorax rule does not apply
    assert two.class_rules(["No Finding", "Effusion"]) == [None, "lower"]
    with pytest.raises(medcam.errors.SpecError, match="missing_classes: expected one of error, ignore"):
        medcam.build_loss({"name": "attention_box", "missing_classes": "skip"}, num_classes=2)
    spec = resolve_model_spec({"name": "pvt_attention_box", "loss": [{"name": "attention_box", "segmenter": None}]})
    with pytest.raises(medcam.errors.SpecError, match="segmenter checkpoint path"):
        medcam.build_loss(spec, num_classes=3)


def _lung_segmenter(tmp_path) -> str:
    """A small (untrained) U-Net saved as a checkpoint, standing in for the seed's lung U-Net."""
    net = medcam.build_segmenter({"name": "unet", "encoder": {"name": "tiny_cnn", "width": 4},
                                  "decoder_channels": [16, 8, 8, 4], "preprocess": {"size": 64}})
    path = tmp_path / "lungs.pt"
    medcam.save(net, path)
    return str(path)


def _busi_batch(busi_dir, spec):
    """One benign, one malignant and one normal BUSI image (with lesion masks and boxes)."""
    from medcam.data import BUSI, collate

    ds = BUSI(busi_dir, preprocess=spec, check="none")
    labels = [int(v) for v in ds.targets]
    return collate([ds[labels.index(c)] for c in (1, 2, 0)])


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("name", PRESETS)
def test_preset_trains_on_busi(name, busi_dir, tmp_path):
    override: dict = {"name": name, "preprocess": {"size": [64, 64]}}
    if name in WSOL_PRESETS:
        override.update(num_classes=3, class_names=["normal", "benign", "malignant"],
                        head={"name": "fpm", "top_k": 1})
    if name in ATTENTION_PRESETS:
        override["loss"] = [{**resolve_model_spec(name)["loss"][0], "segmenter": _lung_segmenter(tmp_path)}]
    torch.manual_seed(0)
    model = medcam.build_model(override)
    loss_fn = medcam.build_loss(model.spec, num_classes=3)
    batch = _busi_batch(busi_dir, model.spec)
    batch["epoch"] = 20  # adaptive lambda = 1 - 0.023 * 20 = 0.54: both terms active
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    totals = []
    for _ in range(3):
        out = model(batch["image"], batch["label"], return_features=loss_fn.needs_features)
        total, logs = loss_fn(out, batch, model)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        assert all(math.isfinite(v) for v in logs.values()), logs
        totals.append(logs["total"])
    if name not in WSOL_PRESETS:
        assert logs["attention_box.attention"] > 0  # the attention term took part
    assert totals[-1] < totals[0], totals


@pytest.mark.slow
@pytest.mark.data
def test_trainer_runs_the_lesion_preset_with_features(busi_dir, tmp_path):
    from medcam.data import BUSI
    from medcam.engine import Trainer

    spec = {"name": "resnet18_lesion_attention", "preprocess": {"size": [64, 64]}}
    train = BUSI(busi_dir, preprocess=resolve_model_spec(spec))
    subset = torch.utils.data.Subset(train, list(range(0, len(train), len(train) // 8))[:8])
    subset.targets = train.targets[subset.indices]  # the trainer reads the labels of its training set
    subset.class_names = train.class_names
    trainer = Trainer(spec, {"epochs": 1, "batch_size": 4, "progress": False, "device": "cpu"})
    result = trainer.fit(subset)
    record = result.history[0]["train"]
    assert math.isfinite(record["loss"]) and "attention_box.attention" in record


@pytest.mark.parametrize("name, head, loss, lr", [
    ("efficientnet_lite0_wsol", "fpm", "foreground_control", 1e-3),
    ("efficientnet_lite0_lesion_attention", "linear", "attention_box", 1e-3),
])
def test_pretrained_lite0_presets_carry_their_training_settings(name, head, loss, lr):
    from medcam.engine import TrainConfig

    spec = resolve_model_spec(name)
    assert spec["backbone"]["name"] == "efficientnet_lite0" and spec["backbone"]["pretrained"] is True
    assert spec["head"]["name"] == head and [part["name"] for part in spec["loss"]] == [loss]
    assert spec["preprocess"]["size"] == [224, 224] and spec["preprocess"]["mean"] == [0.5, 0.5, 0.5]
    config = TrainConfig.for_spec(spec, {"epochs": 10})    # medcam train NAME --epochs 10
    assert (config.epochs, config.optimizer, config.lr, config.warmup_epochs) == (10, "adamw", lr, 0.5)
    assert config.balanced_sampler is True
    if head == "fpm":   # the foreground maps read the stride-16 level, the class maps the last
        assert (spec["head"]["fpm_level"], spec["head"]["cls_level"]) == (3, -1)
    else:
        assert spec["loss"][0]["rules"] == {"benign": "inside", "malignant": "inside"}
