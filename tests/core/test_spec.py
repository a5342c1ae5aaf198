"""Spec loading, preset merging, validation errors with spec paths, resolution."""
from __future__ import annotations

import json

import pytest
import yaml

from medcam.errors import SpecError, UnknownNameError
from medcam.spec import deep_merge, load_spec, resolve_model_spec, resolve_segmenter_spec

pytestmark = pytest.mark.usefixtures("registered_test_parts")

BASE = {"backbone": {"name": "spec_test_net"}, "num_classes": 3}


def test_minimal_spec_resolves_every_default():
    spec = resolve_model_spec(BASE)
    assert spec["backbone"] == {"name": "spec_test_net", "pretrained": False, "width": 4, "dropout": 0.0}
    assert spec["head"] == {"name": "linear", "level": None, "dropout": 0.0}
    assert spec["loss"] == [{"name": "ce", "weight": 1.0, "class_weights": None, "label_smoothing": 0.0}]
    assert spec["in_chans"] == 3 and spec["multilabel"] is False and spec["attribution"] is None
    assert spec["preprocess"]["mean"] == [0.485, 0.456, 0.406] and spec["preprocess"]["size"] == [224, 224]
    assert "name" not in spec and spec["train"] == {}
    assert resolve_model_spec(spec) == spec  # resolving is idempotent


def test_train_settings_are_kept_as_given():
    spec = resolve_model_spec({**BASE, "train": {"optimizer": "sgd", "lr": 0.01}})
    assert spec["train"] == {"optimizer": "sgd", "lr": 0.01}  # only the keys given, not every default
    assert resolve_model_spec(spec) == spec


def test_part_shorthand_and_greyscale_defaults():
    spec = resolve_model_spec({"backbone": "spec_test_net", "num_classes": 2, "in_chans": 1,
                               "preprocess": {"size": 96}})
    assert spec["backbone"]["name"] == "spec_test_net"
    assert spec["preprocess"]["size"] == [96, 96]
    assert spec["preprocess"]["mean"] == [0.449] and spec["preprocess"]["std"] == [0.226]


@pytest.mark.parametrize("spec, message", [
    ({**BASE, "backbone": {"name": "spec_test_net", "pretrianed": True}},
     "backbone.pretrianed: unknown parameter; did you mean 'pretrained'?"),
    ({**BASE, "backbone": {"name": "spec_test_nte"}},
     "backbone.name: unknown backbone 'spec_test_nte'; did you mean 'spec_test_net'? (medcam list backbones)"),
    ({**BASE, "backbone": {"name": "spec_test_net", "in_chans": 1}},
     "backbone.in_chans: set by medcam from the enclosing spec; remove it here"),
    ({**BASE, "backbone": {"name": "spec_test_net", "width": "wide"}},
     "backbone.width: expected an integer, got 'wide' (default 4)"),
    ({**BASE, "backbone": {"name": "spec_test_net", "pretrained": 1}},
     "backbone.pretrained: expected true or false, got 1 (default False)"),
    ({**BASE, "head": {"name": "linear", "dropuot": 0.1}}, "head.dropuot: unknown parameter; did you mean 'dropout'?"),
    ({**BASE, "backbon": "x"}, "backbon: unknown key; did you mean 'backbone'?"),
    ({"num_classes": 3}, "backbone: missing"),
    ({"backbone": "spec_test_net"}, "num_classes: missing"),
    ({**BASE, "num_classes": 0}, "num_classes: expected a positive integer, got 0"),
    ({**BASE, "class_names": ["a", "b"]}, "class_names: 2 names for num_classes=3"),
    ({**BASE, "loss": [{"name": "ce", "weight": "x"}]}, "loss[0].weight: expected a number >= 0, got 'x'"),
    ({**BASE, "loss": [{"name": "ce", "label_smothing": 0.1}]},
     "loss[0].label_smothing: unknown parameter; did you mean 'label_smoothing'?"),
    ({**BASE, "loss": []}, "loss: expected a non-empty list"),
    ({**BASE, "backbone": {"pretrained": True}}, "backbone: missing 'name'"),
    ({**BASE, "preprocess": {"size": [1, 2, 3]}}, "preprocess.size: expected [height, width]"),
    ({**BASE, "preprocess": {"resize": "squre"}}, "preprocess.resize: expected one of square, pad, none, got 'squre'; did you mean 'square'?"),
    ({**BASE, "preprocess": {"mean": [0.5]}}, "preprocess.mean: expected 3 values"),
    ({**BASE, "preprocess": {"sise": 3}}, "preprocess.sise: unknown key; did you mean 'size'?"),
    ({**BASE, "multilabel": "yes"}, "multilabel: expected true or false"),
    ({**BASE, "loss": [{"name": "ce", "class_weights": object()}]}, "loss[0].class_weights: value <object"),
    ({**BASE, "train": {"optimzer": "sgd"}}, "train.optimzer: unknown key; did you mean 'optimizer'?"),
    ({**BASE, "train": {"lr": -1}}, "train.lr: expected a positive number, got -1"),
    ({**BASE, "head": {"name": "fpm", "modulation": "wrong"}},
     "head.modulation: expected one of none, nonlinear, got 'wrong' (default 'nonlinear')"),
    ({**BASE, "head": {"name": "fpm", "top_k": 0}}, "head.top_k: expected a positive integer, got 0 (default 1)"),
    ({**BASE, "head": {"name": "linear", "dropout": 1.0}},
     "head.dropout: expected a number in [0, 1), got 1.0 (default 0.0)"),
    ({**BASE, "train": "fast"}, "train: expected a mapping of training settings"),
])
def test_errors_name_the_spec_path(spec, message):
    with pytest.raises((SpecError, UnknownNameError)) as err:
        resolve_model_spec(spec)
    assert str(err.value).startswith(message), str(err.value)


