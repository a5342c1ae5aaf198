"""``medcam explain --segmenter lung_fields``: a registered training-free segmenter instead of a checkpoint."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medcam.boxes import component_boxes, connected_components


def test_explain_draws_lung_fields_boxes(trained_checkpoint, radiograph, tmp_path, cli, schema):
    import jsonschema
    import torch

    image, truth = radiograph(128, 160, seed=5)
    path = tmp_path / "chest.png"
    Image.fromarray((image * 255).round().astype(np.uint8)).save(path)
    code, text, err = cli("explain", trained_checkpoint, path, "--segmenter", "lung_fields", "--json", "--quiet",
                          "--out", tmp_path / "out")
    assert code == 0, err
    record = json.loads(text)
    jsonschema.validate(record, schema)
    assert record["box_source"] == "segmenter" and record["mask_path"]
    labels, counts = connected_components(torch.from_numpy(truth)[None])
    expected = component_boxes(labels, counts)[0]
    boxes = torch.tensor(record["boxes"], dtype=torch.float32)
    assert boxes.shape == (2, 4)
    order = boxes[:, 0].argsort()
    assert torch.allclose(boxes[order], expected[expected[:, 0].argsort()], atol=8), (boxes, expected)
    with Image.open(record["mask_path"]) as mask:
        assert mask.size == (160, 128)


def test_segmenter_names_and_digests(trained_checkpoint, tmp_path, cli):
    png = tmp_path / "x.png"
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(png)
    code, _, err = cli("explain", trained_checkpoint, png, "--segmenter", "lung_fileds", "--out", tmp_path / "o")
    assert code == 2 and "did you mean 'lung_fields'" in err
    code, _, err = cli("explain", trained_checkpoint, png, "--segmenter", "lung_fields", "--segmenter-sha256",
                       "0" * 64, "--out", tmp_path / "o")
    assert code == 2 and "a sha256 checks a checkpoint file" in err and err.count("\n") == 1


def test_app_builds_with_lung_fields(trained_checkpoint):
    pytest.importorskip("gradio", reason="the [app] extra is not installed (pip install -e '.[app]')")
    from medcam.app import build_app
    from medcam.app.gradio_app import _model_summary
    from medcam.inference import Explainer

    explainer = Explainer.from_checkpoint(trained_checkpoint, "lung_fields", device="cpu")
    assert explainer.segmenter.spec["segmenter"]["name"] == "lung_fields"
    assert "Segmenter: lung_fields." in _model_summary(explainer, None)
    assert build_app(explainer) is not None
