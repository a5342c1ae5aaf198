"""medcam_timm.loading: checkpoint_path with state dicts built here (random weights, no downloads)."""
from __future__ import annotations

import pytest
import timm
import torch

import medcam
from medcam.build import build_backbone
from medcam.errors import CheckpointError
from medcam.state_dict import read_state_dict


def _timm_state(name: str, **kwargs) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return timm.create_model(name, **kwargs).state_dict()  # with its 1000-way classifier


def _levels(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


def _same_levels(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


@pytest.fixture(scope="module")
def resnet18_state():
    return _timm_state("resnet18")


def test_timm_state_dict_gives_timm_features(tmp_path, resnet18_state):
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18_state, path)
    model = build_backbone({"name": "resnet18", "checkpoint_path": str(path)})
    reference = timm.create_model("resnet18")
    reference.load_state_dict(resnet18_state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference.eval().forward_intermediates(x, intermediates_only=True)
    _same_levels(_levels(model, x), expected)


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module_prefix", "safetensors"])
def test_wrapped_state_dicts(tmp_path, resnet18_state, wrap):
    path = tmp_path / ("w.safetensors" if wrap == "safetensors" else "w.pth")
    if wrap == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in resnet18_state.items()}, str(path))
    elif wrap == "module_prefix":
        torch.save({"model": {f"module.{k}": v for k, v in resnet18_state.items()}, "epoch": 3}, path)
    else:
        torch.save({wrap: resnet18_state, "optimizer": {"lr": torch.tensor(0.1)}}, path)
    model = build_backbone({"name": "resnet18", "checkpoint_path": str(path), "out_indices": [4]})
    torch.testing.assert_close(model.body.layer4[1].conv2.weight, resnet18_state["layer4.1.conv2.weight"])


def test_in_chans_1_sums_rgb_filters_like_timm(tmp_path, resnet18_state):
    """A 3-channel file on a 1-channel backbone: conv1 = sum of the RGB filters, so a grey image
    gives exactly the features the 3-channel model gives for the same image repeated on R, G and B."""
    path = tmp_path / "rgb.pth"
    torch.save(resnet18_state, path)
    grey_model = build_backbone({"name": "resnet18", "checkpoint_path": str(path)}, in_chans=1)
    rgb_model = build_backbone({"name": "resnet18", "checkpoint_path": str(path)}, in_chans=3)
    torch.testing.assert_close(grey_model.body.conv1.weight, resnet18_state["conv1.weight"].sum(1, keepdim=True))
    grey = torch.randn(2, 1, 64, 64)
    _same_levels(_levels(grey_model, grey), _levels(rgb_model, grey.repeat(1, 3, 1, 1)))


def test_in_chans_2_repeats_and_scales(tmp_path, resnet18_state):
    path = tmp_path / "rgb.pth"
    torch.save(resnet18_state, path)
    model = build_backbone({"name": "resnet18", "checkpoint_path": str(path), "out_indices": [0]}, in_chans=2)
    w = resnet18_state["conv1.weight"]
    torch.testing.assert_close(model.body.conv1.weight, w[:, :2] * 1.5)


def test_one_channel_file_on_a_three_channel_backbone(tmp_path, resnet18_state):
    grey = dict(resnet18_state, **{"conv1.weight": resnet18_state["conv1.weight"][:, :1].clone()})
    path = tmp_path / "grey.pth"
    torch.save(grey, path)
    model = build_backbone({"name": "resnet18", "checkpoint_path": str(path), "out_indices": [0]}, in_chans=3)
    torch.testing.assert_close(model.body.conv1.weight, grey["conv1.weight"].repeat(1, 3, 1, 1) / 3)


