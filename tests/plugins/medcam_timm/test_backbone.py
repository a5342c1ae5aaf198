"""medcam_timm.backbone: the generic wrapper, out_indices, forward_from, timm/<name>, argument errors."""
from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import medcam
import medcam.weights as medcam_weights
from medcam.build import build_backbone
from medcam.errors import CheckpointError, ShapeError, SpecError, UnknownNameError
from medcam_timm import backbone as backbone_module
from medcam_timm.backbone import TimmBackbone


@pytest.fixture(scope="module")
def resnet18() -> TimmBackbone:
    return build_backbone("resnet18", in_chans=3).eval()


def _forbid_building(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a model was built before the arguments were checked")

    monkeypatch.setattr(backbone_module.timm, "create_model", fail)


def test_levels_match_timm_forward_intermediates(resnet18):
    """The wrapper returns exactly timm's own intermediates (an independent reference path in timm)."""
    full = timm.create_model("resnet18", num_classes=0).eval()
    full.load_state_dict(resnet18.body.state_dict())  # resnet: the extractor keeps timm's names
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = resnet18(x)
        ref = full.forward_intermediates(x, intermediates_only=True)
    assert len(ours) == len(ref) == 5
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_out_indices_subset_and_forward_from():
    model = build_backbone({"name": "resnet18", "out_indices": [1, -1]}, in_chans=1).eval()
    assert model.feature_info.channels() == [64, 512] and model.feature_info.strides() == [4, 32]
    assert model.feature_info.modules() == ["body.layer1", "body.layer4"] and model.feature_info.cam_level == 1
    x = torch.randn(1, 1, 96, 64)
    with torch.no_grad():
        levels = model(x)
        assert [tuple(t.shape) for t in levels] == [(1, 64, 24, 16), (1, 512, 3, 2)]
        (last,) = model.forward_from(levels[0], 0)
        torch.testing.assert_close(last, levels[1])
        assert model.forward_from(levels[1], -1) == []


def test_forward_from_reruns_the_last_stage_on_a_masked_map(resnet18):
    """What WSOL methods do: mask the stage-3 map and re-score it with stage 4."""
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        levels = resnet18(x)
        masked = levels[3] * (torch.rand_like(levels[3][:, :1]) > 0.5)
        (out,) = resnet18.forward_from(masked, 3)
        expected = resnet18.body.layer4(masked)
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, levels[4])


def test_bad_out_indices_fail_before_building(monkeypatch):
    _forbid_building(monkeypatch)
    with pytest.raises(SpecError, match=r"index 5 is out of range; this backbone has 5 levels \(valid: 0..4"):
        build_backbone({"name": "resnet50", "out_indices": [0, 5]})
    with pytest.raises(SpecError, match="has 4 levels"):
        build_backbone({"name": "pvt_v2_b0", "out_indices": [-5]})
    with pytest.raises(SpecError, match="name a level twice"):
        build_backbone({"name": "efficientnet_b0", "out_indices": [5, -1]})


def test_argument_errors(monkeypatch, tmp_path):
    _forbid_building(monkeypatch)
    with pytest.raises(SpecError, match=r"drop_path_rate must be a number in \[0, 1\), got 1.5"):
        build_backbone({"name": "resnet18", "drop_path_rate": 1.5})
    with pytest.raises(SpecError, match="in_chans must be a positive integer"):
        build_backbone("resnet18", in_chans=0)
    with pytest.raises(SpecError, match="not both"):
        build_backbone({"name": "resnet18", "pretrained": True, "checkpoint_path": str(tmp_path / "w.pt")})
    with pytest.raises(FileNotFoundError, match="w.pt"):
        build_backbone({"name": "resnet18", "checkpoint_path": str(tmp_path / "w.pt")})


def test_input_and_forward_from_shape_errors(resnet18):
    with pytest.raises(ShapeError, match=r"expected images \(B, 3, H, W\), got \(2, 1, 32, 32\)"):
        resnet18(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ShapeError, match=r"level 3 maps are \(B, 256, h, w\)"):
        resnet18.forward_from(torch.zeros(1, 512, 2, 2), 3)
    with pytest.raises(SpecError, match="level 5 is out of range for 5 levels"):
        resnet18.forward_from(torch.zeros(1, 512, 2, 2), 5)


def test_drop_rates_reach_timm():
    dense = build_backbone({"name": "densenet121", "drop_rate": 0.2, "out_indices": [0, 1]})
    rates = {m.drop_rate for m in dense.modules() if type(m).__name__ == "DenseLayer"}
    assert rates == {0.2}
    pvt = build_backbone({"name": "pvt_v2_b0", "drop_rate": 0.1, "drop_path_rate": 0.3})
    assert any(isinstance(m, nn.Dropout) and m.p == 0.1 for m in pvt.modules())
    drop_paths = [m.drop_prob for m in pvt.modules() if type(m).__name__ == "DropPath"]
    assert drop_paths and max(drop_paths) == pytest.approx(0.3)


def test_pretrained_without_timm_weights_is_a_clear_error(monkeypatch):
    _forbid_building(monkeypatch)
    with pytest.raises(CheckpointError, match=r"no pretrained weights for 'efficientnet_b6'.*timm/tf_efficientnet_b6"):
        build_backbone({"name": "efficientnet_b6", "pretrained": True})


