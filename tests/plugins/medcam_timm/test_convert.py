"""medcam_timm.convert: torchvision and official-release state dicts give the same features as their source.

Each test builds the source model here with random weights, saves its state dict,
loads it through ``checkpoint_path`` and compares our levels with the source
model's own intermediate outputs (computed independently, from torchvision's modules).
"""
from __future__ import annotations

import re

import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.vgg import cfgs as vgg_cfgs
from torchvision.models.vgg import make_layers

from medcam.build import build_backbone
from medcam_timm.convert import legacy_densenet_to_timm, to_timm, torchvision_efficientnet_to_timm

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _randomize_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BN statistics, so a wrong mapping of running stats shows up."""
    g = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return model.eval()


def _load(tmp_path, name: str, state: dict, **spec) -> torch.nn.Module:
    path = tmp_path / f"{name}.pth"
    torch.save(state, path)
    return build_backbone({"name": name, "checkpoint_path": str(path), **spec}).eval()


def _compare(ours: torch.nn.Module, expected: list[torch.Tensor]) -> None:
    with torch.no_grad():
        levels = ours(X)
    assert len(levels) == len(expected)
    for i, (a, b) in enumerate(zip(levels, expected)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=f"level {i}")


def test_torchvision_resnet(tmp_path):
    tv = _randomize_bn(torchvision.models.resnet18())
    with torch.no_grad():
        x = tv.relu(tv.bn1(tv.conv1(X)))
        expected = [x]
        x = tv.maxpool(x)
        for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
            x = layer(x)
            expected.append(x)
    _compare(_load(tmp_path, "resnet18", tv.state_dict()), expected)


def _sequential_taps(features: torch.nn.Sequential, taps: list[int], x: torch.Tensor) -> list[torch.Tensor]:
    out = []
    with torch.no_grad():
        for i, layer in enumerate(features):
            x = layer(x)
            if i in taps:
                out.append(x.clone())
    return out


def test_torchvision_vgg_bn(tmp_path):
    # torchvision's VGG-11-BN convolutions (its 120M-weight classifier is replaced by small stand-ins:
    # classifier.* is not part of the backbone and must simply be dropped)
    features = _randomize_bn(make_layers(vgg_cfgs["A"], batch_norm=True))
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state.update({"classifier.0.weight": torch.zeros(8, 25088), "classifier.6.bias": torch.zeros(1000)})
    expected = _sequential_taps(features, [2, 6, 13, 20, 27, 28], X)
    _compare(_load(tmp_path, "vgg11_bn", state), expected)


def _densenet_levels(tv: torchvision.models.DenseNet) -> list[torch.Tensor]:
    f = tv.features
    with torch.no_grad():
        x = f.relu0(f.norm0(f.conv0(X)))
        out = [x]
        x = f.denseblock1(f.pool0(x))
        out.append(x)
        x = f.denseblock2(f.transition1(x))
        out.append(x)
        x = f.denseblock3(f.transition2(x))
        out.append(x)
        out.append(F.relu(f.norm5(f.denseblock4(f.transition3(x)))))
    return out


@pytest.mark.slow
def test_torchvision_densenet_and_chexnet_style_files(tmp_path):
    tv = _randomize_bn(torchvision.models.densenet121())
    expected = _densenet_levels(tv)
    _compare(_load(tmp_path, "densenet121", tv.state_dict()), expected)
    # CheXNet's released file: DataParallel + attribute prefix, legacy 'norm.1' names, 14-way classifier.0
    legacy = {re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", k): v for k, v in tv.state_dict().items()
              if not k.startswith("classifier")}
    assert any(".norm.1." in k for k in legacy)
    legacy.update({"classifier.0.weight": torch.zeros(14, 1024), "classifier.0.bias": torch.zeros(14)})
    chexnet = {f"module.densenet121.{k}": v for k, v in legacy.items()}
    _compare(_load(tmp_path, "densenet121", {"state_dict": chexnet, "epoch": torch.tensor(5)}), expected)


def _efficientnet_levels(tv: torchvision.models.EfficientNet) -> list[torch.Tensor]:
    # timm blocks.0/1/2/4/6 are torchvision features.1/2/3/5/7; timm conv_head+bn2 is features.8
    return _sequential_taps(tv.features, [1, 2, 3, 5, 7, 8], X)


def test_torchvision_efficientnet(tmp_path):
    tv = _randomize_bn(torchvision.models.efficientnet_b0())
    ours = _load(tmp_path, "efficientnet_b0", tv.state_dict())
    assert len(_efficientnet_levels(tv)) == 6
    _compare(ours, _efficientnet_levels(tv))


@pytest.mark.slow
def test_torchvision_efficientnet_b5_uses_its_batchnorm_eps(tmp_path):
    tv = _randomize_bn(torchvision.models.efficientnet_b5())
    ours = _load(tmp_path, "efficientnet_b5", tv.state_dict())
    assert {m.eps for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-3}
    _compare(ours, _efficientnet_levels(tv))


def test_efficientnet_key_mapping_covers_every_timm_key():
    tv_keys = torchvision.models.efficientnet_b1().state_dict()
    converted = torchvision_efficientnet_to_timm(tv_keys)
    timm_state = timm.create_model("efficientnet_b1", num_classes=0).state_dict()
    assert {k for k in converted if not k.startswith("classifier.")} == set(timm_state)
    assert all(converted[k].shape == timm_state[k].shape for k in timm_state)


def _to_official_pvt(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm PVT v2 names -> the names of the official release (whai362/PVT), written for this test."""
    out = {}
    for key, value in state.items():
        key = key.replace("patch_embed.", "patch_embed1.")
        key = re.sub(r"^stages\.(\d)\.downsample\.", lambda m: f"patch_embed{int(m.group(1)) + 1}.", key)
        key = re.sub(r"^stages\.(\d)\.blocks\.(\d+)\.", lambda m: f"block{int(m.group(1)) + 1}.{m.group(2)}.", key)
        key = re.sub(r"^stages\.(\d)\.norm\.", lambda m: f"norm{int(m.group(1)) + 1}.", key)
        key = key.replace("mlp.dwconv.", "mlp.dwconv.dwconv.")
        out[key] = value
    return out


