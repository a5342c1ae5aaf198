"""Bad names and bad specs: each gets one line naming the problem (and close matches), never a traceback
from deep inside PyTorch or an allocation of the size of a typo."""
from __future__ import annotations

import math

import pytest

import medcam
from medcam.errors import AttributionError, SpecError, UnknownNameError

from _reliability import TINY_SPEC, expect_error, one_line, random_images

BASE = {"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 3}


def _model(**changes):
    return lambda: medcam.build_model({**BASE, **changes})


NAME_CASES = [
    pytest.param(_model(backbone="tiny_cnm"), UnknownNameError, "did you mean 'tiny_cnn'", id="unknown-backbone"),
    pytest.param(_model(loss=[{"name": "c"}]), UnknownNameError, "loss[0].name: unknown loss 'c'", id="unknown-loss"),
    pytest.param(_model(head="linaer"), UnknownNameError, "did you mean 'linear'", id="unknown-head"),
    pytest.param(lambda: medcam.build_model("tiny_clasifier"), UnknownNameError, "did you mean 'tiny_classifier'",
                 id="unknown-preset"),
    pytest.param(lambda: medcam.build_model(""), SpecError, "empty", id="empty-preset-name"),
    pytest.param(lambda: medcam.build_model("   "), SpecError, "empty", id="blank-preset-name"),
    pytest.param(lambda: medcam.build_attribution("gradcan"), UnknownNameError, "did you mean 'gradcam'",
                 id="unknown-attribution"),
    pytest.param(lambda: medcam.build_segmenter({"name": "unte", "encoder": "tiny_cnn"}), UnknownNameError,
                 "did you mean 'unet'", id="unknown-segmenter"),
]


@pytest.mark.parametrize("call, error, fragment", NAME_CASES)
def test_bad_name(call, error, fragment):
    expect_error(call, error, fragment)


def test_unknown_dataset_layout(tmp_path):
    from medcam.data import build_dataset

    expect_error(lambda: build_dataset("imagefoldr", tmp_path), UnknownNameError, "did you mean 'imagefolder'")


def test_unknown_class_and_layer_names(tiny_model):
    from medcam.inference import Explainer

    explainer = Explainer(tiny_model)
    expect_error(lambda: explainer.class_index("benin"), UnknownNameError, "did you mean 'benign'")
    expect_error(lambda: medcam.explain(tiny_model, random_images(), layer="backbone.stage9"), UnknownNameError,
                 "unknown layer 'backbone.stage9'")


@pytest.mark.parametrize("args, fragment, single", [
    pytest.param(["build", ""], "empty", True, id="cli-build-empty"),
    pytest.param(["info", "resnet5"], "did you mean", True, id="cli-info-unknown-name"),
    pytest.param(["trian"], "did you mean 'train'", False, id="cli-unknown-command"),  # click's usage text
])
def test_cli_names_exit_2_without_traceback(cli, args, fragment, single):
    code, out, err = cli(*args)
    assert code == 2 and fragment in err and "Traceback" not in err, (code, err)
    assert one_line(err) or not single, err


SPEC_CASES = [
    pytest.param({"backbone": {"name": "tiny_cnn", "widht": 4}}, SpecError, "did you mean 'width'",
                 id="misspelled-parameter"),
    pytest.param({"num_classes": 0}, SpecError, "num_classes: expected a positive integer", id="zero-classes"),
    pytest.param({"num_classes": 10 ** 12}, SpecError, "num_classes: at most", id="huge-num-classes"),
    pytest.param({"in_chans": 10 ** 12}, SpecError, "in_chans: at most", id="huge-in-chans"),
    pytest.param({"class_names": ["a", "a", "b"]}, SpecError, "class_names: 'a' appears twice",
                 id="duplicate-class-names"),
    pytest.param({"class_names": ["a", "b"]}, SpecError, "2 names for num_classes=3", id="class-name-count"),
    pytest.param({"loss": [{"name": "ce", "weight": -1}]}, SpecError,
                 "loss[0].weight: expected a number >= 0, got -1 (a negative weight trains towards a higher loss)",
                 id="negative-loss-weight"),
    pytest.param({"loss": [{"name": "ce", "weight": math.nan}]}, SpecError,
                 "loss[0].weight: expected a number >= 0, got nan (not finite;",
                 id="nan-loss-weight"),
    pytest.param({"loss": [{"name": "ce", "weight": math.inf}]}, SpecError,
                 "loss[0].weight: expected a number >= 0, got inf (not finite;",
                 id="infinite-loss-weight"),
    pytest.param({"preprocess": {"size": [64, -1]}}, SpecError, "preprocess.size", id="negative-size"),
    pytest.param({"preprocess": {"std": [0.2, 0.0, 0.2]}}, SpecError, "preprocess.std: values must be positive",
                 id="zero-std"),
    pytest.param({"backbone": {"name": "tiny_cnn", "width": object()}}, SpecError, "backbone.width",
                 id="unstorable-value"),
]


@pytest.mark.parametrize("changes, error, fragment", SPEC_CASES)
def test_bad_spec(changes, error, fragment):
    expect_error(_model(**changes), error, fragment)


def test_composite_loss_refuses_bad_weights():
    """The weight check also guards losses assembled in code, not only specs."""
    from torch import nn

    from medcam.loss import CompositeLoss

    expect_error(lambda: CompositeLoss([("ce", -0.5, nn.Identity())]), SpecError, "ce.weight: expected a number >= 0, got -0.5")
    expect_error(lambda: CompositeLoss([("ce", math.nan, nn.Identity())]), SpecError, "got nan (not finite")


def test_spec_files(tmp_path):
    expect_error(lambda: medcam.build_model(tmp_path / "missing.yaml"), FileNotFoundError, "does not exist")
    bad = tmp_path / "bad.yaml"
    bad.write_text("backbone: [tiny_cnn\n")
    expect_error(lambda: medcam.build_model(bad), SpecError, "not valid YAML")
    listed = tmp_path / "list.yaml"
    listed.write_text("- tiny_cnn\n")
    expect_error(lambda: medcam.build_model(listed), SpecError, "mapping at the top level")


def test_target_errors_are_medcam_errors(tiny_model):
    """Targets and layer levels the model does not have raise medcam's AttributionError (a ValueError)."""
    images = random_images()
    expect_error(lambda: medcam.explain(tiny_model, images, target=7), AttributionError, "out of range")
    expect_error(lambda: medcam.explain(tiny_model, images, target=-1), AttributionError, "out of range")
    expect_error(lambda: medcam.explain(tiny_model, images, target="most"), AttributionError, "'all'")
    expect_error(lambda: medcam.explain(tiny_model, images, layer=9), AttributionError, "out of range")
    assert TINY_SPEC["num_classes"] == 3
