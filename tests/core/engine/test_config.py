"""medcam.engine.config: validation, close-match errors, file loading, resume differences."""
from __future__ import annotations

import pytest

from medcam.engine.config import TrainConfig
from medcam.errors import SpecError


def test_defaults_and_derived_values():
    cfg = TrainConfig()
    assert cfg.mode == "max" and cfg.eval_batch == 64
    assert TrainConfig(monitor="loss").mode == "min"
    assert TrainConfig(monitor="auc", monitor_mode="min").mode == "min"
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)


@pytest.mark.parametrize("key, value, message", [
    ("optimizer", "adamx", "did you mean 'adam'"),
    ("scheduler", "cosin", "did you mean 'cosine'"),
    ("monitor", "balanced_acc", "did you mean 'balanced_accuracy'"),
    ("amp", "fp32", "expected one of auto, off, fp16, bf16, got 'fp32'"),
    ("epochs", 0, "expected a positive integer, got 0"),
    ("lr", 0.0, "expected a positive number, got 0.0"),
    ("batch_size", 2.5, "expected a positive integer, got 2.5"),
    ("balanced_sampler", "yes", "expected true, false or auto, got 'yes'"),
    ("device", "gpu", "expected auto, cpu, cuda or cuda:N"),
    ("min_lr_ratio", 2.0, "expected a number in [0, 1], got 2.0"),
    ("grad_clip", -1, "expected a positive number or null, got -1"),
])
def test_bad_values_name_the_key(key, value, message):
    with pytest.raises(SpecError) as info:
        TrainConfig(**{key: value})
    assert str(info.value).startswith(f"train.{key}: ") and message in str(info.value)


def test_unknown_key_suggests_close_match():
    with pytest.raises(SpecError, match=r"train\.optimzer: unknown key; did you mean 'optimizer'\?"):
        TrainConfig.from_dict({"optimzer": "sgd"})


def test_plateau_rejects_warmup():
    with pytest.raises(SpecError, match="plateau schedule has no warm-up"):
        TrainConfig(scheduler="plateau", warmup_epochs=1)


def test_round_trip_and_file(tmp_path):
    cfg = TrainConfig(epochs=3, optimizer="SGD", lr=0.05)
    assert cfg.optimizer == "sgd" and isinstance(cfg.lr, float)
    assert TrainConfig(balanced_sampler="AUTO").balanced_sampler == "auto"  # choices match in any case
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    path = tmp_path / "train.yaml"
    path.write_text("train:\n  epochs: 4\n  balanced_sampler: true\n")
    loaded = TrainConfig.load(path)
    assert loaded.epochs == 4 and loaded.balanced_sampler
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        TrainConfig.load(tmp_path / "nope.yaml")


def test_differences_ignore_resume_safe_keys():
    a = TrainConfig(epochs=3, lr=0.1)
    assert a.differences(a.replace(epochs=5, progress=False)) == []
    assert a.differences(a.replace(lr=0.2)) == ["lr: 0.2 -> 0.1"]


def test_for_spec_layers_user_settings_over_the_spec_train_settings():
    spec = {"train": {"optimizer": "sgd", "lr": 0.01, "epochs": 6}}
    cfg = TrainConfig.for_spec(spec, {"lr": 0.002})
    assert (cfg.optimizer, cfg.lr, cfg.epochs) == ("sgd", 0.002, 6)
    assert TrainConfig.for_spec({}, None) == TrainConfig()
    complete = TrainConfig(lr=0.3)
    assert TrainConfig.for_spec(spec, complete) is complete  # a complete config is used as it is
    with pytest.raises(SpecError, match="train: expected a mapping"):
        TrainConfig.for_spec(spec, ["lr", 1])


def test_read_returns_only_the_given_settings(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("train:\n  lr: 0.01\n")
    assert TrainConfig.read(path) == {"lr": 0.01}
    path.write_text("lrr: 0.01\n")
    with pytest.raises(SpecError, match="did you mean 'lr'"):
        TrainConfig.read(path)


def test_balanced_sampler_defaults_to_auto():
    assert TrainConfig().balanced_sampler == "auto"
    assert TrainConfig(balanced_sampler="AUTO").balanced_sampler == "auto"
    assert TrainConfig(balanced_sampler=False).balanced_sampler is False


def test_a_pretrained_backbone_gets_a_short_warmup_unless_told_otherwise():
    from medcam.engine.config import PRETRAINED_DEFAULTS

    assert PRETRAINED_DEFAULTS == {"warmup_epochs": 0.5}
    pretrained = {"backbone": {"name": "efficientnet_lite0", "pretrained": True}}
    assert TrainConfig.for_spec(pretrained, None).warmup_epochs == 0.5
    assert TrainConfig.for_spec({"backbone": {"name": "resnet18", "pretrained": False}}, None).warmup_epochs == 0
    assert TrainConfig.for_spec(pretrained, {"warmup_epochs": 0}).warmup_epochs == 0
    assert TrainConfig.for_spec({**pretrained, "train": {"warmup_epochs": 2}}, None).warmup_epochs == 2