def test_mismatched_keys_are_listed(tmp_path, resnet18_state):
    wrong = tmp_path / "resnet34.pth"
    torch.save(_timm_state("resnet34"), wrong)
    with pytest.raises(CheckpointError, match=r"does not fit backbone 'resnet18'.*unexpected keys: layer1\.2\.conv1"
                                              r"\.weight.*Accepted: a timm or torchvision 'resnet18' state dict"):
        build_backbone({"name": "resnet18", "checkpoint_path": str(wrong)})
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in resnet18_state.items() if not k.startswith("layer4.1.")}, partial)
    with pytest.raises(CheckpointError, match=r"missing keys: layer4\.1\.conv1\.weight, layer4\.1\.bn1\.weight"):
        build_backbone({"name": "resnet18", "checkpoint_path": str(partial)})
    # keys the backbone does not need (after the last requested level) may be absent
    model = build_backbone({"name": "resnet18", "checkpoint_path": str(partial), "out_indices": [0, 3]})
    torch.testing.assert_close(model.body.layer3[0].conv1.weight, resnet18_state["layer3.0.conv1.weight"])


def test_shape_mismatch_and_bad_files(tmp_path):
    state = _timm_state("resnet18")
    state["layer2.0.conv1.weight"] = torch.zeros(128, 64, 5, 5)
    path = tmp_path / "bad_shape.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"shape mismatches \(file vs model\): layer2\.0\.conv1\.weight "
                                              r"\(128, 64, 5, 5\) vs \(128, 64, 3, 3\)"):
        build_backbone({"name": "resnet18", "checkpoint_path": str(path)})
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a weights file"):
        read_state_dict(garbage)
    no_tensors = tmp_path / "meta.pth"
    torch.save({"epoch": 3, "note": "x"}, no_tensors)
    with pytest.raises(CheckpointError, match=r"not a state dict: entries \['epoch', 'note'\]"):
        read_state_dict(no_tensors)


def test_backbone_saved_by_medcam_and_medcam_checkpoint(tmp_path):
    """pvt_v2_b0 flattens 'stages.0' to 'stages_0': both naming schemes load."""
    source = build_backbone("pvt_v2_b0", in_chans=1)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.01 * torch.randn_like(p))
    x = torch.randn(1, 1, 64, 64)
    expected = _levels(source, x)

    saved = tmp_path / "backbone.pth"
    torch.save(source.state_dict(), saved)  # keys "body.stages_0...."
    again = build_backbone({"name": "pvt_v2_b0", "checkpoint_path": str(saved)}, in_chans=1)
    _same_levels(_levels(again, x), expected)

    model = medcam.build_model({"backbone": "pvt_v2_b0", "num_classes": 2, "in_chans": 1})
    model.backbone.load_state_dict(source.state_dict())
    ckpt = medcam.save(model, tmp_path / "model.pt")
    from_ckpt = build_backbone({"name": "pvt_v2_b0", "checkpoint_path": str(ckpt)}, in_chans=1)
    _same_levels(_levels(from_ckpt, x), expected)


def test_timm_namespace_checkpoint(tmp_path):
    state = _timm_state("resnet10t")
    path = tmp_path / "r10t.pth"
    torch.save(state, path)
    model = build_backbone({"name": "timm/resnet10t", "checkpoint_path": str(path)}, in_chans=1)
    torch.testing.assert_close(model.body.conv1[0].weight, state["conv1.0.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(model.body.layer4[0].conv2.weight, state["layer4.0.conv2.weight"])


def test_timm_namespace_checkpoint_into_a_getter_extractor(tmp_path):
    """ViT features come from timm's FeatureGetterNet (weights under 'model.'): names are still matched."""
    state = _timm_state("vit_tiny_patch16_224", img_size=64)
    path = tmp_path / "vit.pth"
    torch.save(state, path)
    model = build_backbone({"name": "timm/vit_tiny_patch16_224", "checkpoint_path": str(path),
                            "model_kwargs": {"img_size": 64}, "out_indices": [-1]})
    reference = timm.create_model("vit_tiny_patch16_224", img_size=64)
    reference.load_state_dict(state)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = reference.eval().forward_intermediates(x, indices=[11], intermediates_only=True)
    _same_levels(_levels(model, x), expected)
