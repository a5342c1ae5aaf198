"""medcam_vmamba.factories: weights through spec parameters (pretrained, checkpoint_path)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from vmamba_official_layout import export_official

import medcam
from medcam.errors import CheckpointError, SpecError
from medcam_vmamba.configs import CONFIGS, make_config
from medcam_vmamba.factories import build_backbone

TINY = dict(depths=[1, 1, 1, 1], dims=16, d_state=2, ssm_ratio=1.0, mlp_ratio=2.0, gate=False, conv_bias=False,
            downsample="v3", patch_embed="v2", drop_path_rate=0.0)


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, medcam.MedcamModel]:
    torch.manual_seed(1)
    source = medcam.build_model({"backbone": {"name": "vmamba", **TINY, "out_norm": False},
                                 "head": "vmamba_classifier", "num_classes": 1000}).eval()
    path = tmp_path_factory.mktemp("vmamba") / "official.pth"
    torch.save({"model": export_official(source), "epoch": 1}, path)
    return path, source


def test_spec_alone_reproduces_the_official_logits(official) -> None:
    path, source = official
    torch.manual_seed(2)
    model = medcam.build_model({"backbone": {"name": "vmamba", **TINY, "out_norm": False, "checkpoint_path": str(path)},
                                "head": {"name": "vmamba_classifier", "checkpoint_path": str(path)},
                                "num_classes": 1000}).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x).logits, source(x).logits)
    assert model.backbone.load_report.ignored == ["classifier.norm.weight", "classifier.norm.bias",
                                                  "classifier.head.weight", "classifier.head.bias"]
    assert len(model.head.load_report.loaded) == 4


def test_head_checkpoint_needs_1000_classes(official) -> None:
    path, _ = official
    with pytest.raises(CheckpointError,
                       match=r"shape mismatches \(file vs model\): fc\.weight \(1000, 128\) vs \(3, 128\)"):
        medcam.build_model({"backbone": {"name": "vmamba", **TINY},
                            "head": {"name": "vmamba_classifier", "checkpoint_path": str(path)}, "num_classes": 3})


def test_pretrained_downloads_the_official_file(official, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, source = official
    urls = []
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda url, dst, progress=True: (urls.append(url), Path(dst).write_bytes(path.read_bytes())))
    config = make_config(**TINY, checkpoint=CONFIGS["vmamba_tiny_s1l8"].checkpoint)  # as if it were that model
    model = build_backbone("vmamba_tiny_s1l8", config, pretrained=True, out_norm=False).eval()
    assert urls == [CONFIGS["vmamba_tiny_s1l8"].url]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(x), source.backbone(x)):
            assert torch.equal(a, b)


def test_weight_option_errors(official) -> None:
    path, _ = official
    with pytest.raises(SpecError, match="either pretrained=true or checkpoint_path"):
        build_backbone("vmamba_tiny", CONFIGS["vmamba_tiny_s1l8"], pretrained=True, checkpoint_path=str(path))
    with pytest.raises(CheckpointError, match="no official checkpoint"):
        build_backbone("custom", make_config(**TINY), pretrained=True)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_backbone("custom", make_config(**TINY), checkpoint_path=str(path.parent / "missing.pth"))
