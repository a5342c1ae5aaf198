"""build_model / build_segmenter / build_loss and the assembled model's behaviour."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import medcam
from medcam.errors import PluginError, ShapeError, SpecError
from medcam.model import MedcamModel, MedcamSegmenter, ModelOutput
from medcam.registry import backbones

pytestmark = pytest.mark.usefixtures("registered_test_parts")


def shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_build_model_from_preset_and_round_trip():
    model = medcam.build_model("tiny_classifier")
    assert isinstance(model, MedcamModel) and model.spec["name"] == "tiny_classifier"
    out = model(torch.rand(2, 3, 64, 64))
    assert isinstance(out, ModelOutput) and out.logits.shape == (2, 2) and out.features is None
    rebuilt = medcam.build_model(model.spec)
    assert shapes(rebuilt) == shapes(model) and rebuilt.spec == model.spec


def test_model_properties_and_features():
    model = medcam.build_model({"backbone": {"name": "spec_test_net", "width": 4}, "num_classes": 3, "in_chans": 1,
                                "class_names": ["a", "b", "c"], "preprocess": {"size": [32, 48]}})
    assert model.in_chans == 1 and model.num_classes == 3 and model.class_names == ["a", "b", "c"]
    assert model.input_size == (32, 48) and model.feature_info.channels() == [4, 8]
    out = model(torch.rand(2, 1, 32, 48), return_features=True)
    assert [tuple(f.shape) for f in out.features] == [(2, 4, 16, 24), (2, 8, 8, 12)]
    assert out.features[-1].requires_grad  # features stay in the graph
    probs = model.predict_proba(torch.rand(2, 1, 32, 48))
    assert torch.allclose(probs.sum(1), torch.ones(2))


def test_normalization_is_applied_inside_the_model():
    model = medcam.build_model({"backbone": "spec_test_net", "num_classes": 2, "in_chans": 1,
                                "preprocess": {"mean": 0.25, "std": 0.5}})
    x = torch.full((1, 1, 8, 8), 0.75)
    assert torch.allclose(model.normalize(x), torch.ones(1, 1, 8, 8))


def test_multilabel_probabilities_are_sigmoids():
    model = medcam.build_model({"backbone": "spec_test_net", "num_classes": 4, "multilabel": True})
    x = torch.rand(3, 3, 16, 16)
    assert torch.allclose(model.predict_proba(x), torch.sigmoid(model(x).logits))


@pytest.mark.parametrize("images, message", [
    (torch.rand(3, 32, 32), r"add the batch dimension"),
    (torch.rand(2, 1, 32, 32), r"has 1 channels but the model expects in_chans=3"),
    (torch.rand(2, 3, 32), r"must have shape \(B, 3, H, W\)"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), r"floating point"),
    ([1, 2, 3], r"must be a torch.Tensor"),
])
def test_bad_images_give_shape_errors(images, message):
    model = medcam.build_model({"backbone": "spec_test_net", "num_classes": 2})
    with pytest.raises(ShapeError, match=message):
        model(images)


def test_backbone_without_feature_info_is_a_plugin_error():
    backbones.register(lambda in_chans=3: nn.Conv2d(in_chans, 4, 3), name="no_info_net")
    try:
        with pytest.raises(PluginError, match="no FeatureInfo 'feature_info'"):
            medcam.build_model({"backbone": "no_info_net", "num_classes": 2})
    finally:
        backbones.unregister("no_info_net")


def test_factory_type_errors_are_spec_errors():
    def picky(in_chans: int = 3, width: int = 4):
        raise TypeError("width must be even")

    backbones.register(picky, name="picky_net")
    try:
        with pytest.raises(SpecError, match=r"backbone \(picky_net\): width must be even"):
            medcam.build_model({"backbone": "picky_net", "num_classes": 2})
    finally:
        backbones.unregister("picky_net")


def test_build_backbone_alone():
    net = medcam.build_backbone({"name": "tiny_cnn", "width": 8, "out_indices": [-1]}, in_chans=1)
    assert net.feature_info.channels() == [64] and net.spec["width"] == 8
    assert [tuple(t.shape) for t in net(torch.rand(1, 1, 64, 64))] == [(1, 64, 2, 2)]


def test_build_segmenter():
    seg = medcam.build_segmenter({"name": "spec_test_seg", "in_chans": 1, "num_classes": 2})
    assert isinstance(seg, MedcamSegmenter) and seg.num_classes == 2
    logits = seg(torch.rand(2, 1, 20, 24))
    assert logits.shape == (2, 2, 20, 24)
    masks = seg.predict_mask(torch.rand(2, 1, 20, 24))
    assert masks.shape == (2, 2, 20, 24) and masks.dtype == torch.bool
    one = medcam.build_segmenter({"name": "spec_test_seg"})
    assert one.predict_mask(torch.rand(1, 3, 8, 8)).shape == (1, 8, 8)
    assert medcam.build_segmenter(seg.spec).spec == seg.spec


def test_build_loss_weights_and_logs():
    model = medcam.build_model({"backbone": "spec_test_net", "num_classes": 3,
                                "loss": [{"name": "ce"}, {"name": "ce", "weight": 0.5, "label_smoothing": 0.1}]})
    loss = medcam.build_loss(model.spec, num_classes=3)
    batch = {"image": torch.rand(4, 3, 16, 16), "label": torch.tensor([0, 1, 2, 1])}
    out = model(batch["image"])
    total, logs = loss(out, batch, model)
    plain = torch.nn.functional.cross_entropy(out.logits, batch["label"])
    smooth = torch.nn.functional.cross_entropy(out.logits, batch["label"], label_smoothing=0.1)
    assert torch.allclose(total, plain + 0.5 * smooth)
    assert set(logs) == {"ce", "ce#2", "total"} and logs["ce"] == pytest.approx(float(plain.detach()))
