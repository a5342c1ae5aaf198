"""medcam_vmamba.checkpoint: official state dicts (built here, in every published layout) load exactly."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from vmamba_official_layout import export_official, official_shapes, random_official_state, to_legacy, to_single_file

import medcam
import medcam_vmamba
from medcam.errors import CheckpointError
from medcam_vmamba.checkpoint import guess_config, to_official_layout
from medcam_vmamba.configs import CONFIGS

V2 = dict(depths=[1, 1, 2, 1], dims=16, d_state=2, ssm_ratio=1.0, mlp_ratio=2.0, gate=False, conv_bias=False,
          downsample="v3", patch_embed="v2", drop_path_rate=0.0)
VANILLA = dict(depths=[1, 1, 1, 1], dims=16, d_state=4, ssm_ratio=2.0, mlp_ratio=0.0, gate=True, conv_bias=True,
               downsample="v1", patch_embed="v1", drop_path_rate=0.0)
VARIANTS = {"v2": V2, "vanilla": VANILLA}


class TrainingConfig(dict):
    """Stands for the yacs config official checkpoints pickle next to the weights."""

    def __init__(self):
        super().__init__(MODEL={"TYPE": "vssm"})
        self.frozen = True


def classifier(variant: dict, seed: int, num_classes: int = 1000, in_chans: int = 3, head: str = "vmamba_classifier",
               out_norm: bool = False, **backbone) -> medcam.MedcamModel:
    torch.manual_seed(seed)
    spec = {"backbone": {"name": "vmamba", **variant, "out_norm": out_norm, **backbone}, "head": head,
            "num_classes": num_classes, "in_chans": in_chans}
    return medcam.build_model(spec).eval()


def logits(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).logits


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_backbone_keys_are_the_official_ones(name: str) -> None:
    with torch.device("meta"):
        model = medcam.build_model({"backbone": {"name": name, "out_norm": False}, "head": "vmamba_classifier",
                                    "num_classes": 1000})
    ours = {k: tuple(v.shape) for k, v in model.backbone.state_dict().items()}
    ours.update({"classifier.norm." + k: tuple(v.shape) for k, v in model.head.norm.state_dict().items()})
    ours.update({"classifier.head." + k: tuple(v.shape) for k, v in model.head.fc.state_dict().items()})
    assert ours == official_shapes(CONFIGS[name])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("container", ["model", "state_dict", "bare"])
def test_round_trip_gives_identical_logits(variant: str, container: str, tmp_path: Path, images) -> None:
    source = classifier(VARIANTS[variant], seed=1)
    sd = export_official(source)
    payload = sd if container == "bare" else {container: sd, "config": TrainingConfig(), "epoch": 299}
    path = tmp_path / "ckpt.pth"
    torch.save(payload, path)
    fresh = classifier(VARIANTS[variant], seed=2)
    assert not torch.equal(logits(fresh, images), logits(source, images))
    report = medcam_vmamba.load_official_checkpoint(fresh, path)
    assert torch.equal(logits(fresh, images), logits(source, images))
    assert len(report.loaded) == len(sd) and report.ignored == [] and report.initialized == []


def test_ema_weights_by_key(tmp_path: Path, images) -> None:
    source, ema = classifier(V2, seed=1), classifier(V2, seed=4)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": export_official(source), "model_ema": export_official(ema), "epoch": 1}, path)
    fresh = classifier(V2, seed=2)
    medcam_vmamba.load_official_checkpoint(fresh, path, key="model_ema")
    assert torch.equal(logits(fresh, images), logits(ema, images))
    medcam_vmamba.load_official_checkpoint(fresh, path)
    assert torch.equal(logits(fresh, images), logits(source, images))
    with pytest.raises(CheckpointError, match="no 'ema' entry"):
        medcam_vmamba.load_official_checkpoint(fresh, path, key="ema")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_official_tensor_lands_in_its_place(variant: str) -> None:
    model = classifier(VARIANTS[variant], seed=0)
    sd = random_official_state(model.backbone.config)
    medcam_vmamba.load_official_checkpoint(model, sd)
    backbone = model.backbone.state_dict()
    for key, value in sd.items():
        if key.startswith("classifier.norm."):
            got = getattr(model.head.norm, key.rsplit(".", 1)[1])
        elif key.startswith("classifier.head."):
            got = getattr(model.head.fc, key.rsplit(".", 1)[1])
        else:
            got = backbone[key]
        assert torch.equal(got, value), key


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("layout", ["legacy", "single_file"])
def test_older_layouts(variant: str, layout: str, images) -> None:
    source = classifier(VARIANTS[variant], seed=1)
    sd = export_official(source)
    if layout == "legacy":
        converted = to_legacy(sd)
        assert "patch_embed.proj.weight" in converted and "head.weight" in converted
        assert converted["layers.0.blocks.0.self_attention.in_proj.weight"].dim() == 4
    else:
        converted = to_single_file(sd, ssm_modules=variant == "v2")
    fresh = classifier(VARIANTS[variant], seed=2)
    report = medcam_vmamba.load_official_checkpoint(fresh, converted)
    assert torch.equal(logits(fresh, images), logits(source, images))
    assert report.notes


def test_data_parallel_and_dense_task_prefixes(images) -> None:
    source = classifier(V2, seed=1)
    sd = export_official(source)
    fresh = classifier(V2, seed=2)
    medcam_vmamba.load_official_checkpoint(fresh, {"module." + k: v for k, v in sd.items()})
    assert torch.equal(logits(fresh, images), logits(source, images))
    # a detection checkpoint: the backbone under "backbone.", with level norms, next to neck/head tensors
    torch.manual_seed(5)
    dense_source = medcam.build_backbone({"name": "vmamba", **V2}).eval()
    dense = {"backbone." + k: v for k, v in dense_source.state_dict().items()}
    dense["neck.lateral.weight"] = torch.zeros(3)
    torch.manual_seed(6)
    backbone = medcam.build_backbone({"name": "vmamba", **V2}).eval()
    report = medcam_vmamba.load_official_checkpoint(backbone, {"state_dict": dense})
    assert report.initialized == [] and any("backbone." in n for n in report.notes)
    with torch.no_grad():
        for a, b in zip(backbone(images), dense_source(images)):
            assert torch.equal(a, b)


def test_linear_head_on_normalized_levels_gives_the_same_logits(images) -> None:
    source = classifier(V2, seed=1)
    sd = export_official(source)
    other = classifier(V2, seed=2, head="linear", out_norm=True)
    report = medcam_vmamba.load_official_checkpoint(other, sd)
    torch.testing.assert_close(logits(other, images), logits(source, images), rtol=1e-6, atol=1e-6)
    assert torch.equal(other.backbone.outnorm3.weight, sd["classifier.norm.weight"])
    assert report.initialized == [f"backbone.outnorm{i}.{k}" for i in range(3) for k in ("bias", "weight")]


def test_greyscale_model_from_rgb_weights(images) -> None:
    source = classifier(VANILLA, seed=1)
    grey = classifier(VANILLA, seed=2, in_chans=1)
    report = medcam_vmamba.load_official_checkpoint(grey, export_official(source))
    assert any("3 to 1 input channels" in n for n in report.notes)
    g = images[:, :1]
    with torch.no_grad():  # the backbones alone: a grey image repeated on 3 channels gives the same features
        for a, b in zip(grey.backbone(g), source.backbone(g.repeat(1, 3, 1, 1))):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fine_tuning_on_new_classes(images) -> None:
    source = classifier(V2, seed=1)
    sd = export_official(source)
    model = classifier(V2, seed=2, num_classes=3)
    with pytest.raises(CheckpointError, match="include_head=False"):
        medcam_vmamba.load_official_checkpoint(model, sd)
    fc_before = model.head.fc.weight.clone()
    report = medcam_vmamba.load_official_checkpoint(model, sd, include_head=False)
    assert torch.equal(model.head.fc.weight, fc_before)
    assert torch.equal(model.head.norm.weight, sd["classifier.norm.weight"])
    assert report.ignored == ["classifier.head.weight", "classifier.head.bias"]
    with torch.no_grad():
        for a, b in zip(model.backbone(images), source.backbone(images)):
            assert torch.equal(a, b)


def test_mismatched_architecture_is_named() -> None:
    deeper = export_official(classifier(V2, seed=1))
    shallow = classifier(dict(V2, depths=[1, 1, 1, 1]), seed=2)
    with pytest.raises(CheckpointError,
                       match=r"unexpected keys: layers\.2\.blocks\.1\..*depths \[1, 1, 2, 1\]"):
        medcam_vmamba.load_official_checkpoint(shallow, deeper)
    report = medcam_vmamba.load_official_checkpoint(shallow, deeper, strict=False)
    assert any(k.startswith("layers.2.blocks.1.") for k in report.ignored)
    wider = classifier(dict(V2, dims=32), seed=3)
    with pytest.raises(CheckpointError, match=r"shape mismatches \(file vs model\): backbone\.patch_embed\.0\.weight"):
        medcam_vmamba.load_official_checkpoint(wider, deeper)
    missing = {k: v for k, v in deeper.items() if not k.endswith("op.Ds")}
    with pytest.raises(CheckpointError, match=r"missing keys: backbone\.layers\.0\.blocks\.0\.op\.Ds"):
        medcam_vmamba.load_official_checkpoint(classifier(V2, seed=4), missing)


def test_linear_head_without_level_norm_cannot_take_the_classifier() -> None:
    sd = export_official(classifier(V2, seed=1))
    plain = classifier(V2, seed=2, head="linear", out_norm=False)
    with pytest.raises(CheckpointError, match="needs the vmamba_classifier head"):
        medcam_vmamba.load_official_checkpoint(plain, sd)
    medcam_vmamba.load_official_checkpoint(plain, sd, include_head=False)


def test_guess_config_recognizes_official_configurations() -> None:
    shapes = official_shapes(CONFIGS["vmamba_tiny_s1l8"])
    fake = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    assert guess_config(fake) == "depths [2, 2, 8, 2], dims 96, d_state 1, d_inner 96 (matches vmamba_tiny_s1l8)"
    assert to_official_layout(fake)[0].keys() == fake.keys()


def test_bad_sources(tmp_path: Path) -> None:
    model = classifier(V2, seed=0)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        medcam_vmamba.load_official_checkpoint(model, tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        medcam_vmamba.load_official_checkpoint(model, junk)
    with pytest.raises(CheckpointError, match="medcam.load"):
        medcam_vmamba.load_official_checkpoint(model, {"format": "medcam.checkpoint", "state_dict": {}})
    with pytest.raises(CheckpointError, match="expected a state dict"):
        medcam_vmamba.load_official_checkpoint(model, {"epoch": 3})
    cnn = medcam.build_model({"backbone": "tiny_cnn", "num_classes": 2})
    with pytest.raises(CheckpointError, match="VMamba backbone"):
        medcam_vmamba.load_official_checkpoint(cnn, export_official(model))


def test_named_source_downloads_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, images) -> None:
    source = classifier(V2, seed=1)
    calls = []

    def fake_download(url: str, dst: str, progress: bool = True) -> None:
        calls.append(url)
        torch.save({"model": export_official(source)}, dst)

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    for seed in (2, 3):
        fresh = classifier(V2, seed=seed)
        medcam_vmamba.load_official_checkpoint(fresh, "vmamba_tiny")
        assert torch.equal(logits(fresh, images), logits(source, images))
    assert calls == [CONFIGS["vmamba_tiny_s1l8"].url]
    assert (tmp_path / "checkpoints" / "vssm1_tiny_0230s_ckpt_epoch_264.pth").is_file()
