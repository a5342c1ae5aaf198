"""medcam_vmamba.entries: registered names, light metadata, specs and presets."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import medcam
from medcam.errors import SpecError
from medcam.registry import backbones, heads, models
from medcam.spec import resolve_model_spec
from medcam_vmamba.configs import CONFIGS

BACKBONES = sorted(CONFIGS) + ["vmamba_tiny", "vmamba_small", "vmamba_base", "vmamba"]
TINY = {"name": "vmamba", "depths": [1, 1, 1, 1], "dims": 16, "d_state": 2}


def test_names_are_registered() -> None:
    assert set(BACKBONES) <= set(backbones.list())
    assert "vmamba_classifier" in heads.list()
    assert {f"{n}_in1k" for n in CONFIGS} <= set(models.list())
    assert all(backbones.entry(n).provider == "medcam" for n in BACKBONES)


def test_metadata_without_importing_model_code() -> None:
    code = (
        "import sys, json\n"
        "from medcam.registry import backbones, heads, models\n"
        "infos = [backbones.info(n) for n in backbones.list('*vmamba*')]\n"
        "heads.info('vmamba_classifier'); models.info('vmamba_tiny_s1l8_in1k')\n"
        "heavy = [m for m in ('torch', 'triton', 'medcam_vmamba.vssm', 'medcam_vmamba.kernels') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'tiny': backbones.info('vmamba_tiny')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    tiny = result["tiny"]
    assert tiny["channels"] == [96, 192, 384, 768] and tiny["strides"] == [4, 8, 16, 32]
    assert tiny["cam_level"] == -1 and tiny["layout"] == "tokens" and tiny["params_1k"] == 30.25
    assert "alias of vmamba_tiny_s1l8" in tiny["summary"] and "NeurIPS 2024" in tiny["citation"]
    assert tiny["parameters"]["drop_path_rate"] == 0.2 and "in_chans" not in tiny["parameters"]


def test_sr_backbone_metadata() -> None:
    info = backbones.info("vmamba_tiny_sr")
    assert "Scientific Reports 2024" in info["citation"] and info["params_1k"] == 32.48
    assert "20240220" in info["checkpoint"]


def test_preset_resolves_to_the_official_classifier() -> None:
    spec = resolve_model_spec("vmamba_tiny_s1l8_in1k")
    assert spec["backbone"] == {"name": "vmamba_tiny_s1l8", "pretrained": False, "checkpoint_path": None,
                                "out_indices": None, "drop_path_rate": 0.2, "out_norm": False,
                                "grad_checkpointing": False, "kernel_backend": "auto"}
    assert spec["head"]["name"] == "vmamba_classifier" and spec["num_classes"] == 1000
    assert spec["preprocess"]["size"] == [224, 224]
    with torch.device("meta"):
        model = medcam.build_model("vanilla_vmamba_tiny_in1k")
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == 22.89


def test_spec_errors_name_the_path() -> None:
    with pytest.raises(SpecError, match="backbone.out_norms: unknown parameter; did you mean 'out_norm'"):
        resolve_model_spec({"backbone": {"name": "vmamba_tiny", "out_norms": False}, "num_classes": 2})
    with pytest.raises(SpecError, match="backbone.in_chans: set by medcam"):
        resolve_model_spec({"backbone": {"name": "vmamba_tiny", "in_chans": 1}, "num_classes": 2})
    with pytest.raises(SpecError, match="depths"):
        medcam.build_backbone({"name": "vmamba", "depths": [1, 1, 1]})
    with pytest.raises(SpecError, match="out_indices"):
        medcam.build_backbone({**TINY, "out_indices": [5]})


def test_spec_round_trip_and_medcam_checkpoint(tmp_path: Path) -> None:
    model = medcam.build_model({"backbone": TINY, "num_classes": 2, "in_chans": 1}).eval()
    assert model.backbone.patch_embed[0].in_channels == 1
    assert model.spec["backbone"]["depths"] == [1, 1, 1, 1]
    json.dumps(model.spec)
    again = medcam.build_model(model.spec)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    path = medcam.save(model, tmp_path / "tiny.pt")
    loaded = medcam.load(path)
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, model(x).logits)


def test_checkpoint_path_takes_the_backbone_of_a_saved_medcam_model(tmp_path: Path) -> None:
    """What benchmark ``init_from`` does: a new model starts from a trained model's VMamba backbone."""
    from medcam.errors import CheckpointError

    trained = medcam.build_model({"backbone": TINY, "num_classes": 3})
    with torch.no_grad():
        for p in trained.backbone.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = medcam.save(trained, tmp_path / "trained.pt")
    started = medcam.build_model({"backbone": {**TINY, "checkpoint_path": str(path)},
                                  "head": {"name": "fpm", "hidden": 8}, "num_classes": 3})
    saved, loaded = trained.backbone.state_dict(), started.backbone.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
    other = medcam.save(medcam.build_model({"backbone": "tiny_cnn", "num_classes": 3}), tmp_path / "cnn.pt")
    with pytest.raises(CheckpointError, match="does not fit this model: missing"):
        medcam.build_backbone({**TINY, "checkpoint_path": str(other)})
