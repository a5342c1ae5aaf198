"""medcam.demo: the demo runs end to end on generated data and reports held-out metrics."""
from __future__ import annotations

import json

import pytest

from medcam import demo


@pytest.mark.slow
def test_demo_on_generated_data(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "SYNTHETIC_PER_CLASS", (6, 6, 6))
    monkeypatch.setattr(demo, "DEMO_SPEC", {**demo.DEMO_SPEC, "preprocess": {"size": [48, 48]},
                                            "backbone": {"name": "tiny_cnn", "width": 4}, "replace": ["backbone"]})
    result = demo.run_demo(None, tmp_path, epochs=1, progress=False)
    assert result["data_source"] == "synthetic" and (tmp_path / "synthetic_busi" / "malignant").is_dir()
    assert sum(result["split"].values()) == 18 and result["test"]["n"] == result["split"]["test"]
    report = demo.demo_report(result)
    assert "held-out test set (last epoch), chance balanced accuracy = 0.333" in report
    assert result["test_checkpoint"] == demo.DEMO_CHECKPOINT == "last" and "run/last.pt --data" in report
    assert "balanced_accuracy=" in report and "confusion matrix" in report
    loc = result["test_extra"]["localization"]
    assert loc["methods"] == list(demo.DEMO_METHODS) and loc["n_images"] == result["split"]["test"] - result["test"]["per_class"]["normal"]["support"]
    assert list(loc["rows"]) == [*demo.DEMO_METHODS, "center_gaussian"]
    assert "held-out images with a lesion mask (maps of the true class" in report
    json.dumps(result)  # the --json output
    again = demo.run_demo(None, tmp_path, epochs=1, progress=False)  # a demo always starts fresh
    assert again["test"]["balanced_accuracy"] == result["test"]["balanced_accuracy"]


def test_demo_recipe_is_the_pretrained_lesion_attention_preset():
    from medcam.spec import resolve_model_spec

    spec = resolve_model_spec(demo.DEMO_SPEC)
    assert spec["backbone"]["name"] == "efficientnet_lite0" and spec["backbone"]["pretrained"] is True
    assert [part["name"] for part in spec["loss"]] == ["attention_box"] and spec["preprocess"]["size"] == [160, 160]
    assert spec["train"]["lr"] == 1e-3 and demo.DEMO_TRAIN == {"epochs": 4}
