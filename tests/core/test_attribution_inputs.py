"""Targets, layers, hooks and map tensors shared by attribution methods (medcam/attribution_inputs.py)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import medcam
from medcam.attribution_inputs import (TargetLayer, capture_output, normalize_maps, replace_output, resize_maps,
                                       resolve_layer, resolve_targets)
from medcam.errors import ShapeError, UnknownNameError


@pytest.fixture
def model() -> medcam.MedcamModel:
    return medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 3,
                               "preprocess": {"size": [64, 64]}}).eval()


def _no_hooks(module: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
               for m in module.modules())


def test_normalize_maps_per_map_and_constant_maps():
    maps = torch.stack([torch.arange(6.0).view(2, 3), torch.full((2, 3), 4.0)])[None]  # (1, 2, 2, 3)
    out = normalize_maps(maps)
    assert out.shape == maps.shape
    torch.testing.assert_close(out[0, 0], torch.arange(6.0).view(2, 3) / 5)
    assert torch.equal(out[0, 1], torch.zeros(2, 3))


def test_resize_maps_shapes():
    assert resize_maps(torch.rand(2, 4, 4), (8, 6)).shape == (2, 8, 6)
    assert resize_maps(torch.rand(2, 3, 4, 4), (8, 8)).shape == (2, 3, 8, 8)
    same = torch.rand(2, 4, 4)
    assert resize_maps(same, (4, 4)) is same
    with pytest.raises(ShapeError):
        resize_maps(torch.rand(4, 4), (8, 8))


def test_resolve_targets_forms():
    logits = torch.tensor([[0.1, 2.0, 0.3], [5.0, 0.0, 0.0]])
    table, several = resolve_targets(None, 2, 3, logits)
    assert table.tolist() == [[1], [0]] and not several
    assert resolve_targets(2, 2, 3)[0].tolist() == [[2], [2]]
    assert resolve_targets([2, 0], 2, 3)[0].tolist() == [[2], [0]]
    assert resolve_targets(torch.tensor([1, 1]), 2, 3)[0].tolist() == [[1], [1]]
    table, several = resolve_targets([[0, 2], [1, 2]], 2, 3)
    assert table.tolist() == [[0, 2], [1, 2]] and several
    table, several = resolve_targets("all", 2, 3)
    assert table.tolist() == [[0, 1, 2], [0, 1, 2]] and several


@pytest.mark.parametrize("target,error,match", [
    ([0, 1, 2], ShapeError, "3 entries but the batch has 2 images.*never silently truncated"),
    ([1], ShapeError, "1 entries but the batch has 2"),
    (3, ValueError, "class 3 is out of range: the model has 3 classes"),
    ([0, -1], ValueError, "class -1 is out of range"),
    (torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), ValueError, "integer class indices"),
    ([[0, 1], [2]], ValueError, "same number of classes"),
    ("best", ValueError, "'all'"),
    (True, ValueError, "class index"),
])
def test_resolve_targets_errors(target, error, match):
    with pytest.raises(error, match=match):
        resolve_targets(target, 2, 3, torch.zeros(2, 3))


def test_resolve_layer(model):
    assert resolve_layer(model, None).level == 3
    assert resolve_layer(model, 1).level == 1
    assert resolve_layer(model, -2).level == 2
    assert resolve_layer(model, "backbone.stages.2").level == 2          # a level's module: no hook
    hooked = resolve_layer(model, "backbone.stages.2.0")
    assert hooked.level is None and hooked.module is model.backbone.stages[2][0]
    assert resolve_layer(model, model.backbone.stages[1][1]).name == "backbone.stages.1.1"
    with pytest.raises(UnknownNameError, match="did you mean 'backbone.stages.2.0'"):
        resolve_layer(model, "stages.2.0")
    with pytest.raises(UnknownNameError, match="did you mean 'backbone.stages.3.1'"):
        resolve_layer(model, "backbone.stages.3.l")
    with pytest.raises(ValueError, match="out of range: the backbone has 4 levels"):
        resolve_layer(model, 4)
    with pytest.raises(ValueError, match="not a submodule"):
        resolve_layer(model, nn.ReLU())


def test_capture_and_replace_remove_their_hooks_even_on_error():
    layer = nn.Linear(2, 2)
    with pytest.raises(RuntimeError), capture_output(layer) as outputs:
        layer(torch.zeros(1, 2))
        assert len(outputs) == 1
        raise RuntimeError("boom")
    assert _no_hooks(layer)
    with replace_output(layer, torch.ones(1, 2)):
        assert torch.equal(layer(torch.zeros(1, 2)), torch.ones(1, 2))
        with pytest.raises(ShapeError, match="does not match"):
            layer(torch.zeros(3, 2))
    assert _no_hooks(layer)


def test_target_layer_is_frozen():
    layer = TargetLayer(name="x", level=0)
    with pytest.raises(AttributeError):
        layer.level = 1  # type: ignore[misc]
