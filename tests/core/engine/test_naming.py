"""Run name templates: fields from the spec, training and data settings; formats; errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from medcam.engine.config import TrainConfig
from medcam.engine.naming import format_value, render_name, render_path
from medcam.errors import SpecError
from medcam.spec import resolve_model_spec

SEED_TEMPLATE = ("{backbone}_{dataset}_{task}_la{loss.attention_box.lam}{loss.attention_box.adaptive:a}"
                 "_t{loss.attention_box.thresh}")


@pytest.fixture(scope="module")
def spec():
    return resolve_model_spec({"name": "resnet50_attention_box", "loss": [{"name": "attention_box", "thresh": 0.1}]})


def test_the_attention_seeds_file_name(spec):
    data = {"dataset": "nih", "options": {"task": "effusion_pneumothorax"}}
    assert render_name(SEED_TEMPLATE, spec=spec, config=TrainConfig(), data=data) == \
        "resnet50_nih_effusion_pneumothorax_la0.5a_t0.1"
    fixed = resolve_model_spec({"name": "resnet50_attention_box",
                                "loss": [{"name": "attention_box", "adaptive": False, "lam": 0.25}]})
    assert render_name(SEED_TEMPLATE, spec=fixed, data=data) == "resnet50_nih_effusion_pneumothorax_la0.25_t0.3"


def test_fields_and_formats(spec):
    config = TrainConfig(lr=1e-5, balanced_sampler=True)
    assert render_name("{preprocess.size}_{lr}_{lr:.0e}_{train.seed}", spec=spec, config=config) == "224x224_1e-05_1e-05_0"
    assert render_name("{balanced_sampler:bal|plain}_{spec.head}_{name}", spec=spec, config=config) == \
        "bal_linear_resnet50_attention_box"
    assert render_name("{balanced_sampler}-{backbone.pretrained}", spec=spec, config=config) == "true-false"
    assert render_name("{tag}/{class_names}", spec=spec, extra={"tag": "T"}) == "T-No-Finding-Effusion-Pneumothorax"
    assert format_value(None) == "none" and format_value(0.001) == "0.001" and format_value([0.5, "a"]) == "0.5-a"


@pytest.mark.parametrize("template, message", [
    ("{backbon}", "unknown field 'backbon'; did you mean 'backbone'"),
    ("{loss.attention_box.lma}", "loss.attention_box has no 'lma'; did you mean 'lam'"),
    ("run_{lr", r"unbalanced '\{' at position 4"),
    ("{}", "empty field"),
    ("{lr:d}", "format 'd' does not apply to 0.001"),
    ("{{}}", "gives an empty name"),
])
def test_errors(spec, template, message):
    with pytest.raises(SpecError, match=message):
        render_name(template, spec=spec, config=TrainConfig())


def test_render_path_keeps_separators(spec):
    assert render_path("results/{backbone}/{name}", spec=spec, extra={"name": "x"}) == Path("results/resnet50/x")
    assert render_path("/abs/plain", spec=spec) == Path("/abs/plain")