def test_unknown_preset_suggests_close_match():
    with pytest.raises(UnknownNameError) as err:
        resolve_model_spec("tiny_clasifier")
    assert str(err.value) == "name: unknown model 'tiny_clasifier'; did you mean 'tiny_classifier'? (medcam list models)"


def test_preset_with_user_overrides_deep_merges():
    spec = resolve_model_spec({"name": "tiny_classifier", "num_classes": 5, "backbone": {"width": 8},
                               "preprocess": {"size": [64, 96]}})
    assert spec["name"] == "tiny_classifier"
    assert spec["backbone"]["name"] == "tiny_cnn" and spec["backbone"]["width"] == 8
    assert spec["num_classes"] == 5 and spec["preprocess"]["size"] == [64, 96]
    assert resolve_model_spec(spec) == spec


def test_changing_a_part_name_replaces_the_part():
    spec = resolve_model_spec({"name": "tiny_classifier", "backbone": {"name": "spec_test_net"}})
    assert "width" in spec["backbone"] and spec["backbone"]["width"] == 4  # not tiny_cnn's 16


def test_deep_merge_rules():
    base = {"a": {"b": 1, "c": [1, 2]}, "part": {"name": "x", "p": 1}}
    merged = deep_merge(base, {"a": {"c": [3]}, "part": {"p": 2}})
    assert merged == {"a": {"b": 1, "c": [3]}, "part": {"name": "x", "p": 2}}
    assert base["a"]["c"] == [1, 2]  # inputs untouched


def test_deep_merge_keeps_the_name_of_a_part_given_as_a_string():
    merged = deep_merge({"backbone": "spec_test_net", "head": "linear"}, {"backbone": {"width": 6}})
    assert merged == {"backbone": {"name": "spec_test_net", "width": 6}, "head": "linear"}
    assert deep_merge({"backbone": "a"}, {"backbone": {"name": "b"}}) == {"backbone": {"name": "b"}}
    assert resolve_model_spec({**merged, "num_classes": 2})["backbone"]["width"] == 6


