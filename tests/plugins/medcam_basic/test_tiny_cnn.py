"""TinyCNN: levels, out_indices, forward_from, checkpoint loading."""
from __future__ import annotations

import pytest
import torch

import medcam
from medcam.errors import CheckpointError, SpecError


def test_levels_match_feature_info_for_odd_sizes():
    net = medcam.build_backbone({"name": "tiny_cnn", "width": 4}, in_chans=1)
    levels = net(torch.rand(2, 1, 50, 35))
    assert [f.shape[1] for f in levels] == net.feature_info.channels() == [4, 8, 16, 32]
    for f, s in zip(levels, net.feature_info.strides()):
        assert f.shape[2:] == (-(-50 // s), -(-35 // s))


def test_out_indices_and_forward_from():
    net = medcam.build_backbone({"name": "tiny_cnn", "width": 4})
    net.eval()
    x = torch.rand(1, 3, 64, 64)
    levels = net(x)
    for k in range(3):
        later = net.forward_from(levels[k], k)
        assert len(later) == 3 - k and all(torch.allclose(a, b) for a, b in zip(later, levels[k + 1:]))
    sub = medcam.build_backbone({"name": "tiny_cnn", "width": 4, "out_indices": [1, -1]})
    assert sub.feature_info.strides() == [8, 32]
    with pytest.raises(SpecError, match="index 4 is out of range"):
        medcam.build_backbone({"name": "tiny_cnn", "out_indices": [4]})


def test_checkpoint_path(tmp_path):
    src = medcam.build_backbone({"name": "tiny_cnn", "width": 4})
    torch.save({"state_dict": src.state_dict()}, tmp_path / "w.pt")
    dst = medcam.build_backbone({"name": "tiny_cnn", "width": 4, "checkpoint_path": str(tmp_path / "w.pt")})
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))
    with pytest.raises(CheckpointError, match="does not fit"):
        medcam.build_backbone({"name": "tiny_cnn", "width": 8, "checkpoint_path": str(tmp_path / "w.pt")})
    with pytest.raises(FileNotFoundError):
        medcam.build_backbone({"name": "tiny_cnn", "checkpoint_path": str(tmp_path / "none.pt")})
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(CheckpointError, match="is not a weights file"):
        medcam.build_backbone({"name": "tiny_cnn", "checkpoint_path": str(tmp_path / "notes.txt")})


def test_checkpoint_path_takes_the_backbone_of_a_saved_medcam_model(tmp_path):
    classifier = medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 3})
    with torch.no_grad():
        for p in classifier.backbone.parameters():
            p.uniform_(-1, 1)
    medcam.save(classifier, tmp_path / "model.pt")
    wsol = medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4, "checkpoint_path": str(tmp_path / "model.pt")},
                               "head": {"name": "fpm", "hidden": 8}, "num_classes": 3})
    saved, loaded = classifier.backbone.state_dict(), wsol.backbone.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