def test_pretrained_weights_go_through_timm_which_sums_rgb_filters_for_one_channel(monkeypatch):
    """timm's hub download is replaced by a state dict built here; the rest is timm's real loading path."""
    import timm.models._builder as timm_builder

    torch.manual_seed(4)
    published = timm.create_model("resnet18").state_dict()  # 3-channel conv1, 1000-way fc
    requested = []

    def from_cache(hub_id, *args, **kwargs):
        requested.append(hub_id)
        return {k: v.clone() for k, v in published.items()}

    monkeypatch.setattr(timm_builder, "load_state_dict_from_hf", from_cache)
    monkeypatch.setattr(medcam_weights, "hub_reachable", lambda *args, **kwargs: True)  # not cached: "download"
    model = build_backbone({"name": "resnet18", "pretrained": True}, in_chans=1)
    assert requested == ["timm/resnet18.a1_in1k"]
    torch.testing.assert_close(model.body.conv1.weight, published["conv1.weight"].sum(dim=1, keepdim=True))
    torch.testing.assert_close(model.body.layer4[1].bn2.running_var, published["layer4.1.bn2.running_var"])


def test_pretrained_download_failure_is_a_clear_error(monkeypatch):
    def offline(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return real(name, pretrained=False, **kwargs)

    real = timm.create_model
    monkeypatch.setattr(backbone_module.timm, "create_model", offline)
    monkeypatch.setattr(medcam_weights, "hub_reachable", lambda *args, **kwargs: True)  # the probe passes, the download fails
    with pytest.raises(CheckpointError, match=r"pretrained weights for 'resnet18' \(from timm/resnet18.a1_in1k\).*"
                                              r"Hugging Face cache.*checkpoint_path") as err:
        build_backbone({"name": "resnet18", "pretrained": True})
    assert isinstance(err.value.__cause__, OSError)


def test_timm_namespace_builds_any_timm_model():
    model = build_backbone({"name": "timm/resnet10t", "out_indices": [2, 3, 4]}, in_chans=1)
    assert model.feature_info.channels() == [128, 256, 512] and model.feature_info.strides() == [8, 16, 32]
    assert model.spec["name"] == "timm/resnet10t" and model.supports_forward_from
    assert [tuple(t.shape) for t in model(torch.randn(1, 1, 64, 64))] == [(1, 128, 8, 8), (1, 256, 4, 4),
                                                                           (1, 512, 2, 2)]


def test_timm_namespace_token_model_returns_maps_without_forward_from():
    model = build_backbone({"name": "timm/vit_tiny_patch16_224", "out_indices": [-1],
                            "model_kwargs": {"img_size": 64}})
    (tokens_as_map,) = model(torch.randn(2, 3, 64, 64))
    assert tuple(tokens_as_map.shape) == (2, 192, 4, 4) and model.feature_info.strides() == [16]
    assert model.feature_info.modules() == ["body.model.blocks.11"]
    assert not model.supports_forward_from
    with pytest.raises(NotImplementedError, match="FeatureGetterNet"):
        model.forward_from(tokens_as_map, 0)


def test_timm_namespace_errors(monkeypatch):
    with pytest.raises(UnknownNameError, match=r"unknown timm model 'resnet5o'; did you mean 'resnet50'"):
        build_backbone("timm/resnet5o")
    with pytest.raises(UnknownNameError, match=r"no weight tag 'a9_in1k'; did you mean 'resnet50.a1_in1k'"):
        build_backbone("timm/resnet50.a9_in1k")
    with pytest.raises(SpecError, match="model_kwargs.out_indices: set by medcam"):
        build_backbone({"name": "timm/resnet10t", "model_kwargs": {"out_indices": [1]}})
    with pytest.raises(SpecError, match=r"index 7 is out of range; this backbone has 5 levels"):
        build_backbone({"name": "timm/resnet10t", "out_indices": [7]})

    real = timm.create_model

    def no_features(name, **kwargs):
        if kwargs.get("features_only"):
            raise RuntimeError("features_only not implemented for this model")
        return real(name, **kwargs)

    monkeypatch.setattr(backbone_module.timm, "create_model", no_features)
    with pytest.raises(SpecError, match="'resnet10t' does not support feature extraction"):
        build_backbone("timm/resnet10t")


def test_build_model_example_from_the_docs():
    model = medcam.build_model({"backbone": {"name": "densenet121"}, "num_classes": 14, "in_chans": 1,
                                "multilabel": True})
    out = model(torch.rand(2, 1, 64, 64))
    assert tuple(out.logits.shape) == (2, 14)
    assert model.feature_info.channels()[-1] == 1024
    rebuilt = medcam.build_model(model.spec)
    assert rebuilt.spec == model.spec


def test_gradient_checkpointing_gives_the_same_gradients():
    model = build_backbone({"name": "resnet18", "out_indices": [4]})
    x = torch.randn(2, 3, 64, 64)
    model(x)[0].sum().backward()
    plain = model.body.layer2[0].conv1.weight.grad.clone()
    model.zero_grad()
    model.set_grad_checkpointing(True)
    model(x)[0].sum().backward()
    torch.testing.assert_close(model.body.layer2[0].conv1.weight.grad, plain)