def test_yaml_and_json_files(tmp_path):
    y = tmp_path / "model.yaml"
    y.write_text(yaml.safe_dump({**BASE, "backbone": {"name": "spec_test_net", "width": 6}}))
    j = tmp_path / "model.json"
    j.write_text(json.dumps({**BASE, "backbone": {"name": "spec_test_net", "width": 6}}))
    assert resolve_model_spec(str(y)) == resolve_model_spec(j)
    assert resolve_model_spec(y)["backbone"]["width"] == 6


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="spec file '.*missing.yaml' does not exist"):
        load_spec(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("backbone: [unclosed")
    with pytest.raises(SpecError, match="bad.yaml: not valid YAML"):
        load_spec(bad)
    scalar = tmp_path / "scalar.json"
    scalar.write_text("3")
    with pytest.raises(SpecError, match="must hold a mapping"):
        load_spec(scalar)
    assert load_spec("tiny_classifier") == {"name": "tiny_classifier"}


def test_segmenter_spec_flat_and_nested():
    flat = resolve_segmenter_spec({"name": "spec_test_seg", "width": 2, "in_chans": 1})
    nested = resolve_segmenter_spec({"segmenter": {"name": "spec_test_seg", "width": 2}, "in_chans": 1})
    assert flat == nested
    assert flat["segmenter"] == {"name": "spec_test_seg", "width": 2} and flat["num_classes"] == 1
    with pytest.raises(SpecError, match="segmenter.num_classes: set by medcam"):
        resolve_segmenter_spec({"segmenter": {"name": "spec_test_seg", "num_classes": 2}})


# ---------------------------------------------------------------------- display names, num_classes, ensemble
def test_display_names_as_a_list_or_a_mapping_of_class_names():
    spec = resolve_model_spec({**BASE, "num_classes": 2, "class_names": ["1", "3"],
                               "display_names": {3: "Patient with Osteoporosis"}})
    assert spec["class_names"] == ["1", "3"] and spec["display_names"] == ["1", "Patient with Osteoporosis"]
    listed = resolve_model_spec({**BASE, "num_classes": 2, "display_names": ["Healthy Patient", "Sick"]})
    assert listed["display_names"] == ["Healthy Patient", "Sick"] and listed["class_names"] is None
    assert resolve_model_spec(BASE)["display_names"] is None


@pytest.mark.parametrize("extra, message", [
    ({"display_names": ["a", "b"]}, "display_names: 2 names for num_classes=3"),
    ({"display_names": {"x": "y"}}, r"display_names: a mapping \{class name: shown name\} needs class_names"),
    ({"class_names": ["n", "b", "m"], "display_names": {"bb": "y"}}, "display_names.bb: not a class; did you mean 'b'"),
    ({"display_names": ["a", "a", "c"]}, "display_names: 'a' is shown for two classes"),
    ({"display_names": ["a", "", "c"]}, r"display_names\[1\]: expected a non-empty string"),
    ({"ensemble": {"members": 1}}, "ensemble.members: an ensemble needs at least 2 members"),
    ({"ensemble": 3}, r"ensemble: expected \{members: k\}"),
])
def test_display_names_and_ensemble_errors(extra, message):
    with pytest.raises(SpecError, match=message):
        resolve_model_spec({**BASE, **extra})


def test_num_classes_from_class_names():
    spec = resolve_model_spec({"backbone": "spec_test_net", "class_names": ["a", "b"]})
    assert spec["num_classes"] == 2
    over_preset = resolve_model_spec({"name": "tiny_classifier", "class_names": ["a", "b", "c"]})
    assert over_preset["num_classes"] == 3  # the preset says 2; the spec's own class names win
    with pytest.raises(SpecError, match="num_classes: missing .*medcam build --num-classes K"):
        resolve_model_spec({"backbone": "spec_test_net"})


def test_ensemble_key_only_when_set():
    assert "ensemble" not in resolve_model_spec(BASE)
    assert resolve_model_spec({**BASE, "ensemble": {"members": 3}})["ensemble"] == {"members": 3}
