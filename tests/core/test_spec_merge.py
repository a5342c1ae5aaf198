"""A spec over a preset: lists of named parts merge by name, replace paths are explicit."""
from __future__ import annotations

import pytest

from medcam.errors import SpecError
from medcam.spec import resolve_model_spec
from medcam.spec_merge import deep_merge

pytestmark = pytest.mark.usefixtures("registered_test_parts")

BASE = {"backbone": {"name": "spec_test_net"}, "num_classes": 3}


def _preset_loss_lists():
    from medcam.registry import models

    out = []
    for name in models.list():
        preset = models.get(name)
        if isinstance(preset.get("loss"), list):
            out.append(name)
    return out


@pytest.mark.parametrize("preset", _preset_loss_lists())
def test_overriding_one_loss_part_of_a_preset_keeps_the_rest(preset):
    from medcam.registry import models

    raw = models.get(preset)
    reference = resolve_model_spec(preset)
    assert reference["loss"], preset
    for i, part in enumerate(raw["loss"]):
        name = part if isinstance(part, str) else part["name"]
        spec = resolve_model_spec({"name": preset, "loss": [{"name": name, "weight": 0.25}]})
        assert len(spec["loss"]) == len(reference["loss"])
        assert spec["loss"][i] == {**reference["loss"][i], "weight": 0.25}
        assert [p for j, p in enumerate(spec["loss"]) if j != i] == [p for j, p in enumerate(reference["loss"]) if j != i]
        for key, value in ({} if isinstance(part, str) else part).items():  # every setting the preset made survives
            if key != "name":
                assert spec["loss"][i][key] == value, (preset, key)
        assert {k: v for k, v in spec.items() if k != "loss"} == {k: v for k, v in reference.items() if k != "loss"}


def test_attention_box_override_keeps_rules_mode_target_and_adaptive_lambda():
    spec = resolve_model_spec({"name": "resnet50_attention_box",
                               "loss": [{"name": "attention_box", "segmenter": "lungs.pt"}]})
    (loss,) = spec["loss"]
    assert loss["segmenter"] == "lungs.pt"
    assert (loss["rules"], loss["mode"], loss["target"], loss["adaptive"], loss["lam_rate"]) == (
        {"Effusion": "lower", "Pneumothorax": "upper"}, "ratio", "predicted", True, 0.023)
    assert "replace" not in spec


def test_a_new_part_name_is_appended_and_replace_is_explicit_and_kept():
    added = resolve_model_spec({"name": "resnet50_attention_box", "loss": [{"name": "ce", "weight": 0.1}]})
    assert [p["name"] for p in added["loss"]] == ["attention_box", "ce"]
    replaced = resolve_model_spec({"name": "resnet50_attention_box", "replace": ["loss"],
                                   "loss": [{"name": "attention_box", "segmenter": "lungs.pt"}]})
    assert replaced["replace"] == ["loss"]
    assert replaced["loss"][0]["rules"] is None and replaced["loss"][0]["mode"] == "energy"  # factory defaults
    assert resolve_model_spec(replaced) == replaced  # the marker keeps a resolved spec rebuildable
    nested = resolve_model_spec({"name": "resnet50_attention_box", "replace": ["loss[attention_box].rules"],
                                 "loss": [{"name": "attention_box", "rules": {"Effusion": "inside"}}]})
    assert nested["loss"][0]["rules"] == {"Effusion": "inside"} and nested["loss"][0]["mode"] == "ratio"
    assert nested["replace"] == ["loss.attention_box.rules"]
    merged = resolve_model_spec({"name": "resnet50_attention_box",
                                 "loss": [{"name": "attention_box", "rules": {"Effusion": "inside"}}]})
    assert merged["loss"][0]["rules"] == {"Effusion": "inside", "Pneumothorax": "upper"}


@pytest.mark.parametrize("spec, message", [
    ({"name": "resnet50_attention_box", "loss": [{"segmenter": "x.pt"}]},
     r"loss\[0\]: missing 'name'; the parts of a preset's loss list merge by name"),
    ({"name": "resnet50_attention_box", "loss": [{"name": "ce"}, {"name": "ce", "weight": 2}]},
     "loss: two parts named 'ce' cannot be merged"),
    ({"name": "resnet50_attention_box", "replace": ["los"], "loss": ["ce"]},
     "replace: 'los' does not start with a spec key; did you mean 'loss'?"),
    ({"name": "resnet50_attention_box", "replace": ["head"]}, "replace: 'head' is not set in this spec"),
    ({**BASE, "replace": ["loss"], "loss": ["ce"]}, r"replace: only used with a preset \('name'\)"),
    ({"name": "resnet50_attention_box", "replace": "loss.attention_box.rules", "loss": ["ce"]},
     "replace: 'loss.attention_box.rules' is not set in this spec"),
])
def test_merge_and_replace_errors(spec, message):
    with pytest.raises(SpecError, match=message):
        resolve_model_spec(spec)


def test_deep_merge_of_part_lists_needs_unique_names_in_the_base():
    base = {"loss": [{"name": "ce", "weight": 1.0}, {"name": "ce", "weight": 2.0}]}
    with pytest.raises(SpecError, match="the preset has 2 parts named 'ce'"):
        deep_merge(base, {"loss": [{"name": "ce", "weight": 3.0}]}, part_lists=("loss",))
    assert deep_merge(base, {"loss": ["focal"]}, part_lists=("loss",))["loss"][-1] == "focal"
    assert deep_merge(base, {"loss": ["focal"]})["loss"] == ["focal"]  # other lists replace