def test_official_pvt_v2_release(tmp_path):
    torch.manual_seed(3)
    source = timm.create_model("pvt_v2_b0").eval()
    official = _to_official_pvt(source.state_dict())
    assert "block1.0.attn.q.weight" in official and "patch_embed2.proj.weight" in official
    with torch.no_grad():
        expected = source.forward_intermediates(X, intermediates_only=True)
    _compare(_load(tmp_path, "pvt_v2_b0", official), expected)


def test_to_timm_dialects():
    tv_resnet = torchvision.models.resnet18().state_dict()
    assert to_timm("resnet", tv_resnet)[1] == "timm"  # same names: nothing to rename
    assert to_timm("vgg", {"features.0.weight": torch.zeros(1), "classifier.6.weight": torch.zeros(1)}) == (
        {"features.0.weight": torch.zeros(1)}, "torchvision")
    renamed = legacy_densenet_to_timm({"features.denseblock1.denselayer3.norm.2.running_var": torch.ones(1),
                                       "features.norm5.weight": torch.ones(1)})
    assert set(renamed) == {"features.denseblock1.denselayer3.norm2.running_var", "features.norm5.weight"}
    assert to_timm(None, {"features.0.0.weight": torch.zeros(1)})[1] == "timm"


def test_a_family_without_torchvision_weights_says_what_it_accepts(tmp_path):
    state = torchvision.models.resnet18().state_dict()
    with pytest.raises(Exception, match=r"does not fit backbone 'pvt_v2_b0'.*Accepted: a timm 'pvt_v2_b0' state "
                                        r"dict or one from the official PVT v2 release"):
        _load(tmp_path, "pvt_v2_b0", state)
