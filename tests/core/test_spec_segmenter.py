"""Segmenter specs: what kind a spec is, segmenter presets, their loss list and training settings."""
from __future__ import annotations

import pytest

from medcam.errors import SpecError
from medcam.registry import Preset, models
from medcam.spec import resolve_model_spec
from medcam.spec_segmenter import DEFAULT_SEGMENTER_LOSS, resolve_segmenter_spec, spec_kind


@pytest.fixture
def seg_preset():
    models.register(Preset({"segmenter": {"name": "unet", "encoder": "tiny_cnn"}, "in_chans": 1,
                            "preprocess": {"size": 64}, "train": {"lr": 0.002}},
                           summary="test segmenter preset"), name="test_seg_preset")
    yield "test_seg_preset"
    models.unregister("test_seg_preset")


def test_spec_kind(tmp_path, seg_preset):
    assert spec_kind({"name": "unet", "encoder": "tiny_cnn"}) == "segmenter"
    assert spec_kind({"segmenter": "fpn"}) == "segmenter"
    assert spec_kind(seg_preset) == "segmenter"
    assert spec_kind("tiny_classifier") == "model"
    assert spec_kind({"backbone": "tiny_cnn", "num_classes": 2}) == "model"
    path = tmp_path / "seg.yaml"
    path.write_text("name: unet\nencoder: tiny_cnn\n")
    assert spec_kind(str(path)) == "segmenter"


def test_default_loss_and_train(seg_preset):
    spec = resolve_segmenter_spec({"name": "unet", "encoder": "tiny_cnn"})
    assert [(p["name"], p["weight"]) for p in spec["loss"]] == [(p["name"], p["weight"])
                                                                for p in DEFAULT_SEGMENTER_LOSS]
    assert spec["train"] == {} and "name" not in spec


def test_a_preset_is_merged_under_the_user_keys(seg_preset):
    spec = resolve_segmenter_spec({"name": seg_preset, "preprocess": {"size": 32}, "loss": ["dice"]})
    assert spec["name"] == seg_preset and spec["segmenter"]["encoder"] == "tiny_cnn"
    assert spec["in_chans"] == 1 and spec["preprocess"]["size"] == [32, 32] and spec["train"] == {"lr": 0.002}
    assert [p["name"] for p in spec["loss"]] == ["dice"]
    assert resolve_segmenter_spec(spec) == spec  # the resolved spec rebuilds itself


def test_a_loss_of_the_other_kind_is_refused():
    with pytest.raises(SpecError, match=r"loss\[0\]: 'ce' is a classification loss; a segmenter trains with "
                                        r"dice, mask_bce"):
        resolve_segmenter_spec({"name": "unet", "encoder": "tiny_cnn", "loss": ["ce"]})
    with pytest.raises(SpecError, match=r"loss\[1\]: 'dice' is a segmentation loss .*a classifier trains with"):
        resolve_model_spec({"backbone": "tiny_cnn", "num_classes": 2, "loss": ["ce", "dice"]})


def test_train_settings_are_validated():
    with pytest.raises(SpecError, match="train.optimzer: unknown key; did you mean 'optimizer'"):
        resolve_segmenter_spec({"name": "unet", "encoder": "tiny_cnn", "train": {"optimzer": "sgd"}})
